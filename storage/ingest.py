"""The ingest file: acknowledged deliveries that the processing process has not taken yet.

Why a file of its own: with a processing process, `promobot serve` acknowledges while its
child applies deliveries in the main file, and SQLite lets one writer at a time into a file.
Every acknowledgement then waited for the child's transaction and its fsync (and, the child
running at a lower priority, for the child to get the CPU back): p99 in the hundreds of ms.
Only the acknowledging process writes this file, so an acknowledgement waits for nothing but
its own group's commit. The processing side reads the rows here (`arrivals`), applies them,
and copies them into the main file's `deliveries` as they came out (`take`, recording how far
it got in the same transaction); everything else reads them there, and the acknowledging side
deletes the rows the main file has (`prune`).
"""

import json
import secrets
from pathlib import Path
from typing import Any

from sqlite_utils import Database

# Rows deleted per prune: each costs a few tens of µs inside a group of acknowledgements.
PRUNE_BATCH = 128
ARRIVAL_FIELDS = "delivery_id, event, action, repo_key, body, received_at"


def path_for(db_path: str | Path) -> Path:
    """Return the ingest file that goes with the main database `db_path`."""
    return Path(f"{db_path}.ingest")


def create(db: Database) -> None:
    """Create the ingest file's tables, and its token, once.

    AUTOINCREMENT: ids are never reused after a prune, so "adopted through id N" stays true.
    The token names this file: a new file (its ids starting again at 1) is adopted from 1.
    """
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS arrivals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            action TEXT,
            repo_key TEXT NOT NULL,
            body BLOB NOT NULL,
            received_at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS token (token TEXT NOT NULL);
        """
    )
    db.execute(
        "INSERT INTO token SELECT ? WHERE NOT EXISTS (SELECT 1 FROM token)", [secrets.token_hex(16)]
    )


def store_arrival(
    db: Database,
    *,
    delivery_id: str,
    event: str,
    action: str | None,
    repo_key: str,
    body: bytes,
    now: float,
) -> bool:
    """Insert a delivery unless its id is stored here or in the main file; True when new."""
    cursor = db.execute(
        f"INSERT OR IGNORE INTO arrivals ({ARRIVAL_FIELDS}) SELECT ?, ?, ?, ?, ?, ?"
        " WHERE NOT EXISTS (SELECT 1 FROM processed.deliveries WHERE delivery_id = ?)",
        [delivery_id, event, action, repo_key, body, now, delivery_id],
    )
    return cursor.rowcount == 1


def prune(db: Database, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` rows the main file has adopted; return how many."""
    cursor = db.execute(
        "DELETE FROM arrivals WHERE id IN (SELECT id FROM arrivals WHERE id <= ("
        "  SELECT through FROM processed.ingest_adopted"
        "  WHERE token = (SELECT token FROM token)) ORDER BY id LIMIT ?)",
        [limit],
    )
    return cursor.rowcount


def last_arrival(db: Database) -> int:
    """Return the id of the newest arrival ever stored here (0 before the first)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'arrivals'").fetchone()
    return int(row[0]) if row else 0


def _mark(db: Database) -> tuple[str, int] | None:
    """Return this ingest file's token and the id its arrivals are copied through, if any."""
    token = db.execute("SELECT token FROM ingest.token").fetchone()
    if token is None:
        return None
    row = db.execute("SELECT through FROM ingest_adopted WHERE token = ?", [token[0]]).fetchone()
    return token[0], row[0] if row else 0


def arrivals(db: Database, limit: int) -> list[dict[str, Any]]:
    """Return up to `limit` arrivals not copied yet, oldest first, without their bodies.

    `known`: the main file has that delivery already (stored before this file existed);
    it is passed over, never processed a second time.
    """
    mark = _mark(db)
    if mark is None:
        return []
    rows = db.conn.execute(
        "SELECT a.id, a.delivery_id, a.event, a.action, a.repo_key, length(a.body),"
        " EXISTS (SELECT 1 FROM deliveries d WHERE d.delivery_id = a.delivery_id)"
        " FROM ingest.arrivals a WHERE a.id > ? ORDER BY a.id LIMIT ?",
        [mark[1], limit],
    ).fetchall()
    fields = ("arrival", "delivery_id", "event", "action", "repo_key", "length", "known")
    return [
        {"id": None, "attempts": 0, "not_before": 0.0, **dict(zip(fields, row, strict=True))}
        for row in rows
    ]


def bodies(db: Database, ids: list[int]) -> dict[int, bytes]:
    """Return the bodies of these arrivals, by arrival id."""
    return dict(
        db.conn.execute(
            "SELECT id, body FROM ingest.arrivals WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        ).fetchall()
    )


# What processing made of an arrival: (state, attempts, error, not_before, processed_at, id).
Taken = tuple[str, int, str | None, float, float | None, int]


def take(db: Database, taken: list[Taken], through: int) -> None:
    """Copy arrivals into `deliveries` in the state processing left them; mark `through` copied.

    One statement for the batch, in the transaction of its processing: a copy is never
    written first and updated after (a body is tens of KB), and a crash undoes both together.
    A delivery already in `deliveries` stays as it is.
    """
    mark = _mark(db)
    if mark is None:
        return
    db.conn.executemany(
        f"INSERT OR IGNORE INTO deliveries ({ARRIVAL_FIELDS},"
        " state, attempts, error, not_before, processed_at)"
        f" SELECT {ARRIVAL_FIELDS}, ?, ?, ?, ?, ? FROM ingest.arrivals WHERE id = ?",
        taken,
    )
    db.execute(
        "INSERT INTO ingest_adopted (token, through) VALUES (?, ?)"
        " ON CONFLICT (token) DO UPDATE SET through = excluded.through",
        [mark[0], through],
    )


def waiting(db: Database) -> tuple[int, float | None]:
    """Return how many arrivals are not adopted yet, and when the oldest was received."""
    count, oldest = db.execute(
        "SELECT count(*), min(received_at) FROM ingest.arrivals WHERE id > coalesce(("
        "  SELECT through FROM ingest_adopted"
        "  WHERE token = (SELECT token FROM ingest.token)), 0)"
    ).fetchone()
    return count, oldest
