"""Opening a SQLite file with promobot's pragmas, and the transactions every store uses.

Durability choice: WAL with ``synchronous=FULL``. A delivery is acknowledged to
GitHub only after its commit, and GitHub never redelivers on its own, so a
commit that a power cut could undo would be a lost event. FULL makes every
commit survive power loss; its fsync is paid once per *group* of writes
(storage/db.py: the writer thread commits every job waiting in its queue together).
"""

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from sqlite_utils import Database

from storage.faults import LOCKED, fault_of

T = TypeVar("T")
# How long a write waits for another process's transaction before it fails.
BUSY_SECONDS = 5.0
# What a WAL keeps on disk once it starts over: a burst grows it by gigabytes (every
# acknowledged body passes through it), and without a limit SQLite never gives them back.
WAL_KEEP_BYTES = 64 * 1024 * 1024
# What the ingest file's WAL may grow to while arrivals never pause: past it, it is started
# over (wal.start_over). At 3,000 deliveries a second that is every 6 s, and each holds
# acknowledgements up while the file is fsynced (3-21 ms at 5,000/s, each copy synced first).
WAL_LIMIT_BYTES = 512 * 1024 * 1024
# What `promobot serve` keeps the ingest file's WAL at (--ingest-wal-mb): its limit, and what
# arrivals add before the next check finds it past (wal.write_ahead says why).
INGEST_WAL_BYTES = WAL_LIMIT_BYTES + 128 * 1024 * 1024
# What one cut of the ingest file's WAL gives back (Store.fit_wal). Giving back a burst's
# 1.3 GB at once took 460 ms on this machine's ext4 (online discard), and a delivery that
# came meanwhile waited for all of it; 16 MB at a time took 6 ms each alone, 11-14 ms while
# the processing process wrote, so 8 MB.
WAL_CUT_STEP = 8 * 1024 * 1024
# Pages a WAL gathers before a commit copies them into the file (SQLite's default is 1,000).
# The processing process's checkpoints write pages all over the main file, and while that
# many writes wait on the disk the acknowledgements' fsyncs wait behind them: at 4,390-5,320
# deliveries a second, ack p99 was 10.4-11.6 ms (35.5 once) with 1,000 pages, 15.1-15.6 with
# 4,000, 9.4-9.6 with 100 and 7.0-9.6 with 250, the backlog processed as fast.
CHECKPOINT_PAGES = 250


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    checkpoints: bool = True,
    attach: tuple[str, Path] | None = None,
    wait: float = BUSY_SECONDS,
) -> Database:
    """Open `path` with promobot's pragmas, ready for sqlite-utils.

    `checkpoints=False` leaves copying the WAL into the database to another connection (the
    processing process's), so this one's commits never wait for that copy and its fsync.
    `attach` = (name, path) makes another file's tables readable as `name.table`, read-only:
    a transaction here then takes that file's write lock neither when it begins nor ever.
    `wait`: how long a statement waits for another connection's lock (ATTACH too) before
    it fails with SQLITE_BUSY.
    """
    conn = sqlite3.connect(
        str(path), timeout=wait, check_same_thread=False, isolation_level=None, uri=True
    )
    if attach is not None:
        name, other = attach
        try:
            conn.execute(f"ATTACH DATABASE ? AS {name}", [f"file:{quote(str(other))}?mode=ro"])
        except sqlite3.Error:
            conn.close()
            raise
    conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        # Debian builds SQLite with SECURE_DELETE: every deleted page was zeroed, and the
        # zeros went through the WAL. Pruning the ingest file rewrote each 12 KB body it
        # deleted, in the group commit of the acknowledgements the prune rode in (a third
        # of the serving process's disk writes). FAST still clears deleted rows from the
        # b-tree pages a commit writes anyway; freed pages keep their bytes, as the bodies'
        # copies in the main file do.
        conn.execute("PRAGMA secure_delete = FAST")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        # A savepoint keeps the pages it changes until released; past 64 KB SQLite spilled
        # them to a temporary file, a write per page a batch of deliveries changed.
        conn.execute("PRAGMA temp_store = MEMORY")
        pages = CHECKPOINT_PAGES if checkpoints else 0
        conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
    return Database(conn, execute_plugins=False)


@contextlib.contextmanager
def savepoint(db: Database, name: str) -> Iterator[None]:
    """Run a block inside a savepoint: its writes land together, or not at all."""
    db.conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        # After some errors (SQLITE_FULL, SQLITE_IOERR) SQLite has already rolled the
        # whole transaction back and the savepoint is gone: the original error is the news.
        if db.conn.in_transaction:
            db.conn.execute(f"ROLLBACK TO {name}")
            db.conn.execute(f"RELEASE {name}")
        raise
    db.conn.execute(f"RELEASE {name}")


def snapshot(db: Database, fn: Callable[[Database], T]) -> T:
    """Run a read in one snapshot: an answer never mixes two commits' states (one WAL lock)."""
    db.conn.execute("BEGIN")
    try:
        return fn(db)
    finally:
        db.conn.execute("ROLLBACK")


# Takes the main file's write lock and nothing else (see begin); it changes no row.
LOCK_MAIN_ONLY = "DELETE FROM ingest_adopted WHERE 0"


def begin(db: Database, lock: str | None = None) -> None:
    """Take the write lock, asking again every 0.2 ms while another process holds it.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … ms between tries: behind the processing
    process's short transactions an acknowledgement would wait far longer than they last.
    `lock`, a statement that writes the main file only, takes its lock instead of BEGIN
    IMMEDIATE, which also opens a snapshot of every attached file for the whole transaction.
    """
    deadline = time.monotonic() + BUSY_SECONDS
    with not_waiting(db):
        while True:
            try:
                if lock is None:
                    db.conn.execute("BEGIN IMMEDIATE")
                else:
                    db.conn.execute("BEGIN")
                    db.conn.execute(lock)
                return
            except sqlite3.OperationalError as exc:
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
                if fault_of(exc) != LOCKED or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)


@contextlib.contextmanager
def not_waiting(db: Database) -> Iterator[None]:
    """Run a block whose statements fail at once with SQLITE_BUSY rather than wait for a lock."""
    db.conn.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        db.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
