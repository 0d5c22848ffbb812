"""The GitHub App's manifest flow: one click to create it, its code exchanged once, kept 0600."""

import dataclasses
import json
import os
import re
import stat
from html import unescape

import aiohttp

from bot.cli import main
from bot.config import load_secrets
from bot.dev.fakes import FakeSlack
from tests.conftest import ROOT, SIGNING_SECRET
from tests.test_crash import Server, free_port

CONVERT = "POST /app-manifests/{code}/conversions"


async def unset_up(make_harness, secrets):
    """Start promobot with Slack's secrets and no GitHub App yet."""
    bare = dataclasses.replace(
        secrets, github_app_id="", github_private_key="", github_webhook_secret=""
    )
    return await make_harness(secrets_=bare)


async def test_one_click_then_the_code_is_exchanged_once_and_kept_private(
    make_harness, secrets, fake_github
):
    harness = await unset_up(make_harness, secrets)
    start = await harness.client.get("/github/setup")
    assert start.status == 200
    form = await start.text()
    action = re.search(r"action='([^']+)'", form).group(1)
    state = unescape(action).split("state=")[1]
    manifest = json.loads(unescape(re.search(r"name='manifest' value='([^']+)'", form).group(1)))
    assert manifest["redirect_url"] == "https://promobot.example.com/github/setup"
    assert manifest["hook_attributes"]["url"] == "https://promobot.example.com/github/webhooks"
    assert unescape(action).startswith(str(fake_github.server.make_url("/settings/apps/new")))

    fake_github.manifest_codes.add("a1b2c3")
    done = await harness.client.get(f"/github/setup?code=a1b2c3&state={state}")
    assert done.status == 200
    text = await done.text()
    path = harness.db_path.parent / "promobot-github-app.json"
    assert str(path) in text and "GITHUB_PRIVATE_KEY_FILE" in text and "Restart" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())
    created = fake_github.created_app
    assert (kept["app_id"], kept["webhook_secret"], kept["pem"]) == (
        created["id"],
        created["webhook_secret"],
        created["pem"],
    )
    assert created["webhook_secret"] not in text and "PRIVATE KEY" not in text

    # The same link again, or another code: refused without asking GitHub.
    for query in (f"code=a1b2c3&state={state}", "code=zzz&state=forged", ""):
        assert (await harness.client.get(f"/github/setup?{query}")).status == 409
    assert len(fake_github.of(CONVERT)) == 1

    # The file is what GITHUB_PRIVATE_KEY_FILE points at: it brings the id and secret too.
    env = {
        "GITHUB_PRIVATE_KEY_FILE": str(path),
        "SLACK_BOT_TOKEN": "x",
        "SLACK_SIGNING_SECRET": "y",
    }
    loaded = load_secrets(env)
    assert loaded.github_app_id == str(created["id"]) and loaded.github_private_key.startswith(
        "-----BEGIN RSA PRIVATE KEY-----"
    )
    assert loaded.github_webhook_secret == created["webhook_secret"]


async def test_a_link_promobot_did_not_start_or_a_refused_code_changes_nothing(
    make_harness, secrets, fake_github
):
    harness = await unset_up(make_harness, secrets)
    forged = await harness.client.get("/github/setup?code=a1b2c3&state=forged")
    assert forged.status == 400 and fake_github.of(CONVERT) == []
    form = await (await harness.client.get("/github/setup")).text()
    state = unescape(re.search(r"state=([^']+)'", form).group(1))
    expired = await harness.client.get(f"/github/setup?code=expired&state={state}")
    assert expired.status == 502 and "GitHub did not accept the code" in await expired.text()
    again = await harness.client.get(f"/github/setup?code=expired&state={state}")
    assert again.status == 400  # the state is spent: one exchange per click
    assert len(fake_github.of(CONVERT)) == 1
    assert not (harness.db_path.parent / "promobot-github-app.json").exists()


async def test_the_route_is_gone_once_the_app_is_configured(harness, fake_github):
    assert (await harness.client.get("/github/setup")).status == 404
    assert (await harness.client.get("/github/setup?code=a1b2c3&state=x")).status == 404
    assert fake_github.of(CONVERT) == []


def test_the_manifest_redirects_to_the_setup_route(capsys):
    main(["manifest", "github", "--config", str(ROOT / "app.yaml"), "--url", "https://b.example"])
    assert json.loads(capsys.readouterr().out)["redirect_url"] == "https://b.example/github/setup"


async def test_serve_starts_for_the_set_up_without_any_github_secret(tmp_path, fake_slack):
    env = {
        "PATH": os.environ["PATH"],
        "SLACK_BOT_TOKEN": FakeSlack.TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": str(fake_slack.server.make_url("/api/")),
    }
    log = tmp_path / "serve.log"
    server = Server(tmp_path / "promobot.db", free_port(), env, log)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}"
            async with session.get(f"{url}/github/setup") as page:
                assert page.status == 200 and "Create the GitHub App" in await page.text()
            async with session.post(f"{url}/github/webhooks", data=b"{}") as hook:
                assert hook.status == 401  # no webhook secret yet: nothing is accepted
    finally:
        server.stop()
    assert "open https://promobot.example.com/github/setup to create it" in log.read_text()
