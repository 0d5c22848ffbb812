"""Keeping a WAL at its size: cuts, writes ahead, copies beside the writer, start-overs.

A WAL holds every page committed since it was last copied into its file, and every
acknowledged body passes through the ingest file's. SQLite starts a WAL over only when a
commit finds all of it copied, and gives its disk back only when it is cut. These are the
SQLite steps; when they run (a quiet moment, between two groups, after a checkpoint) is
the Store's to decide (storage/db.py).
"""

import contextlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

from sqlite_utils import Database

from storage import connection
from storage.connection import begin, not_waiting

# Seconds one start-over of the ingest WAL keeps asking for the ingest file's write lock.
RESTART_TRIES_FOR = 0.02
# Bytes of the WAL a frame takes: a page of 4096 bytes and a header of 24.
PAGE_BYTES = 4096
FRAME_BYTES = PAGE_BYTES + 24
# Bytes of zeros one step of write_ahead adds: 2 MB took 2.8-4.0 ms here, an arrival's longest wait.
AHEAD_STEP = 2 * 1024 * 1024
# Free disk write_ahead never takes: the space is the acknowledgements' first.
AHEAD_SPARES = 1024 * 1024 * 1024


def cut(db: Database, size: int, lock: str | None, keep: int, floor: int = 0) -> bool:
    """Give back a step of the writer's WAL of `size` bytes; True once it is cut to `floor`.

    The whole WAL is copied into the file, and the WAL is cut by WAL_CUT_STEP, or to `floor`
    when that is all it holds above it. It does not wait for readers: with one reading, it
    answers False at once. `keep` is the writer's journal_size_limit, set again after.
    """
    to = max(floor, size - connection.WAL_CUT_STEP)
    try:
        if to == 0:
            with not_waiting(db):
                busy, _, _ = db.conn.execute("PRAGMA main.wal_checkpoint(TRUNCATE)").fetchone()
            return busy == 0
        # RESTART makes the next write start the WAL over, and a WAL that starts over is cut
        # to journal_size_limit: one page written here, the cut paid here.
        db.conn.execute(f"PRAGMA journal_size_limit = {to}")
        with not_waiting(db):
            busy, _, _ = db.conn.execute("PRAGMA main.wal_checkpoint(RESTART)").fetchone()
        if not busy:
            version = db.conn.execute("PRAGMA main.user_version").fetchone()[0]
            begin(db, lock)
            db.conn.execute(f"PRAGMA main.user_version = {int(version)}")
            db.conn.execute("COMMIT")
        return not busy and to == floor
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
        raise
    finally:
        db.conn.execute(f"PRAGMA journal_size_limit = {keep}")


def write_ahead(path: Path, upto: int) -> int:
    """Add a step of zeros to the end of the WAL at `path`, short of `upto`; return how many.

    Only the WAL's writer may call it, between its transactions: SQLite appends a frame
    where the file ended, and nothing else may write there meanwhile. SQLite reads a WAL
    only as far as its frames are whole and signed with the salt of its header, so zeros
    past them are read as the end, as the stale frames a WAL keeps after a start-over are.

    Why: a frame that grows the file costs ext4 a new page zeroed by hand and a block to
    allocate, twice a frame (a frame is not a page): pwrite was 17-25% of the acknowledging
    process's CPU at saturation, and 6% over zeros written here. A WAL that starts over
    inside them, still in the page cache, costs neither. It answers 0 when the file is at
    `upto`, or when a step would leave less than AHEAD_SPARES of the disk free.
    """
    size = path.stat().st_size
    step = min(AHEAD_STEP, upto - size)
    if step <= 0 or shutil.disk_usage(path.parent).free - step < AHEAD_SPARES:
        return 0
    page = bytes(PAGE_BYTES)
    fd = os.open(path, os.O_WRONLY)
    try:
        # A page a write: written larger, the page cache holds them in folios of up to 2 MB,
        # and each of SQLite's writes then walks every block of its folio (6.5 µs a frame
        # here, against 4.2 appending and 2.5 in pages written one by one).
        end, offset = size + step, size
        while offset < end:
            length = min(PAGE_BYTES - offset % PAGE_BYTES, end - offset)
            offset += os.pwrite(fd, page[:length], offset)
        # Synced here, or the next acknowledgement's fsync would carry them.
        os.fdatasync(fd)
    finally:
        os.close(fd)
    return step


def backfill(db: Database) -> bool:
    """Copy what the WAL holds into its file without waiting for anyone; True if all of it."""
    busy, frames, copied = db.execute("PRAGMA main.wal_checkpoint(PASSIVE)").fetchone()
    return not busy and frames == copied


def copy_ingest(db: Database, fd: int | None) -> bool:
    """Copy the ingest WAL into its file without waiting, and sync it; True if past its limit.

    `fd`: the ingest file. SQLite syncs the file only after a copy that reached the WAL's
    end, which arrivals that never pause never let one do: the start-over then had every
    copy since the last one to sync, holding the write lock: 103-203 ms at 5,000 deliveries
    a second. Synced here, outside any lock, a tenth of a second's copies at a time, a
    start-over took 3-21 ms.
    """
    _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if fd is not None:
        os.fdatasync(fd)
    return bool(frames * FRAME_BYTES > connection.WAL_LIMIT_BYTES)


def start_over(db: Database) -> bool:
    """Make the ingest file's next commit write its WAL from the first frame; True if it will.

    Arrivals that never pause leave no moment with all of the WAL copied, nor a quiet one
    to cut it in: at 1,000 deliveries a second it grew by 25 MB a second. A RESTART
    checkpoint copies what is left and fsyncs the file while it holds the ingest file's
    write lock, and acknowledgements wait that long. Left to SQLite, that fsync had every
    copy since the last start-over to write (205-309 ms under saturation bursts): each
    checkpoint syncs what it copied (copy_ingest), so a start-over finds little left.
    Copying until a copy reached the end (and so synced) just before it did not help:
    acknowledgements waited as long in their own fsyncs, behind the same data reaching the
    disk at once. While the acknowledging side commits, or a reader reads what is not
    copied yet, it asks again for a moment, then leaves it to the next checkpoint.
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
