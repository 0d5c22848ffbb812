"""The ingest file: acknowledgements never wait for the main file, and nothing falls between."""

import sqlite3
from pathlib import Path

import pytest

import storage.db
from storage import Store, inbox, ingest


@pytest.fixture
def stores(tmp_path):
    """The main file's store (the processing side) and the ingest file's (the acknowledging)."""
    main = Store(tmp_path / "promobot.db")
    main.open()
    intake = Store(tmp_path / "promobot.db", checkpoints=False, intake=True)
    intake.open()
    yield main, intake
    intake.close()
    main.close()


async def arrive(intake: Store, guid: str, now: float = 10.0) -> bool:
    return await intake.write(
        lambda db: ingest.store_arrival(
            db,
            delivery_id=guid,
            event="status",
            action=None,
            repo_key="repo:1",
            body=b'{"state": "success"}',
            now=now,
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
    monkeypatch.setattr(storage.db, "BUSY_SECONDS", 0.05)  # a wait would fail, not hang
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


async def test_arrivals_are_adopted_once_in_order_and_pruned_only_once_adopted(stores):
    main, intake = stores
    for i in (1, 2, 3):
        assert await arrive(intake, f"guid-{i}", now=float(i)) is True
    assert await arrive(intake, "guid-2") is False  # a redelivery before it was adopted
    assert await intake.write(ingest.prune) == 0
    assert await main.read(lambda db: inbox.oldest_unprocessed(db, now=100.0)) == 1.0

    assert await main.write(lambda db: ingest.adopt(db, limit=2)) == 2
    assert await main.write(ingest.adopt) == 1
    assert await main.write(ingest.adopt) == 0
    assert await stored(main) == [(f"guid-{i}", "pending") for i in (1, 2, 3)]
    assert (await main.read(inbox.backlog))["deliveries_pending"] == 3  # counted once

    assert await intake.write(ingest.prune) == 3
    assert (
        await intake.read(lambda db: db.execute("SELECT count(*) FROM arrivals").fetchone()[0]) == 0
    )
    assert await arrive(intake, "guid-1") is False  # GitHub redelivers one already adopted
    assert await arrive(intake, "guid-4") is True
    assert await main.write(ingest.adopt) == 1
    assert [guid for guid, _ in await stored(main)] == ["guid-1", "guid-2", "guid-3", "guid-4"]


async def test_a_new_ingest_file_is_adopted_from_its_first_row(tmp_path):
    path = tmp_path / "promobot.db"
    for guids in (["a", "b"], ["c"]):
        main, intake = Store(path), Store(path, checkpoints=False, intake=True)
        main.open()
        intake.open()
        for guid in guids:
            await arrive(intake, guid)
        assert await main.write(ingest.adopt) == len(guids)
        assert await intake.write(ingest.prune) == len(guids)
        intake.close()
        main.close()
        for leftover in tmp_path.glob("promobot.db.ingest*"):
            Path(leftover).unlink()  # its ids start again at 1 in the next file
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT delivery_id FROM deliveries")] == ["a", "b", "c"]
