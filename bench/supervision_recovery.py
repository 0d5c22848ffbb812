"""How long the supervised worker takes to recover from each fault, once the fault clears.

    .venv/bin/python -m bench.supervision_recovery [--pushes 20] [--fault-seconds 8]

Runs promobot in this process (the app factory, dev mode's local stand-ins for Slack and
GitHub, a temporary database, loopback only), stores `--pushes` signed pushes while the
worker is held back, then injects each fault the way tests/test_supervision.py does, for
`--fault-seconds`: another connection holding the write lock past the 5 s busy timeout, a
full disk (SQLite's max_page_count on the writer's own connection) and an exception
raised from the worker's read. It prints, per fault: the worker's restarts, the seconds
from clearing the fault until every delivery was processed, and until /healthz said 200.
"""

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import SERVICES, create_app
from bot.config import load_config
from bot.dev import client, payloads
from bot.dev.mode import DevMode, dev_secrets
from handlers import inbound
from storage import inbox

ROOT = Path(__file__).resolve().parent.parent


class Run:
    """One promobot with a gate in front of the worker's reads and a fault to inject."""

    def __init__(self, client: TestClient, secret: str) -> None:
        self.client = client
        self.secret = secret
        self.gate_open = False
        self.raise_left = 0
        real = inbox.ready_deliveries

        def gated(db: Any, **kwargs: Any) -> list[dict[str, Any]]:
            if self.raise_left:
                raise RuntimeError("injected")
            return real(db, **kwargs) if self.gate_open else []

        inbox.ready_deliveries = gated  # type: ignore[assignment]

    @property
    def services(self) -> Any:
        return self.client.server.app[SERVICES]

    async def deliver(self, first: int, count: int) -> None:
        """Store `count` pushes (the worker is held back)."""
        for n in range(first, first + count):
            body = json.dumps(payloads.push(f"{n:040x}", message=f"change {n}")).encode()
            headers = client.github_headers("push", body, self.secret)
            response = await self.client.post("/github/webhooks", data=body, headers=headers)
            assert response.status == 202, await response.text()

    def pending(self) -> int:
        db = sqlite3.connect(self.services.store.path)
        try:
            return int(db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'")
                       .fetchone()[0])  # fmt: skip
        finally:
            db.close()

    async def until(self, check: Callable[[], Awaitable[bool] | bool], limit: float) -> float:
        """Return the seconds until `check()` holds (raise after `limit`)."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        raise TimeoutError("did not recover")

    async def healthy(self) -> bool:
        return (await self.client.get("/healthz")).status == 200


async def measure(name: str, run: Run, first: int, pushes: int, fault: float) -> dict[str, Any]:
    """Inject one fault for `fault` seconds with `pushes` waiting; time the recovery."""
    run.gate_open = False
    await run.deliver(first, pushes)
    worker = run.services.supervisor.health["worker"]
    store = run.services.store
    holder = None
    if name == "lock":
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    elif name == "disk full":
        pages = await store.write(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        await store.write(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
    else:
        run.raise_left = 1
    run.gate_open = True
    run.services.worker.wake()
    await asyncio.sleep(fault)
    restarts = worker.failures
    if holder is not None:
        holder.execute("ROLLBACK")
        holder.close()
    elif name == "disk full":
        await store.write(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
    else:
        run.raise_left = 0
    drained = await run.until(lambda: run.pending() == 0, 120)
    healthy = await run.until(run.healthy, 120)
    return {
        "fault": name,
        "fault_seconds": fault,
        "restarts_during_fault": restarts,
        "seconds_to_drain_after_clear": round(drained, 2),
        "seconds_to_healthz_200_after_clear": round(max(drained, healthy), 2),
        "deliveries": pushes,
    }


async def main_async(pushes: int, fault: float) -> list[dict[str, Any]]:
    config = load_config(ROOT / "app.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        secrets = dev_secrets("http://127.0.0.1:1")
        mode = DevMode(url="http://127.0.0.1:1", write=lambda line: None)
        app = create_app(config, secrets, db_path=Path(tmp) / "s.db", inbound=inbound(),
                         digest_schedule=False, redeliver=False, dev=mode)  # fmt: skip
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            run = Run(client, secrets.github_webhook_secret)
            results = []
            for index, name in enumerate(("lock", "disk full", "exception")):
                results.append(await measure(name, run, 1 + index * pushes, pushes, fault))
            return results


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pushes", type=int, default=20)
    options.add_argument("--fault-seconds", type=float, default=8.0)
    args = options.parse_args()
    results = asyncio.run(main_async(args.pushes, args.fault_seconds))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
