"""Gather where a change is: the build that carried it, each stage it reached, what holds it."""

from typing import Any

from bot.core import gates, where
from bot.pipeline import deployments
from bot.pipeline.tx import Tx
from storage import builds, commits, pipeline


def find(tx: Tx, repo_id: int, ref: where.Ref) -> tuple[str, dict[str, Any]] | str:
    """Return (what, the build that first carried it) for a ref, or why nothing matches."""
    db = tx.db
    if ref.kind == "build":
        build = builds.build_by_number(db, repo_id, int(ref.value))
        if build is None:
            return f"there is no build #{ref.value}"
        return f"Build #{build['number']} `{build['sha'][:7]}`", build
    if ref.kind == "pr":
        found = commits.commit_of_pr(db, repo_id, int(ref.value))
        if found is None:
            return f"no stored commit names pull request #{ref.value} (is it merged?)"
        return _carried(db, repo_id, found, f"Pull request #{ref.value}, merged as ")
    if ref.kind == "sha":
        matches = commits.commits_by_prefix(db, repo_id, ref.value)
        if len({m["sha"] for m in matches}) > 1:
            return f"`{ref.value}` matches several commits: give more of the sha"
        if matches:
            return _carried(db, repo_id, matches[0], "")
        heads = builds.builds_by_prefix(db, repo_id, ref.value, limit=2)
        if len(heads) == 1:
            return f"`{heads[0]['sha'][:7]}`", heads[0]
    found = commits.latest_commit_by(db, repo_id, ref.value)
    if found is None:
        return f"no stored commit has a sha or an author `{ref.value}`"
    return _carried(db, repo_id, found, f"{ref.value}'s latest change, ")


def _carried(db: Any, repo_id: int, found: dict, prefix: str) -> tuple[str, dict[str, Any]]:
    build = builds.build_by_number(db, repo_id, found["number"]) or {}
    what = where.commit_what(found["sha"], found["message"], found["author"], found["pr"])
    return prefix + what, build


def stops(tx: Tx, build: dict[str, Any]) -> tuple[where.Stop, ...]:
    """Say, per stage, whether a build at least as new as `build` is there, and since when."""
    found = []
    for stage in tx.config.pipeline.stages:
        there = pipeline.current(tx.db, build["repo_id"], stage.name)
        live = there["number"] if there else None
        reached = live is not None and live >= build["number"]
        since = pipeline.reached_since(tx.db, build["repo_id"], stage.name, build["number"])
        found.append(where.Stop(stage.name, reached, since if reached else None, live))
    return tuple(found)


def holds(tx: Tx, build: dict[str, Any], stop: where.Stop) -> tuple[str, ...]:
    """Say what keeps the change out of the stage it has not reached."""
    repo_id, stage = build["repo_id"], tx.config.pipeline.stage(stop.stage)
    assert stage is not None  # the stops come from the configured stages
    reasons = []
    flight = pipeline.in_flight(tx.db, repo_id, stage.name, tx.now)
    if flight and flight["number"] >= build["number"]:
        reasons.append(f"⏳ deploying #{flight['number']} into {stage.name} now")
    for p in pipeline.open_promotions(tx.db, repo_id, stage.name):
        number = (builds.build(tx.db, p["build_id"]) or {}).get("number") or 0
        if number >= build["number"]:
            what = "waits for approval" if p["state"] == "waiting" else "is queued"
            reasons.append(f"⏸ #{number} {what} (promotion {p['id']})")
    previous = tx.config.pipeline.previous(stage)
    carrier = build
    if previous is not None:
        there = pipeline.current(tx.db, repo_id, previous.name)
        carrier = (builds.build(tx.db, there["build_id"]) if there else None) or build
    checks = gates.evaluate(deployments.facts(tx, carrier, stage, "promobot", None), tx.now)
    reasons += [f"❌ {g.name}: {g.reason}" for g in checks if not g.ok and g.name != "promoter"]
    if not reasons:
        reasons.append(f"nothing holds #{carrier['number']}: it waits for someone to promote it")
    return where.holds_of(reasons)


def whereabouts(tx: Tx, repo_id: int, ref: where.Ref) -> str:
    """Answer `/ship where`: where the change is, since when, and what holds it."""
    found = find(tx, repo_id, ref)
    if isinstance(found, str):
        return f":mag: {found}."
    what, build = found
    at = stops(tx, build)
    pending = [s for s in at if not s.reached]
    reasons = holds(tx, build, pending[0]) if pending else ()
    return where.answer(where.Whereabouts(what, build["number"], at, reasons), tx.now)
