"""GET /healthz: is the database there, are the background tasks alive, how much work is waiting."""

import sqlite3
from functools import partial

from aiohttp import web

from bot.app import SERVICES
from bot.services import Services
from storage import inbox

# A delivery due this long ago and still unprocessed means the worker is not keeping up.
STALE_DELIVERY = 120.0


async def healthz(request: web.Request) -> web.Response:
    """Answer 200 when all is well, else 503 with one line per problem."""
    services = request.app[SERVICES]
    try:
        backlog = await services.store.read(inbox.backlog)
        now = services.clock.now()
        oldest = await services.store.read(partial(inbox.oldest_unprocessed, now=now))
    except sqlite3.Error as exc:
        body = {"ok": False, "database": str(exc), "problems": [f"database: {exc}"]}
        return web.json_response(body, status=503)
    problems = _problems(services, backlog, None if oldest is None else now - oldest)
    body = {"ok": not problems, "database": "reachable", "backlog": backlog, "problems": problems}
    return web.json_response(body, status=503 if problems else 200)


def _problems(services: Services, backlog: dict[str, int], age: float | None) -> list[str]:
    problems = services.supervisor.problems()
    if age is not None and age > STALE_DELIVERY:
        problems.append(f"inbox: the oldest unprocessed delivery is {age:.0f}s old")
    failed = backlog.get("deliveries_failed", 0)
    if failed:
        problems.append(f"inbox: {failed} delivery(ies) kept as failed")
    return problems


def add_routes(app: web.Application) -> None:
    """Mount the plain routes."""
    app.router.add_get("/healthz", healthz)
