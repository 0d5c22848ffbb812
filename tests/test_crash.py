"""kill -9 under a stream of deliveries: every acknowledged delivery is processed exactly once."""

import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import (
    ROOT,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    push_payload,
    sign_github,
    status_payload,
)
from tests.fakes import FakeSlack
from tests.test_secrets import assert_clean

pytestmark = pytest.mark.slow
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
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise TimeoutError("promobot serve did not start")

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


async def stream(url: str, acked: dict[str, str], shas: list[str], stop: asyncio.Event) -> None:
    """Send pushes and statuses until told to stop; note every delivery that got a 2xx."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 5 == 1:
                sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
                event, payload = "push", push_payload(sha, message=f"Crash push {sha[:8]}")
            else:
                event, payload = "status", status_payload(shas[-1], context=f"ci/{i}")
            delivery = str(uuid.uuid4())
            body = json.dumps(payload).encode()
            headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
            headers |= {"X-Hub-Signature-256": sign_github(body)}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        acked[delivery] = event
                        if event == "push":
                            shas.append(sha)
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.02)  # the server is down: GitHub would retry later


async def drained(db: Path, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        left = query(
            db,
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending')"
            " + (SELECT count(*) FROM outbox WHERE state = 'pending')",
        )[0][0]
        if left == 0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the backlog did not drain")


async def test_kill_9_loses_and_repeats_nothing(tmp_path, fake_slack, fake_github, private_key):
    env = {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_APP_ID": "12345",
        "GITHUB_PRIVATE_KEY": private_key,
        "SLACK_BOT_TOKEN": FakeSlack.TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": str(fake_slack.server.make_url("/api/")),
        "GITHUB_API_URL": str(fake_github.server.make_url("")).rstrip("/"),
    }
    db, log = tmp_path / "promobot.db", tmp_path / "serve.log"
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
    await drained(db)
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
    # No Slack message posted twice (once builds post progress messages).
    texts = Counter(c.body.get("text") for c in fake_slack.posts())
    assert [t for t, n in texts.items() if n > 1] == []
    assert_clean(log.read_text(), private_key)
