"""promobot serve --dev: Slack on the console, GitHub recorded, deployments completed locally."""

import asyncio
import json

import pytest

from bot import cli
from bot.app import create_app
from bot.config import Config
from bot.dev.console import render
from bot.dev.mode import DevMode, banner, dev_secrets, scale_soaks
from bot.pipeline import registry
from bot.pipeline.outbox import GitHubRequest, KeyedMessage, ThreadReply
from handlers import inbound
from tests.conftest import fixture, push_payload
from tests.devsupport import start_dev


@pytest.fixture
async def dev(aiohttp_client, tmp_path, config):
    return await start_dev(aiohttp_client, tmp_path, config)


def test_dev_mode_refuses_real_secrets(secrets, config: Config, tmp_path):
    with pytest.raises(ValueError, match="serve --dev"):
        create_app(config, secrets, db_path=tmp_path / "x.db", inbound=inbound(), dev=DevMode())


async def test_stand_ins_answer_404_without_dev(harness):
    for path in ("/dev/slack/respond", "/dev/slack/api/usergroups.users.list", "/dev/github/x"):
        assert (await harness.client.post(path, json={})).status == 404


def test_soaks_are_scaled_and_the_banner_says_so(config: Config):
    scaled = scale_soaks(config, 60)
    assert [s.soak for s in scaled.pipeline.stages] == [0, 15, 30]
    secrets = dev_secrets("http://127.0.0.1:8080")
    text = banner(scaled, config, secrets, DevMode(), "promobot-dev.db")
    assert secrets.github_webhook_secret in text and secrets.slack_signing_secret in text
    assert "baklava 15m → 15s, dumpling 30m → 30s" in text
    assert dev_secrets("http://x").github_webhook_secret != secrets.github_webhook_secret


def test_messages_render_readably():
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*#3* <https://g|ab12> &lt;b&gt;"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "CI ✅ → pasty ⏳"}]},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "text": {"type": "plain_text", "text": "Reject"}},
        ]},
    ]  # fmt: skip
    lines = ["*#3* ab12 <b>", "CI ✅ → pasty ⏳", "[Approve]  [Reject]"]
    assert render("fallback", blocks) == lines
    assert render("<@U1> and <!subteam^S0REL> :lock: <!channel>", None) == [
        "@U1 and @S0REL 🔒 @channel"
    ]


async def test_keyed_message_is_printed_then_edited_and_its_thread_follows(dev):
    await dev.queue(KeyedMessage("build:1", "#releases", "#1 CI ⏳"))
    await dev.settle()  # posted before the next version is queued: that one is an edit
    await dev.queue(KeyedMessage("build:1", "#releases", "#1 CI ✅ → pasty ⏳"))
    await dev.queue(ThreadReply("build:1", "#releases", "ci/test passed"))
    await dev.settle()
    shown = "".join(dev.console)
    assert "#releases · new message (build:1)" in shown and "  #1 CI ⏳" in shown
    assert "#releases · edited (build:1)" in shown and "#1 CI ✅ → pasty ⏳" in shown
    assert "↳ thread of build:1" in shown and "ci/test passed" in shown
    rows = dev.rows("SELECT kind, key, text, ts, thread_ts FROM dev_messages ORDER BY id")
    assert [r["kind"] for r in rows] == ["post", "edit", "reply"]
    (where,) = dev.rows("SELECT channel_id, ts FROM slack_messages WHERE key = 'build:1'")
    assert rows[0]["ts"] == rows[1]["ts"] == rows[2]["thread_ts"] == where["ts"]
    assert where["channel_id"].startswith("C")
    # Through the production sender: posted once, then edited, then a reply in its thread.
    sent = [(c.method, c.body.get("thread_ts")) for c in dev.slack.calls]
    assert sent == [
        ("chat.postMessage", None),
        ("chat.update", None),
        ("chat.postMessage", where["ts"]),
    ]


async def test_a_restarted_dev_server_still_edits_what_it_posted(aiohttp_client, tmp_path, config):
    first = await start_dev(aiohttp_client, tmp_path, config)
    await first.queue(KeyedMessage("build:1", "#releases", "#1 CI ⏳"))
    await first.settle()
    await first.client.close()
    again = await start_dev(aiohttp_client, tmp_path, config)  # same database, a fresh fake Slack
    await again.queue(KeyedMessage("build:1", "#releases", "#1 CI ✅"))
    await again.settle()
    assert "#releases · edited (build:1)" in "".join(again.console)
    rows = again.rows("SELECT kind, text FROM dev_messages ORDER BY id")
    assert rows == [{"kind": "post", "text": "#1 CI ⏳"}, {"kind": "edit", "text": "#1 CI ✅"}]


