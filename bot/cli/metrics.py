"""`promobot metrics [--format table|json|csv] [--weeks N]`: the delivery report, for BI tools."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bot.cli.configure import Subcommands, with_config
from bot.config import Config
from bot.core import metrics_text
from bot.pipeline import metrics as measured
from storage import connect, migrate

FORMATS = ("table", "json", "csv")


def add_commands(sub: Subcommands, config_default: str) -> None:
    """Add metrics to the `promobot` parser."""
    metrics = sub.add_parser("metrics", help="print DORA and flow metrics (table, JSON or CSV)")
    metrics.add_argument("--config", default=config_default)
    metrics.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    metrics.add_argument("--format", choices=FORMATS, default="table")
    metrics.add_argument("--weeks", type=int, default=measured.DEFAULT_WEEKS, help="default 4")
    metrics.add_argument("--repo", default=None, help="owner/name (default: every repository)")
    metrics.set_defaults(run=with_config(command))


def command(config: Config, args: argparse.Namespace) -> int:
    """Print the metrics as the flags ask."""
    return print_metrics(
        config, args.db, weeks=args.weeks, fmt=args.format, repo=args.repo, now=time.time()
    )


def print_metrics(
    config: Config, db_path: str | Path, *, weeks: int, fmt: str, repo: str | None, now: float
) -> int:
    """Print every repository's metrics (or one's) over `weeks` weeks; 1 for a bad argument."""
    if not 1 <= weeks <= measured.MAX_WEEKS:
        print(f"error: --weeks must be 1 to {measured.MAX_WEEKS}, not {weeks}", file=sys.stderr)
        return 1
    migrate(db_path)
    db = connect(db_path, readonly=True)
    try:
        reports = measured.reports(db, config, weeks, now)
    finally:
        db.close()
    if repo:
        reports = [r for r in reports if r.repository.lower() == repo.lower()]
        if not reports:
            print(f"error: promobot does not follow {repo}", file=sys.stderr)
            return 1
    if fmt == "json":
        print(json.dumps(metrics_text.as_json(reports), indent=2))
    elif fmt == "csv":
        print(metrics_text.as_csv(reports), end="")
    else:
        print(metrics_text.as_table(reports))
    return 0
