"""/ship locks, force, rollback, status and history, and every kind of bad input."""

import pytest

from bot.core.clock import FakeClock
from tests.conftest import push_payload
from tests.pipeline_driver import Pipeline, sha
from tests.test_promote import in_baklava
from tests.waiting import wait_for


async def ready_for_baklava(bot: Pipeline, clock: FakeClock) -> None:
    await bot.green(1)
    await bot.report("pasty", "success")
    clock.advance(16 * 60)


async def test_a_lock_blocks_until_it_expires(bot, clock):
    await ready_for_baklava(bot, clock)
    answer = await bot.ship('lock baklava "db <migration>" for 1h', user="U111")
    assert "locked for 1h" in answer
    assert ":lock: <@U111> locked *baklava* for 1h: db &lt;migration&gt;" in bot.channel_texts()
    queued = await bot.ship("promote #1 baklava", user="U222")
    assert "queued: goes when baklava is unlocked" in queued
    assert "❌ *lock*: locked by <@U111> for 1h more: db &lt;migration&gt;" in queued
    await bot.wait(3599)
    assert bot.deployments("baklava") == []
    await bot.wait(2)  # the lock expires: the queued promotion goes by itself
    assert [d["payload"]["requested_by"] for d in bot.deployments("baklava")] == ["U222"]


async def test_unlock_lifts_the_lock(bot, clock):
    await ready_for_baklava(bot, clock)
    await bot.ship('lock baklava "flaky env"', user="U111")
    assert "until someone unlocks it" in bot.channel_texts()[-1]
    assert "open again" in await bot.ship("unlock baklava", user="U222")
    assert "is not locked" in await bot.ship("unlock baklava", user="U222")
    assert ":rocket:" in await bot.ship("promote #1 baklava", user="U222")
    assert [r["action"] for r in bot.log("lock", "unlock")] == ["lock", "unlock"]


async def test_only_promoters_lock_and_unlock_a_guarded_stage(bot, clock):
    await bot.green(1)
    assert "not a promoter of dumpling" in await bot.ship('lock dumpling "x"', user="U999")
    assert "locked" in await bot.ship('lock dumpling "release train"', user="U0GROUP")
    assert "not a promoter" in await bot.ship("unlock dumpling", user="U999")


async def test_force_with_a_reason_passes_a_lock_and_is_announced(bot, clock):
    await bot.green(1)
    await bot.report("pasty", "success")
    await bot.ship('lock baklava "load test"', user="U111")
    answer = await bot.ship('promote #1 baklava --force "hotfix for INC-7"', user="U222")
    assert ":rocket:" in answer
    announcement = bot.channel_texts()[-1]
    assert "<@U222> forced *#1*" in announcement
    assert "through soak, lock: hotfix for INC-7" in announcement
    (entry,) = bot.log("promotion.approved")
    assert (entry["forced"], entry["reason"], entry["actor"]) == (1, "hotfix for INC-7", "U222")


async def test_force_never_skips_approvals_nor_promoters(bot, clock):
    await in_baklava(bot, clock)
    outsider = await bot.ship('promote #1 dumpling --force "urgent"', user="U999")
    assert "❌ *promoter*" in outsider and bot.h.rows("SELECT * FROM promotions WHERE id > 2") == []
    answer = await bot.ship('promote #1 dumpling --force "urgent"', user="U012ABC")
    assert "waits for approval" in answer  # the soak was forced, approvals were not
    assert bot.deployments("dumpling") == []
    assert "Forced past the ❌ gates: urgent" in bot.approval_message(3)["text"]
    assert "Approved" in await bot.click("approve", 3, user="U0GROUP")
    assert len(bot.deployments("dumpling")) == 1
    assert bot.log("promotion.approved")[-1]["forced"] == 1


async def test_rollback_redeploys_the_previous_good_build_and_locks(bot, clock):
    await in_baklava(bot, clock, 1)
    clock.advance(60)
    await in_baklava(bot, clock, 2)
    answer = await bot.ship("rollback baklava", user="U111")
    assert "Rolling back baklava to #1" in answer
    redeploy = bot.deployments("baklava")[-1]
    assert (redeploy["ref"], redeploy["payload"]["requested_by"]) == (sha(1), "U111")
    assert "rolling back *baklava* from #2" in bot.channel_texts()[-1]
    await bot.report("baklava", "success")
    queued = await bot.ship("promote #2 baklava", user="U222")
    assert "queued: goes when baklava is unlocked" in queued
    assert "❌ *lock*: locked by <@U111>: rolled back from #2" in queued
    assert "#2 was rolled back out of baklava by <@U111>" in queued
    (entry,) = bot.log("rollback")
    assert (entry["actor"], entry["reason"]) == ("U111", "rolled back from #2")
    (replaced,) = bot.log("rolled.back")  # the build taken out says so in its own log
    assert (replaced["reason"], replaced["stage"]) == ("replaced by #1", "baklava")
    assert replaced["build_id"] != entry["build_id"]
    status = await bot.ship("status", user="U222")
    assert "• *baklava*: #1" in status and "rolled back from #2" in status
    assert "open again" in await bot.ship("unlock baklava", user="U111")


