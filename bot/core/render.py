"""Pure renderers of Slack messages: a build's parent message, its stage strip, its thread replies.

Every piece of text that came from GitHub or a person goes through `escape`
(so a commit message saying `<!channel>` pings nobody) and is cut to Slack's
limits. Nothing here reads the database or the clock.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.text import duration, escape, first_line, link, mention

MAX_SECTION = 3000  # characters in one section block's text (Slack: invalid_blocks beyond)
MAX_TEXT = 3000  # the notification fallback; Slack cuts far later, people earlier
MAX_BLOCKS = 50  # blocks in one message
MAX_MESSAGE = 40_000  # characters of a message's text (Slack: msg_too_long beyond)
MAX_FIELD = 2000  # characters in one of a section's fields
MAX_HEADER = 150  # characters of a header's plain text
MAX_TITLE = 150  # the first line of a commit message
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")

CI_ICONS = {"success": "✅", "failure": "❌", "pending": "⏳"}
DEPLOY_ICONS = {
    "success": "✅",
    "inactive": "✅",  # replaced by a later deployment: it did reach the stage
    "failure": "❌",
    "error": "❌",
    "requested": "⏳",
    "pending": "⏳",
    "queued": "⏳",
    "in_progress": "⏳",
    # Not GitHub's: what promobot knows about the build in the stage.
    "awaiting_approval": "⏸",
    "waiting_turn": "🕒",  # a promotion queued behind the stage's deployment or approval
    "rolled_back": "↩️",
    "was_live": "☑️",  # reached the stage, since replaced by a newer build
}
# What each mark of the strip means, for legends (the dashboard, /ship help).
LEGEND = (
    ("✅", "live there now"),
    ("☑️", "was live there, since replaced"),
    ("↩️", "rolled back out of there"),
    ("⏳", "deploying"),
    ("🕒", "queued"),
    ("⏸", "waiting for approval"),
    ("❌", "failed"),
    ("🔒", "locked"),
    ("·", "not there yet"),
)
NOTHING = "·"
LOCKED = "🔒"
FAILED = ("failure", "error")
FINISHED = ("success", *FAILED)


def cut(text: str, limit: int) -> str:
    """Shorten already-escaped `text` to `limit` characters, never splitting an entity."""
    if len(text) <= limit:
        return text
    head = _PARTIAL_ENTITY.sub("", text[: limit - 1])
    return head + "…"


_TOKEN = re.compile(r"<[^>]*>?|&[a-z]+;|.", re.DOTALL)  # a link or mention, an entity, a char
_MARKS = "*_~"


def cut_mrkdwn(text: str, limit: int) -> str:
    """Shorten mrkdwn to `limit` characters: never inside a <link|…> or an entity, and close
    any *bold*, _italic_, ~strike~ or `code` left open by the cut."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size, code = 0, False
    opened: list[str] = []
    for token in _TOKEN.findall(text):
        closers = len(opened) + int(code) + 1  # the closing marks and the ellipsis
        if size + len(token) + closers + (token in (*_MARKS, "`")) > limit:
            break
        code, opened = _marks(token, kept[-1][-1] if kept else " ", code, opened)
        kept.append(token)
        size += len(token)
    tail = ("`" if code else "") + "".join(reversed(opened))
    return "".join(kept).rstrip() + tail + "…"


def _marks(token: str, before: str, code: bool, opened: list[str]) -> tuple[bool, list[str]]:
    """Follow which formatting marks are open after `token` (Slack's rules, simplified)."""
    if token == "`":
        return not code, opened
    if code or token not in _MARKS:
        return code, opened
    if token in opened:
        return code, [m for m in opened if m != token]
    if not before.isalnum():  # a mark opens at a word's start, not inside snake_case
        return code, [*opened, token]
    return code, opened


def plain(text: str, limit: int = MAX_TITLE) -> str:
    """Escape outside text and cut it to `limit` characters."""
    return cut(escape(text), limit)


def person(who: str | None, names: Mapping[str, str] | None = None) -> str:
    """Name a Slack user by display name when known (no ping), else mention them."""
    if who and who in (names or {}):
        return f"*{plain((names or {})[who], 80)}*"
    return mention(who)


def stage_strip(
    ci_state: str,
    stages: Sequence[tuple[str, str | None]],
    locked: Iterable[str] = (),
) -> str:
    """Show CI and each stage's deployment state in a row: `CI ✅ → pasty ✅ → baklava ⏳`."""
    locks = set(locked)
    parts = [f"CI {CI_ICONS.get(ci_state, NOTHING)}"]
    for name, state in stages:
        icon = DEPLOY_ICONS.get(state or "", NOTHING)
        parts.append(f"{escape(name)} {icon}{' ' + LOCKED if name in locks else ''}")
    return " → ".join(parts)


@dataclass(frozen=True)
class BuildView:
    """What a build's parent message shows, gathered from the stored state."""

    repo: str
    number: int
    sha: str
    message: str
    author: str
    url: str
    ci_state: str
    stages: tuple[tuple[str, str | None], ...]
    locked: frozenset[str] = field(default_factory=frozenset)


