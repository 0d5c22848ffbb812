"""What promobot asked GitHub to deliver again, and how far back each sweep of its list read."""

import json
from typing import Any

from sqlite_utils import Database

from storage.rows import insert, select_one


def sweep_since(db: Database, *, now: float, retention: float, margin: float) -> float:
    """Return how far back to read: the last good sweep's start less `margin`, within retention."""
    row = db.conn.execute(
        "SELECT max(started_at) FROM redelivery_sweeps WHERE finished_at IS NOT NULL"
        " AND error IS NULL"
    ).fetchone()
    oldest = now - retention
    return oldest if row[0] is None else max(oldest, row[0] - margin)


def add_sweep(db: Database, **row: Any) -> int:
    """Record one sweep (started_at, since, finished_at, listed, asked, error)."""
    return insert(db, "redelivery_sweeps", row)


def never_asked(db: Database, guids: list[str]) -> set[str]:
    """Return the GUIDs that promobot neither stored nor asked GitHub to redeliver."""
    rows = db.execute(
        "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT delivery_id FROM deliveries)"
        " AND value NOT IN (SELECT delivery_id FROM ingest.arrivals)"
        " AND value NOT IN (SELECT guid FROM redeliveries)",
        [json.dumps(guids)],
    ).fetchall()
    return {r[0] for r in rows}


def add_request(db: Database, **row: Any) -> None:
    """Remember that GitHub was asked to redeliver a GUID, so it is never asked again."""
    insert(db, "redeliveries", row)


def mark_requested(db: Database, *, guid: str, at: float) -> None:
    """Record when the request to redeliver a GUID was last sent to GitHub."""
    db.execute("UPDATE redeliveries SET requested_at = ? WHERE guid = ?", [at, guid])


def requested_at(db: Database, *, guid: str) -> float | None:
    """Return when the request to redeliver a GUID was last sent, or None if never."""
    row = db.execute("SELECT requested_at FROM redeliveries WHERE guid = ?", [guid]).fetchone()
    return None if row is None else row[0]


def requests(db: Database, guids: list[str]) -> dict[str, dict[str, Any]]:
    """Return the redelivery requests of these GUIDs, with their outbox state, by GUID."""
    rows = db.execute(
        "SELECT r.guid, r.asked_at, o.state, o.error, o.sent_at FROM redeliveries r"
        " LEFT JOIN outbox o ON o.id = r.outbox_id"
        " WHERE r.guid IN (SELECT value FROM json_each(?))",
        [json.dumps(guids)],
    ).fetchall()
    keys = ("guid", "asked_at", "state", "error", "sent_at")
    return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}


def last_sweep(db: Database) -> dict[str, Any] | None:
    """Return the newest sweep, finished or failed."""
    return select_one(db, "SELECT * FROM redelivery_sweeps ORDER BY id DESC LIMIT 1")