async def test_deployment_is_recorded_answered_and_completed_by_signed_webhooks(
    aiohttp_client, tmp_path, config, monkeypatch
):
    answers = []

    def recorder(answer, payload):
        answers.append(answer)
        return lambda db: db.execute(
            "INSERT INTO event_log (at, actor, action, detail) VALUES (0, 'test', 'recorded', ?)",
            [json.dumps({"id": answer["id"]})],
        )

    monkeypatch.setattr(registry, "github_recorders", lambda: {"deployment": recorder})
    dev = await start_dev(aiohttp_client, tmp_path, config)
    assert (await dev.deliver("push", push_payload())).status == 202
    await dev.settle()
    body = {
        "ref": push_payload()["after"],
        "environment": "pasty",
        "production_environment": False,
        "auto_merge": False,
        "required_contexts": [],
        "payload": {"build": 1, "promotion": None, "requested_by": "promobot"},
    }
    path = "/repos/Codertocat/Hello-World/deployments"
    await dev.queue(GitHubRequest("POST", path, body, 957387, record="deployment"))
    sql = "SELECT body FROM deliveries WHERE event = 'deployment_status' ORDER BY id"
    statuses = await dev.until(lambda: len(dev.rows(sql)) == 2 and dev.rows(sql))
    (call,) = dev.rows("SELECT method, path, body, answer, deploy_step FROM dev_github_calls")
    # The production sender: an installation token first (the App's JWT), then the deployment.
    assert [c.method for c in dev.github.calls] == [
        "POST /app/installations/{installation_id}/access_tokens",
        "POST /repos/{owner}/{repo}/deployments",
    ]
    assert (call["method"], json.loads(call["body"])) == ("POST", body)
    deployment_id = json.loads(call["answer"])["id"]
    assert answers[0]["id"] == deployment_id and answers[0]["environment"] == "pasty"
    assert dev.rows("SELECT detail FROM event_log WHERE action = 'recorded'") == [
        {"detail": json.dumps({"id": deployment_id})}
    ]
    sent = [json.loads(s["body"]) for s in statuses]
    assert [s["deployment_status"]["state"] for s in sent] == ["in_progress", "success"]
    for status in sent:
        assert status["action"] == "created"
        assert status["deployment"]["id"] == deployment_id
        assert status["deployment"]["sha"] == body["ref"]
        assert status["deployment"]["environment"] == "pasty"
        assert status["deployment"]["payload"] == body["payload"]
        assert status["repository"]["id"] == push_payload()["repository"]["id"]
        assert status["installation"] == {"id": 957387}
    await dev.until(lambda: dev.rows("SELECT deploy_step FROM dev_github_calls")[0]["deploy_step"])
    real = fixture("deployment_status")  # GitHub's own body: ours carries every field it has
    for part in ("deployment_status", "deployment"):
        assert set(real[part]) <= set(sent[1][part])
    assert set(real) <= set(sent[1])


async def test_send_signs_a_slash_command_for_the_dev_server(dev, capsys):
    secret = dev.secrets.slack_signing_secret
    argv = ["send", "--url", dev.url, "--secret", secret, "/ship", "help"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("*promobot* carries") and "/ship status" in out
    argv = ["send", "--url", dev.url, "--secret", "wrong", "/ship", "help"]
    assert await asyncio.to_thread(cli.main, argv) == 1
    assert "HTTP 401" in capsys.readouterr().err


async def test_user_groups_and_responses_are_local(dev):
    token = {"Authorization": f"Bearer {dev.secrets.slack_bot_token}"}
    path, group = "/dev/slack/api/usergroups.users.list", {"usergroup": "S0RELEASE"}
    assert (await (await dev.client.post(path, json=group)).json())["error"] == "not_authed"
    answer = await dev.client.post(path, json=group, headers=token)
    assert (await answer.json())["users"] == ["U0DEVBOB", "U0DEVCAT"]
    await dev.client.post("/dev/slack/respond", json={"text": "Promoted #3 to baklava"})
    assert "Promoted #3 to baklava" in "".join(dev.console)
    assert dev.rows("SELECT kind, text FROM dev_messages") == [
        {"kind": "response", "text": "Promoted #3 to baklava"}
    ]


async def test_the_demo_plays_its_story_over_signed_http_and_carries_on(
    aiohttp_client, tmp_path, config
):
    story = scale_soaks(config, 900)  # 15m and 30m soaks become 1s and 2s
    dev = await start_dev(aiohttp_client, tmp_path, story, demo=True, demo_patience=0.3)
    await dev.until(lambda: "that was the story" in "".join(dev.console), timeout=60)
    shown = "".join(dev.console)
    for typed in (
        "ada types: /ship promote pasty to baklava",
        "ada types: /promote baklava to dumpling",
        'ada types: /ship lock baklava "release 2026.11 under test" for 2h',
        "cat types: /ship rollback pasty",
        "ada types: /ship status",
    ):
        assert typed in shown
    assert "ci/test goes red" in shown
    rows = dev.rows("SELECT event, count(*) AS n FROM deliveries GROUP BY event")
    events = {row["event"]: row["n"] for row in rows}
    assert (events["push"], events["status"]) == (5, 20)
    builds = dev.rows("SELECT number, ci_state FROM builds ORDER BY number")
    assert [b["ci_state"] for b in builds] == ["success", "failure", *["success"] * 3]
    assert "was refused" not in shown  # every request was signed and accepted
    # The answer to /ship status names people as Slack would show them, not by their IDs.
    answer = shown.split("ada types: /ship status")[1]
    assert "locked by @ada" in answer and "@U012ABC" not in answer
