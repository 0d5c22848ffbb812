"""GET /healthz: is the database there, and how much work is waiting."""

import sqlite3

from aiohttp import web

from bot.app import SERVICES
from storage import inbox


async def healthz(request: web.Request) -> web.Response:
    """Report whether the database answers, and how much work is waiting."""
    services = request.app[SERVICES]
    try:
        backlog = await services.store.read(inbox.backlog)
    except sqlite3.Error as exc:
        return web.json_response({"ok": False, "database": str(exc)}, status=503)
    return web.json_response({"ok": True, "database": "reachable", "backlog": backlog})


def add_routes(app: web.Application) -> None:
    """Mount the plain routes."""
    app.router.add_get("/healthz", healthz)
