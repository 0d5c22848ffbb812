"""Issue 15's figures from one run: promobot beside three baselines on real-sized deliveries.

Servers (each alone, pinned to CPU 0; wrk and the generators on CPU 1; promobot's processing
process, which the issue lets use the second core, on CPU 1 too unless --processing-cpu same):
- `promobot serve` on a real database file (WAL, synchronous=FULL as shipped), its burst
  once its ingest WAL is written ahead, as on a server up for more than a few seconds;
- `bare`: aiohttp answering 202 with promobot's body, storing nothing;
- `naive`: verify the HMAC, commit one SQLite row (synchronous=FULL), answer 202;
- `probot`: a minimal Probot app (Node, npm registry), which verifies and stores nothing.

The deliveries are bench/deliveries.py's stream: per commit one push and twenty statuses and
check runs for its sha, every sha new, signed as GitHub signs them.
Figures: acks/s and p50/p99 at saturation (wrk, closed loop, 32 connections); CPU per delivery
(/proc utime+stime of the server and its children over the run); p50/p99 at half promobot's
maximum, open loop, timed from each request's due moment (Debian has no wrk2); `/ship status`
under that load; the backlog the 10 s burst left and how long it took to process; then the
costs that must not grow (bench/growth.py). Writes bench/results/truth.json.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, deliveries, growth, measure

KINDS = ("bare", "naive", "probot", "promobot")
POOL_VERSION = 2


def pool(size: int) -> Path:
    """Return the pool file of `size` deliveries (written once, kept in bench/results)."""
    path = common.RESULTS / f"pool-v{POOL_VERSION}-{size}.txt"
    if not path.exists():
        common.RESULTS.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        deliveries.write_pool(partial, size)
        partial.rename(path)
    return path


def saturate(kind: str, port: int, burst: Path, warm: Path, args: Any) -> dict[str, Any]:
    """Warm a started server up, then drive it at saturation; figures and CPU per ack."""
    measure.wrk(port, warm, 2, args.connections)
    return timed_wrk(kind, port, burst, args)


def timed_wrk(kind: str, port: int, burst: Path, args: Any) -> dict[str, Any]:
    """Run wrk for args.seconds and note the CPU the server used per acknowledgement."""
    pid = args.pids[kind]
    before = measure.cpu_seconds(pid)
    figures = measure.wrk(port, burst, args.seconds, args.connections)
    used = measure.cpu_seconds(pid) - before
    acked = figures["requests"] - figures["non2xx"]
    figures["acked"] = acked
    figures["cpu_ms_per_ack"] = round(used * 1000 / max(1, acked), 3)
    return figures


def half_rate(kind: str, port: int, burst: Path, rate: float, skip: int, slash: bool) -> dict:
    """Open-loop deliveries at `rate` for 10 s (and `/ship status` at 10/s); latencies."""
    ingest = measure.loadgen(port, "pool", rate, 10, pool=burst, skip=skip)
    command = (
        measure.loadgen(port, "slash", 10, 10, slash="status", connections=4) if slash else None
    )
    figures = {"deliveries": measure.collect(ingest)}
    if command is not None:
        figures["ship_status"] = measure.collect(command)
    return figures


def promobot_run(burst: Path, warm: Path, tmp: Path, args: Any) -> dict[str, Any]:
    """Burst, drain, then half rate with /ship status, on one promobot; figures."""
    port = common.free_port()
    server = measure.start("promobot", port, tmp)
    args.pids["promobot"] = server.pid
    db = tmp / "promobot.db"
    try:
        moved = measure.move_children(server.pid, args.processing_cpu)
        measure.wrk(port, warm, 2, args.connections)
        measure.drain(db)
        figures = {"written_ahead_s": measure.written_ahead(db)}
        before = measure.cpu_seconds(server.pid)
        figures |= timed_wrk("promobot", port, burst, args)
        figures["after_burst"] = measure.drain(db)
        total = measure.cpu_seconds(server.pid) - before
        figures["cpu_ms_per_delivery_incl_processing"] = round(
            total * 1000 / max(1, figures["acked"]), 3
        )
        rate = max(1.0, round(figures["rps"] / 2, 1))
        before = measure.cpu_seconds(server.pid)
        figures["half"] = half_rate("promobot", port, burst, rate, figures["requests"], True)
        figures["half"]["rate"] = rate
        figures["half"]["drain"] = measure.drain(db)
        done = figures["half"]["deliveries"]["count"]
        used = measure.cpu_seconds(server.pid) - before
        figures["half"]["cpu_ms_per_delivery"] = round(used * 1000 / max(1, done), 3)
        figures["peak_rss_mb"] = common.peak_rss_mb(server.pid)
        figures["processing_process_cpu"] = args.processing_cpu if moved else common.SERVER_CPU
    finally:
        common.stop(server)
    stored, left = measure.inbox(db)
    acked = figures["acked"] + figures["half"]["deliveries"]["statuses"].get("202", 0)
    figures.update(stored=stored, unprocessed=left, every_ack_stored=stored >= acked)
    figures["distinct_in_burst"] = min(figures["requests"], args.pool)
    return figures


def baseline_run(kind: str, burst: Path, warm: Path, tmp: Path, rate: float, args: Any) -> dict:
    """Saturation, then half promobot's rate, on one baseline server."""
    port = common.free_port()
    server = measure.start(kind, port, tmp)
    args.pids[kind] = server.pid
    try:
        figures = saturate(kind, port, burst, warm, args)
        figures["half"] = half_rate(kind, port, burst, rate, 0, False)
    finally:
        common.stop(server)
    return figures


