"""A release manager's day without surprises: rollback, unlock, already live, the queue, locks."""

import asyncio

from bot.core.clock import FakeClock
from bot.engine.approval_sweep import sweep
from tests.pipeline_driver import Pipeline, sha
from tests.test_promote import in_baklava
from tests.waiting import wait_for


async def in_dumpling(bot: Pipeline, clock: FakeClock, n: int = 1) -> int:
    """Bring build n into dumpling, approved by U0GROUP; return its promotion."""
    await in_baklava(bot, clock, n)
    await bot.wait(31 * 60)
    answer = await bot.ship(f"promote #{n} dumpling", user="U012ABC")
    number = int(answer.split("Promotion ")[1].split(" ")[0])
    await bot.ship(f"approve {number}", user="U0GROUP")
    await bot.report("dumpling", "success")
    return number


async def test_rollback_to_a_red_build_never_live_there_is_refused_unless_forced(bot, clock):
    # Surprise 1: it went straight into production, and history called it a normal rollback.
    await in_dumpling(bot, clock, 1)
    await bot.green(2, state="failure")
    writes = ("chat.postMessage", "chat.update", "chat.postEphemeral")
    sent = (len(bot.github.deployments), len([c for c in bot.slack.calls if c.method in writes]))
    refused = await bot.ship("rollback dumpling to #2", user="U012ABC")
    assert refused == (
        ":no_entry: #2 was never live in dumpling; #2 is newer than the live #1."
        ' A promoter may add `--force "reason"`.'
    )
    assert (
        len(bot.github.deployments),
        len([c for c in bot.slack.calls if c.method in writes]),
    ) == sent
    assert [r["reason"] for r in bot.log("rollback.refused")] == [refused[11:]]
    outsider = await bot.ship('rollback dumpling to #2 --force "x"', user="U999")
    assert "not a promoter of dumpling" in outsider
    forced = await bot.ship('rollback dumpling to #2 --force "INC-9 hotfix"', user="U012ABC")
    assert "Rolling back dumpling to #2" in forced
    assert bot.deployments("dumpling")[-1]["ref"] == sha(2)
    (entry,) = bot.log("rollback")
    assert entry["forced"] == 1 and "INC-9 hotfix" in entry["reason"]
    assert "Forced past: #2 was never live in dumpling" in bot.channel_texts()[-1]
    assert ":warning: forced" in await bot.ship("history dumpling", user="U111")


async def test_after_a_rollback_unlock_never_brings_the_rolled_back_build_back(bot, clock):
    # Surprise 2: `unlock pasty` brought #2 back by automatic entry within seconds.
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.green(2)
    await bot.report("pasty", "success")
    assert "Rolling back pasty to #1" in await bot.ship("rollback pasty", user="U111")
    await bot.report("pasty", "success")
    await bot.ship("unlock pasty", user="U111")
    assert [d["payload"]["build"] for d in bot.deployments("pasty")] == [1, 2, 1]
    await bot.ship('lock pasty "bisecting"', user="U111")
    await bot.green(3)  # arrives while pasty is locked
    await bot.ship("unlock pasty", user="U111")  # the newest green build not rolled back
    assert [d["payload"]["build"] for d in bot.deployments("pasty")] == [1, 2, 1, 3]


