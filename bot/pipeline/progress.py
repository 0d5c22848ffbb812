"""Pipeline progress in Slack: one parent message per build, edited in place, details in its thread.

`on_change` runs inside the transaction that changed the pipeline, so the
outbox rows it queues commit (or roll back) with the change itself. The parent
message is re-rendered from the stored state, never patched from the event,
and queued only when its rendering differs from the last one queued.
"""

import json
from typing import Any

from sqlite_utils import Database

from bot.core import ci, render
from bot.pipeline.tx import Change, Tx
from storage import builds

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
        replaced = rolled_back_build(tx, change.detail.get("deployment_id") or 0)
        if replaced:
            refresh(tx, replaced, only_if_posted=True)
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
    if only_if_posted and last_queued(tx, key) is None:
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
        locked=frozenset(locked_stages(tx.db, build["repo_id"], tx.now) if is_newest else ()),
    )


def stage_states(db: Database, build: dict[str, Any]) -> dict[str, str]:
    """Return, per stage, the state of the build's latest deployment there (or what holds it)."""
    latest: dict[str, tuple[int, str]] = {}
    for deployment_id, stage, state in db.conn.execute(
        "SELECT id, stage, state FROM deployments WHERE build_id = ? ORDER BY id", [build["id"]]
    ):
        latest[stage] = (deployment_id, state)
    states = {stage: state for stage, (_, state) in latest.items()}
    for stage, (deployment_id, state) in latest.items():
        if state in ("success", "inactive") and rolled_back_after(db, build, stage, deployment_id):
            states[stage] = "rolled_back"
    for (stage,) in db.conn.execute(
        "SELECT stage FROM promotions WHERE build_id = ? AND state = 'waiting'", [build["id"]]
    ):
        states[stage] = "awaiting_approval"
    return states


def rolled_back_after(db: Database, build: dict[str, Any], stage: str, deployment_id: int) -> bool:
    """Say whether a rollback to another build was deployed into `stage` after this build."""
    row = db.conn.execute(
        "SELECT 1 FROM deployments d JOIN promotions p ON p.id = d.promotion_id"
        " WHERE d.repo_id = ? AND d.stage = ? AND d.id > ? AND d.build_id != ? AND p.rollback = 1"
        " LIMIT 1",
        [build["repo_id"], stage, deployment_id, build["id"]],
    ).fetchone()
    return row is not None


def rolled_back_build(tx: Tx, deployment_id: int) -> int | None:
    """Return the build a rollback deployment replaces in its stage, if it is a rollback."""
    row = tx.db.conn.execute(
        "SELECT old.build_id FROM deployments d JOIN promotions p ON p.id = d.promotion_id"
        " JOIN deployments old ON old.repo_id = d.repo_id AND old.stage = d.stage"
        " AND old.id < d.id AND old.build_id != d.build_id"
        " WHERE d.id = ? AND p.rollback = 1 ORDER BY old.id DESC LIMIT 1",
        [deployment_id],
    ).fetchone()
    return row[0] if row else None


def locked_stages(db: Database, repo_id: int, now: float) -> set[str]:
    """Return the stages of a repository under a lock that is neither lifted nor expired."""
    rows = db.conn.execute(
        "SELECT stage FROM locks WHERE repo_id = ? AND lifted_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > ?)",
        [repo_id, now],
    )
    return {row[0] for row in rows}


def last_queued(tx: Tx, key: str) -> str | None:
    """Return the payload last queued (pending or sent) for a keyed message, or None."""
    row = tx.db.conn.execute(
        "SELECT payload FROM outbox WHERE coalesce_key = ? AND state IN ('pending', 'sent')"
        " ORDER BY id DESC LIMIT 1",
        [key],
    ).fetchone()
    return row[0] if row else None


def queue_message(tx: Tx, key: str, channel: str, text: str, blocks: list[dict]) -> bool:
    """Queue a keyed message (posted once, then edited) unless it would show nothing new."""
    payload = {"key": key, "channel": channel, "text": text, "blocks": blocks}
    last = last_queued(tx, key)
    if last is not None and json.loads(last) == payload:
        return False
    tx.send("slack", "slack.message", payload, lane=channel, coalesce_key=key)
    return True


def queue_reply(
    tx: Tx, parent_key: str, channel: str, text: str, blocks: list[dict], *, broadcast: bool
) -> None:
    """Queue a reply in the thread of a keyed message (in its lane, so after the parent)."""
    payload = {"parent_key": parent_key, "text": text, "blocks": blocks, "broadcast": broadcast}
    tx.send("slack", "slack.reply", payload, lane=channel)


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
    rows = list(tx.db.query("SELECT * FROM deployments WHERE id = ?", [deployment_id]))
    if not rows:
        return []
    row = rows[0]
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
    if state == "approved" and row and not approved_by_others(tx, row["id"]):
        state, by = "promoted", row["requested_by"]  # no approval was needed: say who moved it
    news = render.promotion_changed(
        build["number"], stage, state, by, reason=reason, rollback=rollback
    )
    return [(*news, False)] if news else []


def approved_by_others(tx: Tx, promotion_id: int) -> bool:
    """Say whether anyone approved the promotion (rather than it needing no approval)."""
    row = tx.db.execute("SELECT 1 FROM approvals WHERE promotion_id = ? LIMIT 1", [promotion_id])
    return row.fetchone() is not None


def promotion_row(
    tx: Tx, build_id: int, stage: str | None, promotion_id: int | None
) -> dict[str, Any] | None:
    """Return the promotion a change is about: by id, else the build's newest into `stage`."""
    if promotion_id is not None:
        rows = list(tx.db.query("SELECT * FROM promotions WHERE id = ?", [promotion_id]))
    else:
        rows = list(
            tx.db.query(
                "SELECT * FROM promotions WHERE build_id = ? AND stage = ?"
                " ORDER BY id DESC LIMIT 1",
                [build_id, stage],
            )
        )
    return rows[0] if rows else None
