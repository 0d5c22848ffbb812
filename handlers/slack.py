"""Slack: Bolt mounted in our own route, and the /ship and /promote listeners."""

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from bot import commands, digest_post, freeze
from bot.app import SERVICES
from bot.services import Services

log = logging.getLogger(__name__)
BOLT = web.AppKey("bolt", AsyncApp)
MAX_BODY = 1024 * 1024


class _TokenSkipped(logging.Filter):
    """Drop Bolt's notice that SLACK_BOT_TOKEN is unused: `authorize` supplies it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


TOKEN_SKIPPED = _TokenSkipped()


def build_bolt(services: Services) -> AsyncApp:
    """Build the Bolt app: signatures verified, no Web API call on the path to ack."""

    async def authorize(**_: Any) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test round trip before every ack.
        return AuthorizeResult(
            enterprise_id=None, team_id=None, bot_token=services.secrets.slack_bot_token
        )

    # Bolt reads SLACK_BOT_TOKEN itself and warns when a client or `authorize` makes it
    # unused; give it a token-less client on our session and base URL (SLACK_API_URL),
    # and let `authorize` hand the token to each request's client.
    client = AsyncWebClient(base_url=services.slack.base_url, session=services.slack.session)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(TOKEN_SKIPPED)
    bolt = AsyncApp(
        signing_secret=services.secrets.slack_signing_secret,
        client=client,
        authorize=authorize,
        request_verification_enabled=True,
        ssl_check_enabled=True,
        url_verification_enabled=True,
    )

    async def ship(ack: Any, command: dict[str, Any]) -> None:
        await ship_command(ack, command, services)

    bolt.command("/ship")(ship)
    bolt.command("/promote")(ship)
    return bolt


async def ship_command(ack: Any, command: dict[str, Any], services: Services) -> None:
    """Answer /ship and /promote: parse, then act or explain."""
    try:
        parsed = commands.parse(command.get("text") or "", command=command.get("command", "/ship"))
    except commands.CommandError as exc:
        await ack(text=exc.answer())
        return
    if parsed.verb == "help":
        await ack(text=commands.HELP)
        return
    who, where = command.get("user_id", ""), command.get("channel_name", "")
    if parsed.verb in ("freeze", "unfreeze"):
        await ack(
            text=await freeze.command(
                services, parsed.verb, parsed.args, user=who, channel_name=where
            )
        )
        return
    if parsed.verb == "digest":
        await ack(**await digest_post.ephemeral(services, channel_name=where))
        return
    await ack(text=f":construction: `{parsed.verb}` is not available yet. Try `/ship help`.")


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
