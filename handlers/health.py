"""GET /healthz: is the database there, are the background tasks alive, how much work is waiting."""

import logging
import sqlite3
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.app import SERVICES
from bot.services import Services
from storage import inbox
from storage.faults import Unavailable

log = logging.getLogger(__name__)
# Seconds a client is asked to wait when the database takes no writes (disk full, locked).
RETRY_AFTER = 30

# A delivery due this long ago and still unprocessed means the worker is not keeping up.
STALE_DELIVERY = 120.0


async def healthz(request: web.Request) -> web.Response:
    """Answer 200 when all is well, else 503 with one line per problem."""
    services = request.app[SERVICES]
    fault = await services.store.health()  # probes, while a fault lasts, whether it cleared
    if fault is None and services.intake is not None:  # the ingest file's disk, or lock
        fault = await services.intake.health()
    try:
        backlog = await services.store.read(inbox.backlog)
        now = services.clock.now()
        oldest = await services.store.read(partial(inbox.oldest_unprocessed, now=now))
    except sqlite3.Error as exc:
        broken = {"ok": False, "database": str(exc), "problems": [f"database: {exc}"]}
        return web.json_response(broken, status=503)
    problems = _problems(services, backlog, None if oldest is None else now - oldest)
    body: dict[str, Any] = {"ok": not problems, "database": "reachable", "backlog": backlog}
    headers = {}
    if fault is not None:
        since = now - fault.since
        problems.insert(0, f"database: {fault.cause} for {since:.0f}s, writes refused")
        body.update(ok=False, database=f"unavailable: {fault.cause}", cause=fault.cause)
        headers["Retry-After"] = str(RETRY_AFTER)
    body["problems"] = problems
    return web.json_response(body, status=503 if problems else 200, headers=headers)


def _problems(services: Services, backlog: dict[str, int], age: float | None) -> list[str]:
    problems = services.supervisor.problems()
    if age is not None and age > STALE_DELIVERY:
        problems.append(f"inbox: the oldest unprocessed delivery is {age:.0f}s old")
    failed = backlog.get("deliveries_failed", 0)
    if failed:
        problems.append(f"inbox: {failed} delivery(ies) kept as failed")
    return problems


@web.middleware
async def storage_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 503 with Retry-After while the database takes no writes; log one line, no trace."""
    try:
        return await handler(request)
    except Unavailable as exc:
        log.info(
            "request refused (503): storage unavailable: %s",
            exc.cause,
            extra={"refusal": exc.cause},
        )
        return web.json_response(
            {"error": f"storage unavailable: {exc.cause}; try again later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER)},
        )


def add_routes(app: web.Application) -> None:
    """Mount the plain routes, and the answer to storage faults on every route."""
    app.middlewares.append(storage_faults)
    app.router.add_get("/healthz", healthz)
