"""The promobot/pipeline status on pull requests: passing, red main, freezes, re-evaluation."""

from bot.core.verdict import Branch, verdict
from tests.conftest import fixture, push_payload, status_payload

HEADS = {7: "a" * 40, 8: "b" * 40, 9: "c" * 40}
STATUS_KEY = "POST /repos/{owner}/{repo}/statuses/{sha}"


def pr_payload(action: str, number: int, *, base: str = "main", draft: bool = False) -> dict:
    name = {"closed": "closed", "synchronize": "synchronize"}.get(action, "opened")
    data = fixture(f"pull_request.{name}")
    data.update(action=action, number=number)
    pr = data["pull_request"]
    pr.update(number=number, draft=draft, state="closed" if action == "closed" else "open")
    pr["base"]["ref"] = base
    pr["head"]["sha"] = HEADS[number]
    data["installation"] = {"id": 957387}
    return data


def statuses(harness) -> dict[str, list[tuple[str, str]]]:
    """The statuses GitHub received, per head sha: (state, description)."""
    got: dict[str, list[tuple[str, str]]] = {}
    for call in harness.github.of(STATUS_KEY):
        assert call.body["context"] == "promobot/pipeline"
        assert len(call.body["description"]) <= 140
        got.setdefault(call.path.rsplit("/", 1)[1], []).append(
            (call.body["state"], call.body["description"])
        )
    return got


def test_verdict_is_a_pure_function_of_the_branch():
    green = Branch(None, (), None, 5, "dumpling", "main")
    assert verdict(green, block_when_red=True, timezone="UTC").description == (
        "dumpling is 5 builds behind main"
    )
    red_build = {"number": 41, "sha": "abc1234ffff", "html_url": "https://c/abc"}
    failing = [{"context": "ci/test", "target_url": "https://ci/41"}]
    red = Branch(red_build, failing, None, 5, "dumpling", "main")
    assert verdict(red, block_when_red=True, timezone="UTC") == (
        verdict(red, block_when_red=True, timezone="UTC").__class__(
            "failure",
            "main is red since #41 (abc1234): ci/test failed — fix or revert first",
            "https://ci/41",
        )
    )
    assert verdict(red, block_when_red=False, timezone="UTC").state == "success"
    long = Branch(red_build, [{"context": "x" * 200, "target_url": None}], None, 0, "d", "main")
    assert len(verdict(long, block_when_red=True, timezone="UTC").description) == 140


async def test_open_prs_pass_then_fail_while_main_is_red_then_pass_again(harness):
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="success"))
    for number in (7, 8):
        await harness.deliver("pull_request", pr_payload("opened", number))
    await harness.deliver("pull_request", pr_payload("opened", 9, base="release"))
    await harness.settle()
    assert statuses(harness) == {
        HEADS[7]: [("success", "dumpling is 1 build behind main")],
        HEADS[8]: [("success", "dumpling is 1 build behind main")],
    }

    await harness.deliver("pull_request", pr_payload("closed", 8))
    red = status_payload(state="failure", stamp="2026-11-24T09:10:00Z", target_url="https://ci/9")
    await harness.deliver("status", red)
    await harness.settle()
    failing = "main is red since #1 (6113728): ci/test failed — fix or revert first"
    assert statuses(harness)[HEADS[7]][-1] == ("failure", failing)
    assert len(statuses(harness)[HEADS[8]]) == 1  # closed: dropped out
    (last,) = [c for c in harness.github.of(STATUS_KEY) if c.body["state"] == "failure"]
    assert last.body["target_url"] == "https://ci/9"

    # A second red build keeps the same verdict: nothing is written again.
    await harness.deliver("push", push_payload("d" * 40, stamp="2026-11-24T09:20:00Z"))
    await harness.deliver("status", status_payload("d" * 40, state="failure"))
    await harness.settle()
    assert len(statuses(harness)[HEADS[7]]) == 2

    fixed = status_payload("d" * 40, state="success", stamp="2026-11-24T09:30:00Z")
    await harness.deliver("status", fixed)
    await harness.settle()
    assert statuses(harness)[HEADS[7]] == [
        ("success", "dumpling is 1 build behind main"),
        ("failure", failing),
        ("success", "dumpling is 2 builds behind main"),
    ]
    assert HEADS[9] not in statuses(harness)


