"""Shared pieces of the benchmarks: secrets, processes, percentiles, results (bot.dev signs)."""

import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PROMOBOT = Path(sys.executable).parent / "promobot"
WEBHOOK_SECRET = "bench-webhook-secret"
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
REPO = {
    "id": 1296269,
    "full_name": "acme/widgets",
    "html_url": "https://github.com/acme/widgets",
}
# Server on one core, load generators on the other (2-core machine): they do not steal each
# other's cycles, and promobot gets exactly what the bare baseline gets.
SERVER_CPU = "0"
CLIENT_CPU = "1"


def team_id() -> str:
    """Return the Slack workspace app.yaml answers (slash commands from any other are refused)."""
    import yaml

    return str(yaml.safe_load((ROOT / "app.yaml").read_text())["slack"]["team_id"])


def private_key() -> str:
    """Make a throwaway RSA key for the GitHub App secret."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def env(slack_url: str = "http://127.0.0.1:9/api/", github_url: str = "http://127.0.0.1:9") -> dict:
    """Return the environment promobot serve runs with in the benchmarks."""
    return {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_APP_ID": "12345",
        "GITHUB_PRIVATE_KEY": private_key(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_url,
        "GITHUB_API_URL": github_url,
    }


def new_sha() -> str:
    """Return a random 40-hex sha."""
    return hashlib.sha1(uuid.uuid4().bytes).hexdigest()


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def pinned(cmd: list[str], cpu: str) -> list[str]:
    """Prefix `cmd` with taskset when it exists and the machine has the core."""
    if os.cpu_count() and os.cpu_count() > 1 and Path("/usr/bin/taskset").exists():
        return ["taskset", "-c", cpu, *cmd]
    return cmd


def serve(db: Path, port: int, environ: dict, log: Path) -> subprocess.Popen:
    """Start `promobot serve` on `db` (pinned to the server core) and wait until it listens."""
    cmd = [str(PROMOBOT), "serve", "--config", str(ROOT / "app.yaml"), "--db", str(db)]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(
        pinned(cmd, SERVER_CPU), env=environ, stdout=subprocess.DEVNULL, stderr=log.open("ab")
    )
    wait_port(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float | None:
    """Return the process's peak resident set (VmHWM) in MB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def percentile(values: list[float], p: float) -> float | None:
    """Return the p-th percentile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(seconds: float | None) -> float | None:
    """Return seconds as milliseconds rounded to 0.1, keeping None."""
    return None if seconds is None else round(seconds * 1000, 1)


def machine() -> dict[str, Any]:
    """Describe the machine the figures come from."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write figures to bench/results/<name>.json and print them."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n== {name} ==")
    for key, value in figures.items():
        print(f"  {key}: {json.dumps(value)}")
    print(f"  (written to {path.relative_to(ROOT)})")
    return path
