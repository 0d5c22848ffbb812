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
    ingest_wal: int = 0,
) -> web.Application:
    """Build the aiohttp application; services start with it and stop with it.

    `dev` (from `promobot serve --dev` only) swaps the last hop to Slack and
    GitHub for local stand-ins; it needs the secrets dev mode made. With
    `processing`, this process only answers (acknowledges, commands, pages) and
    the worker, relay and schedules run in the processing child instead; `ingest_wal` is
    then the bytes its ingest file's WAL is kept at (0: as it grows).
    """
    if dev is not None and not secrets.dev:
        raise ValueError("dev mode runs only with the random secrets of `promobot serve --dev`")
    if dev is not None:  # the demo and `promobot send` speak for the dev workspace
        config = dataclasses.replace(config, team_id=DEV_TEAM)
    logs.redact_everywhere(secrets.kept_from_logs())
    app = web.Application()
    app.on_response_prepare.append(name_the_server)
    app[LIMITS] = limits or Limits()
    setup = Setup(
        config=config,
        secrets=secrets,
        db_path=db_path,
        inbound=inbound,
        clock=clock or Clock(),
        reactions=registry.reactions() if reactions is None else reactions,
        # Under a processing child, its counters come from the file it saves (see Metrics).
        metrics=Metrics(child=processing.metrics_file if processing is not None else None),
        extra_senders=extra_senders,
        digest_schedule=digest_schedule,
        redeliver=redeliver,
        dev=dev,
        processing=processing,
        metrics_file=metrics_file,
        ingest_wal=ingest_wal,
    )
    app.cleanup_ctx.append(partial(lifecycle, setup))
    inbound.add_routes(app)
    return app


@dataclass(frozen=True)
class Setup:
    """What create_app was asked for: what the lifecycle starts the services with."""

    config: Config
    secrets: Secrets
    db_path: str | Path
    inbound: Inbound
    clock: Clock
    reactions: Sequence[Reaction]
    metrics: Metrics
    extra_senders: Callable[[Services], dict[str, Sender]] | None
    digest_schedule: bool
    redeliver: bool
    dev: DevMode | None
    processing: Processing | None
    metrics_file: Path | None
    ingest_wal: int


async def lifecycle(setup: Setup, app: web.Application) -> AsyncIterator[None]:
    """Start the services with the app; stop them with it, finishing what is in hand."""
    services, sweeper, session = await open_services(setup)
    app[SERVICES] = services
    start_tasks(setup, services, sweeper)
    log.info("promobot ready: database %s", setup.db_path)
    try:
        yield
    finally:
        await close_services(setup, services, sweeper, session)


async def open_services(setup: Setup) -> tuple[Services, Sweeper, aiohttp.ClientSession]:
    """Open the stores and the Slack and GitHub clients; build the worker, relay and senders."""
    config, clock, metrics = setup.config, setup.clock, setup.metrics
    # With a processing child, its commits copy the WAL into the database, never an ack's;
    # acknowledgements go to the ingest file, which only this process writes.
    store = Store(setup.db_path, checkpoints=setup.processing is None)
    store.open()
    intake = None
    if setup.processing is not None:
        intake = Store(setup.db_path, checkpoints=False, intake=True, wal_size=setup.ingest_wal)
        intake.open()
    session = aiohttp.ClientSession()
    slack, github = clients(setup, session)
    supervisor = Supervisor()
    await restore_pauses(slack, store)  # a 429's pause outlives a restart within it
    relay = Relay(store, {}, clock=clock.now, supervisor=supervisor, metrics=metrics)
    worker = Worker(
        store,
        setup.inbound.router,
        config,
        clock,
        setup.reactions,
        on_commit=relay.wake,
        beat=partial(supervisor.beat, "worker"),
        nudge=partial(supervisor.nudge, "worker"),
        about=setup.inbound.about,
    )
    worker.metrics = metrics
    services = Services(
        config, setup.secrets, store, clock, worker, relay, github, slack, supervisor, metrics
    )
    services.names = Names(slack, clock.now, store)
    services.intake = intake
    relay.senders.update(slack_senders(slack, store))
    relay.senders.update(github_senders(github, registry.github_recorders()))
    relay.senders.update(redeliver_senders(github, store, clock, metrics))
    sweeper = Sweeper(store, github, config, clock, relay.wake)
    if setup.extra_senders:
        relay.senders.update(setup.extra_senders(services))
    return services, sweeper, session


def clients(setup: Setup, session: aiohttp.ClientSession) -> tuple[AsyncWebClient, GitHubClient]:
    """Return the Slack and GitHub clients on `session`, each counting its calls."""
    secrets = setup.secrets
    slack = AsyncWebClient(
        token=secrets.slack_bot_token, base_url=secrets.slack_api_url, session=session
    )
    github = GitHubClient(
        session,
        app_id=secrets.github_app_id,
        private_key=secrets.github_private_key,
        api_url=secrets.github_api_url,
        clock=setup.clock.now,
    )
    github.on_call = partial(setup.metrics.call, "github")
    observe_calls(slack, partial(setup.metrics.call, "slack"))
    return slack, github


def start_tasks(setup: Setup, services: Services, sweeper: Sweeper) -> None:
    """Start this process's supervised tasks: processing here or in its child, and upkeep."""
    supervisor, processing = services.supervisor, setup.processing
    if processing is not None:
        # Waking the worker or the relay means nudging the child that runs them.
        services.worker.wake = services.relay.wake = processing.wake  # type: ignore[method-assign]
        processing.started = partial(supervisor.beat, "processing")
        supervisor.start("processing", processing.run)
        supervisor.elsewhere["processing"] = processing.problems
    else:
        start_processing(services, sweeper, setup.digest_schedule, setup.redeliver, setup.dev)
    if services.intake is not None:  # what the child has copied out of the ingest file goes
        supervisor.start("ingest-prune", partial(ingest.prune, services.intake))
    if setup.metrics_file is not None:  # the processing child: tell the serving process
        supervisor.start("metrics-file", partial(save_metrics, setup.metrics, setup.metrics_file))


async def close_services(
    setup: Setup, services: Services, sweeper: Sweeper, session: aiohttp.ClientSession
) -> None:
    """Finish what is in hand (ready deliveries, calls in flight), then stop and close.

    Whatever is left stays in the tables for the next start.
    """

    def finish() -> None:
        services.worker.stop()
        services.relay.stop()
        sweeper.stop()
        if services.dev is not None:
            services.dev.stop()
        if setup.processing is not None:
            setup.processing.stop()

    await services.supervisor.stop(SHUTDOWN_GRACE, before=finish)
    if services.names is not None:  # a lookup past its answer ends with the session it uses
        await services.names.stop()
    if setup.metrics_file is not None:
        setup.metrics.save(setup.metrics_file)  # the last figures, for the next scrape
    await session.close()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, services.store.close)
    if services.intake is not None:
        await loop.run_in_executor(None, services.intake.close)


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
    deployer = services.dev.deployer = Deployer(
        services.store, services.secrets, mode, now, services.dev.fail_next
    )
    services.supervisor.start("dev-deployer", deployer.run)
    if mode.demo:
        story = demo.Demo(services, mode)
        services.supervisor.start("demo", story.play, restart=False)
