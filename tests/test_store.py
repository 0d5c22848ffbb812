"""The single writer: every write in a transaction, one job's failure rolls back only that job."""

import asyncio
import sqlite3
import threading

import pytest

import storage.db
from storage import Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "t.db")
    store.open()
    yield store
    store.close()


def insert_log(action: str, fail: bool = False):
    def job(db):
        db.execute("INSERT INTO event_log (at, actor, action) VALUES (1, 'test', ?)", [action])
        if fail:
            raise ValueError("refused")
        return action

    return job


async def test_concurrent_writes_commit_together_and_a_failing_job_leaves_no_trace(store):
    jobs = [store.write(insert_log(f"a{i}", fail=i == 7)) for i in range(50)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [f"a{i}" for i in range(50) if i != 7]
    rows = await store.read(
        lambda db: [r["action"] for r in db.query("SELECT action FROM event_log")]
    )
    assert len(rows) == 49 and "a7" not in rows


async def test_a_one_statement_job_without_a_savepoint_still_fails_alone(store):
    def one(action: str | None):
        def job(db):
            db.execute("INSERT INTO event_log (at, actor, action) VALUES (1, 'test', ?)", [action])
            return action

        return job

    jobs = [store.write(one(None if i == 3 else f"b{i}"), savepoint=False) for i in range(8)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[3], sqlite3.IntegrityError)  # action is NOT NULL
    rows = await store.read(
        lambda db: [r["action"] for r in db.query("SELECT action FROM event_log ORDER BY id")]
    )
    assert rows == [f"b{i}" for i in range(8) if i != 3]


async def test_the_database_is_durable_by_choice(store):
    def pragmas(db):
        return [
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]

    assert await store.write(pragmas) == ["wal", 1, 5000]
    assert await store.write(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]) == 2
    # Savepoints' journals stay in memory (2): no temporary file written page by page.
    assert await store.write(lambda db: db.execute("PRAGMA temp_store").fetchone()[0]) == 2
    # Its WAL is copied into the file a megabyte at a time (see CHECKPOINT_PAGES).
    assert (
        await store.write(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 250
    )


async def test_readers_cannot_write(store):
    with pytest.raises(sqlite3.OperationalError):
        await store.read(insert_log("nope"))


async def test_a_read_sees_one_snapshot_while_writes_commit_during_it(store, tmp_path):
    await store.write(insert_log("before"))

    def read_twice(db):
        first = [r["action"] for r in db.query("SELECT action FROM event_log")]
        other = sqlite3.connect(tmp_path / "t.db")  # another process's commit, mid-read
        other.execute("INSERT INTO event_log (at, actor, action) VALUES (2, 'test', 'during')")
        other.commit()
        other.close()
        return first, [r["action"] for r in db.query("SELECT action FROM event_log")]

    assert await store.read(read_twice) == (["before"], ["before"])
    after = await store.read(
        lambda db: [r["action"] for r in db.query("SELECT action FROM event_log")]
    )
    assert after == ["before", "during"]


async def test_a_read_on_the_loop_that_finds_the_file_busy_is_answered_by_a_reader(store, tmp_path):
    await store.write(insert_log("kept"))
    store.close()  # while the writer has the file open, nobody can lock it whole
    holder = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    # In exclusive locking mode SQLite keeps the file locked after the transaction (a shell
    # or a backup tool may run so) and answers every other connection SQLITE_BUSY.
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("COMMIT")
    reader = Store(tmp_path / "t.db")  # reads need no writer
    tried: list[str] = []

    def actions(db):
        tried.append(threading.current_thread().name)
        return [r["action"] for r in db.query("SELECT action FROM event_log")]

    try:
        answer = asyncio.ensure_future(reader.read_here(actions))
        await asyncio.sleep(0)  # its first step: the loop's try, refused, not waited for
    finally:
        holder.close()  # the lock goes; the reader thread, waiting on it if it came first, reads
    assert await answer == ["kept"]
    assert len(tried) == 1 and tried[0].startswith("promobot-read")  # never on the loop
    assert await reader.read_here(actions) == ["kept"]  # the file free: on the loop again
    assert tried[1] == threading.current_thread().name
    reader.close()


async def test_a_batch_of_deliveries_is_bounded_in_bytes_and_ordered_per_repository(store):
    from storage import inbox

    def put(db):
        for n, (repo, size) in enumerate([("r1", 30), ("r2", 30), ("r1", 30), ("r3", 30)]):
            inbox.store_delivery(
                db,
                delivery_id=f"d{n}",
                event="push",
                action=None,
                repo_key=repo,
                body=b"x" * size,
                now=0,
            )
        db.execute("UPDATE deliveries SET not_before = 99 WHERE delivery_id = 'd1'")

    await store.write(put)
    batch = await store.read(lambda db: inbox.ready_deliveries(db, now=10, max_bytes=70))
    # d1 (r2) waits for a retry; d0 and d2 of r1 fit, d3 would pass the byte bound.
    assert [d["delivery_id"] for d in batch] == ["d0", "d2"]
    batch = await store.read(lambda db: inbox.ready_deliveries(db, now=10, max_bytes=1))
    assert [d["delivery_id"] for d in batch] == ["d0"]


async def test_a_burst_leaves_no_oversized_wal_behind(tmp_path, monkeypatch):
    monkeypatch.setattr("storage.connection.WAL_KEEP_BYTES", 256 * 1024)
    store = Store(tmp_path / "t.db")
    store.open()
    try:
        body = "x" * 10_000
        for _ in range(20):  # 200 rows of 10 KB, about 2 MB through the WAL
            await asyncio.gather(
                *(store.write(insert_log(body + str(i)), savepoint=False) for i in range(10))
            )
        wal = tmp_path / "t.db-wal"
        assert wal.stat().st_size > 1024 * 1024
        await store.read(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
        await store.write(insert_log("after the burst"))  # the WAL starts over here
        assert wal.stat().st_size <= 256 * 1024
    finally:
        store.close()


async def test_a_busy_file_reported_by_its_extended_code_also_goes_to_a_reader(store, monkeypatch):
    await store.write(insert_log("kept"))
    real, tried = storage.db.snapshot, []

    def snapshot(db, fn):
        tried.append(threading.current_thread().name)
        if len(tried) == 1:  # as a read meets another process recovering the WAL index
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY_RECOVERY
            raise busy
        return real(db, fn)

    monkeypatch.setattr(storage.db, "snapshot", snapshot)
    actions = await store.read_here(
        lambda db: [r["action"] for r in db.query("SELECT action FROM event_log")]
    )
    assert actions == ["kept"]
    assert tried[0] == threading.current_thread().name and tried[1].startswith("promobot-read")
