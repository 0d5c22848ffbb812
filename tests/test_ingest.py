"""The ingest file: acknowledgements never wait for the main file, and nothing falls between."""

import asyncio
import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import storage.connection
from bot import cli
from bot.engine import ingest as accepting
from storage import Store, inbox, ingest, notes


def open_stores(folder: Path, wal_size: int = 0) -> tuple[Store, Store]:
    """Open the main file's store (the processing side) and the ingest file's (acknowledging)."""
    main = Store(folder / "promobot.db")
    main.open()
    intake = Store(folder / "promobot.db", checkpoints=False, intake=True, wal_size=wal_size)
    intake.open()
    return main, intake


@pytest.fixture
def stores(tmp_path):
    main, intake = open_stores(tmp_path)
    yield main, intake
    intake.close()
    main.close()


async def arrive(
    intake: Store, guid: str, now: float = 10.0, body: bytes = b'{"state": "success"}'
) -> bool:
    return await intake.write(
        lambda db: ingest.store_arrival(
            db,
            delivery_id=guid,
            event="status",
            action=None,
            repo_key="repo:1",
            body=body,
            now=now,
        )
    )


async def store_in_main(main: Store, guid: str) -> None:
    """Store a status delivery straight into the main file, as the inline path does."""
    await main.write(
        lambda db: inbox.store_delivery(
            db,
            delivery_id=guid,
            event="status",
            action=None,
            repo_key="repo:1",
            body=b"{}",
            now=1.0,
        )
    )


async def stored(main: Store) -> list[tuple[str, str]]:
    return await main.read(
        lambda db: db.execute("SELECT delivery_id, state FROM deliveries ORDER BY id").fetchall()
    )


