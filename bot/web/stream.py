"""Gather the value stream map: recent builds across CI and every stage, each cell told whole."""

from collections import defaultdict
from typing import Any

from sqlite_utils import Database

from bot.config import Stage
from bot.core import stream as cells
from storage import dashboard as q

STREAM_ROWS = 12


def ci_cell(build: dict[str, Any]) -> cells.Cell:
    """Return the CI column of a build: its state, when it settled and how long CI took."""
    if build["ci_state"] == "pending":
        return cells.Cell("running", label="CI running")
    waited = build["ci_changed_at"] - build["pushed_at"] if build["pushed_at"] else None
    ok = build["ci_state"] == "success"
    state, label = ("done", "CI green") if ok else ("failed", "CI red")
    return cells.Cell(state, build["ci_changed_at"], waited, label=label)


def departures(successes: list[dict[str, Any]]) -> dict[tuple[int, str], tuple[float, int]]:
    """Return, per (build, stage), when another build replaced it there and which."""
    left: dict[tuple[int, str], tuple[float, int]] = {}
    last: dict[str, int] = {}
    for s in successes:
        before = last.get(s["stage"])
        if before is not None and before != s["build_id"]:
            left.setdefault((before, s["stage"]), (s["succeeded_at"], s["number"]))
        last[s["stage"]] = s["build_id"]
    return left


def stream(
    db: Database,
    repo_id: int,
    stages: tuple[Stage, ...],
    live: dict[str, Any],
    now: float,
    only: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Return the value stream map: recent builds (or `only` one) across CI and every stage."""
    recent = [only] if only else q.recent_builds(db, repo_id, STREAM_ROWS)
    ids = [b["id"] for b in recent]
    oldest = min((b["pushed_at"] or 0 for b in recent), default=now)
    deployments = group(q.deployments_of(db, ids))
    promotions = group(q.promotions_of_builds(db, ids))
    backs = {(r["build_id"], r["stage"]): r["at"] for r in q.rollbacks_of(db, ids)}
    left = departures(q.successes_since(db, repo_id, oldest))
    locks: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for lock in q.locks_since(db, repo_id, oldest, now):
        locks[lock["stage"]].append((lock["start"], lock["end"]))
    rows = []
    for build in recent:
        ci = ci_cell(build)
        since, previous = (ci.at if ci.state == "done" else None), None
        row = [ci]
        for stage in stages:
            key = (build["id"], stage.name)
            cell = cells.cell(
                stage.name,
                since,
                [d for d in deployments[build["id"]] if d["stage"] == stage.name],
                [p for p in promotions[build["id"]] if p["stage"] == stage.name],
                live=(live.get(stage.name) or {}).get("id") == build["id"],
                soak=previous.soak if previous else 0.0,
                locks=locks[stage.name],
                left=left.get(key),
                rolled_back_at=backs.get(key),
            )
            since = cell.at if cell.state == "done" else None
            previous = stage
            row.append(cell)
        rows.append({"build": build, "cells": row})
    return rows


def group(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Group rows by their build_id."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        found[row["build_id"]].append(row)
    return found
