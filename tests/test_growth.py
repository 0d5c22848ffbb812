"""Lookups made on every commit or page stay index seeks, however long the backlog or history.

Each test records the statements a lookup really runs (sqlite3's trace callback), checks its
answer, and asks SQLite how it would run each statement: a full scan or a sort of the outbox
or the deployments would grow with a Slack outage or with a year of history.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.engine import relay
from storage import connect, digests, migrate, outbox, pipeline
from storage import dashboard as dash

REPO = 186853002


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "growth.db"
    migrate(path)
    database = connect(path)
    yield database
    database.close()


def traced(db, lookup: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run `lookup`, returning its answer and the statements it ran."""
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        return lookup(), statements
    finally:
        db.conn.set_trace_callback(None)


def plans(db, statements: list[str]) -> list[str]:
    """Return SQLite's plan for each SELECT ran (literal values, as traced)."""
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects, "the lookup ran no query"
    return [
        " / ".join(row[3] for row in db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in selects
    ]


def assert_no_walk(plan: str, table: str) -> None:
    assert f"SCAN {table}" not in plan and "SCAN d " not in plan + " ", plan
    assert "TEMP B-TREE FOR DISTINCT" not in plan, plan


def queue(db, rows: int, lanes: list[str]) -> None:
    db.conn.executemany(
        "INSERT INTO outbox (target, method, lane, payload, created_at)"
        " VALUES ('slack', 'chat.postMessage', ?, ?, 0)",
        [
            (lanes[i % len(lanes)], json.dumps({"channel": lanes[i % len(lanes)], "text": str(i)}))
            for i in range(rows)
        ],
    )
    db.conn.commit()


def test_the_relay_finds_each_lane_and_its_first_row_behind_a_slack_backlog(db):
    lanes = ["#releases", "#mingle-releases", "installation:957387"]
    queue(db, 3000, lanes)
    db.conn.execute("UPDATE outbox SET state = 'sent' WHERE lane = '#releases' AND id < 100")
    db.conn.commit()
    found, statements = traced(db, lambda: outbox.pending_lanes(db))
    first, more = traced(db, lambda: relay._next_row(db, "#releases", owner="me", now=0.0))
    assert sorted(found) == sorted(lanes)
    assert first is not None and first["id"] == 100 and first["lane"] == "#releases"
    for plan in plans(db, statements + more):
        assert_no_walk(plan, "outbox")
        assert "outbox_lanes" in plan, plan


def test_the_live_build_per_stage_and_the_one_in_flight_are_seeks(db):
    db.conn.execute(
        "INSERT INTO repositories (id, full_name, html_url) VALUES (?, 'o/r', 'https://x/o/r')",
        [REPO],
    )
    for n in range(1, 301):
        db.conn.execute(
            "INSERT INTO builds (id, repo_id, number, sha, message, author, html_url, pushed_at,"
            " ci_changed_at) VALUES (?, ?, ?, ?, 'm', 'a', 'u', ?, ?)",
            [n, REPO, n, f"{n:040x}", n, n],
        )
        for stage in ("pasty", "baklava"):
            state = "in_progress" if (n, stage) == (300, "pasty") else "success"
            db.conn.execute(
                "INSERT INTO deployments (repo_id, build_id, stage, state, requested_by,"
                " created_at, updated_at, finished_at, succeeded_at)"
                " VALUES (?, ?, ?, ?, 'promobot', ?, ?, ?, ?)",
                [REPO, n, stage, state, *[1e9 + n] * 3, 1e9 + n if state == "success" else None],
            )
    db.conn.commit()
    live, statements = traced(db, lambda: dash.live_deployments(db, REPO, ["pasty", "baklava"]))
    assert {stage: row["number"] for stage, row in live.items()} == {"pasty": 299, "baklava": 300}
    flying, more = traced(db, lambda: pipeline.in_flight(db, REPO, "pasty", 1e9 + 300))
    assert flying is not None and flying["number"] == 300
    for plan, index in zip(
        plans(db, statements + more),
        ["deployments_success_seq"] * 2 + ["(repo_id=? AND stage=? AND state=?)"],
        strict=True,
    ):
        assert_no_walk(plan, "deployments")
        assert index in plan, plan
    shown, statements = traced(db, lambda: dash.deployments_in_flight(db, REPO))
    assert [(d["stage"], d["number"]) for d in shown] == [("pasty", 300)]
    repo = {"id": REPO, "full_name": "o/r"}
    day, more = traced(db, lambda: digests.repo_records(db, repo, since=1e9, now=1e9 + 400))
    assert len(day["deployments"]) == 500 and day["deployments"][0]["build_id"] == 300
    for plan in plans(db, statements + more):
        if "deployments" in plan:
            assert "deployments_state" in plan or "deployments_build" in plan, plan
            assert "SCAN d " not in plan + " " and "SCAN deployments" not in plan, plan


def a_long_history(db, builds: int) -> None:
    """`builds` builds, each live in pasty in turn; #5 failed there, #7 errored; #9 rolled back."""
    db.conn.execute(
        "INSERT INTO repositories (id, full_name, html_url) VALUES (?, 'o/r', 'https://x/o/r')",
        [REPO],
    )
    for n in range(1, builds + 1):
        db.conn.execute(
            "INSERT INTO builds (id, repo_id, number, sha, message, author, html_url, pushed_at,"
            " ci_changed_at) VALUES (?, ?, ?, ?, 'm', 'a', 'u', ?, ?)",
            [n, REPO, n, f"{n:040x}", 1e9 + n, 1e9 + n],
        )
        state = {5: "failure", 7: "error"}.get(n, "success")
        db.conn.execute(
            "INSERT INTO deployments (repo_id, build_id, stage, state, requested_by, created_at,"
            " updated_at, finished_at, succeeded_at) VALUES (?, ?, 'pasty', ?, 'promobot', ?, ?,"
            " ?, ?)",
            [REPO, n, state, 1e9 + n, 1e9 + n, 1e9 + n, 1e9 + n if state == "success" else None],
        )
    db.conn.execute(
        "INSERT INTO promotions (repo_id, build_id, stage, requested_by, state, rollback,"
        " created_at, replaces_build_id) VALUES (?, 8, 'pasty', 'U1', 'approved', 1, ?, 9)",
        [REPO, 1e9 + 9.5],
    )
    db.conn.commit()


def test_a_stage_s_last_failure_the_stream_and_what_waits_are_seeks(db):
    a_long_history(db, 300)
    failed, statements = traced(db, lambda: pipeline.last_failed(db, REPO, "pasty"))
    assert failed is not None and failed["number"] == 7 and failed["state"] == "error"
    since, more = traced(db, lambda: dash.successes_since(db, REPO, 1e9 + 298))
    assert [s["number"] for s in since] == [298, 299, 300]
    statements += more
    backs, more = traced(db, lambda: dash.rollbacks_of(db, [9, 10]))
    assert [(r["build_id"], r["to_number"]) for r in backs] == [(9, 8)]
    statements += more
    for lookup in (
        lambda: dash.promotions_of_builds(db, [8, 9]),
        lambda: dash.waiting_promotions(db, REPO, 1e9),
        lambda: digests.repo_records(db, {"id": REPO}, since=1e9, now=1e9 + 400),
    ):
        statements += traced(db, lookup)[1]
    for plan in plans(db, statements):
        assert_no_walk(plan, "deployments")
        assert "SCAN p " not in plan + " " and "SCAN promotions" not in plan, plan
    wanted = ("deployments_stage_state", "deployments_succeeded", "promotions_replaces")
    assert all(any(index in plan for plan in plans(db, statements)) for index in wanted)
