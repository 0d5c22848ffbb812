"""A build's event log as sentences: `ada asked to promote #4 into dumpling (promotion 7).`

Pure: `who` turns an actor into how it is shown (a display name on pages, a
mention in Slack), and `esc` escapes outside text (reasons, check names) for the medium.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

Who = Callable[[str], str]
MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})>")

# action -> sentence; {who} the actor, {stage}, {n} the build, {p} the promotion, {why} the reason
SENTENCES = {
    "build.created": "{who} pushed build #{n}",
    "ci.changed": "CI went {to}{failing}",
    "promotion.requested": "{who} asked to promote #{n} into {stage}{p}",
    "promotion.approved": "{who} promoted #{n} into {stage}{p}",
    "promotion.queued": "#{n} was queued for {stage}{p}",
    "promotion.superseded": "a newer build took #{n}'s place in the queue for {stage}",
    "promotion.rejected": "{who} rejected #{n} for {stage}{p}",
    "promotion.expired": "the request to promote #{n} into {stage} expired{p}",
    "approval.given": "{who} approved #{n} for {stage}{p}",
    "approve.refused": "{who} could not approve #{n} for {stage}",
    "reject.refused": "{who} could not reject #{n} for {stage}",
    "promote.refused": "{who} could not promote #{n} into {stage}",
    "deployment.requested": "{who} started deploying #{n} to {stage}",
    "deployment.queued": "the deployment of #{n} to {stage} was queued",
    "deployment.pending": "the deployment of #{n} to {stage} is pending",
    "deployment.in_progress": "#{n} began deploying to {stage}",
    "deployment.success": "#{n} went live in {stage}",
    "deployment.inactive": "#{n} was replaced in {stage}",
    "deployment.failure": "the deployment of #{n} to {stage} failed",
    "deployment.error": "the deployment of #{n} to {stage} errored",
    "rollback": "{who} rolled {stage} back to #{n}",
    "rolled.back": "{who} rolled #{n} out of {stage}",
    "rollback.refused": "{who} could not roll {stage} back",
    "lock": "{who} locked {stage}",
    "unlock": "{who} unlocked {stage}",
}


def actor(name: str, who: Who) -> str:
    """Show an actor: people through `who`, GitHub and promobot as themselves."""
    return who(name) if name else "someone"


def sentence(
    event: Mapping[str, Any], number: int | None, who: Who, esc: Callable[[str], str] = str
) -> str:
    """Say one event log entry as a sentence; `esc` escapes outside text for the medium."""
    detail = event.get("detail") or {}
    action = str(event.get("action") or "")
    promotion = detail.get("promotion") or detail.get("promotion_id")
    failing = detail.get("failing") or []
    values = {
        "who": actor(str(event.get("actor") or ""), who),
        "stage": event.get("stage") or "a stage",
        "n": number if number is not None else "?",
        "p": f" (promotion {promotion})" if promotion else "",
        "to": {"success": "green", "failure": "red", "pending": "pending"}.get(
            str(detail.get("to")), str(detail.get("to") or "")
        ),
        "failing": f": {esc(', '.join(map(str, failing)))} failed" if failing else "",
    }
    template = SENTENCES.get(action, "{who}: " + action.replace(".", " ").replace("_", " "))
    text = template.format(**values)
    if event.get("forced"):
        text += ", forced"
    reason = str(event.get("reason") or "")
    if reason:
        # Our own reasons mention people as <@U…>: show those the same way as actors.
        parts = MENTION.split(reason)  # text, user, text, user, …: people via `who`
        text += " — " + "".join(who(p) if i % 2 else esc(p) for i, p in enumerate(parts))
    if not template.startswith("{who}"):  # a name keeps its own case
        text = text[:1].upper() + text[1:]
    return text + ("" if text.endswith((".", "!", "?")) else ".")
