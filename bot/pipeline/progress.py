"""Pipeline progress in Slack: one parent message per build, edited in place, details in its thread.

`on_change` runs inside the transaction that changed the pipeline, so the
outbox rows it queues commit (or roll back) with the change itself. The parent
message is re-rendered from the stored state, never patched from the event,
and queued only when its rendering differs from the last one queued.
"""

from typing import Any

from sqlite_utils import Database

from bot.core import ci, render
from bot.pipeline.outbox import KeyedMessage, ThreadReply
from bot.pipeline.tx import Change, Tx
from storage import builds, outbox, people, pipeline, progress

BUILD_CHANGES = ("build.created", "ci.changed", "deployment.changed", "promotion.changed")


def message_key(build_id: int) -> str:
    """Return the key under which a build's parent message is stored."""
    return f"build:{build_id}"


def on_change(tx: Tx, change: Change) -> None:
    """Keep the build's parent message current and tell its thread what happened."""
    if change.kind == "lock.changed":
        # The lock marker is drawn on the repository's newest build only.
        newest = builds.latest_builds(tx.db, change.repo_id, 1)
        if newest:
            refresh(tx, newest[0]["id"], only_if_posted=True)
        return
    if change.kind not in BUILD_CHANGES or change.build_id is None:
        return
    if change.kind == "build.created":
        # The previous newest build loses its lock markers to this one.
        older = builds.latest_builds(tx.db, change.repo_id, 2)[1:]
        if older:
            refresh(tx, older[0]["id"], only_if_posted=True)
    if change.kind == "deployment.changed":
        # A rollback also changes the strip of the build it replaces.
        # A rollback also changes the strip of the build it replaces; any success the strip
        # of the build that was live there until now (✅ live → ☑️ was live).
        replaced = {
            progress.rolled_back_build(tx.db, change.detail.get("deployment_id") or 0),
            previous_live(tx, change),
        }
        for other in sorted(b for b in replaced if b and b != change.build_id):
            refresh(tx, other, only_if_posted=True)
    channel = refresh(tx, change.build_id)
    if channel is None:
        return
    for text, blocks, broadcast in thread_news(tx, change):
        queue_reply(tx, message_key(change.build_id), channel, text, blocks, broadcast=broadcast)


def refresh(tx: Tx, build_id: int, *, only_if_posted: bool = False) -> str | None:
    """Re-render a build's parent message and queue it if it changed; return its channel."""
    build = builds.build(tx.db, build_id)
    repo = builds.repository(tx.db, build["repo_id"]) if build else None
    if build is None or repo is None:
        return None
    key = message_key(build_id)
    if only_if_posted and outbox.last_queued(tx.db, key) is None:
        return None  # never announced (older than this feature): do not post it now
    channel = tx.config.channel_for(repo["full_name"])
    text, blocks = render.build_message(build_view(tx, build, repo))
    queue_message(tx, key, channel, text, blocks)
    return channel


def build_view(tx: Tx, build: dict[str, Any], repo: dict[str, Any]) -> render.BuildView:
    """Gather what a build's parent message shows from the stored state."""
    latest = stage_states(tx.db, build)
    names = [s.name for s in tx.config.pipeline.stages]
    newest = builds.latest_builds(tx.db, build["repo_id"], 1)
    is_newest = bool(newest) and newest[0]["id"] == build["id"]
    return render.BuildView(
        repo=repo["full_name"],
        number=build["number"],
        sha=build["sha"],
        message=build["message"],
        author=build["author"],
        url=build["html_url"],
        ci_state=build["ci_state"],
        stages=tuple((name, latest.get(name)) for name in names),
        locked=frozenset(
            pipeline.locked_stages(tx.db, build["repo_id"], tx.now) if is_newest else ()
        ),
    )


def stage_states(db: Database, build: dict[str, Any]) -> dict[str, str]:
    """Return, per stage, what the build is there: live now, was live, rolled back, waiting…"""
    states: dict[str, str] = {}
    for _, stage, state, _ in progress.deployment_states(db, build["id"]):
        states[stage] = state
    for stage, state in list(states.items()):
        if state in ("success", "inactive"):
            states[stage] = lived(db, build, stage)
    for stage, state in progress.stages_waiting(db, build["id"]):
        states[stage] = "awaiting_approval" if state == "waiting" else "waiting_turn"
    return states


def lived(db: Database, build: dict[str, Any], stage: str) -> str:
    """Say whether a build that reached `stage` is live there, was rolled back out, or was live."""
    if pipeline.rolled_back(db, build["repo_id"], stage, build["id"]):
        return "rolled_back"
    there = pipeline.current(db, build["repo_id"], stage)
    return "success" if there and there["build_id"] == build["id"] else "was_live"


