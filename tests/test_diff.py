"""The diff of a promotion: what goes into a stage, or comes out of it, where people decide."""

import re

import pytest

from bot.core import diff
from bot.core.clock import FakeClock
from handlers import payloads
from tests.pipeline_driver import REPO_URL, Pipeline, commit, push, sha


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(make_harness, clock, fake_slack) -> Pipeline:
    fake_slack.usergroups["S0RELEASE"] = ["U0GROUP", "U0SECOND"]
    return Pipeline(await make_harness(clock=clock), clock)


def promotion_of(answer: str) -> int:
    """Return the promotion number an answer names."""
    return int(re.search(r"Promotion (\d+)", answer).group(1))  # type: ignore[union-attr]


async def in_production(bot: Pipeline, clock: FakeClock) -> None:
    """Bring build 1 through every stage into dumpling."""
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    await bot.ship("promote #1 to baklava", user="U111")
    await bot.report("baklava", "success")
    clock.advance(31 * 60)
    await bot.ship("#1 dumpling", command="/promote")
    await bot.click("approve", 3, user="U0GROUP")
    await bot.report("dumpling", "success")


async def three_ahead(bot: Pipeline) -> None:
    """Push builds 2, 3 and 4: seven commits by four people, two naming pull requests."""
    await push(bot, 2, [commit(2, 0, "Speed up the cache (#120)", "ada")])
    await push(
        bot,
        3,
        [
            commit(3, 0, "Add <!channel> escaping", "grace"),
            commit(3, 1, "Fix a typo", "ada"),
            commit(3, 2, "Merge pull request #121 from grace/escape", "grace"),
        ],
    )
    await push(
        bot,
        4,
        [
            commit(4, 0, "Bump the parser", "linus"),
            commit(4, 1, "Drop Python 3.9", "ken"),
            commit(4, 2, "Release notes", "ada"),
        ],
    )


async def test_the_approval_message_shows_the_builds_and_commits_going_out(bot, clock):
    await in_production(bot, clock)
    await three_ahead(bot)
    answer = await bot.ship('promote #4 dumpling --force "hotfix"', user="U0SECOND")
    assert "waits for approval" in answer
    assert "*3 builds, 7 commits by 4 people since #1 in dumpling*" in answer
    (shown,) = [
        b["text"]["text"]
        for b in bot.approval_message(promotion_of(answer))["blocks"]
        if b["type"] == "section" and "builds" in b["text"]["text"]
    ]
    lines = shown.splitlines()
    assert lines[0] == (
        f"*3 builds, 7 commits by 4 people since #1 in dumpling* ·"
        f" <{REPO_URL}/compare/{sha(1)[:12]}...{sha(4)[:12]}|compare on GitHub>"
    )
    numbers = [line.split("*")[1] for line in lines if line.startswith("• ")]
    assert numbers == ["#4", "#3", "#2"]  # newest first
    assert "    ◦ Release notes — ada" in lines
    assert "    ◦ Speed up the cache (#120) — ada" in lines
    assert "    ◦ Add &lt;!channel&gt; escaping — grace" in lines  # pings nobody
    assert "    ◦ Merge pull request #121 from grace/escape — grace" in lines


async def test_a_rollback_says_how_many_builds_it_takes_out(bot, clock):
    await in_production(bot, clock)
    await three_ahead(bot)
    asked = await bot.ship('promote #4 dumpling --force "hotfix"', user="U0SECOND")
    await bot.click("approve", promotion_of(asked), user="U0GROUP")
    await bot.report("dumpling", "success")
    answer = await bot.ship("rollback dumpling to #1", user="U0GROUP")
    assert "Rolling back dumpling to #1" in answer
    assert "↩️ *rollback of 3 builds in dumpling (#4 → #1), taking out 7 commits by 4 people*" in (
        answer
    )
    assert f"compare/{sha(1)[:12]}...{sha(4)[:12]}" in answer
    assert "• *#4*" in answer and "_(taken out)_" in answer


async def test_a_push_at_githubs_cap_sends_people_to_the_compare_view(bot, clock):
    await in_production(bot, clock)
    many = [commit(2, i, f"Generated change {i}", "bot") for i in range(diff.PUSH_CAP)]
    await push(bot, 2, many)
    answer = await bot.ship('promote #2 dumpling --force "hotfix"', user="U0SECOND")
    assert "*1 build, 2048 commits by 1 person since #1 in dumpling*" in answer
    assert "a push (#2) carried GitHub's cap of 2048 commits" in answer
    assert "◦ and 2043 more commits" in answer
    assert len(answer) < 3000  # cut to Slack's limits, the rest behind the link


def test_commit_titles_name_their_pull_requests():
    assert diff.pull_request_of("Speed up the cache (#120)") == 120
    assert diff.pull_request_of("Merge pull request #121 from grace/escape") == 121
    assert diff.pull_request_of("Fix #7 in the parser") is None
    assert diff.pull_request_of("Title (#9)\n\nA body naming (#10)") == 9
    assert payloads.author_of({"author": {"name": "Ada", "username": "ada"}}) == "ada"
    assert payloads.author_of({"author": {"name": "Ada L."}}) == "Ada L."


def test_promoting_the_live_build_changes_nothing():
    live = {"number": 5, "sha": "5" * 40}
    same = diff.assemble("pasty", live, live, [], {}, {"builds": 0}, REPO_URL)
    assert diff.mrkdwn(same) == "*#5 is already live in pasty: nothing changes*"


async def test_status_shows_what_each_stage_lacks(bot, clock):
    await in_production(bot, clock)
    await three_ahead(bot)
    compare = f"<{REPO_URL}/compare/{sha(1)[:12]}...{sha(4)[:12]}|compare>"
    first = (await bot.ship("status")).split("*Undeployed*\n")[1].splitlines()
    assert first == [
        f"• *pasty* ← #4: 3 builds, 7 commits by 4 people since #1 in pasty · {compare}"
    ]
    await bot.report("pasty", "success")  # #2, then #4 (queued behind it) goes in
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    await bot.ship("promote #4 to baklava", user="U111")
    await bot.report("baklava", "success")
    status = (await bot.ship("status")).split("*Undeployed*\n")[1].splitlines()
    assert status[0] == (
        f"• *dumpling* ← #4: 3 builds, 7 commits by 4 people since #1 in dumpling · {compare}"
    )
    assert [line.split("*")[1] for line in status if line.startswith("• *#")] == ["#4", "#3", "#2"]
    assert "    ◦ Speed up the cache (#120) — ada" in status
