"""Text for Slack: escape what people and GitHub wrote before it goes into mrkdwn."""

import hmac
import json
import re
from typing import Any


def escape(text: str) -> str:
    """Escape &, < and > so nobody's text can ping <!channel> or forge a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A JSON escape of a UTF-16 surrogate: the only way a lone one gets into decoded text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def load_json(body: bytes | str) -> Any:
    """Decode JSON, replacing lone surrogates (which no database can store) with U+FFFD."""
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
