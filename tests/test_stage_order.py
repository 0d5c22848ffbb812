"""The order of a stage's events is the order promobot recorded them, on a database of any age."""

import pytest

from storage import audit, connect, pipeline
from storage.migrations import migrations

REPO = 186853002
AT = 1_790_000_000.0


@pytest.fixture
def old_db(tmp_path):
    # A database as promobot left it before stages had a sequence.
    db = connect(tmp_path / "old.db")
    migrations.apply(db, stop_before="m021_stage_order")
    db.execute(
        "INSERT INTO repositories (id, full_name, html_url) VALUES (?, 'o/r', 'https://x/o/r')",
        [REPO],
    )
    for n in (1, 2, 3):
        db.execute(
            "INSERT INTO builds (id, repo_id, number, sha, message, author, html_url, pushed_at,"
            " ci_state, ci_changed_at) VALUES (?, ?, ?, ?, 'm', 'a', 'u', ?, 'success', ?)",
            [n, REPO, n, f"{n:040x}", AT, AT],
        )
    yield db
    db.close()


def deploy(db, build: int, succeeded_at: float | None) -> int:
    return pipeline.add_deployment(
        db,
        repo_id=REPO,
        build_id=build,
        stage="pasty",
        state="success" if succeeded_at else "in_progress",
        requested_by="promobot",
        created_at=AT,
        updated_at=AT,
        succeeded_at=succeeded_at,
    )


def roll_back(db, to: int, out: int, at: float) -> None:
    pipeline.add_promotion(
        db,
        repo_id=REPO,
        build_id=to,
        stage="pasty",
        requested_by="U111",
        state="approved",
        rollback=1,
        created_at=at,
        replaces_build_id=out,
    )


def live(db) -> int | None:
    there = pipeline.current(db, REPO, "pasty")
    return there["number"] if there else None


def test_an_old_database_keeps_what_its_times_said_and_ties_go_as_before(old_db):
    deploy(old_db, 1, AT + 10)
    deploy(old_db, 2, AT + 5)
    deploy(old_db, 3, AT + 10)  # the same second as #1: the higher id was taken as live
    roll_back(old_db, 1, 3, AT + 10)  # and a rollback in that second came after it
    migrations.apply(old_db)
    assert live(old_db) == 3
    assert pipeline.rolled_back(old_db, REPO, "pasty", 3)
    assert not pipeline.rolled_back(old_db, REPO, "pasty", 2)
    assert [h["number"] for h in pipeline.stage_history(old_db, REPO, "pasty")] == [2, 1, 3]


def test_an_old_tie_goes_to_the_success_its_event_log_recorded_last(old_db):
    # The bug this order fixes, already in a database: #1's success was recorded after #2's.
    stale = deploy(old_db, 1, None)
    newer = deploy(old_db, 2, None)
    for build, deployment in ((2, newer), (1, stale)):
        pipeline.set_deployment(old_db, deployment, state="success", succeeded_at=AT)
        audit.log_event(
            old_db,
            at=AT,
            actor="github",
            action="deployment.success",
            repo_id=REPO,
            build_id=build,
            stage="pasty",
            detail={"deployment": deployment},
        )
    migrations.apply(old_db)
    assert live(old_db) == 1  # the old rule, by id, said #2


def test_what_succeeds_last_is_live_whatever_the_clock_reads(old_db):
    migrations.apply(old_db)
    late = deploy(old_db, 1, None)
    deploy(old_db, 2, AT)
    pipeline.set_deployment(old_db, late, state="success", succeeded_at=AT)
    assert live(old_db) == 1
    before = pipeline.previous_good(old_db, REPO, "pasty", pipeline.current(old_db, REPO, "pasty"))
    assert before and before["number"] == 2
    assert pipeline.reached_since(old_db, REPO, "pasty", 2) is None  # #1 replaced #2


def test_a_rollback_counts_against_the_build_until_it_goes_live_again(old_db):
    migrations.apply(old_db)
    deploy(old_db, 1, AT)
    deploy(old_db, 2, AT)
    roll_back(old_db, 1, 2, AT)
    assert pipeline.rolled_back(old_db, REPO, "pasty", 2)
    deploy(old_db, 2, AT)  # promoted again: live again, in the same second
    assert not pipeline.rolled_back(old_db, REPO, "pasty", 2)
    assert live(old_db) == 2
