"""DORA and flow metrics of small histories written by hand: each value exact, edge cases too."""

import pytest

from bot.core.metrics_text import slack
from bot.core.report import recovery_band
from bot.pipeline import metrics
from tests.delivery import NOW, T0, H, M, Story, sha
from tests.history import REPO


@pytest.fixture
def story(tmp_path, config):
    s = Story(tmp_path / "promobot.db", config)
    yield s
    s.close()


def measure(story: Story, weeks: int = 4):
    repo = {"id": REPO.id, "full_name": REPO.full_name}
    return metrics.report(story.db, story.config, repo, weeks, NOW)


def test_no_production_deployment_yet(story):
    story.build(1, T0 + 1 * H, ci_at=T0 + 1.5 * H)
    story.deploy(1, "pasty", T0 + 2 * H, took=60)
    story.build(2, T0 + 3 * H, ci="failure", ci_at=T0 + 3.5 * H)
    report = measure(story)
    d, f = report.total.dora, report.total.flow
    assert (d.deployments, d.changes, d.lead_times) == (0, 0, ())
    assert d.lead_median is d.change_failure_rate is d.recovery_median is d.rework_rate is None
    assert (f.builds, f.failed_builds, f.skipped, f.newer) == (2, 1, 0, 2)
    assert f.stages[0].entered == 1 and f.stages[0].median_wait == 0.5 * H
    assert f.stages[0].reasons == {"lock": 0, "approval": 0, "soak": 0, "queued": 0.5 * H}
    assert f.red_seconds == NOW - (T0 + 3.5 * H)  # #2 failed and nothing fixed it
    assert [w.flow.failed_builds for w in report.weeks] == [1, 0, 0, 0]
    text = slack(report)
    assert "no deployment to dumpling in this window" in text
    assert "no commit reached production in this window" in text
    assert "Change failure rate: 0 of 0 (n/a)" in text
    assert "Failed builds: 1 of 2 (week by week: 1, 0, 0, 0); main red 27d 20h (99% of" in text


def test_a_deployment_that_carried_many_builds(story):
    story.build(1, T0 - 48 * H, commits=(("c1", "Start", T0 - 49 * H),))
    story.deploy(1, "dumpling", T0 - 24 * H)  # before the window: production's floor
    story.build(2, T0 + 10 * H, commits=(("c2a", "A", T0 + 8 * H), ("c2b", "B", T0 + 9 * H)))
    story.build(3, T0 + 11 * H, ci="failure")  # no commits stored: its head commit's time counts
    c4 = (("c4a", "C", T0 + 13 * H), ("c4b", "D", T0 + 13.5 * H), ("c4c", "E", T0 + 14 * H))
    story.build(4, T0 + 14 * H, commits=c4)
    story.deploy(4, "dumpling", T0 + 20 * H)
    d = measure(story).total.dora
    assert sorted(d.lead_times) == [h * H for h in (6, 6.5, 7, 9, 11, 12)]
    assert d.lead_median == 8 * H  # between 7h and 9h
    assert d.lead_p90 == 12 * H  # nearest rank: the 6th of 6
    assert (d.deployments, d.changes, d.failed_changes, d.change_failure_rate) == (1, 1, 0, 0.0)
    f = measure(story).total.flow
    assert (f.skipped, f.stopped, f.newer) == (2, {"CI": 1, "CI red": 1}, 0)


def test_a_rollback_that_returned_to_an_older_build(story):
    story.build(1, T0 + 1 * H)
    story.deploy(1, "dumpling", T0 + 2 * H)
    story.build(2, T0 + 3 * H)
    story.deploy(2, "dumpling", T0 + 5 * H)
    story.rollback("dumpling", to=1, out=2, when=T0 + 6 * H, took=10 * M)
    story.build(3, T0 + 8 * H)
    story.deploy(3, "dumpling", T0 + 10 * H)
    d = measure(story).total.dora
    assert d.deployments == 4  # the rollback is a deployment too
    assert d.lead_times == (1 * H, 2 * H, 2 * H)  # #2's commit counts once, when it went live
    assert (d.lead_median, d.lead_p90) == (2 * H, 2 * H)
    assert (d.changes, d.failed_changes, d.rolled_back) == (3, 1, 1)
    assert d.change_failure_rate == pytest.approx(1 / 3)
    assert d.recoveries == (1 * H + 10 * M,)  # #2 went live until the rollback to #1 did
    assert recovery_band(d.recovery_median) == "high or medium"
    assert (d.rework, d.rework_rate) == (1, 0.25)


