"""Storage faults: the SQLite errors that mean "no writes now", and the probe that they cleared."""

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

# Another connection holds the file: worth asking again, unlike the other faults.
LOCKED = "database locked"
# SQLite result codes (low byte) that mean "no writes now", and the words /healthz uses.
FAULT_CODES = {
    5: LOCKED,  # SQLITE_BUSY
    6: LOCKED,  # SQLITE_LOCKED
    8: "read-only database",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    13: "disk full",  # SQLITE_FULL
    14: "cannot open the database file",  # SQLITE_CANTOPEN
}
FAULT_TEXTS = (
    ("disk is full", "disk full"),
    ("is locked", LOCKED),
    ("readonly database", "read-only database"),
    ("disk i/o error", "disk I/O error"),
    ("unable to open", "cannot open the database file"),
)
# Below this much free space next to the database, a probe says the disk is still full.
MIN_FREE_BYTES = 1 << 20
PROBE_BYTES = 64 << 10


class Unavailable(sqlite3.OperationalError):
    """The database cannot take writes now (disk full, locked …); `cause` says which."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"storage unavailable: {cause} ({detail})")
        self.cause = cause
        self.detail = detail


@dataclass(frozen=True)
class Fault:
    """Why writes fail now, and since when (epoch seconds)."""

    cause: str
    detail: str
    since: float


def fault_of(exc: BaseException) -> str | None:
    """Name the storage fault `exc` shows (disk full, locked …), or None for any other error."""
    if isinstance(exc, Unavailable):
        return exc.cause
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in FAULT_CODES:
        return FAULT_CODES[code & 0xFF]
    text = str(exc).lower()
    return next((cause for needle, cause in FAULT_TEXTS if needle in text), None)


def probe(db: Database, directory: Path) -> None:
    """Take the write lock and room for a delivery, then give both back (rolled back)."""
    if shutil.disk_usage(directory).free < MIN_FREE_BYTES:
        raise Unavailable("disk full", f"less than {MIN_FREE_BYTES} bytes free in {directory}")
    db.conn.execute("SAVEPOINT probe")
    try:
        db.conn.execute("CREATE TABLE promobot_probe (pad BLOB)")
        db.conn.execute("INSERT INTO promobot_probe VALUES (zeroblob(?))", [PROBE_BYTES])
    finally:
        if db.conn.in_transaction:  # else SQLite already rolled it all back
            db.conn.execute("ROLLBACK TO probe")
            db.conn.execute("RELEASE probe")
