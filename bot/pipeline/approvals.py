"""Approving and rejecting waiting promotions (buttons or text), and their 24-hour expiry."""

import json
from dataclasses import replace
from typing import Any

from bot.config import Stage
from bot.core import stage as rules
from bot.core import text
from bot.core.stage import Intent
from bot.pipeline import deployments, stages
from bot.pipeline.tx import Tx
from storage import builds, pipeline

OPEN = ("waiting", "queued")


def expire_due(tx: Tx) -> None:
    """Let time pass: expire promotions that waited 24 h, release those whose gates now hold."""
    stages.tick(tx)


def open_promotion(tx: Tx, promotion_id: int) -> tuple[dict[str, Any] | None, str | None]:
    """Return a promotion still open (waiting or queued), or why it cannot be acted on."""
    promotion = pipeline.promotion(tx.db, promotion_id)
    if promotion is None:
        return None, f"There is no promotion {promotion_id}."
    if promotion["state"] not in OPEN:
        return None, f"Promotion {promotion_id} is {promotion['state']}, not waiting."
    return promotion, None


def where(promotion: dict[str, Any]) -> dict[str, Any]:
    """Return the event-log columns naming a promotion's build and stage."""
    return {
        "repo_id": promotion["repo_id"],
        "build_id": promotion["build_id"],
        "stage": promotion["stage"],
    }


def decided(
    tx: Tx, promotion: dict[str, Any], intent: Intent
) -> tuple[Stage | None, rules.Decision | None, str | None]:
    """Ask the stage's rules about an intent on a promotion: (stage, decision, refusal)."""
    stage = tx.config.pipeline.stage(promotion["stage"])
    build = builds.build(tx.db, promotion["build_id"])
    if stage is None or build is None:
        return None, None, "This promotion's stage is no longer in app.yaml."
    opened = stages.opened(tx, promotion)
    s = replace(stages.facts(tx, promotion["repo_id"], stage), open=opened)
    g = deployments.facts(tx, build, stage, promotion["requested_by"], True, opened.approvers)
    d = rules.decide(s, replace(intent, gate=g))
    if d.refused:
        action = f"{intent.kind}.refused"
        tx.log(actor=intent.person, action=action, reason=d.reason, **where(promotion))
        return stage, None, f":no_entry: {d.reason}"
    return stage, d, None


def approve(tx: Tx, promotion_id: int, person: str, promoter: bool | None) -> str:
    """Record `person`'s approval; the promotion goes once approved and every gate holds."""
    promotion, problem = open_promotion(tx, promotion_id)
    if promotion is None:
        return f":warning: {problem}"
    if promotion["state"] == "queued":
        queued = f"Promotion {promotion_id} is approved already and queued."
        tx.log(actor=person, action="approve.refused", reason=queued, **where(promotion))
        return f":information_source: {queued}"
    stage, d, refusal = decided(tx, promotion, Intent("approve", person, promoter))
    if refusal or d is None or stage is None:
        return refusal or ""
    pipeline.add_approval(tx.db, promotion_id, person, tx.now)
    tx.log(
        actor=person,
        action="approval.given",
        detail={"promotion": promotion_id},
        **where(promotion),
    )
    text = stages.apply(tx, promotion, stage, d, person)
    return text.replace(":rocket: Deploying", ":rocket: Approved: deploying", 1)


def close_by(
    tx: Tx, promotion_id: int, person: str, promoter: bool | None, verb: str, reason: str
) -> str:
    """Reject or cancel an open promotion (its requester, or a promoter of the stage)."""
    promotion, problem = open_promotion(tx, promotion_id)
    if promotion is None:
        return f":warning: {problem}"
    _, d, refusal = decided(tx, promotion, Intent(verb, person, promoter))
    if refusal or d is None:
        return refusal or ""
    state = "rejected" if verb == "reject" else "cancelled"
    icon = ":x:" if verb == "reject" else ":no_entry_sign:"
    why = f": {text.escape(reason)}" if reason else ""
    footer = f"{icon} {state.title()} by <@{person}>{why}"
    stages.close(tx, promotion, state, person, reason, footer)
    return f"{icon} Promotion {promotion_id} {state}."


def reject(tx: Tx, promotion_id: int, person: str, promoter: bool | None, reason: str) -> str:
    """Reject an open promotion, with a reason (the requester may withdraw their own)."""
    return close_by(tx, promotion_id, person, promoter, "reject", reason)


def cancel(tx: Tx, promotion_id: int, person: str, promoter: bool | None) -> str:
    """Withdraw an open promotion: its requester, or any promoter of the stage."""
    return close_by(tx, promotion_id, person, promoter, "cancel", "")


def awaiting(tx: Tx, repo_id: int, person: str, may_approve: dict[str, bool | None]) -> str:
    """List the promotions waiting for `person`'s approval (stages they may approve in)."""
    lines = []
    for promotion in pipeline.open_promotions(tx.db, repo_id):
        if promotion["state"] != "waiting" or promotion["requested_by"] == person:
            continue
        if may_approve.get(promotion["stage"]) is False:
            continue
        if person in pipeline.approvals(tx.db, promotion["id"]):
            continue
        build = builds.build(tx.db, promotion["build_id"]) or {}
        lines.append(
            f"• promotion {promotion['id']}: #{build.get('number')} into {promotion['stage']}"
            f" for <@{promotion['requested_by']}> — `/ship approve {promotion['id']}`"
        )
    if not lines:
        return ":information_source: Nothing waits for your approval."
    return "*Waiting for your approval*\n" + "\n".join(lines)


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
