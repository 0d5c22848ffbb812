"""People by name outside Slack: users.info looked up once, bounded, and the ID when it fails."""

import asyncio

import pytest

from bot.core.clock import FakeClock
from tests.pipeline_driver import Pipeline
from tests.waiting import wait_for


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(make_harness, clock, fake_slack) -> Pipeline:
    return Pipeline(await make_harness(clock=clock), clock)


async def into_baklava(bot: Pipeline, clock: FakeClock, user: str) -> str:
    """Bring build 1 to pasty, then have `user` promote it to baklava; return the answer."""
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    return await bot.ship("promote #1 to baklava", user=user)


async def test_github_says_who_asked_by_name_and_a_failure_pings_them_in_slack(bot, clock):
    bot.slack.users["U111"] = "Grace Hopper"
    answer = await into_baklava(bot, clock, "U111")
    assert ":rocket:" in answer
    (baklava,) = bot.deployments("baklava")
    assert baklava["description"] == "#1 to baklava for Grace Hopper"
    assert baklava["payload"]["requested_by"] == "U111"  # machines get the ID
    await bot.ship("status", user="U111")
    assert len(bot.slack.of("users.info")) == 1  # asked once, then kept
    await bot.report("baklava", "failure")
    replies = [c.body["text"] for c in bot.slack.of("chat.postMessage") if c.body.get("thread_ts")]
    # Inside Slack, a mention where it should notify: the deployment they asked for failed.
    assert any(
        r.startswith("❌ Deployment to *baklava* failed") and "<@U111>" in r for r in replies
    )


async def test_a_slow_or_failing_users_info_never_holds_up_the_answer(bot, clock):
    bot.slack.delays["users.info"] = 30.0  # far past the lookup's bound, and Slack's 3 s
    answer = await into_baklava(bot, clock, "U111")
    assert ":rocket:" in answer
    assert bot.deployments("baklava")[0]["description"] == "#1 to baklava for U111"
    bot.slack.delays.clear()
    bot.slack.fail("users.info", 500)
    assert "*pasty*" in await bot.ship("status", user="U222")
    stored = bot.h.rows("SELECT user_id, name FROM people")
    assert stored == []  # nothing wrong is kept: both are asked for again next time


async def test_news_of_a_persons_own_doing_names_them_without_a_ping(bot, clock):
    bot.slack.users.update({"U111": "Grace Hopper", "U0GROUP": "Bob"})
    bot.slack.usergroups["S0RELEASE"] = ["U0GROUP"]
    await into_baklava(bot, clock, "U111")
    await bot.ship('lock dumpling "db migration"', user="U0GROUP")
    channel = [c.body["text"] for c in bot.slack.posts()]
    assert ":lock: *Bob* locked *dumpling* until someone unlocks it: db migration" in channel
    replies = [c.body["text"] for c in bot.slack.of("chat.postMessage") if c.body.get("thread_ts")]
    assert "🚀 *Grace Hopper* promoted build #1 to *baklava*." in replies
    assert not any("<@U111>" in r or "<@U0GROUP>" in r for r in [*channel, *replies])


async def test_status_answers_without_waiting_for_a_name_and_learns_it_after(bot, clock):
    # /ship status mentions people as <@U…>, which Slack shows by name: it has no use for a
    # users.info answer, so a Slack that hangs does not hold it up even for the lookup's bound.
    await bot.green(1)
    await bot.report("pasty", "success")
    bot.slack.delays["users.info"] = 30.0
    status = await bot.ship("status", user="U111")
    assert status.splitlines()[1].startswith("• *pasty*: #1 `0000001`")
    pending = list(bot.h.services.names.later)
    assert pending, "the lookup was waited for before the answer"
    await asyncio.gather(*pending)  # it gives up after its bound, after the answer
    assert bot.h.rows("SELECT user_id FROM people") == []
    bot.slack.delays.clear()
    bot.slack.users["U222"] = "Ada Lovelace"
    await bot.ship("history", user="U222")
    await wait_for(lambda: bot.h.rows("SELECT name FROM people") == [{"name": "Ada Lovelace"}])
