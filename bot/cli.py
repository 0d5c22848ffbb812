"""The `promobot` command: serve, check-config, manifest, digest."""

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from importlib.metadata import entry_points

from aiohttp import web

from bot import digest_cli, logs
from bot.app import Inbound, create_app
from bot.config import Config, ConfigError, load_config, load_secrets
from bot.manifest import github_manifest, slack_manifest


def load_inbound() -> Inbound:
    """Find the inbound adapters (handlers/) through their entry point."""
    (point,) = entry_points(group="promobot.inbound", name="default")
    return point.load()()


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    config_default = os.environ.get("PROMOBOT_CONFIG", "app.yaml")
    top = argparse.ArgumentParser(prog="promobot", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--config", default=config_default)
    serve.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--dev", action="store_true", help="no accounts needed: see README")
    check = sub.add_parser("check-config", help="validate app.yaml")
    check.add_argument("--config", default=config_default)
    manifest = sub.add_parser("manifest", help="print the GitHub or Slack app manifest")
    manifest.add_argument("kind", choices=["github", "slack"])
    manifest.add_argument("--config", default=config_default)
    manifest.add_argument("--url", default=None)
    digest = sub.add_parser("digest", help="build the daily digest now; print it or post it")
    digest.add_argument("--config", default=config_default)
    digest.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    digest.add_argument("--dry-run", action="store_true", help="print it; post nothing")
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
            f"  channel {config.channel}; {len(config.channels)} repository override(s)",
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
    try:
        config = load_config(args.config)
        secrets = load_secrets(os.environ)
    except ConfigError as error:
        if args.dev is False and any("environment" in p for p in error.problems):
            print("promobot serve needs these secrets (or try --dev):", file=sys.stderr)
        return fail(error)
    logs.setup(
        secrets=(
            secrets.github_webhook_secret,
            secrets.slack_signing_secret,
            secrets.slack_bot_token,
            secrets.github_private_key,
        )
    )
    app = create_app(config, secrets, db_path=args.db, inbound=load_inbound())
    web.run_app(app, host=args.host, port=args.port, shutdown_timeout=5, print=None)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the promobot command line."""
    args = parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return fail(error)
    if args.command == "digest":
        if args.dry_run:
            return digest_cli.dry_run(config, args.db, time.time())
        return digest_cli.post(config, args.db)
    if args.command == "check-config":
        print(summary(config))
    elif args.kind == "github":
        print(json.dumps(github_manifest(config, args.url or config.url), indent=2))
    else:
        print(slack_manifest(config, args.url or config.url), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
