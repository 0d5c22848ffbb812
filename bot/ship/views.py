"""Read-only answers to /ship status and /ship history, as ephemeral mrkdwn."""

import re
import time
from typing import Any

from sqlite_utils import Database

from bot.config import Config, Stage
from bot.core import diff, story
from bot.core.render import plain
from bot.core.stage import clock
from bot.core.text import duration, escape, first_line, link, mention, when
from bot.pipeline import diffs, prcheck, stages
from bot.pipeline.tx import Tx
from storage import builds, pipeline
from storage import dashboard as dashboard_q

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")
LINK = r"<@\1>"
STORY_LINES = 40
DELTA_BUDGET = 1200  # characters of /ship status spent on what production lacks


def stage_line(tx: Tx, repo_id: int, stage: Stage) -> str:
    """Describe one stage: what runs there since when, what comes, its lock, its failures."""
    db, now = tx.db, tx.now
    there = pipeline.current(db, repo_id, stage.name)
    parts = [
        f"#{there['number']} `{there['sha'][:7]}` for {duration(now - there['succeeded_at'])}"
        f" (since {clock(there['succeeded_at'])})"
        if there
        else "nothing deployed yet"
    ]
    flight = pipeline.in_flight(db, repo_id, stage.name, now)
    if flight:
        parts.append(f"deploying #{flight['number']} ({flight['state'].replace('_', ' ')})")
    lock = pipeline.open_lock(db, repo_id, stage.name, now)
    if lock:
        until = f" for {duration(lock['expires_at'] - now)}" if lock["expires_at"] else ""
        parts.append(
            f":lock: locked by {mention(lock['locked_by'])}{until}: {escape(lock['reason'])}"
        )
    failed = pipeline.last_failed(db, repo_id, stage.name)
    if failed:
        at = clock(failed["finished_at"] or failed["updated_at"])
        parts.append(f":x: last failed: #{failed['number']} at {at}")
    return f"• *{stage.name}*: " + " — ".join(parts)


def waiting_lines(tx: Tx, repo_id: int) -> list[str]:
    """List each stage's open promotion and what it waits for."""
    lines = []
    for stage in tx.config.pipeline.stages:
        found = stages.waiting(tx, repo_id, stage)
        if found is None:
            continue
        p, d = found
        head = f"• promotion {p.id}: #{p.number} into {stage.name} for {mention(p.requested_by)}"
        left = duration((p.expires_at or tx.now) - tx.now)
        then = " and ".join(w for w in d.waits_for if w != "when it is approved")
        if d.needs_approval:
            more = f", then goes {then}" if then else ""
            lines.append(f"{head}, waiting for approval{more} (expires in {left})")
        else:
            goes = " and ".join(d.waits_for) or "now"
            lines.append(f"{head}, queued: goes {goes} (expires in {left})")
    return lines


def branch_lines(tx: Tx, repo_id: int) -> list[str]:
    """Say whether merges are frozen and whether the branch is red, since which build."""
    branch = prcheck.read_branch(tx, repo_id)
    lines = []
    if branch.freeze:
        f = branch.freeze
        lines.append(
            f":snowflake: merges are frozen by {mention(f['frozen_by'])} since"
            f" {clock(f['started_at'])}: {escape(f['reason'])}"
        )
    if branch.red_since:
        b = branch.red_since
        names = ", ".join(escape(r["context"]) for r in branch.failing) or "CI"
        lines.append(f":red_circle: {escape(branch.name)} is red since #{b['number']} ({names})")
    return lines


def status(tx: Tx, repo: dict[str, Any]) -> str:
    """Return what is where per stage, what waits, freeze, red main, the undeployed delta."""
    all_stages = tx.config.pipeline.stages
    lines = [f"*{escape(repo['full_name'])}*"]
    lines += [stage_line(tx, repo["id"], stage) for stage in all_stages]
    waiting = waiting_lines(tx, repo["id"])
    if waiting:
        lines += ["*Waiting*", *waiting]
    lines += branch_lines(tx, repo["id"])
    last = pipeline.current(tx.db, repo["id"], all_stages[-1].name)
    green, first, newest_green = pipeline.green_after(
        tx.db, repo["id"], last["number"] if last else 0
    )
    span = f"#{first}" if green == 1 else f"#{first} to #{newest_green}" if green else ""
    delta = f"Not yet in {all_stages[-1].name}: {green} green build(s)"
    lines.append(delta + (f" ({span})" if span else ""))
    newest = builds.latest_builds(tx.db, repo["id"], limit=1)
    if newest:
        lines += undeployed(tx.db, tx.config, newest[0])
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
            last = stage is stages[-1]  # only production's is listed; the others, a headline
            found = diffs.between(
                db, upstream, live, stage.name, listed=diffs.SPAN_LIMIT if last else 0
            )
            compare = f" · {link(found.compare, 'compare')}" if found.compare else ""
            lines.append(
                f"• *{stage.name}* ← #{upstream['number']}: {diff.headline(found)}{compare}"
            )
            if last:  # what production lacks, in full (within a budget)
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
