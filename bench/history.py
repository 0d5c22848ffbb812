"""Figure 4: a synthetic year of one busy repository, and how promobot copes with it.

100,000 builds (with their commits), 1,000,000 check reports (and their transitions), 10,000
deployments (some failed, some rolled back) are written straight into SQLite; then a real
`promobot serve` runs on that file. Each figure has one hook in HOOKS: a function that
measures it, or raises NotAvailable naming what is missing, so a feature merged later
switches its figure on without touching the rest.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from bench.year import BUILDS, DEPLOYMENTS, REPORTS_PER_BUILD, query_plans, template
from bot.config import load_config
from bot.dev import client, forms
from bot.pipeline.digest_post import as_text, gather
from storage import connect, migrate

TARGETS = {
    "digest_ms": 1000.0,
    "status_p99_ms": 100.0,
    "peak_rss_mb": 200.0,
    "ship_metrics_ms": 1000.0,
    "insights_ms": 1000.0,
}


class NotAvailable(Exception):
    """The feature a figure needs is not in this build of promobot."""


@dataclass
class Bench:
    db: Path
    port: int
    environ: dict
    args: argparse.Namespace
    server: subprocess.Popen | None = None


async def slash(session: aiohttp.ClientSession, port: int, text: str) -> tuple[float, str]:
    """Send a signed /ship command; return the seconds to its ack and the ack's text."""
    form = forms.slash_form(
        text,
        user="U111",
        user_name="u111",
        response_url="http://127.0.0.1:9/r",
        channel_id="C0RELEASES",
        team=common.team_id(),
    )
    body = urlencode(form)
    headers = client.slack_headers(body, common.SIGNING_SECRET)
    start = time.perf_counter()
    async with session.post(
        f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
    ) as response:
        answer = await response.text()
    return time.perf_counter() - start, answer


async def status_figure(bench: Bench) -> dict:
    """Time `/ship status` acks on the big database (20 in a row after one warm-up)."""
    text = bench.args.status_text
    async with aiohttp.ClientSession() as session:
        _, answer = await slash(session, bench.port, text)
        if common.REPO["full_name"] not in answer:
            raise NotAvailable(f"`/ship {text}` answers: {answer[:80]}")
        times = [(await slash(session, bench.port, text))[0] for _ in range(20)]
    return {
        "status_p50_ms": common.ms(common.percentile(times, 50)),
        "status_p99_ms": common.ms(common.percentile(times, 99)),
        "status_answer_excerpt": answer[:160],
    }


async def dashboard_figure(bench: Bench) -> dict:
    """Time the dashboard page on the big database (10 loads after one warm-up)."""
    url = f"http://127.0.0.1:{bench.port}{bench.args.dashboard_path}"
    headers = {"Authorization": f"Bearer {bench.environ['PROMOBOT_DASHBOARD_TOKEN']}"}
    times = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(11):
            start = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status == 404:
                    raise NotAvailable(f"GET {bench.args.dashboard_path} is 404")
                if response.status != 200:
                    raise NotAvailable(f"GET {bench.args.dashboard_path} answers {response.status}")
            times.append(time.perf_counter() - start)
    return {
        "dashboard_p50_ms": common.ms(common.percentile(times[1:], 50)),
        "dashboard_max_ms": common.ms(max(times[1:])),
    }


def timed_gather(path: Path, now: float) -> tuple[float, int, int]:
    """Compose every digest with bot.digest_post.gather; return seconds, digests, lines."""
    config = load_config(common.ROOT / "app.yaml")
    db = connect(path, readonly=True)
    try:
        start = time.perf_counter()
        found = gather(db, config, now)
        took = time.perf_counter() - start
        lines = sum(len(as_text(d).splitlines()) for d in found)
    finally:
        db.close()
    return took, len(found), lines


