"""Text for people: escaping, mentions, links, first lines, durations and times of day.

The one home of each: Slack messages, /ship answers, the digest and the dashboard
all say a duration or a time the same way.
"""

import hmac
import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
MAX_NAME = 80  # a name that is not a Slack ID (a GitHub login), shown as text


def escape(text: str) -> str:
    """Escape &, < and > so nobody's text can ping <!channel> or forge a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(who: str | None) -> str:
    """Mention a Slack user or user group by ID; show anyone else (a login) as plain text."""
    if not who:
        return "someone"
    if SLACK_USER.match(who):
        return f"<@{who}>"
    if SLACK_GROUP.match(who):
        return f"<!subteam^{who}>"
    shown = escape(who)
    return shown if len(shown) <= MAX_NAME else shown[: MAX_NAME - 1] + "…"


def first_line(text: str | None) -> str:
    """Return the first non-blank line of a commit message, stripped."""
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def duration(seconds: float) -> str:
    """Say a duration the way people write it: 45s, 2m 5s, 12m, 3h 5m, 2d 4h.

    Seconds count up to ten minutes; a part still running is rounded up, so
    what is left is never said as 0s.
    """
    total = max(0, math.ceil(seconds))
    minutes, secs = divmod(total, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if total < 60:
        return f"{secs}s"
    if minutes < 10:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{days}d {hrs}h" if hrs else f"{days}d"


def when(at: float, timezone: str = "UTC", *, short: bool = False) -> str:
    """Say a moment in `timezone`: '2026-11-24 09:00 GMT', or 'Tue 09:00' when `short`."""
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(timezone))
    return local.strftime("%a %H:%M" if short else "%Y-%m-%d %H:%M %Z")


# A JSON escape of a UTF-16 surrogate: the only way a lone one gets into decoded text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def load_json(body: bytes | str) -> Any:
    """Decode JSON, replacing lone surrogates (which no database can store) with U+FFFD."""
    try:
        # Twice as fast as json.loads on a 10 KB delivery, and the same values. What it
        # refuses (escaped lone surrogates, NaN, 1e400, bad UTF-8) goes the long way, which
        # takes or refuses it as before.
        return msgspec.json.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        pass
    data = json.loads(body)
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return _replace_surrogates(data) if escapes_surrogates(raw) else data


def escapes_surrogates(raw: bytes) -> bool:
    """Say whether JSON text holds an escaped UTF-16 surrogate (a pair's half, or a lone one)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


# Lengths of text people type: enough for any honest use, refused beyond with a clear answer.
MAX_COMMAND = 4000  # a whole /ship command, checked before it is parsed
MAX_REASON = 500  # a --force, lock, reject or freeze reason
MAX_REF = 100  # a build reference (#42, a sha, a stage) or any other single word
MAX_URL = 2000
_URL = re.compile(r"^https?://[^\s/?#<>|\"'`\\]+[^\s<>\"'`\\]*$", re.IGNORECASE)


def safe_url(url: object) -> str | None:
    """Return `url` when it is an http(s) URL safe inside a Slack link, else None.

    A payload's `target_url` is anyone's text: `javascript:`, `<!channel>`, a `|`
    that swaps the label, spaces or control characters make it no URL of ours.
    """
    if not isinstance(url, str) or len(url) > MAX_URL or not url.isascii():
        return None
    return url if _URL.match(url) and url.isprintable() else None


def link(url: object, label: str) -> str:
    """Return a mrkdwn link to a safe `url` labelled `label` (mrkdwn); just `label` otherwise."""
    safe = safe_url(url)
    return f"<{escape(safe).replace('|', '%7C')}|{label}>" if safe else label  # | ends a URL


def too_long(what: str, text: str, limit: int) -> str | None:
    """Say that typed `text` is over `limit` characters (never quoting it), or None."""
    if len(text) <= limit:
        return None
    return f"{what} is {len(text):,} characters long; the most is {limit:,}"


MAX_ID = 2**53  # no row of ours has a larger id; SQLite refuses integers past 2**63


def number(word: str) -> int | None:
    """Return the whole number `word` spells in ASCII digits (an optional #), or None.

    `²` and `٣` are digits to str.isdigit() but not numbers people mean, and a
    number past MAX_ID names nothing we store (and would overflow SQLite).
    """
    digits = word[1:] if word.startswith("#") else word
    if not digits or len(digits) > 16 or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    return value if value <= MAX_ID else None


def same_secret(given: str, expected: str) -> bool:
    """Compare a secret someone sent with ours in constant time, whatever characters it holds."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
