"""Outside text in Slack messages: payload URLs validated and escaped, every block within limits."""

import json
import time

import pytest

from bot.core import text
from bot.core.render import fit
from bot.pipeline import promotions
from bot.pipeline.tx import Tx
from storage import builds
from tests.conftest import push_payload, status_payload

HOSTILE_URLS = [
    "https://ci.example.com/1|<!channel> click here",
    "<!channel>",
    "https://ci.example.com/<!here>",
    "javascript:alert(1)",
    "https://ci.example.com/ run",
    "data:text/html,hi",
    "https://ci.example.com/\u202etxt.exe",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_plain_http_urls_are_links(url):
    assert text.safe_url(url) is None
    assert text.link(url, "*ci/test*") == "*ci/test*"


def test_a_safe_url_is_linked_with_its_ampersands_escaped():
    url = "https://ci.example.com/run?id=1&job=2"
    assert text.link(url, "ci") == "<https://ci.example.com/run?id=1&amp;job=2|ci>"


def slack_text(calls) -> str:
    return json.dumps([c.body for c in calls])


@pytest.mark.parametrize("url", HOSTILE_URLS[:4])
async def test_a_failing_checks_url_cannot_ping_the_channel(harness, url):
    await harness.deliver("push", push_payload())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # inside the digest's day
    failing = status_payload(state="failure", target_url=url, stamp=now)
    await harness.deliver("status", failing)
    await harness.settle()
    digest = await (await harness.slash("digest")).text()
    posted = slack_text(harness.slack.calls)
    for shown in (digest, posted):
        assert "<!channel>" not in shown and "<!here>" not in shown
        assert "javascript:" not in shown and "|<" not in shown
    assert "ci/test" in digest and "ci/test" in posted  # the check is still named
    assert "*Failed builds*" in digest


async def test_an_approval_message_with_a_huge_reason_keeps_its_buttons(harness, config):
    """A section over 3,000 characters made Slack answer invalid_blocks: the message was lost."""
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="success"))
    await harness.settle()
    reason = "because " + "x" * 3600
    stage = config.pipeline.stage("dumpling")
    services = harness.services

    def ask(db):
        build = builds.build(db, 1)
        tx = Tx(db, services.config, services.clock.now(), services.worker.reactions)
        return promotions.request(tx, build, stage, "U111", True, reason)

    answer = await services.store.write(ask)
    assert "waits for approval" in answer
    services.relay.wake()
    await harness.settle()
    (message,) = [c for c in harness.slack.of("chat.postMessage") if "Promotion" in c.body["text"]]
    blocks = message.body["blocks"]
    assert blocks[-1]["type"] == "actions"  # the Approve and Reject buttons are there
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "Forced past" in blocks[0]["text"]["text"]
    assert harness.rows("SELECT count(*) AS n FROM outbox WHERE state = 'failed'") == [{"n": 0}]


def test_fit_cuts_every_part_of_a_message_to_slacks_limits():
    long = "*bold* <https://example.com|link> " * 2000
    message = {
        "text": long * 2,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": long}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": long},
                "fields": [{"type": "mrkdwn", "text": long}],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": long}]},
        ]
        * 30,
    }
    fitted = fit(message)
    assert len(fitted["text"]) <= 40_000 and len(fitted["blocks"]) == 50
    for block in fitted["blocks"]:
        limit = 150 if block["type"] == "header" else 3000
        parts = [block.get("text", {}), *block.get("fields", []), *block.get("elements", [])]
        assert all(len(p["text"]) <= limit for p in parts if "text" in p)
    assert fitted["blocks"][1]["text"]["text"].endswith("…")


async def test_history_never_turns_typed_text_back_into_mentions(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    await harness.slash('lock pasty "<@U0BOSS> said so <!channel>"', user="U111")
    await harness.slash("promote #1 pasty", user="U222")  # refused: locked by U111 (ours)
    history = await (await harness.slash("history")).text()
    assert "<@U0BOSS>" not in history and "<!channel>" not in history
    assert "&lt;@U0BOSS&gt; said so &lt;!channel&gt;" in history  # shown as typed
    assert "locked by <@U111>" in history  # promobot's own refusal still names the person
