"""The database as the async code sees it, and the one writer thread every write goes through.

How a file is opened and a transaction begun is storage/connection.py; durability is
``synchronous=FULL``, paid once per *group* of writes: the writer thread commits every job
waiting in its queue together.
"""

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from storage import connection, ingest, notes, wal
from storage.connection import LOCK_MAIN_ONLY, begin, connect, savepoint, snapshot
from storage.faults import LOCKED, Fault, Unavailable, fault_of, probe
from storage.migrations import migrations

log = logging.getLogger(__name__)
T = TypeVar("T")
# (fn, in a savepoint of its own?, the caller's loop, the caller's future)
Job = tuple[Callable[[Database], Any], bool, asyncio.AbstractEventLoop, asyncio.Future]

# How many queued jobs one transaction may carry; bounds the latency of a group.
GROUP_LIMIT = 256
# Seconds between the checkpoints of the ingest file that its readers run (see Store). Each
# syncs what it copied (wal.copy_ingest). At 5,000 deliveries a second, every second such a
# sync took up to 240 ms and the acknowledgements' p99 was 48 ms; every 0.1 s, 8 ms at p90
# and 6-9.5 ms.
INGEST_CHECKPOINT_EVERY = 0.1


def migrate(path: str | Path) -> None:
    """Create or upgrade the schema at `path`, and create its ingest file beside it."""
    db = connect(path)
    try:
        migrations.apply(db)
    finally:
        db.close()
    db = connect(ingest.path_for(path))
    try:
        ingest.create(db)
        notes.create(db)
    finally:
        db.close()


