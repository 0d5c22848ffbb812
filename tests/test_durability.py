"""Acknowledged means stored: kill -9 after a 202 loses nothing; SIGTERM stops promptly.

And `promobot serve` as the kernel sees it: a burst of connections is held, not dropped; its
processing child runs on CPU time nothing else wants.
"""

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.dev import client, forms
from tests.conftest import ROOT, TEAM, WEBHOOK_SECRET, push_payload, status_payload
from tests.waiting import wait_for_blocking


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`promobot serve` as a real process, as an operator would run it."""

    def __init__(self, db: Path, private_key: str) -> None:
        self.db = db
        self.port = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_APP_ID": "1",
            "GITHUB_PRIVATE_KEY": private_key,
            "SLACK_BOT_TOKEN": "xoxb-unused",
            "SLACK_SIGNING_SECRET": "unused",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "GITHUB_API_URL": "http://127.0.0.1:9",
        }
        self.process: subprocess.Popen | None = None
        # More of promobot serve's options. A small ingest WAL: written ahead as in production,
        # without 640 MB of zeros for each test.
        self.args: list[str] = ["--ingest-wal-mb", "4"]
        self.log = open(db.with_suffix(".log"), "a+b")  # noqa: SIM115 -- lives as long as the server

    def start(self) -> None:
        self.log.seek(0, os.SEEK_END)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                "--config",
                str(ROOT / "app.yaml"),
                "--db",
                str(self.db),
                "--port",
                str(self.port),
                *self.args,
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                return True

        wait_for_blocking(
            healthy, 30, what="promobot serve started", ignoring=(urllib.error.URLError, OSError)
        )

    def deliver(self, event: str, payload: dict) -> int:
        return self.deliver_as(str(uuid.uuid4()), event, payload)[0]

    def deliver_as(self, guid: str, event: str, payload: dict) -> tuple[int, dict]:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/github/webhooks",
            data=body,
            method="POST",
            headers=client.github_headers(event, body, WEBHOOK_SECRET, delivery=guid),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def server(tmp_path, private_key):
    server = Server(tmp_path / "promobot.db", private_key)
    yield server
    server.stop(signal.SIGKILL)
    server.log.close()


def restart_after_kill_9(server: Server) -> None:
    """Kill serve with no chance to finish anything, start it again, wait for its backlog."""
    server.stop(signal.SIGKILL)
    server.start()
    wait_for_blocking(
        lambda: not health(server)[1]["backlog"]["deliveries_pending"],
        30,
        what="the backlog resumed",
        every=0.1,
    )


def test_deliveries_acknowledged_before_kill_9_are_processed_after_restart(server):
    server.start()
    acknowledged = 0
    shas = [f"{i:040x}" for i in range(1, 41)]
    for i, sha in enumerate(shas):
        assert server.deliver("push", push_payload(sha, stamp=f"2026-11-24T09:{i:02d}:00Z")) == 202
        assert server.deliver("status", status_payload(sha, state="success")) == 202
        acknowledged += 2
    restart_after_kill_9(server)
    assert query(server.db, "SELECT count(*) FROM deliveries WHERE state = 'done'") == [
        (acknowledged,)
    ]
    assert query(server.db, "SELECT count(*), min(number), max(number) FROM builds") == [
        (40, 1, 40)
    ]
    assert query(server.db, "SELECT DISTINCT ci_state FROM builds") == [("success",)]


def test_deliveries_written_over_a_wal_written_ahead_survive_kill_9(server):
    server.start()
    wal = Path(f"{server.db}.ingest-wal")
    wait_for_blocking(
        lambda: wal.stat().st_size == 4 << 20, 30, what="the WAL written ahead", every=0.1
    )
    for i in range(30):
        sha = f"{i + 1:040x}"
        assert server.deliver("push", push_payload(sha, stamp=f"2026-11-24T10:{i:02d}:00Z")) == 202
        assert server.deliver("status", status_payload(sha, state="success")) == 202
    assert wal.stat().st_size == 4 << 20  # written over the zeros, not appended past them
    restart_after_kill_9(server)
    assert query(server.db, "SELECT count(*) FROM deliveries WHERE state = 'done'") == [(60,)]
    assert query(server.db, "SELECT count(*), max(number) FROM builds") == [(30, 30)]


def test_a_redelivery_after_processing_is_already_stored_and_not_processed_again(server):
    server.start()
    first = server.deliver_as("guid-once", "push", push_payload())
    assert first == (202, {"delivery": "guid-once", "stored": "new"})
    wait_for(lambda: query(server.db, "SELECT state FROM deliveries") == [("done",)], "not done")
    again = server.deliver_as("guid-once", "push", push_payload())
    assert again == (202, {"delivery": "guid-once", "stored": "already stored"})
    wait_for(lambda: health(server)[1]["backlog"]["deliveries_pending"] == 0, "not adopted")
    assert query(server.db, "SELECT delivery_id, state, attempts FROM deliveries") == [
        ("guid-once", "done", 1)
    ]
    assert query(server.db, "SELECT count(*) FROM builds") == [(1,)]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_sigterm_stops_the_service_within_ten_seconds(server, loop):
    server.args += ["--loop", loop]  # uvloop, or Python's own event loop should it misbehave
    server.start()
    assert server.deliver("push", push_payload()) == 202
    started = time.monotonic()
    server.stop(signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert server.process.returncode == 0
    assert query(server.db, "SELECT state FROM deliveries") == [("done",)]


def children(pid: int) -> list[int]:
    """Return the live child processes of `pid` (zombies are dead)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_for(check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_processing_process_is_started_again_and_dies_with_serve(server):
    server.start()
    wait_for(lambda: children(server.process.pid), "serve started no processing process")
    (first,) = children(server.process.pid)
    os.kill(first, signal.SIGKILL)
    assert server.deliver("push", push_payload()) == 202  # acknowledged while none runs
    wait_for(
        lambda: query(server.db, "SELECT state FROM deliveries") == [("done",)],
        "the delivery was not processed by a new processing process",
    )
    (second,) = children(server.process.pid)
    assert second != first
    server.stop(signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{second}").exists() or _zombie(second), "it outlived serve")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def health(server: Server) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_stuck_processing_process_is_named_on_healthz_until_it_moves_again(server):
    server.start()
    wait_for(lambda: children(server.process.pid), "serve started no processing process")
    (child,) = children(server.process.pid)
    wait_for(lambda: health(server) == (200, health(server)[1]), "serve is not healthy")
    os.kill(child, signal.SIGSTOP)  # alive, but it neither works nor reports
    try:
        wait_for(lambda: health(server)[0] == 503, f"unnoticed: {health(server)}", seconds=30)
        (problem,) = health(server)[1]["problems"]
        assert problem.startswith("processing: no health report from the processing process")
    finally:
        os.kill(child, signal.SIGCONT)
    wait_for(lambda: health(server)[0] == 200, "serve stayed unhealthy after the child resumed")
    assert server.deliver("push", push_payload()) == 202
    wait_for(lambda: query(server.db, "SELECT state FROM deliveries") == [("done",)], "not done")


def ship(server: Server, text: str, user: str = "U012ABC") -> str:
    """Type `/ship text` in #releases, signed as Slack signs it; return the answer."""
    form = forms.slash_form(
        text,
        user=user,
        user_name=user.lower(),
        response_url="http://127.0.0.1:9/respond",
        channel_id="C0RELEASES",
        channel_name="releases",
        team=TEAM,
    )
    body = urlencode(form).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/slack/events",
        data=body,
        method="POST",
        headers=client.slack_headers(body, server.env["SLACK_SIGNING_SECRET"]),
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_a_status_answered_is_in_the_event_log_even_after_kill_9(server):
    server.start()
    assert server.deliver("push", push_payload()) == 202
    wait_for(lambda: query(server.db, "SELECT state FROM deliveries") == [("done",)], "not done")
    # The processing process in the middle of a long transaction of the main file.
    holder = sqlite3.connect(server.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert "*Codertocat/Hello-World*" in ship(server, "status")
        server.stop(signal.SIGKILL)  # right after the answer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    server.start()
    wait_for(
        lambda: query(server.db, "SELECT actor, action FROM event_log WHERE action = 'status'"),
        "the status line was lost",
    )
    assert query(server.db, "SELECT actor, action FROM event_log WHERE action = 'status'") == [
        ("U012ABC", "status")
    ]


def accept_queue(port: int) -> int:
    """Return how many connections the kernel holds for the socket listening on `port`."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                return int(fields[4].split(":")[1], 16)  # rx_queue: established, not accepted
    raise AssertionError(f"nothing listens on {port}")


BURST = 300  # more than aiohttp's default backlog of 128


@pytest.mark.skipif(
    not Path("/proc/net/tcp").exists()
    or int(Path("/proc/sys/net/core/somaxconn").read_text()) < BURST,
    reason="reads Linux's view of the listening socket",
)
def test_a_burst_of_connections_while_serve_is_busy_waits_for_it_not_for_a_retry(server):
    server.start()
    # Stopped, serve accepts nothing: what the kernel does not hold for it, it drops, and
    # each dropped connection is tried again by its client a second later.
    os.kill(server.process.pid, signal.SIGSTOP)
    clients = []
    try:
        for _ in range(BURST):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            clients.append(sock)
        wait_for(
            lambda: accept_queue(server.port) == BURST, f"the kernel held fewer than {BURST}", 5
        )
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    answers = []
    for sock in clients:
        sock.settimeout(10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: promobot\r\nConnection: close\r\n\r\n")
        answers.append(sock.recv(12))
        sock.close()
    assert answers == [b"HTTP/1.1 200"] * BURST


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling")
def test_the_processing_process_runs_only_on_cpu_time_nothing_else_wants(server):
    server.start()
    wait_for(lambda: children(server.process.pid), "serve started no processing process")
    (child,) = children(server.process.pid)
    assert server.deliver("push", push_payload()) == 202
    wait_for(lambda: query(server.db, "SELECT state FROM deliveries") == [("done",)], "not done")
    policies = {}
    for thread in os.listdir(f"/proc/{child}/task"):  # its writer and readers too
        with contextlib.suppress(ProcessLookupError):  # a reader that just ended
            policies[thread] = os.sched_getscheduler(int(thread))
    assert len(policies) > 1 and set(policies.values()) == {os.SCHED_IDLE}
    assert os.sched_getscheduler(server.process.pid) == os.SCHED_OTHER  # acknowledgements
