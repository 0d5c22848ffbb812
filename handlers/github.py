"""GitHub: the webhook route (verify, parse, store, 202) and the router the worker uses."""

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import msgspec
from aiohttp import web
from gidgethub.routing import Router

from bot.app import LIMITS, SERVICES
from bot.config import Config
from bot.core.text import load_json, same_secret
from bot.engine.ingest import Delivery, accept
from bot.engine.worker import UnitOfWork
from bot.pipeline import deployments, prcheck, workflows
from handlers import payloads

log = logging.getLogger(__name__)
router = Router()
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class Refused(Exception):
    """A delivery promobot will not store; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify_signature(
    body: bytes, header: str | None, secret: str, retired: tuple[str, ...]
) -> None:
    """Check X-Hub-Signature-256 over the raw body; raise Refused(401) when it does not hold."""
    if not secret:
        raise Refused(401, "no webhook secret is configured")  # never accept unsigned
    if not header:
        raise Refused(401, "X-Hub-Signature-256 is missing (a SHA-1 X-Hub-Signature is not enough)")
    scheme, _, digest = header.partition("=")
    if scheme != "sha256" or not digest:
        raise Refused(401, "X-Hub-Signature-256 must be sha256=<hex>")

    def signed_with(key: str) -> bool:
        expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return same_secret(digest.strip().lower(), expected)  # any header text, never a 500

    if signed_with(secret):
        return
    if any(signed_with(old) for old in retired):
        raise Refused(401, "signed with a retired webhook secret (stale)")
    raise Refused(401, "X-Hub-Signature-256 does not match the body")


def parse_delivery(headers: Any, body: bytes) -> Delivery:
    """Read event, delivery id and the JSON body (raw, or form-encoded as `payload`)."""
    event = headers.get("X-GitHub-Event", "").strip()
    delivery_id = headers.get("X-GitHub-Delivery", "").strip()
    if not event or not delivery_id:
        raise Refused(400, "X-GitHub-Event and X-GitHub-Delivery are required")
    if len(delivery_id) > 100:
        raise Refused(400, "X-GitHub-Delivery is too long to be a GUID")
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in form:
            raise Refused(400, "a form-encoded delivery needs a payload field")
        body = form["payload"][0].encode()
    routed = routing(body)
    if routed is not None:
        return Delivery(delivery_id, event, *routed, body)
    try:
        data = load_json(body)
    except ValueError as exc:  # not UTF-8, not JSON
        raise Refused(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise Refused(400, "the body is nested too deeply to be a webhook") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    action = data.get("action") if isinstance(data.get("action"), str) else None
    return Delivery(delivery_id, event, action, repo_key(data), body)


class _Keyed(msgspec.Struct):
    id: Any = None


class _Routing(msgspec.Struct):
    action: Any = None
    # An object's id is read in the same pass; anything else there (a number, a list) is a
    # ValidationError, and load_json takes the body the full way.
    repository: _Keyed | None = None
    installation: _Keyed | None = None


_ROUTING = msgspec.json.Decoder(_Routing)


def routing(body: bytes) -> tuple[str | None, str] | None:
    """Return (action, repo_key) of a JSON object, or None to leave the body to load_json.

    The acknowledgement needs only these two: msgspec checks the whole document but builds
    just them (a tenth of a full decode of a 12 KB status). Whatever it does not take as a
    plain UTF-8 JSON object with object-or-null keys (other encodings, NaN, errors) goes
    the full way, so what is refused, and why, does not change. msgspec itself refuses
    every escaped lone surrogate (load_json replaces them) and decodes escaped pairs as
    json.loads does.
    """
    # msgspec does not check the UTF-8 of the strings it skips; json.loads does. An ASCII
    # body (GitHub's are, nearly always) is valid UTF-8 without decoding 12 KB into a str.
    if not body.isascii():
        try:
            body.decode("utf-8")  # as strict as json.loads
        except UnicodeDecodeError:
            return None
    try:
        top = _ROUTING.decode(body)
    except (msgspec.DecodeError, RecursionError):  # too deep: load_json says so
        return None
    action = top.action if isinstance(top.action, str) else None
    if top.repository is not None and top.repository.id is not None:
        return action, f"repo:{top.repository.id}"
    if top.installation is not None and top.installation.id is not None:
        return action, f"installation:{top.installation.id}"
    return action, "app"


def repo_key(data: dict[str, Any]) -> str:
    """Return the key that orders processing: the repository, else the installation."""
    repo = data.get("repository")
    if isinstance(repo, dict) and repo.get("id") is not None:
        return f"repo:{repo['id']}"
    installation = data.get("installation")
    if isinstance(installation, dict) and installation.get("id") is not None:
        return f"installation:{installation['id']}"
    return "app"


async def read_body(request: web.Request) -> bytes:
    """Read the raw body within the body deadline, refusing more than GitHub would ever send."""
    if (request.content_length or 0) > MAX_BODY:
        raise Refused(413, "the body is larger than GitHub's 25 MB cap")
    content = request.content
    try:
        if content.is_eof():  # all of it came with the headers: no wait, so no deadline timer
            body = content.read_nowait()
        else:
            body = await _read_slow(content, request.app[LIMITS].body)
    except (ConnectionError, aiohttp.ClientPayloadError):
        raise Refused(400, "the connection closed before the body was complete") from None
    if len(body) > MAX_BODY:
        raise Refused(413, "the body is larger than GitHub's 25 MB cap")
    return body


async def _read_slow(content: aiohttp.StreamReader, deadline: float) -> bytes:
    """Read a body still on its way, within `deadline` seconds."""
    body = bytearray()
    try:
        async with asyncio.timeout(deadline):
            async for chunk in content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > MAX_BODY:
                    raise Refused(413, "the body is larger than GitHub's 25 MB cap")
    except TimeoutError:
        raise Refused(408, f"the body did not arrive within {deadline:g} s") from None
    return bytes(body)


async def webhook(request: web.Request) -> web.Response:
    """Verify a delivery, store it durably, and only then answer 202."""
    services = request.app[SERVICES]
    secrets = services.secrets
    arrived = time.monotonic()
    try:
        body = await read_body(request)
        verify_signature(
            body,
            request.headers.get("X-Hub-Signature-256"),
            secrets.github_webhook_secret,
            secrets.retired_webhook_secrets,
        )
        delivery = parse_delivery(request.headers, body)
    except Refused as exc:
        log.info(
            "delivery refused (%d): %s",
            exc.status,
            exc.reason,
            extra={
                "delivery_id": request.headers.get("X-GitHub-Delivery"),
                "event": request.headers.get("X-GitHub-Event"),
                "refusal": exc.reason,
            },
        )
        response = web.json_response({"error": exc.reason}, status=exc.status)
        if exc.status == 408:
            response.force_close()  # a client that slow gets no second request on this connection
        return response
    new = await accept(services, delivery)
    services.metrics.ack_seconds.observe(time.monotonic() - arrived)
    return web.Response(
        body=accepted(delivery.delivery_id, new),
        status=202,
        content_type="application/json",
        charset="utf-8",
    )


def accepted(delivery_id: str, new: bool) -> bytes:
    """Return the 202's JSON (GitHub shows it in the delivery log), without json.dumps.

    The same text json.dumps would write: an id of printable ASCII other than a quote or a
    backslash (a GUID, as GitHub sends) needs no escaping; any other goes through json.dumps.
    """
    stored = b'", "stored": "new"}' if new else b'", "stored": "already stored"}'
    plain = delivery_id.isascii() and delivery_id.isprintable()
    if plain and '"' not in delivery_id and "\\" not in delivery_id:
        return b'{"delivery": "' + delivery_id.encode() + stored
    text = json.dumps({"delivery": delivery_id, "stored": "new" if new else "already stored"})
    return text.encode()


@router.register("push")
async def push(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """A push to the tracked branch makes a build of its head commit."""
    pushed = payloads.push(event.data, config.pipeline.branch)
    if pushed is not None:
        uow.add(workflows.apply_push, pushed)


@router.register("status")
async def status(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """A commit status is one check report (except promobot's own PR check)."""
    reported = payloads.status(event.data)
    if reported is not None:
        uow.add(workflows.apply_report, *reported)


@router.register("check_run", action="created")
@router.register("check_run", action="completed")
async def check_run(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """A check run starting or finishing is one check report."""
    uow.add(workflows.apply_report, *payloads.check_run(event.data))


@router.register("check_suite", action="completed")
async def check_suite(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """A finished check suite is a report named for its app (counted only when required)."""
    uow.add(workflows.apply_report, *payloads.check_suite(event.data))


@router.register("pull_request")
async def pull_request(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """Track pull requests (open, head, base, draft) so their check can follow main."""
    changed = payloads.pull_request(event.data)
    if changed is None:
        return
    repo, pr = changed
    uow.add(workflows.remember_repo, repo)
    uow.add(prcheck.apply_pull_request, repo.id, pr)


@router.register("deployment_status", action="created")
async def deployment_status(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """A deployment moved (queued, in progress, success, failure …): follow it."""
    repo, moved = payloads.deployment_status(event.data)
    uow.add(workflows.remember_repo, repo)
    uow.add(deployments.apply_status, moved)


@router.register("installation")
async def installation(event: Any, *, uow: UnitOfWork, config: Config) -> None:
    """Installations come and go; remember which repositories they cover."""
    uow.add(workflows.apply_installation, payloads.installation(event.data))


def add_routes(app: web.Application) -> None:
    """Mount the webhook route."""
    app.router.add_post("/github/webhooks", webhook)
