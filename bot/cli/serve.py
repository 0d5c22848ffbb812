"""`promobot serve [--dev]`: run the service, or the whole thing on a laptop with no accounts."""

import argparse
import asyncio
import gc
import os
import sys
from importlib.metadata import entry_points

import uvloop
from aiohttp import web

from bot.app import LIMITS, Inbound, create_app
from bot.cli.configure import Subcommands, fail
from bot.config import (
    GITHUB_SECRETS,
    SETUP_SECRETS,
    Config,
    ConfigError,
    Secrets,
    load_config,
    load_secrets,
    require_team,
)
from bot.dev import mode as dev
from bot.engine import logs
from bot.engine.processor import Processing
from storage.connection import INGEST_WAL_BYTES

# Soaks of app.yaml are divided by this under --dev (15m becomes 7s), so the story fits a minute.
DEV_SOAK_SCALE = 120
# Seconds the event loop's thread keeps the interpreter lock while the database writer thread
# waits for it (Python's default is 5 ms). The writer needs it back after every SQLite call:
# under load, at the default, each step of a group commit waited up to 5 ms for the loop.
SWITCH_INTERVAL = 0.0005
# Allocations between two collections of the young generation (Python's default is 700).
GC_YOUNG = 10_000
# Connections the kernel holds, established, until the event loop accepts them (aiohttp's
# default is 128). GitHub sends each delivery as a request of its own, on a new connection
# when it has none free: when the loop is busy for a few tens of ms under a burst, more than
# 128 arrive, the kernel drops the overflow's handshakes, and each such delivery waits for its
# sender to try again, a second later. Linux caps this at net.core.somaxconn (4096 since 5.4).
LISTEN_BACKLOG = 2048


# What to say when the entry point is missing: the checkout was never installed.
NOT_INSTALLED = (
    "promobot: this checkout is not installed, so the web handlers cannot be found.\n"
    "Install it first: `make run` (creates .venv and serves --dev), or\n"
    "`python3 -m pip install -e .` in the checkout, then run `promobot` again."
)


def add_commands(sub: Subcommands, config_default: str) -> None:
    """Add serve to the `promobot` parser."""
    command = sub.add_parser("serve", help="run the service")
    command.add_argument("--config", default=config_default)
    command.add_argument("--db", default=os.environ.get("PROMOBOT_DB"))
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8080)
    command.add_argument("--dev", action="store_true", help="no accounts needed: see README")
    command.add_argument("--no-demo", action="store_true", help="--dev without the demo story")
    command.add_argument("--deploy-delay", type=float, default=2.0, help="--dev deployer pace (s)")
    command.add_argument(
        "--processing",
        choices=["separate", "inline"],
        default="separate",
        help="apply deliveries and send the outbox in a child process (default) or in this one",
    )
    command.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the event loop: uvloop (default), or Python's own should uvloop ever misbehave",
    )
    command.add_argument(
        "--deploy-failures", type=rate, default=0.0, metavar="RATE",
        help="--dev: the share of deployments the deployer fails, 0 to 1",
    )  # fmt: skip
    command.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("PROMOBOT_LOG_FORMAT") or "text",
        help="text lines, or one JSON object per line (env PROMOBOT_LOG_FORMAT)",
    )
    command.add_argument(
        "--ingest-wal-mb",
        type=megabytes,
        default=INGEST_WAL_BYTES >> 20,
        metavar="MB",
        help="disk the ingest file's WAL is kept at, written ahead while quiet (0: as it grows)",
    )
    command.set_defaults(run=serve)


