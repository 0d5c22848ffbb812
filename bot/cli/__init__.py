"""The `promobot` command: serve, check-config, manifest, digest, metrics, send."""

import argparse
import os
from collections.abc import Sequence

from bot.cli import configure, deliveries, devcommands, digest, metrics, serve


def parser() -> argparse.ArgumentParser:
    """Build the argument parser: each command family adds its commands and what runs them."""
    config_default = os.environ.get("PROMOBOT_CONFIG", "app.yaml")
    top = argparse.ArgumentParser(prog="promobot", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    # In this order in `promobot --help`.
    serve.add_commands(sub, config_default)
    devcommands.add_commands(sub)
    configure.add_commands(sub, config_default)
    digest.add_commands(sub, config_default)
    deliveries.add_commands(sub)
    metrics.add_commands(sub, config_default)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the promobot command line."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra and args.command != "click":  # only a click's reason may follow its options
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.reason = [*args.reason, *extra]
    status: int = args.run(args)
    return status
