"""Slack senders for the relay: a keyed message is posted once, then only ever edited."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.core.channels import CHANNEL_ID, is_channel
from bot.engine.relay import Permanent, Record, Row, Sender, Waiting
from bot.engine.slack_api import call
from bot.pipeline.outbox import Announcement, Ephemeral, KeyedMessage, ThreadReply
from storage import Store, outbox
from storage import slack as slackdb

log = logging.getLogger(__name__)


async def thread_of(store: Store, key: str) -> tuple[str, str]:
    """Return (channel ID, ts) of the parent a reply goes under; wait for it, or give up."""
    where = await store.read(lambda db: slackdb.message_ts(db, key))
    if where is not None:
        return where
    if await store.read(lambda db: outbox.pending_under_key(db, KeyedMessage.method, key)):
        raise Waiting(f"{key} is not posted yet")
    raise Permanent(f"{key} was never posted; the reply has no thread")


EVENT_TYPE = "promobot_message"
# How far back a retry looks for its own earlier post, beyond the row's creation.
LOOKBACK = 60.0


def tag(key: str) -> dict[str, Any]:
    """Return message metadata naming the outbox message, so a retry can find it."""
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def channel_id(db: Database, channel: str) -> str | None:
    """Return the ID of a channel given by name or ID, if Slack ever told us."""
    if CHANNEL_ID.match(channel):
        return channel
    return slackdb.channel_id(db, channel)


def remember_channel(name: str, answer: dict[str, Any]) -> Callable[[Database], None]:
    """Return a write that stores the channel ID Slack answered for `name`."""
    found = str(answer["channel"])
    return lambda db: slackdb.remember_channel(db, name, found)


async def find_posted(
    client: AsyncWebClient, channel: str, key: str, since: float, thread_ts: str | None = None
) -> str | None:
    """Return the ts of our message tagged `key` in a channel (or thread) since `since`."""
    method = "conversations.replies" if thread_ts else "conversations.history"
    args: dict[str, Any] = {
        "channel": channel,
        "oldest": f"{since - LOOKBACK:.6f}",
        "include_all_metadata": True,
        "limit": 200,
    }
    if thread_ts:
        args["ts"] = thread_ts
    answer = await call(client, method, **args)
    for message in answer.get("messages", []):
        metadata = message.get("metadata") or {}
        if (
            metadata.get("event_type") == EVENT_TYPE
            and (metadata.get("event_payload") or {}).get("key") == key
        ):
            return str(message["ts"])
    return None


async def find_channel(client: AsyncWebClient, name: str, pages: int = 20) -> str | None:
    """Return the ID of the channel app.yaml calls `name` (#name or name), or None."""
    cursor = ""
    for _ in range(pages):
        try:
            answer = await call(
                client,
                "conversations.list",
                exclude_archived=True,
                limit=200,
                types="public_channel,private_channel",
                cursor=cursor,
            )
        except Permanent as exc:  # e.g. missing_scope: then we cannot look, and say so
            log.warning("cannot list channels to find %s: %s", name, exc)
            return None
        for channel in answer.get("channels", []):
            if is_channel(name, str(channel.get("id", "")), str(channel.get("name", ""))):
                return str(channel["id"])
        cursor = (answer.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            return None
    return None


async def learn_channel_ids(client: AsyncWebClient, store: Store, names: Iterable[str]) -> None:
    """Ask Slack the ID of each channel named by name whose ID promobot does not know yet."""
    known = await store.read(slackdb.known_channels)
    for name in sorted(n for n in set(names) if not CHANNEL_ID.match(n) and n not in known):
        try:
            found = await find_channel(client, name)
        except Exception as exc:  # Slack unreachable: go on without; the caller still posts
            log.warning("cannot look up the ID of channel %s: %s", name, exc)
            continue
        if found is not None:
            await store.write(remember_channel(name, {"channel": found}))


def slack_senders(client: AsyncWebClient, store: Store) -> dict[str, Sender]:
    """Build the relay's Slack senders around one Web API client."""

    async def already_posted(row: Row, channel: str, key: str, thread: str | None) -> str | None:
        # Only a retry after a crash can find its own post; a first try never looks.
        if not row.uncertain:
            return None
        where = await store.read(lambda db: channel_id(db, channel))
        if where is None:
            # The first post into this channel was cut off: learn its ID by name.
            where = await find_channel(client, channel)
            if where is None:
                log.warning(
                    "cannot check %s for an earlier post of %s: channel ID unknown", channel, key
                )
                return None
            await store.write(remember_channel(channel, {"channel": where}))
        return await find_posted(client, where, key, row.created_at, thread)

    async def keyed_message(row: Row) -> Record:
        # Posted the first time, edited after.
        m = KeyedMessage.from_row(row.payload)
        where = await store.read(lambda db: slackdb.message_ts(db, m.key))
        if where is None:
            found = await already_posted(row, m.channel, m.key, None)
            if found:
                cid = await store.read(lambda db: channel_id(db, m.channel))
                seen = (str(cid), found)
                await store.write(lambda db: _store_ts(db, m.key, seen))
                where = seen
        if where:
            await call(
                client, "chat.update", channel=where[0], ts=where[1], text=m.text, blocks=m.blocks
            )
            return lambda db: None
        answer = await call(
            client,
            "chat.postMessage",
            channel=m.channel,
            text=m.text,
            blocks=m.blocks,
            unfurl_links=False,
            metadata=tag(m.key),
        )
        remember = remember_channel(m.channel, answer)
        posted = (answer["channel"], answer["ts"])

        def record(db: Database) -> None:
            _store_ts(db, m.key, posted)
            remember(db)

        return record

    async def thread_reply(row: Row) -> Record | None:
        r = ThreadReply.from_row(row.payload, row.lane)
        where = await thread_of(store, r.parent_key)
        key = f"outbox:{row.id}"
        if await already_posted(row, where[0], key, where[1]):
            return None
        await call(
            client,
            "chat.postMessage",
            channel=where[0],
            thread_ts=where[1],
            text=r.text,
            blocks=r.blocks,
            reply_broadcast=r.broadcast,
            unfurl_links=False,
            metadata=tag(key),
        )
        return None

    async def post(row: Row) -> Record | None:
        a = Announcement.from_row(row.payload)
        key = f"outbox:{row.id}"
        if await already_posted(row, a.channel, key, None):
            return None
        answer = await call(
            client, "chat.postMessage", channel=a.channel, text=a.text, metadata=tag(key)
        )
        return remember_channel(a.channel, answer)

    async def ephemeral(row: Row) -> Record | None:
        # An ephemeral answer posted twice is seen by one person, and only for a moment.
        e = Ephemeral.from_row(row.payload)
        await call(client, "chat.postEphemeral", channel=e.channel, user=e.user, text=e.text)
        return None

    return {
        KeyedMessage.method: keyed_message,
        ThreadReply.method: thread_reply,
        Announcement.method: post,
        Ephemeral.method: ephemeral,
    }


def _store_ts(db: Database, key: str, where: tuple[str, str]) -> None:
    slackdb.remember_message(db, key, where[0], where[1], time.time())
