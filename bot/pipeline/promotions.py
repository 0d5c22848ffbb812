"""Promotions a person asks for: decide them against the gates, wait for approvals, deploy.

Every function here runs inside one writer transaction (a Tx), so two people
promoting into the same stage at once are decided one after the other: the
second sees the first one's deployment in flight and is told so.
"""

from typing import Any

from bot.config import Stage
from bot.core import diff, gates
from bot.core.text import escape, mention
from bot.pipeline import deployments, diffs
from bot.pipeline.naming import said
from bot.pipeline.outbox import Announcement, KeyedMessage
from bot.pipeline.tx import Change, Tx
from storage import builds, pipeline

APPROVAL_SECONDS = 24 * 3600


def channel_of(tx: Tx, repo_id: int) -> str:
    """Return the channel that hears about a repository."""
    repo = builds.repository(tx.db, repo_id) or {"full_name": ""}
    return tx.config.channel_for(repo["full_name"])


def announce(tx: Tx, repo_id: int, text: str) -> None:
    """Tell the repository's channel about something everyone should see."""
    channel = channel_of(tx, repo_id)
    tx.send(Announcement(channel, text))


def busy(tx: Tx, repo_id: int, stage: str, *, waiting_too: bool = True) -> str | None:
    """Say who is already deploying what into `stage` (or waiting to), or None when it is free."""
    flight = pipeline.in_flight(tx.db, repo_id, stage, tx.now)
    if flight:
        who = "promobot" if flight["requested_by"] == "promobot" else f"<@{flight['requested_by']}>"
        return (
            f"{who} is already deploying #{flight['number']} into {stage}"
            f" ({flight['state'].replace('_', ' ')}); try again when it finishes."
        )
    for other in pipeline.open_promotions(tx.db, repo_id, stage):
        if other["state"] == "waiting" and waiting_too:
            number = (builds.build(tx.db, other["build_id"]) or {}).get("number")
            return (
                f"<@{other['requested_by']}> is already waiting for approval to promote"
                f" #{number} into {stage} (promotion {other['id']})."
            )
    return None


def changed(tx: Tx, promotion: dict[str, Any], state: str) -> None:
    """Emit promotion.changed for the renderers."""
    detail = {"state": state, "promotion_id": promotion["id"]}
    tx.emit(
        Change(
            "promotion.changed",
            promotion["repo_id"],
            promotion["build_id"],
            promotion["stage"],
            detail=detail,
        )
    )


def summary(build: dict[str, Any], stage: str) -> str:
    """Name a build going into a stage, in mrkdwn."""
    first_line = (
        escape((build.get("message") or "").splitlines()[0][:80]) if build.get("message") else ""
    )
    return f"*#{build['number']}* `{build['sha'][:7]}` {first_line} into *{stage}*".rstrip()


def refusal(
    tx: Tx, build: dict, stage: Stage, person: str, checks: list[gates.Gate], force: str | None
) -> str | None:
    """Return (and log) why a promotion cannot go now, or None when it may."""
    where = {"repo_id": build["repo_id"], "build_id": build["id"], "stage": stage.name}
    holder = busy(tx, build["repo_id"], stage.name)
    if holder:
        tx.log(actor=person, action="promote.refused", reason=holder, **where)
        return f":hourglass: {holder}"
    stops = gates.blocking(checks, forced=bool(force))
    if not stops:
        return None
    tx.log(
        actor=person,
        action="promote.refused",
        reason="; ".join(f"{g.name}: {g.reason}" for g in stops),
        detail={"gates": {g.name: g.ok for g in checks}, "force": force},
        **where,
    )
    return f":no_entry: Not promoting {summary(build, stage.name)}:\n{gates.render(checks)}"