async def test_an_acknowledgement_does_not_wait_for_the_main_files_write_lock(
    stores, tmp_path, monkeypatch
):
    main, intake = stores
    monkeypatch.setattr(storage.connection, "BUSY_SECONDS", 0.05)  # a wait would fail, not hang
    holder = sqlite3.connect(tmp_path / "promobot.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the processing side in the middle of a transaction
    try:
        assert await arrive(intake, "guid-1") is True
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await main.read(inbox.backlog) == {
        "deliveries_pending": 1,
        "deliveries_failed": 0,
        "outbox_pending": 0,
        "outbox_failed": 0,
    }


async def take(main: Store, now: float = 100.0, limit: int | None = None, **state) -> list[str]:
    """Settle the ready batch as the worker would (done, unless `state` says otherwise)."""
    batch = await main.read(lambda db: inbox.ready_deliveries(db, now=now, limit=limit))
    settled = [
        inbox.Settled(None, d["arrival"], state.get(d["delivery_id"], "done"), 1, None, 0.0, now)
        for d in batch
        if not d.get("known")
    ]
    through = max((d["arrival"] for d in batch), default=None)
    await main.write(lambda db: inbox.settle(db, settled, through))
    return [d["delivery_id"] for d in batch]


async def test_arrivals_are_copied_once_in_order_and_pruned_only_once_copied(stores):
    main, intake = stores
    for i in (1, 2, 3):
        assert await arrive(intake, f"guid-{i}", now=float(i)) is True
    assert await arrive(intake, "guid-2") is False  # a redelivery before it was copied
    assert await intake.write(ingest.prune) == 0
    assert await main.read(lambda db: inbox.oldest_unprocessed(db, now=100.0)) == 1.0

    assert await take(main, limit=2, **{"guid-2": "failed"}) == ["guid-1", "guid-2"]
    assert (await main.read(inbox.backlog))["deliveries_pending"] == 1  # counted once
    assert await take(main) == ["guid-3"]
    assert await take(main) == []
    assert await stored(main) == [("guid-1", "done"), ("guid-2", "failed"), ("guid-3", "done")]

    assert await intake.write(ingest.prune) == 3
    assert (
        await intake.read(lambda db: db.execute("SELECT count(*) FROM arrivals").fetchone()[0]) == 0
    )
    assert await arrive(intake, "guid-1") is False  # GitHub redelivers one already copied
    assert await arrive(intake, "guid-4") is True
    assert await take(main) == ["guid-4"]
    assert [guid for guid, _ in await stored(main)] == ["guid-1", "guid-2", "guid-3", "guid-4"]


async def test_an_arrival_behind_a_retry_waits_in_the_main_file_in_its_order(stores):
    main, intake = stores
    await store_in_main(main, "retry")
    await main.write(lambda db: db.execute("UPDATE deliveries SET not_before = 50"))
    await arrive(intake, "same-repo", now=2.0)
    await arrive(intake, "other-repo", now=3.0)
    await intake.write(
        lambda db: db.execute(
            "UPDATE arrivals SET repo_key = 'repo:2' WHERE delivery_id = ?", ["other-repo"]
        )
    )
    batch = await main.read(lambda db: inbox.ready_deliveries(db, now=10.0))
    assert [(d["delivery_id"], bool(d.get("held"))) for d in batch] == [
        ("same-repo", True),
        ("other-repo", False),
    ]
    held = inbox.Settled(None, batch[0]["arrival"], "pending", 0, None, 0.0, None)
    done = inbox.Settled(None, batch[1]["arrival"], "done", 1, None, 0.0, 10.0)
    await main.write(lambda db: inbox.settle(db, [held, done], batch[1]["arrival"]))
    assert await stored(main) == [
        ("retry", "pending"),
        ("same-repo", "pending"),
        ("other-repo", "done"),
    ]
    assert await main.read(lambda db: inbox.ready_deliveries(db, now=10.0)) == []
    later = await main.read(lambda db: inbox.ready_deliveries(db, now=60.0))
    assert [d["delivery_id"] for d in later] == ["retry", "same-repo"]


async def test_an_arrival_the_main_file_has_already_is_passed_over(stores):
    main, intake = stores
    await arrive(intake, "twice")
    await store_in_main(main, "twice")  # as a serve without a processing process stores
    await main.write(lambda db: db.execute("UPDATE deliveries SET state = 'done'"))
    await arrive(intake, "after")
    assert await take(main) == ["twice", "after"]
    assert await stored(main) == [("twice", "done"), ("after", "done")]
    assert await main.read(ingest.waiting) == (0, None)


async def test_a_new_ingest_file_is_copied_from_its_first_row(tmp_path):
    path = tmp_path / "promobot.db"
    for guids in (["a", "b"], ["c"]):
        main, intake = Store(path), Store(path, checkpoints=False, intake=True)
        main.open()
        intake.open()
        for guid in guids:
            await arrive(intake, guid)
        assert await take(main) == guids
        assert await intake.write(ingest.prune) == len(guids)
        intake.close()
        main.close()
        for leftover in tmp_path.glob("promobot.db.ingest*"):
            Path(leftover).unlink()  # its ids start again at 1 in the next file
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT delivery_id FROM deliveries")] == ["a", "b", "c"]


async def test_audit_lines_kept_beside_acks_reach_the_event_log_once(stores, tmp_path):
    main, intake = stores
    holder = sqlite3.connect(tmp_path / "promobot.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the main file is busy: keeping a line does not wait
    try:
        for repo_id in (1, 2):
            entry = {"actor": "U1", "action": "status", "repo_id": repo_id}
            await intake.write(lambda db, e=entry: notes.keep(db, at=5.0, entry=e))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await intake.write(notes.prune) == 0  # not in the event log yet: kept
    assert await main.read(notes.waiting) == 2
    assert await main.write(lambda db: notes.adopt(db, limit=1)) == 1
    assert await main.write(notes.adopt) == 1
    assert await main.write(notes.adopt) == 0
    assert await main.read(notes.waiting) == 0
    assert await intake.write(notes.prune) == 2
    logged = "SELECT at, actor, action, repo_id FROM event_log ORDER BY id"
    assert await main.read(lambda db: db.execute(logged).fetchall()) == [
        (5.0, "U1", "status", 1),
        (5.0, "U1", "status", 2),
    ]


async def burst(intake: Store, count: int = 200, name: str = "burst") -> list[str]:
    """Store `count` arrivals of 10 KB at once, as a burst of acknowledgements would."""
    guids = [f"{name}-{i}" for i in range(count)]
    await asyncio.gather(*(arrive(intake, guid, body=b"x" * 10_000) for guid in guids))
    return guids


@contextlib.contextmanager
def a_reader(intake: Store) -> Iterator[None]:
    """Hold a snapshot of the ingest file in its WAL, as a reader elsewhere would."""
    reader = sqlite3.connect(intake.path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM arrivals").fetchone()
    try:
        yield
    finally:
        reader.execute("ROLLBACK")
        reader.close()


async def test_once_nothing_arrives_the_wal_a_burst_grew_is_cut(stores):
    main, intake = stores  # kept at nothing
    guids = await burst(intake)
    wal = Path(f"{intake.path}-wal")
    assert wal.stat().st_size > 1024 * 1024
    pruning = asyncio.create_task(accepting.prune(intake, every=0.01, quiet=0.1))
    try:
        await asyncio.sleep(0.05)  # not quiet for long enough yet
        assert wal.stat().st_size > 1024 * 1024
        for _ in range(300):
            if wal.stat().st_size == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        pruning.cancel()
    assert wal.stat().st_size == 0
    assert await take(main) == guids  # nothing was lost with it
    assert await arrive(intake, "after") is True


async def test_once_nothing_arrives_the_wal_is_written_ahead_and_used_again(tmp_path, monkeypatch):
    # Frames that grow the file cost ext4 a zeroed page and a block each; zeros written
    # ahead, one page a write, are written over instead.
    monkeypatch.setattr("storage.wal.AHEAD_STEP", 256 * 1024)
    main, intake = open_stores(tmp_path, wal_size=4 << 20)
    wal = Path(f"{intake.path}-wal")
    pruning = asyncio.create_task(accepting.prune(intake, every=0.01, quiet=0.1))
    try:
        guids = await burst(intake)  # about 2 MB
        for _ in range(300):
            if wal.stat().st_size == 4 << 20:
                break
            await asyncio.sleep(0.01)
        assert wal.stat().st_size == 4 << 20
        later = await burst(intake, 100, "later")  # 1 MB more: over the first frames again
        assert wal.stat().st_size == 4 << 20
        # As a power cut would leave them: the file and its WAL, zeros and all.
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in (intake.path.name, wal.name):
            (copy / name).write_bytes((tmp_path / name).read_bytes())
    finally:
        pruning.cancel()
    reopened = sqlite3.connect(copy / intake.path.name)
    kept = {guid for (guid,) in reopened.execute("SELECT delivery_id FROM arrivals")}
    reopened.close()
    assert kept == set(guids + later)  # the zeros after them were read as the end
    taken: list[str] = []
    while batch := await take(main):
        taken += batch
    assert taken == guids + later
    intake.close()
    main.close()


async def test_writing_ahead_leaves_the_disk_to_the_acknowledgements(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("storage.wal.AHEAD_SPARES", 1 << 60)  # more than any disk has free
    main, intake = open_stores(tmp_path, wal_size=4 << 20)
    try:
        await burst(intake, 20)
        assert await intake.fit_wal() is True  # nothing more to do until the next start
        assert intake.wal_bytes() < 4 << 20
        assert "stays at 0 MB, not 4, until the next start: less than" in caplog.text
        assert await arrive(intake, "after") is True
    finally:
        intake.close()
        main.close()


async def test_a_big_wal_is_given_back_a_step_at_a_time(stores, monkeypatch):
    # Giving back a burst's GB at once held up the next acknowledgements for 460 ms.
    monkeypatch.setattr("storage.connection.WAL_CUT_STEP", 256 * 1024)
    main, intake = stores
    guids = await burst(intake)  # about 2 MB through the WAL
    sizes = [intake.wal_bytes()]
    while not await intake.fit_wal():
        sizes.append(intake.wal_bytes())
        assert await arrive(intake, f"meanwhile-{len(sizes)}") is True
        assert len(sizes) < 50
    steps = [a - b for a, b in itertools.pairwise(sizes)]
    assert len(steps) >= 5 and max(steps) <= 256 * 1024 + 64 * 1024  # a step, and its arrival
    assert intake.wal_bytes() == 0
    taken: list[str] = []
    while batch := await take(main):
        taken += batch
    assert len(taken) == len(guids) + len(sizes) - 1  # nothing lost on the way


async def test_the_wal_is_copied_beside_the_writer_before_it_is_cut(stores):
    main, intake = stores
    await burst(intake, 20)
    with a_reader(intake):
        assert await arrive(intake, "past-the-snapshot") is True
        assert await intake.backfill_wal() is False  # what came after the snapshot waits for it
    # The copy runs beside the writer: an acknowledgement meanwhile is stored all the same.
    _, stored = await asyncio.gather(intake.backfill_wal(), arrive(intake, "meanwhile"))
    assert stored is True
    assert await intake.backfill_wal() is True
    check = sqlite3.connect(intake.path)
    busy, frames, done = check.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    check.close()
    assert (busy, frames) == (0, done)
    assert await intake.fit_wal() is True  # nothing left to copy: cut at once
    assert len(await take(main)) == 22


async def test_a_copy_that_fails_says_so_and_acks_go_on(stores, monkeypatch, caplog):
    _, intake = stores
    await burst(intake, 5)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("storage.db.connect", broken)
    assert await intake.backfill_wal() is False  # the cut waits for a quiet moment that works
    assert "copying the WAL of promobot.db.ingest into it failed: disk I/O error" in caplog.text
    assert await arrive(intake, "after") is True


async def test_the_ingest_wal_is_not_cut_when_it_starts_over_among_acks(tmp_path, monkeypatch):
    monkeypatch.setattr("storage.connection.WAL_KEEP_BYTES", 64 * 1024)
    main, intake = open_stores(tmp_path)  # opened under that limit
    try:
        await burst(intake)
        grown = intake.wal_bytes()
        assert len(await take(main)) == 200
        checkpointer = sqlite3.connect(intake.path)
        for _ in range(100):  # the main file's writer may be checkpointing it just now
            busy, frames, copied = checkpointer.execute("PRAGMA wal_checkpoint").fetchone()
            if not busy and frames == copied:
                break
            await asyncio.sleep(0.01)
        checkpointer.close()
        # The WAL starts over with this group: its size stays, to be cut in a quiet moment.
        assert await arrive(intake, "next") is True
        assert intake.wal_bytes() == grown
    finally:
        intake.close()
        main.close()


async def test_a_wal_past_its_limit_starts_over_though_arrivals_never_pause(tmp_path, monkeypatch):
    # With no quiet moment to cut it in, and SQLite waiting for one with all of it copied,
    # the ingest WAL grew by 25 MB a second at 1,000 deliveries a second, without end.
    monkeypatch.setattr("storage.connection.WAL_LIMIT_BYTES", 1024 * 1024)
    monkeypatch.setattr("storage.db.INGEST_CHECKPOINT_EVERY", 0.05)
    main, intake = open_stores(tmp_path)
    sizes: list[int] = []

    async def arrivals() -> int:
        rounds = 0
        while len(sizes) < 100:  # as deliveries come: never a second apart, seldom at once
            await burst(intake, 10, f"round-{rounds}")
            rounds += 1
            await asyncio.sleep(0.001)
        return rounds

    async def processing() -> None:
        while len(sizes) < 100:  # its writer checkpoints the ingest file after a group
            await main.write(lambda db: None)
            sizes.append(intake.wal_bytes())
            await asyncio.sleep(0.01)

    try:
        rounds, _ = await asyncio.gather(arrivals(), processing())
        assert rounds * 10 * 10_000 > 8 * 1024 * 1024  # what went through the WAL
        # It grew past the limit until a start over found a moment, then no more (50 MB
        # and growing before).
        assert max(sizes[50:]) < 8 * 1024 * 1024
        assert sizes[-1] - sizes[50] < 1024 * 1024
        taken: list[str] = []
        while batch := await take(main):
            taken += batch
        assert len(taken) == rounds * 10  # nothing lost with a start over
    finally:
        intake.close()
        main.close()


async def test_a_cut_waits_for_no_reader_and_never_comes_between_acks(stores):
    main, intake = stores
    await burst(intake, 20)
    with a_reader(intake):
        assert await intake.fit_wal() is False  # refused at once, not waited out
    # Queued among acknowledgements, it runs between their groups, and none is lost.
    outcomes = await asyncio.gather(
        *(arrive(intake, f"before-{i}") for i in range(5)),
        intake.fit_wal(),
        *(arrive(intake, f"after-{i}") for i in range(5)),
    )
    assert outcomes == [True] * 11
    assert len(await take(main)) == 30


async def test_the_processing_sides_transactions_hold_no_snapshot_of_the_ingest_file(stores):
    main, intake = stores
    await burst(intake, 20)
    inside, release = threading.Event(), threading.Event()

    def long_transaction(db):  # as a batch of processing is, in the main file's writer
        db.execute("INSERT INTO ingest_adopted (token, through) VALUES ('other', 0)")
        inside.set()
        release.wait(10)

    held = asyncio.ensure_future(main.write(long_transaction))
    await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)
    try:
        assert await intake.fit_wal() is True  # the ingest file was not held
    finally:
        release.set()
        await held
    assert len(await take(main)) == 20


async def test_pruning_copied_arrivals_does_not_write_their_bodies_again(stores):
    main, intake = stores
    await burst(intake, 100)  # 1 MB of bodies
    assert len(await take(main)) == 100
    for _ in range(100):  # the main file's writer may be checkpointing it just now
        if await intake.fit_wal():
            break
        await asyncio.sleep(0.01)
    assert intake.wal_bytes() == 0
    assert await intake.write(ingest.prune) == 100
    # SQLite as Debian builds it zeroes every deleted page, and the zeros go through the WAL
    # in the group commit of acknowledgements the prune rides in: 1 MB here.
    assert intake.wal_bytes() < 100_000
    assert await arrive(intake, "after") is True  # the freed pages are used again


def test_serve_keeps_the_ingest_wal_at_640_mb_unless_told(capsys):
    assert cli.parser().parse_args(["serve"]).ingest_wal_mb == 640
    assert cli.parser().parse_args(["serve", "--ingest-wal-mb", "0"]).ingest_wal_mb == 0
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["serve", "--ingest-wal-mb", "1.5"])
    assert "'1.5' is not a whole number of MB (like 640)" in capsys.readouterr().err
