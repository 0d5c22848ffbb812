"""Only our workspace and channels, capped typed text, and no 5xx for anyone's request."""

import dataclasses
import json
from urllib.parse import urlencode

import pytest
import yaml

from bot.cli import main
from bot.core import commands
from bot.dev import forms
from tests.conftest import ROOT, TEAM, push_payload, sign_github, sign_slack
from tests.pipeline_driver import Pipeline
from tests.test_promote import waiting_for_dumpling

NUMBER = "99999999999999999999999"


def slash_body(text: str, *, team: str = TEAM, channel: str = "C0RELEASES", name: str = "releases"):
    return urlencode(
        {
            "command": "/ship",
            "text": text,
            "team_id": team,
            "channel_id": channel,
            "channel_name": name,
            "user_id": "U111",
            "trigger_id": "1.2.3",
        }
    )


def actions(harness, action: str) -> list[dict]:
    return harness.rows("SELECT action FROM event_log WHERE action LIKE ?", [f"{action}%"])


# 3. Only our workspace and our channels


async def test_another_workspace_is_refused_with_a_clear_answer(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    body = slash_body('lock pasty "mine now"', team="T0OTHER")
    response = await harness.client.post("/slack/events", data=body, headers=sign_slack(body))
    assert response.status == 200
    assert "only in its own Slack workspace" in (await response.json())["text"]
    click = urlencode({"payload": json.dumps({"type": "block_actions", "team": {"id": "T0X"}})})
    refused = await harness.client.post("/slack/events", data=click, headers=sign_slack(click))
    assert refused.status == 403
    assert actions(harness, "lock") == [] and harness.rows("SELECT * FROM locks") == []


def test_check_config_names_slack_team_id_when_it_is_missing(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "app.yaml").read_text())
    del raw["slack"]["team_id"]
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["check-config", "--config", str(path)]) == 1
    assert "slack.team_id: required outside --dev" in capsys.readouterr().err
    assert main(["serve", "--config", str(path)]) == 1
    assert "slack.team_id" in capsys.readouterr().err
    raw["slack"]["team_id"] = "acme"
    path.write_text(yaml.safe_dump(raw))
    assert main(["check-config", "--config", str(path)]) == 1
    assert "slack.team_id: 'acme' is not a Slack workspace ID" in capsys.readouterr().err