def previous_live(tx: Tx, change: Change) -> int | None:
    """Return the build a successful deployment replaced as live in its stage, if any."""
    if change.detail.get("state") != "success" or change.stage is None:
        return None
    there = pipeline.current(tx.db, change.repo_id, change.stage)
    before = pipeline.previous_good(tx.db, change.repo_id, change.stage, there) if there else None
    return before["build_id"] if before else None


def queue_message(tx: Tx, key: str, channel: str, text: str, blocks: list[dict]) -> bool:
    """Queue a keyed message (posted once, then edited) unless it would show nothing new."""
    message = KeyedMessage(key, channel, text, blocks)
    if outbox.last_queued(tx.db, key) == message.to_row():
        return False
    tx.send(message)
    return True


def queue_reply(
    tx: Tx, parent_key: str, channel: str, text: str, blocks: list[dict], *, broadcast: bool
) -> None:
    """Queue a reply in the thread of a keyed message (in its lane, so after the parent)."""
    tx.send(ThreadReply(parent_key, channel, text, blocks, broadcast))


News = tuple[str, list[dict], bool]  # text, blocks, broadcast


def thread_news(tx: Tx, change: Change) -> list[News]:
    """Return what the build's thread should hear about `change` (usually nothing)."""
    build = builds.build(tx.db, change.build_id or 0)
    if build is None:
        return []
    if change.kind == "ci.changed":
        return ci_news(tx, build, change.detail)
    if change.kind == "deployment.changed":
        return deployment_news(tx, change)
    if change.kind == "promotion.changed":
        return promotion_news(tx, build, change)
    return []


def ci_news(tx: Tx, build: dict[str, Any], detail: dict[str, Any]) -> list[News]:
    """A failure names the failing checks (and is broadcast); a recovery says so quietly."""
    if detail.get("to") == "failure":
        reports = builds.check_reports(tx.db, build["repo_id"], build["sha"])
        failing = ci.failing(reports, tx.config.pipeline.required_checks)
        return [(*render.ci_failed(build["number"], failing), True)]
    if detail.get("to") == "success" and detail.get("from") == "failure":
        return [(*render.ci_recovered(build["number"]), False)]
    return []


def deployment_news(tx: Tx, change: Change) -> list[News]:
    """A finished deployment reports its outcome and duration; a failed last stage is broadcast."""
    deployment_id = change.detail.get("deployment_id")
    row = pipeline.deployment(tx.db, deployment_id) if deployment_id is not None else None
    if row is None:
        return []
    state = change.detail.get("state") or row["state"]
    if state not in render.FINISHED:
        return []
    finished = row["finished_at"] or row["updated_at"]
    seconds = finished - row["created_at"] if finished else None
    # Only a failure names (and so notifies) who asked for the deployment.
    by = row["requested_by"] if state in render.FAILED else None
    text, blocks = render.deployment_finished(row["stage"], state, seconds, by)
    last = tx.config.pipeline.stages[-1].name
    return [(text, blocks, state in render.FAILED and row["stage"] == last)]


def promotion_news(tx: Tx, build: dict[str, Any], change: Change) -> list[News]:
    """Say who requested, approved, rejected or rolled back a promotion of this build."""
    detail = change.detail
    row = promotion_row(tx, build["id"], change.stage, detail.get("promotion_id"))
    stage = change.stage or (row or {}).get("stage") or "?"
    state = detail.get("state") or (row or {}).get("state") or ""
    by = detail.get("by") or (row or {}).get("decided_by") or (row or {}).get("requested_by")
    reason = detail.get("reason") or (row or {}).get("reason") or ""
    rollback = bool((row or {}).get("rollback") or detail.get("rollback"))
    if state == "approved" and row and not progress.has_approvals(tx.db, row["id"]):
        state, by = "promoted", row["requested_by"]  # no approval was needed: say who moved it
    names = people.names_of(tx.db, [by]) if by else {}
    news = render.promotion_changed(
        build["number"], stage, state, by, reason=reason, rollback=rollback, names=names
    )
    return [(*news, False)] if news else []


def promotion_row(
    tx: Tx, build_id: int, stage: str | None, promotion_id: int | None
) -> dict[str, Any] | None:
    """Return the promotion a change is about: by id, else the build's newest into `stage`."""
    if promotion_id is not None:
        return pipeline.promotion(tx.db, promotion_id)
    return progress.newest_promotion(tx.db, build_id, stage)
