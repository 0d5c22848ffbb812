"""Accept a verified GitHub delivery: store it durably, then wake the worker."""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import msgspec

from bot.core.text import escapes_surrogates, load_json, same_secret
from bot.services import Services
from storage import inbox


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


@dataclass(frozen=True)
class Delivery:
    """A delivery as promobot stores it."""

    delivery_id: str
    event: str
    action: str | None
    repo_key: str
    body: bytes


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
    repository: msgspec.Raw = msgspec.Raw(b"null")
    installation: msgspec.Raw = msgspec.Raw(b"null")


_ROUTING = msgspec.json.Decoder(_Routing)
_KEYED = msgspec.json.Decoder(_Keyed)


def routing(body: bytes) -> tuple[str | None, str] | None:
    """Return (action, repo_key) of a JSON object, or None to leave the body to load_json.

    The acknowledgement needs only these two: msgspec checks the whole document but builds
    just them (a tenth of a full decode of a 12 KB status). Whatever it does not take as a
    plain UTF-8 JSON object (other encodings, escaped surrogates, NaN, errors) goes the full
    way, so what is refused, and why, does not change.
    """
    if escapes_surrogates(body):
        return None
    try:
        body.decode("utf-8")  # as strict as json.loads
        top = _ROUTING.decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):  # too deep: load_json says so
        return None
    action = top.action if isinstance(top.action, str) else None
    for name, raw in (("repo", top.repository), ("installation", top.installation)):
        try:
            key = _KEYED.decode(raw).id
        except msgspec.ValidationError:  # not an object: as if absent
            continue
        if key is not None:
            return action, f"{name}:{key}"
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


async def accept(services: Services, delivery: Delivery) -> bool:
    """Store the delivery (once per id) and wake the worker; return True if it was new."""
    now = services.clock.now()
    new = await services.store.write(
        lambda db: inbox.store_delivery(
            db,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            action=delivery.action,
            repo_key=delivery.repo_key,
            body=delivery.body,
            now=now,
        )
    )
    if new:
        services.worker.wake()
    return new