def load_inbound() -> Inbound:
    """Find the inbound adapters (handlers/) through their entry point."""
    points = entry_points(group="promobot.inbound", name="default")
    if len(points) != 1:
        raise SystemExit(NOT_INSTALLED)
    (point,) = points
    return point.load()()


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM or Ctrl-C."""
    if args.log_format not in logs.FORMATS:  # argparse checks the flag, not the environment
        print(
            f"error: PROMOBOT_LOG_FORMAT must be one of {', '.join(logs.FORMATS)}", file=sys.stderr
        )
        return 2
    if args.dev:
        return serve_dev(args)
    try:
        config = load_config(args.config)
        require_team(config)
        secrets = serve_secrets(config)
    except ConfigError as error:
        if args.dev is False and any("environment" in p for p in error.problems):
            print("promobot serve needs these secrets (or try --dev):", file=sys.stderr)
        return fail(error)
    setup_logs(secrets, args.log_format)
    db = args.db or "promobot.db"
    # --dev keeps everything in one process: its console and deployer live beside the relay.
    separate = args.processing == "separate"
    processing = Processing(args.config, db, args.log_format) if separate else None
    app = create_app(
        config,
        secrets,
        db_path=db,
        inbound=load_inbound(),
        processing=processing,
        ingest_wal=args.ingest_wal_mb << 20,
    )
    run(app, args)
    return 0


def setup_logs(secrets: Secrets, fmt: str = "text") -> None:
    """Log to stderr with every secret redacted."""
    logs.setup(
        secrets=(
            secrets.github_webhook_secret,
            secrets.slack_signing_secret,
            secrets.slack_bot_token,
            secrets.github_private_key,
        ),
        fmt=fmt,
    )


def serve_secrets(config: Config) -> Secrets:
    """Read serve's secrets; with no GitHub secret at all, start for the App's set-up."""
    names = (*GITHUB_SECRETS, "GITHUB_PRIVATE_KEY_FILE")
    if any(os.environ.get(name, "").strip() for name in names):
        return load_secrets(os.environ)
    secrets = load_secrets(os.environ, SETUP_SECRETS)
    print(
        f"No GitHub App is configured yet: open {config.url}/github/setup to create it.",
        file=sys.stderr,
    )
    return secrets


def serve_dev(args: argparse.Namespace) -> int:
    """Run with random secrets, a fake Slack and GitHub shown on the console, and the demo."""
    try:
        original = load_config(args.config)
    except ConfigError as error:
        return fail(error)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    url = f"http://{host}:{args.port}"
    secrets = dev.dev_secrets(url)
    config = dev.scale_soaks(original, DEV_SOAK_SCALE)
    mode = dev.DevMode(
        url=url,
        deploy_delay=args.deploy_delay,
        deploy_failures=args.deploy_failures,
        demo=not args.no_demo,
    )
    db = args.db or dev.DEV_DB
    logs.setup(secrets=(secrets.github_private_key, secrets.slack_bot_token), fmt=args.log_format)
    print(dev.banner(config, original, secrets, mode, db), flush=True)
    dev.write_state(dev.STATE_FILE, secrets, url, db)
    app = create_app(config, secrets, db_path=db, inbound=load_inbound(), dev=mode)
    run(app, args)
    return 0


def rate(text: str) -> float:
    """Read a rate between 0 and 1 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate between 0 and 1 (like 0.3)")
    return value


def megabytes(text: str) -> int:
    """Read a whole number of megabytes, 0 or more (argparse type)."""
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MB (like 640)")
    return int(text)


def settle_collector() -> None:
    """Freeze what start-up built, and collect the young generation less often."""
    # What is alive once the app is built (modules, routes, the app: ~75,000 objects) stays
    # alive. Walked by every full collection, it stopped the event loop 30-74 ms under load,
    # longer than an acknowledgement's p99; frozen, a full collection walks only what came
    # after. Rarer young collections move fewer in-flight requests' objects to the old ones.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])


def run(app: web.Application, args: argparse.Namespace) -> None:
    """Serve `app` until SIGTERM, closing slow and idle connections as its limits say."""
    limits = app[LIMITS]
    sys.setswitchinterval(SWITCH_INTERVAL)
    settle_collector()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=5,
        backlog=LISTEN_BACKLOG,
        print=None,
        access_log=None,  # off anyway (logs.setup); None spares every request the check
        keepalive_timeout=limits.headers,
        lingering_time=limits.lingering,
        loop=uvloop.new_event_loop() if args.loop == "uvloop" else asyncio.new_event_loop(),
    )
