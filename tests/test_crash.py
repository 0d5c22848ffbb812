"""kill -9 under a stream of deliveries: every acknowledged delivery is processed exactly once."""

import asyncio
import hashlib
import itertools
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bot.dev import client
from bot.dev.fakes import FakeGitHub, FakeSlack
from tests.conftest import (
    ROOT,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    push_payload,
    status_payload,
)
from tests.test_secrets import assert_clean
from tests.waiting import wait_for

# Long runs by design: a longer limit than the suite's default, still not forever.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
KILLS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `promobot serve` process that can be killed and started again on one database."""

    def __init__(self, db: Path, port: int, env: dict, log: Path) -> None:
        self.db, self.port, self.env, self.log = db, port, env, log
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        cmd = [sys.executable, "-m", "bot.cli", "serve", "--config", str(ROOT / "app.yaml")]
        cmd += ["--db", str(self.db), "--port", str(self.port)]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stderr=log)

        async def listening() -> bool:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.close()
            return True

        await wait_for(
            listening, 10, what="promobot serve started", every=0.05, ignoring=(OSError,)
        )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# Each build's CI, as a CI system reports it: every check starts, one in three builds fails a
# check first and recovers (a red and a green thread reply), then everything is green.
CHECKS = ("ci/lint", "ci/test", "ci/build")
PUSH_EVERY = 1.0  # at most one push a second: Slack takes one post a second per channel


def script(build: int) -> list[tuple[str, str]]:
    """Return the (context, state) statuses CI reports for the `build`-th push, in order."""
    steps = [(context, "pending") for context in CHECKS]
    if build % 3 == 0:
        steps.append(("ci/test", "failure"))
    return steps + [(context, "success") for context in CHECKS]


def stamp(seconds: int) -> str:
    """Return an ISO timestamp `seconds` after a fixed start, so reports are strictly ordered."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_795_000_000 + seconds))


async def post(session: aiohttp.ClientSession, url: str, event: str, payload: dict) -> str | None:
    """Deliver one signed webhook; return its delivery ID if it got a 2xx."""
    delivery = str(uuid.uuid4())
    body = json.dumps(payload).encode()
    headers = client.github_headers(event, body, WEBHOOK_SECRET, delivery=delivery)
    try:
        async with session.post(url, data=body, headers=headers) as response:
            return delivery if 200 <= response.status < 300 else None
    except (aiohttp.ClientError, TimeoutError):
        await asyncio.sleep(0.02)  # the server is down: GitHub would retry later
        return None


async def stream(url: str, acked: dict[str, str], shas: list[str], stop: asyncio.Event) -> None:
    """Push about once a second, statuses in between as fast as they go; note every 2xx."""
    loop = asyncio.get_running_loop()
    clock = itertools.count()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        steps: list[tuple[str, str]] = []
        next_push = loop.time()
        while not stop.is_set():
            if loop.time() >= next_push:
                sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
                payload = push_payload(sha, message=f"Crash push {sha[:8]}", stamp=stamp(0))
                if delivery := await post(session, url, "push", payload):
                    acked[delivery] = "push"
                    shas.append(sha)
                    steps = script(len(shas))
                    next_push = loop.time() + PUSH_EVERY
                continue
            # Once the build's CI is done, CI repeats its last word (a redelivery, say).
            context, state = steps.pop(0) if steps else ("ci/build", "success")
            payload = status_payload(
                shas[-1], context=context, state=state, stamp=stamp(next(clock))
            )
            if delivery := await post(session, url, "status", payload):
                acked[delivery] = "status"
            elif steps or state != "success":
                steps.insert(0, (context, state))  # not acknowledged: CI sends it again


async def drained(server: Server, timeout: float = 120.0) -> None:
    """Wait until /healthz counts no pending delivery (stored anywhere) and no pending call."""

    async def empty() -> bool:
        url = f"http://127.0.0.1:{server.port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            backlog = (await response.json())["backlog"]
        return backlog["deliveries_pending"] + backlog["outbox_pending"] == 0

    await wait_for(empty, timeout, what="the backlog drained", every=0.2)


