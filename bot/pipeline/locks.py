"""Locks on stages, and rollback (which redeploys the previous good build and locks the stage)."""

from typing import Any

from bot.config import Stage
from bot.core import diff
from bot.core.text import duration, escape
from bot.pipeline import deployments, diffs
from bot.pipeline.naming import said
from bot.pipeline.promotions import announce, busy, summary
from bot.pipeline.tx import Change, Tx
from storage import builds, pipeline


def refuse_non_promoter(
    tx: Tx, repo_id: int, stage: Stage, person: str, promoter: bool | None, verb: str
) -> str | None:
    """Return the refusal for a person who is not a promoter of `stage` (logged), or None."""
    if promoter is not False:
        return None
    reason = f"<@{person}> is not a promoter of {stage.name}"
    tx.log(actor=person, action=f"{verb}.refused", repo_id=repo_id, stage=stage.name, reason=reason)
    return f":no_entry: {reason}, so cannot {verb} it."


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
    refusal = refuse_non_promoter(tx, repo_id, stage, person, promoter, "lock")
    if refusal:
        return refusal
    expires = tx.now + seconds if seconds else None
    add_lock(tx, repo_id, stage.name, person, reason, expires)
    until = f" for {duration(seconds)}" if seconds else " until someone unlocks it"
    announce(
        tx,
        repo_id,
        f":lock: {said(tx.db, person)} locked *{stage.name}*{until}: {escape(reason)}",
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
    """Lift the open locks of a stage."""
    refusal = refuse_non_promoter(tx, repo_id, stage, person, promoter, "unlock")
    if refusal:
        return refusal
    if not pipeline.lift_locks(tx.db, repo_id, stage.name, person, tx.now):
        tx.log(
            actor=person,
            action="unlock.refused",
            repo_id=repo_id,
            stage=stage.name,
            reason="not locked",
        )
        return f":information_source: {stage.name} is not locked."
    tx.log(actor=person, action="unlock", repo_id=repo_id, stage=stage.name)
    tx.emit(Change("lock.changed", repo_id, None, stage.name, detail={"locked": False}))
    announce(tx, repo_id, f":unlock: {said(tx.db, person)} unlocked *{stage.name}*.")
    return f":unlock: {stage.name} is open again."


def rollback_target(
    tx: Tx, repo_id: int, stage: Stage, named: dict[str, Any] | None
) -> tuple[dict | None, dict | None, str | None]:
    """Return (what is there now, the build to redeploy, or why there is none)."""
    now_there = pipeline.current(tx.db, repo_id, stage.name)
    if now_there is None:
        return None, None, f"Nothing has been deployed to {stage.name} yet."
    if named is not None:
        if named["id"] == now_there["build_id"]:
            return now_there, None, f"#{named['number']} is already what {stage.name} runs."
        return now_there, named, None
    previous = pipeline.previous_good(tx.db, repo_id, stage.name, now_there)
    if previous is None:
        return now_there, None, f"No earlier build succeeded in {stage.name}."
    return now_there, builds.build(tx.db, previous["build_id"]), None


def rollback(
    tx: Tx,
    repo_id: int,
    stage: Stage,
    person: str,
    promoter: bool | None,
    named: dict[str, Any] | None,
) -> str:
    """Redeploy the previous good build (or `named`) into a stage, then lock the stage."""
    refusal = refuse_non_promoter(tx, repo_id, stage, person, promoter, "rollback")
    if refusal:
        return refusal
    holder = busy(tx, repo_id, stage.name, waiting_too=False)
    now_there, target, problem = rollback_target(tx, repo_id, stage, named)
    if holder or problem or target is None or now_there is None:
        reason = holder or problem or "nothing to roll back to"
        tx.log(
            actor=person,
            action="rollback.refused",
            repo_id=repo_id,
            stage=stage.name,
            reason=reason,
        )
        return f":no_entry: {reason}"
    return redeploy(tx, stage, person, now_there, target)


def redeploy(tx: Tx, stage: Stage, person: str, now_there: dict, target: dict) -> str:
    """Deploy `target` back into `stage`, lock the stage and tell the channel."""
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
        reason=reason,
        detail={"promotion": promotion_id, "from": now_there["number"]},
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
    add_lock(tx, repo_id, stage.name, person, reason, None)
    announce(
        tx,
        repo_id,
        f":rewind: {said(tx.db, person)} is rolling back *{stage.name}* from"
        f" #{now_there['number']} to"
        f" {summary(target, stage.name)}; {stage.name} is locked until someone unlocks it.",
    )
    return f":rewind: Rolling back {stage.name} to #{target['number']} and locking it.\n{carried}"
