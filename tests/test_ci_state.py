"""A build's CI state from statuses and check runs together, ordered by the reports' own times."""

from bot.core import ci
from handlers import payloads
from tests.conftest import SHA, fixture, push_payload, status_payload


def report(context: str, state: str, at: float, kind: str = "status") -> dict:
    return {"context": context, "state": state, "reported_at": at, "kind": kind}


def test_every_reported_check_counts_when_none_is_required():
    assert ci.ci_state([], ()) == "pending"
    assert ci.ci_state([report("a", "success", 1), report("b", "pending", 1)], ()) == "pending"
    assert ci.ci_state([report("a", "success", 1), report("b", "failure", 1)], ()) == "failure"
    assert ci.ci_state([report("a", "success", 1), report("b", "success", 1)], ()) == "success"


def test_required_checks_count_alone_and_a_missing_one_keeps_the_build_pending():
    reports = [report("ci/test", "success", 1), report("lint", "failure", 1)]
    assert ci.ci_state(reports, ("ci/test",)) == "success"
    assert ci.ci_state(reports, ("ci/test", "deploy-preview")) == "pending"


def test_check_suites_count_only_when_named():
    suite = report("github-actions", "pending", 1, kind="check_suite")
    assert ci.ci_state([report("build", "success", 1), suite], ()) == "success"
    assert ci.ci_state([report("build", "success", 1), suite], ("github-actions",)) == "pending"


def test_a_late_pending_never_overwrites_a_newer_result():
    stored = report("ci/test", "success", 100)
    late = ci.Report(1, SHA, "ci/test", "status", "pending", None, None, 90)
    rerun = ci.Report(1, SHA, "ci/test", "status", "pending", None, None, 110)
    same_second = ci.Report(1, SHA, "ci/test", "status", "pending", None, None, 100)
    assert not ci.supersedes(late, stored)
    assert ci.supersedes(rerun, stored)
    assert not ci.supersedes(same_second, stored)


def test_check_run_conclusions_map_as_branch_protection_reads_them():
    run = fixture("check_run.completed")["check_run"]
    for conclusion, state in [
        ("success", "success"),
        ("skipped", "success"),
        ("neutral", "success"),
        ("timed_out", "failure"),
        ("cancelled", "failure"),
        ("action_required", "failure"),
    ]:
        assert payloads.check_run_report(1, {**run, "conclusion": conclusion}).state == state
    assert payloads.check_run_report(1, {**run, "status": "in_progress"}).state == "pending"


def check_run(sha: str, name: str, *, status: str, conclusion: str | None, at: str) -> dict:
    data = fixture("check_run.completed")
    data["check_run"].update(
        head_sha=sha,
        name=name,
        status=status,
        conclusion=conclusion,
        started_at=at,
        completed_at=at if status == "completed" else None,
    )
    data["installation"] = {"id": 957387}
    return data


async def test_out_of_order_reports_end_in_the_right_state(harness):
    await harness.deliver("push", push_payload())
    # Arrival order: success (09:05), then the pending (09:01) that preceded it.
    await harness.deliver("status", status_payload(state="success", stamp="2026-11-24T09:05:00Z"))
    await harness.deliver("status", status_payload(state="pending", stamp="2026-11-24T09:01:00Z"))
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "success"}]
    assert harness.rows("SELECT state FROM check_reports") == [{"state": "success"}]


async def test_statuses_and_check_runs_together_and_a_passing_rerun_clears_a_failure(harness):
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="success"))
    await harness.deliver(
        "check_run",
        check_run(SHA, "lint", status="completed", conclusion="failure", at="2026-11-24T09:06:00Z"),
    )
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "failure"}]
    # The rerun starts (pending) and passes later: the failure is cleared.
    rerun = check_run(SHA, "lint", status="in_progress", conclusion=None, at="2026-11-24T09:10:00Z")
    rerun["action"] = "created"
    await harness.deliver("check_run", rerun)
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "pending"}]
    await harness.deliver(
        "check_run",
        check_run(SHA, "lint", status="completed", conclusion="success", at="2026-11-24T09:12:00Z"),
    )
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "success"}]
    changes = harness.rows("SELECT detail FROM event_log WHERE action = 'ci.changed' ORDER BY id")
    assert [c["detail"].split('"to": ')[1].strip('"}') for c in changes] == [
        "success",
        "failure",
        "pending",
        "success",
    ]


async def test_reports_that_arrive_before_the_push_count_when_the_build_appears(harness):
    await harness.deliver("status", status_payload(state="failure", context="ci/test"))
    await harness.deliver("push", push_payload())
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "failure"}]
