"""The dev loop shows every path: failing deployments, buttons, whole answers, the digest."""

import asyncio
import dataclasses
import json

import aiohttp
import pytest

from bot import cli
from bot.dev import client as devclient
from bot.dev import forms
from bot.dev import mode as dev
from tests.conftest import push_payload, status_payload
from tests.devsupport import start_dev
from tests.history import History
from tests.test_digest import script_bad_day


@pytest.fixture
def config(config):
    # No soak: the dev deployer finishes in a blink and promotions may follow at once.
    stages = tuple(dataclasses.replace(s, soak=0) for s in config.pipeline.stages)
    return dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, stages=stages))


def outcomes(harness, stage: str) -> list[str]:
    """Return the final states the dev deployer reported for `stage` and promobot applied."""
    # Applied, not only stored: a command that follows must find the stage deployed.
    bodies = harness.rows(
        "SELECT body FROM deliveries WHERE event = 'deployment_status'"
        " AND state IN ('done', 'ignored')"
    )
    sent = [json.loads(b["body"]) for b in bodies]
    return [
        s["deployment_status"]["state"]
        for s in sent
        if s["deployment"]["environment"] == stage
        and s["deployment_status"]["state"] != "in_progress"
    ]


async def green(harness, n: int) -> None:
    """Push build `n` and pass its CI (pasty takes it on its own)."""
    sha = f"{n:x}" * 40
    await harness.deliver("push", push_payload(sha, message=f"Change {n}"))
    await harness.deliver("status", status_payload(sha, state="success"))


async def test_fail_next_fails_one_deployment_into_the_stage(aiohttp_client, tmp_path, config):
    harness = await start_dev(aiohttp_client, tmp_path, config)
    refused = await harness.client.post("/dev/fail-next", data={"stage": "production"})
    assert refused.status == 400 and "pasty, baklava, dumpling" in await refused.text()
    answer = await harness.client.post("/dev/fail-next", data={"stage": "pasty"})
    assert await answer.text() == "the next deployment into pasty will fail"
    await green(harness, 1)
    await harness.until(lambda: outcomes(harness, "pasty") == ["failure"])
    await green(harness, 2)
    await harness.until(lambda: outcomes(harness, "pasty") == ["failure", "success"])
    # The deliveries are stored before the worker applies them: wait for the table too.
    states = "SELECT state FROM deployments ORDER BY id"
    await harness.until(
        lambda: harness.rows(states) == [{"state": "failure"}, {"state": "success"}]
    )


async def test_deploy_failures_fail_that_share_of_deployments(aiohttp_client, tmp_path, config):
    harness = await start_dev(aiohttp_client, tmp_path, config, deploy_failures=1.0)
    await green(harness, 1)
    await harness.until(lambda: outcomes(harness, "pasty") == ["failure"])
    assert "100% of them failing" in dev.banner(
        config, config, harness.secrets, dev.DevMode(deploy_failures=1.0), "x.db"
    )


async def ship(harness, text: str, user: str = "U012ABC") -> str:
    """Type a /ship command into the dev server, signed as Slack would; return the answer."""
    form = forms.slash_form(
        text, user=user, user_name=user.lower(), response_url=harness.url + "/dev/slack/respond"
    )
    async with aiohttp.ClientSession() as session:
        secret = harness.secrets.slack_signing_secret
        status, body = await devclient.post_slack(session, harness.url, secret, form)
    assert status == 200
    return str(json.loads(body).get("text")) if body.startswith("{") else body


async def waiting_in_dumpling(harness) -> int:
    """Bring build 1 to a promotion into dumpling that waits for approval; return its number."""
    await green(harness, 1)
    await harness.until(lambda: outcomes(harness, "pasty") == ["success"])
    await ship(harness, "promote #1 baklava")
    await harness.until(lambda: outcomes(harness, "baklava") == ["success"])
    answer = await ship(harness, "promote #1 dumpling")
    assert "waits for approval" in answer
    (row,) = harness.rows("SELECT id FROM promotions WHERE state = 'waiting'")
    posted = "SELECT ts FROM slack_messages WHERE key = ?"
    await harness.until(lambda: harness.rows(posted, [f"promotion:{row['id']}"]))
    return row["id"]


