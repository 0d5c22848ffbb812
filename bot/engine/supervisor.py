"""Supervised background work: a task that fails is logged once, restarted with backoff, and shown.

The worker, the relay, the scheduler and the sweeps run for the life of the
service. Before supervision, one failed database write ended the worker and
every later delivery was acknowledged and then left pending in silence. Now a
failure is logged once with its cause, the task starts again after a backoff
(0.5 s doubling to 30 s), and `/healthz` names every task that is failing or
has stopped making progress until it beats again.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def backoff(failures: int) -> float:
    """Seconds before restart number `failures` (0.5, 1, 2 … at most 30)."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1))


@dataclass
class Health:
    """What the supervisor knows of one task."""

    beat_limit: float | None  # seconds without a beat after which the task counts as stuck
    last_beat: float
    failures: int = 0  # in the current streak; 0 once the task beats again
    first_failed_at: float = 0.0
    error: str = ""
    finished: bool = False


class Supervisor:
    """Start named background tasks, restart the ones that fail, and report the unhealthy ones."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.health: dict[str, Health] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self._nudges: dict[str, asyncio.Event] = {}
        # Tasks that run elsewhere (the processing process) and report through these.
        self.elsewhere: dict[str, Callable[[], list[str]]] = {}

    def start(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        *,
        beat_limit: float | None = None,
        restart: bool = True,
    ) -> asyncio.Task:
        """Run `run()` as task `name`, restarting it after each failure unless `restart` is off."""
        self.health[name] = Health(beat_limit=beat_limit, last_beat=self.clock())
        task = asyncio.create_task(self._keep(name, run, restart), name=name)
        self.tasks[name] = task
        return task

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]], restart: bool) -> None:
        while True:
            try:
                await run()
            except Exception as exc:
                delay = self.failed(name, exc)
                if restart:
                    await self._back_off(name, delay)
                    continue
                return  # a one-off (the demo story): its failure stays shown
            self.health[name].finished = True
            return

    async def _back_off(self, name: str, delay: float) -> None:
        # New work (a stored delivery) cuts a long backoff short: the fault may be gone,
        # and the first try after it should not wait up to 30 s. The first half second
        # always passes, so a fault that lasts is not retried once per delivery.
        nudged = self._nudges.setdefault(name, asyncio.Event())
        nudged.clear()
        await asyncio.sleep(min(delay, FIRST_BACKOFF))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(nudged.wait(), timeout=max(0.0, delay - FIRST_BACKOFF))

    def nudge(self, name: str) -> None:
        """Say that task `name` has new work: a restart waiting out its backoff goes now."""
        event = self._nudges.get(name)
        if event is not None:
            event.set()

    def beat(self, name: str) -> None:
        """Record that task `name` made progress (and so has recovered from any failure)."""
        health = self.health.get(name)
        if health is None:
            return
        health.last_beat = self.clock()
        if health.failures:
            log.warning(
                "%s recovered after %d failure(s) over %.1fs",
                name,
                health.failures,
                health.last_beat - health.first_failed_at,
            )
            health.failures = 0
            health.error = ""

    def failed(self, name: str, exc: BaseException) -> float:
        """Record a failure of `name`; log it once per streak and cause; return the backoff."""
        health = self.health.setdefault(name, Health(beat_limit=None, last_beat=self.clock()))
        error = f"{type(exc).__name__}: {exc}"[:500]
        if not health.failures:
            health.first_failed_at = self.clock()
        if error != health.error:  # a new cause is worth one traceback; repeats are not
            log.error("%s failed, restarting with backoff: %s", name, error, exc_info=exc)
        health.failures += 1
        health.error = error
        return backoff(health.failures)

    def problems(self) -> list[str]:
        """Say, one line each, which tasks are failing, have died or have stopped beating."""
        now = self.clock()
        found = []
        for name, health in sorted(self.health.items()):
            task = self.tasks.get(name)
            if health.failures:
                found.append(
                    f"{name}: failing since {now - health.first_failed_at:.0f}s"
                    f" ({health.failures} restart(s)): {health.error}"
                )
            elif task is not None and task.done() and not health.finished:
                found.append(f"{name}: stopped")
            elif health.beat_limit is not None and now - health.last_beat > health.beat_limit:
                found.append(f"{name}: no progress for {now - health.last_beat:.0f}s")
        for name, problems in sorted(self.elsewhere.items()):
            found += [f"{name}: {problem}" for problem in problems()]
        return found

    async def stop(self, grace: float, before: Callable[[], None] = lambda: None) -> None:
        """Ask the tasks to finish (`before`), wait up to `grace` seconds, then cancel the rest."""
        before()
        tasks = list(self.tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
