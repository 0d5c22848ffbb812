"""A fake GitHub REST API for the operations promobot calls, checked against GitHub's contract.

Requests are matched to contracts/github-rest-subset.json (compiled once): an
unknown route is a 404, a body missing a required field or with a wrong type a
422, a bad credential a 401, as on GitHub. It records every call, plays
scripted failures, keeps the App's webhook deliveries, and tells its listeners
about every call it carried out.
"""

import asyncio
import itertools
import json
import re
import time
from functools import cache
from typing import Any

import jwt
from aiohttp import web

from bot.dev.fakes.hooks import HookDeliveries
from bot.dev.fakes.recorder import Call, Recorder, contract
from bot.dev.payloads import iso

TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "array": list,
    "object": dict,
}
Operation = tuple[str, re.Pattern[str], str, dict[str, Any]]


@cache
def operations() -> tuple[Operation, ...]:
    """Return (verb, path pattern, key, operation) for every operation in the contract."""
    found = []
    for key, op in contract("github-rest-subset.json").items():
        verb, template = key.split(" ", 1)
        pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template)
        found.append((verb, re.compile(f"^{pattern}$"), key, op))
    return tuple(found)


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    """Say whether a value fits a JSON schema's type, nullability and enum."""
    if "oneOf" in schema:
        return any(_type_ok(value, s) for s in schema["oneOf"])
    if value is None:
        return bool(schema.get("nullable"))
    kind = schema.get("type")
    if kind in TYPES and not isinstance(value, TYPES[kind]):
        return False
    if kind == "integer" and isinstance(value, bool):
        return False
    return not ("enum" in schema and value not in schema["enum"])


class FakeGitHub(Recorder):
    """GitHub's REST API for the operations promobot calls, validated against the contract."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix  # where it is mounted: dev mode serves it under /dev/github
        self.operations = operations()
        self.installations: dict[str, int] = {}  # installation token -> installation ID
        self.deployments: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.tokens_minted = 0
        self._ids = itertools.count(1001)
        self.hooks = HookDeliveries()
        # Codes GitHub handed out at the end of a manifest flow: each is good for one exchange.
        self.manifest_codes: set[str] = set()
        conversion = contract("github-rest-subset.json")["POST /app-manifests/{code}/conversions"]
        self.created_app: dict[str, Any] = conversion["responses"]["201"]["example"]

    def app(self) -> web.Application:
        """Return the aiohttp application serving every route under /."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def match(self, verb: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """Return the contract's key and operation for a request, or None (GitHub's 404)."""
        for op_verb, pattern, key, op in self.operations:
            if op_verb == verb and pattern.match(path):
                return key, op
        return None

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one REST call as GitHub would, or as a scripted failure says."""
        path = request.path.removeprefix(self.prefix)
        found = self.match(request.method, path)
        text = await request.text()
        body = json.loads(text) if text else {}
        key = found[0] if found else f"{request.method} {path}"
        call = self.record(key, request, body)
        call.path = path
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        scripted = self.scripted(key)
        if scripted is not None:
            return scripted
        refused = self.refuse_auth(key, request.headers.get("Authorization", ""))
        if refused is not None:
            return refused
        problems = validate(found[1].get("requestBody"), body)
        if problems:
            return web.json_response(
                {"message": "Validation Failed", "errors": problems}, status=422
            )
        if key == "GET /app/hook/deliveries":
            response = self.hooks.listing(request)
        elif key == "POST /app/hook/deliveries/{delivery_id}/attempts":
            response = self.hooks.redeliver(path.split("/")[4])
        else:
            status, answer = self.answer(key, path, body, request.query)
            if status < 300:
                await self.tell(call, answer)
            response = web.json_response(answer, status=status)
        # A failure scripted `after` lets the call take effect, then loses its answer.
        queue = self.failures.get(key)
        if queue and queue[0].after and queue[0].delay:
            await asyncio.sleep(queue[0].delay)
        return self.scripted(key, after=True) or response

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

    def answer(self, key: str, path: str, body: dict[str, Any], query: Any) -> tuple[int, Any]:
        """Do a call's work; return GitHub's status and answer."""
        if key == "POST /app/installations/{installation_id}/access_tokens":
            self.tokens_minted += 1
            token = f"ghs_fake{self.tokens_minted:032d}"
            self.installations[token] = int(path.split("/")[3])
            expires = iso(time.time() + 3600)
            return 201, {"token": token, "expires_at": expires}
        if key == "POST /repos/{owner}/{repo}/deployments":
            deployment_id = next(self._ids)
            self.deployments[deployment_id] = {"id": deployment_id, **body, "path": path}
            return 201, deployment(deployment_id, path.split("/")[2:4], body)
        if key == "POST /app-manifests/{code}/conversions":
            code = path.split("/")[2]
            if code not in self.manifest_codes:
                return 404, {"message": "Not Found"}
            self.manifest_codes.discard(code)
            return 201, self.created_app
        if key == "GET /repos/{owner}/{repo}/deployments":
            return 200, self.list_deployments(path, query or {})
        if key == "POST /repos/{owner}/{repo}/statuses/{sha}":
            status = {"id": next(self._ids), "sha": path.rsplit("/", 1)[-1], **body}
            self.statuses.append(status)
            return 201, status
        if key.startswith("GET "):  # nothing kept to read back: GitHub's own example answer
            return 200, contract("github-rest-subset.json")[key]["responses"]["200"]["example"]
        now = iso(time.time())
        return 201, {"id": next(self._ids), **body, "created_at": now, "updated_at": now}

    def installation_of(self, call: Call) -> int | None:
        """Return the installation whose token made a call (None for the App's own calls)."""
        scheme, _, token = call.headers.get("Authorization", "").partition(" ")
        return self.installations.get(token) if scheme == "token" else None

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


def deployment(deployment_id: int, repo: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """Shape a new Deployment the way GitHub answers its creation (every field it sends)."""
    full_name, now = "/".join(repo), iso(time.time())
    api = f"https://api.github.com/repos/{full_name}/deployments/{deployment_id}"
    environment = body.get("environment", "production")
    return {
        "id": deployment_id,
        "node_id": f"DE_fake{deployment_id}",
        "url": api,
        "sha": body["ref"],
        "ref": body["ref"],
        "task": body.get("task", "deploy"),
        "payload": body.get("payload") or {},
        "environment": environment,
        "original_environment": environment,
        "description": body.get("description"),
        "production_environment": bool(body.get("production_environment")),
        "transient_environment": False,
        "creator": {"login": "promobot[bot]", "type": "Bot"},
        "created_at": now,
        "updated_at": now,
        "statuses_url": f"{api}/statuses",
        "repository_url": f"https://api.github.com/repos/{full_name}",
        "performed_via_github_app": None,
    }


def validate(schema: dict[str, Any] | None, body: dict[str, Any]) -> list[str]:
    """Return what GitHub would say is wrong with a request body (nothing when it is fine)."""
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
