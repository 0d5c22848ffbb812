"""Slow and idle clients are cut off: no connection is held open by a client that stalls."""

import asyncio
import logging
from types import SimpleNamespace

import pytest
from aiohttp import web

from bot.app import Limits, create_app
from handlers import inbound

FAST = Limits(headers=0.5, body=0.5, lingering=0.1)
HEADERS = (
    "POST {path} HTTP/1.1\r\nHost: promobot\r\nContent-Type: application/json\r\n"
    "X-GitHub-Event: push\r\nX-GitHub-Delivery: slow-1\r\nX-Slack-Request-Timestamp: 1\r\n"
    "Content-Length: 5000\r\n\r\n"
)


def ours(caplog) -> list[logging.LogRecord]:
    """Return promobot's own log records (not aiohttp's access log, off in production)."""
    return [r for r in caplog.records if r.name.split(".")[0] in ("bot", "handlers", "storage")]


@pytest.fixture
async def server(config, secrets, tmp_path):
    """Serve promobot as `promobot serve` does (web.run_app's runner), on a free port."""
    app = create_app(
        config,
        secrets,
        db_path=tmp_path / "slow.db",
        inbound=inbound(),
        digest_schedule=False,
        limits=FAST,
    )
    runner = web.AppRunner(app, **FAST.server_options())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield SimpleNamespace(host=host, port=port)
    await runner.cleanup()


async def talk(server, data: bytes) -> bytes:
    """Send `data`, stall, and return all the server said before it closed the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=20)  # b"" or the answer, then EOF
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed(server):
    assert await talk(server, b"") == b""


async def test_a_request_whose_headers_never_end_is_closed(server):
    assert await talk(server, b"POST /github/webhooks HTTP/1.1\r\nHost: promobot\r\n") == b""


@pytest.mark.parametrize("path", ["/github/webhooks", "/slack/events"])
async def test_a_body_that_trickles_gets_408_and_the_connection_closes(server, caplog, path):
    caplog.set_level(logging.INFO)
    answer = await talk(server, HEADERS.format(path=path).encode() + b'{"ref"')
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"Connection: close" in answer
    lines = [r for r in ours(caplog) if "408" in r.getMessage()]
    assert len(lines) == 1 and "did not arrive within 0.5 s" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]


async def test_a_client_that_hangs_up_mid_body_leaves_one_line_not_a_traceback(server, caplog):
    caplog.set_level(logging.INFO)
    _, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(HEADERS.format(path="/github/webhooks").encode() + b'{"ref"')
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is reading the body (the deadline is 0.5 s)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # until the server has noticed
        if any("refused" in r.getMessage() for r in ours(caplog)):
            break
        await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]
    assert [r.getMessage() for r in ours(caplog) if "refused" in r.getMessage()] == [
        "delivery refused (400): the connection closed before the body was complete"
    ]
