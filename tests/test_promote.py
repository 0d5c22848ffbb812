"""Promotions from Slack through GitHub Deployments: the journey, approvals, concurrency."""

import asyncio
from dataclasses import replace

from bot.core.clock import FakeClock
from bot.engine.approval_sweep import sweep
from tests.pipeline_driver import Pipeline, sha
from tests.waiting import wait_for


async def in_baklava(bot: Pipeline, clock: FakeClock, n: int = 1) -> None:
    """Bring build n through pasty into baklava, successfully."""
    await bot.green(n)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    assert ":rocket:" in await bot.ship(f"promote #{n} to baklava", user="U111")
    await bot.report("baklava", "success")


async def waiting_for_dumpling(bot: Pipeline, clock: FakeClock) -> None:
    """Bring build 1 to a promotion into dumpling (promotion 3) waiting for approval."""
    await in_baklava(bot, clock)
    clock.advance(31 * 60)
    assert "waits for approval" in await bot.ship("baklava dumpling", command="/promote")


async def test_journey_from_push_to_production(bot, clock):
    await bot.green(1)
    (pasty,) = bot.deployments()
    assert {k: v for k, v in pasty.items() if k != "id"} == {
        "ref": sha(1),
        "environment": "pasty",
        "production_environment": False,
        "auto_merge": False,
        "required_contexts": [],
        "payload": {"build": 1, "promotion": 1, "requested_by": "promobot"},
        "description": "#1 to pasty for promobot",
        "path": "/repos/Codertocat/Hello-World/deployments",
    }
    await bot.report("pasty", "in_progress")
    await bot.report("pasty", "success")
    early = await bot.ship("promote pasty to baklava", user="U111")
    assert "Promotion 2 is queued: goes when the soak ends in 15m" in early
    assert "❌ *soak*: 15m needed in pasty: 15m left" in early
    assert early.count("✅") == 5
    await bot.wait(14 * 60)
    assert bot.deployments("baklava") == []
    await bot.wait(60)  # the soak ends: it goes by itself, and the requester is told
    assert [d["payload"]["promotion"] for d in bot.deployments("baklava")] == [2]
    told = bot.slack.of("chat.postEphemeral")[-1].body
    assert told["user"] == "U111" and "Promotion 2 goes now: deploying *#1*" in told["text"]
    await bot.report("baklava", "success")
    clock.advance(31 * 60)
    answer = await bot.ship("baklava dumpling", command="/promote")
    assert "Promotion 3" in answer and "waits for approval" in answer
    assert bot.deployments("dumpling") == []
    assert "Approved" in await bot.click("approve", 3, user="U0GROUP")
    (production,) = bot.deployments("dumpling")
    assert production["production_environment"] is True
    assert production["payload"] == {"build": 1, "promotion": 3, "requested_by": "U012ABC"}
    assert "Approved by <@U0GROUP>; deploying" in bot.approval_message(3)["text"]
    assert len(bot.approval_message(3)["blocks"]) == 1  # the buttons are gone
    await bot.report("dumpling", "success")
    states = bot.h.rows("SELECT stage, state, github_id FROM deployments ORDER BY id")
    assert states == [
        {"stage": "pasty", "state": "success", "github_id": pasty["id"]},
        {"stage": "baklava", "state": "success", "github_id": pasty["id"] + 1},
        {"stage": "dumpling", "state": "success", "github_id": production["id"]},
    ]
    status = await bot.ship("status", user="U111")
    assert "• *dumpling*: #1 `0000001`" in status


async def test_approval_message_has_confirmed_buttons_bound_to_the_promotion(bot, clock):
    await waiting_for_dumpling(bot, clock)
    message = bot.approval_message(3)
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [b["action_id"] for b in actions["elements"]] == [
        "promotion.approve",
        "promotion.reject",
    ]
    assert all(b["value"] == "3" and "confirm" in b for b in actions["elements"])
    assert "<!subteam^S0RELEASE>" in message["text"]


