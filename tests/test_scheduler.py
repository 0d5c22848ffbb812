"""The digest's schedule: local time of day on chosen weekdays, across zones and DST changes."""

from datetime import UTC, datetime, time

import pytest

from bot.config import Digest
from bot.core.schedule import due_day, first_of_week, next_run

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


def test_a_time_the_clocks_skip_or_repeat_is_taken_at_the_earlier_offset():
    every_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    london = schedule("Europe/London", at="01:30", days=every_day)
    # Sunday 29 March 2026 has no 01:30 in London (01:00 GMT -> 02:00 BST): 01:30 GMT.
    assert next_run(utc("2026-03-29 00:00"), london) == utc("2026-03-29 01:30")
    assert next_run(utc("2026-03-29 01:30"), london) == utc("2026-03-30 00:30")  # BST again
    # Sunday 25 October 2026 has 01:30 twice: the first, still BST, and only once.
    assert next_run(utc("2026-10-24 23:59"), london) == utc("2026-10-25 00:30")
    assert next_run(utc("2026-10-25 00:30"), london) == utc("2026-10-26 01:30")
    assert due_day(utc("2026-10-25 00:30"), london) == "2026-10-25"


def test_the_first_digest_day_of_the_week_is_local():
    london = schedule("Europe/London")
    assert first_of_week(utc("2026-11-30 09:00"), london)  # Monday
    assert not first_of_week(utc("2026-11-24 09:00"), london)  # Tuesday
    assert first_of_week(utc("2026-11-25 09:00"), schedule("UTC", days=("wed", "fri")))
    # Sunday 23:30 UTC is already Monday in Tokyo.
    assert first_of_week(utc("2026-11-29 23:30"), schedule("Asia/Tokyo"))
    assert not first_of_week(utc("2026-11-30 09:00"), schedule("UTC", days=()))
