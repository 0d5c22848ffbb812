"""Locks on stages, and rollback (which redeploys the previous good build and locks the stage)."""

from typing import Any

from bot.config import Stage
from bot.core import diff, text
from bot.core import stage as rules
from bot.core.stage import Intent, Live
from bot.pipeline import deployments, diffs, stages
from bot.pipeline.naming import said
from bot.pipeline.notices import announce, summary
from bot.pipeline.tx import Change, Tx
from storage import builds, pipeline


def refused(tx: Tx, repo_id: int, stage: Stage, person: str, verb: str, reason: str) -> str:
    """Log a refused stage command; return its answer."""
    tx.log(actor=person, action=f"{verb}.refused", repo_id=repo_id, stage=stage.name, reason=reason)
    return f":no_entry: {reason}"


def lock(
    tx: Tx,
    repo_id: int,
    stage: Stage,
    person: str,
    promoter: bool | None,
    reason: str,
    seconds: int | None,
) -> str:
    """Close a stage to promotions and automatic entry, optionally for a while."""
    d = rules.decide(stages.facts(tx, repo_id, stage), Intent("lock", person, promoter))
    if d.refused:
        return refused(tx, repo_id, stage, person, "lock", d.reason)
    expires = tx.now + seconds if seconds else None
    add_lock(tx, repo_id, stage.name, person, reason, expires)
    until = f" for {text.duration(seconds)}" if seconds else " until someone unlocks it"
    announce(
        tx,
        repo_id,
        f":lock: {said(tx.db, person)} locked *{stage.name}*{until}: {text.escape(reason)}",
    )
    return f":lock: {stage.name} is locked{until}."


def add_lock(
    tx: Tx, repo_id: int, stage: str, person: str, reason: str, expires: float | None
) -> None:
    """Store a lock, log it and emit lock.changed."""
    lock_id = pipeline.add_lock(
        tx.db,
        repo_id=repo_id,
        stage=stage,
        locked_by=person,
        reason=reason,
        created_at=tx.now,
        expires_at=expires,
    )
    tx.log(
        actor=person,
        action="lock",
        repo_id=repo_id,
        stage=stage,
        reason=reason,
        detail={"lock": lock_id, "expires_at": expires},
    )
    tx.emit(Change("lock.changed", repo_id, None, stage, detail={"locked": True, "lock": lock_id}))


def unlock(tx: Tx, repo_id: int, stage: Stage, person: str, promoter: bool | None) -> str:
    """Lift the stage's lock; whatever waited for it goes (the reactions look again)."""
    d = rules.decide(stages.facts(tx, repo_id, stage), Intent("unlock", person, promoter))
    if d.refused:
        return refused(tx, repo_id, stage, person, "unlock", d.reason)
    pipeline.lift_locks(tx.db, repo_id, stage.name, person, tx.now)
    tx.log(actor=person, action="unlock", repo_id=repo_id, stage=stage.name)
    announce(tx, repo_id, f":unlock: {said(tx.db, person)} unlocked *{stage.name}*.")
    tx.emit(Change("lock.changed", repo_id, None, stage.name, detail={"locked": False}))
    return f":unlock: {stage.name} is open again."


def named_live(tx: Tx, repo_id: int, stage: str, named: dict[str, Any] | None) -> Live | None:
    """Return a build a rollback names, as the rules see it."""
    if named is None:
        return None
    done = [
        h for h in pipeline.stage_history(tx.db, repo_id, stage) if h["build_id"] == named["id"]
    ]
    return Live(named["id"], named["number"], done[0]["since"] if done else 0.0)


def rollback(
    tx: Tx,
    repo_id: int,
    stage: Stage,
    person: str,
    promoter: bool | None,
    named: dict[str, Any] | None,
    force: str | None = None,
) -> str:
    """Redeploy the build live before (or an older one that was live here), then lock the stage."""
    s = stages.facts(tx, repo_id, stage)
    intent = Intent(
        "rollback", person, promoter, named=named_live(tx, repo_id, stage.name, named), force=force
    )
    d = rules.decide(s, intent)
    if d.refused or d.target is None or s.live is None:
        return refused(tx, repo_id, stage, person, "rollback", d.reason)
    target = builds.build(tx.db, d.target.build_id) or {}
    now_there = {"build_id": s.live.build_id, "number": s.live.number}
    forced = force if d.forced else None
    answer = redeploy(tx, stage, person, now_there, target, d, forced, locked=s.lock is not None)
    stages.review_all(tx, repo_id)  # what waits for the next stage lost its soak here
    return answer


def redeploy(
    tx: Tx,
    stage: Stage,
    person: str,
    now_there: dict,
    target: dict,
    d: rules.Decision,
    force: str | None,
    *,
    locked: bool,
) -> str:
    """Deploy `target` back into `stage`, lock it (unless locked already), tell the channel."""
    repo_id = target["repo_id"]
    reason = f"rolled back from #{now_there['number']}"
    promotion_id = pipeline.add_promotion(
        tx.db,
        repo_id=repo_id,
        build_id=target["id"],
        stage=stage.name,
        requested_by=person,
        state="approved",
        rollback=1,
        replaces_build_id=now_there["build_id"],
        forced_reason=force,
        created_at=tx.now,
        decided_at=tx.now,
        decided_by=person,
        reason=reason,
    )
    tx.log(
        actor=person,
        action="rollback",
        repo_id=repo_id,
        build_id=target["id"],
        stage=stage.name,
        reason=f"{reason}; forced past: {d.reason}: {force}" if force else reason,
        forced=bool(force),
        detail={
            "promotion": promotion_id,
            "from": now_there["number"],
            "overridden": list(d.forced),
        },
    )
    # The build taken out of the stage keeps the story in its own log (and page) too.
    tx.log(
        actor=person,
        action="rolled.back",
        repo_id=repo_id,
        build_id=now_there["build_id"],
        stage=stage.name,
        reason=f"replaced by #{target['number']}",
        detail={"promotion": promotion_id},
    )
    taken_out = builds.build(tx.db, now_there["build_id"])
    carried = diff.mrkdwn(diffs.between(tx.db, target, taken_out, stage.name))
    detail = {"state": "approved", "promotion_id": promotion_id, "rollback": True}
    detail.update(by=person, reason=reason)
    tx.emit(Change("promotion.changed", repo_id, target["id"], stage.name, detail=detail))
    deployments.start(tx, target, stage, promotion_id, person)
    if not locked:
        add_lock(tx, repo_id, stage.name, person, reason, None)
    warning = f"\n:warning: Forced past: {d.reason}: {text.escape(force)}" if force else ""
    announce(
        tx,
        repo_id,
        f":rewind: {said(tx.db, person)} is rolling back *{stage.name}* from"
        f" #{now_there['number']} to"
        f" {summary(target, stage.name)}; {stage.name} is locked until someone unlocks it."
        + warning,
    )
    return f":rewind: Rolling back {stage.name} to #{target['number']} and locking it.\n{carried}"