async def test_requester_and_non_promoters_cannot_approve(bot, clock):
    await waiting_for_dumpling(bot, clock)
    assert "someone else must approve" in await bot.click("approve", 3, user="U012ABC")
    assert "not a promoter of dumpling" in await bot.click("approve", 3, user="U999")
    assert "not a promoter" in await bot.ship("approve 3", user="U999")
    assert bot.deployments("dumpling") == []
    refused = bot.log("approve.refused")
    assert [r["actor"] for r in refused] == ["U012ABC", "U999", "U999"]
    assert "Approved" in await bot.ship("approve 3", user="U0GROUP")  # a member of S0RELEASE
    assert len(bot.deployments("dumpling")) == 1
    assert len(bot.slack.of("usergroups.users.list")) == 1  # cached


async def test_reject_needs_a_reason_and_closes_the_request(bot, clock):
    await waiting_for_dumpling(bot, clock)
    await bot.click("reject", 3, user="U999")
    modal = bot.slack.views[-1]
    assert modal["blocks"][0]["element"]["type"] == "plain_text_input"
    assert "not a promoter" in await bot.submit_reject("no", user="U999")
    assert "say why" in await bot.ship("reject 3", user="U0GROUP")
    await bot.click("reject", 3, user="U0GROUP")
    assert "rejected" in await bot.submit_reject("smoke test <failed>", user="U0GROUP")
    assert "Rejected by <@U0GROUP>: smoke test &lt;failed&gt;" in bot.approval_message(3)["text"]
    assert "is rejected" in await bot.click("approve", 3, user="U0GROUP")
    (entry,) = bot.log("promotion.rejected")
    assert (entry["actor"], entry["reason"]) == ("U0GROUP", "smoke test <failed>")


async def test_approvals_expire_after_a_day(bot, clock):
    await waiting_for_dumpling(bot, clock)
    clock.advance(24 * 3600 + 1)
    assert "Promotion 3 is expired" in await bot.ship("approve 3", user="U0GROUP")
    assert "Expired" in bot.approval_message(3)["text"]
    assert bot.deployments("dumpling") == []
    assert [r["actor"] for r in bot.log("promotion.expired")] == ["promobot"]


