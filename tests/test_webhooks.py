"""POST /github/webhooks: verified, durable, deduplicated, processed in order."""

import json

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
