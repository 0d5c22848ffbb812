"""GET /insights: every repository's delivery metrics, with their charts drawn as SVG."""

from typing import Any

from markupsafe import Markup
from sqlite_utils import Database

from bot.config import Config
from bot.core import charts as c
from bot.core import metrics_text
from bot.core.report import Report
from bot.core.text import duration
from bot.pipeline.metrics import reports


def charts(report: Report) -> list[Markup]:
    """Draw a report's five charts as inline SVG, week by week."""
    weeks = report.weeks
    labels = [metrics_text.day(w.start)[5:] for w in weeks]
    prod = report.production
    waits = [
        (s.stage, {k: v / s.entered for k, v in s.reasons.items()} if s.entered else {})
        for s in report.total.flow.stages
    ]
    drawn = [
        c.bars(f"Deployments to {prod} per week", labels, [w.dora.deployments for w in weeks], _n),
        c.bars("Lead time for changes (median)", labels, [w.dora.lead_median for w in weeks], _d),
        c.bars(
            "Change failure rate",
            labels,
            [w.dora.change_failure_rate for w in weeks],
            metrics_text.percent,
            c.COLOURS["bad"],
        ),
        c.stacked("Average wait before each stage, and why", waits, _d),
        c.bars(
            "Failed builds per week",
            labels,
            [w.flow.failed_builds for w in weeks],
            _n,
            c.COLOURS["bad"],
        ),
    ]
    return [Markup(svg) for svg in drawn]  # built from numbers and escaped labels only


def _n(value: float) -> str:
    return f"{value:.0f}"


def _d(seconds: float) -> str:
    return duration(seconds)


def page(db: Database, config: Config, weeks: int, now: float) -> dict[str, Any]:
    """Return everything GET /insights shows."""
    views = []
    for found in reports(db, config, weeks, now):
        lines = metrics_text.slack(found).replace("*", "").replace("_", "").splitlines()
        views.append({"report": found, "lines": lines[1:], "charts": charts(found)})
    return {"repositories": views, "weeks": weeks, "now": now}
