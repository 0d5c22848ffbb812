"""Instruments of bench/truth.py: the servers compared, wrk, the open-loop generator, CPU time."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bench import common, fake_slack
from storage import ingest
from storage.connection import INGEST_WAL_BYTES

PROBOT = common.BENCH / "probot"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of `pid` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total


def install_probot() -> None:
    """Install the Probot baseline from the npm registry when it is not there yet."""
    if (PROBOT / "node_modules" / ".bin" / "probot").exists():
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed for the Probot baseline (apt-get install npm)")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=PROBOT, check=True)


def start(kind: str, port: int, tmp: Path) -> subprocess.Popen:
    """Start one of the servers compared (pinned to the server core); wait until it listens."""
    log = (tmp / f"{kind}.log").open("ab")
    if kind == "promobot":
        # A Slack that answers: /ship status names people (users.info), and the relay posts.
        environ = common.env(slack_url=fake_slack.start_in_thread())
        return common.serve(tmp / "promobot.db", port, environ, tmp / "promobot.log")
    if kind == "probot":
        install_probot()
        cmd = [str(PROBOT / "node_modules" / ".bin" / "probot"), "run", "./app.js"]
        environ = {
            **os.environ,
            "APP_ID": "12345",
            "PRIVATE_KEY": common.private_key(),
            "WEBHOOK_SECRET": common.WEBHOOK_SECRET,
            "WEBHOOK_PATH": "/github/webhooks",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "fatal",
            "NODE_ENV": "production",
        }
        proc = subprocess.Popen(
            common.pinned(cmd, common.SERVER_CPU), cwd=PROBOT, env=environ, stdout=log, stderr=log
        )
    else:
        cmd = [sys.executable, str(common.BENCH / "baselines.py"), kind, str(port)]
        cmd += [str(tmp / "naive.db")] if kind == "naive" else []
        proc = subprocess.Popen(common.pinned(cmd, common.SERVER_CPU), stdout=log, stderr=log)
    common.wait_port(port, proc)
    return proc


def move_children(pid: int, cpu: str) -> bool:
    """Pin the child processes of `pid` to `cpu` (unless 'same'); say whether any moved."""
    if cpu == "same" or not Path("/usr/bin/taskset").exists():
        return False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        if found.stdout.split():
            for child in found.stdout.split():
                subprocess.run(["taskset", "-pc", cpu, child], capture_output=True, check=True)
            return True
        time.sleep(0.1)
    return False


def wrk(port: int, pool: Path, seconds: float, connections: int) -> dict[str, Any]:
    """Run wrk (closed loop, pinned to the client core) over the pool; return its figures."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["-s", str(common.BENCH / "real_deliveries.lua"), f"http://127.0.0.1:{port}"]
    environ = {**os.environ, "POOL": str(pool), "RUN_ID": uuid.uuid4().hex[:12]}
    out = subprocess.run(
        common.pinned(cmd, common.CLIENT_CPU), env=environ, capture_output=True, text=True
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures: {out.stdout}\n{out.stderr}")
    figures = json.loads(line[5:])
    figures["rps"] = round(figures["requests"] / figures["seconds"], 1)
    return figures


def loadgen(port: int, mode: str, rate: float, seconds: float, **extra: Any) -> subprocess.Popen:
    """Start the open-loop generator on the client core (`extra`: pool, skip, slash, text)."""
    # Deliveries and slash commands come from the light pipelined generator (prepared ahead:
    # loadgen.py's aiohttp client, signing after each due moment, timed itself on a busy core).
    if mode in ("pool", "slash"):
        cmd = [sys.executable, str(common.BENCH / "openloop.py"), "--url"]
    else:
        cmd = [sys.executable, str(common.BENCH / "loadgen.py"), mode, "--url"]
    cmd += [f"http://127.0.0.1:{port}", "--rate", str(rate), "--seconds", str(seconds)]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    return subprocess.Popen(
        common.pinned(cmd, common.CLIENT_CPU), stdout=subprocess.PIPE, text=True
    )


def collect(proc: subprocess.Popen) -> dict[str, Any]:
    """Wait for a generator and return its figures."""
    out, _ = proc.communicate(timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def inbox(db: Path) -> tuple[int, int]:
    """Return (deliveries stored, deliveries still pending) of a promobot database.

    Both count the deliveries still in its ingest file, not yet copied into `deliveries`.
    """
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        total, waiting = conn.execute(
            "SELECT count(*), sum(state = 'pending') FROM deliveries"
        ).fetchone()
        conn.execute("ATTACH DATABASE ? AS ingest", [f"file:{ingest.path_for(db)}?mode=ro"])
        arrived = ingest.waiting(Database(conn))[0]
    return total + arrived, (waiting or 0) + arrived


def written_ahead(db: Path, timeout: float = 30.0) -> float:
    """Wait until serve has written its ingest WAL ahead, as one up for a while has; seconds."""
    start, wal = time.monotonic(), Path(f"{ingest.path_for(db)}-wal")
    while time.monotonic() - start < timeout:
        if wal.exists() and wal.stat().st_size >= INGEST_WAL_BYTES:
            break
        time.sleep(0.2)
    return round(time.monotonic() - start, 1)


def drain(db: Path, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until no delivery is pending; return the backlog, the time taken and the rate."""
    start = time.monotonic()
    _, backlog = inbox(db)
    left = backlog
    while left and time.monotonic() - start < timeout:
        time.sleep(0.2)
        _, left = inbox(db)
    took = time.monotonic() - start
    rate = round((backlog - left) / took, 1) if backlog >= 100 and took else None
    return {"backlog": backlog, "left": left, "drain_s": round(took, 1), "processed_per_s": rate}
