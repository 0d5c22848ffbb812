"""GitHub App authentication and the REST calls promobot makes, mapped onto relay outcomes."""

import asyncio
import calendar
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from gidgethub import apps

from bot.core.retry_after import DEFAULT_RETRY_AFTER, retry_after_seconds
from bot.engine.relay import (
    Permanent,
    RetryAfter,
    Transient,
)
from bot.pipeline.outbox import GitHubRequest

# Renew an installation token this long before GitHub expires it (it lives 1 h).
TOKEN_MARGIN = 300.0
# Sign the App's JWT again after this long (it lives 10 min). While GitHub is unreachable each
# retry asks for a token again, and an RSA signature each time cost the processing process.
JWT_REUSE = 240.0


def parse_expiry(text: str) -> float:
    """Return epoch seconds of a GitHub timestamp like '2016-07-11T22:14:10Z'."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def wait_from_headers(headers: Any, now: float) -> float | None:
    """Return how long GitHub asked us to wait: retry-after, else x-ratelimit-reset."""
    if headers.get("retry-after"):
        return retry_after_seconds(headers["retry-after"], now)
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(1.0, float(headers["x-ratelimit-reset"]) - now)
        except ValueError:
            return DEFAULT_RETRY_AFTER
    return None


# A call's route, not its values: few label values for the metrics, nothing private.
ROUTE_PARTS = (
    (re.compile(r"\?.*$"), ""),
    (re.compile(r"^/repos/[^/]+/[^/]+"), "/repos/{owner}/{repo}"),
    (re.compile(r"/[0-9a-fA-F]{40}(?=/|$)"), "/{sha}"),
    (re.compile(r"/\d+(?=/|$)"), "/{id}"),
    (re.compile(r"/app-manifests/[^/]+"), "/app-manifests/{code}"),
)


def route(method: str, path: str) -> str:
    """Return `POST /repos/{owner}/{repo}/statuses/{sha}` for a call's method and path."""
    for pattern, replacement in ROUTE_PARTS:
        path = pattern.sub(replacement, path)
    return f"{method} {path}"


