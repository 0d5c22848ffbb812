"""Time as the bot sees it: injectable, so rules and tests can move it."""

import time


class Clock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        return time.time()


class FakeClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.current = start

    def now(self) -> float:
        """Return the fake current time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current += seconds
