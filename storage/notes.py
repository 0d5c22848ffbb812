"""Audit lines the answering process writes beside its acknowledgements, for the event log.

`/ship status` answers from a reader; its audit line must be durable with the answer, yet
writing it into the main file would make the answer wait for the processing process's
write lock. So, like an acknowledged delivery, the line goes into the ingest file that only
the answering process writes (`keep`, group-committed with the acknowledgements), and the
processing side moves it into `event_log` (`adopt`). How far it got is the row of
`ingest_adopted` keyed `notes:<token>` (the ingest file's token), written in the same
transaction, so a line is moved once; the answering side then deletes it (`prune`).
"""

import json
from typing import Any

from sqlite_utils import Database

from storage import audit

# Lines moved per transaction, and deleted per prune: a few tens of µs each.
BATCH = 64
KEY = "'notes:' || (SELECT token FROM {schema}token)"


def create(db: Database) -> None:
    """Create the ingest file's table of audit lines (AUTOINCREMENT: ids never reused)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS notes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, entry TEXT NOT NULL)"
    )


def keep(db: Database, *, at: float, entry: dict[str, Any]) -> None:
    """Store one audit line (log_event's fields) in the ingest file until it is adopted."""
    db.execute("INSERT INTO notes (at, entry) VALUES (?, ?)", [at, json.dumps(entry)])


def _through(db: Database) -> int:
    row = db.execute(
        f"SELECT through FROM ingest_adopted WHERE token = {KEY.format(schema='ingest.')}"
    ).fetchone()
    return int(row[0]) if row else 0


def waiting(db: Database) -> int:
    """Count the audit lines of the ingest file not in the event log yet (main file side)."""
    query = "SELECT count(*) FROM ingest.notes WHERE id > ?"
    return int(db.execute(query, [_through(db)]).fetchone()[0])


def adopt(db: Database, limit: int = BATCH) -> int:
    """Append the next audit lines of the ingest file to the event log; return how many."""
    rows = db.execute(
        "SELECT id, at, entry FROM ingest.notes WHERE id > ? ORDER BY id LIMIT ?",
        [_through(db), limit],
    ).fetchall()
    for _, at, entry in rows:
        audit.log_event(db, at=at, **json.loads(entry))
    if rows:
        db.execute(
            "INSERT INTO ingest_adopted (token, through)"
            f" VALUES ({KEY.format(schema='ingest.')}, ?)"
            " ON CONFLICT (token) DO UPDATE SET through = excluded.through",
            [rows[-1][0]],
        )
    return len(rows)


def prune(db: Database, limit: int = BATCH) -> int:
    """Delete up to `limit` audit lines the event log has (ingest file side); return how many."""
    cursor = db.execute(
        "DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE id <= ("
        f"  SELECT through FROM processed.ingest_adopted WHERE token = {KEY.format(schema='')})"
        " ORDER BY id LIMIT ?)",
        [limit],
    )
    return cursor.rowcount