def ratio(a: float | None, b: float | None) -> float | None:
    """Return a / b rounded, or None."""
    return round(a / b, 3) if a and b else None


TARGETS = [
    # key, what, target text, met
    ("ack_vs_bare", "ack rate ÷ bare aiohttp, real-sized bodies", "≥ 0.25", lambda v: v >= 0.25),
    ("ack_vs_probot", "ack rate ÷ minimal Probot app", "≥ 1.0", lambda v: v >= 1.0),
    ("ack_p99_half_ms", "ack p99 at half of promobot's max rate", "≤ 10 ms", lambda v: v <= 10),
    ("status_p99_half_ms", "`/ship status` ack p99 under that load", "≤ 25 ms", lambda v: v <= 25),
    ("processing_per_s", "processing, realistic mix (/s)", "≥ 1,500", lambda v: v >= 1500),
    ("drain_s", "backlog of the 10 s burst processed within (s)", "≤ 30", lambda v: v <= 30),
    ("outbox_20k_ratio", "CPU/delivery, 20k pending outbox ÷ empty", "≤ 1.2", lambda v: v <= 1.2),
    ("outbox_100k_ratio", "CPU/delivery, 100k pending ÷ empty", "≤ 1.2", lambda v: v <= 1.2),
    ("dashboard_ratio", "dashboard at 100k builds ÷ at 1k builds", "≤ 1.5", lambda v: v <= 1.5),
    ("status_ratio", "`/ship status` at 100k builds ÷ at 1k", "≤ 1.5", lambda v: v <= 1.5),
    ("digest_ratio", "digest at 100k builds ÷ at 1k", "≤ 1.5", lambda v: v <= 1.5),
]


def processing_rate(bot: dict[str, Any], seconds: float) -> float:
    """Deliveries processed a second: the backlog's drain, or the whole burst if none was left."""
    drained = bot["after_burst"]
    if drained["processed_per_s"] is not None:
        return drained["processed_per_s"]
    return round(bot["acked"] / (seconds + drained["drain_s"]), 1)


