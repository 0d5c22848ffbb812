"""Where people read the metrics: /ship metrics, the weekly digest section, GET /insights and
`promobot metrics`; and the commits a push carries, kept through the real webhook path."""

import csv
import dataclasses
import io
import json

import pytest

from bot.cli import main
from bot.core.clock import FakeClock
from bot.pipeline.digest_post import as_text, gather
from storage import commits as stored_commits
from storage import connect
from tests.conftest import ROOT, push_payload
from tests.delivery import NOW, T0, H, M, Story
from tests.history import at

TOKEN = "insights-test-token"


@pytest.fixture
def secrets(secrets):
    return dataclasses.replace(secrets, dashboard_token=TOKEN)


def rollback_story(path, config) -> None:
    """Four deployments to dumpling, one of them a rollback that returned to #1."""
    story = Story(path, config)
    story.build(1, T0 + 1 * H)
    story.deploy(1, "dumpling", T0 + 2 * H)
    story.build(2, T0 + 3 * H, ci="failure", ci_at=T0 + 3.5 * H)
    story.build(3, T0 + 4 * H, ci_at=T0 + 4.5 * H)
    story.deploy(3, "dumpling", T0 + 5 * H)
    story.rollback("dumpling", to=1, out=3, when=T0 + 6 * H, took=10 * M)
    story.build(4, T0 + 8 * H)
    story.deploy(4, "dumpling", T0 + 10 * H)
    story.close()


@pytest.fixture
async def harness(make_harness, tmp_path, config):
    rollback_story(tmp_path / "promobot.db", config)
    return await make_harness(clock=FakeClock(NOW))


async def test_ship_metrics_answers_the_asker_through_the_slack_route(harness):
    response = await harness.slash("metrics")
    assert response.status == 200
    text = await response.text()  # the acknowledgement: only the person who asked sees it
    assert "*Delivery of Codertocat/Hello-World* over the last 4 week(s)" in text
    assert "• Deployment frequency: 4 to dumpling (1.0 a week) — *high* (DORA 2024)" in text
    assert "• Change failure rate: 1 of 3 (33%): 0 failed, 1 rolled back, 0 reverted" in text
    assert "• Failed deployment recovery time: median 1h 10m (1 recovery)" in text
    assert "• Deployment rework rate: 1 of 4 (25%)" in text
    assert "• Builds that never reached dumpling: 1 (1 at CI red)" in text
    logged = harness.rows("SELECT actor, action FROM event_log WHERE action = 'metrics'")
    assert logged == [{"actor": "U111", "action": "metrics"}]


async def test_ship_metrics_takes_a_repository_and_weeks(harness):
    text = await (await harness.slash("metrics Codertocat/Hello-World 1")).text()
    assert "over the last 1 week(s)" in text
    assert "no deployment to dumpling in this window" in text  # the last week was quiet


async def test_ship_metrics_refuses_bad_input_and_changes_nothing(harness):
    for text, says in [
        ("metrics 0", "`0` is not a number of weeks (1 to 52)"),
        ("metrics <!channel>", "`&lt;!channel&gt;` is not a number of weeks"),
        ("metrics acme/nope", "promobot does not follow `acme/nope`"),
        ("metrics 2 3", "metrics takes a repository and a number of weeks, no more"),
    ]:
        answer = await (await harness.slash(text)).text()
        assert says in answer and "Usage: `/ship metrics [owner/name] [weeks]`" in answer
    actions = [r["action"] for r in harness.rows("SELECT action FROM event_log")]
    assert "metrics" not in actions and actions.count("command.refused") == 4


async def test_insights_page_is_served_behind_the_dashboard_token(harness):
    assert (await harness.client.get("/insights")).status == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    page = await harness.client.get("/insights", headers=bearer)
    assert page.status == 200
    html = await page.text()
    assert "Deployment frequency: 4 to dumpling (1.0 a week)" in html
    assert html.count("<svg") == 5 and "Failed builds per week" in html
    assert "http://" not in html.split("<body>")[1].replace('xmlns="http://www.w3.org', "")
    assert "<script" not in html
    bad = await harness.client.get("/insights?weeks=x", headers=bearer)
    assert bad.status == 400 and "1 to 52" in await bad.text()


