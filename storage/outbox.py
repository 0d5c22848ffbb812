"""The outbox: outbound calls queued in the transaction that decided them, sent after it.

A row is (target, method, lane, payload): the relay serves each lane in row
order, leases a row while it sends it, and marks it sent, retried or failed.
Every function takes the open connection first and plain values after, so
another backend can implement the same functions.
"""

import json
from typing import Any

from sqlite_utils import Database

# What the relay reads to serve a lane, and what a leased row carries to its sender.
HEAD = ("id", "target", "method", "lane", "not_before", "lease_owner", "lease_until")
ROW = ("id", "target", "method", "lane", "raw", "attempts", "created_at", "lease_owner")
ERROR_CHARS = 1000


def queue(
    db: Database,
    *,
    target: str,
    method: str,
    lane: str,
    payload: dict[str, Any],
    created_at: float,
    coalesce_key: str | None = None,
) -> int:
    """Queue one call; return its row id.

    A pending row with the same `coalesce_key` takes the new payload in place: only
    the newest version of an edit is worth sending, and the row keeps its place in
    the lane, so replies queued after it still follow it.
    """
    raw = json.dumps(payload)
    if coalesce_key:
        pending = db.execute(
            "UPDATE outbox SET payload = ?, lane = ? WHERE id = (SELECT min(id) FROM outbox"
            " WHERE coalesce_key = ? AND state = 'pending') RETURNING id",
            [raw, lane, coalesce_key],
        ).fetchone()
        if pending:
            return int(pending[0])
    cursor = db.execute(
        "INSERT INTO outbox (target, method, lane, coalesce_key, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [target, method, lane, coalesce_key, raw, created_at],
    )
    return int(cursor.lastrowid or 0)


def last_queued(db: Database, coalesce_key: str) -> dict[str, Any] | None:
    """Return the payload last queued (pending or sent) under a coalesce key, or None."""
    row = db.execute(
        "SELECT payload FROM outbox WHERE coalesce_key = ? AND state IN ('pending', 'sent')"
        " ORDER BY id DESC LIMIT 1",
        [coalesce_key],
    ).fetchone()
    return json.loads(row[0]) if row else None


def pending_under_key(db: Database, method: str, key: str) -> bool:
    """Say whether a row of `method` whose payload names `key` is still waiting to be sent."""
    row = db.execute(
        "SELECT 1 FROM outbox WHERE method = ? AND state = 'pending'"
        " AND json_extract(payload, '$.key') = ? LIMIT 1",
        [method, key],
    ).fetchone()
    return row is not None


def pending_in_lanes(db: Database, lanes: list[str]) -> int:
    """Count the rows still waiting in these lanes."""
    marks = ", ".join("?" for _ in lanes)
    sql = f"SELECT count(*) FROM outbox WHERE state = 'pending' AND lane IN ({marks})"
    return int(db.execute(sql, lanes).fetchone()[0])


def pending_lanes(db: Database) -> list[str]:
    """Return every lane with a pending row."""
    # One index seek per lane (outbox_lanes), not a read of every pending row.
    return [
        r[0]
        for r in db.execute(
            "WITH RECURSIVE lanes (lane) AS ("
            " SELECT min(lane) FROM outbox WHERE state = 'pending'"
            " UNION ALL SELECT (SELECT min(lane) FROM outbox WHERE state = 'pending'"
            " AND lane > lanes.lane) FROM lanes WHERE lane IS NOT NULL)"
            " SELECT lane FROM lanes WHERE lane IS NOT NULL"
        )
    ]


def head(db: Database, lane: str) -> dict[str, Any] | None:
    """Return the lane's first pending row (without its payload), with its lease."""
    row = db.execute(
        f"SELECT {', '.join(HEAD)} FROM outbox WHERE state = 'pending' AND lane = ?"
        " ORDER BY id LIMIT 1",
        [lane],
    ).fetchone()
    return dict(zip(HEAD, row, strict=True)) if row else None


def pending(db: Database, row_id: int) -> dict[str, Any] | None:
    """Return one pending row with its payload (as stored, in `raw`) and its lease."""
    row = db.execute(
        f"SELECT {', '.join(r if r != 'raw' else 'payload' for r in ROW)}, lease_until"
        " FROM outbox WHERE id = ? AND state = 'pending'",
        [row_id],
    ).fetchone()
    return dict(zip((*ROW, "lease_until"), row, strict=True)) if row else None


def lease(db: Database, row_id: int, owner: str, until: float) -> None:
    """Hold a row for `owner` until `until`: another relay leaves it alone meanwhile."""
    db.execute(
        "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?", [owner, until, row_id]
    )


def mark_sent(db: Database, row_id: int, raw: str, now: float) -> None:
    """Mark a row sent, unless its payload was replaced while in flight (then it goes again)."""
    db.execute(
        "UPDATE outbox SET state = CASE WHEN payload = ? THEN 'sent' ELSE state END,"
        " lease_owner = NULL,"
        " sent_at = ?, error = NULL, attempts = CASE WHEN payload = ? THEN attempts + 1 ELSE 0 END"
        " WHERE id = ?",
        [raw, now, raw, row_id],
    )


def retry_later(db: Database, row_id: int, not_before: float, error: str, *, count: bool) -> None:
    """Free a row to be tried again at `not_before`, counting the attempt if `count`."""
    db.execute(
        "UPDATE outbox SET not_before = ?, error = ?, attempts = attempts + ?, lease_owner = NULL"
        " WHERE id = ?",
        [not_before, error[:ERROR_CHARS], int(count), row_id],
    )


def mark_failed(db: Database, row_id: int, error: str) -> None:
    """Give a row up for good, keeping the remote's reason."""
    db.execute(
        "UPDATE outbox SET state = 'failed', error = ?, attempts = attempts + 1,"
        " lease_owner = NULL WHERE id = ?",
        [error[:ERROR_CHARS], row_id],
    )
