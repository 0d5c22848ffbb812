"""Text for Slack: escape what people and GitHub wrote before it goes into mrkdwn."""

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
    return _replace_surrogates(data) if _SURROGATE_ESCAPE.search(raw) else data


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value
