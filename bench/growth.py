"""Costs that must not grow: CPU per delivery behind a Slack backlog, reads over a long history.

- Outbox: the same deliveries at the same fixed rate into a fresh promobot whose outbox holds
  0, 20,000 or 100,000 pending Slack rows (Slack is down: every send is refused), CPU of the
  whole service per delivery processed.
- History: the dashboard, `/ship status` and the digest over 1,000 builds and over 100,000 builds
  (100 and 10,000 deployments; a build every 315 s in both, so their last day is as busy and
  only the length of the history differs), timed on two running promobots in turns.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
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


def settle(pid: int, timeout: float = 30.0) -> float:
    """Wait until the service and its children are idle for a second; return the seconds waited."""
    # The processing process starts (imports, first work) after the service listens: reads
    # timed meanwhile share the machine with that start, by chance more in one run than in
    # the other, and the ratio measured the chance.
    start, quiet = time.monotonic(), 0
    used = measure.cpu_seconds(pid)
    while time.monotonic() - start < timeout and quiet < 2:
        time.sleep(0.5)
        now = measure.cpu_seconds(pid)
        quiet = quiet + 1 if now - used < 0.025 else 0  # under 5% of a core
        used = now
    return round(time.monotonic() - start, 1)


READS = (history.dashboard_figure, history.status_figure, history.digest_figure)
ROUNDS = 5


def start_on_copy(year: Path, tmp: Path, environ: dict[str, str], args: Any) -> history.Bench:
    """Start a promobot over a flushed copy of `year` in `tmp`."""
    db = tmp / f"{year.stem}.db"
    subprocess.run(["cp", str(year), str(db)], check=True)
    with db.open("rb+") as copy:
        os.fsync(copy.fileno())
    bench = history.Bench(db, common.free_port(), environ, args)
    bench.server = common.serve(db, bench.port, environ, tmp / f"{year.stem}.log")
    return bench


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return each figure's median over the rounds (the first round's value when not a number)."""
    merged = dict(rounds[0])
    for key, value in merged.items():
        if isinstance(value, int | float):
            merged[key] = statistics.median(r[key] for r in rounds)
    return merged


def read_costs(years: dict[str, Path], args: Any) -> dict[str, dict[str, Any]]:
    """Time dashboard, /ship status and digest on a running promobot over a copy of each year."""
    # One promobot per year, both running, their figures taken in turns: each ratio compares
    # readings of the same minutes (on this shared machine one year timed after the other
    # compared two loads as much as two histories).
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        # A Slack that answers: the pages look people's names up (users.info) and would
        # otherwise wait out each lookup's timeout.
        slack = fake_slack.start_in_thread()
        environ = {
            **common.env(slack_url=slack),
            "PROMOBOT_DASHBOARD_TOKEN": "bench-dashboard-token",
        }
        benches: dict[str, history.Bench] = {}
        try:
            for size, year in years.items():
                benches[size] = start_on_copy(year, Path(tmp), environ, args)
            settled = {size: settle(b.server.pid) for size, b in benches.items() if b.server}
            rounds: dict[str, list[dict[str, Any]]] = {size: [] for size in benches}
            for _ in range(ROUNDS):
                for size, bench in benches.items():
                    figures: dict[str, Any] = {"settled_after_s": settled[size]}
                    for hook in READS:
                        figures.update(asyncio.run(hook(bench)))
                    rounds[size].append(figures)
        finally:
            for bench in benches.values():
                if bench.server is not None:
                    common.stop(bench.server)
    return {size: median_of(found) for size, found in rounds.items()}


def history_costs(args: Any) -> dict[str, Any]:
    """Dashboard, /ship status and digest at 1k and at 100k builds, and their ratios."""
    both = read_costs({"small": template(1_000, 100), "large": template(100_000, 10_000)}, args)
    small, large = both["small"], both["large"]

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
