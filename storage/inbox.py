"""The inbox of GitHub deliveries: stored once, processed in order per repository."""

import json
from typing import Any

from sqlite_utils import Database

from storage import ingest

DELIVERY_FIELDS = ("id", "delivery_id", "event", "action", "repo_key", "attempts", "not_before")


def store_delivery(
    db: Database,
    *,
    delivery_id: str,
    event: str,
    action: str | None,
    repo_key: str,
    body: bytes,
    now: float,
) -> bool:
    """Insert a delivery unless its id is already stored; return True when it is new."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO deliveries"
        " (delivery_id, event, action, repo_key, body, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [delivery_id, event, action, repo_key, body, now],
    )
    return cursor.rowcount == 1


# Deliveries applied per transaction. The processing process of `promobot serve` takes fewer
# (bot/engine/processor.py): there the write lock is shared with another process's acks.
BATCH = 200


def ready_deliveries(
    db: Database, *, now: float, limit: int | None = None, max_bytes: int = 32 << 20
) -> list[dict[str, Any]]:
    """Return pending deliveries to process now, oldest first, never jumping a waiting one.

    A delivery waiting for a retry holds back the later ones of its repository,
    so each repository's events are applied in the order they arrived. Bodies
    can be 25 MB each, so a batch stops at `max_bytes` (but holds at least one).
    A batch is applied in one transaction: `limit` (default BATCH) bounds how long.
    """
    rows = db.conn.execute(
        "SELECT id, delivery_id, event, action, repo_key, attempts, not_before, length(body)"
        " FROM deliveries WHERE state = 'pending' ORDER BY id LIMIT ?",
        [limit or BATCH],
    ).fetchall()
    held: set[str] = set()
    ready: list[dict[str, Any]] = []
    size = 0
    for *fields, length in rows:
        record = dict(zip(DELIVERY_FIELDS, fields, strict=True))
        if record["repo_key"] in held:
            continue
        if record["not_before"] > now:
            held.add(record["repo_key"])
            continue
        size += length
        if ready and size > max_bytes:
            break
        ready.append(record)
    for record in ready:
        record["body"] = db.conn.execute(
            "SELECT body FROM deliveries WHERE id = ?", [record["id"]]
        ).fetchone()[0]
    return ready


def finish_delivery(db: Database, delivery: int, *, state: str, now: float) -> None:
    """Mark a delivery done or ignored."""
    db.execute(
        "UPDATE deliveries SET state = ?, processed_at = ?, attempts = attempts + 1, error = NULL"
        " WHERE id = ?",
        [state, now, delivery],
    )


def defer_delivery(
    db: Database, delivery: int, *, error: str, not_before: float, give_up: bool, now: float
) -> None:
    """Record a failed attempt: retry after `not_before`, or keep it as failed for inspection."""
    db.execute(
        "UPDATE deliveries SET attempts = attempts + 1, error = ?, not_before = ?,"
        " state = CASE WHEN ? THEN 'failed' ELSE state END,"
        " processed_at = CASE WHEN ? THEN ? ELSE processed_at END"
        " WHERE id = ?",
        [error, not_before, give_up, give_up, now, delivery],
    )


def next_wake(db: Database) -> float | None:
    """Return when the earliest deferred delivery becomes ready, or None."""
    row = db.conn.execute(
        "SELECT min(not_before) FROM deliveries WHERE state = 'pending'"
    ).fetchone()
    return row[0]


def prune_bodies(db: Database, *, before: float) -> int:
    """Drop the bodies of deliveries processed before `before`; keep the rows for dedupe and audit.

    Failed deliveries keep their bodies for inspection.
    """
    cursor = db.execute(
        "UPDATE deliveries SET body = x'' WHERE state IN ('done', 'ignored')"
        " AND processed_at < ? AND length(body) > 0",
        [before],
    )
    return cursor.rowcount


def backlog(db: Database) -> dict[str, int]:
    """Count deliveries (those still in the ingest file too) and outbox rows not yet finished."""
    counts = dict(
        db.conn.execute(
            "SELECT 'deliveries_' || state, count(*) FROM deliveries"
            " WHERE state IN ('pending', 'failed') GROUP BY state"
            " UNION ALL SELECT 'outbox_' || state, count(*) FROM outbox"
            " WHERE state IN ('pending', 'failed') GROUP BY state"
        ).fetchall()
    )
    counts["deliveries_pending"] = counts.get("deliveries_pending", 0) + ingest.waiting(db)[0]
    keys = ("deliveries_pending", "deliveries_failed", "outbox_pending", "outbox_failed")
    return {key: counts.get(key, 0) for key in keys}


def deliveries_since(db: Database, since: float) -> list[dict[str, Any]]:
    """Return the deliveries received since `since` (without bodies), newest first."""
    return list(
        db.query(
            "SELECT delivery_id, event, action, state, attempts, error, received_at, processed_at"
            " FROM deliveries WHERE received_at >= ? ORDER BY id DESC",
            [since],
        )
    )


def deliveries_by_guid(db: Database, guids: list[str]) -> dict[str, dict[str, Any]]:
    """Return the stored deliveries among these GUIDs, by GUID."""
    rows = db.query(
        "SELECT delivery_id, event, action, state, attempts, error, received_at FROM deliveries"
        " WHERE delivery_id IN (SELECT value FROM json_each(?))",
        [json.dumps(guids)],
    )
    return {r["delivery_id"]: r for r in rows}


def delivery(db: Database, guid: str) -> dict[str, Any] | None:
    """Return one stored delivery (without its body) by GUID, or None."""
    rows = list(
        db.query(
            "SELECT id, delivery_id, event, action, repo_key, state, attempts, error"
            " FROM deliveries WHERE delivery_id = ?",
            [guid],
        )
    )
    return rows[0] if rows else None


def revive_delivery(db: Database, delivery: int) -> None:
    """Make a failed delivery pending again, with its attempts counted afresh."""
    db.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = 0,"
        " processed_at = NULL WHERE id = ? AND state = 'failed'",
        [delivery],
    )


def drop_delivery(db: Database, delivery: int, *, now: float) -> None:
    """Mark a failed delivery dropped: never processed, still stored so its GUID dedupes."""
    db.execute(
        "UPDATE deliveries SET state = 'dropped', processed_at = ?"
        " WHERE id = ? AND state = 'failed'",
        [now, delivery],
    )


def oldest_unprocessed(db: Database, *, now: float) -> float | None:
    """Return when the oldest pending delivery that is due now was received, or None."""
    row = db.execute(
        "SELECT min(received_at) FROM deliveries WHERE state = 'pending' AND not_before <= ?",
        [now],
    ).fetchone()
    times = [t for t in (row[0] if row else None, ingest.waiting(db)[1]) if t is not None]
    return min(times, default=None)
