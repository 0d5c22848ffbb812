"""Slack's 429s hold back the method they name, in every channel, until Retry-After ends."""

import pytest

from bot.engine.slack_api import call
from bot.pipeline.outbox import Ephemeral
from tests.outbox import queue, slack_message
from tests.waiting import wait_for


def ephemeral(channel: str, text: str) -> Ephemeral:
    """An ephemeral answer row (its own method, its own lane)."""
    return Ephemeral(channel, "U1", text)


async def until(probe, timeout: float = 10.0):
    return await wait_for(probe, timeout)


async def test_no_call_of_the_limited_method_goes_out_before_retry_after(harness):
    slack = harness.slack
    harness.services.relay.pace["slack"] = 0.0
    slack.channels["#third"] = "C0THIRD"
    slack.fail("chat.postMessage", 429, headers={"Retry-After": "2"})
    await queue(harness, slack_message("k0", "first", "#releases"))
    (refused,) = await until(lambda: slack.of("chat.postMessage"))
    # Other channels' posts come after the 429: none may go before it is over.
    await queue(
        harness,
        slack_message("k1", "second", "#mingle-releases"),
        slack_message("k2", "third", "#third"),
        ephemeral("C0MINGLE", "an answer to someone"),
    )
    await harness.settle(timeout=20)
    posts = slack.of("chat.postMessage")
    assert sorted(c.body["text"] for c in posts[1:]) == ["first", "second", "third"]
    assert all(c.at >= refused.at + 2.0 for c in posts[1:])
    # Slack limits each method on its own: an ephemeral answer is not held back.
    methods = [c.method for c in slack.calls]
    assert methods.index("chat.postEphemeral") < methods.index("chat.postMessage", 1)


async def test_the_client_itself_holds_a_limited_method_back_for_every_channel(harness):
    slack, client = harness.slack, harness.services.slack
    slack.fail("chat.postMessage", 429, headers={"Retry-After": "60"})
    with pytest.raises(Exception, match="retry after 60s"):
        await call(client, "chat.postMessage", channel="C0RELEASES", text="one")
    with pytest.raises(Exception, match="paused; retry after 60s"):
        await call(client, "chat.postMessage", channel="C0MINGLE", text="two")
    assert len(slack.of("chat.postMessage")) == 1  # the second never left promobot
    answer = await call(client, "chat.postEphemeral", channel="C0MINGLE", user="U1", text="hi")
    assert answer["ok"]


@pytest.mark.parametrize("header", [{"Retry-After": "soon"}, {}, {"Retry-After": "-5"}])
async def test_a_garbled_or_missing_retry_after_waits_a_safe_default(harness, caplog, header):
    slack = harness.slack
    harness.services.relay.pace["slack"] = 0.0
    slack.fail("chat.postMessage", 429, headers=header)
    (row,) = await queue(harness, slack_message("k0", "first"))
    await until(
        lambda: harness.rows("SELECT error FROM outbox WHERE id = ? AND error IS NOT NULL", [row])
    )
    (stored,) = harness.rows("SELECT state, error, not_before, created_at FROM outbox")
    assert stored["state"] == "pending"
    assert "retry after 30s" in stored["error"]
    assert stored["not_before"] >= stored["created_at"] + 29
    # The relay carries on: another lane is served.
    await queue(harness, ephemeral("C0MINGLE", "still here"))
    await until(lambda: slack.of("chat.postEphemeral"))
    assert "Traceback" not in caplog.text


def test_github_waits_read_garbled_headers_safely():
    from bot.engine.github import wait_from_headers

    assert wait_from_headers({"retry-after": "7"}, now=0.0) == 7.0
    assert wait_from_headers({"retry-after": "soon"}, now=0.0) == 30.0
    garbled_reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "later"}
    assert wait_from_headers(garbled_reset, now=0.0) == 30.0
    assert wait_from_headers({}, now=0.0) is None


async def test_a_restart_during_a_pause_still_holds_the_method_back(make_harness, fake_slack):
    first = await make_harness()
    fake_slack.fail("chat.postMessage", 429, headers={"Retry-After": "60"})
    await queue(first, slack_message("k0", "first", "#releases"))
    await until(lambda: first.rows("SELECT * FROM outbox WHERE error LIKE '%retry after 60s'"))
    await first.client.close()  # stopped (or crashed) a moment into Slack's minute

    again = await make_harness()
    (row,) = await queue(again, slack_message("k1", "second", "#mingle-releases"))
    await until(
        lambda: again.rows("SELECT * FROM outbox WHERE id = ? AND error LIKE '%paused%'", [row])
    )
    assert len(fake_slack.of("chat.postMessage")) == 1  # only the refused one went out
    assert again.rows("SELECT state FROM outbox ORDER BY id") == [
        {"state": "pending"},
        {"state": "pending"},
    ]
