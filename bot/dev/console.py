"""Dev mode's Slack: what the fake Slack took, rendered readably on the console and stored.

The relay's real Slack senders post to the fake Slack served by the dev server
itself, so everything up to and including the Slack call (the outbox,
coalescing, ordering, the thread waiting for its parent, Slack's refusals)
runs as in production; the fake's listener shows each message here.
"""

import hashlib
import html
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from bot.core.channels import CHANNEL_ID
from bot.dev.fakes import Call, FakeSlack
from bot.dev.fakes.recorder import Listener
from bot.dev.fakes.slack import tagged_key
from storage import Store
from storage import dev as devstore

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
    if CHANNEL_ID.match(channel):
        return channel
    return "CDEV" + hashlib.sha1(channel.encode()).hexdigest()[:7].upper()


class Console:
    """Prints messages readably, people by name."""

    def __init__(
        self, write: Callable[[str], Any] | None = None, names: Mapping[str, str] | None = None
    ) -> None:
        self.write = write or _stdout
        self.names = dict(names or {})  # people shown by name, not by Slack ID

    def show(self, heading: str, lines: list[str], *, indent: str = "") -> None:
        """Print one message under its heading."""
        out = [f"{indent}{RULE * 2} {heading} {RULE * max(2, 60 - len(heading))}"]
        out += [f"{indent}  {line}" for line in lines]
        self.write("\n".join(out) + "\n")


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def slack_listener(
    console: Console, slack: FakeSlack, store: Store, clock: Callable[[], float]
) -> Listener:
    """Build the fake Slack's listener that prints each message it took and stores it."""

    async def heard(call: Call, answer: Any) -> None:
        shown = _shown(call, answer, slack, console.names)
        if shown is None:
            return
        heading, indent, row = shown
        text, blocks = str(call.body.get("text") or ""), _blocks(call.body)
        console.show(heading, render(text, blocks, console.names), indent=indent)
        now = clock()
        await store.write(
            lambda db: devstore.add_message(db, at=now, text=text, blocks=blocks, **row)
        )

    return heard


def _shown(
    call: Call, answer: Any, slack: FakeSlack, names: Mapping[str, str]
) -> tuple[str, str, dict[str, Any]] | None:
    """Return the heading, indent and stored fields of a message the fake took (None: not one)."""
    body = call.body
    channel = str(body.get("channel") or "")
    if call.method == "chat.postMessage" and body.get("thread_ts"):
        where, parent = answer["channel"], str(body["thread_ts"])
        key = slack.key_of(where, parent)
        also = " (also sent to the channel)" if body.get("reply_broadcast") else ""
        row = {"kind": "reply", "key": key, "channel": where, "ts": answer["ts"]}
        return f"↳ thread of {key}{also}", "    ", {**row, "thread_ts": parent}
    if call.method == "chat.postMessage":
        key = tagged_key(body.get("metadata"))
        # The relay tags a keyed message with its key, a one-off post with outbox:<row id>.
        if key and not key.startswith("outbox:"):
            row = {"kind": "post", "key": key, "channel": channel, "ts": answer["ts"]}
            return f"{channel} · new message ({key})", "", row
        return channel, "", {"kind": "plain", "channel": channel, "ts": answer["ts"]}
    if call.method == "chat.update":
        key, name = slack.key_of(channel, str(body["ts"])), slack.channel_name(channel)
        row = {"kind": "edit", "key": key, "channel": name, "ts": body["ts"]}
        return f"{name} · edited ({key})", "", row
    if call.method == "chat.postEphemeral":
        user = str(body.get("user") or "")
        row = {"kind": "ephemeral", "channel": channel, "user_id": user}
        return f"{channel} · only {names.get(user, user)} sees this", "", row
    if call.method == "response_url":
        who = (
            "everyone in the channel" if body.get("response_type") == "in_channel" else "the sender"
        )
        return f"reply seen by {who}", "", {"kind": "response", "channel": "response_url"}
    return None


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Return a message's blocks, sent as a list or (form-encoded) as JSON text."""
    blocks = body.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks or "null")
    return blocks if isinstance(blocks, list) else None
