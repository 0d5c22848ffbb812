"""Dev mode's routes to the fake Slack and fake GitHub it serves (404 unless `serve --dev`).

Every call promobot makes to Slack (the relay's posts, a `respond()` to a
command's response_url, user and group look-ups) and to GitHub reaches the
one fake of each in bot/dev/fakes, which shows and records what it took.
"""

from typing import Any

from aiohttp import web

from bot.app import SERVICES
from bot.dev.mode import DevRuntime
from bot.services import Services


def _dev(request: web.Request) -> Services:
    services = request.app[SERVICES]
    if services.dev is None:
        raise web.HTTPNotFound()
    return services


def _runtime(request: web.Request) -> DevRuntime:
    runtime = _dev(request).dev
    assert runtime is not None  # _dev answered 404 otherwise
    return runtime


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return data if isinstance(data, dict) else {}
    form = dict(await request.post())
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def respond(request: web.Request) -> web.Response:
    """Take what the bot answered through a command's response_url (the fake Slack shows it)."""
    return await _runtime(request).slack.respond(request)


async def slack_api(request: web.Request) -> web.Response:
    """Answer a Slack Web API call as the fake Slack does."""
    return await _runtime(request).slack.handle(request)


async def github_api(request: web.Request) -> web.Response:
    """Answer a GitHub REST call as the fake GitHub does."""
    return await _runtime(request).github.handle(request)


async def fail_next(request: web.Request) -> web.Response:
    """Make the deployer fail the next deployment into a stage (`promobot fail-next <stage>`)."""
    services = _dev(request)
    stage = str((await _body(request)).get("stage", "")).strip().lower()
    known = [s.name for s in services.config.pipeline.stages]
    if stage not in known:
        return web.Response(
            status=400, text=f"{stage or 'nothing'} is not a stage ({', '.join(known)})"
        )
    services.dev.fail_next.add(stage)  # type: ignore[union-attr]
    text = f"the next deployment into {stage} will fail"
    services.dev.console.show("dev deployer", [text])  # type: ignore[union-attr]
    return web.Response(text=text)


def add_routes(app: web.Application) -> None:
    """Mount the stand-ins; each answers 404 unless the service runs with --dev."""
    app.router.add_post("/dev/slack/respond", respond)
    app.router.add_post("/dev/slack/api/{method}", slack_api)
    app.router.add_route("*", "/dev/github/{tail:.*}", github_api)
    app.router.add_post("/dev/fail-next", fail_next)
