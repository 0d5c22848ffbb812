"""Fake Slack Web API and fake GitHub REST API: small aiohttp apps that answer like the real ones.

Both record every call. Both check requests against the contracts in
tests/fixtures/contracts (required fields, types, enums), so a call the real
API would refuse is refused here too. Failures can be scripted per method.
"""

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from tests.fake_hooks import HookDeliveries

CONTRACTS = Path(__file__).parent / "fixtures" / "contracts"


@dataclass
class Call:
    method: str  # Slack method name, or "POST /repos/{owner}/{repo}/deployments"
    path: str
    body: dict[str, Any]
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int
    after: bool = False
    delay: float = 0.0  # seconds between doing the work and the lost answer


class Recorder:
    """Shared by both fakes: the calls received and the failures still to play."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, list[Failure]] = {}

    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        headers: dict | None = None,
        body: dict | None = None,
        after: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` calls of `method` with `status`.

        With `after`, the call takes effect first and only its answer is lost,
        as when a connection drops after the remote did the work; `delay` holds
        that answer back (past a client's timeout, or until the client is killed).
        """
        self.failures.setdefault(method, []).append(
            Failure(status, headers or {}, body or {}, times, after, delay)
        )

    def scripted(self, method: str, *, after: bool = False) -> web.Response | None:
        queue = self.failures.get(method)
        if not queue or queue[0].after != after:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return web.json_response(failure.body, status=failure.status, headers=failure.headers)

    def of(self, method: str) -> list[Call]:
        """Return the calls of one method, in order."""
        return [c for c in self.calls if c.method == method]


class FakeSlack(Recorder):
    """Slack's Web API: chat.*, views.open, usergroups.users.list, users.info, auth.test."""

    TOKEN = "xoxb-test-token"

    def __init__(self) -> None:
        super().__init__()
        spec = json.loads((CONTRACTS / "slack-web-subset.json").read_text())["operations"]
        self.required = {
            name.strip("/"): {
                p["name"]
                for p in op[next(iter(op))]["parameters"]
                if p.get("required") and p["name"] != "token"
            }
            for name, op in spec.items()
        }
        self.channels = {"#releases": "C0RELEASES", "#mingle-releases": "C0MINGLE"}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        # users.info: user ID -> display name (as the profile's display_name)
        self.users: dict[str, str] = {}
        self._last_ts = 0.0
        self.views: list[dict[str, Any]] = []  # modals opened with views.open
        # Seconds between doing a call's work and answering it, as a slow network would.
        self.latency = 0.0
        self.delays: dict[str, float] = {}  # the same, for one method only

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app

    def channel_id(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel) or self.channels.get(f"#{channel}")

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        self.calls.append(Call(method, request.path, body, time.time(), dict(request.headers)))
        scripted = self.scripted(method)
        if scripted is not None:
            return scripted
        if request.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            return web.json_response({"ok": False, "error": "not_authed"})
        missing = self.required.get(method, set()) - {k for k, v in body.items() if v}
        if missing:
            return web.json_response(
                {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": sorted(missing)},
                }
            )
        refused = self.refuse_oversized(body)
        if refused:
            return web.json_response({"ok": False, "error": refused})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer = handler(body)
        if self.latency or method in self.delays:
            await asyncio.sleep(self.latency + self.delays.get(method, 0.0))
        return self.scripted(method, after=True) or web.json_response(answer)

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
        return {"ok": True, "team": "Test", "team_id": "T111", "user_id": "U0BOT", "bot_id": "B1"}

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
        user = body.get("user", "")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        name = self.users[user]
        profile = {"display_name": name, "real_name": name.title()}
        return {"ok": True, "user": {"id": user, "name": name.lower(), "profile": profile}}

    def posts(self, channel: str | None = None) -> list[Call]:
        """Return chat.postMessage calls that created a parent message (not thread replies)."""
        return [
            c
            for c in self.of("chat.postMessage")
            if not c.body.get("thread_ts") and (channel is None or c.body["channel"] == channel)
        ]


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if "oneOf" in schema:
        return any(_type_ok(value, s) for s in schema["oneOf"])
    if value is None:
        return bool(schema.get("nullable"))
    kind = schema.get("type")
    checks = {
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
        "array": list,
        "object": dict,
    }
    if kind in checks and not isinstance(value, checks[kind]):
        return False
    if kind == "integer" and isinstance(value, bool):
        return False
    return not ("enum" in schema and value not in schema["enum"])


