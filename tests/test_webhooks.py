"""POST /github/webhooks: verified, durable, deduplicated, processed in order."""

import json
import sqlite3

from tests.conftest import SHA, fixture, push_payload, sign_github, status_payload


async def test_push_then_status_makes_a_green_build(harness):
    assert (await harness.deliver("push", push_payload())).status == 202
    assert (await harness.deliver("status", status_payload(state="success"))).status == 202
    await harness.settle()
    (build,) = harness.rows("SELECT number, sha, message, author, ci_state FROM builds")
    assert build == {
        "number": 1,
        "sha": SHA,
        "message": "Fix the frobnicator",
        "author": "octocat",
        "ci_state": "success",
    }


async def test_forged_unsigned_sha1_and_stale_deliveries_store_nothing(harness):
    body = json.dumps(push_payload()).encode()
    sha1_only = {"X-Hub-Signature-256": None, "X-Hub-Signature": "sha1=0123456789abcdef"}
    cases = [
        ({"X-Hub-Signature-256": sign_github(body, "wrong-secret")}, "does not match"),
        ({"X-Hub-Signature-256": None}, "missing"),
        (sha1_only, "missing"),
        ({"X-Hub-Signature-256": sign_github(body, "retired-webhook-secret")}, "retired"),
    ]
    for headers, reason in cases:
        response = await harness.deliver("push", body, headers=headers)
        assert response.status == 401
        assert reason in (await response.json())["error"]
    await harness.settle()
    assert harness.rows("SELECT count(*) AS n FROM deliveries") == [{"n": 0}]
    assert harness.rows("SELECT count(*) AS n FROM builds") == [{"n": 0}]


async def test_ping_is_stored_and_marked_ignored(harness):
    response = await harness.deliver("ping", fixture("ping"))
    assert response.status == 202
    await harness.settle()
    assert harness.rows("SELECT event, state FROM deliveries") == [
        {"event": "ping", "state": "ignored"}
    ]


async def test_a_redelivery_is_stored_once_and_processed_once(harness):
    for _ in range(3):
        response = await harness.deliver("push", push_payload(), delivery_id="same-guid-1")
        assert response.status == 202
    await harness.settle()
    assert harness.rows("SELECT count(*) AS n FROM deliveries") == [{"n": 1}]
    assert harness.rows("SELECT count(*) AS n FROM event_log WHERE action = 'build.created'") == [
        {"n": 1}
    ]


async def test_the_202_says_which_delivery_was_stored_in_json(harness):
    # GitHub shows this text in its delivery log: the same JSON for any id, quoted or not.
    for delivery_id in ["72d3162e-cc78-11e3-81ab-4c9367dc0958", 'odd "id" \\ \t 1']:
        for stored in ["new", "already stored"]:
            response = await harness.deliver("push", push_payload(), delivery_id=delivery_id)
            assert response.status == 202
            assert response.headers["Content-Type"] == "application/json; charset=utf-8"
            text = json.dumps({"delivery": delivery_id, "stored": stored})
            assert await response.text() == text


async def test_malformed_bodies_are_refused_with_400_and_nothing_stored(harness):
    for body, headers in [
        (b"{not json", {}),
        (b"[1, 2, 3]", {}),
        (json.dumps(push_payload()).encode(), {"X-GitHub-Event": None}),
        (json.dumps(push_payload()).encode(), {"X-GitHub-Delivery": ""}),
    ]:
        response = await harness.deliver("push", body, headers=headers)
        assert response.status == 400, body
    assert harness.rows("SELECT count(*) AS n FROM deliveries") == [{"n": 0}]