def test_a_change_live_again_in_the_second_of_its_rollback_but_after_it_did_not_fail(story):
    story.build(1, T0 + 1 * H)
    story.deploy(1, "dumpling", T0 + 2 * H)
    story.build(2, T0 + 3 * H)
    story.deploy(2, "dumpling", T0 + 5 * H)
    story.rollback("dumpling", to=1, out=2, when=T0 + 6 * H)
    story.deploy(2, "dumpling", T0 + 6 * H)  # #2 again, live in that second, after the rollback
    d = measure(story).total.dora
    assert (d.changes, d.failed_changes, d.rolled_back) == (3, 1, 1)  # #2's first time only
    assert d.recoveries == (1 * H,)


def test_a_revert_of_a_revert_lands_the_change_again(story):
    story.build(1, T0 + 1 * H, commits=(("A", "Add X", T0 + 1 * H),))
    story.deploy(1, "dumpling", T0 + 2 * H)
    revert = f'Revert "Add X"\n\nThis reverts commit {sha("A")}.'
    story.build(2, T0 + 3 * H, commits=(("B", revert, T0 + 3 * H),))
    story.deploy(2, "dumpling", T0 + 4 * H)
    reland = f'Revert "Revert "Add X""\n\nThis reverts commit {sha("B")}.'
    story.build(3, T0 + 5 * H, commits=(("C", reland, T0 + 5 * H),))
    story.deploy(3, "dumpling", T0 + 6 * H)
    story.build(4, T0 + 7 * H, commits=(("D", "Hotfix: guard X against None", T0 + 7 * H),))
    story.deploy(4, "dumpling", T0 + 8 * H)
    d = measure(story).total.dora
    assert (d.changes, d.failed_changes, d.reverted) == (4, 1, 1)  # only #1: its change reverted
    assert d.change_failure_rate == 0.25
    assert (d.rework, d.rework_rate) == (2, 0.5)  # #2 reverts production, #4 is a hotfix
    assert d.recoveries == ()


def test_a_revert_found_by_its_title_and_one_too_late(story):
    story.build(1, T0 + 1 * H, commits=(("A", "Add Y", T0 + 1 * H),))
    story.deploy(1, "dumpling", T0 + 2 * H)
    story.build(2, T0 + 3 * H, commits=(("B", "Add Z", T0 + 3 * H),))
    story.deploy(2, "dumpling", T0 + 4 * H)
    story.build(3, T0 + 5 * H, commits=(("C", 'Revert "Add Y"', T0 + 5 * H),))  # no sha line
    story.build(4, T0 + 13 * 24 * H, commits=(("D", 'Revert "Add Z"', T0 + 13 * 24 * H),))
    d = measure(story).total.dora
    assert (d.changes, d.reverted) == (2, 1)  # #2's revert came 9 days after it went live


def test_a_failed_deployment_and_its_recovery(story):
    story.build(1, T0 + 1 * H)
    story.deploy(1, "dumpling", T0 + 1 * H)
    story.build(2, T0 + 2 * H)
    story.deploy(2, "dumpling", T0 + 2 * H, took=5 * M, state="failure")
    story.build(3, T0 + 3 * H)
    story.deploy(3, "dumpling", T0 + 4 * H)
    report = measure(story)
    d = report.total.dora
    assert (d.deployments, d.changes, d.failed, d.failed_changes) == (2, 3, 1, 1)
    assert d.recoveries == (2 * H - 5 * M,)
    assert d.lead_times == (0.0, 2 * H, 1 * H)  # #3 carried #2's commit too
    assert [w.dora.deployments for w in report.weeks] == [2, 0, 0, 0]


def test_waits_before_each_stage_and_why(story):
    story.build(1, T0, ci_at=T0 + 10 * M)
    story.deploy(1, "pasty", T0 + 12 * M, took=3 * M)
    story.promote(1, "baklava", T0 + 40 * M, T0 + 40 * M)
    story.deploy(1, "baklava", T0 + 40 * M, took=5 * M)
    story.lock("dumpling", T0 + 50 * M, T0 + 80 * M)
    asked = story.promote(1, "dumpling", T0 + 90 * M, T0 + 120 * M, approvers=("U0BOB",))
    story.deploy(1, "dumpling", T0 + 120 * M, promotion=asked)
    pasty, baklava, dumpling = measure(story).total.flow.stages
    assert (pasty.median_wait, pasty.reasons["queued"]) == (2 * M, 2 * M)
    assert baklava.median_wait == 25 * M  # live in pasty at 15m, entered at 40m
    assert baklava.reasons == {"lock": 0, "approval": 0, "soak": 15 * M, "queued": 10 * M}
    assert dumpling.median_wait == 75 * M  # live in baklava at 45m, entered at 120m
    assert dumpling.reasons == {"lock": 30 * M, "approval": 30 * M, "soak": 5 * M, "queued": 10 * M}
    lines = slack(measure(story))
    assert "• dumpling: median wait 1h 15m over 1 build(s) — lock 40%, approval 40%" in lines
