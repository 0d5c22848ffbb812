"""Logging set-up: one line per record, with secrets scrubbed whatever their source."""

import json
import logging
import re
import time
from typing import Any

TOKEN = re.compile(
    r"(xox[abposr]-[\w-]+|gh[psuor]_[A-Za-z0-9]{10,}|-----BEGIN[^-]*PRIVATE KEY-----[\s\S]*?"
    r"-----END[^-]*PRIVATE KEY-----|(?i:authorization)[\"']?\s*[:=]\s*[\"']?[\w.-]+ [\w.-]+)"
)


class Redactor(logging.Filter):
    """Replace tokens, keys and the given secrets in every message with [redacted]."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= 6)

    def scrub(self, text: str) -> str:
        """Return `text` without anything secret in it."""
        text = TOKEN.sub("[redacted]", text)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message now, scrubbed, so no argument leaks later."""
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_REDACTOR = Redactor()


def redact_everywhere(secrets: tuple[str, ...] = ()) -> None:
    """Scrub every log record as it is made, whichever handler later sees it.

    A filter on one handler leaves the others (pytest's caplog, a library's own
    handler, one added later) reading the raw text; the record factory covers them all.
    """
    _REDACTOR.secrets = tuple(
        dict.fromkeys((*_REDACTOR.secrets, *(s for s in secrets if len(s) >= 6)))
    )
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def make(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _REDACTOR.filter(record)
        return record

    make.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


# What a JSON line may carry beside its message, when the code that logged it knew it.
FIELDS = (
    "delivery_id",
    "repo",
    "event",
    "promotion",
    "stage",
    "outcome",
    "refusal",
    "target",
    "method",
    "status",
    "outbox",
    "lane",
    "fault",
)
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as one line of JSON, every string scrubbed of secrets."""
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = _REDACTOR.scrub(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = _REDACTOR.scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime


def setup(level: str = "INFO", secrets: tuple[str, ...] = (), fmt: str = "text") -> None:
    """Send logs to stderr, scrubbed of secrets: lines of text, or one JSON object per line."""
    redact_everywhere(secrets)
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
