"""/ship where: which stages a commit, a build, a pull request or a person's change has reached."""

from bot.core.clock import FakeClock
from tests.pipeline_driver import Pipeline, commit, push, sha


async def two_builds_apart(bot: Pipeline, clock: FakeClock) -> None:
    """Build 1 (PR #120 by ada) reaches baklava; build 2 (PR #121 by grace) only pasty."""
    await push(bot, 1, [commit(1, 0, "Speed up the cache (#120)", "ada")])
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    await bot.ship("promote #1 to baklava", user="U111")
    await bot.report("baklava", "success")
    clock.advance(5 * 60)
    await push(
        bot,
        2,
        [
            commit(2, 0, "Escape titles", "grace"),
            commit(2, 1, "Merge pull request #121 from grace/escape", "grace"),
        ],
    )
    await bot.report("pasty", "success")


async def test_where_a_pull_request_is_names_its_merge_commit_and_what_holds_it(bot, clock):
    await two_builds_apart(bot, clock)
    answer = await bot.ship("where 121")
    lines = answer.splitlines()
    assert lines[0] == (
        "Pull request #121, merged as `0000002` Merge pull request #121 from grace/escape"
        " by grace went out in build *#2*."
    )
    assert lines[1].startswith("✅ *pasty* since ") and "(#2 there now)" in lines[1]
    assert lines[2] == "⏳ not in *baklava* yet (#1 there now)."
    assert "❌ soak: 15m needed in pasty: 15m left" in answer  # what holds it
    assert lines[-1] == "· not in dumpling either."


async def test_where_a_sha_a_build_and_a_login_are(bot, clock):
    await two_builds_apart(bot, clock)
    by_sha = await bot.ship("where 0002000ccc")  # a commit inside build 2's push
    assert by_sha.startswith("`0002000` Escape titles by grace went out in build *#2*.")
    by_build = await bot.ship("where #1")
    assert by_build.startswith(f"Build #1 `{sha(1)[:7]}` went out in build *#1*.")
    assert "✅ *baklava* since 2026-" in by_build and "(5m ago)" in by_build
    assert "⏳ not in *dumpling* yet (nothing deployed there yet)." in by_build
    assert "❌ approvals: needs 1 more approval(s)" in by_build
    by_login = await bot.ship("where @ada")
    assert by_login.startswith("ada's latest change, `0000001` Speed up the cache (#120) by ada")
    assert "✅ *baklava*" in by_login


async def test_where_something_unknown_says_so_and_changes_nothing(bot, clock):
    await two_builds_apart(bot, clock)
    assert await bot.ship("where 999") == (
        ":mag: no stored commit names pull request #999 (is it merged?)."
    )
    assert await bot.ship("where nobody-here") == (
        ":mag: no stored commit has a sha or an author `nobody-here`."
    )
    bad = await bot.ship("where what?!")
    assert "is not a sha, #build, PR number or login" in bad and "Usage: `/ship where" in bad
