"""Background work that fails is restarted, shown on /healthz, and loses nothing acknowledged.

Each fault hits the worker or the relay at the moment it writes: a write lock
held by another process past the 5 s busy timeout, a full disk (SQLite's
`max_page_count` on the writer's own connection makes every new page fail as
a full disk does), and an exception injected into the worker's read. After
the fault clears, every acknowledged delivery is processed and posted.
"""

import asyncio
import logging
import sqlite3
import time

import pytest

from bot.engine import relay as relay_module
from storage import inbox
from tests.conftest import push_payload, status_payload

SHAS = [f"{n:040x}" for n in range(1, 11)]


async def wait_for(predicate, timeout: float = 20.0) -> None:
    """Poll `predicate` (sync or async) until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s: {predicate}")


async def health(harness) -> tuple[int, dict]:
    response = await harness.client.get("/healthz")
    return response.status, await response.json()


@pytest.fixture
def gate(monkeypatch):
    """Hold the worker back (it sees no ready delivery) until the test opens the gate."""
    real = inbox.ready_deliveries
    state = {"open": False}

    def gated(db, **kwargs):
        return real(db, **kwargs) if state["open"] else []

    monkeypatch.setattr(inbox, "ready_deliveries", gated)
    return state


async def deliver_pushes(harness, shas=SHAS) -> None:
    for sha in shas:
        response = await harness.deliver("push", push_payload(sha, message=f"Change {sha[-2:]}"))
        assert response.status == 202


def processed(harness) -> int:
    return harness.rows("SELECT count(*) AS n FROM deliveries WHERE state = 'done'")[0]["n"]


async def test_a_write_lock_held_past_the_busy_timeout_does_not_stop_the_worker(
    harness, gate, fake_slack, caplog
):
    harness.services.relay.pace["slack"] = 0.0
    await deliver_pushes(harness)
    holder = sqlite3.connect(harness.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        gate["open"] = True
        harness.services.worker.wake()
        await wait_for(lambda: harness.services.supervisor.health["worker"].failures, 15)
        status, body = await health(harness)
        assert status == 503
        assert any(p.startswith("worker: failing") and "locked" in p for p in body["problems"])
        assert processed(harness) == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await wait_for(lambda: processed(harness) == 10)
    await harness.settle()
    assert len(fake_slack.posts()) == 10
    status, body = await health(harness)
    assert (status, body["problems"]) == (200, [])
    failures = [r for r in caplog.records if r.getMessage().startswith("worker failed")]
    assert len(failures) == 1  # logged once, with its cause: one traceback in all
    assert caplog.text.count("Traceback") == 1 and "database is locked" in caplog.text


async def test_a_full_disk_at_the_workers_commit_loses_nothing(harness, gate, fake_slack):
    harness.services.relay.pace["slack"] = 0.0
    await deliver_pushes(harness)
    store = harness.services.store
    pages = await store.write(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
    await store.write(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
    gate["open"] = True
    harness.services.worker.wake()
    await wait_for(lambda: harness.services.supervisor.health["worker"].failures)
    status, body = await health(harness)
    assert status == 503 and any("full" in p for p in body["problems"])

    await store.write(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))  # space back
    await wait_for(lambda: processed(harness) == 10)
    await harness.settle()
    titles = {p.body["blocks"][0]["text"]["text"].split("*")[1] for p in fake_slack.posts()}
    assert titles == {f"Build #{n}" for n in range(1, 11)}
    assert (await health(harness))[0] == 200


async def test_an_exception_in_the_worker_is_logged_once_and_the_worker_restarts(
    harness, monkeypatch, caplog
):
    real = inbox.ready_deliveries
    calls = {"n": 0}

    def broken(db, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("injected")
        return real(db, **kwargs)

    monkeypatch.setattr(inbox, "ready_deliveries", broken)
    await deliver_pushes(harness, SHAS[:3])
    await wait_for(lambda: processed(harness) == 3)
    assert calls["n"] > 3
    logged = [r for r in caplog.records if "injected" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    # The worker says it recovered at its next beat, which may come just after the rows land.
    await wait_for(
        lambda: any("worker recovered after 3 failure(s)" in r.getMessage() for r in caplog.records)
    )


async def test_a_stuck_worker_is_named_on_healthz(harness, monkeypatch):
    async def hang() -> int:
        await asyncio.Event().wait()
        return 0

    worker, supervisor = harness.services.worker, harness.services.supervisor
    monkeypatch.setattr(worker, "drain_once", hang)
    worker.wake()
    await asyncio.sleep(0.1)
    later = supervisor.clock() + 600  # ten minutes on, the worker is still in that call
    monkeypatch.setattr(supervisor, "clock", lambda: later)
    status, body = await health(harness)
    assert status == 503
    assert any(p.startswith("worker: no progress for 6") for p in body["problems"])


async def test_an_old_unprocessed_delivery_makes_healthz_unhealthy(harness, gate, monkeypatch):
    await deliver_pushes(harness, SHAS[:1])
    later = time.time() + 300
    monkeypatch.setattr(harness.services.clock, "now", lambda: later)
    status, body = await health(harness)
    assert status == 503
    assert "inbox: the oldest unprocessed delivery is 300s old" in body["problems"]


async def test_a_relay_lane_that_fails_to_write_backs_off_and_sends_later(
    harness, fake_slack, monkeypatch
):
    harness.services.relay.pace["slack"] = 0.0
    real = relay_module._lease
    calls = {"n": 0}

    def locked(db, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(db, **kwargs)

    monkeypatch.setattr(relay_module, "_lease", locked)
    await deliver_pushes(harness, SHAS[:1])
    await wait_for(lambda: len(fake_slack.posts()) == 1)
    assert calls["n"] >= 3
    # The row is marked sent in a commit just after Slack answered: wait for that commit.
    await wait_for(lambda: harness.rows("SELECT state FROM outbox")[0]["state"] == "sent")
    assert len(fake_slack.posts()) == 1


async def test_a_sender_that_raises_retries_its_row_and_keeps_the_lane(
    harness, fake_slack, monkeypatch
):
    harness.services.relay.pace["slack"] = 0.0
    senders = harness.services.relay.senders
    real = senders["slack.message"]
    calls = {"n": 0}

    async def buggy(row):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("a bug in a sender")
        return await real(row)

    monkeypatch.setitem(senders, "slack.message", buggy)
    await deliver_pushes(harness, SHAS[:1])
    await wait_for(lambda: harness.rows("SELECT 1 FROM outbox WHERE error IS NOT NULL"))
    (row,) = harness.rows("SELECT state, attempts, error FROM outbox")
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "a bug in a sender" in row["error"]
    await wait_for(lambda: len(fake_slack.posts()) == 1)  # after its 2 s backoff
    # The relay marks the row sent in a commit of its own, just after Slack answered.
    await wait_for(lambda: harness.rows("SELECT state FROM outbox")[0]["state"] == "sent")


async def test_a_delivery_kept_as_failed_makes_healthz_unhealthy(harness):
    broken = status_payload()
    del broken["sha"]
    await harness.deliver("status", broken)
    await harness.settle()
    status, body = await health(harness)
    assert status == 503
    assert body["problems"] == ["inbox: 1 delivery(ies) kept as failed"]


async def test_a_new_delivery_cuts_a_long_backoff_short(harness, monkeypatch):
    real = inbox.ready_deliveries
    broken = {"on": True}

    def failing(db, **kwargs):
        if broken["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real(db, **kwargs)

    monkeypatch.setattr(inbox, "ready_deliveries", failing)
    supervisor = harness.services.supervisor
    harness.services.worker.wake()
    await wait_for(lambda: supervisor.health["worker"].failures >= 1)
    supervisor.health["worker"].failures = 6  # as if failing for a while: the next wait is 30 s
    await wait_for(lambda: supervisor.health["worker"].failures >= 7)
    broken["on"] = False  # space is back
    await deliver_pushes(harness, SHAS[:1])  # its wake-up ends the 30 s wait
    await wait_for(lambda: processed(harness) == 1, timeout=10)
