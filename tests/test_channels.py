"""One channel rule: a channel app.yaml names by ID or by #name answers for its repositories."""

import dataclasses

import pytest

from bot.cli import digest as digest_cli
from bot.core import ci
from bot.core.channels import is_channel, same_channels
from bot.core.clock import FakeClock
from bot.dev.fakes import FakeSlack
from bot.pipeline import workflows
from tests.conftest import push_payload, status_payload
from tests.history import History, at
from tests.test_digest import script_bad_day
from tests.waiting import wait_for

# A slash command names its channel both ways, as Slack sends it.
RELEASES = {"channel": "C0RELEASES", "channel_name": "releases"}
MINGLE = {"channel": "C0MINGLE", "channel_name": "mingle-releases"}
RANDOM = {"channel": "C0RANDOM", "channel_name": "random"}
MINGLE_SHA = "7" * 40
FROZE = ":snowflake: <@U012ABC> froze merges into"
T = at("2026-11-24T09:30+00:00")  # half an hour after Tuesday's digest time in London


def mingle_push() -> dict:
    payload = push_payload(MINGLE_SHA)
    payload["repository"].update(id=7, full_name="acme/mingle", name="mingle")
    return payload


@pytest.fixture(params=["by ID", "by #name"])
async def bot(request, make_harness, config):
    """Promobot with slack.channel and acme/mingle's channel named one way; main is red."""
    by_id = request.param == "by ID"
    config = dataclasses.replace(
        config,
        channel="C0RELEASES" if by_id else "#releases",
        channels={"acme/mingle": "C0MINGLE" if by_id else "#mingle-releases"},
    )
    harness = await make_harness(config_=config)
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="failure"))
    await harness.deliver("push", mingle_push())
    await harness.settle()
    return harness


async def answer(bot, text: str, where: dict) -> str:
    return await (await bot.slash(text, user="U012ABC", **where)).text()


async def test_each_channel_freezes_only_its_own_repositories(bot):
    said = await answer(bot, 'freeze "release day"', RELEASES)
    assert ":snowflake: merges into Codertocat/Hello-World are frozen: release day." in said
    said = await answer(bot, 'freeze "mingle too"', MINGLE)
    assert ":snowflake: merges into acme/mingle are frozen: mingle too." in said
    await bot.settle()
    frozen = bot.rows(
        "SELECT r.full_name, f.reason FROM freezes f JOIN repositories r ON r.id = f.repo_id"
        " ORDER BY r.full_name"
    )
    assert frozen == [
        {"full_name": "acme/mingle", "reason": "mingle too"},
        {"full_name": "Codertocat/Hello-World", "reason": "release day"},
    ]
    told = {
        bot.slack.channel_id(p.body["channel"]): p.body["text"]
        for p in bot.slack.posts()
        if p.body["text"].startswith(FROZE)
    }
    assert told == {
        "C0RELEASES": f"{FROZE} Codertocat/Hello-World: release day",
        "C0MINGLE": f"{FROZE} acme/mingle: mingle too",
    }


async def test_each_channel_sees_its_own_status_and_digest(bot):
    status = await answer(bot, "status", RELEASES)
    assert "*Codertocat/Hello-World*" in status and "acme/mingle" not in status
    status = await answer(bot, "status", MINGLE)
    assert "*acme/mingle*" in status and "Hello-World" not in status
    digest = await (await bot.slash("digest", **RELEASES)).json()
    assert digest["text"].startswith("Daily digest for") and "1 failed build(s)" in digest["text"]
    assert ":red_circle: main is red since" in str(digest["blocks"])
    digest = await (await bot.slash("digest", **MINGLE)).json()
    assert digest["text"].startswith("Daily digest for") and "0 failed build(s)" in digest["text"]
    assert "main is green" in digest["text"] and "red since" not in str(digest["blocks"])


async def test_another_channel_is_told_it_follows_nothing_and_changes_nothing(bot):
    for text in ('freeze "x"', "digest", "status", "unfreeze"):
        said = await answer(bot, text, RANDOM)
        assert "this channel follows no repository" in said, text
        assert "Hello-World" not in said and "mingle" not in said, text
    elsewhere = await answer(bot, "status acme/mingle", RELEASES)
    assert "`acme/mingle` is followed in" in elsewhere and "not here" in elsewhere
    await bot.settle()
    assert bot.rows("SELECT * FROM freezes") == []
    assert not [p for p in bot.slack.posts() if p.body["text"].startswith(":snowflake:")]


