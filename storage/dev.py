"""What `promobot serve --dev` stores instead of sending: Slack messages and GitHub calls."""

import json
from typing import Any

from sqlite_utils import Database

from storage.rows import select


def add_message(
    db: Database,
    *,
    at: float,
    kind: str,
    channel: str,
    text: str,
    blocks: Any = None,
    key: str | None = None,
    ts: str | None = None,
    thread_ts: str | None = None,
    user_id: str | None = None,
) -> int:
    """Store one message as the console showed it."""
    cursor = db.execute(
        "INSERT INTO dev_messages (at, kind, key, channel, ts, thread_ts, user_id, text, blocks)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            at,
            kind,
            key,
            channel,
            ts,
            thread_ts,
            user_id,
            text,
            json.dumps(blocks) if blocks else None,
        ],
    )
    return int(cursor.lastrowid or 0)


def posted_messages(db: Database) -> list[tuple[str, str, str]]:
    """Return (key, channel ID, ts) of every keyed message posted, for a fake Slack to know."""
    rows = db.execute("SELECT key, channel_id, ts FROM slack_messages ORDER BY posted_at")
    return [(str(key), str(channel), str(ts)) for key, channel, ts in rows.fetchall()]


def messages(db: Database, *, since_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """Return stored dev messages after `since_id`, oldest first, blocks decoded."""
    rows = select(
        db, "SELECT * FROM dev_messages WHERE id > ? ORDER BY id LIMIT ?", [since_id, limit]
    )
    for row in rows:
        row["blocks"] = json.loads(row["blocks"]) if row["blocks"] else None
    return rows


def add_github_call(
    db: Database,
    *,
    at: float,
    method: str,
    path: str,
    installation_id: int | None,
    body: Any,
    answer: Any,
    deploy_due: float | None,
) -> int:
    """Store one GitHub write and the answer given; a deployment gets a deployer due time."""
    cursor = db.execute(
        "INSERT INTO dev_github_calls"
        " (at, method, path, installation_id, body, answer, deploy_due)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [at, method, path, installation_id, json.dumps(body), json.dumps(answer), deploy_due],
    )
    return int(cursor.lastrowid or 0)


def due_deployments(db: Database, now: float) -> list[dict[str, Any]]:
    """Return recorded deployments whose next deployer step is due."""
    return _decoded(
        select(
            db,
            "SELECT * FROM dev_github_calls WHERE deploy_step < 2 AND deploy_due <= ? ORDER BY id",
            [now],
        )
    )


def _decoded(rows: Any) -> list[dict[str, Any]]:
    rows = list(rows)
    for row in rows:
        row["body"] = json.loads(row["body"]) if row["body"] else None
        row["answer"] = json.loads(row["answer"]) if row["answer"] else None
    return rows


def advance_deployment(db: Database, call_id: int, step: int, due: float | None) -> None:
    """Record that the deployer played `step` of a deployment; schedule the next one."""
    db.execute(
        "UPDATE dev_github_calls SET deploy_step = ?, deploy_due = ? WHERE id = ?",
        [step, due, call_id],
    )


def live_since(db: Database, sha: str, stage: str, after: str | None) -> bool:
    """Say whether `sha` succeeded in `stage` after the newest deployment of `after` there."""
    floor = 0
    if after:
        row = db.execute(
            "SELECT max(d.id) FROM deployments d JOIN builds b ON b.id = d.build_id"
            " WHERE b.sha = ? AND d.stage = ?",
            [after, stage],
        ).fetchone()
        floor = row[0] or 0
    row = db.execute(
        "SELECT 1 FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE b.sha = ? AND d.stage = ? AND d.state = 'success' AND d.id > ? LIMIT 1",
        [sha, stage, floor],
    ).fetchone()
    return row is not None


def last_message_id(db: Database) -> int:
    """Return the id of the newest message the console showed (0 before any)."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM dev_messages").fetchone()[0])


def newest_waiting_promotion(db: Database) -> int | None:
    """Return the id of the newest promotion waiting for approval, in any repository."""
    row = db.execute("SELECT max(id) FROM promotions WHERE state = 'waiting'").fetchone()
    return row[0] if row else None
