"""Serve promobot's one fake Slack (bot/dev/fakes) for a benchmark run, in a thread or a loop."""

import asyncio
import json
import threading

from aiohttp import web

from bench.common import BOT_TOKEN, free_port
from bot.dev.fakes import Call, FakeSlack


def bench_slack() -> FakeSlack:
    """Return the fake Slack the benchmarks post to: it takes their token and knows everyone."""
    fake = FakeSlack(token=BOT_TOKEN)
    fake.anyone = True  # the pages look every person up; each lookup should find a name
    return fake


def start_in_thread() -> str:
    """Serve a fake Slack from a thread of its own; return its API URL (for a whole run)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True).start()
    asyncio.run_coroutine_threadsafe(start(port), loop).result(timeout=10)
    return f"http://127.0.0.1:{port}/api/"


async def start(port: int) -> tuple[FakeSlack, web.AppRunner]:
    """Serve a fake Slack on 127.0.0.1:`port` in the running event loop."""
    fake = bench_slack()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return fake, runner


def posts_after(fake: FakeSlack, moment: float, needle: str = "") -> list[Call]:
    """Return the parent posts that arrived after perf_counter() `moment` and mention `needle`."""
    return [
        call
        for call in fake.posts()
        if call.perf >= moment and needle in json.dumps(call.body, ensure_ascii=False)
    ]