async def test_a_form_encoded_delivery_is_read_from_its_payload_field(harness):
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(push_payload())}).encode()
    response = await harness.deliver(
        "push", body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 202
    await harness.settle()
    assert harness.rows("SELECT number FROM builds") == [{"number": 1}]


async def test_a_3mb_push_is_accepted(harness):
    payload = push_payload()
    payload["commits"] = [
        {**payload["head_commit"], "id": f"{i:040x}", "message": "x" * 1500} for i in range(2048)
    ]
    body = json.dumps(payload).encode()
    assert len(body) > 3_000_000
    response = await harness.deliver("push", body)
    assert response.status == 202
    await harness.settle()
    assert harness.rows("SELECT number, commits FROM builds") == [{"number": 1, "commits": 2048}]


async def test_other_branches_tags_and_deletions_make_no_build(harness):
    tag = fixture("push")  # octokit's example is a tag push
    await harness.deliver("push", tag)
    await harness.deliver("push", push_payload(ref="refs/heads/feature"))
    deleted = push_payload(sha="0" * 40)
    deleted["deleted"] = True
    await harness.deliver("push", deleted)
    await harness.settle()
    assert harness.rows("SELECT count(*) AS n FROM builds") == [{"n": 0}]
    assert {r["state"] for r in harness.rows("SELECT state FROM deliveries")} == {"ignored"}


async def test_unknown_events_and_actions_are_stored_marked_ignored_and_answered_202(harness):
    check_run = fixture("check_run.created")
    check_run["action"] = "requested_action"
    for event, payload in [("workflow_run", {"action": "completed"}), ("check_run", check_run)]:
        assert (await harness.deliver(event, payload)).status == 202
    await harness.settle()
    assert [r["state"] for r in harness.rows("SELECT state FROM deliveries")] == [
        "ignored",
        "ignored",
    ]


async def test_a_body_the_handlers_cannot_read_is_kept_as_failed_with_its_error(harness):
    broken = status_payload()
    del broken["sha"]
    assert (await harness.deliver("status", broken)).status == 202
    await harness.deliver("push", push_payload())
    await harness.settle()
    rows = harness.rows("SELECT event, state, error FROM deliveries ORDER BY id")
    assert rows[0]["state"] == "failed" and "KeyError" in rows[0]["error"]
    assert rows[1]["state"] == "done"  # the next delivery was not held back by it
    health = await (await harness.client.get("/healthz")).json()
    assert health["backlog"]["deliveries_failed"] == 1


async def test_healthz_reports_the_database_and_backlog(harness):
    response = await harness.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {
        "ok": True,
        "database": "reachable",
        "backlog": {
            "deliveries_pending": 0,
            "deliveries_failed": 0,
            "outbox_pending": 0,
            "outbox_failed": 0,
        },
        "problems": [],
    }


async def test_installation_events_record_the_installation_and_its_repositories(harness):
    await harness.deliver("installation", fixture("installation.created"))
    await harness.settle()
    (installation,) = harness.rows("SELECT id, account, deleted_at FROM installations")
    assert installation == {"id": 957387, "account": "Codertocat", "deleted_at": None}
    repos = harness.rows("SELECT full_name, installation_id FROM repositories")
    assert repos == [{"full_name": "Codertocat/Hello-World", "installation_id": 957387}]


async def test_bodies_are_dropped_a_week_after_processing(harness):
    from bot.core.clock import FakeClock

    for n in range(3):
        await harness.deliver("push", push_payload(f"{n + 1:040x}"))
    await harness.settle()
    assert harness.rows("SELECT count(*) AS n FROM builds") == [{"n": 3}]
    worker = harness.services.worker
    worker.clock = FakeClock(harness.services.clock.now() + 8 * 24 * 3600)
    await worker.prune()
    rows = harness.rows("SELECT length(body) AS size, state FROM deliveries")
    assert rows == [{"size": 0, "state": "done"}] * 3


async def test_a_failing_delivery_is_retried_with_backoff_then_kept_with_its_error(make_harness):
    from bot.core.clock import FakeClock

    failures = {"left": 2}

    def flaky(tx, change):
        if change.kind == "build.created" and failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("the database hiccuped")  # transient: retried

    clock = FakeClock(1_795_000_000)
    harness = await make_harness(clock=clock, reactions=(flaky,))
    await harness.deliver("push", push_payload())
    await harness.settle()
    row = harness.rows("SELECT state, attempts, not_before, error FROM deliveries")[0]
    assert (row["state"], row["attempts"], row["not_before"]) == ("pending", 1, clock.now() + 2)
    assert "the database hiccuped" in row["error"]
    assert harness.rows("SELECT count(*) AS n FROM builds") == [{"n": 0}]  # rolled back whole
    for wait in (2, 4):
        clock.advance(wait)
        harness.services.worker.wake()
        await harness.settle()
    row = harness.rows("SELECT state, attempts, error FROM deliveries")[0]
    assert (row["state"], row["attempts"], row["error"]) == ("done", 3, None)
    assert harness.rows("SELECT number FROM builds") == [{"number": 1}]

    failures["left"] = 99
    await harness.deliver("push", push_payload("c" * 40))
    for wait in (0, 2, 4, 8, 16):
        clock.advance(wait)
        harness.services.worker.wake()
        await harness.settle()
    kept = harness.rows("SELECT state, attempts, error FROM deliveries ORDER BY id")[1]
    assert (kept["state"], kept["attempts"]) == ("failed", 5)
    assert "the database hiccuped" in kept["error"]
