"""Promotions a person asks for, and automatic entry: decided by the stage's rules, then applied.

Every function here runs inside one writer transaction (a Tx), so two people
promoting into the same stage at once are decided one after the other: the
second sees the first one's deployment in flight and is queued behind it.
"""

from typing import Any

from bot.config import Stage
from bot.core import diff, gates, text
from bot.core import stage as rules
from bot.core.stage import Decision, Intent, StageFacts
from bot.pipeline import deployments, diffs, stages
from bot.pipeline.naming import said
from bot.pipeline.notices import announce, changed, post_approval, summary
from bot.pipeline.tx import Change, Tx
from storage import builds, pipeline


def refused(tx: Tx, build: dict, stage: Stage, person: str, d: Decision, force: str | None) -> str:
    """Log a refused promotion and return the answer showing every gate."""
    tx.log(
        actor=person,
        action="promote.refused",
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        reason=d.reason,
        detail={"gates": {g.name: g.ok for g in d.checks}, "force": force},
    )
    if not d.checks:
        return f":no_entry: {d.reason}"
    return f":no_entry: Not promoting {summary(build, stage.name)}:\n{gates.render(d.checks)}"


def state_of(d: Decision) -> str:
    """Return the state a new promotion starts in."""
    if d.needs_approval:
        return "waiting"
    return "queued" if d.verdict == "wait" else "approved"


ACTIONS = {"waiting": "promotion.requested", "queued": "promotion.queued"}


def record(
    tx: Tx, build: dict, stage: Stage, person: str, d: Decision, force: str | None
) -> dict[str, Any]:
    """Store an accepted promotion in its first state (and log it); return it."""
    state = state_of(d)
    go = state == "approved"
    promotion_id = pipeline.add_promotion(
        tx.db,
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        requested_by=person,
        state=state,
        forced_reason=force if d.forced else None,
        created_at=tx.now,
        expires_at=None if go else tx.now + stages.WAIT_SECONDS,
        decided_at=tx.now if go else None,
        decided_by=person if go else None,
    )
    auto = "promotion.auto" if person == "promobot" else "promotion.approved"
    tx.log(
        actor=person,
        action=ACTIONS.get(state, auto),
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        reason=force if d.forced else " and ".join(d.waits_for) or None,
        forced=bool(d.forced),
        detail={"promotion": promotion_id, "overridden": list(d.forced)},
    )
    return pipeline.promotion(tx.db, promotion_id) or {}


def request(
    tx: Tx,
    build: dict[str, Any],
    stage: Stage,
    person: str,
    promoter: bool | None,
    force: str | None,
) -> str:
    """Decide a person's promotion now: refuse, queue it, ask for approval, or deploy."""
    s = stages.facts(tx, build["repo_id"], stage)
    g = deployments.facts(tx, build, stage, person, promoter)
    d = rules.decide(s, Intent("promote", person, promoter, gate=g, force=force))
    if d.refused:
        return refused(tx, build, stage, person, d, force)
    stages.supersede(tx, d, build, person)
    promotion = record(tx, build, stage, person, d, force)
    if d.forced:
        announce(
            tx,
            build["repo_id"],
            f":warning: {said(tx.db, person)} forced {summary(build, stage.name)} through"
            f" {', '.join(d.forced)}: {text.escape(force or '')}",
        )
    return answer(tx, s, promotion, build, stage, d)


def answer(tx: Tx, s: StageFacts, promotion: dict, build: dict, stage: Stage, d: Decision) -> str:
    """Deploy, ask for approval or queue an accepted promotion; return the requester's answer."""
    back = s.rolled_back.get(build["id"])
    note = f"\n:leftwards_arrow_with_hook: #{build['number']} was {back}." if back else ""
    carried = diff.mrkdwn(diffs.diff_into(tx.db, build, stage.name))
    if d.verdict == "deploy":
        went = stages.go(tx, promotion, build, stage, promotion["requested_by"], told=False)
        return f"{went}{note}\n{carried}"
    changed(tx, promotion, promotion["state"])
    waits = " and ".join(p for p in d.waits_for if p != "when it is approved")
    if d.needs_approval:
        post_approval(
            tx, promotion, stage, d.checks, note + (f"\n⏳ Then goes {waits}." if waits else "")
        )
        return (
            f":raised_hand: Promotion {promotion['id']} of {summary(build, stage.name)} waits for"
            f" approval (asked in the channel; expires in 24h).{note}\n{gates.render(d.checks)}"
            f"\n{carried}"
        )
    return f"{stages.queued_text(promotion, d)}{note}\n{gates.render(d.checks)}\n{carried}"


def enter(tx: Tx, build: dict[str, Any], stage: Stage) -> None:
    """Enter an auto stage with a green build when its rules allow, now or queued."""
    s = stages.facts(tx, build["repo_id"], stage)
    g = deployments.facts(tx, build, stage, "promobot", None)
    d = rules.decide(s, Intent("enter", gate=g))
    if d.refused:
        return
    stages.supersede(tx, d, build, "promobot")
    promotion = record(tx, build, stage, "promobot", d, None)
    if d.verdict == "deploy":
        stages.go(tx, promotion, build, stage, "promobot", told=False)
    else:
        stages.keep(tx, promotion, d)


def newest_green(tx: Tx, repo_id: int, stage: str) -> dict[str, Any] | None:
    """Return the newest green build, among the latest few, not rolled back out of `stage`."""
    out = {r["replaces_build_id"] for r in pipeline.rollbacks(tx.db, repo_id, stage)}
    return next(
        (
            b
            for b in builds.latest_builds(tx.db, repo_id)
            if b["ci_state"] == "success" and b["id"] not in out
        ),
        None,
    )


def react(tx: Tx, change: Change) -> None:
    """Move stages on their own: green CI enters auto stages; an outcome or unlock frees one."""
    if change.kind == "ci.changed" and change.detail.get("to") == "success" and change.build_id:
        build = builds.build(tx.db, change.build_id)
        for stage in tx.config.pipeline.stages:
            if stage.auto and build:
                enter(tx, build, stage)
    if change.kind == "ci.changed":  # a waiting promotion's build may have turned red
        stages.review_all(tx, change.repo_id)
    elif change.kind == "lock.changed" and change.detail.get("locked") is False:
        unlocked = tx.config.pipeline.stage(change.stage or "")
        if unlocked:
            stages.review_all(tx, change.repo_id)
            newest = newest_green(tx, change.repo_id, unlocked.name)
            if unlocked.auto and newest:
                enter(tx, newest, unlocked)
    elif change.kind == "deployment.changed" and change.stage:
        after_deployment(tx, change)


def after_deployment(tx: Tx, change: Change) -> None:
    """When a deployment finishes: tell its promotion's message, free the stage, enter the next."""
    state, all_stages = change.detail.get("state"), tx.config.pipeline.stages
    stage = tx.config.pipeline.stage(change.stage or "")
    if state not in deployments.TERMINAL or stage is None or state == "inactive":
        return
    stages.outcome(tx, change.detail.get("deployment_id") or 0, state)
    stages.review_all(tx, change.repo_id)  # this stage is free; the next one's soak moved
    index = all_stages.index(stage)
    following = all_stages[index + 1] if index + 1 < len(all_stages) else None
    build = builds.build(tx.db, change.build_id or 0)
    if state == "success" and following and following.auto and build:
        enter(tx, build, following)