def test_the_cli_prints_a_table_json_and_csv(tmp_path, config, capsys):
    path = tmp_path / "promobot.db"
    rollback_story(path, config)
    base = ["metrics", "--db", str(path), "--config", str(ROOT / "app.yaml")]
    assert main([*base, "--format", "json", "--weeks", "52"]) == 0
    (repo,) = json.loads(capsys.readouterr().out)
    assert (repo["deployments"], repo["changes"], repo["failed_changes"]) == (4, 3, 1)
    assert repo["recovery_median_s"] == 4200.0 and len(repo["weeks"]) == 52
    assert repo["bands"]["report"] == "DORA 2024 Accelerate State of DevOps"
    assert main([*base, "--format", "csv", "--weeks", "52"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 53 and rows[-1]["rework"] == "1"
    assert sum(int(r["deployments"]) for r in rows[:-1]) == 4
    assert main([*base, "--weeks", "52"]) == 0
    table = capsys.readouterr().out
    assert "Delivery of Codertocat/Hello-World over the last 52 week(s)" in table
    assert "week from" in table and "*" not in table
    assert main([*base, "--weeks", "0"]) == 1
    assert "--weeks must be 1 to 52, not 0" in capsys.readouterr().err
    assert main([*base, "--repo", "acme/nope"]) == 1
    assert "promobot does not follow acme/nope" in capsys.readouterr().err
    assert main([*base, "--repo", "codertocat/hello-world", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["repository"] == "Codertocat/Hello-World"


def test_the_digest_has_a_weekly_section_on_the_first_digest_day(tmp_path, config):
    path = tmp_path / "promobot.db"
    rollback_story(path, config)
    db = connect(path, readonly=True)
    try:
        monday = as_text(gather(db, config, at("2026-11-09T09:00+00:00"))[0])
        tuesday = as_text(gather(db, config, at("2026-11-10T09:00+00:00"))[0])
        weekend = dataclasses.replace(config.digest, days=("sat", "sun"))
        sunday = gather(db, dataclasses.replace(config, digest=weekend), at("2026-11-08T09:00Z"))
    finally:
        db.close()
    assert "The week's delivery (DORA):" in monday
    # The week before Monday 09:00 saw #4 go live (the others went live before 09:00 a week ago).
    assert "• Deployment frequency: 1 to dumpling (1.0 a week) — *high* (DORA 2024)" in monday
    assert "• Lead time for changes: median 2h, p90 2h (1 commit)" in monday
    assert "The week's delivery" not in tuesday
    assert "The week's delivery" not in as_text(sunday[0])  # Saturday is that week's first


async def test_a_push_keeps_each_commit_and_its_time(make_harness):
    harness = await make_harness()
    payload = push_payload("b" * 40, message="Second")
    first = {**payload["head_commit"], "id": "a" * 40, "message": "First"}
    first["timestamp"] = "2026-11-24T08:30:00+01:00"
    payload["commits"] = [first, payload["head_commit"]]
    assert (await harness.deliver("push", payload)).status == 202
    await harness.settle()
    rows = harness.rows("SELECT sha, message, committed_at FROM commits ORDER BY committed_at")
    assert [(r["sha"][0], r["message"]) for r in rows] == [("a", "First"), ("b", "Second")]
    assert [r["committed_at"] for r in rows] == [at("2026-11-24T07:30Z"), at("2026-11-24T09:00Z")]
    db = connect(harness.db_path)
    try:
        db.execute("DELETE FROM commits")
        assert stored_commits.backfill_commits(db) == 2  # from the push body still stored
    finally:
        db.close()
