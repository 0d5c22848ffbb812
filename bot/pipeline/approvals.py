"""Approving and rejecting waiting promotions (buttons or text), and their 24-hour expiry."""

import json
from typing import Any

from bot.core import gates
from bot.core.text import escape
from bot.pipeline import deployments
from bot.pipeline.deployments import facts
from bot.pipeline.promotions import busy, changed, send_approval, summary
from bot.pipeline.tx import Tx
from storage import builds, pipeline


def expire_due(tx: Tx) -> None:
    """Expire every promotion that waited 24 h for approval (checked lazily on each access)."""
    for promotion in pipeline.due_promotions(tx.db, tx.now):
        pipeline.set_promotion(
            tx.db, promotion["id"], state="expired", decided_at=tx.now, decided_by="promobot"
        )
        tx.log(
            actor="promobot",
            action="promotion.expired",
            repo_id=promotion["repo_id"],
            build_id=promotion["build_id"],
            stage=promotion["stage"],
            reason="no approval within 24h",
            detail={"promotion": promotion["id"]},
        )
        send_approval(
            tx, promotion, ":hourglass: Expired: nobody approved it within 24h.", open_=False
        )
        changed(tx, promotion, "expired")


def waiting(tx: Tx, promotion_id: int) -> tuple[dict[str, Any] | None, str | None]:
    """Return a promotion still waiting for approval, or why it cannot be acted on."""
    expire_due(tx)
    promotion = pipeline.promotion(tx.db, promotion_id)
    if promotion is None:
        return None, f"There is no promotion {promotion_id}."
    if promotion["state"] != "waiting":
        return None, f"Promotion {promotion_id} is {promotion['state']}, not waiting for approval."
    return promotion, None


def where(promotion: dict[str, Any]) -> dict[str, Any]:
    """Return the event-log columns naming a promotion's build and stage."""
    return {
        "repo_id": promotion["repo_id"],
        "build_id": promotion["build_id"],
        "stage": promotion["stage"],
    }


def approve(tx: Tx, promotion_id: int, person: str, promoter: bool | None) -> str:
    """Record `person`'s approval; deploy once enough different promoters approved."""
    promotion, problem = waiting(tx, promotion_id)
    if promotion is None:
        return f":warning: {problem}"
    refusal = None
    if person == promotion["requested_by"]:
        refusal = "You asked for this promotion; someone else must approve it."
    elif promoter is False:
        refusal = f"<@{person}> is not a promoter of {promotion['stage']}."
    elif not pipeline.add_approval(tx.db, promotion_id, person, tx.now):
        stage = tx.config.pipeline.stage(promotion["stage"])
        if stage and len(pipeline.approvals(tx.db, promotion_id)) >= stage.approvals:
            return proceed(tx, promotion, person)  # approved already, held by a gate: try again
        refusal = f"You already approved promotion {promotion_id}."
    if refusal:
        tx.log(actor=person, action="approve.refused", reason=refusal, **where(promotion))
        return f":no_entry: {refusal}"
    tx.log(
        actor=person,
        action="approval.given",
        detail={"promotion": promotion_id},
        **where(promotion),
    )
    return proceed(tx, promotion, person)


def proceed(tx: Tx, promotion: dict[str, Any], person: str) -> str:
    """Deploy a promotion whose approvals are complete and whose gates still hold."""
    stage = tx.config.pipeline.stage(promotion["stage"])
    build = builds.build(tx.db, promotion["build_id"])
    approvers = tuple(pipeline.approvals(tx.db, promotion["id"]))
    if stage is None or build is None:
        return ":warning: This promotion's stage is no longer in app.yaml."
    checks = gates.evaluate(
        facts(tx, build, stage, promotion["requested_by"], True, approvers), tx.now
    )
    names = ", ".join(f"<@{a}>" for a in approvers)
    if gates.needs_approval(checks):
        send_approval(
            tx, promotion, f"{gates.render(checks)}\nApproved so far by {names}.", open_=True
        )
        return f":ballot_box_with_check: Approval recorded for promotion {promotion['id']}."
    stops = gates.blocking(checks, forced=bool(promotion["forced_reason"]))
    holder = busy(tx, promotion["repo_id"], promotion["stage"], waiting_too=False)
    if stops or holder:
        detail = holder or gates.render(checks)
        return (
            f":hourglass: Approval recorded; promotion {promotion['id']} cannot go yet:\n{detail}"
        )
    pipeline.set_promotion(
        tx.db, promotion["id"], state="approved", decided_at=tx.now, decided_by=person
    )
    tx.log(
        actor=person,
        action="promotion.approved",
        reason=promotion["forced_reason"],
        forced=bool(promotion["forced_reason"]),
        detail={"promotion": promotion["id"], "approvers": list(approvers)},
        **where(promotion),
    )
    send_approval(tx, promotion, f":white_check_mark: Approved by {names}; deploying.", open_=False)
    changed(tx, promotion, "approved")
    deployments.start(tx, build, stage, promotion["id"], promotion["requested_by"])
    return f":rocket: Approved: deploying {summary(build, stage.name)}."


def reject(tx: Tx, promotion_id: int, person: str, promoter: bool | None, reason: str) -> str:
    """Reject a waiting promotion, with a reason (the requester may withdraw their own)."""
    promotion, problem = waiting(tx, promotion_id)
    if promotion is None:
        return f":warning: {problem}"
    if promoter is False and person != promotion["requested_by"]:
        refusal = f"<@{person}> is not a promoter of {promotion['stage']}."
        tx.log(actor=person, action="reject.refused", reason=refusal, **where(promotion))
        return f":no_entry: {refusal}"
    pipeline.set_promotion(
        tx.db,
        promotion_id,
        state="rejected",
        decided_at=tx.now,
        decided_by=person,
        reason=reason,
    )
    tx.log(
        actor=person,
        action="promotion.rejected",
        reason=reason,
        detail={"promotion": promotion_id},
        **where(promotion),
    )
    send_approval(tx, promotion, f":x: Rejected by <@{person}>: {escape(reason)}", open_=False)
    changed(tx, promotion, "rejected")
    return f":x: Promotion {promotion_id} rejected."


def reject_hint(value: str) -> str:
    """Tell the person how to reject by text."""
    return f'To reject promotion {value}, say why: `/ship reject {value} "reason"`.'


def reject_view(value: str, channel: str) -> dict[str, Any]:
    """Return the modal that asks why a promotion is rejected."""
    return {
        "type": "modal",
        "callback_id": "promotion.reject",
        "private_metadata": json.dumps({"promotion": value, "channel": channel}),
        "title": {"type": "plain_text", "text": f"Reject promotion {value}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why? (goes into the event log)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }


def read_reject_view(view: dict[str, Any]) -> tuple[str, str, str]:
    """Return (promotion, channel, reason) from a submitted reject modal."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    values = (view.get("state") or {}).get("values") or {}
    reason = ((values.get("reason") or {}).get("reason") or {}).get("value") or ""
    return str(meta.get("promotion", "")), str(meta.get("channel", "")), reason.strip()
