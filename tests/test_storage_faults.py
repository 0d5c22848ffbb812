"""Disk full or a locked database: 503 with Retry-After, one log line, /healthz says why, and
promobot recovers by itself when the fault clears."""

import logging

from storage import connect
from tests.conftest import push_payload

UNLIMITED = 2**31 - 2


async def limit_pages(harness, pages: int) -> None:
    """Let the writer grow the database no further: for SQLite, the disk is full."""
    await harness.services.store.write(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))


def tracebacks(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.exc_text]


async def test_disk_full_answers_503_logs_once_and_recovers_by_itself(harness, caplog):
    caplog.set_level(logging.INFO)
    await harness.deliver("push", push_payload("a" * 40))
    await harness.settle()
    await limit_pages(harness, 1)  # no page beyond those in use
    for n in range(3):
        response = await harness.deliver("push", push_payload(f"{n + 1:x}" * 40))
        assert response.status == 503
        assert response.headers["Retry-After"] == "30"
        assert "disk full" in (await response.json())["error"]
    health = await harness.client.get("/healthz")
    assert health.status == 503
    assert (await health.json())["cause"] == "disk full"
    assert tracebacks(caplog) == []
    assert len([r for r in caplog.records if r.getMessage().startswith("storage unavailable")]) == 1
    await limit_pages(harness, UNLIMITED)  # space returns
    health = await harness.client.get("/healthz")
    assert health.status == 200 and (await health.json())["ok"] is True
    assert (await harness.deliver("push", push_payload("f" * 40))).status == 202
    await harness.settle()
    assert harness.rows("SELECT sha FROM builds ORDER BY id") == [
        {"sha": "a" * 40},
        {"sha": "f" * 40},
    ]
    assert any("storage available again" in r.getMessage() for r in caplog.records)


async def test_a_locked_database_answers_503_and_recovers_when_the_lock_goes(
    harness, caplog, monkeypatch
):
    import storage.connection

    caplog.set_level(logging.INFO)
    await harness.deliver("push", push_payload("a" * 40))
    await harness.settle()  # the start-up writes are done
    monkeypatch.setattr(storage.connection, "BUSY_SECONDS", 0.05)  # give up on the lock quickly
    other = connect(harness.db_path)  # another process holding the write lock
    other.conn.execute("BEGIN IMMEDIATE")
    try:
        response = await harness.deliver("push", push_payload())
        assert response.status == 503 and response.headers["Retry-After"] == "30"
        health = await harness.client.get("/healthz")
        assert health.status == 503
        assert (await health.json())["database"] == "unavailable: database locked"
    finally:
        other.conn.execute("ROLLBACK")
        other.close()
    assert (await harness.client.get("/healthz")).status == 200
    assert (await harness.deliver("push", push_payload())).status == 202
    assert tracebacks(caplog) == []
    assert [r.getMessage() for r in caplog.records if "refused (503)" in r.getMessage()] == [
        "request refused (503): storage unavailable: database locked"
    ]


async def test_a_slash_command_while_the_database_is_locked_gets_503_not_a_traceback(
    harness, caplog, monkeypatch
):
    import storage.connection

    caplog.set_level(logging.INFO)
    await harness.deliver("push", push_payload())
    await harness.settle()
    monkeypatch.setattr(storage.connection, "BUSY_SECONDS", 0.05)  # give up on the lock quickly
    other = connect(harness.db_path)  # another process holding the write lock
    other.conn.execute("BEGIN IMMEDIATE")
    try:
        response = await harness.slash('lock pasty "release day"')
    finally:
        other.conn.execute("ROLLBACK")
        other.close()
    assert response.status == 503 and response.headers["Retry-After"] == "30"
    assert "storage unavailable: database locked" in await response.text()
    assert tracebacks(caplog) == []