async def digest_figure(bench: Bench) -> dict:
    """Time the digest's composition (gather: every query and the compose) on the big database.

    Run in this process, on a read-only connection next to the running service, seven times
    (a few milliseconds each; on a shared machine three were not enough to steady the median);
    the first pays for reading the pages from disk, the median is the figure.
    """
    now = time.time()
    runs = [await asyncio.to_thread(timed_gather, bench.db, now) for _ in range(7)]
    if not runs[0][1]:
        raise NotAvailable("gather found no repository in the year")
    times = sorted(r[0] for r in runs)
    return {
        "digest_ms": common.ms(times[len(times) // 2]),
        "digest_first_ms": common.ms(runs[0][0]),
        "digest_lines": runs[0][2],
        "digest_note": "bot.pipeline.digest_post.gather on the year, median of 7 in-process runs",
    }


async def weekly_digest_figure(bench: Bench) -> dict:
    """Time the digest of the week's first digest day, which adds last week's delivery metrics
    (median of three in-process runs, at 09:00 UTC of the year's last Monday)."""
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    monday = (day - timedelta(days=day.weekday() or 7)).timestamp()
    runs = [await asyncio.to_thread(timed_gather, bench.db, monday) for _ in range(3)]
    return {"digest_weekly_ms": common.ms(sorted(r[0] for r in runs)[1])}


async def ingest_figure(bench: Bench) -> dict:
    """Ingest latency at a fixed rate on the big database versus a fresh one, same run."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        port = common.free_port()
        fresh = common.serve(Path(tmp) / "fresh.db", port, bench.environ, Path(tmp) / "log")
        try:
            figures["fresh_db"] = run_loadgen(port, bench.args.ingest_rate)
        finally:
            common.stop(fresh)
    figures["year_db"] = run_loadgen(bench.port, bench.args.ingest_rate)
    return {
        "ingest_at_rate_per_s": bench.args.ingest_rate,
        **{f"ingest_{k}_{p}": v[p] for k, v in figures.items() for p in ("p50_ms", "p99_ms")},
    }


def run_loadgen(port: int, rate: float) -> dict:
    """Run 5 s of signed status deliveries at `rate` and return the generator's figures."""
    cmd = [
        sys.executable,
        str(common.BENCH / "loadgen.py"),
        "status",
        "--url",
        f"http://127.0.0.1:{port}",
        "--rate",
        str(rate),
        "--seconds",
        "5",
    ]
    out = subprocess.run(common.pinned(cmd, common.CLIENT_CPU), capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def metrics_figure(bench: Bench) -> dict:
    """Time `/ship metrics` acks on the year (10 after one warm-up): four weeks, every metric."""
    async with aiohttp.ClientSession() as session:
        _, answer = await slash(session, bench.port, "metrics")
        if "Deployment frequency" not in answer:
            raise NotAvailable(f"`/ship metrics` answers: {answer[:80]}")
        times = [(await slash(session, bench.port, "metrics"))[0] for _ in range(10)]
    return {
        "ship_metrics_p50_ms": common.ms(common.percentile(times, 50)),
        "ship_metrics_max_ms": common.ms(max(times)),
        "ship_metrics_excerpt": answer[:400],
    }


async def insights_figure(bench: Bench) -> dict:
    """Time GET /insights on the year (10 loads after one warm-up): four weeks, five charts."""
    url = f"http://127.0.0.1:{bench.port}/insights"
    headers = {"Authorization": f"Bearer {bench.environ['PROMOBOT_DASHBOARD_TOKEN']}"}
    times = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(11):
            start = time.perf_counter()
            async with session.get(url) as response:
                page = await response.text()
                if response.status != 200:
                    raise NotAvailable(f"GET /insights answers {response.status}")
            times.append(time.perf_counter() - start)
    return {
        "insights_p50_ms": common.ms(common.percentile(times[1:], 50)),
        "insights_max_ms": common.ms(max(times[1:])),
        "insights_charts": page.count("<svg"),
    }


HOOKS: dict[str, Callable] = {
    "status": status_figure,
    "dashboard": dashboard_figure,
    "digest": digest_figure,
    "weekly_digest": weekly_digest_figure,
    "metrics": metrics_figure,
    "insights": insights_figure,
    "ingest": ingest_figure,
}


async def measure(bench: Bench) -> dict:
    """Run every hook against the server on the big database."""
    figures: dict = {}
    for name, hook in HOOKS.items():
        try:
            figures.update(await hook(bench))
        except NotAvailable as missing:
            figures[name] = f"not available: {missing}"
    return figures


def main() -> None:
    """Generate (or reuse) the year, run every figure, write bench/results/history.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--db",
        type=Path,
        default=common.RESULTS / "year.db",
        help="reused when it exists (delete it to regenerate)",
    )
    parser.add_argument("--status-text", default="status")
    parser.add_argument("--dashboard-path", default="/")
    parser.add_argument("--ingest-rate", type=float, default=500.0)
    args = parser.parse_args()
    figures: dict = {}
    pristine = template()
    # Every run starts from the same pristine year: the ingest figure adds rows to its copy.
    subprocess.run(["cp", str(pristine), str(args.db)], check=True)
    # Flush the copy now, or the service's first checkpoint fsync pays for 400 MB of writeback.
    with args.db.open("rb+") as copy:
        os.fsync(copy.fileno())
    for suffix in ("-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    figures["database_mb"] = round(args.db.stat().st_size / 1e6, 1)
    figures["rows"] = {
        "builds": BUILDS,
        "check_reports": BUILDS * REPORTS_PER_BUILD,
        "check_transitions": BUILDS * REPORTS_PER_BUILD,
        "deployments": DEPLOYMENTS,
    }
    migrate(args.db)  # what `promobot serve` does first: the plans shown are the service's
    figures["query_plans"] = query_plans(args.db)
    environ = {**common.env(), "PROMOBOT_DASHBOARD_TOKEN": "bench-dashboard-token"}
    bench = Bench(args.db, common.free_port(), environ, args)
    bench.server = common.serve(args.db, bench.port, environ, args.db.with_suffix(".log"))
    try:
        figures["server_start_rss_mb"] = common.peak_rss_mb(bench.server.pid)
        figures.update(asyncio.run(measure(bench)))
        figures["server_peak_rss_mb"] = common.peak_rss_mb(bench.server.pid)
    finally:
        common.stop(bench.server)
        for leftover in (args.db, Path(f"{args.db}-wal"), Path(f"{args.db}-shm")):
            leftover.unlink(missing_ok=True)  # keep only the pristine template on disk
    rss = figures["server_peak_rss_mb"] or 1e9
    figures["targets"] = {
        **TARGETS,
        "digest_met": figures.get("digest_ms", 1e9) <= TARGETS["digest_ms"],
        "status_p99_met": figures.get("status_p99_ms", 1e9) <= TARGETS["status_p99_ms"],
        "peak_rss_met": rss <= TARGETS["peak_rss_mb"],
        "ship_metrics_met": figures.get("ship_metrics_max_ms", 1e9) <= TARGETS["ship_metrics_ms"],
        "insights_met": figures.get("insights_max_ms", 1e9) <= TARGETS["insights_ms"],
    }
    common.write_results("history", figures)


if __name__ == "__main__":
    main()
