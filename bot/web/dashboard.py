"""The dashboard's content: what is in each stage, the value stream map, one build's journey.

Shaped here from plain queries, rendered by Jinja2 templates (bot/web/templates/)
with autoescaping on: commit messages and names are never trusted as HTML.
"""

import functools
import time
from typing import Any

import jinja2
from sqlite_utils import Database

from bot.config import Config
from bot.core import diff, story
from bot.core import stream as cells
from bot.core.text import duration, first_line, safe_url
from bot.pipeline import diffs
from bot.web.stream import stream
from storage import builds, commits
from storage import dashboard as q


def clock(at: float | None) -> str:
    """Show a time of day in UTC (HH:MM:SS)."""
    return time.strftime("%H:%M:%S", time.gmtime(at)) if at else ""


def stamp(at: float | None) -> str:
    """Show a full UTC timestamp."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else ""


def href(url: str | None) -> str:
    """Return `url` if it is a safe http(s) URL, else a harmless '#' (no javascript: links)."""
    return safe_url(url) or "#"


PEOPLE_KEYS = ("requested_by", "locked_by", "decided_by", "frozen_by", "actor", "approved_by")


def people_in(data: Any) -> set[str]:
    """Return every person a page names (Slack IDs among them get looked up by name)."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key in PEOPLE_KEYS and isinstance(value, str):
                found.update(v.strip() for v in value.split(","))
            else:
                found |= people_in(value)
    elif isinstance(data, list | tuple):
        for item in data:
            found |= people_in(item)
    return found


@jinja2.pass_context
def sentence(context: Any, event: dict[str, Any]) -> str:
    """Say an event log entry as a sentence, people by name (Jinja escapes it)."""
    names = context.get("names") or {}
    number = (context.get("build") or {}).get("number")
    return story.sentence(event, number, lambda u: names.get(u, u))


@jinja2.pass_context
def who(context: Any, value: str | None) -> str:
    """Show a person by display name (a list of them too), falling back to what is stored."""
    names = context.get("names") or {}
    return ", ".join(names.get(v.strip(), v.strip()) for v in (value or "").split(","))


@functools.cache
def templates() -> jinja2.Environment:
    """Return the template environment (autoescaped HTML)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        duration=lambda s: "" if s is None else duration(s),
        clock=clock,
        stamp=stamp,
        first_line=first_line,
        safe_url=href,
        who=who,
        sentence=sentence,
    )
    return env


def render(name: str, **context: Any) -> str:
    """Render one template."""
    return templates().get_template(name).render(**context)


def repository_view(
    db: Database, repo: dict[str, Any], config: Config, now: float
) -> dict[str, Any]:
    """Return one repository's stages (build, age, locks, approvals waiting) and its stream."""
    live = q.live_deployments(db, repo["id"], [s.name for s in config.pipeline.stages])
    rows = stream(db, repo["id"], config.pipeline.stages, live, now)
    flying = q.deployments_in_flight(db, repo["id"])
    locks = q.open_locks(db, repo["id"], now)
    waiting = q.waiting_promotions(db, repo["id"], now)
    stages = [
        {
            "stage": stage,
            "live": live.get(stage.name),
            "age": now - live[stage.name]["live_at"] if stage.name in live else None,
            "deploying": [d for d in flying if d["stage"] == stage.name],
            "locks": [lock for lock in locks if lock["stage"] == stage.name],
            "waiting": [p for p in waiting if p["stage"] == stage.name],
        }
        for stage in config.pipeline.stages
    ]
    return {
        "repo": repo,
        "stages": stages,
        "freezes": q.open_freezes(db, repo["id"]),
        "stream": rows,
    }


def overview(db: Database, config: Config, now: float) -> dict[str, Any]:
    """Return everything GET / shows."""
    return {
        "repositories": [repository_view(db, r, config, now) for r in builds.repositories(db)],
        "stages": config.pipeline.stages,
        "legend": cells.LEGEND,
        "now": now,
    }


def journey(
    db: Database, config: Config, full_name: str, number: int, now: float
) -> dict[str, Any] | None:
    """Return one build's journey, checks and event log, or None when there is no such build."""
    repo = builds.repository_by_name(db, full_name)
    build = builds.build_by_number(db, repo["id"], number) if repo else None
    if repo is None or build is None:
        return None
    deployments = q.deployments_of(db, [build["id"]])
    steps = [{"what": "pushed to " + config.pipeline.branch, "at": build["pushed_at"]}]
    live = q.live_deployments(db, repo["id"], [s.name for s in config.pipeline.stages])
    (row,) = stream(db, repo["id"], config.pipeline.stages, live, now, only=build)
    for cell in row["cells"]:
        if cell.state != "none":
            steps.append({"what": cell.label, "at": cell.at, "took": cell.waited})
    for d in deployments:
        end = d["finished_at"]
        d["took"] = end - d["created_at"] if end else None
    return {
        "repo": repo,
        "build": build,
        "steps": steps,
        "deployments": deployments,
        "promotions": q.promotions_of(db, build["id"]),
        "checks": q.checks_of(db, repo["id"], build["sha"]),
        "events": q.events_of(db, build["id"]),
        "own": commits.commits_of(db, [build["id"]])[build["id"]],
        "diff": carried(db, build, config.pipeline.stages[-1].name),
        "production": config.pipeline.stages[-1].name,
        "now": now,
    }


def carried(db: Database, build: dict[str, Any], stage: str) -> dict[str, Any]:
    """Return what promoting `build` into `stage` would carry, shaped for the page."""
    found = diffs.diff_into(db, build, stage)
    return {
        "headline": diff.headline(found),
        "notes": diff.notes(found),
        "compare": found.compare,
        "builds": found.builds,
        "more": found.counts.get("builds", 0) - len(found.builds),
        "rollback": found.rollback,
        "empty": found.empty,
    }
