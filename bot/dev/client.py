"""Sign requests as GitHub and Slack sign them, and send them to a running promobot.

Dev mode's demo and CLI, the tests and bench/ all sign with these: one signer per remote.
"""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp

DEV_TEAM = "T0DEV"  # the workspace dev mode answers, and the one `promobot send` speaks for


def github_signature(body: bytes, secret: str) -> str:
    """Return X-Hub-Signature-256 for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(
    event: str, body: bytes, secret: str, *, delivery: str | None = None
) -> dict[str, str]:
    """Return the headers GitHub sends a webhook delivery with, signed with `secret`."""
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(body, secret),
        "Content-Type": "application/json",
    }


def slack_signature(body: str | bytes, secret: str, stamp: str) -> str:
    """Return X-Slack-Signature for `body` sent at `stamp` (raw bytes need not be UTF-8)."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + stamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(body: str | bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the headers Slack signs a request body with."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(body, secret, stamp),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def post_webhook(
    session: aiohttp.ClientSession, url: str, secret: str, event: str, payload: dict[str, Any]
) -> tuple[int, str]:
    """POST a signed GitHub delivery to `url`/github/webhooks; return (status, body)."""
    body = json.dumps(payload).encode()
    headers = github_headers(event, body, secret) | {"User-Agent": "GitHub-Hookshot/promobot-dev"}
    async with session.post(url.rstrip("/") + "/github/webhooks", data=body, headers=headers) as r:
        return r.status, await r.text()


async def post_slack(
    session: aiohttp.ClientSession, url: str, secret: str, form: dict[str, str]
) -> tuple[int, str]:
    """POST a signed Slack form (slash command or interaction) to `url`/slack/events."""
    body = urlencode(form)
    headers = slack_headers(body, secret)
    async with session.post(url.rstrip("/") + "/slack/events", data=body, headers=headers) as r:
        return r.status, await r.text()
