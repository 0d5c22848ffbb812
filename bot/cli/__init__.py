"""The `promobot` command: serve, check-config, manifest, digest, metrics, send."""

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import LIMITS, Inbound, create_app
from bot.cli import deliveries as deliveries_cli
from bot.cli import devcommands
from bot.cli import digest as digest_cli
from bot.cli import metrics as metrics_cli
from bot.config import (
    GITHUB_SECRETS,
    SETUP_SECRETS,
    Config,
    ConfigError,
    Secrets,
    load_config,
    load_secrets,
    parse_duration,
    require_team,
)
from bot.dev import client as devclient
from bot.dev import console as devslack
from bot.dev import forms
from bot.dev import mode as dev
from bot.engine import logs
from bot.engine.processor import Processing
from bot.manifest import github_manifest, slack_manifest
from bot.pipeline import metrics as measured

# Soaks of app.yaml are divided by this under --dev (15m becomes 7s), so the story fits a minute.
DEV_SOAK_SCALE = 120


# What to say when the entry point is missing: the checkout was never installed.
NOT_INSTALLED = (
    "promobot: this checkout is not installed, so the web handlers cannot be found.\n"
    "Install it first: `make run` (creates .venv and serves --dev), or\n"
    "`python3 -m pip install -e .` in the checkout, then run `promobot` again."
)


