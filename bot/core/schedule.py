"""When the daily digest is due: `digest.at` in `digest.timezone` on `digest.days`.

Pure functions of an aware datetime, so tests cross time zones and
daylight-saving changes without waiting; the loop lives in bot/engine/scheduler.py.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Digest


def occurrence(day: date, schedule: Digest) -> datetime:
    """Return the UTC instant of the digest on a local `day` (whatever the offset that day)."""
    # A time the clocks skip or repeat resolves as zoneinfo does (fold=0): the earlier offset.
    local = datetime.combine(day, schedule.at, tzinfo=ZoneInfo(schedule.timezone))
    return local.astimezone(UTC)


def _runs_on(day: date, schedule: Digest) -> bool:
    return WEEKDAYS[day.weekday()] in schedule.days


def first_of_week(now: datetime, schedule: Digest) -> bool:
    """Say whether today (local) is the first digest day of its week, Monday first."""
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    days = [d for d in WEEKDAYS if d in schedule.days]
    return bool(days) and WEEKDAYS[today.weekday()] == days[0]


def next_run(now: datetime, schedule: Digest) -> datetime | None:
    """Return the first digest time strictly after `now`, or None when no day is chosen."""
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        when = occurrence(day, schedule)
        if _runs_on(day, schedule) and when > now:
            return when
    return None


def due_day(now: datetime, schedule: Digest) -> str | None:
    """Return today's local date (ISO) when today's digest time has passed, else None.

    A service started after the hour still sends the day's digest; the claim in
    the `digests` table makes that once per channel however often it is asked.
    """
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    if _runs_on(today, schedule) and occurrence(today, schedule) <= now:
        return today.isoformat()
    return None
