"""A stage's rules as one pure decision: facts and an intent in, a decision out."""

from bot.core import gates, stage
from bot.core.stage import Flight, Intent, Live, Lock, Open, StageFacts
from tests.test_gates import BAKLAVA, DUMPLING, NOW, PASTY, deployed, facts


def promote(s: StageFacts, **changes) -> stage.Decision:
    return stage.decide(s, Intent("promote", "U111", gate=facts(**changes)))


def test_promoting_the_live_build_is_refused_with_since_when():
    live = Live(build_id=1, number=42, since=1_790_000_000.0)  # 14:13 UTC
    decision = promote(StageFacts(BAKLAVA, NOW, live=live), build={"id": 1, "number": 42})
    assert decision.refused
    assert decision.reason == "#42 is already live in baklava since 14:13 UTC."


def test_held_only_by_things_that_clear_the_promotion_waits_and_says_for_what():
    soaking = [deployed(1, "success", NOW - 11 * 60)]
    s = StageFacts(BAKLAVA, NOW, flight=Flight(2, 41, 7), lock=Lock("U222", "incident", None))
    decision = promote(
        s,
        build={"id": 3, "number": 42, "ci_state": "success"},
        previous_deployments=soaking,
        lock={"locked_by": "U222", "reason": "incident", "expires_at": None},
    )
    assert decision.verdict == "wait"
    assert decision.waits_for == (
        "when the soak ends in 4m",
        "when baklava is unlocked",
        "after #41 finishes deploying",
    )
    assert decision.due == NOW - 11 * 60 + 15 * 60  # the soak's end: the lock has no expiry


def test_a_gate_that_does_not_clear_refuses_showing_every_gate():
    decision = promote(
        StageFacts(BAKLAVA, NOW), build={"id": 3, "number": 42, "ci_state": "failure"}
    )
    assert decision.refused and decision.reason == "ci: CI is failure"
    assert [g.name for g in decision.checks] == [
        "order",
        "ci",
        "soak",
        "lock",
        "promoter",
        "approvals",
    ]


def test_a_newer_promotion_supersedes_the_open_one():
    s = StageFacts(DUMPLING, NOW, open=Open(5, 2, 41, "U333", None, (), NOW + 60))
    decision = promote(
        s, stage=DUMPLING, previous=BAKLAVA, build={"id": 3, "number": 42, "ci_state": "success"}
    )
    assert (decision.verdict, decision.supersedes, decision.needs_approval) == ("wait", 5, True)


def test_automatic_entry_never_takes_a_build_rolled_back_out_of_the_stage():
    s = StageFacts(PASTY, NOW, live=Live(4, 4, NOW - 60), rolled_back={5: "rolled back"})
    first = {"stage": PASTY, "previous": None, "previous_deployments": []}
    five = stage.decide(
        s, Intent("enter", gate=facts(build={"id": 5, "number": 5, "ci_state": "success"}, **first))
    )
    assert five.refused and "rolled back" in five.reason
    six = stage.decide(
        s, Intent("enter", gate=facts(build={"id": 6, "number": 6, "ci_state": "success"}, **first))
    )
    assert six.verdict == "deploy"


def test_rollback_goes_back_only_to_an_older_build_that_was_live_unless_forced():
    history = (Live(3, 3, NOW - 300), Live(4, 4, NOW - 200), Live(5, 5, NOW - 100))
    s = StageFacts(DUMPLING, NOW, live=history[-1], history=history)
    plain = stage.decide(s, Intent("rollback", "U012ABC", True))
    assert (plain.verdict, plain.target) == ("rollback", history[1])
    red = Live(6, 6, 0)
    refused = stage.decide(s, Intent("rollback", "U012ABC", True, named=red))
    assert refused.refused
    assert refused.reason.startswith("#6 was never live in dumpling; #6 is newer than the live #5.")
    forced = stage.decide(s, Intent("rollback", "U012ABC", True, named=red, force="hotfix"))
    assert forced.verdict == "rollback" and len(forced.forced) == 2
    assert (
        stage.decide(s, Intent("rollback", "U012ABC", True, named=history[0])).target == history[0]
    )


def test_one_lock_per_stage_locking_again_says_who_holds_it():
    s = StageFacts(BAKLAVA, NOW, lock=Lock("U222", "incident <3>", NOW + 3600))
    decision = stage.decide(s, Intent("lock", "U111", None))
    assert decision.refused
    assert decision.reason == (
        "baklava is already locked by <@U222> until 15:13 UTC (1h more): incident &lt;3&gt;."
    )
    assert stage.decide(StageFacts(BAKLAVA, NOW), Intent("unlock", "U111", None)).refused


def test_an_approval_completes_a_promotion_that_deploys_when_nothing_else_holds():
    p = Open(5, 3, 42, "U333", None, (), NOW + 60)
    s = StageFacts(DUMPLING, NOW, open=p)
    g = facts(
        stage=DUMPLING,
        previous=BAKLAVA,
        build={"id": 3, "number": 42, "ci_state": "success"},
        previous_deployments=[deployed(1, "success", NOW - 3600)],
    )
    assert stage.decide(s, Intent("approve", "U333", True, gate=g)).refused  # the requester
    assert stage.decide(s, Intent("approve", "U999", False, gate=g)).refused
    assert stage.decide(s, Intent("approve", "U444", True, gate=g)).verdict == "deploy"
    expired = StageFacts(DUMPLING, NOW + 61, open=p)
    assert stage.decide(expired, Intent("review", gate=g)).verdict == "expire"


def test_the_soak_gate_says_when_it_clears():
    (soak,) = [
        g
        for g in gates.evaluate(facts(previous_deployments=[deployed(1, "success", NOW)]), NOW)
        if g.name == "soak"
    ]
    assert soak.due == NOW + 15 * 60 and stage.clears(soak)