def state_file(harness, tmp_path) -> str:
    """Write the state file `make run` writes, for this dev server."""
    path = tmp_path / "state.json"
    dev.write_state(path, harness.secrets, harness.url, str(harness.db_path))
    return str(path)


async def test_click_approve_from_the_console(aiohttp_client, tmp_path, config, capsys):
    harness = await start_dev(aiohttp_client, tmp_path, config)
    promotion = await waiting_in_dumpling(harness)
    argv = ["click", "approve", str(promotion), "--as", "U0DEVBOB"]
    argv += ["--state", state_file(harness, tmp_path)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    assert "Approved" in out and "HTTP" not in out
    assert harness.rows("SELECT state FROM promotions WHERE id = ?", [promotion]) != [
        {"state": "waiting"}
    ]
    await harness.until(lambda: outcomes(harness, "dumpling") == ["success"])


async def test_click_reject_with_a_reason_from_the_console(
    aiohttp_client, tmp_path, config, capsys
):
    harness = await start_dev(aiohttp_client, tmp_path, config)
    promotion = await waiting_in_dumpling(harness)
    state = state_file(harness, tmp_path)
    argv = ["click", "reject", str(promotion), "--as", "U0DEVCAT", "--state", state]
    assert await asyncio.to_thread(cli.main, argv) == 2  # a reason is needed
    assert "say why" in capsys.readouterr().err
    argv = [*argv, "not", "reviewed", "yet"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert capsys.readouterr().out == f"❌ Promotion {promotion} rejected.\n"
    assert harness.rows("SELECT state, reason FROM promotions WHERE id = ?", [promotion]) == [
        {"state": "rejected", "reason": "not reviewed yet"}
    ]


async def test_send_prints_the_whole_answer_with_names_and_no_status_line(dev_server, capsys):
    secret = dev_server.secrets.slack_signing_secret
    await green(dev_server, 1)
    await dev_server.settle()
    argv = ["send", "--url", dev_server.url, "--secret", secret, "--as", "U0DEVBOB"]
    assert await asyncio.to_thread(cli.main, [*argv, "/ship", "lock", "pasty", "db", "work"]) == 0
    assert await asyncio.to_thread(cli.main, [*argv, "/ship", "status"]) == 0
    out = capsys.readouterr().out
    assert not out.startswith("HTTP") and "locked by @bob" in out  # a name, not U0DEVBOB
    assert await asyncio.to_thread(cli.main, [*argv, "/ship", "digest"]) == 0
    digest = capsys.readouterr().out
    assert digest.startswith("Daily digest for")  # the blocks, as Slack shows them


def test_digest_dry_run_finds_the_database_make_run_made(tmp_path, config, capsys, monkeypatch):
    history = History(tmp_path / dev.DEV_DB, config)
    script_bad_day(history)
    history.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMOBOT_DB", raising=False)
    assert cli.main(["digest", "--dry-run", "--config", str(config.source)]) == 0
    out, err = capsys.readouterr()
    assert "reading promobot-dev.db, the database `make run` made" in err
    assert "Daily digest for" in out and not (tmp_path / "promobot.db").exists()


@pytest.fixture
async def dev_server(aiohttp_client, tmp_path, config):
    return await start_dev(aiohttp_client, tmp_path, config)


async def test_a_dev_server_shutting_down_sends_no_more_deployment_steps(
    aiohttp_client, tmp_path, config, caplog
):
    # The deployer posts each step to the dev server itself: once the server stopped
    # listening, every step due in the shutdown's grace was refused, each with a warning.
    harness = await start_dev(aiohttp_client, tmp_path, config, deploy_delay=0.5)
    await green(harness, 1)
    steps = "SELECT 1 FROM deliveries WHERE event = 'deployment_status'"
    await harness.until(lambda: harness.rows(steps))  # in progress; its success is due soon
    await harness.client.close()
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == []
