"""One channel rule: a channel app.yaml names by ID or by #name answers for its repositories."""

import dataclasses

import pytest

from bot.core.channels import is_channel
from tests.conftest import push_payload, status_payload

# A slash command names its channel both ways, as Slack sends it.
RELEASES = {"channel": "C0RELEASES", "channel_name": "releases"}
MINGLE = {"channel": "C0MINGLE", "channel_name": "mingle-releases"}
RANDOM = {"channel": "C0RANDOM", "channel_name": "random"}
MINGLE_SHA = "7" * 40
FROZE = ":snowflake: <@U012ABC> froze merges into"


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