def table(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the issue's target table; return the figures it shows."""
    runs, outbox, reads = figures["servers"], figures["outbox"], figures["history"]
    bot = runs["promobot"]
    empty = outbox[0]["cpu_ms_per_delivery"]
    shown = {
        "ack_vs_bare": ratio(bot["rps"], runs["bare"]["rps"]),
        "ack_vs_probot": ratio(bot["rps"], runs["probot"]["rps"]),
        "ack_p99_half_ms": bot["half"]["deliveries"]["p99_ms"],
        "status_p99_half_ms": bot["half"]["ship_status"]["p99_ms"],
        "processing_per_s": processing_rate(bot, figures["seconds"]),
        "drain_s": bot["after_burst"]["drain_s"],
        "outbox_20k_ratio": ratio(outbox[1]["cpu_ms_per_delivery"], empty),
        "outbox_100k_ratio": ratio(outbox[2]["cpu_ms_per_delivery"], empty),
        "dashboard_ratio": reads["dashboard_ratio"],
        "status_ratio": reads["status_ratio"],
        "digest_ratio": reads["digest_ratio"],
    }
    print("\n| figure | measured | target | met |\n|---|---|---|---|")
    for key, what, target, met in TARGETS:
        value = shown[key]
        ok = "yes" if value is not None and met(value) else "NO"
        print(f"| {what} | {value} | {target} | {ok} |")
    print(
        "\n| server | acks/s | p50 / p99 at saturation (ms) | CPU ms/ack | p50 / p99 at"
        f" {bot['half']['rate']}/s (ms) | generator: sent late p99 (ms), connections |"
        "\n|---|---|---|---|---|---|"
    )
    for kind in KINDS:
        run, half = runs[kind], runs[kind]["half"]["deliveries"]
        print(
            f"| {kind} | {run['rps']:,.0f} | {run['p50_ms']} / {run['p99_ms']} |"
            f" {run['cpu_ms_per_ack']} | {half['p50_ms']} / {half['p99_ms']} |"
            f" {half.get('late_p99_ms')}, {half.get('connections')} |"
        )
    return shown


def main() -> None:
    """Run every figure and write bench/results/truth.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="length of the saturation burst")
    parser.add_argument("--connections", type=int, default=32)
    # A 10 s burst at 10,000/s and 10 s at half that: 150,000, every one distinct.
    parser.add_argument("--pool", type=int, default=160_000, help="distinct deliveries prepared")
    parser.add_argument("--outbox-rate", type=float, default=500.0)
    parser.add_argument("--status-text", default="status")
    parser.add_argument("--dashboard-path", default="/")
    parser.add_argument(
        "--processing-cpu",
        default=common.CLIENT_CPU,
        help="core for promobot's processing process ('same': stay on the server's core)",
    )
    parser.add_argument(
        "--only",
        choices=["promobot"],
        help="only promobot's part (burst, drain, half rate), to bench/results/truth-promobot.json",
    )
    args = parser.parse_args()
    args.pids = {}
    load = os.getloadavg()
    burst, warm = pool(args.pool), pool(2 * deliveries.PER_COMMIT * 50)
    figures: dict[str, Any] = {"load_before": load, "pool": {"deliveries": args.pool}}
    figures["seconds"] = args.seconds
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        runs = {"promobot": promobot_run(burst, warm, Path(tmp), args)}
        if args.only:
            figures.update(servers=runs, load_after=os.getloadavg())
            common.write_results("truth-promobot", figures)
            return
        rate = runs["promobot"]["half"]["rate"]
        for kind in ("bare", "naive", "probot"):
            runs[kind] = baseline_run(kind, burst, warm, Path(tmp), rate, args)
    figures["servers"] = runs
    figures["outbox"] = [
        growth.outbox_cost(burst, pending, args.outbox_rate, 8) for pending in (0, 20_000, 100_000)
    ]
    figures["history"] = growth.history_costs(args)
    figures["load_after"] = os.getloadavg()
    figures["table"] = table(figures)
    figures["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    common.write_results("truth", figures)


if __name__ == "__main__":
    main()
