"""POST /slack/events: Bolt in our own route, signatures checked, /ship help answered."""

import logging
import time
from urllib.parse import urlencode

from bot.core import commands
from tests.conftest import SIGNING_SECRET, TEAM, sign_slack


async def test_ship_help_answers_with_the_help_text_and_bolt_stays_quiet(
    make_harness, caplog, monkeypatch
):
    # Bolt reads SLACK_BOT_TOKEN itself, as it would find it in production.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    with caplog.at_level(logging.WARNING):
        harness = await make_harness()
        response = await harness.slash("help")
    assert response.status == 200
    assert await response.text() == commands.HELP  # Bolt answers a bare ack text as plain text
    assert [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")] == []


def _slash_body() -> str:
    return urlencode({"command": "/ship", "text": "help", "user_id": "U111", "team_id": TEAM})


async def test_a_bad_signature_is_refused(harness):
    body = _slash_body()
    headers = sign_slack(body, secret="not-" + SIGNING_SECRET)
    response = await harness.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401


async def test_a_request_signed_more_than_five_minutes_ago_is_refused(harness):
    response = await harness.slash("help", timestamp=int(time.time()) - 6 * 60)
    assert response.status == 401
    fresh = await harness.slash("help", timestamp=int(time.time()) - 4 * 60)
    assert fresh.status == 200


async def test_the_web_api_client_talks_to_slack_api_url(harness, secrets, fake_slack):
    assert harness.services.slack.base_url == secrets.slack_api_url
    await harness.services.slack.auth_test()
    assert [c.path for c in fake_slack.of("auth.test")] == ["/api/auth.test"]


async def test_a_non_numeric_or_missing_timestamp_is_refused_with_401(harness, caplog):
    body = _slash_body()
    for stamp in ("yesterday", "", "12e3", "-5"):
        headers = {**sign_slack(body), "X-Slack-Request-Timestamp": stamp}
        response = await harness.client.post("/slack/events", data=body, headers=headers)
        assert response.status == 401
    headers = sign_slack(body)
    del headers["X-Slack-Request-Timestamp"]
    response = await harness.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401
    assert "Traceback" not in caplog.text


async def test_a_badly_signed_body_is_never_logged(make_harness, caplog):
    caplog.set_level(logging.DEBUG)  # as verbose as an operator could make it
    harness = await make_harness()
    body = urlencode({"command": "/ship", "text": "private words " * 1000, "user_id": "U1"})
    headers = sign_slack(body, secret="not-" + SIGNING_SECRET)
    response = await harness.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401
    assert "private words" not in caplog.text
    (line,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert line.getMessage() == (
        "slack request refused (401): the signature or its timestamp does not hold"
    )
