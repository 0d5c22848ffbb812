"""What both fakes share: the calls they received, the failures still to play, their listeners."""

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request a fake received, as the remote would have seen it."""

    method: str  # Slack method name, or "POST /repos/{owner}/{repo}/deployments"
    path: str
    body: dict[str, Any]
    at: float  # time.time() when it arrived
    headers: dict[str, str] = field(default_factory=dict)
    perf: float = 0.0  # time.perf_counter() when it arrived, for latency figures


@dataclass
class Failure:
    """A scripted answer: `times` calls of a method get `status` instead of the real answer."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int
    after: bool = False
    delay: float = 0.0  # seconds between doing the work and the lost answer


# Told of every call a fake carried out, with the answer it gave (dev mode prints and stores).
Listener = Callable[[Call, Any], Awaitable[None]]


@cache
def contract(name: str) -> dict[str, Any]:
    """Return the operations of a contract shipped in bot/dev/fakes/contracts (parsed once)."""
    text = resources.files(__package__).joinpath("contracts", name).read_text(encoding="utf-8")
    operations: dict[str, Any] = json.loads(text)["operations"]
    return operations


class Recorder:
    """The calls received, the failures still to play, and who hears of each call carried out."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, list[Failure]] = {}
        self.listeners: list[Listener] = []
        self.server: Any = None  # whatever serves app(); tests keep their TestServer here

    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
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

    def rate_limit(self, method: str, retry_after: int, *, times: int = 1) -> None:
        """Refuse the next `times` calls of `method` with 429 and a Retry-After, as both do."""
        self.fail(method, 429, times=times, headers={"Retry-After": str(retry_after)})

    def scripted(self, method: str, *, after: bool = False) -> web.Response | None:
        """Return the scripted failure due for `method` now, if any, and count it played."""
        queue = self.failures.get(method)
        if not queue or queue[0].after != after:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return web.json_response(failure.body, status=failure.status, headers=failure.headers)

    def record(self, method: str, request: web.Request, body: dict[str, Any]) -> Call:
        """Note a call as it arrives."""
        call = Call(
            method, request.path, body, time.time(), dict(request.headers), time.perf_counter()
        )
        self.calls.append(call)
        return call

    async def tell(self, call: Call, answer: Any) -> None:
        """Tell every listener about a call carried out, in the order they were added."""
        for listener in self.listeners:
            await listener(call, answer)

    def of(self, method: str) -> list[Call]:
        """Return the calls of one method, in order."""
        return [c for c in self.calls if c.method == method]