class Store:
    """The database as the async code sees it: `await write(fn)`, `await read(fn)`.

    `write` runs `fn(db)` on the single writer thread inside a transaction
    (a savepoint within a group commit), so a job's writes land together or
    not at all, and never on the event loop. `read` runs on a small pool of
    read-only connections, which WAL lets proceed while the writer writes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        checkpoints: bool = True,
        intake: bool = False,
        wal_size: int = 0,
    ) -> None:
        # `path` is the main file. It reads its ingest file as `ingest`; with `intake`, this
        # store writes the ingest file instead (storage/ingest.py) and reads the main file as
        # `processed`. `wal_size`: what fit_wal brings the WAL to, cut or written ahead.
        self._main = Path(path)
        self.path = ingest.path_for(path) if intake else self._main
        self.checkpoints = checkpoints
        self.intake = intake
        self.wal_size = wal_size
        self._attach = ("processed", self._main) if intake else ("ingest", ingest.path_for(path))
        # The main file's writer (the processing process's) reads the ingest file too, but
        # only for the moments it needs it: a snapshot of it held through each of its
        # transactions, nearly always one under load, kept the ingest file's WAL from being
        # copied past it, and from being cut when nothing arrives.
        self._write_lock = None if intake else LOCK_MAIN_ONLY
        self._checkpointed = 0.0
        self._checkpointer: Database | None = None
        self._ingest_fd: int | None = None  # the ingest file, to sync what a checkpoint copied
        # Set when a write meets disk full, a lock …; cleared only by a probe that succeeds.
        self.fault: Fault | None = None
        self._probing: asyncio.Future | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="promobot-read")
        self._reader_dbs: list[Database] = []
        self._loop_db: Database | None = None  # the event loop's own (see read_here)
        self._backfiller: Database | None = None  # copies the WAL beside the writer

    def open(self) -> None:
        """Migrate the schema and start the writer thread."""
        migrate(self._main)
        self._thread = threading.Thread(target=self._run, name="promobot-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Finish queued writes, then stop the writer and close every connection."""
        if self._thread:
            self._jobs.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        self._readers.shutdown(wait=True)
        for db in self._reader_dbs:
            db.close()
        self._reader_dbs.clear()
        self._loop_db = self._backfiller = None

    async def write(self, fn: Callable[[Database], T], *, savepoint: bool = True) -> T:
        """Run `fn(db)` in a transaction on the writer thread; return its result after commit.

        `savepoint=False` is for a job of one statement, which lands whole or not at all by
        itself: two statements fewer, each a round trip for the interpreter lock.
        """
        if self._thread is None:
            raise RuntimeError("Store.open() was not called")
        if not self._thread.is_alive():
            raise sqlite3.OperationalError("the database writer thread has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, savepoint, loop, future))
        return await future

    async def fit_wal(self) -> bool:
        """Bring the WAL a step nearer wal_size between groups; True once it is there.

        A WAL past it is cut (wal.cut), one short of it written ahead (wal.write_ahead).
        For a quiet moment, called again until it answers True.
        """
        return bool(await self.write(_fitting))

    def wal_fits(self) -> bool:
        """Say whether the WAL is at the size fit_wal brings it to."""
        return self.wal_bytes() == self.wal_size

    async def backfill_wal(self) -> bool:
        """Copy the WAL into the file beside the writer, on a reader thread; True if all of it.

        A cut (fit_wal) copies in the writer thread whatever is not copied yet: after
        a burst that was up to 116 ms of acknowledgements waiting, and as often again when
        a reader made it give up. Copied here first, the cut finds next to nothing left.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._backfill)

    def _backfill(self) -> bool:
        try:
            if self._backfiller is None:
                # Not read-only: a checkpoint writes the file. It never writes a page itself.
                self._backfiller = connect(self.path, checkpoints=False, wait=0)
                self._reader_dbs.append(self._backfiller)
            return wal.backfill(self._backfiller)
        except sqlite3.Error as exc:  # the next quiet moment tries again; nothing waits on it
            log.warning("copying the WAL of %s into it failed: %s", self.path.name, exc)
            return False

    def wal_bytes(self) -> int:
        """Return the size of this store's WAL file (0 when there is none)."""
        with contextlib.suppress(FileNotFoundError):
            return Path(f"{self.path}-wal").stat().st_size
        return 0

    async def health(self) -> Fault | None:
        """Return the storage fault in force; while there is one, probe whether it cleared."""
        if self.fault is None:
            return None
        if self._probing is None or self._probing.done():
            directory = self.path.resolve().parent
            self._probing = asyncio.ensure_future(self.write(lambda db: probe(db, directory)))
        with contextlib.suppress(Unavailable):
            await asyncio.shield(self._probing)
            self._clear()
        return self.fault

    async def read(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` on a read-only connection off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read, fn)

    async def read_here(self, fn: Callable[[Database], T]) -> T:
        """Run a read of a few milliseconds on the event loop itself (a reader if SQLite is busy).

        On a reader thread every SQLite call hands the interpreter lock back to the loop, and
        under load each return waits out the switch interval: /ship status made ~40 calls.
        """
        try:
            if self._loop_db is None:
                # The loop never waits for a lock, not even to open (ATTACH reads the file):
                # a busy file sends the read to a reader thread, and the next one opens again.
                self._loop_db = connect(self.path, readonly=True, attach=self._attach, wait=0)
                self._reader_dbs.append(self._loop_db)
            return snapshot(self._loop_db, fn)
        except sqlite3.OperationalError as exc:
            if fault_of(exc) != LOCKED:  # BUSY, LOCKED and their variants (BUSY_RECOVERY …)
                raise
        return await self.read(fn)

    def _read(self, fn: Callable[[Database], T]) -> T:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path, readonly=True, attach=self._attach)
            self._reader_dbs.append(db)
        return snapshot(db, fn)

    def _run(self) -> None:
        db = connect(self.path, checkpoints=self.checkpoints, attach=self._attach)
        if self.intake:
            # Past its journal_size_limit, a WAL that starts over is cut right then, in the
            # group of acknowledgements whose commit started it: all of a burst at once.
            # The ingest file's is cut in quiet moments instead, a step at a time.
            db.conn.execute("PRAGMA journal_size_limit = -1")
        carried: Job | None = None  # a fitting met while a group was gathered
        try:
            while True:
                first, carried = carried or self._jobs.get(), None
                if first is None:
                    return
                if first[0] is _fitting:
                    self._fit(db, first)
                    continue
                group = [first]
                while len(group) < GROUP_LIMIT:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        self._jobs.put(None)  # stop after this group
                        break
                    if job[0] is _fitting:
                        carried = job  # after this group, outside any transaction
                        break
                    group.append(job)
                try:
                    self._commit_group(db, group)
                except Exception as exc:  # never leave a caller waiting on a dead writer
                    log.exception("group commit broke; %d writes refused", len(group))
                    for _, _, loop, future in group:
                        if not future.done():
                            loop.call_soon_threadsafe(_settle, [(future, False, exc)])
                self._checkpoint_ingest()
        finally:
            db.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
            if self._ingest_fd is not None:
                # Only now: closing any descriptor of a file drops every POSIX lock this
                # process holds on it, SQLite's included.
                os.close(self._ingest_fd)

    def _commit_group(self, db: Database, group: list[Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            begin(db, self._write_lock)
            for fn, own, _, _ in group:
                try:
                    with savepoint(db, "job") if own else contextlib.nullcontext():
                        outcomes.append((True, fn(db)))
                except Exception as exc:  # the job's own error goes back to its caller
                    if not db.conn.in_transaction:
                        raise  # SQLite gave up the whole transaction (a full disk): all fail
                    outcomes.append((False, self._fault(exc)))
            db.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if fault_of(exc) is None:  # a fault of the machine is logged once, by _fault
                log.error("group commit failed; %d writes refused: %s", len(group), exc)
            with contextlib.suppress(sqlite3.Error):
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
            outcomes = [(False, self._fault(exc))] * len(group)
        # One wake-up of each event loop per group, not one per job.
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, bool, Any]]] = {}
        for (_, _, loop, future), (ok, value) in zip(group, outcomes, strict=True):
            settled.setdefault(loop, []).append((future, ok, value))
        for loop, results in settled.items():
            loop.call_soon_threadsafe(_settle, results)

    def _fit(self, db: Database, job: Job) -> None:
        _, _, loop, future = job
        keep = -1 if self.intake else connection.WAL_KEEP_BYTES
        size = self.wal_bytes()
        outcome: tuple[asyncio.Future, bool, Any]
        try:
            if size > self.wal_size:
                fitted = wal.cut(db, size, self._write_lock, keep, self.wal_size)
            else:
                fitted = self._write_ahead(size)
            outcome = (future, True, fitted)
        except sqlite3.Error as exc:
            outcome = (future, False, self._fault(exc))
        loop.call_soon_threadsafe(_settle, [outcome])

    def _write_ahead(self, size: int) -> bool:
        """Write a step of the WAL ahead; True once there is no more to write."""
        path = Path(f"{self.path}-wal")
        if size >= self.wal_size or not path.exists():
            return True
        try:
            written = wal.write_ahead(path, self.wal_size)
        except OSError as exc:
            why = str(exc)
        else:
            if written:
                return size + written >= self.wal_size
            why = f"less than {wal.AHEAD_SPARES >> 20} MB of the disk would be left free"
        # Acknowledgements go on all the same, growing the WAL as they go.
        log.warning(
            "the WAL of %s stays at %d MB, not %d, until the next start: %s",
            self.path.name,
            size >> 20,
            self.wal_size >> 20,
            why,
        )
        self.wal_size = size
        return True

    def _checkpoint_ingest(self) -> None:
        """Copy the ingest file's WAL into it now and then, when this store checkpoints.

        Its only writer never checkpoints (a checkpoint's copy and fsync would hold up the
        acknowledgements of its group); this side, which reads it, does it instead.
        """
        if self.intake or not self.checkpoints:
            return
        now = time.monotonic()
        if now - self._checkpointed < INGEST_CHECKPOINT_EVERY:
            return
        self._checkpointed = now
        try:
            if self._checkpointer is None:  # the writer reads it read-only: no checkpoints
                path = ingest.path_for(self._main)
                self._checkpointer = connect(path)
                self._ingest_fd = os.open(path, os.O_RDONLY)
            if wal.copy_ingest(self._checkpointer, self._ingest_fd) and wal.start_over(
                self._checkpointer
            ):
                log.debug("the ingest WAL starts over, past its limit")
        except (sqlite3.Error, OSError) as exc:  # the next one tries again; nothing waits on it
            log.warning("checkpoint of the ingest file failed: %s", exc)

    def _fault(self, exc: Exception) -> Exception:
        """Return the error a caller sees: Unavailable for a storage fault (noted once)."""
        cause = fault_of(exc)
        if cause is None:
            return exc
        fault = exc if isinstance(exc, Unavailable) else Unavailable(cause, str(exc))
        if self.fault is None or self.fault.cause != cause:
            log.error(
                "storage unavailable: %s (%s); writes answer 503 until it clears",
                cause,
                fault.detail,
                extra={"fault": cause},
            )
            self.fault = Fault(cause, fault.detail, time.time())
        return fault

    def _clear(self) -> None:
        fault, self.fault = self.fault, None
        if fault is not None:
            log.warning(
                "storage available again after %.0f s of %s", time.time() - fault.since, fault.cause
            )


def _fitting(db: Database) -> None:
    """Mark a queued job as fitting the WAL to its size (Store.fit_wal)."""


def _settle(results: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in results:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