async def test_a_new_head_gets_its_own_status_and_a_repeat_gets_none(harness):
    await harness.deliver("pull_request", pr_payload("opened", 7))
    await harness.deliver("pull_request", pr_payload("synchronize", 7))  # same head: no write
    await harness.settle()
    assert statuses(harness) == {HEADS[7]: [("success", "dumpling is up to date with main")]}
    moved = pr_payload("synchronize", 7)
    moved["pull_request"]["head"]["sha"] = "e" * 40
    await harness.deliver("pull_request", moved)
    await harness.settle()
    assert statuses(harness)["e" * 40] == [("success", "dumpling is up to date with main")]


async def test_a_pr_retargeted_away_from_main_is_released(harness):
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="failure"))
    await harness.deliver("pull_request", pr_payload("opened", 7))
    await harness.settle()
    retarget = pr_payload("edited", 7, base="release")
    retarget["changes"] = {"base": {"ref": {"from": "main"}}}
    await harness.deliver("pull_request", retarget)
    await harness.settle()
    assert [s for s, _ in statuses(harness)[HEADS[7]]] == ["failure", "success"]
    assert statuses(harness)[HEADS[7]][-1][1] == "not into main: promobot does not gate it"
    await harness.deliver("status", status_payload(state="success", stamp="2026-11-24T10:00:00Z"))
    await harness.settle()
    assert len(statuses(harness)[HEADS[7]]) == 2  # no longer tracked


async def test_our_own_status_never_counts_as_ci(harness):
    await harness.deliver("push", push_payload())
    ours = status_payload(state="failure", context="promobot/pipeline")
    await harness.deliver("status", ours)
    await harness.settle()
    assert harness.rows("SELECT ci_state FROM builds") == [{"ci_state": "pending"}]
    assert harness.rows("SELECT count(*) AS n FROM check_reports") == [{"n": 0}]


def announcements(harness) -> list:
    """Return the channel posts other than the builds' own progress messages."""
    return [p for p in harness.slack.posts("#releases") if not p.body["text"].startswith("Build #")]


async def test_a_freeze_fails_every_open_pr_with_its_reason(harness):
    await harness.deliver("push", push_payload())
    for number in (7, 8):
        await harness.deliver("pull_request", pr_payload("opened", number))
    await harness.settle()

    refused = await harness.slash('freeze "release day"', user="U999")
    assert "only dumpling's promoters" in await refused.text()
    answer = await harness.slash('freeze "release day & <cake>"', user="U012ABC")
    assert "frozen: release day &amp; &lt;cake&gt;" in await answer.text()
    await harness.settle()
    frozen = "merges are frozen: release day & <cake> (by U012ABC, since "
    for number in (7, 8):
        state, description = statuses(harness)[HEADS[number]][-1]
        assert state == "failure" and description.startswith(frozen)
    (announcement,) = announcements(harness)
    assert announcement.body["text"] == (
        ":snowflake: <@U012ABC> froze merges into Codertocat/Hello-World:"
        " release day &amp; &lt;cake&gt;"
    )
    again = await harness.slash('freeze "again"', user="U012ABC")
    assert "already frozen" in await again.text()

    lifted = await harness.slash("unfreeze", user="U012ABC")
    assert "lifted" in await lifted.text()
    await harness.settle()
    assert statuses(harness)[HEADS[7]][-1] == ("success", "dumpling is 1 build behind main")
    assert len(announcements(harness)) == 2
    log = harness.rows("SELECT actor, action, reason FROM event_log WHERE action LIKE 'freeze%'")
    assert log == [
        {"actor": "U012ABC", "action": "freeze.started", "reason": "release day & <cake>"},
        {"actor": "U012ABC", "action": "freeze.ended", "reason": "release day & <cake>"},
    ]


async def test_a_member_of_a_promoter_group_may_freeze(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    harness.slack.usergroups["S0RELEASE"] = ["U777"]
    answer = await harness.slash('freeze "hotfix only"', user="U777")
    assert "frozen" in await answer.text()
    assert harness.rows("SELECT frozen_by, reason FROM freezes") == [
        {"frozen_by": "U777", "reason": "hotfix only"}
    ]
    bad = await harness.slash("freeze", user="U777")
    assert "Usage: `/ship freeze" in await bad.text()


async def test_a_freeze_names_who_froze_by_their_slack_name_on_github(harness):
    harness.slack.users["U012ABC"] = "Ada Lovelace"
    await harness.deliver("push", push_payload())
    await harness.deliver("pull_request", pr_payload("opened", 7))
    await harness.settle()
    await harness.slash('freeze "release day"', user="U012ABC")
    await harness.settle()
    state, description = statuses(harness)[HEADS[7]][-1]
    assert state == "failure"
    assert description.startswith("merges are frozen: release day (by Ada Lovelace, since ")
