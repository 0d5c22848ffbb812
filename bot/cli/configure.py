"""`promobot check-config` and `promobot manifest`, and how every command reads app.yaml."""

import argparse
import json
import sys
from collections.abc import Callable
from typing import TypeAlias

from bot.config import Config, ConfigError, load_config, require_team
from bot.manifest import github_manifest, slack_manifest

Command = Callable[[argparse.Namespace], int]
# What add_subparsers returns: generic only to the type checker, hence the string.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_commands(sub: Subcommands, config_default: str) -> None:
    """Add check-config and manifest to the `promobot` parser."""
    check = sub.add_parser("check-config", help="validate app.yaml")
    check.add_argument("--config", default=config_default)
    check.set_defaults(run=with_config(check_config))
    manifest = sub.add_parser("manifest", help="print the GitHub or Slack app manifest")
    manifest.add_argument("kind", choices=["github", "slack"])
    manifest.add_argument("--config", default=config_default)
    manifest.add_argument("--url", default=None)
    manifest.set_defaults(run=with_config(print_manifest))


def fail(error: ConfigError) -> int:
    """Print every problem and return the exit status for a user's mistake."""
    for problem in error.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1


def with_config(command: Callable[[Config, argparse.Namespace], int]) -> Command:
    """Return `command` run with the app.yaml of `--config`, or every problem in it printed."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
        except ConfigError as error:
            return fail(error)
        return command(config, args)

    return run


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


def check_config(config: Config, args: argparse.Namespace) -> int:
    """Print the configuration's summary, or what keeps it from serving."""
    try:
        require_team(config)
    except ConfigError as error:
        return fail(error)
    print(summary(config))
    return 0


def print_manifest(config: Config, args: argparse.Namespace) -> int:
    """Print the GitHub App manifest (JSON) or the Slack app manifest (YAML)."""
    if args.kind == "github":
        print(json.dumps(github_manifest(config, args.url or config.url), indent=2))
    else:
        print(slack_manifest(config, args.url or config.url), end="")
    return 0
