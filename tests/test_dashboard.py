"""GET / and GET /builds/…: stages, the value stream map, a build's journey; behind a token."""

import dataclasses
import re

import pytest

from bot.web.dashboard import templates
from tests.devsupport import deploy, execute, manual, pipeline

TOKEN = "dashboard-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def config(config):
    # The dashboard is tested on deployments written here; no stage deploys on its own.
    return manual(config)


@pytest.fixture
def secrets(secrets):
    return dataclasses.replace(secrets, dashboard_token=TOKEN)


def test_durations_read_like_people_write_them():
    duration = templates().filters["duration"]
    cases = {None: "", 5: "5s", 125: "2m 5s", 900: "15m", 3900: "1h 5m", 90000: "1d 1h"}
    assert {k: duration(k) for k in cases} == cases


async def test_dashboard_is_off_without_a_token(make_harness, secrets):
    harness = await make_harness()
    harness.services.secrets = dataclasses.replace(secrets, dashboard_token="")
    assert (await harness.client.get("/")).status == 404
    assert (await harness.client.get("/builds/a/b/1")).status == 404


async def test_token_once_then_a_cookie(harness):
    assert (await harness.client.get("/")).status == 401
    assert (await harness.client.get("/?token=wrong")).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await harness.client.get("/", headers=wrong)).status == 401
    answer = await harness.client.get(f"/?token={TOKEN}&refresh=9", allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/?refresh=9"
    assert TOKEN not in answer.cookies["promobot_dashboard"].value
    page = await harness.client.get("/")  # the client keeps the cookie
    assert page.status == 200 and "no-referrer" in page.headers["Referrer-Policy"]
    assert (await harness.client.get("/", headers=BEARER)).status == 200


async def test_stages_show_their_build_age_locks_and_waiting_approvals(harness):
    now = await pipeline(harness, red=3)
    execute(
        harness.db_path,
        "INSERT INTO locks (repo_id, stage, locked_by, reason, created_at, expires_at)"
        " VALUES (186853002, 'baklava', 'U012ABC', 'load test <today>', ?, ?)",
        [now, now + 7200],
    )
    execute(
        harness.db_path,
        "INSERT INTO freezes (repo_id, frozen_by, reason, started_at)"
        " VALUES (186853002, 'U0DEVBOB', 'quarterly audit', ?)",
        [now],
    )
    execute(
        harness.db_path,
        "INSERT INTO promotions (repo_id, build_id, stage, requested_by, state, created_at)"
        " SELECT repo_id, id, 'dumpling', 'U012ABC', 'waiting', ? FROM builds WHERE number = 1",
        [now],
    )
    html = await (await harness.client.get("/", headers=BEARER)).text()
    assert html.count('class="stage"') == 3
    for stage in ("pasty", "baklava", "dumpling"):
        assert f'data-stage="{stage}"' in html
    assert "live for 11m" in html or "live for 12m" in html  # pasty since 700 s ago
    assert "🔒 Locked by U012ABC: load test &lt;today&gt;" in html
    assert "⌛ #1 waits for approval" in html
    assert "Merges frozen by U0DEVBOB" in html and "quarterly audit" in html
    assert "⏳ #2 deploying (in progress)" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert '<meta http-equiv="refresh" content="5">' in html


async def test_value_stream_map_shows_when_each_build_got_where_and_failures(harness):
    await pipeline(harness, red=3)
    html = await (await harness.client.get("/", headers=BEARER)).text()
    rows = {n: html.split(f'<tr data-build="{n}">')[1].split("</tr>")[0] for n in (1, 2, 3)}
    assert rows[1].count("cell done") == 3 and "waited 5m" in rows[1]  # pasty→baklava: 300 s
    assert "live now" in rows[1]
    assert "cell running" in rows[2] and "deploying" in rows[2]
    assert "cell failed" in rows[3] and "✗ failed" in rows[3]


async def test_a_build_page_shows_its_journey_checks_and_event_log(harness):
    await pipeline(harness)
    answer = await harness.client.get("/builds/Codertocat/Hello-World/1", headers=BEARER)
    html = await answer.text()
    assert answer.status == 200
    journey = html.split('<ol class="journey">')[1].split("</ol>")[0]
    assert re.findall(r"<li>(.*?) at ", journey) == [
        "pushed to main",
        "CI green",
        "live in pasty",
        "live in baklava",
    ]
    assert "(after 5m)" in journey
    assert "ci/test" in html and "https://ci.example.com/1" in html
    events = html.split('<table class="events">')[1].split("</table>")[0]
    assert "<td>octocat pushed build #1.</td>" in events  # sentences, not dicts
    assert "<td>CI went green.</td>" in events and "{" not in events
    missing = await harness.client.get("/builds/Codertocat/Hello-World/99", headers=BEARER)
    assert missing.status == 404


async def test_people_are_shown_by_their_slack_names_and_unknown_ones_by_id(harness):
    harness.slack.users["U012ABC"] = "Ada Lovelace"
    now = await pipeline(harness)
    execute(
        harness.db_path,
        "INSERT INTO locks (repo_id, stage, locked_by, reason, created_at)"
        " VALUES (186853002, 'baklava', 'U012ABC', 'load test', ?)",
        [now],
    )
    execute(
        harness.db_path,
        "INSERT INTO freezes (repo_id, frozen_by, reason, started_at)"
        " VALUES (186853002, 'U0NOBODY', 'audit', ?)",
        [now],
    )
    html = await (await harness.client.get("/", headers=BEARER)).text()
    assert "🔒 Locked by Ada Lovelace: load test" in html and "U012ABC" not in html
    assert "Merges frozen by U0NOBODY" in html  # Slack does not know them: the ID stays
    looked_up = {c.body["user"] for c in harness.slack.of("users.info")}
    assert looked_up == {"U012ABC", "U0NOBODY"}
    await harness.client.get("/", headers=BEARER)
    assert len(harness.slack.of("users.info")) == 3  # Ada's name is kept; U0NOBODY asked again


async def test_the_live_build_is_the_one_that_succeeded_last_even_in_the_same_second(harness):
    now = await pipeline(harness)  # #1 live in pasty, #2 deploying there
    again = deploy(harness.db_path, 1, "pasty", "in_progress", now - 8)  # #1 redeployed too
    (flight,) = harness.rows(
        "SELECT id FROM deployments WHERE state = 'in_progress' AND id != ?", [again]
    )
    for deployment in (again, flight["id"]):  # both succeed in one second, #2's last
        execute(
            harness.db_path,
            "UPDATE deployments SET state = 'success', finished_at = ?, succeeded_at = ?"
            " WHERE id = ?",
            [now - 5, now - 5, deployment],
        )
    html = await (await harness.client.get("/", headers=BEARER)).text()
    pasty = html.split('data-stage="pasty"')[1].split('class="stage"')[0]
    assert "<strong>#2</strong>" in pasty
    builds = {n: html.split(f'<tr data-build="{n}">')[1].split("</tr>")[0] for n in (1, 2)}
    assert '<td class="cell done live" title="live in pasty">' in builds[2]
    assert 'title="was live in pasty until #2 replaced it"' in builds[1]
