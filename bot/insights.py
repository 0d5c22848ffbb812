"""Read a repository's records and measure its delivery: the one place the metrics meet SQL."""

from typing import Any

from markupsafe import Markup
from sqlite_utils import Database

from bot.config import Config
from bot.core import charts as c
from bot.core import metrics_text
from bot.core import records as r
from bot.core.gates import duration
from bot.core.report import Report, measure
from storage import builds
from storage import metrics as q

DEFAULT_WEEKS = 4
MAX_WEEKS = 52


def records(db: Database, config: Config, repo_id: int, since: float) -> r.Records:
    """Read the plain records of one repository from `since` on."""
    stages = tuple(s.name for s in config.pipeline.stages)
    rows = q.delivery_rows(db, repo_id, stages[-1], since)
    return r.Records(
        stages=stages,
        builds=tuple(r.Build(*b) for b in rows["builds"]),
        commits=tuple(r.Commit(*c) for c in rows["commits"]),
        deployments=tuple(_deployment(d) for d in rows["deployments"]),
        rollbacks=tuple(r.Rollback(**x) for x in rows["rollbacks"]),
        locks=tuple(_lock(lk) for lk in rows["locks"]),
        soaks={s.name: float(s.soak) for s in config.pipeline.stages},
        floor=rows["floor"],
    )


def _deployment(row: dict[str, Any]) -> r.Deployment:
    return r.Deployment(**{**row, "rollback": bool(row["rollback"])})


def _lock(row: dict[str, Any]) -> r.Lock:
    ends = [t for t in (row["lifted_at"], row["expires_at"]) if t is not None]
    return r.Lock(row["stage"], row["start"], min(ends) if ends else None)


def report(db: Database, config: Config, repo: dict[str, Any], weeks: int, now: float) -> Report:
    """Measure one repository over the `weeks` weeks before `now`."""
    since = now - weeks * r.WEEK
    return measure(repo["full_name"], records(db, config, repo["id"], since), now, weeks)


def reports(db: Database, config: Config, weeks: int, now: float) -> list[Report]:
    """Measure every repository, by name."""
    return [report(db, config, repo, weeks, now) for repo in builds.repositories(db)]


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
