"""Slack Web API calls mapped onto relay outcomes, each method held back while Slack says wait."""

import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.retry_after import retry_after_seconds
from bot.engine.relay import Permanent, RetryAfter, Transient
from storage import Store
from storage import pauses as kept_pauses

# Errors that retrying cannot fix; anything else Slack says is retried with backoff.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "msg_too_long",
    "no_text",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "cant_update_message",
    "message_not_found",
    "edit_window_closed",
    "invalid_arguments",
    "user_not_in_channel",
    "restricted_action",
}


class MethodPauses:
    """Slack's 429s: each names a Web API method, paused workspace-wide until Retry-After ends."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def left(self, method: str) -> float:
        """Return the seconds `method` must still wait (0 when it may go)."""
        return max(0.0, self._until.get(method, 0.0) - time.monotonic())

    def pause(self, method: str, seconds: float) -> None:
        """Hold back every call of `method` for `seconds`, whichever channel it is for."""
        until = time.monotonic() + seconds
        self._until[method] = max(until, self._until.get(method, 0.0))


SCOPE = "slack:"  # a Slack method's pause, as kept in the database (storage/pauses.py)


async def restore_pauses(client: AsyncWebClient, store: Store) -> None:
    """Hold back again the Slack methods a 429 paused before a restart, for what is left."""
    now = time.time()
    for name, until in (await store.read(partial(kept_pauses.active, now=now))).items():
        if name.startswith(SCOPE):
            pauses(client).pause(name.removeprefix(SCOPE), until - now)


# One set of pauses per Web API client, shared by every sender and lane that uses it.
_PAUSES: "weakref.WeakKeyDictionary[AsyncWebClient, MethodPauses]" = weakref.WeakKeyDictionary()


def pauses(client: AsyncWebClient) -> MethodPauses:
    """Return the method pauses of `client`."""
    found = _PAUSES.get(client)
    if found is None:
        found = _PAUSES[client] = MethodPauses()
    return found


# Who hears of every call a client makes (method, status): the metrics, per client.
_OBSERVERS: "weakref.WeakKeyDictionary[AsyncWebClient, Callable[[str, str], None]]" = (
    weakref.WeakKeyDictionary()
)


def observe_calls(client: AsyncWebClient, observer: Callable[[str, str], None]) -> None:
    """Tell `observer(method, status)` of every call made through `call` with `client`."""
    _OBSERVERS[client] = observer


def _observed(client: AsyncWebClient, method: str, status: str) -> None:
    observer = _OBSERVERS.get(client)
    if observer is not None:
        observer(method, status)


async def call(client: AsyncWebClient, method: str, **args: Any) -> dict[str, Any]:
    """Call a Web API method; map Slack's answers onto relay outcomes."""
    held = pauses(client).left(method)
    if held > 0:  # checked right before the call, so no lane can slip past a fresh 429
        raise RetryAfter(held, f"Slack {method} paused", lane_wide=False, held=True)
    try:
        answer = await client.api_call(method, json=args)
    except SlackApiError as exc:
        answer = exc.response
        _observed(client, method, str(answer.get("error") or answer.status_code))
        if answer.status_code == 429 or answer.get("error") == "ratelimited":
            seconds = retry_after_seconds(answer.headers.get("Retry-After"))
            pauses(client).pause(method, seconds)
            raise RetryAfter(
                seconds, f"Slack {method}", lane_wide=False, scope=SCOPE + method
            ) from None
        if answer.status_code >= 500:
            raise Transient(f"Slack {method}: HTTP {answer.status_code}") from None
        error = answer.get("error", f"HTTP {answer.status_code}")
        if error in PERMANENT or answer.status_code in (400, 401, 403, 404):
            raise Permanent(f"Slack {method}: {error}") from None
        raise Transient(f"Slack {method}: {error}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        _observed(client, method, type(exc).__name__)
        raise Transient(f"Slack {method}: {type(exc).__name__}") from None
    _observed(client, method, "ok")
    return dict(answer.data)  # type: ignore[arg-type]
