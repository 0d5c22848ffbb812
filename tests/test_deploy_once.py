"""A Deployment is created once on GitHub, whatever happened to the answer of its create call."""

import asyncio
import hashlib

import aiohttp

from bot.core.clock import Clock
from tests.conftest import push_payload, status_payload
from tests.pipeline_driver import Pipeline
from tests.test_crash import Server, drained, free_port, post, query, serve_env

CREATE = "POST /repos/{owner}/{repo}/deployments"
LIST = "GET /repos/{owner}/{repo}/deployments"


async def one_deployment(make_harness, fake_github, *, timeout: float | None = None) -> Pipeline:
    harness = await make_harness()
    if timeout is not None:
        harness.services.github.timeout = timeout
    bot = Pipeline(harness, Clock())  # a real clock: the relay's retry must come due
    await bot.green(1)
    await harness.settle(timeout=20)
    (created,) = fake_github.deployments.values()
    (row,) = harness.rows("SELECT github_id, state FROM deployments")
    assert row == {"github_id": created["id"], "state": "requested"}
    assert harness.rows("SELECT state FROM outbox WHERE target = 'github'") == [{"state": "sent"}]
    return bot


async def test_a_502_after_github_created_it_reuses_the_deployment(make_harness, fake_github):
    fake_github.fail(CREATE, 502, after=True)
    await one_deployment(make_harness, fake_github)
    assert len(fake_github.of(CREATE)) == 1
    (lookup,) = fake_github.of(LIST)
    assert lookup.path == "/repos/Codertocat/Hello-World/deployments"


async def test_a_timeout_after_github_created_it_reuses_the_deployment(make_harness, fake_github):
    fake_github.fail(CREATE, 504, after=True, delay=2.0)  # answered after the client gave up
    await one_deployment(make_harness, fake_github, timeout=0.5)
    assert len(fake_github.of(CREATE)) == 1 and len(fake_github.of(LIST)) == 1


async def test_a_first_attempt_never_looks_and_a_refused_create_is_made_again(
    make_harness, fake_github
):
    fake_github.fail(CREATE, 502)  # refused before GitHub did anything
    await one_deployment(make_harness, fake_github)
    assert len(fake_github.of(CREATE)) == 2  # the lookup found nothing, so it was created
    assert len(fake_github.of(LIST)) == 1


async def test_kill_9_after_github_created_it_does_not_create_another(
    tmp_path, fake_slack, fake_github, private_key
):
    env = serve_env(fake_slack, fake_github, private_key)
    db = tmp_path / "promobot.db"
    server = Server(db, free_port(), env, tmp_path / "serve.log")
    fake_github.fail(CREATE, 502, after=True, delay=3.0)  # the answer is still coming when…
    await server.start()
    url = f"http://127.0.0.1:{server.port}/github/webhooks"
    sha = hashlib.sha1(b"deploy once").hexdigest()
    async with aiohttp.ClientSession() as session:
        assert await post(session, url, "push", push_payload(sha))
        assert await post(session, url, "status", status_payload(sha))
    while not fake_github.deployments:
        await asyncio.sleep(0.02)
    server.kill()  # …promobot dies: GitHub has the Deployment, promobot never heard of it
    await server.start()
    try:
        await drained(server)
    finally:
        server.stop()
    (created,) = fake_github.deployments.values()
    assert query(db, "SELECT github_id, stage FROM deployments") == [(created["id"], "pasty")]
    assert len(fake_github.of(CREATE)) == 1 and len(fake_github.of(LIST)) == 1
