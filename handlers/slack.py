"""Slack: Bolt mounted in our own route for clicks; /ship and /promote run straight."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import LIMITS, SERVICES
from bot.core import commands
from bot.engine.promoters import Promoters
from bot.pipeline import approvals
from bot.services import Services
from bot.ship import context, dispatch, verbs
from handlers import payloads, slack_guard
from handlers.health import RETRY_AFTER
from storage.faults import Unavailable

log = logging.getLogger(__name__)
BOLT = web.AppKey("bolt", AsyncApp)
REPLAYS = web.AppKey("slack_replays", slack_guard.Replays)
MAX_BODY = 1024 * 1024
COMMANDS = ("/ship", "/promote")
ACK_TIMEOUT = 3.0  # Slack's deadline for an answer, after which Bolt gives up on the ack too
RUNNING: set[asyncio.Future[None]] = set()


class _TokenSkipped(logging.Filter):
    """Drop Bolt's notice that SLACK_BOT_TOKEN is unused: `authorize` supplies it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


TOKEN_SKIPPED = _TokenSkipped()


def bolt_logger() -> logging.Logger:
    """Return the logger Bolt and its middleware use: warnings only, never a request's body.

    At INFO Bolt logs the whole body of every badly signed request (anyone's text,
    up to the body cap, per request); promobot logs its own one-line refusal instead.
    """
    logger = logging.getLogger("slack_bolt.AsyncApp")
    logger.setLevel(logging.WARNING)
    if TOKEN_SKIPPED not in logger.filters:
        logger.addFilter(TOKEN_SKIPPED)
    return logger


