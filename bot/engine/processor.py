"""Processing in its own process: `promobot serve` acknowledges, its child applies and sends.

Why a process: applying a delivery costs several times what acknowledging it does, and in one
Python process the two share one interpreter lock, so under load the worker delayed every
202 (p99 in the hundreds of ms) and halved the acknowledgement rate. As a child process on
the same database (WAL lets both read while one writes) the worker runs on another core when
there is one, and at a lower priority on a shared one: the kernel, not the interpreter,
gives the acknowledgements the CPU first, and the backlog is processed when they leave room.
The parent nudges the child through a pipe after each stored delivery or queued call; the
child dies with its parent (a kill -9 leaves no orphan processing beside the next start).
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from bot.engine.supervisor import Supervisor
from storage import inbox

log = logging.getLogger(__name__)
NICE = 10  # where idle scheduling is missing (see yield_the_cpu)
STOP_WAIT = 4.0
SMALL_BATCH = 64
# The child reports its tasks' health this often; three missed reports mean it is stuck.
REPORT_EVERY = 2.0
SILENT_AFTER = 10.0


class ChildDied(Exception):
    """The processing process exited while nobody asked it to."""


class Processing:
    """The parent's handle on its processing child: start it, keep it running, nudge it."""

    def __init__(self, config_path: str, db_path: str, log_format: str = "text") -> None:
        self.config_path, self.db_path, self.log_format = config_path, db_path, log_format
        # Where the child saves its counters for GET /metrics (the serving process reads it).
        self.metrics_file = Path(f"{db_path}.processing-metrics")
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        # The child's supervisor is in another process: it reports on a pipe of its own.
        self._status_read, self._status_write = os.pipe()
        os.set_blocking(self._status_read, False)
        self._status = b""
        self.child_problems: list[str] = []
        self.reported_at: float | None = None
        self._spawned_at = 0.0
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self._nudging = False  # a nudge is due at the end of this turn of the event loop
        self.started: Callable[[], None] = lambda: None  # e.g. the supervisor's beat

    def problems(self) -> list[str]:
        """Say what the child last reported as unhealthy, or that it has stopped reporting."""
        if self._proc is None or self._proc.poll() is not None:
            return []  # not running: the parent's own supervisor says so
        # A child that never reported since it was started counts from its start.
        silent = time.monotonic() - (self.reported_at or self._spawned_at)
        if silent > SILENT_AFTER:
            return [f"no health report from the processing process for {silent:.0f}s"]
        return list(self.child_problems)

    def _on_status(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._status += os.read(self._status_read, 65536)
        *lines, self._status = self._status.split(b"\n")
        for line in lines[-1:]:  # only the newest report counts
            with contextlib.suppress(ValueError):
                self.child_problems = [str(p) for p in json.loads(line)]
                self.reported_at = time.monotonic()

    def wake(self) -> None:
        """Tell the child that a delivery was stored or a call queued."""
        if self._stopping or self._nudging:
            return
        # A group commit settles many acknowledgements in one turn of the event loop: one
        # write (a syscall, and a wake-up of the child) after them all, not one each.
        self._nudging = True
        asyncio.get_running_loop().call_soon(self._nudge)

    def _nudge(self) -> None:
        self._nudging = False
        if not self._stopping:
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(self._write, b"!")  # a full pipe already says so

    def stop(self) -> None:
        """Ask the child to finish what it holds and exit; run() returns when it has.

        Closing the pipe says so even to a child still starting (a SIGTERM then would kill
        it before it processed what is ready).
        """
        if not self._stopping:
            self._stopping = True
            os.close(self._write)

    async def run(self) -> None:
        """Run the child until stopped; raise if it dies, so the supervisor starts it again."""
        self._proc = self._spawn()
        self.reported_at, self._spawned_at = None, time.monotonic()
        self.started()
        loop = asyncio.get_running_loop()
        loop.add_reader(self._status_read, self._on_status)
        try:
            code = await asyncio.to_thread(self._proc.wait)
        finally:
            loop.remove_reader(self._status_read)
            if self._proc.poll() is None:  # cancelled: the shutdown's grace is over
                self._proc.terminate()
                try:
                    await asyncio.to_thread(self._proc.wait, STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
        if not self._stopping:
            raise ChildDied(f"the processing process exited with {code}")
        os.close(self._read)
        os.close(self._status_read)
        os.close(self._status_write)

    def _spawn(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "bot.engine.processor", "--config", self.config_path]
        cmd += ["--db", self.db_path, "--wake-fd", str(self._read), "--parent", str(os.getpid())]
        cmd += ["--status-fd", str(self._status_write)]
        cmd += ["--log-format", self.log_format, "--metrics-file", str(self.metrics_file)]
        return subprocess.Popen(cmd, pass_fds=(self._read, self._status_write))


def die_with(parent: int) -> None:
    """Have the kernel kill this process when `parent` dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


async def report(supervisor: Supervisor, status_fd: int) -> None:
    """Tell the parent, every few seconds, which of this process's tasks are unhealthy."""
    os.set_blocking(status_fd, False)
    while True:
        line = json.dumps(supervisor.problems()).encode() + b"\n"
        with contextlib.suppress(BlockingIOError):  # a parent behind on reading misses one
            os.write(status_fd, line)
        await asyncio.sleep(REPORT_EVERY)


async def process(
    app: web.Application, wake_fd: int, stopped: list[int], status_fd: int | None = None
) -> None:
    """Run the app's services (worker, relay, schedules) without HTTP until SIGTERM."""
    from bot.app import SERVICES

    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # runs the app's lifecycle: the services start
    services = app[SERVICES]
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if stopped:
        done.set()  # asked to stop while starting: still process what is ready, then exit

    def nudged() -> None:
        if not os.read(wake_fd, 65536):
            done.set()  # the parent closed its end: it is gone
            return
        services.worker.wake()
        services.relay.wake()

    loop.add_reader(wake_fd, nudged)
    reporter = None
    if status_fd is not None:
        reporter = asyncio.create_task(report(services.supervisor, status_fd), name="report")
    try:
        await done.wait()
    finally:
        if reporter is not None:
            reporter.cancel()
        loop.remove_reader(wake_fd)
        await runner.cleanup()  # finishes what is in hand, as serve does on SIGTERM


def yield_the_cpu() -> None:
    """Run this process only on CPU time that nothing else wants (Linux), else at nice 10."""
    # SCHED_IDLE: anything that wakes on this core (an acknowledgement, the machine's other
    # work) takes it from processing at once; at nice 10 the waking task could wait for the
    # running slice to end (the bench's load generator, sharing the processing core, sent
    # p99 3-4 ms late at nice 10 and 1-2 ms late idle). Set before any thread starts:
    # threads take their policy from the thread that starts them.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or a kernel without it
        os.nice(NICE)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child `promobot serve` starts."""
    parser = argparse.ArgumentParser(prog="promobot-processing")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--wake-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--status-fd", type=int, help="where to report the tasks' health")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--metrics-file", type=Path, default=None)
    args = parser.parse_args(argv)
    die_with(args.parent)
    stopped: list[int] = []  # a SIGTERM before the loop runs must not kill it mid-start
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _: stopped.append(number))
    yield_the_cpu()
    # Smaller transactions than inline: the parent's Slack decisions share the main file's
    # write lock (its acknowledgements do not: they go to the ingest file), so one batch
    # holds it some tens of ms at most; fewer would pay a commit every few deliveries.
    inbox.BATCH = SMALL_BATCH
    from bot.app import create_app
    from bot.cli.serve import load_inbound, serve_secrets, setup_logs
    from bot.config import load_config

    config = load_config(args.config)
    secrets = serve_secrets(config)
    setup_logs(secrets, args.log_format)
    app = create_app(
        config,
        secrets,
        db_path=Path(args.db),
        inbound=load_inbound(),
        metrics_file=args.metrics_file,
    )
    asyncio.run(process(app, args.wake_fd, stopped, args.status_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
