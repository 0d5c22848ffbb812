"""Figure 4: a synthetic year of one busy repository, and how promobot copes with it.

100,000 builds, 1,000,000 check reports (and their transitions), 10,000 deployments are written
straight into SQLite; then a real `promobot serve` runs on that file. Each figure has one hook
in HOOKS: a function that measures it, or raises NotAvailable naming what is missing, so a
feature merged later switches its figure on without touching the rest.
"""

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from storage import migrate

BUILDS, REPORTS_PER_BUILD, DEPLOYMENTS = 100_000, 10, 10_000
STAGES = ("pasty", "baklava", "dumpling")
YEAR = 365 * 86400.0
TARGETS = {"digest_ms": 1000.0, "status_p99_ms": 100.0, "peak_rss_mb": 200.0}


class NotAvailable(Exception):
    """The feature a figure needs is not in this build of promobot."""


@dataclass
class Bench:
    db: Path
    port: int
    environ: dict
    args: argparse.Namespace
    server: subprocess.Popen | None = None


def generate(path: Path, seed: int = 7) -> dict:
    """Write the synthetic year into a migrated database at `path`; return counts and time."""
    start = time.perf_counter()
    migrate(path)
    rng = random.Random(seed)
    now = time.time()
    repo = common.REPO
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # generation only; the service runs as shipped
    conn.execute(
        "INSERT INTO repositories (id, full_name, html_url, installation_id, last_build_number)"
        " VALUES (?, ?, ?, ?, ?)",
        [repo["id"], repo["full_name"], repo["html_url"], 957387, BUILDS],
    )
    shas = [f"{rng.getrandbits(160):040x}" for _ in range(BUILDS)]
    pushed = [now - YEAR + i * (YEAR / BUILDS) for i in range(BUILDS)]
    states = ["failure" if rng.random() < 0.08 else "success" for _ in range(BUILDS)]
    conn.executemany(
        "INSERT INTO builds (id, repo_id, number, sha, message, author, html_url, commits,"
        " pushed_at, ci_state, ci_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        (
            (
                i + 1,
                repo["id"],
                i + 1,
                shas[i],
                f"Change number {i + 1}",
                f"dev{i % 40}",
                f"{repo['html_url']}/commit/{shas[i]}",
                pushed[i],
                states[i],
                pushed[i] + 600,
            )
            for i in range(BUILDS)
        ),
    )
    contexts = [f"ci/job-{j}" for j in range(REPORTS_PER_BUILD)]

    def reports() -> object:
        for i in range(BUILDS):
            failing = rng.randrange(REPORTS_PER_BUILD) if states[i] == "failure" else -1
            for j, context in enumerate(contexts):
                state = "failure" if j == failing else "success"
                yield (
                    repo["id"],
                    shas[i],
                    context,
                    "status",
                    state,
                    None,
                    f"https://ci.example.com/{i}/{j}",
                    pushed[i] + 60 + j,
                )

    rows = list(reports())
    conn.executemany("INSERT INTO check_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(
        "INSERT INTO check_transitions (repo_id, sha, context, state, target_url, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ((r[0], r[1], r[2], r[4], r[6], r[7]) for r in rows),
    )
    del rows
    step = BUILDS // (DEPLOYMENTS // len(STAGES))
    conn.executemany(
        "INSERT INTO deployments (repo_id, build_id, stage, github_id, state, requested_by,"
        " created_at, updated_at, finished_at) VALUES (?, ?, ?, ?, 'success', ?, ?, ?, ?)",
        (
            (
                repo["id"],
                b,
                STAGES[k % 3],
                10_000_000 + k,
                "promobot" if k % 3 == 0 else "U012ABC",
                pushed[b - 1] + 900 * (k % 3 + 1),
                pushed[b - 1] + 900 * (k % 3 + 1) + 120,
                pushed[b - 1] + 900 * (k % 3 + 1) + 120,
            )
            for k in range(DEPLOYMENTS)
            for b in [min(BUILDS, (k // 3) * step + 1)]
        ),
    )
    conn.executemany(
        "INSERT INTO event_log (at, actor, action, repo_id, build_id, detail)"
        " VALUES (?, ?, 'build.created', ?, ?, ?)",
        (
            (pushed[i], f"dev{i % 40}", repo["id"], i + 1, json.dumps({"number": i + 1}))
            for i in range(BUILDS)
        ),
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"generate_s": round(time.perf_counter() - start, 1)}


def query_plans(path: Path) -> dict:
    """Show that the lookups status, history and digest make use an index, not a scan."""
    lookups = {
        "builds by repo+number": "SELECT * FROM builds WHERE repo_id = 1 AND number = 5",
        "builds by repo+sha prefix": "SELECT * FROM builds WHERE repo_id = 1 AND sha >= 'ab'"
        " AND sha < 'ac'",
        "latest builds": "SELECT * FROM builds WHERE repo_id = 1 ORDER BY number DESC LIMIT 20",
        "check_reports by sha": "SELECT * FROM check_reports WHERE repo_id = 1 AND sha = 'x'",
        "check_transitions since": "SELECT * FROM check_transitions WHERE at >= 0",
        "deployments by repo+stage": "SELECT * FROM deployments WHERE repo_id = 1"
        " AND stage = 'pasty' ORDER BY id DESC LIMIT 1",
    }
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plans = {}
    for name, sql in lookups.items():
        detail = " / ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        plans[name] = (
            "index" if "USING" in detail and "SCAN" not in detail.split("USING")[0] else "SCAN"
        ) + f": {detail}"
    conn.close()
    return plans


async def slash(session: aiohttp.ClientSession, port: int, text: str) -> tuple[float, str]:
    """Send a signed /ship command; return the seconds to its ack and the ack's text."""
    body = urlencode(
        {
            "team_id": "T111",
            "channel_id": "C0RELEASES",
            "user_id": "U111",
            "command": "/ship",
            "text": text,
            "response_url": "http://127.0.0.1:9/r",
            "trigger_id": "1.1.x",
            "api_app_id": "A111",
        }
    )
    start = time.perf_counter()
    async with session.post(
        f"http://127.0.0.1:{port}/slack/events", data=body, headers=common.slack_headers(body)
    ) as response:
        answer = await response.text()
    return time.perf_counter() - start, answer


async def status_figure(bench: Bench) -> dict:
    """Time `/ship status` acks on the big database (20 in a row after one warm-up)."""
    text = bench.args.status_text
    async with aiohttp.ClientSession() as session:
        _, answer = await slash(session, bench.port, text)
        if "not available yet" in answer or "is not a /ship command" in answer:
            raise NotAvailable(f"`/ship {text}` answers: {answer[:80]}")
        times = [(await slash(session, bench.port, text))[0] for _ in range(20)]
    return {
        "status_p50_ms": common.ms(common.percentile(times, 50)),
        "status_p99_ms": common.ms(common.percentile(times, 99)),
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


def timed_cli(args: list[str], environ: dict) -> tuple[float, int, float, str]:
    """Run `promobot <args>`; return wall seconds, exit status, its peak RSS (MB), stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(common.PROMOBOT), *args],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return took, proc.returncode, round(usage.ru_maxrss / 1024, 1), err


async def digest_figure(bench: Bench) -> dict:
    """Time `promobot digest --dry-run` minus the start-up of `promobot check-config`."""
    environ = {
        **bench.environ,
        "PROMOBOT_DB": str(bench.db),
        "PROMOBOT_CONFIG": str(common.ROOT / "app.yaml"),
    }
    base, _, _, _ = timed_cli(["check-config"], environ)
    took, code, rss, err = timed_cli(["digest", "--dry-run"], environ)
    if code != 0:
        raise NotAvailable(f"promobot digest --dry-run exits {code}: {err.strip()[-120:]}")
    return {
        "digest_ms": common.ms(max(0.0, took - base)),
        "digest_process_peak_rss_mb": rss,
        "digest_note": "wall time minus promobot check-config start-up, same run",
    }


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


HOOKS: dict[str, Callable] = {
    "status": status_figure,
    "dashboard": dashboard_figure,
    "digest": digest_figure,
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
    parser.add_argument("--dashboard-path", default="/dashboard")
    parser.add_argument("--ingest-rate", type=float, default=500.0)
    args = parser.parse_args()
    figures: dict = {}
    template = args.db.with_suffix(".template.db")
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        figures.update(generate(template))
    # Every run starts from the same pristine year: the ingest figure adds rows to its copy.
    subprocess.run(["cp", str(template), str(args.db)], check=True)
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
    figures["targets"] = {**TARGETS, "peak_rss_met": rss <= TARGETS["peak_rss_mb"]}
    common.write_results("history", figures)


if __name__ == "__main__":
    main()
