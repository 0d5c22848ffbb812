"""The inbox of GitHub deliveries: stored once, processed in order per repository."""

import json
from typing import Any, NamedTuple

from sqlite_utils import Database

from storage import ingest
from storage.rows import select, select_one

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
    When every pending one is read, the batch goes on with the ingest file's arrivals
    (storage/ingest.py: `arrival` set, `id` None), which came after them: one held back is
    `held`, to be copied as pending, and one the main file knows already is `known`.
    """
    limit = limit or BATCH
    rows = db.conn.execute(
        "SELECT id, delivery_id, event, action, repo_key, attempts, not_before, length(body)"
        " FROM deliveries WHERE state = 'pending' ORDER BY id LIMIT ?",
        [limit],
    ).fetchall()
    pending = [
        {**dict(zip(DELIVERY_FIELDS, fields, strict=True)), "length": length}
        for *fields, length in rows
    ]
    if len(pending) < limit:
        pending += ingest.arrivals(db, limit - len(pending))
    held: set[str] = set()
    ready: list[dict[str, Any]] = []
    size = 0
    for record in pending:
        if record["repo_key"] in held or record["not_before"] > now:
            held.add(record["repo_key"])
            if record["id"] is None:  # an arrival: it is copied, and waits in the main file
                ready.append({**record, "held": True})
            continue
        if record.get("known"):
            ready.append(record)  # passed over: only the mark moves past it
            continue
        size += record["length"]
        if ready and size > max_bytes:
            break
        ready.append(record)
    _read_bodies(db, ready)
    return ready


def _read_bodies(db: Database, batch: list[dict[str, Any]]) -> None:
    """Fill in the bodies of a batch: the main file's one by one, the arrivals' in one read."""
    # Only what is processed: the copy of one held or known is made from the file itself.
    skipped = [r for r in batch if r.get("held") or r.get("known")]
    for record in skipped:
        record["body"] = b""
    arrived = [r["arrival"] for r in batch if r["id"] is None and "body" not in r]
    found = ingest.bodies(db, arrived) if arrived else {}
    for record in batch:
        if "body" in record:
            continue
        if record["id"] is None:
            record["body"] = found[record["arrival"]]
        else:
            record["body"] = db.conn.execute(
                "SELECT body FROM deliveries WHERE id = ?", [record["id"]]
            ).fetchone()[0]


class Settled(NamedTuple):
    """What processing made of one delivery: its new state, attempts, error and retry time."""

    id: int | None  # in `deliveries`; None for an arrival of the ingest file
    arrival: int | None  # its id in the ingest file
    state: str  # done, ignored, failed, or pending (a retry, or held behind one)
    attempts: int
    error: str | None
    not_before: float
    processed_at: float | None


def settle(db: Database, settled: list[Settled], through: int | None) -> None:
    """Write what a batch made of its deliveries; copy its arrivals, all through `through`."""
    db.conn.executemany(
        "UPDATE deliveries SET state = ?, attempts = ?, error = ?, not_before = ?,"
        " processed_at = ? WHERE id = ?",
        [
            (s.state, s.attempts, s.error, s.not_before, s.processed_at, s.id)
            for s in settled
            if s.id is not None
        ],
    )
    if through is not None:
        taken = [
            (s.state, s.attempts, s.error, s.not_before, s.processed_at, s.arrival)
            for s in settled
            if s.arrival is not None
        ]
        ingest.take(db, taken, through)


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
    return select(
        db,
        "SELECT delivery_id, event, action, state, attempts, error, received_at, processed_at"
        " FROM deliveries WHERE received_at >= ? ORDER BY id DESC",
        [since],
    )


def deliveries_by_guid(db: Database, guids: list[str]) -> dict[str, dict[str, Any]]:
    """Return the stored deliveries among these GUIDs, by GUID."""
    rows = select(
        db,
        "SELECT delivery_id, event, action, state, attempts, error, received_at FROM deliveries"
        " WHERE delivery_id IN (SELECT value FROM json_each(?))",
        [json.dumps(guids)],
    )
    return {r["delivery_id"]: r for r in rows}


def delivery(db: Database, guid: str) -> dict[str, Any] | None:
    """Return one stored delivery (without its body) by GUID, or None."""
    return select_one(
        db,
        "SELECT id, delivery_id, event, action, repo_key, state, attempts, error"
        " FROM deliveries WHERE delivery_id = ?",
        [guid],
    )


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
