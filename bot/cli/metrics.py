"""`promobot metrics [--format table|json|csv] [--weeks N]`: the delivery report, for BI tools."""

import json
import sys
from pathlib import Path

from bot.config import Config
from bot.core import metrics_text
from bot.pipeline import metrics as measured
from storage import connect, migrate

FORMATS = ("table", "json", "csv")


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
