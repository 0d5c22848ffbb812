"""A tiny fake Slack Web API for the benchmarks: answers ok and notes when each call arrived."""

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench.common import free_port


@dataclass
class Arrival:
    method: str
    at: float  # time.perf_counter() when the request arrived
    body: dict[str, Any] = field(default_factory=dict)


class FakeSlack:
    """chat.postMessage / chat.update / chat.postEphemeral / anything else: ok."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._ts = itertools.count(1)

    def app(self) -> web.Application:
        """Return the aiohttp application serving /api/<method>."""
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Record the call and answer as Slack does when all is well."""
        at = time.perf_counter()
        method = request.match_info["method"]
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        self.arrivals.append(Arrival(method, at, body))
        if method == "users.info":
            user = str(body.get("user") or "U0")
            return web.json_response({"ok": True, "user": {"id": user, "name": user.lower()}})
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        return web.json_response({"ok": True, "channel": "C0RELEASES", "ts": ts})

    def posts_after(self, moment: float, needle: str = "") -> list[Arrival]:
        """Return the parent chat.postMessage calls after `moment` that mention `needle`."""
        return [
            a
            for a in self.arrivals
            if a.method == "chat.postMessage"
            and a.at >= moment
            and not a.body.get("thread_ts")
            and needle in json.dumps(a.body, ensure_ascii=False)
        ]


def start_in_thread() -> str:
    """Serve a FakeSlack from a thread of its own; return its API URL (for a whole run)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True).start()
    asyncio.run_coroutine_threadsafe(start(port), loop).result(timeout=10)
    return f"http://127.0.0.1:{port}/api/"


async def start(port: int) -> tuple[FakeSlack, web.AppRunner]:
    """Serve a FakeSlack on 127.0.0.1:`port` in the running event loop."""
    fake = FakeSlack()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return fake, runner