class GitHubClient:
    """Calls GitHub's REST API as the App's installation, caching each installation token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: str,
        private_key: str,
        api_url: str,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.timeout = timeout  # seconds for one whole call
        self.app_id = app_id
        self.private_key = private_key
        self.api_url = api_url.rstrip("/")
        self.clock = clock
        self._tokens: dict[int, tuple[str, float]] = {}
        self._jwt: tuple[str, float] | None = None  # and when it was signed (monotonic)
        self._token_locks: dict[int, asyncio.Lock] = {}
        # Told of every call (method and route, status): the metrics.
        self.on_call: Callable[[str, str], None] = lambda route, status: None

    async def installation_token(self, installation_id: int) -> str:
        """Return a valid token for the installation, minting one only when needed."""
        lock = self._token_locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - TOKEN_MARGIN > self.clock():
                return cached[0]
            answer = await self._call(
                "POST",
                f"/app/installations/{installation_id}/access_tokens",
                None,
                authorization=f"Bearer {self.app_jwt()}",
            )
            self._tokens[installation_id] = (answer["token"], parse_expiry(answer["expires_at"]))
            return answer["token"]

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None, *, installation_id: int
    ) -> Any:
        """Make one REST call as the installation; raise a relay outcome when it fails."""
        token = await self.installation_token(installation_id)
        return await self._call(method, path, body, authorization=f"token {token}")

    async def as_app(self, method: str, path: str, body: Any = None) -> tuple[Any, Any]:
        """Make one REST call as the App itself (JWT); return the answer and its headers."""
        return await self._exchange(method, path, body, authorization=f"Bearer {self.app_jwt()}")

    def app_jwt(self) -> str:
        """Return the App's JWT, signed again once it is a few minutes old."""
        now = time.monotonic()
        if self._jwt is None or now - self._jwt[1] > JWT_REUSE:
            self._jwt = (apps.get_jwt(app_id=self.app_id, private_key=self.private_key), now)
        return self._jwt[0]

    async def hook_deliveries(self, since: float, max_pages: int = 100) -> list[dict[str, Any]]:
        """Return the App's webhook delivery attempts back to `since`, newest first."""
        found: list[dict[str, Any]] = []
        path: str | None = "/app/hook/deliveries?per_page=100"
        for _ in range(max_pages):
            if path is None:
                break
            page, headers = await self.as_app("GET", path)
            found += page or []
            oldest = parse_expiry(page[-1]["delivered_at"]) if page else since
            path = next_page(headers.get("link", ""), self.api_url) if oldest >= since else None
        return [d for d in found if parse_expiry(d["delivered_at"]) >= since]

    async def convert_manifest(self, code: str) -> dict[str, Any]:
        """Exchange the manifest flow's code for the new App's id, key and webhook secret."""
        answer, _ = await self._exchange("POST", f"/app-manifests/{code}/conversions", None)
        return dict(answer)

    async def redeliver(self, hook_delivery_id: int) -> None:
        """Ask GitHub to deliver one recorded attempt again (answered 202, delivered later)."""
        await self.as_app("POST", f"/app/hook/deliveries/{int(hook_delivery_id)}/attempts")

    async def _call(self, method: str, path: str, body: Any, *, authorization: str) -> Any:
        return (await self._exchange(method, path, body, authorization=authorization))[0]

    async def _exchange(
        self, method: str, path: str, body: Any, *, authorization: str | None = None
    ) -> tuple[Any, Any]:
        headers = {
            "Accept": "application/vnd.github+json",
            "User-Agent": "promobot",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        if authorization:  # the manifest conversion is the one call made without
            headers["Authorization"] = authorization
        try:
            async with self.session.request(
                method,
                self.api_url + path,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                text = await response.text()
                status = response.status
                answer_headers = response.headers.copy()
                wait = wait_from_headers(response.headers, self.clock())
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.on_call(route(method, path), type(exc).__name__)
            raise Transient(f"{method} {path}: {type(exc).__name__}") from None
        self.on_call(route(method, path), str(status))
        if status in (403, 429) and (wait is not None or "rate limit" in text.lower()):
            raise RetryAfter(wait if wait is not None else 60.0, f"GitHub {status} on {path}")
        if status >= 500:
            raise Transient(f"GitHub {status} on {method} {path}")
        if status >= 400:
            raise Permanent(f"GitHub {status} on {method} {path}: {text[:300]}")
        return _json(text), answer_headers


def next_page(link: str, api_url: str) -> str | None:
    """Return the path of the rel="next" page in a Link header, or None on the last page."""
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params:
            url = target.strip().strip("<>")
            return url[len(api_url) :] if url.startswith(api_url) else urlsplit_path(url)
    return None


def urlsplit_path(url: str) -> str:
    """Return the path and query of an absolute URL (a Link on another host still pages)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _json(text: str) -> Any:
    return json.loads(text) if text else None


GitHubRecord = Callable[[Any, GitHubRequest], Callable[[Any], None] | None]


def github_senders(
    client: GitHubClient, recorders: dict[str, GitHubRecord] | None = None
) -> dict[str, Any]:
    """Build the relay's GitHub sender: one REST call, then its named recorder, if any.

    A GitHubRequest's `record` names the recorder that turns GitHub's answer into
    a database write (the new deployment's id, say), committed with the row
    being marked sent.
    """
    recorders = recorders or {}

    async def request(row: Any) -> Callable[[Any], None] | None:
        call = GitHubRequest.from_row(row.payload)
        if call.installation_id is None:
            raise Permanent(f"no installation is known for {call.path}")
        installation = int(call.installation_id)
        finder = FINDERS.get(call.record or "")
        # An earlier attempt may have created it (a crash, a timeout or a 5xx after GitHub
        # acted): look for it first, as the Slack sender looks for its message by metadata.
        answer = await finder(client, call, installation) if finder and row.uncertain else None
        if answer is None:
            answer = await client.request(
                call.verb, call.path, call.body, installation_id=installation
            )
        recorder = recorders.get(call.record or "")
        return recorder(answer, call) if recorder else None

    return {GitHubRequest.method: request}


async def find_deployment(
    client: GitHubClient, call: GitHubRequest, installation_id: int
) -> dict[str, Any] | None:
    """Return the Deployment this create call made earlier (same sha, environment, promotion)."""
    body = call.body
    wanted = (body.get("payload") or {}).get("promotion")
    query = urlencode({"sha": body["ref"], "environment": body["environment"], "per_page": 100})
    found = await client.request(
        "GET", f"{call.path}?{query}", None, installation_id=installation_id
    )
    for deployment in found or []:
        extra = deployment.get("payload")
        if isinstance(extra, str):  # GitHub keeps a payload sent as a string as a string
            extra = _json_object(extra)
        if wanted is not None and isinstance(extra, dict) and extra.get("promotion") == wanted:
            return deployment
    return None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# How each non-idempotent GitHub write finds what an earlier attempt of it created, by the
# name of its recorder. Commit statuses need none: writing the same state for the same
# (sha, context) again changes nothing a reader sees, so a repeat is harmless.
FINDERS: dict[str, Callable[[GitHubClient, GitHubRequest, int], Awaitable[Any]]] = {
    "deployment.created": find_deployment,
}