async def test_a_channel_that_follows_no_repository_is_told_so(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    for text in ("status", 'lock pasty "x"', "history", "status codertocat/hello-world"):
        answer = await (await harness.slash(text, channel="C0RANDOM", channel_name="random")).text()
        assert "this channel follows no repository" in answer or "not here" in answer, text
        assert "Hello-World*" not in answer
    freeze = await harness.slash(
        'freeze "x"', user="U012ABC", channel="C0RANDOM", channel_name="random"
    )
    assert "follows no repository" in await freeze.text()
    digest = await harness.slash("digest", channel="C0RANDOM", channel_name="random")
    assert "follows no repository" in await digest.text()
    assert actions(harness, "lock") == [] and actions(harness, "freeze") == []
    assert harness.rows("SELECT * FROM locks") == []


@pytest.fixture
async def bot(make_harness, fake_slack):
    from bot.core.clock import FakeClock

    clock = FakeClock()
    fake_slack.usergroups["S0RELEASE"] = ["U0GROUP"]
    return Pipeline(await make_harness(clock=clock), clock)


async def test_a_click_counts_only_on_its_own_promotions_message(bot):
    await waiting_for_dumpling(bot, bot.clock)  # promotion 3
    (row,) = bot.h.rows("SELECT channel_id, ts FROM slack_messages WHERE key = 'promotion:3'")
    for channel, ts in ((row["channel_id"], "1.000"), ("C0MINGLE", row["ts"])):
        payload = forms.block_actions(
            user="U0GROUP",
            user_name="u0group",
            channel_id=channel,
            message={"ts": ts, "text": "Promotion 3"},
            action={"action_id": "promotion.approve", "value": "3"},
            block_id="b",
            response_url="https://hooks.slack.com/actions/T111/111/random-value",
            team=TEAM,
        )
        assert (await bot.h.interact(payload)).status == 200
        await bot.h.settle()
        said = bot.slack.of("chat.postEphemeral")[-1].body["text"]
        assert "does not belong to promotion 3's approval message" in said
    assert bot.h.rows("SELECT count(*) AS n FROM approvals") == [{"n": 0}]
    refused = "SELECT actor, reason, detail FROM event_log WHERE action = 'command.refused'"
    assert bot.h.rows(refused) == 2 * [
        {
            "actor": "U0GROUP",
            "reason": "This button does not belong to promotion 3's approval message.",
            "detail": '{"text": "click 3"}',
        }
    ]
    await bot.click("approve", 3, user="U0GROUP")  # on the message itself
    assert bot.h.rows("SELECT count(*) AS n FROM approvals") == [{"n": 1}]


async def test_a_replayed_request_is_answered_once(harness, caplog):
    await harness.deliver("push", push_payload())
    await harness.settle()
    body = slash_body('lock pasty "once"')
    headers = sign_slack(body)
    first = await harness.client.post("/slack/events", data=body, headers=headers)
    again = await harness.client.post("/slack/events", data=body, headers=headers)
    assert (first.status, again.status) == (200, 409)
    assert "already answered" in (await again.json())["error"]
    assert actions(harness, "lock") == [{"action": "lock"}]
    assert len(harness.rows("SELECT * FROM locks")) == 1


# 5. Length caps on typed text


async def test_a_700_kb_command_is_refused_before_it_is_parsed(harness, monkeypatch):
    parsed: list[int] = []
    real = commands.parse
    monkeypatch.setattr(
        commands, "parse", lambda text, **kw: parsed.append(len(text)) or real(text, **kw)
    )
    text = "status " + "x" * 700_000
    answer = await (await harness.slash(text)).text()
    assert parsed == []
    assert "this command is 700,007 characters long; the most is 4,000" in answer
    assert len(answer) < 200
    (refusal,) = harness.rows("SELECT detail FROM event_log WHERE action = 'command.refused'")
    assert json.loads(refusal["detail"])["length"] == 700_007


async def test_reasons_and_build_references_are_capped_with_a_clear_answer(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    long = "r" * 501
    for text in (
        f'lock pasty "{long}"',
        f'promote #1 pasty --force "{long}"',
        f'reject 1 "{long}"',
        f'freeze "{long}"',
    ):
        answer = await (await harness.slash(text)).text()
        assert "the reason is 501 characters long; the most is 500" in answer, text
        assert long not in answer
    answer = await (await harness.slash(f"promote {'a' * 150} pasty")).text()
    assert "is too long to be a build" in answer and "a" * 100 not in answer
    assert harness.rows("SELECT * FROM locks") == [] and actions(harness, "freeze.") == []


# 6. No 500s with tracebacks


async def test_unsigned_oddities_get_a_4xx(harness, secrets, caplog):
    body = json.dumps(push_payload()).encode()
    for signature in ("sha256=é", "sha256=²" * 3, "sha256=" + "ü" * 64):
        answer = await harness.deliver("push", body, headers={"X-Hub-Signature-256": signature})
        assert answer.status == 401
    nested = "[" * 2000 + "]" * 2000
    for raw in (
        b"payload=%7Bnot json",
        urlencode({"payload": nested}).encode(),
        b"command=/ship&text=\xff\xfe\xfa",
    ):
        headers = sign_slack("something else")
        assert (await harness.client.post("/slack/events", data=raw, headers=headers)).status == 401
    headers = {**sign_slack("x"), "X-Slack-Signature": "v0=é²"}
    assert (await harness.client.post("/slack/events", data=b"x", headers=headers)).status == 401
    headers = {**sign_slack("x"), "X-Slack-Request-Timestamp": "²"}
    assert (await harness.client.post("/slack/events", data=b"x", headers=headers)).status == 401
    guarded = harness
    guarded.services.secrets = dataclasses.replace(secrets, dashboard_token="s3cret")
    for token in ("é", "²²", "s3cret²"):
        page = await guarded.client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert page.status == 401
        assert (await guarded.client.get("/", params={"token": token})).status == 401
    assert "Traceback" not in caplog.text


async def test_signed_malformed_slack_bodies_get_a_400(harness, caplog):
    nested = "[" * 2000 + "]" * 2000
    for raw in (
        urlencode({"payload": "{not json"}).encode(),
        urlencode({"payload": nested}).encode(),
        urlencode({"payload": "[1, 2]"}).encode(),
        b"command=/ship&text=\xff\xfe\xfa",
    ):
        headers = sign_slack(raw)  # signed on the raw bytes, which need not be UTF-8
        response = await harness.client.post("/slack/events", data=raw, headers=headers)
        assert response.status == 400, raw[:30]
    assert "Traceback" not in caplog.text


async def test_huge_numbers_get_a_usage_answer_or_a_404(harness, secrets, caplog):
    await harness.deliver("push", push_payload())
    await harness.settle()
    for text in (
        f"promote #{NUMBER} pasty",
        f"promote {NUMBER} pasty",
        f"approve {NUMBER}",
        f'reject #{NUMBER} "no"',
        f"rollback pasty to #{NUMBER}",
    ):
        response = await harness.slash(text)
        answer = await response.text()
        assert response.status == 200 and answer.startswith(":warning: "), text
        assert "Usage: `/ship" in answer and NUMBER not in answer[:12]
    harness.services.secrets = dataclasses.replace(secrets, dashboard_token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    page = await harness.client.get(f"/builds/Codertocat/Hello-World/{NUMBER}", headers=auth)
    assert page.status == 404 and "has no build" in await page.text()
    for odd in ("²", "9" * 5000):  # int() of 5,000 digits raises ValueError
        weeks = await harness.client.get("/insights", params={"weeks": odd}, headers=auth)
        assert weeks.status == 400
    assert "Traceback" not in caplog.text


async def test_a_webhook_nested_2000_deep_is_refused_with_400(harness, caplog):
    body = ('{"a": ' * 2000 + "1" + "}" * 2000).encode()
    response = await harness.deliver(
        "push", body, headers={"X-Hub-Signature-256": sign_github(body)}
    )
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    assert "Traceback" not in caplog.text


async def test_a_button_value_of_a_superscript_two_is_not_a_promotion(harness, caplog):
    payload = forms.block_actions(
        user="U111",
        user_name="u111",
        channel_id="C111",
        message={"ts": "111.222", "text": "Promotion"},
        action={"action_id": "promotion.approve", "value": "²"},
        block_id="b",
        response_url="https://hooks.slack.com/actions/T111/111/random-value",
        team=TEAM,
    )
    response = await harness.interact(payload)
    assert response.status == 200
    await harness.settle()
    said = harness.slack.of("chat.postEphemeral")[-1].body["text"]
    assert said == ":warning: This button is not bound to a promotion."
    assert "Traceback" not in caplog.text


async def test_slacks_ssl_check_is_answered_unsigned_and_changes_nothing(harness):
    response = await harness.client.post("/slack/events", data=b"ssl_check=1&token=x")
    assert response.status == 200
    odd = await harness.client.post("/slack/events", data=b"ssl_check=1&\xff")
    assert odd.status == 401
    assert harness.rows("SELECT count(*) AS n FROM event_log") == [{"n": 0}]


def test_replays_are_remembered_for_the_window_within_a_bound():
    from handlers.slack_guard import WINDOW, Replays

    seen = Replays(limit=3)
    assert seen.first("100", "v0=a", 100.0) and not seen.first("100", "v0=a", 101.0)
    assert seen.first("100", "v0=a", 100.0 + WINDOW + 1)  # stale by then anyway: forgotten
    for n in range(5):  # a flood of valid requests keeps the newest `limit`
        assert seen.first(str(n), "v0=b", 500.0)
    assert len(seen) == 3
