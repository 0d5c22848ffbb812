"""A promobot running as `serve --dev` does (on a known free port), for dev and dashboard tests."""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer, unused_port

from bot.app import SERVICES, create_app
from bot.config import Config
from bot.dev.mode import DevMode, dev_secrets
from bot.pipeline.tx import Tx
from handlers import inbound
from storage import connect
from tests.conftest import Harness, push_payload, status_payload
from tests.waiting import wait_for

SHAS = [f"{n:x}" * 40 for n in range(1, 4)]


class DevHarness(Harness):
    """A Harness whose app runs in dev mode; the console's output is kept in `console`."""

    console: list[str]
    url: str

    @property
    def secrets(self) -> Any:
        return self.services.secrets

    async def deliver(self, event: str, payload: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("secret", self.secrets.github_webhook_secret)
        return await super().deliver(event, payload, **kwargs)

    async def queue(self, method: str, payload: dict, *, lane: str, target: str = "slack") -> None:
        """Queue an outbox row as a feature would, and wake the relay."""
        services = self.services
        now = services.clock.now()
        await services.store.write(
            lambda db: Tx(db, services.config, now).send(target, method, payload, lane=lane)
        )
        services.relay.wake()

    async def until(self, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until `probe()` returns something true; fail after `timeout` seconds."""
        return await wait_for(probe, timeout, every=0.05)


def execute(db_path: Path, sql: str, params: list | None = None) -> int:
    """Write to the database directly (rows another feature would have written)."""
    db = connect(db_path)
    try:
        cursor = db.execute(sql, params or [])
        db.conn.commit()
        return int(cursor.lastrowid or 0)
    finally:
        db.close()


def deploy(
    db_path: Path, number: int, stage: str, state: str, at: float, *, took: float = 5.0
) -> int:
    """Record a deployment of build #`number` as the promotions feature would."""
    finished = at + took if state in ("success", "failure", "error") else None
    return execute(
        db_path,
        "INSERT INTO deployments (repo_id, build_id, stage, state, requested_by, created_at,"
        " updated_at, finished_at) SELECT repo_id, id, ?, ?, 'promobot', ?, ?, ? FROM builds"
        " WHERE number = ?",
        [stage, state, at, finished or at, finished, number],
    )


def manual(config: Config) -> Config:
    """Return `config` with no automatic stage, so only the rows a test writes are deployments."""
    stages = tuple(dataclasses.replace(s, auto=False) for s in config.pipeline.stages)
    return dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, stages=stages))


async def start_dev(
    aiohttp_client: Callable, tmp_path: Path, config: Config, **mode: Any
) -> DevHarness:
    """Start promobot in dev mode on a free port of 127.0.0.1."""
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    console: list[str] = []
    options = {"deploy_delay": 0.05, "demo": False, "write": console.append, **mode}
    app = create_app(
        config,
        dev_secrets(url),
        db_path=tmp_path / "dev.db",
        inbound=inbound(),
        dev=DevMode(url=url, **options),
    )
    client = await aiohttp_client(TestServer(app, host="127.0.0.1", port=port))
    harness = DevHarness(client, tmp_path / "dev.db", None, None)  # type: ignore[arg-type]
    harness.console, harness.url = console, url
    assert client.server.app[SERVICES].dev is not None
    return harness


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


async def pipeline(harness, *, red: int | None = None) -> float:
    """Push three builds (one red when asked); put #1 in pasty and baklava, #2 deploying."""
    now = time.time()
    for n, sha in enumerate(SHAS, start=1):
        message = f"Change {n}: <script>alert({n})</script> & more"
        await harness.deliver("push", push_payload(sha, message=message, stamp=iso(now - 900)))
        state = "failure" if n == red else "success"
        await harness.deliver("status", status_payload(sha, state=state, stamp=iso(now - 800)))
    await harness.settle()
    deploy(harness.db_path, 1, "pasty", "success", now - 700)
    deploy(harness.db_path, 1, "baklava", "success", now - 400)
    deploy(harness.db_path, 2, "pasty", "in_progress", now - 10)
    return now
