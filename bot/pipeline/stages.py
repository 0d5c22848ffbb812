"""Apply a stage's decisions: gather its facts, ask bot.core.stage, write what it decided.

Every path that moves a stage (a promotion, an approval, a deployment's outcome,
an unlock, automatic entry, time passing) comes through here, inside one
writer transaction, and each state change writes one event-log row.
"""

from typing import Any

from bot.config import Stage
from bot.core import gates, text
from bot.core import stage as rules
from bot.core.stage import Decision, Intent, Live, StageFacts
from bot.pipeline import deployments
from bot.pipeline.notices import changed, edit_message, has_message, send_approval, summary, tell
from bot.pipeline.tx import Tx
from storage import builds, pipeline

WAIT_SECONDS = 24 * 3600  # a waiting promotion expires after a day


def opened(tx: Tx, promotion: dict[str, Any]) -> rules.Open:
    """Return a promotion as the rules see it."""
    build = builds.build(tx.db, promotion["build_id"]) or {"number": 0}
    return rules.Open(
        id=promotion["id"],
        build_id=promotion["build_id"],
        number=build["number"],
        requested_by=promotion["requested_by"],
        forced_reason=promotion["forced_reason"],
        approvers=tuple(pipeline.approvals(tx.db, promotion["id"])),
        expires_at=promotion["expires_at"],
    )


def facts(tx: Tx, repo_id: int, stage: Stage) -> StageFacts:
    """Gather one stage's facts: live build, deployment in flight, open promotion, lock, history."""
    db, name = tx.db, stage.name
    live = pipeline.current(db, repo_id, name)
    flight = pipeline.in_flight(db, repo_id, name, tx.now)
    open_ = pipeline.open_promotions(db, repo_id, name)
    lock = pipeline.open_lock(db, repo_id, name, tx.now)
    return StageFacts(
        stage=stage,
        now=tx.now,
        live=Live(live["build_id"], live["number"], live["succeeded_at"]) if live else None,
        flight=rules.Flight(flight["build_id"], flight["number"], flight["promotion_id"])
        if flight
        else None,
        open=opened(tx, open_[-1]) if open_ else None,
        lock=rules.Lock(lock["locked_by"], lock["reason"], lock["expires_at"]) if lock else None,
        history=tuple(
            Live(h["build_id"], h["number"], h["since"])
            for h in pipeline.stage_history(db, repo_id, name)
        ),
        rolled_back={
            r["replaces_build_id"]: f"rolled back out of {name} by <@{r['requested_by']}>"
            f" at {rules.clock(r['created_at'])} ({text.escape(r['reason'] or '')})"
            for r in pipeline.rollbacks(db, repo_id, name)
        },
    )


def close(tx: Tx, promotion: dict[str, Any], state: str, by: str, reason: str, footer: str) -> None:
    """End an open promotion (expired, superseded, cancelled, rejected); tell its requester."""
    pipeline.set_promotion(
        tx.db, promotion["id"], state=state, decided_at=tx.now, decided_by=by, reason=reason
    )
    tx.log(
        actor=by,
        action=f"promotion.{state}",
        repo_id=promotion["repo_id"],
        build_id=promotion["build_id"],
        stage=promotion["stage"],
        reason=reason,
        detail={"promotion": promotion["id"]},
    )
    edit_message(tx, promotion, footer)
    changed(tx, promotion, state)
    if promotion["requested_by"] != by:
        tell(
            tx,
            promotion["repo_id"],
            promotion["requested_by"],
            f"Promotion {promotion['id']}: {footer}",
        )


def go(tx: Tx, promotion: dict[str, Any], build: dict, stage: Stage, by: str, *, told: bool) -> str:
    """Deploy an accepted promotion now; tell its requester when they are not the one acting."""
    approvers = pipeline.approvals(tx.db, promotion["id"])
    if promotion["state"] != "approved":  # a new promotion that goes at once was logged so
        pipeline.set_promotion(
            tx.db, promotion["id"], state="approved", decided_at=tx.now, decided_by=by
        )
        tx.log(
            actor=by,
            action="promotion.approved",
            repo_id=build["repo_id"],
            build_id=build["id"],
            stage=stage.name,
            reason=promotion["forced_reason"],
            forced=bool(promotion["forced_reason"]),
            detail={"promotion": promotion["id"], "approvers": approvers},
        )
    names = ", ".join(f"<@{a}>" for a in approvers)
    edit_message(
        tx,
        promotion,
        f":rocket: Approved by {names}; deploying." if names else ":rocket: Deploying.",
    )
    if promotion["requested_by"] != "promobot":  # automatic entry is told by its deployment
        changed(tx, promotion, "approved")
    deployments.start(tx, build, stage, promotion["id"], promotion["requested_by"])
    what = summary(build, stage.name)
    if told:
        tell(
            tx,
            build["repo_id"],
            promotion["requested_by"],
            f":rocket: Promotion {promotion['id']} goes now: deploying {what}.",
        )
    return f":rocket: Deploying {what} (promotion {promotion['id']})."


def queued_text(promotion: dict[str, Any], d: Decision) -> str:
    """Say what a queued promotion waits for."""
    goes = " and ".join(d.waits_for)
    return f":hourglass_flowing_sand: Promotion {promotion['id']} is queued: goes {goes}."