def request(
    tx: Tx,
    build: dict[str, Any],
    stage: Stage,
    person: str,
    promoter: bool | None,
    force: str | None,
) -> str:
    """Decide a person's promotion now: refuse, wait for approval, or deploy. Return the answer."""
    checks = gates.evaluate(deployments.facts(tx, build, stage, person, promoter), tx.now)
    refused = refusal(tx, build, stage, person, checks, force)
    if refused:
        return refused
    passed = [g.name for g in gates.overridden(checks)] if force else []
    waiting = gates.needs_approval(checks)
    promotion_id = pipeline.add_promotion(
        tx.db,
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        requested_by=person,
        state="waiting" if waiting else "approved",
        forced_reason=force if passed else None,
        created_at=tx.now,
        expires_at=tx.now + APPROVAL_SECONDS if waiting else None,
        decided_at=None if waiting else tx.now,
        decided_by=None if waiting else person,
    )
    promotion = pipeline.promotion(tx.db, promotion_id) or {}
    tx.log(
        actor=person,
        action="promotion.requested" if waiting else "promotion.approved",
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        reason=force if passed else None,
        forced=bool(passed),
        detail={"promotion": promotion_id, "overridden": passed},
    )
    if passed:
        announce(
            tx,
            build["repo_id"],
            f":warning: {said(tx.db, person)} forced {summary(build, stage.name)} through"
            f" {', '.join(passed)}: {escape(force or '')}",
        )
    changed(tx, promotion, promotion["state"])
    return proceed_or_wait(tx, promotion, build, stage, checks)


def proceed_or_wait(
    tx: Tx, promotion: dict, build: dict, stage: Stage, checks: list[gates.Gate]
) -> str:
    """Ask the channel for approval, or start the deployment; return the requester's answer."""
    what = summary(build, stage.name)
    carried = diff.mrkdwn(diffs.diff_into(tx.db, build, stage.name))
    if promotion["state"] == "waiting":
        post_approval(tx, promotion, build, stage, checks)
        return (
            f":raised_hand: Promotion {promotion['id']} of {what} waits for approval"
            f" (asked in the channel; expires in 24h).\n{gates.render(checks)}\n{carried}"
        )
    deployments.start(tx, build, stage, promotion["id"], promotion["requested_by"])
    return f":rocket: Deploying {what} (promotion {promotion['id']}).\n{carried}"


def button(action: str, label: str, style: str, promotion_id: int, question: str) -> dict:
    """Return a button bound to a promotion, with a confirm dialog."""
    return {
        "type": "button",
        "action_id": f"promotion.{action}",
        "text": {"type": "plain_text", "text": label},
        "style": style,
        "value": str(promotion_id),
        "confirm": {
            "title": {"type": "plain_text", "text": f"{label}?"},
            "text": {"type": "mrkdwn", "text": question},
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }


def approval_message(
    tx: Tx, promotion: dict, build: dict, footer: str, *, open_: bool
) -> KeyedMessage:
    """Return the approval message of a promotion: who asks, what, and the buttons while open."""
    what = summary(build, promotion["stage"])
    text = (
        f"*Promotion {promotion['id']}*: {said(tx.db, promotion['requested_by'])} asks to promote"
        f" {what}."
        f"\n{footer}"
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if open_:  # what goes out, for the person deciding; settled messages keep it short
        carried = diff.mrkdwn(diffs.diff_into(tx.db, build, promotion["stage"]))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": carried}})
    if open_:
        plain = f"#{build['number']} into {promotion['stage']}"
        blocks.append(
            {
                "type": "actions",
                "block_id": f"promotion:{promotion['id']}",
                "elements": [
                    button("approve", "Approve", "primary", promotion["id"], f"Deploy {plain}?"),
                    button(
                        "reject",
                        "Reject",
                        "danger",
                        promotion["id"],
                        f"Reject {plain}? You will be asked for a reason.",
                    ),
                ],
            }
        )
    channel = channel_of(tx, promotion["repo_id"])
    return KeyedMessage(f"promotion:{promotion['id']}", channel, text, blocks)


def send_approval(tx: Tx, promotion: dict, footer: str, *, open_: bool) -> None:
    """Post or edit a promotion's approval message."""
    build = builds.build(tx.db, promotion["build_id"]) or {}
    tx.send(approval_message(tx, promotion, build, footer, open_=open_))


def post_approval(
    tx: Tx, promotion: dict, build: dict, stage: Stage, checks: list[gates.Gate]
) -> None:
    """Ask the channel to approve a waiting promotion."""
    who = " or ".join(mention(p) for p in stage.promoters)
    need = f"{stage.approvals} approval(s) from {who or 'anyone'}, not the requester"
    forced = promotion.get("forced_reason")
    note = f"\n:warning: Forced past the ❌ gates: {escape(forced)}" if forced else ""
    footer = f"{gates.render(checks)}{note}\nNeeds {need}. Expires in 24h."
    send_approval(tx, promotion, footer, open_=True)
