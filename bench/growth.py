"""Costs that must not grow: CPU per delivery behind a Slack backlog, reads over a long history.

- Outbox: the same deliveries at the same fixed rate into a fresh promobot whose outbox holds
  0, 20,000 or 100,000 pending Slack rows (Slack is down: every send is refused), CPU of the
  whole service per delivery processed.
- History: the dashboard, `/ship status` and the digest over 1,000 builds and over 100,000 builds
  (100 and 10,000 deployments; a build every 315 s in both, so their last day is as busy and
  only the length of the history differs), timed on a running promobot.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, fake_slack, history, measure
from bench.year import template
from storage import migrate

SLACK_LANES = ["#releases", *(f"#team-{k}" for k in range(9))]


def fill_outbox(db: Path, rows: int) -> None:
    """Queue `rows` pending Slack posts across ten channels, as a Slack outage leaves them."""
    migrate(db)
    conn = sqlite3.connect(db)
    now = time.time()
    conn.executemany(
        "INSERT INTO outbox (target, method, lane, payload, created_at)"
        " VALUES ('slack', 'chat.postMessage', ?, ?, ?)",
        (
            (
                SLACK_LANES[i % 10],
                json.dumps({"channel": SLACK_LANES[i % 10], "text": f"waiting post {i}"}),
                now,
            )
            for i in range(rows)
        ),
    )
    conn.commit()
    conn.close()


def outbox_cost(pool: Path, pending: int, rate: float, seconds: float) -> dict[str, Any]:
    """CPU per delivery of a fresh promobot with `pending` outbox rows, at a fixed rate."""
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        db = Path(tmp) / "promobot.db"
        fill_outbox(db, pending)
        port = common.free_port()
        server = common.serve(db, port, common.env(), Path(tmp) / "serve.log")
        try:
            time.sleep(1.0)  # let the relay meet its backlog before the clock starts
            before = measure.cpu_seconds(server.pid)
            sent = measure.collect(measure.loadgen(port, "pool", rate, seconds, pool=pool))
            drained = measure.drain(db)
            used = measure.cpu_seconds(server.pid) - before
        finally:
            common.stop(server)
        stored, _ = measure.inbox(db)
    return {
        "pending_outbox_rows": pending,
        "deliveries": stored,
        "ack_p99_ms": sent["p99_ms"],
        "drain_s_after_run": drained["drain_s"],
        "cpu_ms_per_delivery": round(used * 1000 / max(1, stored), 3),
    }


def read_costs(year: Path, args: Any) -> dict[str, Any]:
    """Time dashboard, /ship status and digest on a running promobot over a copy of `year`."""
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        db = Path(tmp) / "year.db"
        subprocess.run(["cp", str(year), str(db)], check=True)
        with db.open("rb+") as copy:
            os.fsync(copy.fileno())
        # A Slack that answers: the pages look people's names up (users.info) and would
        # otherwise wait out each lookup's timeout.
        slack = fake_slack.start_in_thread()
        environ = {
            **common.env(slack_url=slack),
            "PROMOBOT_DASHBOARD_TOKEN": "bench-dashboard-token",
        }
        bench = history.Bench(db, common.free_port(), environ, args)
        bench.server = common.serve(db, bench.port, environ, Path(tmp) / "serve.log")
        try:
            figures: dict[str, Any] = {}
            for hook in (history.dashboard_figure, history.status_figure, history.digest_figure):
                figures.update(asyncio.run(hook(bench)))
        finally:
            common.stop(bench.server)
    return figures


def history_costs(args: Any) -> dict[str, Any]:
    """Dashboard, /ship status and digest at 1k and at 100k builds, and their ratios."""
    small = read_costs(template(1_000, 100), args)
    large = read_costs(template(100_000, 10_000), args)

    def ratio(key: str) -> float | None:
        return round(large[key] / small[key], 2) if small.get(key) and large.get(key) else None

    return {
        "at_1k_builds": small,
        "at_100k_builds": large,
        "dashboard_ratio": ratio("dashboard_p50_ms"),
        "status_ratio": ratio("status_p50_ms"),
        "digest_ratio": ratio("digest_ms"),
    }


def main() -> None:
    """Time the reads over a long history alone (truth.py runs them after everything else)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", action="store_true", help="the reads at 1k and 100k builds")
    parser.add_argument("--status-text", default="status")
    parser.add_argument("--dashboard-path", default="/")
    args = parser.parse_args()
    if not args.history:
        parser.error("say which part to run: --history")
    figures: dict[str, Any] = {"load_before": os.getloadavg()}
    figures.update(history_costs(args))
    figures["load_after"] = os.getloadavg()
    common.write_results("growth", figures)


if __name__ == "__main__":
    main()