async def test_two_promotions_into_one_stage_at_once_one_wins(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    answers = await asyncio.gather(
        bot.h.slash("promote #1 to baklava", user="U111"),
        bot.h.slash("promote pasty baklava", user="U222"),
    )
    texts = sorted([await r.text() for r in answers])
    await bot.h.settle()
    assert texts[0] == ":no_entry: #1 is already deploying into baklava."
    assert texts[1].startswith(":rocket:")
    assert len(bot.deployments("baklava")) == 1
    await bot.report("baklava", "failure")
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U333")


async def test_a_promotion_behind_a_deployment_in_flight_is_queued_and_goes_after_it(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.green(2)
    await bot.report("pasty", "success")
    await bot.wait(16 * 60)
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U111")
    queued = await bot.ship("promote #2 baklava", user="U222")
    assert "Promotion 4 is queued: goes after #1 finishes deploying" in queued
    assert len(bot.deployments("baklava")) == 1
    await bot.report("baklava", "success")
    assert [d["payload"]["build"] for d in bot.deployments("baklava")] == [1, 2]
    assert "Promotion 4 goes now" in bot.told("U222")
    thread = [c.body["text"] for c in bot.slack.of("chat.postMessage") if c.body.get("thread_ts")]
    assert any("build #2" in t and "baklava" in t for t in thread)


async def test_a_newer_green_build_supersedes_one_waiting_for_pasty(bot, clock):
    await bot.green(1)  # deploying into pasty
    await bot.green(2)  # held behind #1
    await bot.green(3)  # replaces #2
    assert [d["payload"]["build"] for d in bot.deployments("pasty")] == [1]
    states = bot.h.rows("SELECT build_id, state, reason FROM promotions ORDER BY id")
    assert states[1] == {"build_id": 2, "state": "superseded", "reason": "superseded by #3"}
    await bot.report("pasty", "success")
    assert [d["payload"]["build"] for d in bot.deployments("pasty")] == [1, 3]
    await bot.green(4, state="failure")
    assert len(bot.deployments("pasty")) == 2  # red builds never enter


async def test_success_in_a_stage_enters_the_next_auto_stage(make_harness, clock, config):
    stages = list(config.pipeline.stages)
    stages[1] = replace(stages[1], auto=True, soak=0)
    custom = replace(config, pipeline=replace(config.pipeline, stages=tuple(stages)))
    bot = Pipeline(await make_harness(clock=clock, config_=custom), clock)
    await bot.green(1)
    assert bot.deployments("baklava") == []
    await bot.report("pasty", "success")
    (baklava,) = bot.deployments("baklava")
    assert baklava["payload"]["requested_by"] == "promobot"


async def test_deployment_status_falls_back_to_the_promotion_in_its_payload(bot, clock):
    await bot.green(1)
    # The recorder stored GitHub's id; forget it, as if GitHub's answer had been lost.
    await bot.h.services.store.write(
        lambda db: db.execute("UPDATE deployments SET github_id = NULL")
    )
    await bot.report("pasty", "success", github_id=424242)
    assert bot.h.rows("SELECT state, github_id FROM deployments") == [
        {"state": "success", "github_id": 424242}
    ]
    await bot.report("pasty", "in_progress", github_id=424242)  # late: never reopens
    assert bot.h.rows("SELECT state FROM deployments") == [{"state": "success"}]


async def test_a_deployment_github_refused_or_nobody_reports_does_not_hold_the_stage(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    bot.github.fail("POST /repos/{owner}/{repo}/deployments", 422, body={"message": "Conflict"})
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U111")
    assert bot.h.rows("SELECT state FROM outbox WHERE target = 'github'")[-1]["state"] == "failed"
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U111")  # not held
    assert "already deploying" in await bot.ship("promote #1 baklava", user="U111")
    clock.advance(3601)  # GitHub created it, but no deployer ever reported
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U111")


async def test_the_requester_may_withdraw_by_text(bot, clock):
    await waiting_for_dumpling(bot, clock)
    assert "rejected" in await bot.ship('reject 3 "wrong build"', user="U012ABC")
    assert "Rejected by <@U012ABC>: wrong build" in bot.approval_message(3)["text"]
    assert "waits for approval" in await bot.ship("promote #1 dumpling", user="U012ABC")


async def test_an_approved_promotion_held_by_a_lock_goes_on_unlock(bot, clock):
    # Surprise 3: it stayed stuck until the approver approved a second time.
    await waiting_for_dumpling(bot, clock)
    await bot.ship('lock dumpling "incident"', user="U0GROUP")
    answer = await bot.ship("approve 3", user="U0GROUP")
    assert "Promotion 3 is queued: goes when dumpling is unlocked" in answer
    assert bot.deployments("dumpling") == []
    assert "waiting for approval" not in await bot.ship("status", user="U111")
    await bot.ship("unlock dumpling", user="U0GROUP")
    assert len(bot.deployments("dumpling")) == 1
    assert "Promotion 3 goes now" in bot.told("U012ABC")
    assert len(bot.log("approval.given")) == 1


async def test_the_sweep_expires_requests_nobody_touches(bot, clock):
    await waiting_for_dumpling(bot, clock)
    clock.advance(24 * 3600 + 1)
    task = asyncio.create_task(sweep(bot.h.services, every=0.01))
    await wait_for(
        lambda: bot.h.rows("SELECT state FROM promotions WHERE id = 3") == [{"state": "expired"}],
        what="promotion 3 expired",
    )
    task.cancel()
    await bot.h.settle()
    assert "Expired" in bot.approval_message(3)["text"]