def section(text: str) -> dict[str, Any]:
    """Return a mrkdwn section block, cut to Slack's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_SECTION)}}


def context(text: str) -> dict[str, Any]:
    """Return a context block with one mrkdwn element."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, MAX_SECTION)}]}


def build_message(view: BuildView) -> tuple[str, list[dict[str, Any]]]:
    """Render a build's parent message: (fallback text, blocks)."""
    title = plain(first_line(view.message)) or "(no commit message)"
    sha = link(view.url, view.sha[:7])
    strip = stage_strip(view.ci_state, view.stages, view.locked)
    headline = f"*Build #{view.number}* {sha} {title}"
    blocks = [
        section(f"{headline}\n{strip}"),
        context(f"{plain(view.repo, 100)} · by {plain(view.author, 80)}"),
    ]
    text = cut(f"Build #{view.number} {view.sha[:7]} {title} — {strip}", MAX_TEXT)
    return text, blocks


def reply(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Wrap a thread reply's mrkdwn in one section block: (fallback text, blocks)."""
    return cut(text, MAX_TEXT), [section(text)]


def ci_failed(number: int, failing: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict]]:
    """Say which checks failed on a build, with their descriptions and links."""
    lines = [f"❌ CI failed on build #{number}:"]
    for check in failing:
        name = link(check.get("target_url"), f"*{plain(check['context'], 100)}*")
        about = plain(check.get("description") or "", 200)
        lines.append(f"• {name}{' — ' + about if about else ''}")
    if not failing:
        lines.append("• a required check is missing")
    return reply("\n".join(lines))


def ci_recovered(number: int) -> tuple[str, list[dict]]:
    """Say that a build's CI went from red to green."""
    return reply(f"✅ CI passed on build #{number}.")


def deployment_finished(
    stage: str, state: str, seconds: float | None, by: str | None
) -> tuple[str, list[dict]]:
    """Say how a deployment into `stage` ended and how long it took."""
    who = f" (by {mention(by)})" if by else ""
    took = "an unknown time" if seconds is None or seconds < 0 else duration(seconds)
    if state == "success":
        return reply(f"✅ Deployed to *{escape(stage)}* in {took}{who}.")
    verb = "failed" if state == "failure" else "errored"
    return reply(f"❌ Deployment to *{escape(stage)}* {verb} after {took}{who}.")


def promotion_changed(
    number: int,
    stage: str,
    state: str,
    by: str | None,
    *,
    reason: str = "",
    rollback: bool = False,
    names: Mapping[str, str] | None = None,
) -> tuple[str, list[dict]] | None:
    """Say who asked for, approved, rejected or rolled back a promotion; None for no news.

    People are named, not mentioned, when their name is known: news of their own doing
    should not ping them.
    """
    into, who = f"*{escape(stage)}*", person(by, names)
    why = f": {plain(reason, 500)}" if reason else ""
    if rollback and state in ("waiting", "approved", "promoted"):
        return reply(f"↩️ {who} is rolling {into} back to build #{number}{why}.")
    lines = {
        "waiting": f"🙋 {who} asked to promote build #{number} to {into}{why}.",
        "approved": f"👍 {who} approved build #{number} for {into}.",
        "promoted": f"🚀 {who} promoted build #{number} to {into}{why}.",
        "rejected": f"✋ {who} rejected build #{number} for {into}{why}.",
        "expired": f"⌛ The request to promote build #{number} to {into} expired.",
    }
    return reply(lines[state]) if state in lines else None


def fit(message: dict[str, Any]) -> dict[str, Any]:
    """Cut a message's text and blocks to Slack's limits, so Slack never refuses it as too long.

    Every Slack message is queued through here (Tx.send): a reason or commit
    message of any length costs the end of its section, never the message.
    """
    fitted = dict(message)
    if isinstance(fitted.get("text"), str):
        fitted["text"] = cut_mrkdwn(fitted["text"], MAX_MESSAGE)
    blocks = fitted.get("blocks")
    if isinstance(blocks, list):
        fitted["blocks"] = [_fit_block(b) for b in blocks[:MAX_BLOCKS]]
    return fitted


def _fit_text(obj: Any, limit: int) -> Any:
    """Cut a text object ({type, text}) to `limit`; leave anything else alone."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return obj
    shorten = cut_mrkdwn if obj.get("type") == "mrkdwn" else cut
    return {**obj, "text": shorten(obj["text"], limit)}


def _fit_block(block: Any) -> Any:
    if not isinstance(block, dict):
        return block
    fitted = dict(block)
    if block.get("type") == "header":
        fitted["text"] = _fit_text(block.get("text"), MAX_HEADER)
    elif "text" in block:
        fitted["text"] = _fit_text(block["text"], MAX_SECTION)
    if isinstance(block.get("fields"), list):
        fitted["fields"] = [_fit_text(f, MAX_FIELD) for f in block["fields"][:10]]
    if block.get("type") == "context" and isinstance(block.get("elements"), list):
        fitted["elements"] = [_fit_text(e, MAX_SECTION) for e in block["elements"][:10]]
    return fitted