def apply(tx: Tx, promotion: dict[str, Any], stage: Stage, d: Decision, by: str) -> str:
    """Apply a review of the open promotion: expire, drop, keep waiting, or deploy it."""
    build = builds.build(tx.db, promotion["build_id"]) or {}
    if d.verdict == "expire":
        close(
            tx,
            promotion,
            "expired",
            "promobot",
            "waited 24h",
            ":hourglass: Expired: it waited 24h.",
        )
        return f":hourglass: Promotion {promotion['id']} expired."
    if d.verdict == "drop":
        close(tx, promotion, "cancelled", "promobot", d.reason, f":x: Cancelled: {d.reason}")
        return f":x: Promotion {promotion['id']} cannot go: {d.reason}"
    if d.verdict == "keep":
        return keep(tx, promotion, d)
    return go(tx, promotion, build, stage, by, told=by != promotion["requested_by"])


def keep(tx: Tx, promotion: dict[str, Any], d: Decision) -> str:
    """Keep a promotion waiting; once its approvals are complete it is queued (and says so)."""
    approvers = pipeline.approvals(tx.db, promotion["id"])
    names = ", ".join(f"<@{a}>" for a in approvers)
    if d.needs_approval:
        if approvers and has_message(tx, promotion["id"]):
            footer = f"{gates.render(d.checks)}\nApproved so far by {names}."
            send_approval(tx, promotion, footer, open_=True)
        return f":ballot_box_with_check: Approval recorded for promotion {promotion['id']}."
    text = queued_text(promotion, d)
    if promotion["state"] != "queued":
        pipeline.set_promotion(tx.db, promotion["id"], state="queued")
        tx.log(
            actor="promobot",
            action="promotion.queued",
            repo_id=promotion["repo_id"],
            build_id=promotion["build_id"],
            stage=promotion["stage"],
            reason=" and ".join(d.waits_for),
            detail={"promotion": promotion["id"], "approvers": approvers},
        )
        edit_message(tx, promotion, f":ballot_box_with_check: Approved by {names}.\n{text}")
        changed(tx, promotion, "queued")
    return text


def review(tx: Tx, repo_id: int, stage: Stage, by: str = "promobot") -> str | None:
    """Look again at a stage's open promotion (something changed, or time passed)."""
    s = facts(tx, repo_id, stage)
    if s.open is None:
        return None
    promotion = pipeline.promotion(tx.db, s.open.id) or {}
    build = builds.build(tx.db, s.open.build_id) or {}
    g = deployments.facts(tx, build, stage, promotion["requested_by"], True, s.open.approvers)
    return apply(tx, promotion, stage, rules.decide(s, Intent("review", gate=g)), by)


def review_all(tx: Tx, repo_id: int) -> None:
    """Look again at every stage of a repository: a change in one moves the gates of the next."""
    for stage in tx.config.pipeline.stages:
        review(tx, repo_id, stage)


def tick(tx: Tx) -> None:
    """Let time pass for every stage with an open promotion: expire it, or let it go."""
    for repo_id, name in pipeline.open_stages(tx.db):
        stage = tx.config.pipeline.stage(name)
        if stage is not None:
            review(tx, repo_id, stage)


def next_due(tx: Tx) -> float | None:
    """Return the soonest moment an open promotion may go or expire by itself."""
    dues = []
    for repo_id, name in pipeline.open_stages(tx.db):
        stage = tx.config.pipeline.stage(name)
        if stage is None:
            continue
        s = facts(tx, repo_id, stage)
        if s.open is None:
            continue
        build = builds.build(tx.db, s.open.build_id) or {}
        g = deployments.facts(tx, build, stage, s.open.requested_by, True, s.open.approvers)
        d = rules.decide(s, Intent("review", gate=g))
        if d.verdict in ("deploy", "expire", "drop"):  # due now: its gates hold, or never will
            dues.append(tx.now)
        dues += [x for x in (d.due, s.open.expires_at) if x is not None]
    return min(dues) if dues else None


def supersede(tx: Tx, d: Decision, build: dict[str, Any], by: str) -> None:
    """Close the stage's open promotion that a newer one replaces."""
    if d.supersedes is None:
        return
    older = pipeline.promotion(tx.db, d.supersedes) or {}
    who = "promobot" if by == "promobot" else f"<@{by}>"
    reason = f"superseded by #{build['number']}"
    close(
        tx,
        older,
        "superseded",
        by,
        reason,
        f":fast_forward: Superseded by #{build['number']} ({who}).",
    )


def outcome(tx: Tx, deployment_id: int, state: str) -> None:
    """Edit the approval message of a finished deployment's promotion to how it ended."""
    dep = pipeline.deployment(tx.db, deployment_id)
    promotion = (
        pipeline.promotion(tx.db, dep["promotion_id"]) if dep and dep["promotion_id"] else None
    )
    if dep is None or promotion is None:
        return
    took = text.duration((dep["finished_at"] or tx.now) - dep["created_at"])
    names = ", ".join(f"<@{a}>" for a in pipeline.approvals(tx.db, promotion["id"]))
    by = f" (approved by {names})" if names else ""
    if state == "success":
        footer = f":white_check_mark: Deployed to {dep['stage']} in {took}{by}."
    else:
        footer = f":x: Deployment to {dep['stage']} failed after {took}{by}."
    edit_message(tx, promotion, footer)


def waiting(tx: Tx, repo_id: int, stage: Stage) -> tuple[rules.Open, Decision] | None:
    """Return a stage's open promotion and what it waits for, or None."""
    if not pipeline.open_promotions(tx.db, repo_id, stage.name):
        return None  # the common case, answered without reading the stage's whole history
    s = facts(tx, repo_id, stage)
    if s.open is None:
        return None
    build = builds.build(tx.db, s.open.build_id) or {}
    g = deployments.facts(tx, build, stage, s.open.requested_by, True, s.open.approvers)
    return s.open, rules.decide(s, Intent("review", gate=g))
