"""The one way a test waits for something: poll it, and fail after a deadline."""

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT = 20.0


async def wait_for(
    probe: Callable[[], Any],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str = "",
    every: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll `probe` (sync or async) until it returns something true; return it, or fail.

    An exception of a type in `ignoring` counts as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
            if inspect.isawaitable(found):
                found = await found
        except ignoring:
            found = None
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or probe}")
        await asyncio.sleep(every)


def wait_for_blocking(
    probe: Callable[[], Any],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str = "",
    every: float = 0.05,
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """Do what `wait_for` does, for a test without an event loop (a subprocess, a browser)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except ignoring:
            found = None
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or probe}")
        time.sleep(every)