def test_an_id_is_matched_by_id_and_a_name_by_name():
    assert is_channel("C0RELEASES", "C0RELEASES", "releases")
    assert not is_channel("C0RELEASES", "C0OTHER", "c0releases")  # never by name
    for configured in ("#releases", "releases", "#Releases"):
        assert is_channel(configured, "C0ANYID", "releases"), configured
    assert not is_channel("#releases", "C0RELEASES", "")  # a click carries no channel name
    assert not is_channel("#releases", "C0RANDOM", "random")


# Hello-World's channel is C0RELEASES, mingle's #releases: one Slack channel, named both ways.
ONE_CHANNEL = {"channel": "C0RELEASES", "channels": {"acme/mingle": "#releases"}}


def one_channel_history(tmp_path, config) -> None:
    """Hello-World's bad day and a red build of mingle, each reporting to the one channel."""
    history = History(tmp_path / "promobot.db", config)
    script_bad_day(history)
    mingle = workflows.Repo(7, "acme/mingle", "https://github.com/acme/mingle", 957387)
    push = workflows.Push(mingle, MINGLE_SHA, "change", "octocat", "https://c/7", 1, T - 3600)
    workflows.apply_push(history.tx(T - 3600), push)
    red = ci.Report(7, MINGLE_SHA, "ci/test", "status", "failure", None, "https://ci/7", T - 600)
    workflows.apply_report(history.tx(T - 600), mingle, red)
    history.close()


def the_one_digest(slack: FakeSlack) -> dict:
    (digest,) = slack.posts()
    assert slack.channel_id(digest.body["channel"]) == "C0RELEASES"
    shown = str(digest.body["blocks"])
    assert "— Codertocat/Hello-World" in shown and "— acme/mingle" in shown
    return digest.body


async def test_a_channel_named_by_id_and_by_name_gets_one_digest_a_day(
    make_harness, config, tmp_path
):
    config = dataclasses.replace(config, **ONE_CHANNEL)
    one_channel_history(tmp_path, config)
    bot = await make_harness(config_=config, clock=FakeClock(T), digest_schedule=True)
    await wait_for(lambda: bot.rows("SELECT * FROM digests"), what="a digest claimed")
    await bot.settle()
    digest = the_one_digest(bot.slack)
    assert digest["text"].startswith("Daily digest for Tue 24 Nov 2026")
    assert "4 failed build(s)" in digest["text"]  # 3 in Hello-World, 1 in mingle
    assert bot.rows("SELECT channel FROM digests ORDER BY channel") == [
        {"channel": "#releases"},
        {"channel": "C0RELEASES"},
    ]


async def test_the_cli_digest_posts_once_in_a_channel_named_both_ways(tmp_path, config, fake_slack):
    config = dataclasses.replace(config, **ONE_CHANNEL)
    one_channel_history(tmp_path, config)
    api = str(fake_slack.server.make_url("/api/"))
    db = tmp_path / "promobot.db"
    assert await digest_cli._post(config, db, FakeSlack.TOKEN, api) == ["#releases"]
    assert await digest_cli._post(config, db, FakeSlack.TOKEN, api) == []
    the_one_digest(fake_slack)


async def test_a_freeze_is_announced_once_in_a_channel_named_both_ways(make_harness, config):
    config = dataclasses.replace(config, **ONE_CHANNEL)
    bot = await make_harness(config_=config)
    await bot.deliver("push", push_payload())
    await bot.deliver("push", mingle_push())
    await bot.settle()
    for text in ('freeze "release day"', "unfreeze"):
        said = await answer(bot, text, RELEASES)
        assert "acme/mingle, Codertocat/Hello-World" in said, text
    await bot.settle()
    told = [
        p.body for p in bot.slack.posts() if p.body["text"].startswith((":snowflake:", ":sunny:"))
    ]
    assert [(bot.slack.channel_id(p["channel"]), p["text"][:20]) for p in told] == [
        ("C0RELEASES", FROZE[:20]),
        ("C0RELEASES", ":sunny: <@U012ABC> l"),
    ]


def test_spellings_and_ids_of_one_channel_are_one_group():
    configured = ["#Releases", "releases", "C0RELEASES", "#other"]
    assert same_channels(configured, {}) == [
        ("#Releases", "releases"),
        ("#other",),
        ("C0RELEASES",),
    ]
    assert same_channels(configured, {"releases": "C0RELEASES"}) == [
        ("#Releases", "releases", "C0RELEASES"),
        ("#other",),
    ]
