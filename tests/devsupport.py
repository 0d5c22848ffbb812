"""A promobot running as `serve --dev` does (on a known free port), for dev and dashboard tests."""

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer, unused_port

from bot.app import SERVICES, create_app
from bot.config import Config
from bot.dev.mode import DevMode, dev_secrets
from bot.dev.payloads import iso
from bot.pipeline.outbox import Outbound
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

    async def queue(self, row: Outbound) -> None:
        """Queue an outbox row as a feature would, and wake the relay."""
        services = self.services
        now = services.clock.now()
        await services.store.write(lambda db: Tx(db, services.config, now).send(row))
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
    db_path: Path,
    number: int,
    stage: str,
    state: str,
    at: float,
    *,
    took: float = 5.0,
    by: str = "promobot",
    promotion: int | None = None,
) -> int:
    """Record a deployment of build #`number` as the promotions feature would."""
    finished = at + took if state in ("success", "failure", "error") else None
    return execute(
        db_path,
        "INSERT INTO deployments (repo_id, build_id, stage, state, requested_by, promotion_id,"
        " created_at, updated_at, finished_at, succeeded_at) SELECT repo_id, id, ?, ?, ?, ?, ?,"
        " ?, ?, ? FROM builds WHERE number = ?",
        [
            *(stage, state, by, promotion, at, finished or at, finished),
            finished if state == "success" else None,
            number,
        ],
    )


def promote(db_path: Path, number: int, stage: str, by: str, at: float, **more: Any) -> int:
    """Record a promotion of build #`number` (approved at once unless `state` says otherwise)."""
    row = {"state": "approved", "decided_at": at, "decided_by": by, **more}
    columns = ", ".join(row)
    return execute(
        db_path,
        f"INSERT INTO promotions (repo_id, build_id, stage, requested_by, created_at, {columns})"
        f" SELECT repo_id, id, ?, ?, ?, {', '.join('?' for _ in row)} FROM builds WHERE number = ?",
        [stage, by, at, *row.values(), number],
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
    runtime = client.server.app[SERVICES].dev
    assert runtime is not None
    # The fakes the dev server serves: what its real senders sent is on their record.
    harness = DevHarness(client, tmp_path / "dev.db", runtime.slack, runtime.github)
    harness.console, harness.url = console, url
    return harness


async def pipeline(harness, *, red: int | None = None) -> float:
    """Push three builds (one red when asked); put #1 in pasty and baklava, #2 deploying."""
    now = time.time()
    for n, sha in enumerate(SHAS, start=1):
        message = f"Change {n}: <script>alert({n})</script> & more"
        await harness.deliver("push", push_payload(sha, message=message, stamp=now - 900))
        state = "failure" if n == red else "success"
        await harness.deliver("status", status_payload(sha, state=state, stamp=now - 800))
    await harness.settle()
    deploy(harness.db_path, 1, "pasty", "success", now - 700)
    deploy(harness.db_path, 1, "baklava", "success", now - 400)
    deploy(harness.db_path, 2, "pasty", "in_progress", now - 10)
    return now


def log(db_path: Path, number: int, at: float, actor: str, action: str, **more: Any) -> None:
    """Write an event log entry about build #`number`, as the feature that acted would."""
    detail = json.dumps(more.pop("detail", {}))
    columns = ", ".join(more)
    values = ", ".join("?" for _ in more)
    execute(
        db_path,
        f"INSERT INTO event_log (at, actor, action, repo_id, build_id, detail"
        f"{', ' + columns if more else ''}) SELECT ?, ?, ?, repo_id, id, ?"
        f"{', ' + values if more else ''} FROM builds WHERE number = ?",
        [at, actor, action, detail, *more.values(), number],
    )


STORY = (  # build: (commits as (title, login), CI)
    (("Start the cache (#101)", "ada"),),
    (("Escape titles", "grace"), ("Merge pull request #102 from grace/escape", "grace")),
    (("Bump the parser (#103)", "linus"),),
    (("Drop Python 3.9", "ken"), ("Release notes (#104)", "ada")),
    (("Half a migration", "grace"),),
    (("Speed up the index (#106)", "ada"),),
)


async def release_story(harness: Any) -> float:
    """Play a day of releases: six builds, a rollback, a failed deployment, a waiting approval.

    Build 5 is red; ada (U012ABC) asks, bob (U0DEVBOB) approves and rolls dumpling back.
    """
    from tests.pipeline_driver import commit

    now = time.time()
    pushed = {1: 7300, 2: 5700, 3: 1700, 4: 800, 5: 500, 6: 100}  # seconds ago
    for n, carried in enumerate(STORY, start=1):
        sha, stamp = f"{n:x}" * 40, iso(now - pushed[n])
        commits = [
            dict(commit(n, i, title, login), timestamp=stamp)
            for i, (title, login) in enumerate(carried)
        ]
        data = push_payload(sha, message=carried[-1][0], stamp=stamp)
        data["commits"] = [*commits[:-1], dict(commits[-1], id=sha)]
        data["head_commit"] = data["commits"][-1]
        await harness.deliver("push", data)
        state, ci = ("failure" if n == 5 else "success"), iso(now - pushed[n] + 90)
        await harness.deliver("status", status_payload(sha, state=state, stamp=ci))
    await harness.settle()
    db, ada, bob = harness.db_path, "U012ABC", "U0DEVBOB"
    ids = {r["number"]: r["id"] for r in harness.rows("SELECT id, number FROM builds")}
    for n, t in ((1, 7200), (2, 5600), (3, 1600), (4, 700)):
        deploy(db, n, "pasty", "success", now - t)
    deploy(db, 1, "baklava", "success", now - 6200, by=ada)
    deploy(db, 2, "baklava", "success", now - 4600, by=ada)
    for n, asked, done in ((1, 4300, 4000), (2, 2700, 2400)):
        p = promote(db, n, "dumpling", ada, now - asked, decided_at=now - done, decided_by=bob)
        execute(db, "INSERT INTO approvals VALUES (?, ?, ?)", [p, bob, now - done])
        deploy(db, n, "dumpling", "success", now - done + 10, by=ada, promotion=p)
        which = {"promotion": p}
        log(db, n, now - asked, ada, "promotion.requested", stage="dumpling", detail=which)
        log(db, n, now - done, bob, "approval.given", stage="dumpling", detail=which)
        log(db, n, now - done + 15, "dev-deployer[bot]", "deployment.success", stage="dumpling")
    back = promote(db, 1, "dumpling", bob, now - 1800, rollback=1, replaces_build_id=ids[2],
                   reason="rolled back from #2")  # fmt: skip
    deploy(db, 1, "dumpling", "success", now - 1795, by=bob, promotion=back)
    log(db, 2, now - 1800, bob, "rolled.back", stage="dumpling", reason="replaced by #1")
    execute(
        db,
        "INSERT INTO locks (repo_id, stage, locked_by, reason, created_at)"
        " SELECT repo_id, 'dumpling', ?, 'rolled back from #2', ? FROM builds WHERE number = 1",
        [bob, now - 1795],
    )
    deploy(db, 3, "baklava", "failure", now - 600, by=ada)
    deploy(db, 3, "baklava", "success", now - 500, by=ada)
    promote(db, 3, "dumpling", ada, now - 60, state="waiting", decided_at=None,
            decided_by=None, expires_at=now + 86000)  # fmt: skip
    deploy(db, 6, "pasty", "in_progress", now - 5)
    return now
