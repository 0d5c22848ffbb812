"""What a Slack request must pass before Bolt parses it: signature, freshness, replay, workspace.

Bolt parses the body before it checks the signature, so an unsigned body that
is not UTF-8, or a `payload` nested thousands deep, used to end in a 500 with
a traceback. Here the raw bytes are verified first; only a signed, fresh,
first-seen request from our workspace is decoded and handed on.
"""

import hashlib
import hmac
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from bot.core.text import load_json, same_secret

FOREIGN = ":no_entry: promobot answers only in its own Slack workspace."
WINDOW = 300  # seconds a signed request stays valid, as Slack documents it


class Rejected(Exception):
    """A Slack request promobot will not act on; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str, answer: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.answer = answer  # shown to whoever typed a command, instead of an HTTP error


def verify(body: bytes, stamp: str, signature: str, secret: str, now: float) -> None:
    """Check X-Slack-Signature over the raw bytes and the timestamp's age; raise Rejected(401)."""
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise Rejected(401, "X-Slack-Request-Timestamp is missing or not a number")
    if abs(now - int(stamp)) > WINDOW:
        raise Rejected(401, "the signature or its timestamp does not hold")
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not same_secret(signature, expected):
        raise Rejected(401, "the signature or its timestamp does not hold")


class Replays:
    """The signatures answered in the last five minutes, in this instance's memory.

    A signature covers its timestamp, so a request replayed after WINDOW is
    refused as stale anyway; within it, the second copy is refused here. Kept in
    memory: a restart forgets them, and each instance behind a load balancer
    keeps its own (a replay sent to another instance within 5 minutes runs).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, stamp: str, signature: str, now: float) -> bool:
        """Record a verified request; return False when it was already answered."""
        while self._seen and next(iter(self._seen.values())) < now - WINDOW:
            self._seen.popitem(last=False)
        key = f"{stamp}:{signature}"
        if key in self._seen:
            return False
        if len(self._seen) >= self.limit:  # a flood of valid requests: forget the oldest
            self._seen.popitem(last=False)
        self._seen[key] = now
        return True


def read_form(body: bytes) -> dict[str, Any]:
    """Decode a signed body into its fields (`payload` parsed); raise Rejected(400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "the body is not UTF-8") from None
    form: dict[str, Any] = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if "payload" in form:
        try:
            payload = load_json(form["payload"])
        except ValueError:
            raise Rejected(400, "the payload field is not JSON") from None
        except RecursionError:
            raise Rejected(400, "the payload field is nested too deeply") from None
        if not isinstance(payload, dict):
            raise Rejected(400, "the payload field must be a JSON object")
        form["payload"] = payload
    return form


def team_of(form: dict[str, Any]) -> str:
    """Return the workspace (team) ID a command or interaction came from ('' when none)."""
    payload = form.get("payload")
    if isinstance(payload, dict):
        team, user = payload.get("team"), payload.get("user")
        team_id = team.get("id") if isinstance(team, dict) else None
        user_team = user.get("team_id") if isinstance(user, dict) else None
        return str(team_id or user_team or "")
    return str(form.get("team_id") or "")


def ssl_check(body: bytes) -> bool:
    """Say whether `body` is Slack's ssl_check probe, which may come unsigned and asks nothing."""
    if len(body) > 512 or b"ssl_check=1" not in body:
        return False
    try:
        return read_form(body).get("ssl_check") == "1"
    except Rejected:  # not UTF-8: no probe of Slack's, and the signature check refuses it
        return False


def check(body: bytes, headers: Any, secret: str, team: str | None, replays: Replays) -> dict:
    """Verify, de-duplicate and read a Slack request; return its form or raise Rejected."""
    stamp = headers.get("X-Slack-Request-Timestamp", "").strip()
    signature = headers.get("X-Slack-Signature", "").strip()
    now = time.time()
    verify(body, stamp, signature, secret, now)
    if not replays.first(stamp, signature, now):
        raise Rejected(409, "this request was already answered (a replay)")
    form = read_form(body)
    if team and team_of(form) != team:
        answer = FOREIGN if "command" in form else ""
        raise Rejected(403, "promobot answers one Slack workspace, and this is another", answer)
    return form