def load_inbound() -> Inbound:
    """Find the inbound adapters (handlers/) through their entry point."""
    points = entry_points(group="promobot.inbound", name="default")
    if len(points) != 1:
        raise SystemExit(NOT_INSTALLED)
    (point,) = points
    return point.load()()


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    config_default = os.environ.get("PROMOBOT_CONFIG", "app.yaml")
    top = argparse.ArgumentParser(prog="promobot", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--config", default=config_default)
    serve.add_argument("--db", default=os.environ.get("PROMOBOT_DB"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--dev", action="store_true", help="no accounts needed: see README")
    serve.add_argument("--no-demo", action="store_true", help="--dev without the demo story")
    serve.add_argument("--deploy-delay", type=float, default=2.0, help="--dev deployer pace (s)")
    serve.add_argument(
        "--processing",
        choices=["separate", "inline"],
        default="separate",
        help="apply deliveries and send the outbox in a child process (default) or in this one",
    )
    serve.add_argument(
        "--deploy-failures", type=rate, default=0.0, metavar="RATE",
        help="--dev: the share of deployments the deployer fails, 0 to 1",
    )  # fmt: skip
    serve.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("PROMOBOT_LOG_FORMAT") or "text",
        help="text lines, or one JSON object per line (env PROMOBOT_LOG_FORMAT)",
    )
    click = sub.add_parser("click", help="click Approve or Reject on a --dev approval message")
    click.add_argument("action", choices=("approve", "reject"))
    click.add_argument("promotion", help="the promotion's number")
    click.add_argument("reason", nargs="*", help="why (reject)")
    fail_next = sub.add_parser("fail-next", help="--dev: fail the next deployment into a stage")
    fail_next.add_argument("stage")
    for dev_command in (click, fail_next):
        dev_command.add_argument("--as", dest="user", default="U0DEVBOB", help="Slack user ID")
        dev_command.add_argument("--state", default=dev.STATE_FILE)
    send = sub.add_parser("send", help="sign and send a slash command to a --dev server")
    send.add_argument("words", nargs=argparse.REMAINDER, help="/ship status, /promote #3 baklava")
    send.add_argument("--as", dest="user", default="U012ABC", help="Slack user ID of the sender")
    send.add_argument("--url", default=None, help="the dev server (default: from the state file)")
    send.add_argument("--secret", default=None, help="Slack signing secret (default: state file)")
    send.add_argument("--state", default=dev.STATE_FILE)
    check = sub.add_parser("check-config", help="validate app.yaml")
    check.add_argument("--config", default=config_default)
    manifest = sub.add_parser("manifest", help="print the GitHub or Slack app manifest")
    manifest.add_argument("kind", choices=["github", "slack"])
    manifest.add_argument("--config", default=config_default)
    manifest.add_argument("--url", default=None)
    digest = sub.add_parser("digest", help="build the daily digest now; print it or post it")
    digest.add_argument("--config", default=config_default)
    digest.add_argument("--db", default=os.environ.get("PROMOBOT_DB"), help="default: promobot.db,"
                        " else the database `make run` made")  # fmt: skip
    digest.add_argument("--dry-run", action="store_true", help="print it; post nothing")
    deliveries = sub.add_parser(
        "deliveries", help="what GitHub sent against what promobot stored; retry or drop one"
    )
    deliveries.add_argument("verb", nargs="?", choices=("retry", "drop"))
    deliveries.add_argument("id", nargs="?", help="the delivery's GUID (X-GitHub-Delivery)")
    deliveries.add_argument("--failed", action="store_true", help="only what needs attention")
    deliveries.add_argument("--since", default="24h", help="how far back (like 2h, 3d)")
    deliveries.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    metrics = sub.add_parser("metrics", help="print DORA and flow metrics (table, JSON or CSV)")
    metrics.add_argument("--config", default=config_default)
    metrics.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    metrics.add_argument("--format", choices=metrics_cli.FORMATS, default="table")
    metrics.add_argument("--weeks", type=int, default=measured.DEFAULT_WEEKS, help="default 4")
    metrics.add_argument("--repo", default=None, help="owner/name (default: every repository)")
    return top


def summary(config: Config) -> str:
    """Describe a valid configuration in a few lines."""
    stages = " → ".join(
        s.name
        + (" (auto)" if s.auto else "")
        + (f", soak {s.soak // 60}m" if s.soak else "")
        + (f", {s.approvals} approval(s)" if s.approvals else "")
        for s in config.pipeline.stages
    )
    return "\n".join(
        [
            f"{config.source}: ok",
            f"  branch {config.pipeline.branch}; required checks: "
            f"{', '.join(config.pipeline.required_checks) or 'every reported check'}",
            f"  pipeline: {stages}",
            f"  channel {config.channel}; {len(config.channels)} repository override(s);"
            f" Slack workspace {config.team_id or '(none: --dev only)'}",
            f"  digest at {config.digest.at:%H:%M} {config.digest.timezone} on "
            f"{', '.join(config.digest.days)}",
        ]
    )


def fail(error: ConfigError) -> int:
    """Print every problem and return the exit status for a user's mistake."""
    for problem in error.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM or Ctrl-C."""
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
    app = create_app(config, secrets, db_path=db, inbound=load_inbound(), processing=processing)
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


def run(app: web.Application, args: argparse.Namespace) -> None:
    """Serve `app` until SIGTERM, closing slow and idle connections as its limits say."""
    limits = app[LIMITS]
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=5,
        print=None,
        keepalive_timeout=limits.headers,
        lingering_time=limits.lingering,
    )


def send(args: argparse.Namespace) -> int:
    """Sign a slash command with the dev server's secret and POST it; print the answer."""
    words = [w for w in args.words if w != "--"]
    if not words or words[0] not in ("/ship", "/promote"):
        print("usage: promobot send /ship <verb> … (or /promote …)", file=sys.stderr)
        return 2
    state: dict = {}
    if Path(args.state).exists():
        state = json.loads(Path(args.state).read_text(encoding="utf-8"))
    url = args.url or state.get("url") or "http://127.0.0.1:8080"
    secret = args.secret or state.get("slack_signing_secret")
    if not secret:
        print("no signing secret: start `promobot serve --dev` or pass --secret", file=sys.stderr)
        return 2
    form = forms.slash_form(
        " ".join(words[1:]),
        user=args.user,
        user_name=dev.PEOPLE.get(args.user, args.user.lower()),
        command=words[0],
        response_url=url + "/dev/slack/respond",
    )
    try:
        status, body = asyncio.run(_post(url, secret, form))
    except aiohttp.ClientError as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    return show_answer(status, body)


def show_answer(status: int, body: str) -> int:
    """Print an answer as Slack shows it (text and blocks); say the status only when it failed."""
    if status != 200:
        print(f"HTTP {status}: {body.strip()}", file=sys.stderr)
        return 1
    answer: dict[str, Any] = json.loads(body) if body.startswith("{") else {"text": body}
    lines = devslack.render(str(answer.get("text") or ""), answer.get("blocks"), dev.PEOPLE)
    print("\n".join(lines).rstrip())
    return 0


async def _post(url: str, secret: str, form: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        return await devclient.post_slack(session, url, secret, form)


def deliveries(args: argparse.Namespace) -> int:
    """List deliveries both sides saw, or retry or drop one that failed in promobot."""
    if args.verb and not args.id:
        print(f"usage: promobot deliveries {args.verb} ID", file=sys.stderr)
        return 2
    if args.verb:
        return deliveries_cli.settle_failed(args.db, args.id, args.verb)
    window = parse_duration(args.since)
    if window is None:
        print(f"error: --since {args.since!r} is not a duration (like 2h, 3d)", file=sys.stderr)
        return 2
    return deliveries_cli.show(args.db, time.time() - window, args.failed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the promobot command line."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra and args.command != "click":  # only a click's reason may follow its options
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.reason = [*args.reason, *extra]
    if args.command == "serve":
        if args.log_format not in logs.FORMATS:  # argparse checks the flag, not the environment
            print(
                f"error: PROMOBOT_LOG_FORMAT must be one of {', '.join(logs.FORMATS)}",
                file=sys.stderr,
            )
            return 2
        return serve(args)
    if args.command == "send":
        return send(args)
    if args.command in ("click", "fail-next"):
        return devcommands.click(args) if args.command == "click" else devcommands.fail_next(args)
    if args.command == "deliveries":
        return deliveries(args)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return fail(error)
    if args.command == "digest":
        args.db = devcommands.digest_db(args.db)
        if args.dry_run:
            return digest_cli.dry_run(config, args.db, time.time())
        return digest_cli.post(config, args.db)
    if args.command == "metrics":
        return metrics_cli.print_metrics(
            config, args.db, weeks=args.weeks, fmt=args.format, repo=args.repo, now=time.time()
        )
    if args.command == "check-config":
        try:
            require_team(config)
        except ConfigError as error:
            return fail(error)
        print(summary(config))
    elif args.kind == "github":
        print(json.dumps(github_manifest(config, args.url or config.url), indent=2))
    else:
        print(slack_manifest(config, args.url or config.url), end="")
    return 0
