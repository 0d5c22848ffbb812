"""The relay: two instances on one database never send the same outbox row."""

import asyncio
import json

from bot.engine.relay import Relay
from storage import Store


async def test_two_relays_on_one_database_send_each_row_once(tmp_path):
    path = tmp_path / "shared.db"
    stores = [Store(path), Store(path)]
    for store in stores:
        store.open()
    sent: list[int] = []

    async def send(row):
        await asyncio.sleep(0.01)  # a real call takes a while: give the other relay a chance
        sent.append(row.payload["n"])

    def queue(db):
        for n in range(30):
            db.execute(
                "INSERT INTO outbox (target, method, lane, payload, created_at)"
                " VALUES ('slack', 'test.send', ?, ?, 0)",
                [f"#lane{n % 3}", json.dumps({"n": n})],
            )

    await stores[0].write(queue)
    relays = [Relay(store, {"test.send": send}) for store in stores]
    for relay in relays:
        relay.pace["slack"] = 0.0
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    await asyncio.gather(*(relay.idle() for relay in relays))
    for relay in relays:
        relay.stop()
    await asyncio.gather(*tasks)
    for store in stores:
        store.close()
    assert sorted(sent) == list(range(30))
    assert sum(relay.sent for relay in relays) == 30


def parents(fake_slack) -> list[dict]:
    """Return the channel messages (not thread replies) the fake Slack holds."""
    return [m for m in fake_slack.messages.values() if not m["thread_ts"]]


async def test_a_post_whose_answer_was_lost_is_found_not_posted_again(make_harness, fake_slack):
    from tests.conftest import push_payload

    harness = await make_harness()
    harness.services.relay.pace["slack"] = 0.0
    await harness.deliver("push", push_payload())  # promobot learns the channel's ID
    await harness.settle()
    # Slack posts the next message, but the answer is lost (a 502 after the work was done).
    fake_slack.fail("chat.postMessage", 502, after=True)
    await harness.deliver("push", push_payload("b" * 40, message="Second"))
    await harness.settle(timeout=20)
    assert len(parents(fake_slack)) == 2  # one message per build...
    keys = harness.rows("SELECT key FROM slack_messages ORDER BY key")
    assert keys == [{"key": "build:1"}, {"key": "build:2"}]  # ...and its ts found to edit it
    assert len(fake_slack.of("conversations.history")) == 1


async def test_after_a_crash_mid_send_the_restart_finds_the_post_and_edits_it(
    make_harness, fake_slack, tmp_path
):
    from bot.engine.slack import tag
    from storage import connect
    from tests.conftest import push_payload, status_payload
    from tests.waiting import wait_for

    db_path = tmp_path / "crash.db"
    first = await make_harness(db_path=db_path)
    first.services.relay.pace["slack"] = 0.0
    await first.deliver("push", push_payload())  # promobot learns the channel's ID
    await first.settle()
    fake_slack.fail("chat.postMessage", 429, times=1000, headers={"Retry-After": "600"})
    await first.deliver("push", push_payload("b" * 40, message="Second"))
    # The post is refused, and waits.
    await wait_for(lambda: len(fake_slack.of("chat.postMessage")) >= 2, what="a refused post")
    await first.client.close()
    fake_slack.failures.clear()
    # What a kill -9 right after Slack's answer leaves: the post landed, the row is leased.
    fake_slack.m_chat_postMessage(
        {"channel": "#releases", "text": "Build #2", "metadata": tag("build:2")}
    )
    db = connect(db_path)
    db.execute(
        "UPDATE outbox SET lease_owner = 'killed', lease_until = 0, not_before = 0"
        " WHERE state = 'pending'"
    )
    db.close()
    second = await make_harness(db_path=db_path)
    second.services.relay.pace["slack"] = 0.0
    await second.deliver("status", status_payload("b" * 40, state="success"))
    await second.settle(timeout=20)
    assert len(parents(fake_slack)) == 2  # nothing posted twice
    (build2,) = [m for m in parents(fake_slack) if m["metadata"] == tag("build:2")]
    assert build2["edits"] >= 1 and "✅" in build2["text"]


async def test_a_lease_left_by_a_killed_process_is_taken_at_once_a_live_ones_is_not(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from functools import partial

    from bot.engine.relay import _lease

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that ran a relay and was killed: its pid runs nothing now
    host = socket.gethostname()
    holders = {
        "killed": f"{host}:{gone.pid}:a1",
        "alive": f"{host}:{os.getppid()}:b2",  # another process that still runs
        "elsewhere": f"other-host:{gone.pid}:c3",  # a pid we cannot check
    }
    store = Store(tmp_path / "leases.db")
    store.open()

    def queue(db):
        for name, holder in holders.items():
            db.execute(
                "INSERT INTO outbox (target, method, lane, payload, created_at, lease_owner,"
                " lease_until) VALUES ('slack', 'test.send', ?, '{}', 0, ?, 1e12)",
                [f"#{name}", holder],
            )

    await store.write(queue)
    taken = [await store.write(partial(_lease, row_id=i, owner="me", now=1.0)) for i in (1, 2, 3)]
    store.close()
    assert taken[0] is not None and taken[0]["uncertain"]  # it looks before posting again
    assert taken[1:] == [None, None]


async def test_a_lost_answer_to_a_channels_first_post_is_found_by_the_channels_name(
    make_harness, fake_slack
):
    from tests.conftest import push_payload

    harness = await make_harness()
    harness.services.relay.pace["slack"] = 0.0
    fake_slack.fail("chat.postMessage", 502, after=True)  # posted; the answer is lost
    await harness.deliver("push", push_payload())
    await harness.settle(timeout=20)
    assert len(parents(fake_slack)) == 1
    assert len(fake_slack.of("conversations.list")) == 1  # the channel's ID, found by name
    assert harness.rows("SELECT name, id FROM slack_channels") == [
        {"name": "#releases", "id": "C0RELEASES"}
    ]
