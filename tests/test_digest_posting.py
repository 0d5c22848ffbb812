"""The digest as users meet it: posted once per channel per day, asked for, printed."""

import asyncio
import os

from bot.cli import digest as digest_cli
from bot.cli import main
from bot.core.clock import FakeClock
from bot.dev.fakes import FakeSlack
from tests.conftest import run_cli
from tests.history import History, at
from tests.test_digest import script_bad_day
from tests.waiting import wait_for

T = at("2026-11-24T09:30+00:00")  # half an hour after Tuesday's digest time in London


async def wait_for_claim(harness) -> None:
    await wait_for(lambda: harness.rows("SELECT * FROM digests"), what="a digest claimed")


async def test_once_per_day_across_a_restart_and_a_second_instance(make_harness, tmp_path, config):
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    history.close()

    first = await make_harness(clock=FakeClock(T), digest_schedule=True)
    await wait_for_claim(first)
    await first.settle()
    (post,) = first.slack.posts("#releases")
    assert post.body["blocks"][0]["text"]["text"].startswith("Daily digest for Tue 24 Nov 2026")
    assert "Failed builds" in str(post.body["blocks"])

    # A restart (and a second instance on the same database) the same day posts nothing.
    for _ in range(2):
        again = await make_harness(clock=FakeClock(T + 3600), digest_schedule=True)
        await asyncio.sleep(0.1)
        await again.settle()
    assert len(first.slack.posts("#releases")) == 1
    assert first.rows("SELECT channel, day FROM digests") == [
        {"channel": "#releases", "day": "2026-11-24"}
    ]


async def test_ship_digest_shows_the_digest_only_to_the_asker(make_harness, tmp_path, config):
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    history.close()
    harness = await make_harness(clock=FakeClock(T))
    response = await harness.slash("digest")
    body = await response.json()
    assert "Flaky checks" in str(body["blocks"]) and body["text"].startswith("Daily digest")
    await harness.settle()
    assert harness.slack.posts() == [] and harness.rows("SELECT * FROM digests") == []


def test_cli_dry_run_prints_the_digest(tmp_path, config, capsys):
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    history.close()
    db = str(tmp_path / "promobot.db")
    assert main(["digest", "--dry-run", "--db", db, "--config", str(config.source)]) == 0
    out = capsys.readouterr().out
    assert "#releases: Daily digest for" in out and "Red right now:" in out


async def test_cli_digest_posts_once_and_relays_it(tmp_path, config, fake_slack, monkeypatch):
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    history.close()
    api = str(fake_slack.server.make_url("/api/"))
    db = tmp_path / "promobot.db"
    assert await digest_cli._post(config, db, FakeSlack.TOKEN, api) == ["#releases"]
    assert await digest_cli._post(config, db, FakeSlack.TOKEN, api) == []
    (post,) = fake_slack.posts("#releases")
    assert "Red right now" in str(post.body["blocks"])


async def test_cli_digest_needs_only_the_slack_token(tmp_path, config, fake_slack):
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    history.close()
    args = ("digest", "--db", str(tmp_path / "promobot.db"), "--config", str(config.source))
    env = {"PATH": os.environ["PATH"], "SLACK_API_URL": str(fake_slack.server.make_url("/api/"))}
    code, _, err = await run_cli(*args, env=env)
    assert code == 1
    assert err.strip() == "error: SLACK_BOT_TOKEN: missing from the environment"
    assert fake_slack.posts() == []
    # No GitHub secret and no signing secret: the token is all that posting uses.
    code, out, err = await run_cli(*args, env={**env, "SLACK_BOT_TOKEN": FakeSlack.TOKEN})
    assert (code, err) == (0, "")
    assert out.strip() == "digest queued and relayed for #releases"
    (post,) = fake_slack.posts("#releases")
    assert "Red right now" in str(post.body["blocks"])


async def test_a_build_rolled_back_out_of_its_stage_is_not_said_to_wait_there(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.green(2)
    await bot.report("pasty", "success")
    assert "Rolling back pasty to #1" in await bot.ship("rollback pasty", user="U111")
    await bot.report("pasty", "success")
    clock.advance(2 * 86400.0)
    digest = await (await bot.h.slash("digest")).json()
    shown = str(digest["blocks"])
    assert "Waiting over a day" in shown and "has waited in pasty for 2d" in shown
    assert "|#1>" in shown  # pasty runs #1 again, and it waits for baklava
    assert "|#2>" not in shown  # #2 was rolled back out of pasty: it waits nowhere
