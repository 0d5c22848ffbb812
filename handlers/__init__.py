"""Inbound adapters: GitHub webhooks, Slack requests and plain HTTP routes."""

from aiohttp import web

from bot.app import Inbound
from handlers import dashboard, dev, github, health, metrics, payloads, setup, slack


def add_routes(app: web.Application) -> None:
    """Mount every inbound route on `app`."""
    github.add_routes(app)
    setup.add_routes(app)
    slack.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app)
    dev.add_routes(app)
    dashboard.add_routes(app)


def inbound() -> Inbound:
    """Return the router and routes the app factory plugs in."""
    return Inbound(router=github.router, add_routes=add_routes, about=payloads.about)
