"""A fake Slack Web API: answers chat.*, views.open, users and user groups as Slack would.

It checks each call against the contract in contracts/slack-web-subset.json (the
arguments Slack requires) and against Block Kit's limits, so a call Slack would
refuse is refused here too. It records every call, plays scripted failures, and
tells its listeners about every call it carried out.
"""

import asyncio
import json
import time
from functools import cache
from typing import Any

from aiohttp import web

from bot.dev.fakes.recorder import Call, Recorder, contract


def tagged_key(metadata: Any) -> str | None:
    """Return the `key` of a message's metadata payload (sent as an object or as JSON text)."""
    if isinstance(metadata, str):
        metadata = json.loads(metadata or "null")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    key = payload.get("key") if isinstance(payload, dict) else None
    return str(key) if key else None


@cache
def required_arguments() -> dict[str, frozenset[str]]:
    """Return, per Slack method, the arguments it refuses to go without (read once)."""
    return {
        name.strip("/"): frozenset(
            p["name"]
            for p in op[next(iter(op))]["parameters"]
            if p.get("required") and p["name"] != "token"
        )
        for name, op in contract("slack-web-subset.json").items()
    }


class FakeSlack(Recorder):
    """Slack's Web API: chat.*, views.open, usergroups.users.list, users.info, auth.test."""

    TOKEN = "xoxb-test-token"

    def __init__(self, channels: dict[str, str] | None = None, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token  # the bot token it takes; any other is not_authed
        self.required = required_arguments()
        # Channel name -> ID: the channels the bot was invited to (app.yaml's, by default).
        self.channels = channels or {"#releases": "C0RELEASES", "#mingle-releases": "C0MINGLE"}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        # users.info: user ID -> display name (as the profile's display_name)
        self.users: dict[str, str] = {}
        self.anyone = False  # when set, users.info knows every U… ID, named after it
        self.team_id = "T111"  # the workspace auth.test names
        self._last_ts = 0.0
        self.views: list[dict[str, Any]] = []  # modals opened with views.open
        # Seconds between doing a call's work and answering it, as a slow network would.
        self.latency = 0.0
        self.delays: dict[str, float] = {}  # the same, for one method only

    def app(self) -> web.Application:
        """Return the aiohttp application serving /api/<method>."""
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app

    async def respond(self, request: web.Request) -> web.Response:
        """Take a message posted to a command's response_url, as Slack does (no token needed)."""
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return web.Response(status=400, text="no_text")
        call = self.record("response_url", request, body)
        await self.tell(call, {"ok": True})
        return web.Response(text="ok")

    def channel_name(self, channel_id: str) -> str:
        """Return the name of a channel the fake knows by ID (the ID itself if it knows none)."""
        return next((n for n, i in self.channels.items() if i == channel_id), channel_id)

    def key_of(self, channel_id: str, ts: str | None) -> str | None:
        """Return the key promobot tagged a message with (its metadata), if it did."""
        message = self.messages.get((channel_id, ts or ""))
        return tagged_key(message.get("metadata") if message else None)

    def knows(self, channel_id: str, ts: str, key: str) -> None:
        """Know a message posted before this fake started (tagged `key`), so it can be edited."""
        metadata = {"event_type": "promobot_message", "event_payload": {"key": key}}
        message = {"text": None, "blocks": None, "thread_ts": None, "metadata": metadata}
        self.messages[(channel_id, ts)] = {**message, "reply_broadcast": None, "edits": 0}

    def channel_id(self, channel: str) -> str | None:
        """Return the ID of a channel given by name (with or without #) or ID; None if unknown."""
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel) or self.channels.get(f"#{channel}")

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one Web API call as Slack would, or as a scripted failure says."""
        method = request.match_info["method"]
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        call = self.record(method, request, body)
        scripted = self.scripted(method)
        if scripted is not None:
            return scripted
        answer = self.answer(method, body, request.headers.get("Authorization"))
        if self.latency or method in self.delays:
            await asyncio.sleep(self.latency + self.delays.get(method, 0.0))
        if answer.get("ok"):
            await self.tell(call, answer)
        return self.scripted(method, after=True) or web.json_response(answer)

    def answer(self, method: str, body: dict[str, Any], auth: str | None) -> dict[str, Any]:
        """Do a call's work and return Slack's answer, or the error Slack would give."""
        if auth != f"Bearer {self.token}":
            return {"ok": False, "error": "not_authed"}
        missing = self.required.get(method, frozenset()) - {k for k, v in body.items() if v}
        if missing:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": sorted(missing)},
            }
        refused = self.refuse_oversized(body)
        if refused:
            return {"ok": False, "error": refused}
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        answer: dict[str, Any] = handler(body)
        return answer

    @staticmethod
    def refuse_oversized(body: dict) -> str | None:
        """Refuse a message over Block Kit's limits as Slack does (msg_too_long, invalid_blocks)."""
        if len(str(body.get("text") or "")) > 40_000:
            return "msg_too_long"
        blocks = body.get("blocks")
        if isinstance(blocks, str):  # form-encoded calls carry blocks as JSON text
            blocks = json.loads(blocks)
        if not isinstance(blocks, list):
            return None
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            texts = [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
            limit = 150 if block.get("type") == "header" else 3000
            if any(len(str(t.get("text") or "")) > limit for t in texts if isinstance(t, dict)):
                return "invalid_blocks"
        return None

    def m_auth_test(self, body: dict) -> dict:
        return {
            "ok": True,
            "team": "Test",
            "team_id": self.team_id,
            "user_id": "U0BOT",
            "bot_id": "B1",
        }

    def m_chat_postMessage(self, body: dict) -> dict:
        channel = self.channel_id(body["channel"])
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        thread = body.get("thread_ts")
        if thread and (channel, thread) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        self._last_ts = max(self._last_ts + 0.000001, time.time())
        ts = f"{self._last_ts:.6f}"
        message = {
            "text": body.get("text"),
            "blocks": body.get("blocks"),
            "thread_ts": thread,
            "reply_broadcast": body.get("reply_broadcast"),
            "metadata": body.get("metadata"),
            "edits": 0,
        }
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text")}}

    def m_chat_update(self, body: dict) -> dict:
        # Like Slack: chat.update needs the channel *ID*, not a name.
        channel = body["channel"]
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        message = self.messages.get((channel, body["ts"]))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update(text=body.get("text"), blocks=body.get("blocks"))
        message["edits"] += 1
        return {"ok": True, "channel": channel, "ts": body["ts"], "text": body.get("text")}

    def m_conversations_list(self, body: dict) -> dict:
        channels = [
            {"id": cid, "name": name.lstrip("#"), "is_archived": False}
            for name, cid in self.channels.items()
        ]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def m_conversations_history(self, body: dict) -> dict:
        return self._listing(body, thread=None)

    def m_conversations_replies(self, body: dict) -> dict:
        return self._listing(body, thread=body.get("ts"))

    def _listing(self, body: dict, thread: str | None) -> dict:
        channel = body["channel"]
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(body.get("oldest") or 0)
        found = []
        for (where, ts), message in self.messages.items():
            if where != channel or float(ts) <= oldest or message["thread_ts"] != thread:
                continue
            entry = {"type": "message", "ts": ts, "text": message["text"]}
            if body.get("include_all_metadata") and message.get("metadata"):
                entry["metadata"] = message["metadata"]
            found.append(entry)
        found.sort(key=lambda m: m["ts"], reverse=True)  # newest first, as Slack lists them
        return {"ok": True, "messages": found[: int(body.get("limit") or 100)]}

    def m_chat_postEphemeral(self, body: dict) -> dict:
        if self.channel_id(body["channel"]) is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": f"{time.time():.6f}"}

    def m_views_open(self, body: dict) -> dict:
        view = body["view"] if isinstance(body["view"], dict) else json.loads(body["view"])
        if not view.get("title") or not view.get("blocks"):
            return {"ok": False, "error": "invalid_arguments"}
        self.views.append(view)
        return {"ok": True, "view": {"id": f"V{len(self.views)}", **view}}

    def m_usergroups_users_list(self, body: dict) -> dict:
        group = body["usergroup"]
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.usergroups[group]}

    def m_users_info(self, body: dict) -> dict:
        user = str(body.get("user", ""))
        if user not in self.users and not (self.anyone and user.startswith("U")):
            return {"ok": False, "error": "user_not_found"}
        name = self.users.get(user) or user.lower()
        profile = {"display_name": name, "real_name": name.title()}
        return {"ok": True, "user": {"id": user, "name": name.lower(), "profile": profile}}

    def posts(self, channel: str | None = None) -> list[Call]:
        """Return chat.postMessage calls that created a parent message (not thread replies)."""
        return [
            c
            for c in self.of("chat.postMessage")
            if not c.body.get("thread_ts") and (channel is None or c.body["channel"] == channel)
        ]
