"""Forgiving chat: near misses get a suggestion, reasons need no quotes, help shows examples."""

from bot.core.commands import USAGE


async def test_a_near_miss_verb_or_stage_gets_a_suggestion_and_changes_nothing(bot, clock):
    await bot.green(1)
    answer = await bot.ship("stauts")
    assert answer.startswith(":warning: `stauts` is not a /ship command. Did you mean `status`?")
    answer = await bot.ship("promote #1 baklav", user="U111")
    assert "`baklav` is not a stage (pasty, baklava, dumpling). Did you mean `baklava`?" in answer
    assert "Did you mean" not in await bot.ship("frobnicate")  # nothing close: no guess
    assert bot.deployments("baklava") == []


async def test_reasons_may_be_the_rest_of_the_line_without_quotes(bot, clock):
    await bot.green(1)
    answer = await bot.ship("lock dumpling db migration for 2h", user="U0GROUP")
    assert answer == ":lock: dumpling is locked for 2h."
    (lock,) = bot.h.rows("SELECT reason, expires_at - created_at AS lasts FROM locks")
    assert lock == {"reason": "db migration", "lasts": 7200}
    await bot.ship("unlock dumpling", user="U0GROUP")
    await bot.ship("lock dumpling quarterly audit", user="U0GROUP")
    assert bot.h.rows("SELECT reason, expires_at FROM locks WHERE lifted_at IS NULL") == [
        {"reason": "quarterly audit", "expires_at": None}
    ]
    quoted = await bot.ship('lock baklava "x" for ever', user="U0GROUP")
    assert "`for ever` is not a duration like `for 2h`" in quoted  # still refused
    await bot.ship("freeze release day", user="U0GROUP")
    assert bot.h.rows("SELECT reason FROM freezes") == [{"reason": "release day"}]


async def test_help_shows_an_example_for_every_verb_that_takes_arguments(bot):
    answer = await bot.ship("help")
    for verb, usage in USAGE.items():
        (line,) = [line for line in answer.splitlines() if line.startswith(f"• `{usage}`")]
        if "<" in usage:
            assert " — e.g. `/ship " + verb in line, line


async def test_history_of_one_build_tells_its_story_in_sentences(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    await bot.ship("promote #1 to baklava", user="U111")
    await bot.report("baklava", "failure")
    story = await bot.ship("history #1")
    lines = story.splitlines()
    assert lines[0] == "*Build #1* `0000001` Change 1"
    said = [line.split(" ", 3)[3] for line in lines[1:]]  # after "• MM-DD HH:MM"
    assert "octocat pushed build #1." in said
    assert "CI went green." in said
    assert "#1 went live in pasty." in said
    assert "<@U111> promoted #1 into baklava (promotion 2)." in said
    assert "The deployment of #1 to baklava failed." in said
    assert not any("{" in line for line in said)
