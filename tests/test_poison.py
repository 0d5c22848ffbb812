"""A poison delivery is kept as failed at once; its repository's later deliveries go on.

Poison: an error the body causes every time (a handler, a step or a reaction raising
KeyError, TypeError, ValueError …). Transient: the database's own trouble
(sqlite3.OperationalError: locked, full, I/O), retried with backoff, in order.
"""

import sqlite3

import pytest

from bot.core.clock import FakeClock
from bot.pipeline import registry
from tests.conftest import push_payload, status_payload

POISON_SHA = "b" * 40
# Acknowledged into the main file (inline processing) or into the ingest file (as `serve`
# does beside its processing process): the same rules hold either way.
BOTH_FILES = pytest.mark.parametrize("intake", [False, True], ids=["main-file", "ingest-file"])


def breaks_on_build_one(tx, change):
    """A reaction with a bug that a certain build always hits."""
    if change.kind == "build.created" and change.build_id == 1:
        raise KeyError("html_url")


@BOTH_FILES
async def test_a_poison_delivery_is_kept_at_once_and_nothing_else_waits(make_harness, intake):
    clock = FakeClock(1_795_000_000)  # never advanced: nothing may wait for a retry
    reactions = (*registry.reactions(), breaks_on_build_one)
    harness = await make_harness(clock=clock, reactions=reactions, intake=intake)
    harness.services.relay.pace["slack"] = 0.0
    await harness.deliver("push", push_payload(POISON_SHA), delivery_id="poison")
    await harness.deliver("push", push_payload("c" * 40), delivery_id="later-push")
    await harness.deliver("status", status_payload(POISON_SHA), delivery_id="later-status")
    await harness.settle()
    rows = {r["delivery_id"]: r for r in harness.rows("SELECT * FROM deliveries")}
    assert (rows["poison"]["state"], rows["poison"]["attempts"]) == ("failed", 1)
    assert "KeyError: 'html_url'" in rows["poison"]["error"]
    assert "breaks_on_build_one on build.created" in rows["poison"]["error"]
    assert rows["later-push"]["state"] == "done" and rows["later-status"]["state"] == "done"
    # Its build is not lost: recorded without the reaction that broke, and its CI followed.
    builds = harness.rows("SELECT number, sha, ci_state FROM builds ORDER BY number")
    assert builds == [
        {"number": 1, "sha": POISON_SHA, "ci_state": "success"},
        {"number": 2, "sha": "c" * 40, "ci_state": "pending"},
    ]


@BOTH_FILES
async def test_a_step_that_fails_on_the_body_is_kept_without_a_retry(make_harness, intake):
    clock = FakeClock(1_795_000_000)

    def bad_number(tx, change):
        if change.kind == "build.created":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")

    harness = await make_harness(clock=clock, reactions=(bad_number,), intake=intake)
    await harness.deliver("push", push_payload(POISON_SHA), delivery_id="poison")
    await harness.settle()
    (row,) = harness.rows("SELECT state, attempts, error FROM deliveries")
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert "OverflowError" in row["error"]


@BOTH_FILES
async def test_a_database_error_is_transient_retried_in_order(make_harness, intake):
    clock = FakeClock(1_795_000_000)
    failures = {"left": 1}

    def locked(tx, change):
        if change.kind == "build.created" and failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")

    harness = await make_harness(clock=clock, reactions=(locked,), intake=intake)
    await harness.deliver("push", push_payload(POISON_SHA), delivery_id="first")
    await harness.deliver("push", push_payload("c" * 40), delivery_id="second")
    await harness.settle()
    states = [r["state"] for r in harness.rows("SELECT state FROM deliveries ORDER BY id")]
    assert states == ["pending", "pending"]  # the second waits behind the first: order holds
    clock.advance(2)
    harness.services.worker.wake()
    await harness.settle()
    builds = harness.rows("SELECT number, sha FROM builds ORDER BY number")
    assert [b["sha"] for b in builds] == [POISON_SHA, "c" * 40]
