"""Read a rate limit's Retry-After: seconds or an HTTP date, with a safe default for the rest."""

import email.utils
import time

# When a 429 names no usable wait (missing, garbled, absurd), wait this long: safe, not stuck.
DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float:
    """Read a Retry-After header (seconds or an HTTP date); fall back to a safe default."""
    text = (value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, time.time() if now is None else now)
    if seconds != seconds or seconds < 0 or seconds > MAX_RETRY_AFTER:  # NaN, negative, absurd
        return DEFAULT_RETRY_AFTER
    return seconds


def _seconds_until(date: str, now: float) -> float:
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return -1.0
