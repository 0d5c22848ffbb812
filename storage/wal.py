"""Keeping a WAL from growing without end: cuts, copies beside the writer, start-overs.

A WAL holds every page committed since it was last copied into its file, and every
acknowledged body passes through the ingest file's. SQLite starts a WAL over only when a
commit finds all of it copied, and gives its disk back only when it is cut. These are the
SQLite steps; when they run (a quiet moment, between two groups, after a checkpoint) is
the Store's to decide (storage/db.py).
"""

import contextlib
import sqlite3
import time

from sqlite_utils import Database

from storage import connection
from storage.connection import begin, not_waiting

# Seconds one start-over of the ingest WAL keeps asking for the ingest file's write lock.
RESTART_TRIES_FOR = 0.02
# Bytes of the WAL a frame takes: a page of 4096 bytes and a header of 24.
FRAME_BYTES = 4096 + 24


def cut(db: Database, size: int, lock: str | None, keep: int) -> bool:
    """Give back a step of the writer's WAL of `size` bytes; True once it is cut to nothing.

    The whole WAL is copied into the file, and the WAL is cut by WAL_CUT_STEP, or to nothing
    when that is all it holds. It does not wait for readers: with one reading, it answers
    False at once. `keep` is the writer's journal_size_limit, set again after.
    """
    try:
        if size <= connection.WAL_CUT_STEP:
            with not_waiting(db):
                busy, _, _ = db.conn.execute("PRAGMA main.wal_checkpoint(TRUNCATE)").fetchone()
            return busy == 0
        # RESTART makes the next write start the WAL over, and a WAL that starts over is cut
        # to journal_size_limit: one page written here, the cut paid here.
        db.conn.execute(f"PRAGMA journal_size_limit = {size - connection.WAL_CUT_STEP}")
        with not_waiting(db):
            busy, _, _ = db.conn.execute("PRAGMA main.wal_checkpoint(RESTART)").fetchone()
        if not busy:
            version = db.conn.execute("PRAGMA main.user_version").fetchone()[0]
            begin(db, lock)
            db.conn.execute(f"PRAGMA main.user_version = {int(version)}")
            db.conn.execute("COMMIT")
        return False
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
        raise
    finally:
        db.conn.execute(f"PRAGMA journal_size_limit = {keep}")


def backfill(db: Database) -> bool:
    """Copy what the WAL holds into its file without waiting for anyone; True if all of it."""
    busy, frames, copied = db.execute("PRAGMA main.wal_checkpoint(PASSIVE)").fetchone()
    return not busy and frames == copied


def copy_ingest(db: Database) -> bool:
    """Copy the ingest WAL into its file without waiting; True if the WAL is past its limit."""
    _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return bool(frames * FRAME_BYTES > connection.WAL_LIMIT_BYTES)


def start_over(db: Database) -> bool:
    """Make the ingest file's next commit write its WAL from the first frame; True if it will.

    Arrivals that never pause leave no moment with all of the WAL copied, nor a quiet one
    to cut it in: at 1,000 deliveries a second it grew by 25 MB a second. A RESTART
    checkpoint copies what is left and fsyncs the file while it holds the ingest file's
    write lock, and acknowledgements wait that long. The fsync is the cost: SQLite fsyncs
    the file only after a copy that reached the WAL's end, and under arrivals a commit
    made during the copy moves the end on, so every copy since the last start-over is
    still to be synced (205-309 ms under saturation bursts). Copying without the lock
    first, until a copy reached the end (and so synced), held the lock 1-3 ms instead,
    but acknowledgements then waited about as long (190-210 ms in all) in their own
    fsyncs, behind the same data reaching the disk; so it is not done. While the
    acknowledging side commits, or a reader reads what is not copied yet, it asks again
    for a moment, then leaves it to the next checkpoint.
    """
    deadline = time.monotonic() + RESTART_TRIES_FOR
    # Asked again every 0.2 ms, not waited for: SQLite's busy handler would hold the write
    # lock while it waited for a reader.
    with not_waiting(db):
        while True:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy or time.monotonic() > deadline:
                return not busy
            time.sleep(0.0002)
