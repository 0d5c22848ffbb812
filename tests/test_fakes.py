"""The one fake Slack and fake GitHub refuse what the real APIs refuse, and tell listeners."""

import pytest

from bot.dev.fakes import FakeGitHub, FakeSlack

AUTH = {"Authorization": f"Bearer {FakeSlack.TOKEN}"}
TOKEN = {"Authorization": "token ghs_fake0001"}


@pytest.fixture
async def slack(aiohttp_client):
    fake = FakeSlack()
    fake.client = await aiohttp_client(fake.app())
    return fake


@pytest.fixture
async def github(aiohttp_client):
    fake = FakeGitHub()
    fake.client = await aiohttp_client(fake.app())
    return fake


async def slack_call(fake: FakeSlack, method: str, body: dict, headers: dict = AUTH) -> dict:
    answer = await fake.client.post(f"/api/{method}", json=body, headers=headers)
    return await answer.json()


async def test_slack_refuses_what_slack_refuses(slack):
    assert (
        await slack_call(slack, "chat.postMessage", {"channel": "#releases", "text": "hi"}, {})
    )["error"] == "not_authed"
    missing = await slack_call(slack, "chat.postMessage", {"text": "hi"})
    assert missing["error"] == "invalid_arguments"
    assert missing["response_metadata"]["messages"] == ["channel"]
    nowhere = await slack_call(slack, "chat.postMessage", {"channel": "#nowhere", "text": "hi"})
    assert nowhere["error"] == "channel_not_found"
    long = await slack_call(
        slack, "chat.postMessage", {"channel": "#releases", "text": "x" * 40_001}
    )
    assert long["error"] == "msg_too_long"
    assert (await slack_call(slack, "chat.nonsense", {}))["error"] == "unknown_method"
    assert slack.messages == {}  # nothing refused was posted
    assert len(slack.calls) == 5  # and every try is on the record


async def test_slack_posts_edits_and_tells_its_listeners(slack):
    heard = []

    async def listener(call, answer):
        heard.append((call.method, answer["ts"]))

    slack.listeners.append(listener)
    posted = await slack_call(slack, "chat.postMessage", {"channel": "#releases", "text": "#1"})
    assert posted["channel"] == "C0RELEASES"
    edit = {"channel": "C0RELEASES", "ts": posted["ts"], "text": "#1 ✅"}
    assert (await slack_call(slack, "chat.update", edit))["ok"]
    await slack_call(slack, "chat.update", {**edit, "ts": "1.000000"})  # refused: not told
    assert heard == [("chat.postMessage", posted["ts"]), ("chat.update", posted["ts"])]
    assert slack.messages[("C0RELEASES", posted["ts"])]["text"] == "#1 ✅"


async def test_slack_rate_limit_is_played_then_calls_go_through(slack):
    slack.rate_limit("chat.postMessage", 30)
    body = {"channel": "#releases", "text": "hi"}
    limited = await slack.client.post("/api/chat.postMessage", json=body, headers=AUTH)
    assert limited.status == 429 and limited.headers["Retry-After"] == "30"
    assert (await slack_call(slack, "chat.postMessage", body))["ok"]
    assert len(slack.posts()) == 2 and len(slack.messages) == 1


async def test_github_refuses_unknown_routes_bad_bodies_and_bad_credentials(github):
    path = "/repos/acme/app/deployments"
    assert (await github.client.get("/repos/acme/app/nothing-here", headers=TOKEN)).status == 404
    bad = await github.client.post(path, json={"ref": 7}, headers=TOKEN)
    assert bad.status == 422 and (await bad.json())["errors"] == ["ref has the wrong type"]
    assert (await github.client.post(path, json={"ref": "main"})).status == 401
    assert github.deployments == {}


async def test_github_deployments_are_kept_listed_and_told(github):
    heard = []

    async def listener(call, answer):
        heard.append((call.method, answer if isinstance(answer, list) else answer["id"]))

    github.listeners.append(listener)
    path = "/repos/acme/app/deployments"
    made = await github.client.post(
        path, json={"ref": "abc", "environment": "pasty"}, headers=TOKEN
    )
    assert made.status == 201
    deployment = await made.json()
    listed = await (await github.client.get(path, params={"sha": "abc"}, headers=TOKEN)).json()
    assert [d["id"] for d in listed] == [deployment["id"]]
    assert heard == [
        ("POST /repos/{owner}/{repo}/deployments", deployment["id"]),
        ("GET /repos/{owner}/{repo}/deployments", listed),
    ]


async def test_github_answers_a_read_it_keeps_nothing_for_with_its_contract_example(github):
    pull = await github.client.get("/repos/acme/app/pulls/7", headers=TOKEN)
    assert pull.status == 200 and (await pull.json())["number"] == 1347