def serve_env(slack: FakeSlack, github: FakeGitHub, private_key: str) -> dict[str, str]:
    """Return the environment of a `promobot serve` talking to the fakes."""
    return {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_APP_ID": "12345",
        "GITHUB_PRIVATE_KEY": private_key,
        "SLACK_BOT_TOKEN": FakeSlack.TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": str(slack.server.make_url("/api/")),
        "GITHUB_API_URL": str(github.server.make_url("")).rstrip("/"),
    }


def posted_keys(slack: FakeSlack) -> tuple[Counter, Counter]:
    """Count the fake Slack's parent messages and thread replies per metadata key."""
    parents: Counter = Counter()
    replies: Counter = Counter()
    for message in slack.messages.values():
        key = ((message.get("metadata") or {}).get("event_payload") or {}).get("key")
        assert key, message  # every post the relay makes is tagged
        (replies if message["thread_ts"] else parents)[key] += 1
    return parents, replies


async def test_kill_9_loses_and_repeats_nothing(tmp_path, fake_slack, fake_github, private_key):
    env = serve_env(fake_slack, fake_github, private_key)
    db, log = tmp_path / "promobot.db", tmp_path / "serve.log"
    # Slack answers slowly, so some kills land between a post and its answer.
    fake_slack.latency = 0.3
    server = Server(db, free_port(), env, log)
    await server.start()
    acked: dict[str, str] = {}
    shas = [hashlib.sha1(b"first").hexdigest()]
    stop = asyncio.Event()
    sender = asyncio.create_task(
        stream(f"http://127.0.0.1:{server.port}/github/webhooks", acked, shas, stop)
    )
    rng = random.Random()
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.1, 0.8))
            server.kill()
            await server.start()
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await sender
    await drained(server)
    server.stop()

    states = dict(query(db, "SELECT delivery_id, state FROM deliveries"))
    attempts = dict(query(db, "SELECT delivery_id, attempts FROM deliveries"))
    assert len(acked) > 50
    for delivery in acked:  # every 2xx was stored and processed, once
        assert states.get(delivery) in ("done", "ignored"), delivery
        assert attempts[delivery] == 1, delivery
    numbers = [n for (n,) in query(db, "SELECT number FROM builds ORDER BY number")]
    assert numbers == list(range(1, len(numbers) + 1))
    pushed = {sha for sha in shas[1:]}
    assert {s for (s,) in query(db, "SELECT sha FROM builds")} >= pushed
    created = query(db, "SELECT count(*) FROM event_log WHERE action = 'build.created'")
    assert created[0][0] == len(numbers)
    # No Slack message posted twice: each tagged key names one parent message, one reply.
    parents, replies = posted_keys(fake_slack)
    assert [key for key, n in parents.items() if n > 1] == []
    assert [key for key, n in replies.items() if n > 1] == []
    builds = {f"build:{i}" for (i,) in query(db, "SELECT id FROM builds")}
    assert {key for key in parents if key.startswith("build:")} == builds
    assert sum(replies.values()) >= len(numbers) // 3  # the red builds' thread replies
    assert_clean(log.read_text(), private_key)


async def test_kill_9_during_the_first_post_into_a_channel(
    tmp_path, fake_slack, fake_github, private_key
):
    env = serve_env(fake_slack, fake_github, private_key)
    db, log = tmp_path / "promobot.db", tmp_path / "serve.log"
    fake_slack.latency = 2.0  # the first post into #releases is in flight for a while
    server = Server(db, free_port(), env, log)
    await server.start()
    url = f"http://127.0.0.1:{server.port}/github/webhooks"
    async with aiohttp.ClientSession() as session:
        sha = hashlib.sha1(b"only").hexdigest()
        assert await post(session, url, "push", push_payload(sha))
    await wait_for(lambda: fake_slack.of("chat.postMessage"), what="the first post")
    server.kill()  # Slack has the post; promobot never hears its answer
    fake_slack.latency = 0.0
    await server.start()
    await drained(server)
    server.stop()
    parents, _ = posted_keys(fake_slack)
    assert parents == {"build:1": 1}
