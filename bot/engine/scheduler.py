"""The digest's background loop: post once per scheduled day, catching up after a late start.

When it is due is pure time math in bot/core/schedule.py; this module only waits and calls.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.config import Digest
from bot.core.schedule import due_day, next_run

log = logging.getLogger(__name__)
RECHECK = 300.0  # sleep at most this long, so a changed wall clock is noticed


async def run(
    schedule: Digest, now: Callable[[], float], post: Callable[[float], Awaitable[object]]
) -> None:
    """Call `post(now)` once per scheduled day, catching up after a late start, until cancelled."""
    done: str | None = None
    while True:
        moment = datetime.fromtimestamp(now(), UTC)
        day = due_day(moment, schedule)
        if day and day != done:
            try:
                await post(moment.timestamp())
                done = day
            except Exception:  # a failed digest must not stop tomorrow's
                log.exception("the digest of %s failed; retrying in %.0fs", day, RECHECK)
        upcoming = next_run(moment, schedule)
        wait = RECHECK if upcoming is None else (upcoming - moment).total_seconds()
        await asyncio.sleep(max(0.05, min(wait, RECHECK)))