async def listener_error(error: Exception, logger: logging.Logger) -> BoltResponse | None:
    """Answer a storage fault with 503 and one line; any other error as Bolt would (traced)."""
    if isinstance(error, Unavailable):
        reason = f"storage unavailable: {error.cause}"
        log.info("slack request refused (503): %s", reason, extra={"refusal": reason})
        return BoltResponse(
            status=503,
            body=f"promobot cannot take this now ({reason}); try again in a minute",
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    logger.exception("Failed to run listener function (error: %s)", error)
    return None


def build_bolt(services: Services, listeners: "Listeners") -> AsyncApp:
    """Build the Bolt app: signatures verified; before an ack only cached group lookups."""

    async def authorize(**_: Any) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test round trip before every ack.
        return AuthorizeResult(
            enterprise_id=None, team_id=None, bot_token=services.secrets.slack_bot_token
        )

    # Bolt reads SLACK_BOT_TOKEN itself and warns when a client or `authorize` makes it
    # unused; give it a token-less client on our session and base URL (SLACK_API_URL),
    # and let `authorize` hand the token to each request's client.
    client = AsyncWebClient(base_url=services.slack.base_url, session=services.slack.session)
    bolt = AsyncApp(
        signing_secret=services.secrets.slack_signing_secret,
        client=client,
        logger=bolt_logger(),
        authorize=authorize,
        request_verification_enabled=True,
        ssl_check_enabled=True,
        url_verification_enabled=True,
    )
    bolt.error(listener_error)
    # /ship and /promote never reach Bolt: `events` runs them itself (see slash_command).
    bolt.action("promotion.approve")(listeners.approve_button)
    bolt.action("promotion.reject")(listeners.reject_button)
    bolt.view("promotion.reject")(listeners.reject_submitted)
    return bolt


class Listeners:
    """The Bolt listeners, sharing the services and the cached promoter groups."""

    def __init__(self, services: Services, promoters: Promoters) -> None:
        self.services = services
        self.promoters = promoters

    def person(self, body: dict[str, Any]) -> context.Context:
        """Return the context of the person who clicked or submitted."""
        return context.Context(self.services, self.promoters, payloads.clicker(body))

    async def clicker(self, body: dict[str, Any]) -> context.Context:
        """Return the context of the person who clicked, their name looked up (bounded)."""
        ctx = self.person(body)
        await context.learn_name(ctx)
        return ctx

    async def ship_command(self, ack: Any, command: dict[str, Any]) -> None:
        """Answer /ship and /promote once the decision is committed (well inside 3 s)."""
        typed = payloads.slash_command(command)
        ctx = context.Context(
            self.services, self.promoters, typed.user, typed.channel_id, typed.channel_name
        )
        result = await dispatch.answer(ctx, typed.text, typed.command)
        # A verb answers with text, or with the acknowledgement's fields (text, blocks).
        if isinstance(result, dict):
            await ack(**result)
        else:
            await ack(text=result)

    async def approve_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Approve: the button's value names the promotion; its repo, sha and stage are ours."""
        ctx = await self.clicker(body)
        value, (channel, ts) = payloads.button_value(action), payloads.where_clicked(body)
        text = await verbs.unbound(ctx, value, channel, ts)
        text = text or await verbs.click(ctx, "promotion.approve", value)
        await context.tell(ctx, channel, text)
        await ack()

    async def reject_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Reject: ask for the reason in a modal (the trigger_id lives 3 s, so open it now)."""
        await ack()
        value, (channel, ts) = payloads.button_value(action), payloads.where_clicked(body)
        elsewhere = await verbs.unbound(self.person(body), value, channel, ts)
        if elsewhere:
            await context.tell(self.person(body), channel, elsewhere)
            return
        view = approvals.reject_view(value, channel)
        try:
            await self.services.slack.views_open(trigger_id=payloads.trigger_id(body), view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            fallback = approvals.reject_hint(value)
            await context.tell(self.person(body), channel, fallback)

    async def reject_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Reject with the reason typed in the modal; the answer goes to the person."""
        ctx = self.person(body)
        promotion, channel, reason = payloads.reject_submission(view)
        text = await dispatch.answer_command(ctx, commands.Command("reject", (promotion, reason)))
        await ack()
        await context.tell(ctx, channel, text if isinstance(text, str) else text.get("text", ""))


LISTENERS = web.AppKey("slack_listeners", Listeners)


async def events(request: web.Request) -> web.Response:
    """Verify a Slack request on its raw bytes, then hand it to Bolt to run the listener."""
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    deadline = request.app[LIMITS].body
    try:
        async with asyncio.timeout(deadline):
            body = await request.read()  # aiohttp answers 413 past client_max_size (1 MB)
    except TimeoutError:
        too_slow = refused(
            slack_guard.Rejected(408, f"the body did not arrive within {deadline:g} s")
        )
        too_slow.force_close()  # a client that slow gets no second request on this connection
        return too_slow
    except (ConnectionError, aiohttp.ClientPayloadError):
        return refused(
            slack_guard.Rejected(400, "the connection closed before the body was complete")
        )
    services = request.app[SERVICES]
    if slack_guard.ssl_check(body):  # answered as Bolt would, before any signature
        return web.Response(status=200)
    try:
        form = slack_guard.check(
            body,
            request.headers,
            services.secrets.slack_signing_secret,
            services.config.team_id,
            request.app[REPLAYS],
        )
    except slack_guard.Rejected as exc:
        return refused(exc)
    if form.get("command") in COMMANDS:
        return await slash_command(request.app[LISTENERS], form)
    bolt = request.app[BOLT]
    response = await bolt.async_dispatch(await to_bolt_request(request))
    if response.status == 401:
        return refused(slack_guard.Rejected(401, "the signature or its timestamp does not hold"))
    return await to_aiohttp_response(response)


async def slash_command(listeners: Listeners, form: dict[str, Any]) -> web.Response:
    """Run /ship or /promote on the verified form and answer with its ack, as Bolt would.

    Bolt checks for a command's ack every 10 ms (longer on a busy loop) and parses the
    body again; the guard has verified and read it already, so the listener runs here.
    """
    ack = AsyncAck()
    run = asyncio.ensure_future(ship(listeners, ack, form))
    RUNNING.add(run)  # a command past the deadline still finishes: keep it from collection
    run.add_done_callback(RUNNING.discard)
    await asyncio.wait({run}, timeout=ACK_TIMEOUT)
    if ack.response is None:
        log.warning("/ship was not answered within %g s", ACK_TIMEOUT)
        return web.Response(status=200)  # what Bolt answers when a listener missed the deadline
    return await to_aiohttp_response(ack.response)


async def ship(listeners: Listeners, ack: AsyncAck, form: dict[str, Any]) -> None:
    """Run the command's listener; a failure before the ack answers as Bolt's error handler."""
    try:
        await listeners.ship_command(ack, form)
    except Exception as exc:
        answer = await listener_error(exc, bolt_logger())
        if ack.response is None:
            ack.response = answer or BoltResponse(status=500, body="")


def refused(exc: slack_guard.Rejected) -> web.Response:
    """Answer a refused request and log the reason in one line (never the body)."""
    reason = exc.reason
    log.info("slack request refused (%d): %s", exc.status, reason, extra={"refusal": reason})
    if exc.answer:  # whoever typed the command sees why nothing happened
        return web.json_response({"response_type": "ephemeral", "text": exc.answer})
    if exc.status == 401:
        return web.json_response({"error": "invalid request"}, status=401)
    return web.json_response({"error": exc.reason}, status=exc.status)


def add_routes(app: web.Application) -> None:
    """Mount /slack/events and build Bolt once the services exist."""

    async def bolt_lifecycle(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        app[LISTENERS] = Listeners(services, Promoters(services.slack, services.clock.now))
        app[BOLT] = build_bolt(services, app[LISTENERS])
        app[REPLAYS] = slack_guard.Replays()
        yield

    app.cleanup_ctx.append(bolt_lifecycle)
    app.router.add_post("/slack/events", events)