class FakeGitHub(Recorder):
    """GitHub's REST API for the operations promobot calls, validated against the contract."""

    def __init__(self) -> None:
        super().__init__()
        spec = json.loads((CONTRACTS / "github-rest-subset.json").read_text())["operations"]
        self.operations = []
        for key, op in spec.items():
            verb, template = key.split(" ", 1)
            pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template)
            self.operations.append((verb, re.compile(f"^{pattern}$"), key, op))
        self.deployments: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.tokens_minted = 0
        self._ids = itertools.count(1001)
        self.hooks = HookDeliveries()
        # Codes GitHub handed out at the end of a manifest flow: each is good for one exchange.
        self.manifest_codes: set[str] = set()
        self.created_app = spec["POST /app-manifests/{code}/conversions"]["responses"]["201"][
            "example"
        ]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def match(self, verb: str, path: str) -> tuple[str, dict] | None:
        for op_verb, pattern, key, op in self.operations:
            if op_verb == verb and pattern.match(path):
                return key, op
        return None

    async def handle(self, request: web.Request) -> web.Response:
        found = self.match(request.method, request.path)
        text = await request.text()
        body = json.loads(text) if text else {}
        key = found[0] if found else f"{request.method} {request.path}"
        self.calls.append(Call(key, request.path, body, time.time(), dict(request.headers)))
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        scripted = self.scripted(key)
        if scripted is not None:
            return scripted
        refused = self.refuse_auth(key, request.headers.get("Authorization", ""))
        if refused is not None:
            return refused
        problems = self.validate(found[1].get("requestBody"), body)
        if problems:
            return web.json_response(
                {"message": "Validation Failed", "errors": problems}, status=422
            )
        if key == "GET /app/hook/deliveries":
            answer = self.hooks.listing(request)
        elif key == "POST /app/hook/deliveries/{delivery_id}/attempts":
            answer = self.hooks.redeliver(request.path.split("/")[4])
        else:
            answer = self.answer(key, request.path, body, request.query)
        # A failure scripted `after` lets the call take effect, then loses its answer.
        queue = self.failures.get(key)
        if queue and queue[0].after and queue[0].delay:
            await asyncio.sleep(queue[0].delay)
        return self.scripted(key, after=True) or answer

    @staticmethod
    def refuse_auth(key: str, auth: str) -> web.Response | None:
        """Refuse as GitHub does: /app/ takes the App's JWT (10 min at most), the rest a token."""
        if key.startswith("POST /app-manifests/"):
            return None  # the code itself is the credential
        if " /app/" in key:
            scheme, _, token = auth.partition(" ")
            try:
                claims = jwt.decode(token, options={"verify_signature": False})
            except jwt.PyJWTError:
                claims = {}
            expires = float(claims.get("exp", 0)) - time.time()
            if scheme != "Bearer" or not claims.get("iss") or not 0 < expires <= 600:
                return web.json_response(
                    {"message": "A JSON web token could not be decoded"}, status=401
                )
            return None
        if not auth.startswith("token ghs_"):
            return web.json_response({"message": "Bad credentials"}, status=401)
        return None

    def validate(self, schema: dict | None, body: dict) -> list[str]:
        if not schema:
            return []
        props = schema.get("properties", {})
        problems = [f"{name} is missing" for name in schema.get("required", []) if name not in body]
        problems += [
            f"{name} has the wrong type"
            for name, value in body.items()
            if name in props and not _type_ok(value, props[name])
        ]
        return problems

    def answer(self, key: str, path: str, body: dict, query: Any = None) -> web.Response:
        if key == "POST /app/installations/{installation_id}/access_tokens":
            self.tokens_minted += 1
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            return web.json_response(
                {"token": f"ghs_fake{self.tokens_minted:032d}", "expires_at": expires}, status=201
            )
        if key == "POST /repos/{owner}/{repo}/deployments":
            deployment_id = next(self._ids)
            self.deployments[deployment_id] = {"id": deployment_id, **body, "path": path}
            return web.json_response(
                {
                    "id": deployment_id,
                    "ref": body["ref"],
                    "sha": body["ref"],
                    "environment": body.get("environment", "production"),
                    "payload": body.get("payload", {}),
                },
                status=201,
            )
        if key == "POST /app-manifests/{code}/conversions":
            code = path.split("/")[2]
            if code not in self.manifest_codes:
                return web.json_response({"message": "Not Found"}, status=404)
            self.manifest_codes.discard(code)
            return web.json_response(self.created_app, status=201)
        if key == "GET /repos/{owner}/{repo}/deployments":
            return web.json_response(self.list_deployments(path, query or {}))
        if key == "POST /repos/{owner}/{repo}/statuses/{sha}":
            status = {"id": next(self._ids), "sha": path.rsplit("/", 1)[-1], **body}
            self.statuses.append(status)
            return web.json_response(status, status=201)
        return web.json_response({"id": next(self._ids), **body}, status=201)

    def list_deployments(self, path: str, query: Any) -> list[dict[str, Any]]:
        """Return a repository's Deployments, newest first, filtered by sha and environment."""
        found = [
            {
                "id": d["id"],
                "sha": d["ref"],
                "ref": d["ref"],
                "environment": d.get("environment", "production"),
                "payload": d.get("payload", {}),
                "description": d.get("description"),
            }
            for d in self.deployments.values()
            if d["path"] == path
            and query.get("sha") in (None, d["ref"])
            and query.get("environment") in (None, d.get("environment", "production"))
        ]
        per_page = min(100, int(query.get("per_page", 30)))
        return sorted(found, key=lambda d: d["id"], reverse=True)[:per_page]
