"""The ingest file: acknowledged deliveries that the processing process has not taken yet.

Why a file of its own: with a processing process, `promobot serve` acknowledges while its
child applies deliveries in the main file, and SQLite lets one writer at a time into a file.
Every acknowledgement then waited for the child's transaction and its fsync (and, the child
running at a lower priority, for the child to get the CPU back): p99 in the hundreds of ms.
Only the acknowledging process writes this file, so an acknowledgement waits for nothing but
its own group's commit. The processing side copies the rows into the main file's
`deliveries` (`adopt`, recording how far it got in the same transaction) and everything else
reads them there; the acknowledging side deletes the rows the main file has (`prune`).
"""

import secrets
from pathlib import Path

from sqlite_utils import Database

# Rows moved into the main file per transaction: bounds how long one adoption holds its lock.
ADOPT_BATCH = 64
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


def adopt(db: Database, limit: int = ADOPT_BATCH) -> int:
    """Copy the next arrivals into `deliveries` (main file, ingest attached); return how many.

    A delivery already in `deliveries` (stored before this file existed) stays as it is.
    """
    token = db.execute("SELECT token FROM ingest.token").fetchone()
    if token is None:
        return 0
    row = db.execute("SELECT through FROM ingest_adopted WHERE token = ?", [token[0]]).fetchone()
    through = row[0] if row else 0
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM ingest.arrivals WHERE id > ? ORDER BY id LIMIT ?", [through, limit]
        ).fetchall()
    ]
    if not ids:
        return 0
    db.execute(
        f"INSERT OR IGNORE INTO deliveries ({ARRIVAL_FIELDS})"
        f" SELECT {ARRIVAL_FIELDS} FROM ingest.arrivals WHERE id > ? AND id <= ? ORDER BY id",
        [through, ids[-1]],
    )
    db.execute(
        "INSERT INTO ingest_adopted (token, through) VALUES (?, ?)"
        " ON CONFLICT (token) DO UPDATE SET through = excluded.through",
        [token[0], ids[-1]],
    )
    return len(ids)


def waiting(db: Database) -> tuple[int, float | None]:
    """Return how many arrivals are not adopted yet, and when the oldest was received."""
    count, oldest = db.execute(
        "SELECT count(*), min(received_at) FROM ingest.arrivals WHERE id > coalesce(("
        "  SELECT through FROM ingest_adopted"
        "  WHERE token = (SELECT token FROM ingest.token)), 0)"
    ).fetchone()
    return count, oldest
