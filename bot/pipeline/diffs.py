"""Read what a promotion carries: the builds and commits between a live build and another."""

from typing import Any

from sqlite_utils import Database

from bot.core import diff
from storage import builds, commits, pipeline

SPAN_LIMIT = 40  # builds read for one diff; the counts cover the whole span


def diff_into(db: Database, build: dict[str, Any], stage: str) -> diff.Diff:
    """Return what deploying `build` into `stage` changes against the build live there now."""
    repo_id = build["repo_id"]
    there = pipeline.current(db, repo_id, stage)
    live = builds.build(db, there["build_id"]) if there else None
    return between(db, build, live, stage)


def between(
    db: Database,
    target: dict[str, Any],
    live: dict[str, Any] | None,
    stage: str,
    *,
    listed: int = SPAN_LIMIT,
) -> diff.Diff:
    """Return the diff from `live` (None: an empty stage) to `target` in `stage`.

    `listed`: how many of its builds to read, with their commits; 0 for a headline, which
    says only the counts.
    """
    repo_id = target["repo_id"]
    ends = (live["number"] if live else 0, target["number"])
    low, high = min(ends), max(ends)
    span = commits.builds_between(db, repo_id, low, high, listed) if listed else []
    counts = commits.span_counts(db, repo_id, low, high)
    carried = commits.commits_of(db, [b["id"] for b in span])
    repo = builds.repository(db, repo_id) or {}
    return diff.assemble(
        stage, target, live, span, carried, counts, str(repo.get("html_url") or "")
    )
