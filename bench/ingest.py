"""Figures 1 and 2: webhook ingest versus a bare aiohttp handler; /ship ack under load.

1. wrk drives signed `status` deliveries with unique delivery ids at full speed, first at a bare
   aiohttp handler that reads the body and answers 202, then at a real `promobot serve` (its own
   database file, WAL + synchronous=FULL as shipped). Then an open-loop generator sends them at
   half promobot's maximum rate for p50/p99.
2. While (1) runs at half rate, a second generator sends a signed `/ship status` (`--slash-text`)
   through /slack/events and times its acknowledgement, which carries the status itself.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common

TARGET_RATIO = 0.25
TARGET_P99_MS = 50.0
TARGET_SLASH_P99_MS = 100.0


def bodies_file(directory: Path) -> Path:
    """Write signed status bodies for wrk's Lua script (one 'signature<TAB>body' per line)."""
    path = directory / "bodies.txt"
    shas = [common.new_sha() for _ in range(50)]
    with path.open("w") as out:
        for i in range(200):
            body = common.status_body(shas[i % 50], context=f"ci/job-{i % 7}")
            out.write(f"{common.sign(body)}\t{body.decode()}\n")
    return path


def wrk(port: int, bodies: Path, seconds: int, connections: int) -> dict:
    """Run wrk against `port` and return its figures (requests/s, non-2xx, latency)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["-s", str(common.BENCH / "signed_status.lua"), f"http://127.0.0.1:{port}"]
    environ = {**os.environ, "BODIES": str(bodies), "RUN_ID": uuid.uuid4().hex[:12]}
    out = subprocess.run(
        common.pinned(cmd, common.CLIENT_CPU), env=environ, capture_output=True, text=True
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures: {out.stdout}\n{out.stderr}")
    figures = json.loads(line[5:])
    figures["rps"] = round(figures["requests"] / figures["seconds"], 1)
    return figures


def loadgen(
    mode: str, port: int, rate: float, seconds: float, text: str = "help"
) -> subprocess.Popen:
    """Start the open-loop generator on the client core."""
    cmd = [sys.executable, str(common.BENCH / "loadgen.py"), mode, "--url"]
    cmd += [f"http://127.0.0.1:{port}", "--rate", str(rate), "--seconds", str(seconds)]
    cmd += ["--text", text]
    return subprocess.Popen(
        common.pinned(cmd, common.CLIENT_CPU), stdout=subprocess.PIPE, text=True
    )


def collect(proc: subprocess.Popen) -> dict:
    """Wait for a generator and return its figures."""
    out, _ = proc.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1])


def pending(db: Path) -> tuple[int, int]:
    """Return (deliveries stored, deliveries not yet processed)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total, waiting = conn.execute(
            "SELECT count(*), sum(state = 'pending') FROM deliveries"
        ).fetchone()
    return total, waiting or 0


def drain(db: Path, timeout: float = 120.0) -> dict:
    """Wait for the worker to process the backlog; return its size and the processing rate."""
    start = time.monotonic()
    _, backlog = pending(db)
    left = backlog
    while left and time.monotonic() - start < timeout:
        time.sleep(0.25)
        _, left = pending(db)
    took = time.monotonic() - start
    done = backlog - left
    # A rate from a handful of rows says nothing: report it only for a real backlog.
    rate = round(done / took, 1) if took and backlog >= 100 else None
    return {"backlog": backlog, "left": left, "processed_per_s": rate}


