"""Rate-limit storms: promobot waits as long as Slack and GitHub ask, then drains the backlog."""

import time

from tests.conftest import status_payload
from tests.outbox import github_status, queue, slack_message

STATUSES = "POST /repos/{owner}/{repo}/statuses/{sha}"


async def test_slack_429_is_waited_out_then_the_backlog_drains(harness):
    harness.slack.fail("chat.postMessage", 429, times=2, headers={"Retry-After": "1"})
    await queue(harness, *(slack_message(f"k{i}", f"message {i}") for i in range(3)))
    # Ingest carries on while Slack is refusing.
    assert (await harness.deliver("status", status_payload())).status == 202
    await harness.settle(timeout=20)
    calls = harness.slack.of("chat.postMessage")
    assert len(calls) == 5  # two refused, then the three messages once each
    assert [c.body["text"] for c in calls[2:]] == ["message 0", "message 1", "message 2"]
    assert calls[1].at - calls[0].at >= 1.0  # no call before Retry-After was over
    assert calls[2].at - calls[1].at >= 1.0
    assert harness.rows("SELECT state, count(*) AS n FROM outbox GROUP BY state") == [
        {"state": "sent", "n": 3}
    ]


async def test_github_403_and_429_are_waited_out_then_the_backlog_drains(harness):
    reset = str(int(time.time()) + 2)
    harness.github.fail(
        STATUSES, 403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    )
    harness.github.fail(STATUSES, 429, headers={"retry-after": "1"})
    await queue(harness, *(github_status(f"{i:040x}") for i in range(3)))
    await harness.settle(timeout=20)
    calls = harness.github.of(STATUSES)
    assert len(calls) == 5
    assert calls[1].at >= int(reset) - 0.05  # not before x-ratelimit-reset
    assert calls[2].at - calls[1].at >= 1.0
    assert len(harness.github.statuses) == 3
    assert harness.rows("SELECT count(*) AS n FROM outbox WHERE state = 'sent'") == [{"n": 3}]
