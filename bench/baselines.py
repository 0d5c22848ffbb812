"""The baselines promobot is measured against, in the same run, on the same core.

- `bare`: aiohttp reads the body and answers 202 with promobot's body shape; stores nothing.
- `naive`: verifies the HMAC and commits one SQLite row per request (WAL, synchronous=FULL,
  as promobot ships), then answers the same 202: durability without group commit.

Both run on uvloop and listen with the backlog `promobot serve` does: the ratios compare the
work, not the loops.
"""

import hashlib
import hmac
import sqlite3
import sys

import uvloop
from aiohttp import web

from bot.cli.serve import LISTEN_BACKLOG

SECRET = b"bench-webhook-secret"


def answer(request: web.Request) -> web.Response:
    """Answer 202 as promobot does."""
    delivery = request.headers.get("X-GitHub-Delivery", "")
    return web.json_response({"delivery": delivery, "stored": "new"}, status=202)


async def bare(request: web.Request) -> web.Response:
    """Read the whole body, then answer."""
    await request.read()
    return answer(request)


def naive_app(path: str) -> web.Application:
    """Verify, commit one row, answer: one fsync per delivery."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY,"
        " delivery_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, body BLOB NOT NULL)"
    )

    async def naive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.json_response({"error": "bad signature"}, status=401)
        conn.execute(
            "INSERT OR IGNORE INTO deliveries (delivery_id, event, body) VALUES (?, ?, ?)",
            [request.headers["X-GitHub-Delivery"], request.headers["X-GitHub-Event"], body],
        )
        return answer(request)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post("/github/webhooks", naive)
    return app


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "naive":
        app = naive_app(sys.argv[3])
    else:
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.router.add_post("/github/webhooks", bare)
    # On promobot serve's event loop and listen backlog: otherwise the ratio would measure
    # those, not the work.
    loop = uvloop.new_event_loop()
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        loop=loop,
        backlog=LISTEN_BACKLOG,
    )