def slash_answer(port: int, text: str) -> str:
    """Send one signed `/ship <text>` and return the acknowledgement's body."""
    body = urlencode(
        {
            "team_id": "T1",
            "channel_id": "C0RELEASES",
            "user_id": "U111",
            "command": "/ship",
            "text": text,
            "response_url": "http://127.0.0.1:9/r",
            "trigger_id": "1.1.x",
            "api_app_id": "A1",
        }
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        headers=common.slack_headers(body),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def half_rate(port: int, rate: float, args: argparse.Namespace, slash: bool) -> tuple[dict, dict]:
    """Run the open-loop status generator (and the slash generator) for 10 s."""
    ingest = loadgen("status", port, rate, 10)
    command = loadgen("slash", port, args.slash_rate, 10, args.slash_text) if slash else None
    return collect(ingest), collect(command) if command else {}


def main() -> None:
    """Run figures 1 and 2 and write bench/results/ingest.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--slash-text", default="status", help="the /ship text timed in figure 2")
    parser.add_argument("--slash-rate", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        tmpdir = Path(tmp)
        bodies = bodies_file(tmpdir)
        port = common.free_port()
        baseline = common.bare(port)
        try:
            bare_max = wrk(port, bodies, args.seconds, args.connections)
        finally:
            common.stop(baseline)
        db = tmpdir / "promobot.db"
        port = common.free_port()
        server = common.serve(db, port, common.env(), tmpdir / "serve.log")
        try:
            bot_max = wrk(port, bodies, args.seconds, args.connections)
            # Ask once the repository is known, so the figure times a real status answer.
            answer = slash_answer(port, args.slash_text)
            if "acme/widgets" not in answer:
                raise RuntimeError(f"/ship {args.slash_text} answers no status: {answer[:200]}")
            worker = drain(db)
            half = max(1.0, round(bot_max["rps"] / 2, 1))
            bot_half, slash = half_rate(port, half, args, slash=True)
            worker_after = drain(db)
            rss = common.peak_rss_mb(server.pid)
            wal = Path(f"{db}-wal")
            wal_mb = round(wal.stat().st_size / 1e6, 1) if wal.exists() else 0.0
        finally:
            common.stop(server)
        port = common.free_port()
        baseline = common.bare(port)
        try:
            bare_half, _ = half_rate(port, half, args, slash=False)
        finally:
            common.stop(baseline)
        acked = bot_max["requests"] - bot_max["non2xx"] + bot_half["statuses"].get("202", 0)
        ratio = round(bot_max["rps"] / bare_max["rps"], 3)
        total, left = pending(db)
        figures = {
            "bare_aiohttp_deliveries_per_s": bare_max["rps"],
            "promobot_deliveries_per_s": bot_max["rps"],
            "ratio": ratio,
            "ratio_met": ratio >= TARGET_RATIO,
            "promobot_errors_at_max": bot_max["non2xx"] + bot_max["socket_errors"],
            "worker_backlog_after_max": worker["backlog"],
            "worker_drain_per_s": worker["processed_per_s"],
            "half_rate_per_s": half,
            "half_rate_p50_ms": bot_half["p50_ms"],
            "half_rate_p99_ms": bot_half["p99_ms"],
            "half_rate_p99_met": (bot_half["p99_ms"] or 1e9) <= TARGET_P99_MS,
            "half_rate_statuses": bot_half["statuses"],
            "bare_at_half_rate_p50_ms": bare_half["p50_ms"],
            "bare_at_half_rate_p99_ms": bare_half["p99_ms"],
            "worker_backlog_after_half_rate": worker_after["backlog"],
            "acked_deliveries": acked,
            "stored_deliveries": total,
            "every_acked_stored": total >= acked,
            "unprocessed_at_end": left,
            "slash_text": f"/ship {args.slash_text}",
            "slash_answer_excerpt": answer[:120],
            "slash_rate_per_s": args.slash_rate,
            "slash_ack_p50_ms": slash["p50_ms"],
            "slash_ack_p99_ms": slash["p99_ms"],
            "slash_ack_p99_met": (slash["p99_ms"] or 1e9) <= TARGET_SLASH_P99_MS,
            "slash_statuses": slash["statuses"],
            "server_peak_rss_mb": rss,
            "wal_mb_at_end": wal_mb,
            "pinning": f"server cpu {common.SERVER_CPU}, load generators cpu {common.CLIENT_CPU}",
        }
        common.write_results("ingest", figures)


if __name__ == "__main__":
    main()
