"""The digest's schedule: local time of day on chosen weekdays, across zones and DST changes."""

from datetime import UTC, datetime, time

import pytest

from bot.config import Digest
from bot.engine.scheduler import due_day, next_run

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(tz: str, at: str = "09:00", days: tuple[str, ...] = WEEKDAYS) -> Digest:
    hour, minute = map(int, at.split(":"))
    return Digest(time(hour, minute), tz, days, True)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-24 08:59", "2026-11-24 09:00"),  # London on GMT: 09:00 local is 09:00 UTC
        ("2026-11-24 09:00", "2026-11-25 09:00"),  # strictly after
        ("2026-11-27 10:00", "2026-11-30 09:00"),  # Friday after the hour: next is Monday
        ("2026-03-27 10:00", "2026-03-30 08:00"),  # clocks went forward on Sunday 29 March
        ("2026-10-23 07:00", "2026-10-23 08:00"),  # still BST on Friday ...
        ("2026-10-23 08:30", "2026-10-26 09:00"),  # ... and GMT again on Monday
    ],
)
def test_london_weekdays_across_daylight_saving(now, expected):
    assert next_run(utc(now), schedule("Europe/London")) == utc(expected)


def test_other_zones_and_days():
    tokyo = schedule("Asia/Tokyo", days=("sat",))
    # 09:00 in Tokyo is midnight UTC; Saturday there is still Friday in London.
    assert next_run(utc("2026-11-24 12:00"), tokyo) == utc("2026-11-28 00:00")
    new_york = schedule("America/New_York", at="17:30")
    assert next_run(utc("2026-11-24 12:00"), new_york) == utc("2026-11-24 22:30")  # EST
    assert next_run(utc("2026-03-06 23:00"), new_york) == utc("2026-03-09 21:30")  # EDT
    assert next_run(utc("2026-11-24 12:00"), schedule("UTC", days=())) is None


def test_due_day_is_the_local_date_once_the_hour_has_passed():
    london, tokyo = schedule("Europe/London"), schedule("Asia/Tokyo")
    assert due_day(utc("2026-11-24 08:59"), london) is None
    assert due_day(utc("2026-11-24 09:00"), london) == "2026-11-24"
    assert due_day(utc("2026-11-24 23:59"), london) == "2026-11-24"
    assert due_day(utc("2026-11-29 12:00"), london) is None  # Sunday
    # Monday 00:30 UTC is Monday 09:30 in Tokyo: the digest of Monday there.
    assert due_day(utc("2026-11-30 00:30"), tokyo) == "2026-11-30"
    assert due_day(utc("2026-03-30 08:00"), london) == "2026-03-30"  # 09:00 BST
