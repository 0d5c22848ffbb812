"""Read-only answers to /ship status and /ship history, as ephemeral mrkdwn."""

import re
import time
from typing import Any

from sqlite_utils import Database

from bot.config import Config
from bot.core import diff, story
from bot.core.render import plain
from bot.core.text import duration, escape, first_line, link, mention, when
from bot.pipeline import diffs
from storage import builds, pipeline
from storage import dashboard as dashboard_q

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")
LINK = r"<@\1>"
STORY_LINES = 40
DELTA_BUDGET = 1200  # characters of /ship status spent on what production lacks


def stage_line(db: Database, repo_id: int, stage: str, now: float) -> str:
    """Describe one stage: what runs there, what is on its way, and its lock."""
    there = pipeline.current(db, repo_id, stage)
    parts = [
        f"#{there['number']} `{there['sha'][:7]}` for {duration(now - there['succeeded_at'])}"
        if there
        else "nothing deployed yet"
    ]
    flight = pipeline.in_flight(db, repo_id, stage, now)
    if flight:
        parts.append(f"deploying #{flight['number']} ({flight['state'].replace('_', ' ')})")
    lock = pipeline.open_lock(db, repo_id, stage, now)
    if lock:
        until = f" for {duration(lock['expires_at'] - now)}" if lock["expires_at"] else ""
        parts.append(
            f":lock: locked by {mention(lock['locked_by'])}{until}: {escape(lock['reason'])}"
        )
    return f"• *{stage}*: " + " — ".join(parts)


def waiting_lines(db: Database, repo_id: int, now: float) -> list[str]:
    """List promotions waiting for approval or for their stage."""
    lines = []
    for p in pipeline.open_promotions(db, repo_id):
        number = (builds.build(db, p["build_id"]) or {}).get("number")
        if p["state"] == "waiting":
            left = duration((p["expires_at"] or now) - now)
            lines.append(
                f"• promotion {p['id']}: #{number} into {p['stage']}"
                f" for {mention(p['requested_by'])},"
                f" waiting for approval (expires in {left})"
            )
        else:
            lines.append(f"• #{number} queued for {p['stage']}")
    return lines


def status(db: Database, config: Config, repo: dict[str, Any], now: float) -> str:
    """Return what is where, per stage; locks; waiting approvals; the undeployed delta."""
    stages = [s.name for s in config.pipeline.stages]
    lines = [f"*{escape(repo['full_name'])}*"]
    lines += [stage_line(db, repo["id"], stage, now) for stage in stages]
    waiting = waiting_lines(db, repo["id"], now)
    if waiting:
        lines += ["*Waiting*", *waiting]
    last = pipeline.current(db, repo["id"], stages[-1])
    newest = builds.latest_builds(db, repo["id"], limit=1)
    if newest:
        ahead = newest[0]["number"] - (last["number"] if last else 0)
        first, last_number = newest[0]["number"] - ahead + 1, newest[0]["number"]
        span = f"#{first}" if ahead == 1 else f"#{first} to #{last_number}"
        lines.append(f"Not yet in {stages[-1]}: {ahead} build(s)" + (f" ({span})" if ahead else ""))
        lines += undeployed(db, config, newest[0])
    return "\n".join(lines)


def undeployed(db: Database, config: Config, newest: dict[str, Any]) -> list[str]:
    """Say, per stage, what the stage before it (main, for the first) has that it has not."""
    lines: list[str] = []
    upstream: dict[str, Any] | None = newest
    stages = config.pipeline.stages
    for stage in stages:
        there = pipeline.current(db, newest["repo_id"], stage.name)
        live = builds.build(db, there["build_id"]) if there else None
        if upstream and (live is None or upstream["number"] > live["number"]):
            found = diffs.between(db, upstream, live, stage.name)
            compare = f" · {link(found.compare, 'compare')}" if found.compare else ""
            lines.append(
                f"• *{stage.name}* ← #{upstream['number']}: {diff.headline(found)}{compare}"
            )
            if stage is stages[-1]:  # what production lacks, in full (within a budget)
                lines += diff.mrkdwn(found, budget=DELTA_BUDGET).splitlines()[1:]
        upstream = live
    return ["*Undeployed*", *lines] if lines else []


def history_reason(action: str, reason: str) -> str:
    """Show a logged reason escaped; only refusals promobot wrote itself keep their mentions.

    Typed reasons (lock, force, reject, freeze) are anyone's text: a `<@U…>` typed
    there is shown as written, never turned back into a mention.
    """
    shown = escape(reason)
    if action.endswith(".refused") and action != "command.refused":
        return MENTION.sub(LINK, shown)  # typed parts of these were escaped when composed
    return shown


def history(db: Database, repo: dict[str, Any], stage: str | None) -> str:
    """Return the newest event log entries of a repository, or of one stage."""
    entries = pipeline.history(db, repo["id"], stage)
    title = f"*History of {escape(repo['full_name'])}{' in ' + stage if stage else ''}*"
    if not entries:
        return f"{title}\nNothing yet."
    lines = [title]
    for e in entries:
        build = f" #{e['number']}" if e["number"] else ""
        where = f" {e['stage']}" if e["stage"] and not stage else ""
        forced = " :warning: forced" if e["forced"] else ""
        reason = f" — {history_reason(e['action'], e['reason'])}" if e["reason"] else ""
        lines.append(
            f"• {when(e['at'])} {mention(e['actor'])} {e['action']}{build}{where}{forced}{reason}"
        )
    return "\n".join(lines)


def build_story(db: Database, build: dict[str, Any]) -> str:
    """Return one build's story: its event log as sentences, oldest first (the newest 40)."""
    events = dashboard_q.events_of(db, build["id"])
    title = plain(first_line(build["message"]))
    lines = [f"*Build #{build['number']}* `{build['sha'][:7]}` {title}"]
    for e in events[-STORY_LINES:]:
        when = time.strftime("%m-%d %H:%M", time.gmtime(e["at"]))
        lines.append(f"• {when} {story.sentence(e, build['number'], mention, escape)}")
    if len(events) > STORY_LINES:
        lines.insert(
            1, f"_{len(events) - STORY_LINES} earlier entries on the dashboard's build page_"
        )
    return "\n".join(lines)
