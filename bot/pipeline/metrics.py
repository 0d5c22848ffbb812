"""Read a repository's records and measure its delivery: the one place the metrics meet SQL."""

from typing import Any

from sqlite_utils import Database

from bot.config import Config
from bot.core import records as r
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
