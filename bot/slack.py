"""Slack senders for the relay: a keyed message is posted once, then only ever edited."""

import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.relay import Permanent, Record, RetryAfter, Row, Sender, Transient, Waiting
from storage import Store

# Errors that retrying cannot fix; anything else Slack says is retried with backoff.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "msg_too_long",
    "no_text",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "cant_update_message",
    "message_not_found",
    "edit_window_closed",
    "invalid_arguments",
    "user_not_in_channel",
    "restricted_action",
}


def message_ts(db: Database, key: str) -> tuple[str, str] | None:
    """Return (channel ID, ts) of a keyed message already posted, or None."""
    row = db.conn.execute(
        "SELECT channel_id, ts FROM slack_messages WHERE key = ?", [key]
    ).fetchone()
    return (row[0], row[1]) if row else None


def parent_pending(db: Database, key: str) -> bool:
    """Say whether the keyed message is still waiting in the outbox."""
    row = db.conn.execute(
        "SELECT 1 FROM outbox WHERE method = 'slack.message' AND state = 'pending'"
        " AND json_extract(payload, '$.key') = ? LIMIT 1",
        [key],
    ).fetchone()
    return row is not None


async def call(client: AsyncWebClient, method: str, **args: Any) -> dict[str, Any]:
    """Call a Web API method; map Slack's answers onto relay outcomes."""
    try:
        answer = await client.api_call(method, json=args)
    except SlackApiError as exc:
        answer = exc.response
        if answer.status_code == 429 or answer.get("error") == "ratelimited":
            raise RetryAfter(
                float(answer.headers.get("Retry-After", 1)), f"Slack {method}"
            ) from None
        if answer.status_code >= 500:
            raise Transient(f"Slack {method}: HTTP {answer.status_code}") from None
        error = answer.get("error", f"HTTP {answer.status_code}")
        if error in PERMANENT or answer.status_code in (400, 401, 403, 404):
            raise Permanent(f"Slack {method}: {error}") from None
        raise Transient(f"Slack {method}: {error}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Transient(f"Slack {method}: {type(exc).__name__}") from None
    return dict(answer.data)  # type: ignore[arg-type]


def slack_senders(client: AsyncWebClient, store: Store) -> dict[str, Sender]:
    """Build the relay's Slack senders around one Web API client."""

    async def keyed_message(row: Row) -> Record:
        # payload: key, channel, text, blocks — posted the first time, edited after.
        p = row.payload
        where = await store.read(lambda db: message_ts(db, p["key"]))
        content = {"text": p["text"], "blocks": p.get("blocks"), "unfurl_links": False}
        if where:
            await call(
                client,
                "chat.update",
                channel=where[0],
                ts=where[1],
                text=p["text"],
                blocks=p.get("blocks"),
            )
            return lambda db: None
        answer = await call(client, "chat.postMessage", channel=p["channel"], **content)
        values = [p["key"], answer["channel"], answer["ts"], time.time()]
        return lambda db: db.execute(
            "INSERT OR REPLACE INTO slack_messages (key, channel_id, ts, posted_at)"
            " VALUES (?, ?, ?, ?)",
            values,
        )

    async def thread_reply(row: Row) -> Record | None:
        # payload: parent_key, text, blocks, broadcast
        p = row.payload
        where = await store.read(lambda db: message_ts(db, p["parent_key"]))
        if where is None:
            if await store.read(lambda db: parent_pending(db, p["parent_key"])):
                raise Waiting(f"{p['parent_key']} is not posted yet")
            raise Permanent(f"{p['parent_key']} was never posted; the reply has no thread")
        await call(
            client,
            "chat.postMessage",
            channel=where[0],
            thread_ts=where[1],
            text=p["text"],
            blocks=p.get("blocks"),
            reply_broadcast=bool(p.get("broadcast")),
            unfurl_links=False,
        )
        return None

    async def plain(row: Row) -> Record | None:
        await call(client, row.method, **row.payload)
        return None

    return {
        "slack.message": keyed_message,
        "slack.reply": thread_reply,
        "chat.postMessage": plain,
        "chat.postEphemeral": plain,
    }
