"""The app factory and composition root: build every service once, start and stop them."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from gidgethub.routing import Router
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config, Secrets
from bot.core.clock import Clock
from bot.dev import demo
from bot.dev.client import DEV_TEAM
from bot.dev.console import Console
from bot.dev.mode import PEOPLE, Deployer, DevMode, dev_runtime
from bot.engine import approval_sweep, ingest, logs, scheduler
from bot.engine.github import GitHubClient, github_senders
from bot.engine.metrics import Metrics
from bot.engine.names import Names
from bot.engine.processor import Processing
from bot.engine.redeliver import Sweeper, redeliver_senders
from bot.engine.relay import Relay, Sender
from bot.engine.slack import slack_senders
from bot.engine.slack_api import observe_calls, restore_pauses
from bot.engine.supervisor import Supervisor
from bot.engine.worker import Worker
from bot.pipeline import digest_post, registry
from bot.pipeline.tx import Reaction
from bot.services import Services
from storage import Store

log = logging.getLogger(__name__)
SERVICES = web.AppKey("services", Services)
METRICS_EVERY = 5.0  # seconds between the processing child's saves of its counters
SHUTDOWN_GRACE = 3.0  # seconds; with aiohttp's 5 s for requests, SIGTERM exits within 10 s


@dataclass(frozen=True)
class Limits:
    """How long a client may take: slow and idle connections are closed, not kept forever."""

    # A connection must send a request's complete headers within this many seconds of
    # connecting or of its previous answer (aiohttp's keep-alive timer covers both).
    headers: float = 15.0
    # A body must arrive within this: GitHub gives up on a delivery after 10 s anyway.
    body: float = 10.0
    # After refusing a body, read and drop what still comes for at most this long.
    lingering: float = 2.0

    def server_options(self) -> dict[str, float]:
        """Return the aiohttp server settings `promobot serve` uses (for a test's runner)."""
        return {"keepalive_timeout": self.headers, "lingering_time": self.lingering}


LIMITS = web.AppKey("limits", Limits)


@dataclass(frozen=True)
class Inbound:
    """What the inbound adapters (handlers/) contribute: the event router and the HTTP routes."""

    router: Router
    add_routes: Callable[[web.Application], None]
    # What a delivery's log lines say of it (repository, stage, promotion), read from its body
    about: Callable[[Any], dict[str, Any]]


def create_app(
    config: Config,
    secrets: Secrets,
    *,
    db_path: str | Path,
    inbound: Inbound,
    clock: Clock | None = None,
    reactions: Sequence[Reaction] | None = None,
    extra_senders: Callable[[Services], dict[str, Sender]] | None = None,
    digest_schedule: bool = True,
    redeliver: bool = True,
    dev: DevMode | None = None,
    processing: Processing | None = None,
    metrics_file: Path | None = None,
    limits: Limits | None = None,
) -> web.Application:
    """Build the aiohttp application; services start with it and stop with it.

    `dev` (from `promobot serve --dev` only) swaps the last hop to Slack and
    GitHub for local stand-ins; it needs the secrets dev mode made. With
    `processing`, this process only answers (acknowledges, commands, pages) and
    the worker, relay and schedules run in the processing child instead.
    """
    if dev is not None and not secrets.dev:
        raise ValueError("dev mode runs only with the random secrets of `promobot serve --dev`")
    if dev is not None:  # the demo and `promobot send` speak for the dev workspace
        config = dataclasses.replace(config, team_id=DEV_TEAM)
    logs.redact_everywhere(
        (
            secrets.github_webhook_secret,
            secrets.slack_signing_secret,
            secrets.slack_bot_token,
            secrets.github_private_key,
            secrets.dashboard_token,
            secrets.metrics_token,
            *secrets.retired_webhook_secrets,
        )
    )
    app = web.Application()
    app.on_response_prepare.append(name_the_server)
    app[LIMITS] = limits or Limits()
    # Under a processing child, its counters come from the file it saves (see Metrics).
    metrics = Metrics(child=processing.metrics_file if processing is not None else None)
    clock = clock or Clock()
    reactions = registry.reactions() if reactions is None else reactions

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # With a processing child, its commits copy the WAL into the database, never an ack's;
        # acknowledgements go to the ingest file, which only this process writes.
        store = Store(db_path, checkpoints=processing is None)
        store.open()
        intake = Store(db_path, checkpoints=False, intake=True) if processing else None
        if intake is not None:
            intake.open()
        session = aiohttp.ClientSession()
        slack = AsyncWebClient(
            token=secrets.slack_bot_token, base_url=secrets.slack_api_url, session=session
        )
        github = GitHubClient(
            session,
            app_id=secrets.github_app_id,
            private_key=secrets.github_private_key,
            api_url=secrets.github_api_url,
            clock=clock.now,
        )
        supervisor = Supervisor()
        github.on_call = partial(metrics.call, "github")
        observe_calls(slack, partial(metrics.call, "slack"))
        await restore_pauses(slack, store)  # a 429's pause outlives a restart within it
        relay = Relay(store, {}, clock=clock.now, supervisor=supervisor, metrics=metrics)
        worker = Worker(
            store,
            inbound.router,
            config,
            clock,
            reactions,
            on_commit=relay.wake,
            beat=partial(supervisor.beat, "worker"),
            nudge=partial(supervisor.nudge, "worker"),
            about=inbound.about,
        )
        worker.metrics = metrics
        services = Services(
            config, secrets, store, clock, worker, relay, github, slack, supervisor, metrics
        )
        names = services.names = Names(slack, clock.now, store)
        services.intake = intake
        relay.senders.update(slack_senders(slack, store))
        relay.senders.update(github_senders(github, registry.github_recorders()))
        relay.senders.update(redeliver_senders(github, store, clock, metrics))
        sweeper = Sweeper(store, github, config, clock, relay.wake)
        if extra_senders:
            relay.senders.update(extra_senders(services))
        app[SERVICES] = services
        if processing is not None:
            # Waking the worker or the relay means nudging the child that runs them.
            worker.wake = relay.wake = processing.wake  # type: ignore[method-assign]
            processing.started = partial(supervisor.beat, "processing")
            supervisor.start("processing", processing.run)
            supervisor.elsewhere["processing"] = processing.problems
        else:
            start_processing(services, sweeper, digest_schedule, redeliver, dev)
        if intake is not None:  # what the child has copied out of the ingest file goes
            supervisor.start("ingest-prune", partial(ingest.prune, intake))
        if metrics_file is not None:  # the processing child: tell the serving process
            supervisor.start("metrics-file", partial(save_metrics, metrics, metrics_file))
        log.info("promobot ready: database %s", db_path)
        try:
            yield
        finally:
            # Finish what is in hand (ready deliveries, calls in flight), then stop;
            # whatever is left stays in the tables for the next start.
            def finish() -> None:
                worker.stop()
                relay.stop()
                sweeper.stop()
                if processing is not None:
                    processing.stop()

            await supervisor.stop(SHUTDOWN_GRACE, before=finish)
            await names.stop()  # a lookup past its answer ends with the session it uses
            if metrics_file is not None:
                metrics.save(metrics_file)  # the last figures, for the next scrape
            await session.close()
            await asyncio.get_running_loop().run_in_executor(None, store.close)
            if intake is not None:
                await asyncio.get_running_loop().run_in_executor(None, intake.close)

    app.cleanup_ctx.append(lifecycle)
    inbound.add_routes(app)
    return app


async def save_metrics(metrics: Metrics, path: Path) -> None:
    """Save the worker's and relay's counters for GET /metrics every few seconds."""
    while True:
        await asyncio.to_thread(metrics.save, path)
        await asyncio.sleep(METRICS_EVERY)


def start_processing(
    services: Services,
    sweeper: Sweeper,
    digest_schedule: bool,
    redeliver: bool,
    dev: DevMode | None,
) -> None:
    """Start the worker, the relay, the sweeps, the digest schedule (and dev mode), supervised."""
    supervisor, config, clock = services.supervisor, services.config, services.clock
    # The worker waits at most 30 s between loops and the relay 1 s: a task silent
    # for much longer than that is stuck, and /healthz says so.
    supervisor.start("worker", services.worker.run, beat_limit=120.0)
    supervisor.start("relay", services.relay.run, beat_limit=60.0)
    # Approval requests also expire lazily on every command; the sweep edits the
    # messages of those nobody touches.
    supervisor.start("approval-sweep", partial(approval_sweep.sweep, services))
    if digest_schedule:
        post = partial(digest_post.post_all, services)
        supervisor.start("digest", partial(scheduler.run, config.digest, clock.now, post))
    # Dev mode has no GitHub to ask; nor has a service still waiting for its App set-up.
    secrets = services.secrets
    if redeliver and dev is None and secrets.github_app_id and secrets.github_private_key:
        supervisor.start("redeliver", sweeper.run)
    if dev is not None:
        start_dev(services, dev)


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """Say `promobot` in the Server header: no Python or aiohttp version for anyone to aim at."""
    response.headers["Server"] = "promobot"


def start_dev(services: Services, mode: DevMode) -> None:
    """Serve the fake Slack and GitHub the real senders call; start the deployer (and demo)."""
    console = Console(mode.write, names=PEOPLE)
    now = services.clock.now
    services.dev = dev_runtime(services.config, console, services.store, mode, now)
    deployer = Deployer(services.store, services.secrets, mode, now, services.dev.fail_next)
    services.supervisor.start("dev-deployer", deployer.run)
    if mode.demo:
        story = demo.Demo(services, mode)
        services.supervisor.start("demo", story.play, restart=False)
