"""The gates as pure rules: every gate, pass and fail, with its reason, over records and a clock."""

from bot.config import Stage
from bot.core import gates

NOW = 1_790_000_000.0
PASTY = Stage("pasty", True, 0, 0, (), False)
BAKLAVA = Stage("baklava", False, 15 * 60, 0, (), False)
DUMPLING = Stage("dumpling", False, 30 * 60, 1, ("U012ABC", "S0RELEASE"), True)
GREEN = {"number": 42, "ci_state": "success"}


def deployed(id_: int, state: str, succeeded_at: float | None = None) -> dict:
    # Deployments here succeed in id order: the sequence promobot records successes in.
    return {
        "id": id_,
        "state": state,
        "succeeded_at": succeeded_at,
        "success_seq": id_ if succeeded_at is not None else None,
    }


def facts(**changes) -> gates.Facts:
    base = {
        "build": GREEN,
        "stage": BAKLAVA,
        "previous": PASTY,
        "previous_deployments": [deployed(1, "success", NOW - 20 * 60)],
        "lock": None,
        "person": "U111",
        "promoter": None,
        "approvers": (),
    }
    base.update(changes)
    return gates.Facts(**base)


def verdicts(f: gates.Facts, now: float = NOW) -> dict[str, tuple[bool, str]]:
    return {g.name: (g.ok, g.reason) for g in gates.evaluate(f, now)}


def test_every_gate_holds_and_says_why():
    result = verdicts(facts())
    assert result == {
        "order": (True, "deployed to pasty successfully"),
        "ci": (True, "green"),
        "soak": (True, "live in pasty for 20m (needs 15m)"),
        "lock": (True, "baklava is open"),
        "promoter": (True, "anyone may promote into baklava"),
        "approvals": (True, "none needed"),
    }


def test_first_stage_takes_green_builds_only():
    result = verdicts(facts(stage=PASTY, previous=None, previous_deployments=[]))
    assert result["order"] == (True, "pasty is the first stage")
    assert result["soak"][0] is True
    red = verdicts(facts(stage=PASTY, previous=None, build={"number": 1, "ci_state": "failure"}))
    assert red["ci"] == (False, "CI is failure")


def test_order_needs_a_successful_deployment_of_the_same_build_before():
    result = verdicts(facts(previous_deployments=[deployed(1, "in_progress")]))
    assert result["order"] == (False, "not deployed successfully to pasty yet")
    assert result["soak"] == (False, "not live in pasty (needs 15m)")


def test_soak_says_how_long_is_left():
    result = verdicts(facts(previous_deployments=[deployed(1, "success", NOW - 7 * 60)]))
    assert result["soak"] == (False, "15m needed in pasty: 8m left")
    just = verdicts(facts(previous_deployments=[deployed(1, "success", NOW - 15 * 60)]))
    assert just["soak"][0] is True


def test_a_failed_deployment_since_the_success_resets_the_soak():
    history = [deployed(1, "success", NOW - 60 * 60), deployed(2, "failure")]
    assert verdicts(facts(previous_deployments=history))["soak"] == (
        False,
        "a later deployment to pasty failed",
    )


def test_an_open_lock_blocks_and_an_expired_one_lifts_itself():
    lock = {
        "locked_by": "U9",
        "reason": "db <migration>",
        "expires_at": NOW + 3600,
        "lifted_at": None,
    }
    assert verdicts(facts(lock=lock))["lock"] == (
        False,
        "locked by <@U9> for 1h more: db &lt;migration&gt;",
    )
    assert verdicts(facts(lock=lock), now=NOW + 3600)["lock"][0] is True
    forever = dict(lock, expires_at=None)
    assert verdicts(facts(lock=forever), now=NOW + 10**6)["lock"][0] is False


def test_promoters_deny_by_default_when_listed():
    stage = {"stage": DUMPLING, "previous": BAKLAVA}
    assert verdicts(facts(promoter=False, **stage))["promoter"] == (
        False,
        "<@U111> is not a promoter of dumpling",
    )
    assert verdicts(facts(promoter=True, **stage))["promoter"][0] is True
    assert verdicts(facts(person="promobot", promoter=False, **stage))["promoter"][0] is True


def test_approvals_count_different_people():
    stage = {"stage": DUMPLING, "previous": BAKLAVA, "promoter": True}
    stage["previous_deployments"] = [deployed(1, "success", NOW - 3600)]
    assert verdicts(facts(**stage))["approvals"] == (
        False,
        "needs 1 more approval(s) from a promoter other than the requester",
    )
    assert verdicts(facts(approvers=("U2",), **stage))["approvals"] == (
        True,
        "approved by <@U2>",
    )


def test_force_passes_lock_and_failed_gates_but_never_approvals_or_promoters():
    lock = {"locked_by": "U9", "reason": "x", "expires_at": None, "lifted_at": None}
    red = {"number": 42, "ci_state": "failure"}
    checks = gates.evaluate(
        facts(stage=DUMPLING, previous=BAKLAVA, lock=lock, build=red, promoter=True), NOW
    )
    assert {g.name for g in gates.blocking(checks)} == {"ci", "soak", "lock"}
    assert gates.blocking(checks, forced=True) == []
    assert gates.needs_approval(checks)
    assert {g.name for g in gates.overridden(checks)} == {"ci", "soak", "lock"}
    outsider = gates.evaluate(facts(stage=DUMPLING, previous=BAKLAVA, promoter=False), NOW)
    assert [g.name for g in gates.blocking(outsider, forced=True)] == ["promoter"]


def test_a_refusal_renders_every_gate():
    text = gates.render(gates.evaluate(facts(build={"number": 1, "ci_state": "pending"}), NOW))
    assert text.count("\n") == 5
    assert "❌ *ci*: CI is pending" in text
    assert "✅ *soak*" in text


def test_a_rollback_out_of_the_previous_stage_voids_the_soak():
    history = [deployed(1, "success", NOW - 3600)]
    assert verdicts(facts(previous_deployments=history, rolled_back=True))["soak"] == (
        False,
        "rolled back out of pasty",
    )
    assert verdicts(facts(previous_deployments=history, rolled_back=False))["soak"][0] is True


def test_the_soak_counts_from_the_success_recorded_last_whatever_the_clock_said():
    # A clock stepped back: the later success reads earlier, and the soak still counts from it.
    history = [deployed(1, "success", NOW - 3600), deployed(2, "success", NOW - 3700)]
    assert verdicts(facts(previous_deployments=history))["soak"] == (
        True,
        "live in pasty for 1h 1m (needs 15m)",
    )
    history = [deployed(1, "success", NOW - 3600), deployed(2, "success", NOW - 60)]
    assert verdicts(facts(previous_deployments=history))["soak"][0] is False
