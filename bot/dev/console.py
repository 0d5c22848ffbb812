"""Dev mode's Slack: messages rendered readably on the console and stored, never sent.

The relay's Slack senders are replaced by these, so everything up to the
Slack call (the outbox, coalescing, ordering, the thread waiting for its
parent) runs as in production; only the last hop differs.
"""

import hashlib
import html
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlite_utils import Database

from bot.engine.relay import Record, Row, Sender
from bot.engine.slack import thread_of
from bot.pipeline.outbox import Announcement, Ephemeral, KeyedMessage, ThreadReply
from storage import Store
from storage import dev as devstore
from storage import slack as slackdb

LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>|<([^<>]+)>")
EMOJI = {
    ":lock:": "🔒",
    ":unlock:": "🔓",
    ":rewind:": "⏪",
    ":rocket:": "🚀",
    ":white_check_mark:": "✅",
    ":x:": "❌",
    ":warning:": "⚠️",
    ":no_entry:": "⛔",
    ":hourglass:": "⌛",
    ":hourglass_flowing_sand:": "⏳",
    ":snowflake:": "❄️",
    ":construction:": "🚧",
    ":raised_hand:": "✋",
    ":+1:": "👍",
    ":thumbsup:": "👍",
    ":rotating_light:": "🚨",
    ":mag:": "🔍",
    ":sunny:": "☀️",
}
SHORTCODE = re.compile(r":[a-z0-9_+-]+:")
RULE = "─"


def plain(mrkdwn: str, names: Mapping[str, str] | None = None) -> str:
    """Turn Slack mrkdwn into console text: links show their label, people their name."""

    def label(match: re.Match[str]) -> str:
        if match.group(2):
            return match.group(2)
        target = match.group(3)
        if target.startswith(("@", "!subteam^")):
            who = target.rpartition("^")[2].lstrip("@")
            return "@" + (names or {}).get(who, who)
        return "@" + target[1:] if target.startswith("!") else target.lstrip("#")

    text = SHORTCODE.sub(lambda m: EMOJI.get(m.group(0), m.group(0)), LINK.sub(label, mrkdwn))
    return html.unescape(text)


def block_lines(block: dict[str, Any], names: Mapping[str, str] | None = None) -> list[str]:
    """Render one Block Kit block as console lines."""

    def text_of(obj: Any) -> str:
        return plain(obj.get("text", ""), names) if isinstance(obj, dict) else ""

    kind = block.get("type")
    if kind == "divider":
        return [RULE * 20]
    if kind == "actions":
        return ["  ".join(f"[{text_of(e.get('text'))}]" for e in block.get("elements", []))]
    if kind == "context":
        return [" · ".join(text_of(e) for e in block.get("elements", []) if text_of(e))]
    lines = text_of(block.get("text")).splitlines()
    lines += [text_of(f) for f in block.get("fields") or []]
    accessory = block.get("accessory") or {}
    if accessory.get("type") == "button":
        lines.append(f"[{text_of(accessory.get('text'))}]")
    return lines


def render(
    text: str, blocks: list[dict[str, Any]] | None, names: Mapping[str, str] | None = None
) -> list[str]:
    """Render a message as Slack would show it: its blocks, else its text; people by name."""
    if blocks:
        lines = [line for block in blocks for line in block_lines(block, names)]
        if any(line.strip() for line in lines):
            return lines
    return plain(text or "", names).splitlines() or [""]


def fake_channel_id(channel: str) -> str:
    """Return a stable, Slack-looking channel ID for a channel name (an ID stays as it is)."""
    if re.match(r"^[CGD][A-Z0-9]{6,}$", channel):
        return channel
    return "CDEV" + hashlib.sha1(channel.encode()).hexdigest()[:7].upper()


class Console:
    """Prints messages readably and makes the fake timestamps Slack would have given."""

    def __init__(
        self, write: Callable[[str], Any] | None = None, names: Mapping[str, str] | None = None
    ) -> None:
        self.write = write or _stdout
        self.names = dict(names or {})  # people shown by name, not by Slack ID
        self._last_ts = 0.0

    def ts(self) -> str:
        """Return a new message timestamp, unique and increasing like Slack's."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def show(self, heading: str, lines: list[str], *, indent: str = "") -> None:
        """Print one message under its heading."""
        out = [f"{indent}{RULE * 2} {heading} {RULE * max(2, 60 - len(heading))}"]
        out += [f"{indent}  {line}" for line in lines]
        self.write("\n".join(out) + "\n")


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def console_senders(
    console: Console, store: Store, clock: Callable[[], float]
) -> dict[str, Sender]:
    """Build the relay's Slack senders that print and store instead of calling Slack."""

    async def keyed_message(row: Row) -> Record:
        m = KeyedMessage.from_row(row.payload)
        where = await store.read(lambda db: slackdb.message_ts(db, m.key))
        lines, now = render(m.text, m.blocks, console.names), clock()
        if where:
            console.show(f"{m.channel} · edited ({m.key})", lines)
            return _store("edit", m.key, m.channel, where[1], m.text, m.blocks, at=now)
        ts, channel_id = console.ts(), fake_channel_id(m.channel)
        console.show(f"{m.channel} · new message ({m.key})", lines)

        def record(db: Database) -> None:
            devstore.remember_keyed_message(db, key=m.key, channel_id=channel_id, ts=ts, at=now)
            _store("post", m.key, m.channel, ts, m.text, m.blocks, at=now)(db)

        return record

    async def thread_reply(row: Row) -> Record:
        r = ThreadReply.from_row(row.payload, row.lane)
        where = await thread_of(store, r.parent_key)
        also = " (also sent to the channel)" if r.broadcast else ""
        heading = f"↳ thread of {r.parent_key}{also}"
        console.show(heading, render(r.text, r.blocks, console.names), indent="    ")
        return _store(
            "reply", r.parent_key, where[0], console.ts(), r.text, r.blocks, at=clock(),
            thread_ts=where[1],
        )  # fmt: skip

    async def announcement(row: Row) -> Record:
        a = Announcement.from_row(row.payload)
        console.show(a.channel, render(a.text, None, console.names))
        return _store("plain", None, a.channel, console.ts(), a.text, None, at=clock())

    async def ephemeral(row: Row) -> Record:
        e = Ephemeral.from_row(row.payload)
        user = console.names.get(e.user, e.user)
        console.show(f"{e.channel} · only {user} sees this", render(e.text, None, console.names))
        return _store(
            "ephemeral", None, e.channel, console.ts(), e.text, None, at=clock(), user_id=e.user
        )

    return {
        KeyedMessage.method: keyed_message,
        ThreadReply.method: thread_reply,
        Announcement.method: announcement,
        Ephemeral.method: ephemeral,
    }


def _store(
    kind: str,
    key: str | None,
    channel: str,
    ts: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    *,
    at: float,
    thread_ts: str | None = None,
    user_id: str | None = None,
) -> Record:
    def record(db: Database) -> None:
        devstore.add_message(
            db,
            at=at,
            kind=kind,
            key=key,
            channel=channel,
            ts=ts,
            thread_ts=thread_ts,
            user_id=user_id,
            text=text,
            blocks=blocks,
        )

    return record