async def test_rollback_to_a_named_build_and_when_there_is_none(bot, clock):
    await bot.green(1, state="pending")
    assert "Nothing has been deployed" in await bot.ship("rollback pasty", user="U111")
    await bot.green(1)
    await bot.report("pasty", "success")
    assert "No earlier build" in await bot.ship("rollback pasty", user="U111")
    await bot.green(2)
    await bot.report("pasty", "success")
    assert "#2 is already live in pasty since" in await bot.ship(
        "rollback pasty to #2", user="U111"
    )
    assert "Rolling back pasty to #1" in await bot.ship("rollback pasty to #1", user="U111")
    await bot.report("pasty", "success")
    clock.advance(16 * 60)
    refused = await bot.ship("promote #2 baklava", user="U111")
    assert "❌ *soak*: rolled back out of pasty" in refused
    assert bot.log("rollback")[0]["reason"] == "rolled back from #2"


async def test_history_shows_who_did_what(bot, clock):
    await ready_for_baklava(bot, clock)
    await bot.ship('lock baklava "load <test>"', user="U111")
    text = await bot.ship("history baklava", user="U222")
    assert "<@U111> lock — load &lt;test&gt;" in text
    assert "*History of Codertocat/Hello-World in baklava*" in text


async def test_status_shows_waiting_approvals_and_the_undeployed_delta(bot, clock):
    await in_baklava(bot, clock)
    clock.advance(31 * 60)
    await bot.ship("promote baklava dumpling")
    text = await bot.ship("status")
    assert "promotion 3: #1 into dumpling for <@U012ABC>, waiting for approval" in text
    assert "Not yet in dumpling: 1 green build(s) (#1)" in text


async def test_status_leaves_its_line_in_the_event_log(bot, clock):
    await bot.green(1)
    await bot.ship("status", user="U222")
    query = "SELECT actor, action FROM event_log WHERE action = 'status'"
    logged = await wait_for(lambda: bot.h.rows(query), what="the status line in the event log")
    assert logged == [{"actor": "U222", "action": "status"}]


async def test_status_after_a_promotion_expired_shows_it_gone(bot, clock):
    await in_baklava(bot, clock)
    clock.advance(31 * 60)
    await bot.ship("promote baklava dumpling")
    clock.advance(25 * 3600)
    text = await bot.ship("status")
    assert "waiting for approval" not in text
    states = bot.h.rows("SELECT state FROM promotions WHERE stage = 'dumpling'")
    assert states == [{"state": "expired"}]


BAD_INPUT = [
    ("/ship", "launch #1", "`launch` is not a /ship command"),
    ("/ship", "promote #1", "promote needs a build and a stage"),
    ("/promote", "", "promote needs a build and a stage"),
    ("/ship", "promote #9 baklava", "there is no build #9"),
    ("/ship", "promote #1 staging", "`staging` is not a stage (pasty, baklava, dumpling)"),
    ("/ship", "promote 00000ff baklava", "no build has a sha starting `00000ff`"),
    ("/ship", "promote abcdef1 baklava", "`abcdef1` matches #3 and #2"),
    ("/ship", "promote baklava pasty", "pasty does not come after baklava"),
    ("/ship", "promote dumpling baklava", "does not come after dumpling"),
    ("/ship", "promote xyz! baklava", "is not a build"),
    ("/ship", 'promote #1 baklava --force ""', "`--force` needs a reason"),
    ("/ship", "promote #1 baklava --now", "`--now` is not an option"),
    ("/ship", "approve one", "name the promotion by its number"),
    ("/ship", "reject 1", "say why"),
    ("/ship", "lock baklava", "lock needs a stage and a reason"),
    ("/ship", 'lock baklava "x" for ever', "`for ever` is not a duration"),
    ("/ship", "unlock", "unlock needs a stage"),
    ("/ship", "rollback", "rollback needs a stage"),
    ("/ship", "rollback baklava from #1", "rollback needs a stage"),
    ("/ship", "rollback baklava to #99", "there is no build #99"),
    ("/ship", "history pasty baklava", "history takes at most a stage"),
    ("/ship", "status acme/unknown", "promobot does not follow `acme/unknown`"),
    ("/ship", 'lock pasty "unclosed', "a quote is not closed"),
]


