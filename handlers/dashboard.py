"""GET /, /builds/{owner}/{repo}/{n} and /insights: the dashboard, behind a token outside dev mode.

It shows commit messages and names, so a real deployment serves it only with
PROMOBOT_DASHBOARD_TOKEN set, and only to requests that carry that token: an
`Authorization: Bearer` header, or `?token=` once, which is then swapped for
a cookie (and dropped from the address so it is not bookmarked or logged).
"""

import hashlib
import hmac
from functools import partial

from aiohttp import web

from bot.app import SERVICES
from bot.core import text
from bot.core.text import same_secret
from bot.pipeline import metrics as measured
from bot.services import Services
from bot.web import dashboard, insights

COOKIE = "promobot_dashboard"
INSIGHTS_REFRESH = 300
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
}


def cookie_value(token: str) -> str:
    """Return what the cookie holds: proof of the token, not the token itself."""
    return hmac.new(token.encode(), b"promobot dashboard cookie", hashlib.sha256).hexdigest()


def admit(request: web.Request, services: Services) -> web.Response | None:
    """Return None to let the request through, else the answer: 404 with no token set, 401 …"""
    if services.dev is not None:
        return None
    token = services.secrets.dashboard_token
    if not token:
        return web.Response(status=404, text="the dashboard is off: set PROMOBOT_DASHBOARD_TOKEN")
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer ") and same_secret(bearer[7:].strip(), token):
        return None
    cookie = request.cookies.get(COOKIE, "")
    if cookie and same_secret(cookie, cookie_value(token)):
        return None
    given = request.query.get("token", "")
    if given and same_secret(given, token):
        query = {k: v for k, v in request.query.items() if k != "token"}
        found = web.Response(status=303, headers=HEADERS)
        found.headers["Location"] = str(request.rel_url.with_query(query))
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        found.set_cookie(
            COOKIE, cookie_value(token), httponly=True, samesite="Strict", secure=secure, path="/"
        )
        return found
    return web.Response(
        status=401,
        text="the dashboard needs its token (?token=…, or Authorization: Bearer …)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def refresh(request: web.Request) -> int:
    """Return the page's refresh interval in seconds (?refresh=, 1 to 300, default 5)."""
    try:
        return max(1, min(300, int(request.query.get("refresh", "5"))))
    except ValueError:
        return 5


async def page(request: web.Request, services: Services, name: str, data: dict) -> web.Response:
    """Render a dashboard page, people shown by their Slack display names."""
    people = dashboard.people_in(data)
    names = await services.names.names(people) if services.names else {}
    html = dashboard.render(
        name, refresh=refresh(request), dev=services.dev is not None, names=names, **data
    )
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


async def index(request: web.Request) -> web.Response:
    """Show every repository's stages and value stream."""
    services = request.app[SERVICES]
    refused = admit(request, services)
    if refused is not None:
        return refused
    now = services.clock.now()
    data = await services.store.read(partial(dashboard.overview, config=services.config, now=now))
    return await page(request, services, "index.html", data)


async def build(request: web.Request) -> web.Response:
    """Show one build's journey, checks and event log."""
    services = request.app[SERVICES]
    refused = admit(request, services)
    if refused is not None:
        return refused
    full_name = f"{request.match_info['owner']}/{request.match_info['repo']}"
    number, now = text.number(request.match_info["number"]), services.clock.now()
    if number is None:  # past any id we store (SQLite could not even compare it), or not ASCII
        said = request.match_info["number"][:20]
        raise web.HTTPNotFound(text=f"{full_name} has no build #{said}")
    data = await services.store.read(
        partial(dashboard.journey, config=services.config, full_name=full_name, number=number,
                now=now)
    )  # fmt: skip
    if data is None:
        raise web.HTTPNotFound(text=f"{full_name} has no build #{number}")
    return await page(request, services, "build.html", data)


async def insights_page(request: web.Request) -> web.Response:
    """Show the delivery metrics of every repository, with their charts."""
    services = request.app[SERVICES]
    refused = admit(request, services)
    if refused is not None:
        return refused
    given = request.query.get("weeks", str(measured.DEFAULT_WEEKS))
    weeks = text.number(given)  # int() of ² or of 5,000 digits raises: a 500 before
    if weeks is None or not 1 <= weeks <= measured.MAX_WEEKS:
        return web.Response(
            status=400, text=f"weeks must be a whole number from 1 to {measured.MAX_WEEKS}"
        )
    now = services.clock.now()
    data = await services.store.read(
        partial(insights.page, config=services.config, weeks=weeks, now=now)
    )
    # The metrics change slowly and cost more to compute than the pipeline view.
    every = refresh(request) if "refresh" in request.query else INSIGHTS_REFRESH
    html = dashboard.render("insights.html", refresh=every, dev=services.dev is not None, **data)
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


def add_routes(app: web.Application) -> None:
    """Mount the dashboard."""
    app.router.add_get("/", index)
    app.router.add_get("/insights", insights_page)
    app.router.add_get("/builds/{owner}/{repo}/{number:\\d+}", build)
