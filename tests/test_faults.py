"""Odd facts from GitHub never wedge a repository: new ids for old names, undecodable text."""

import json

from tests.conftest import push_payload, status_payload


def recreated(payload: dict, repo_id: int, full_name: str = "Codertocat/Hello-World") -> dict:
    """The same delivery for a repository with another id (deleted and re-created, say)."""
    payload["repository"] = {**payload["repository"], "id": repo_id, "full_name": full_name}
    return payload


async def test_a_repository_re_created_under_its_name_is_followed_by_its_new_id(harness):
    await harness.deliver("push", push_payload("a" * 40))
    await harness.settle()
    # The repository is deleted and created again: same owner/name, a new id.
    await harness.deliver("push", recreated(push_payload("b" * 40), 999))
    await harness.deliver("status", recreated(status_payload("b" * 40), 999))
    await harness.settle()
    assert harness.rows("SELECT state, error FROM deliveries WHERE state != 'done'") == []
    assert harness.rows("SELECT id, full_name FROM repositories ORDER BY id") == [
        {"id": 999, "full_name": "Codertocat/Hello-World"},
        {"id": 186853002, "full_name": "Codertocat/Hello-World (id 186853002)"},
    ]
    (build,) = harness.rows("SELECT number, ci_state FROM builds WHERE repo_id = 999")
    assert build == {"number": 1, "ci_state": "success"}


async def test_renames_and_a_transfer_back_follow_each_id(harness):
    await harness.deliver("push", push_payload("a" * 40))
    # Renamed away, and another repository takes the old name; then the first comes back.
    await harness.deliver("push", recreated(push_payload("b" * 40), 186853002, "Codertocat/Old"))
    await harness.deliver("push", recreated(push_payload("c" * 40), 777))
    await harness.deliver("push", recreated(push_payload("d" * 40), 186853002))
    await harness.settle()
    assert harness.rows("SELECT state FROM deliveries WHERE state != 'done'") == []
    assert harness.rows("SELECT id, full_name FROM repositories ORDER BY id") == [
        {"id": 777, "full_name": "Codertocat/Hello-World (id 777)"},
        {"id": 186853002, "full_name": "Codertocat/Hello-World"},
    ]
    assert harness.rows("SELECT repo_id, number FROM builds ORDER BY id") == [
        {"repo_id": 186853002, "number": 1},
        {"repo_id": 186853002, "number": 2},
        {"repo_id": 777, "number": 1},
        {"repo_id": 186853002, "number": 3},
    ]


async def test_a_lone_surrogate_is_stored_replaced_and_processed(harness):
    body = json.dumps(push_payload(message="Fix \ud800 the frobnicator")).encode()
    assert b"\\ud800" in body
    assert (await harness.deliver("push", body)).status == 202
    await harness.deliver("status", status_payload())
    await harness.settle()
    assert harness.rows("SELECT event, state, error FROM deliveries") == [
        {"event": "push", "state": "done", "error": None},
        {"event": "status", "state": "done", "error": None},
    ]
    (build,) = harness.rows("SELECT message, ci_state FROM builds")
    assert build == {"message": "Fix \ufffd the frobnicator", "ci_state": "success"}


async def test_a_lone_surrogate_in_the_action_is_stored_and_acknowledged(harness):
    payload = status_payload()
    payload["action"] = "\udfff"
    response = await harness.deliver("status", json.dumps(payload).encode())
    assert response.status == 202
    await harness.settle()
    assert harness.rows("SELECT action, state FROM deliveries") == [
        {"action": "\ufffd", "state": "done"}
    ]


async def test_a_body_that_cannot_be_decoded_is_kept_as_failed_at_once(harness):
    # Stored before this release (or by hand): bytes that are not UTF-8 at all.
    await harness.deliver("status", status_payload())
    await harness.settle()
    db = harness.db()
    db.conn.execute("PRAGMA query_only = OFF")
    db.execute(
        "INSERT INTO deliveries (delivery_id, event, action, repo_key, body, received_at)"
        " VALUES ('bad-utf8', 'push', NULL, 'repo:186853002', ?, 0)",
        [b'{"ref": "\xff\xfe"}'],
    )
    db.conn.commit()
    db.close()
    harness.services.worker.wake()
    await harness.settle()
    (row,) = harness.rows(
        "SELECT state, attempts, error FROM deliveries WHERE delivery_id = 'bad-utf8'"
    )
    assert row["state"] == "failed" and row["attempts"] == 1
    assert "Unreadable: UnicodeDecodeError" in row["error"]
