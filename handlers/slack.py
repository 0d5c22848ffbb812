"""Slack: Bolt mounted in our own route, and the /ship and /promote listeners."""

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from bot import commands, ship
from bot.app import SERVICES
from bot.promoters import Promoters
from bot.services import Services

log = logging.getLogger(__name__)
BOLT = web.AppKey("bolt", AsyncApp)
MAX_BODY = 1024 * 1024

# One function per /ship verb: async (ctx, command) -> the ephemeral answer. Add verbs here.
VERBS: dict[str, ship.Verb] = {
    "status": ship.status,
    "promote": ship.promote,
    "approve": ship.approve,
    "reject": ship.reject,
    "rollback": ship.rollback,
    "lock": ship.lock,
    "unlock": ship.unlock,
    "history": ship.history,
}


def build_bolt(services: Services) -> AsyncApp:
    """Build the Bolt app: signatures verified, no Web API call on the path to ack."""

    async def authorize(**_: Any) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test round trip before every ack.
        return AuthorizeResult(
            enterprise_id=None, team_id=None, bot_token=services.secrets.slack_bot_token
        )

    bolt = AsyncApp(
        signing_secret=services.secrets.slack_signing_secret,
        client=services.slack,
        authorize=authorize,
        request_verification_enabled=True,
        ssl_check_enabled=True,
        url_verification_enabled=True,
    )
    promoters = Promoters(services.slack, services.clock.now)

    async def ship_command(ack: Any, command: dict[str, Any]) -> None:
        """Answer /ship and /promote."""
        ctx = context(services, promoters, command)
        await ack(text=await answer(ctx, command.get("text") or "", command.get("command")))

    async def promotion_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Answer an Approve or Reject click: the value names the promotion, nothing else."""
        ctx = ship.Context(services, promoters, (body.get("user") or {}).get("id", ""))
        text = await ship.click(ctx, action.get("action_id", ""), str(action.get("value", "")))
        await ship.tell(ctx, (body.get("channel") or {}).get("id", ""), text)
        await ack()

    bolt.command("/ship")(ship_command)
    bolt.command("/promote")(ship_command)
    bolt.action("promotion.approve")(promotion_button)
    bolt.action("promotion.reject")(promotion_button)
    return bolt


def context(services: Services, promoters: Promoters, command: dict[str, Any]) -> ship.Context:
    """Return who typed a slash command, and where."""
    return ship.Context(
        services,
        promoters,
        command.get("user_id", ""),
        command.get("channel_id", ""),
        command.get("channel_name", ""),
    )


async def answer(ctx: ship.Context, text: str, command: str | None) -> str:
    """Parse and run one /ship command; return the ephemeral answer (bad input: the usage)."""
    try:
        parsed = commands.parse(text, command=command or "/ship")
        if parsed.verb == "help":
            return commands.HELP
        verb = VERBS.get(parsed.verb)
        if verb is None:
            return f":construction: `{parsed.verb}` is not available yet. Try `/ship help`."
        return await verb(ctx, parsed)
    except commands.CommandError as exc:
        await ship.refuse(ctx, text, exc)
        return exc.answer()


async def events(request: web.Request) -> web.Response:
    """Hand a Slack request to Bolt, which verifies it and runs the listener."""
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    bolt = request.app[BOLT]
    response = await bolt.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(response)


def add_routes(app: web.Application) -> None:
    """Mount /slack/events and build Bolt once the services exist."""

    async def bolt_lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[BOLT] = build_bolt(app[SERVICES])
        yield

    app.cleanup_ctx.append(bolt_lifecycle)
    app.router.add_post("/slack/events", events)
