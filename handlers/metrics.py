"""GET /metrics: Prometheus text, off unless PROMOBOT_METRICS=1 or PROMOBOT_METRICS_TOKEN is set.

Like the dashboard, it is off by default. With a token, a scrape must carry
`Authorization: Bearer <token>`; with PROMOBOT_METRICS=1 alone it is open
(for a scraper on a private network).
"""

import hmac
from functools import partial

from aiohttp import web

from bot.app import SERVICES
from bot.engine.metrics import CONTENT_TYPE
from storage import scrape


def admit(request: web.Request) -> web.Response | None:
    """Return None to let the scrape through, else the answer: 404 when off, 401 without token."""
    secrets = request.app[SERVICES].secrets
    if not (secrets.metrics or secrets.metrics_token):
        return web.Response(
            status=404, text="metrics are off: set PROMOBOT_METRICS=1 or PROMOBOT_METRICS_TOKEN"
        )
    if not secrets.metrics_token:
        return None
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer ") and hmac.compare_digest(
        bearer[7:].strip(), secrets.metrics_token
    ):
        return None
    return web.Response(
        status=401,
        text="metrics need PROMOBOT_METRICS_TOKEN as Authorization: Bearer …",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def metrics(request: web.Request) -> web.Response:
    """Answer with every metric in Prometheus' text format."""
    refused = admit(request)
    if refused is not None:
        return refused
    services = request.app[SERVICES]
    snapshot = await services.store.read(partial(scrape.figures, now=services.clock.now()))
    body = services.metrics.exposition(snapshot)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    """Mount GET /metrics."""
    app.router.add_get("/metrics", metrics)