@pytest.mark.parametrize(("command", "text", "problem"), BAD_INPUT)
async def test_bad_input_is_answered_with_usage_and_changes_nothing(
    bot, clock, command, text, problem
):
    await bot.green(1)
    for n, suffix in ((2, "0" * 33), (3, "1" * 33)):  # two shas sharing a 7-character prefix
        await bot.h.deliver("push", push_payload("abcdef1" + suffix, message=f"Change {n}"))
    await bot.h.settle()
    before = bot.h.rows(
        "SELECT (SELECT count(*) FROM promotions) p, (SELECT count(*) FROM deployments) d,"
        " (SELECT count(*) FROM locks) l, (SELECT count(*) FROM approvals) a,"
        " (SELECT max(id) FROM event_log) e"
    )[0]
    answer = await bot.ship(text, user="U111", command=command)
    assert answer.startswith(":warning:")
    assert problem in answer
    assert "Usage: `/ship" in answer or "Try `/ship help`" in answer
    after = bot.h.rows(
        "SELECT (SELECT count(*) FROM promotions) p, (SELECT count(*) FROM deployments) d,"
        " (SELECT count(*) FROM locks) l, (SELECT count(*) FROM approvals) a"
    )[0]
    assert after == {k: v for k, v in before.items() if k != "e"}
    new = bot.h.rows("SELECT actor, action, reason FROM event_log WHERE id > ?", [before["e"]])
    assert [(r["actor"], r["action"]) for r in new] == [("U111", "command.refused")]


def other_repo(payload: dict, full_name: str, repo_id: int) -> dict:
    payload["repository"].update(id=repo_id, full_name=full_name, name=full_name.split("/")[1])
    return payload


async def test_the_channel_picks_the_repository_or_the_person_names_it(bot, clock):
    await bot.green(1)
    await bot.h.deliver("push", other_repo(push_payload(sha(7)), "acme/mingle", 7))
    await bot.h.deliver("push", other_repo(push_payload(sha(8)), "acme/tools", 8))
    await bot.h.settle()
    # #releases follows Hello-World and acme/tools (acme/mingle has its own channel).
    answer = await bot.ship("status", user="U111")
    assert (
        "this channel follows `acme/tools`, `Codertocat/Hello-World`: name one first,"
        " as in `/ship status acme/tools …`"
    ) in answer
    assert "*acme/tools*" in await bot.ship("status acme/tools", user="U111")
    mingle = await bot.h.slash(
        "status", user="U111", channel="C0MINGLE", channel_name="mingle-releases"
    )
    assert "*acme/mingle*" in await mingle.text()
    answer = await bot.ship("promote #1 baklava", user="U111")
    assert "name one first, as in `/ship promote acme/tools …`" in answer
    assert "name one first, as in `/ship approve acme/tools …`" in await bot.ship("approve")
    assert "Nothing waits for your approval" in await bot.ship("approve acme/tools")
    answer = await bot.ship("promote codertocat/hello-world #1 baklava", user="U111")
    assert "❌ *order*: not deployed successfully to pasty yet" in answer


async def test_unlocking_an_auto_stage_lets_the_newest_green_build_in(bot, clock):
    await bot.green(1, state="pending")
    assert "locked" in await bot.ship('lock pasty "chaos day"', user="U111")
    await bot.green(1)
    await bot.green(2)
    assert bot.deployments("pasty") == []
    await bot.ship("unlock pasty", user="U111")
    assert [d["payload"]["build"] for d in bot.deployments("pasty")] == [2]


async def test_slack_escaped_command_text_is_stored_plain_and_shown_escaped_once(bot, clock):
    await bot.green(1)
    await bot.ship('lock baklava "db &lt;migration&gt; &amp; reindex"', user="U111")
    assert bot.log("lock")[0]["reason"] == "db <migration> & reindex"
    assert bot.channel_texts()[-1].endswith("db &lt;migration&gt; &amp; reindex")
    answer = await bot.ship("promote <!channel> baklava", user="U111")
    assert "`&lt;!channel&gt;` is not a build" in answer


async def test_a_red_build_is_refused_with_every_gate_shown(bot, clock):
    await bot.green(1, state="failure")
    answer = await bot.ship("promote #1 to pasty", user="U111")
    assert answer.startswith(":no_entry: Not promoting *#1*")
    assert "❌ *ci*: CI is failure" in answer
    assert answer.count("✅") == 5
    (entry,) = bot.log("promote.refused")
    assert (entry["actor"], entry["stage"], entry["reason"]) == (
        "U111",
        "pasty",
        "ci: CI is failure",
    )
    assert ":rocket:" in await bot.ship('promote #1 to pasty --force "known flaky test"')