async def test_a_rolled_back_build_comes_back_only_by_a_promotion_that_says_so(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.green(2)
    await bot.report("pasty", "success")
    await bot.ship("rollback pasty", user="U111")
    await bot.report("pasty", "success")
    await bot.ship("unlock pasty", user="U111")
    answer = await bot.ship("promote #2 pasty", user="U222")
    assert ":rocket: Deploying *#2*" in answer
    assert "#2 was rolled back out of pasty by <@U111>" in answer
    assert "(rolled back from #2)" in answer


async def test_promoting_the_build_live_in_the_stage_is_refused(bot, clock):
    # Surprise 4: it asked for approval and redeployed; the strip showed `dumpling ⏸`.
    await in_dumpling(bot, clock, 1)
    before = bot.h.rows("SELECT count(*) AS n FROM promotions")
    answer = await bot.ship("'#1' dumpling", command="/promote", user="U012ABC")
    assert answer.startswith(":no_entry: #1 is already live in dumpling since ")
    assert bot.h.rows("SELECT count(*) AS n FROM promotions") == before
    assert len(bot.deployments("dumpling")) == 1
    strip = bot.message("build:1")["text"]
    assert "dumpling ✅" in strip and "⏸" not in strip


async def test_one_lock_per_stage_and_locking_again_says_who_holds_it(bot, clock):
    await bot.green(1)
    assert "locked for 2h" in await bot.ship('lock baklava "db migration" for 2h', user="U111")
    again = await bot.ship('lock baklava "load test"', user="U222")
    assert again.startswith(":no_entry: baklava is already locked by <@U111> until ")
    assert again.endswith("(2h more): db migration.")
    assert len(bot.h.rows("SELECT * FROM locks")) == 1
    status = await bot.ship("status", user="U222")
    assert "locked by <@U111> for 2h: db migration" in status
    assert "open again" in await bot.ship("unlock baklava", user="U222")


async def test_a_newer_promotion_supersedes_the_waiting_one_and_its_requester_is_told(bot, clock):
    await in_baklava(bot, clock, 1)
    await bot.wait(60)
    await in_baklava(bot, clock, 2)
    assert "Promotion 5" in await bot.ship("promote #1 dumpling", user="U012ABC")
    assert "Promotion 6" in await bot.ship("promote #2 dumpling", user="U0GROUP")
    assert "Superseded by #2 (<@U0GROUP>)" in bot.approval_message(5)["text"]
    assert len(bot.approval_message(5)["blocks"]) == 1  # no buttons left
    assert "Promotion 5: :fast_forward: Superseded by #2" in bot.told("U012ABC")
    opened = bot.h.rows("SELECT id FROM promotions WHERE state IN ('waiting', 'queued')")
    assert opened == [{"id": 6}]


async def test_cancel_withdraws_a_waiting_promotion(bot, clock):
    await in_baklava(bot, clock, 1)
    await bot.wait(31 * 60)
    await bot.ship("promote #1 dumpling", user="U012ABC")
    assert "not a promoter of dumpling" in await bot.ship("cancel 3", user="U999")
    assert "Promotion 3 cancelled" in await bot.ship("cancel 3", user="U0GROUP")
    assert "Cancelled by <@U0GROUP>" in bot.approval_message(3)["text"]
    assert "is cancelled, not waiting" in await bot.ship("cancel 3", user="U012ABC")
    assert [r["actor"] for r in bot.log("promotion.cancelled")] == ["U0GROUP"]
    assert [r["actor"] for r in bot.log("cancel.refused")] == ["U999"]


async def test_approve_with_no_number_lists_what_waits_for_me(bot, clock):
    await in_baklava(bot, clock, 1)
    await bot.wait(31 * 60)
    assert "Nothing waits for your approval" in await bot.ship("approve", user="U0GROUP")
    await bot.ship("promote #1 dumpling", user="U012ABC")
    listing = await bot.ship("approve", user="U0GROUP")
    assert "promotion 3: #1 into dumpling for <@U012ABC> — `/ship approve 3`" in listing
    assert "Nothing waits" in await bot.ship("approve", user="U012ABC")  # their own
    assert "Nothing waits" in await bot.ship("approve", user="U999")  # not a promoter


async def test_the_approval_message_tells_how_the_deployment_ended(bot, clock):
    await in_baklava(bot, clock, 1)
    await bot.wait(31 * 60)
    await bot.ship("promote #1 dumpling", user="U012ABC")
    await bot.ship("approve 3", user="U0GROUP")
    assert "Approved by <@U0GROUP>; deploying." in bot.approval_message(3)["text"]
    clock.advance(125)
    await bot.report("dumpling", "failure")
    text = bot.approval_message(3)["text"]
    assert "Deployment to dumpling failed after 2m 5s (approved by <@U0GROUP>)" in text
    await bot.ship("promote #1 dumpling", user="U012ABC")
    await bot.ship("approve 4", user="U0GROUP")
    clock.advance(61)
    await bot.report("dumpling", "success")
    assert "Deployed to dumpling in 1m 1s" in bot.approval_message(4)["text"]


async def test_a_queued_promotion_shows_on_the_strip_and_expires_after_a_day(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.ship('lock baklava "freeze week"', user="U111")
    clock.advance(16 * 60)
    assert "queued" in await bot.ship("promote #1 baklava", user="U222")
    assert "baklava 🕒" in bot.message("build:1")["text"]
    status = await bot.ship("status", user="U222")
    assert (
        "promotion 2: #1 into baklava for <@U222>, queued: goes when baklava is unlocked" in status
    )
    await bot.wait(24 * 3600 + 1)
    assert bot.h.rows("SELECT state FROM promotions WHERE id = 2") == [{"state": "expired"}]
    assert "Promotion 2: :hourglass: Expired" in bot.told("U222")
    assert "baklava 🕒" not in bot.message("build:1")["text"]


async def test_status_names_the_newest_failure_of_either_kind_however_many_successes_since(
    bot, clock
):
    await bot.green(1)
    await bot.report("pasty", "error")
    await bot.green(2)
    await bot.report("pasty", "failure")
    for n in range(3, 7):  # a failure long ago, successes since
        await bot.green(n)
        await bot.report("pasty", "success")
    status = await bot.ship("status", user="U111")
    assert status.splitlines()[1].startswith("• *pasty*: #6 `0000006` for 0s (since ")
    assert " — :x: last failed: #2 at " in status.splitlines()[1]
    await bot.green(7)
    await bot.report("pasty", "error")
    assert " — :x: last failed: #7 at " in (await bot.ship("status", user="U111")).splitlines()[1]


async def test_status_shows_every_stage_the_queue_the_freeze_and_red_main(bot, clock):
    await in_baklava(bot, clock, 1)
    await bot.green(2)
    await bot.report("pasty", "failure")
    await bot.green(3, state="failure")
    await bot.ship('freeze "release 4.2"', user="U012ABC")
    await bot.ship("promote #1 dumpling", user="U012ABC")  # soak left, approvals missing
    status = await bot.ship("status", user="U111")
    lines = status.splitlines()
    assert lines[1].startswith("• *pasty*: #1 `0000001` for 16m (since ")
    assert " — :x: last failed: #2 at " in lines[1]
    assert lines[2].startswith("• *baklava*: #1 `0000001` for 0s (since ")
    assert lines[3] == "• *dumpling*: nothing deployed yet"
    assert (
        "• promotion 4: #1 into dumpling for <@U012ABC>, waiting for approval, then goes when"
        " the soak ends in 30m (expires in 1d)" in lines
    )
    assert any(
        line.startswith(":snowflake: merges are frozen by <@U012ABC> since ") for line in lines
    )
    assert ":red_circle: main is red since #3 (ci/test)" in lines
    assert "Not yet in dumpling: 2 green build(s) (#1 to #2)" in lines
    await bot.green(4)  # deploying into pasty now
    status = await bot.ship("status", user="U111")
    assert "• *pasty*: #1 `0000001`" in status
    assert "deploying #4 (requested)" in status


async def test_a_rollback_cancels_at_once_what_waited_on_the_rolled_back_build(bot, clock):
    # Found by the model: this waited until an unrelated command's sweep noticed.
    await in_baklava(bot, clock, 1)
    await bot.wait(60)
    await in_baklava(bot, clock, 2)
    await bot.wait(31 * 60)
    assert "Promotion 5" in await bot.ship("promote #2 dumpling", user="U012ABC")
    await bot.ship("rollback baklava", user="U111")
    (row,) = bot.h.rows("SELECT state, reason FROM promotions WHERE id = 5")
    assert row == {
        "state": "cancelled",
        "reason": "a gate no longer holds: soak: rolled back out of baklava",
    }
    assert "Cancelled: a gate no longer holds" in bot.approval_message(5)["text"]
    assert "Promotion 5: :x: Cancelled" in bot.told("U012ABC")


async def test_the_sweep_lets_a_queued_promotion_go_when_the_soak_ends(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    assert "queued: goes when the soak ends in 15m" in await bot.ship("promote #1 baklava")
    task = asyncio.create_task(sweep(bot.h.services, every=0.01))
    try:
        clock.advance(15 * 60)  # nobody types anything: the sweep alone notices
        await wait_for(lambda: bool(bot.deployments("baklava")), 10, what="the queued promotion")
    finally:
        task.cancel()
    await bot.h.settle()
    assert "Promotion 2 goes now" in bot.told("U012ABC")


async def test_the_live_build_is_the_one_that_finished_deploying_last(bot, clock):
    # Found by the model: two successes in one clock reading, and status named the other build.
    await bot.green(1)  # deploying into pasty, and GitHub goes quiet about it
    await bot.wait(24 * 3600 + 60)
    await bot.green(2)  # the stale deployment no longer holds pasty: #2 deploys too
    first, second = bot.deployments("pasty")
    await bot.report("pasty", "success", github_id=second["id"])
    await bot.report("pasty", "success", github_id=first["id"])  # #1 finishes last, same second
    status = await bot.ship("status", user="U111")
    assert "• *pasty*: #1 `0000001` for 0s" in status
    answer = await bot.ship("rollback pasty", user="U111")
    assert "Rolling back pasty to #2" in answer
