"""What promotions say in Slack: approval messages, announcements, notes to a requester."""

from collections.abc import Sequence
from typing import Any

from bot.config import Stage
from bot.core import diff, gates, text
from bot.pipeline import diffs
from bot.pipeline.naming import said
from bot.pipeline.outbox import Announcement, Ephemeral, KeyedMessage
from bot.pipeline.tx import Change, Tx
from storage import builds, outbox


def channel_of(tx: Tx, repo_id: int) -> str:
    """Return the channel that hears about a repository."""
    repo = builds.repository(tx.db, repo_id) or {"full_name": ""}
    return tx.config.channel_for(repo["full_name"])


def announce(tx: Tx, repo_id: int, text: str) -> None:
    """Tell the repository's channel about something everyone should see."""
    channel = channel_of(tx, repo_id)
    tx.send(Announcement(channel, text))


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
        text.escape((build.get("message") or "").splitlines()[0][:80])
        if build.get("message")
        else ""
    )
    return f"*#{build['number']}* `{build['sha'][:7]}` {first_line} into *{stage}*".rstrip()


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
    tx: Tx, promotion: dict, stage: Stage, checks: Sequence[gates.Gate], note: str = ""
) -> None:
    """Ask the channel to approve a waiting promotion."""
    who = " or ".join(
        f"<@{p}>" if p.startswith("U") else f"<!subteam^{p}>" for p in stage.promoters
    )
    need = f"{stage.approvals} approval(s) from {who or 'anyone'}, not the requester"
    forced = promotion.get("forced_reason")
    forced_note = f"\n:warning: Forced past the ❌ gates: {text.escape(forced)}" if forced else ""
    footer = f"{gates.render(checks)}{forced_note}{note}\nNeeds {need}. Expires in 24h."
    send_approval(tx, promotion, footer, open_=True)


def tell(tx: Tx, repo_id: int, user: str, text: str) -> None:
    """Tell one person something only they need to hear, in the repository's channel."""
    if user == "promobot":
        return
    channel = channel_of(tx, repo_id)
    tx.send(Ephemeral(channel, user, text))


def has_message(tx: Tx, promotion_id: int) -> bool:
    """Say whether a promotion asked the channel for approval (so its message tells the end)."""
    return outbox.last_queued(tx.db, f"promotion:{promotion_id}") is not None


def edit_message(tx: Tx, promotion: dict[str, Any], footer: str) -> None:
    """Edit a promotion's approval message to its outcome, without buttons."""
    if has_message(tx, promotion["id"]):
        send_approval(tx, promotion, footer, open_=False)
