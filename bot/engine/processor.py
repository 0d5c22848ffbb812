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
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)
NICE = 10  # on a shared core, acknowledgements first; processing takes what they leave
STOP_WAIT = 4.0


class ChildDied(Exception):
    """The processing process exited while nobody asked it to."""


class Processing:
    """The parent's handle on its processing child: start it, keep it running, nudge it."""

    def __init__(self, config_path: str, db_path: str) -> None:
        self.config_path, self.db_path = config_path, db_path
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self.started: Callable[[], None] = lambda: None  # e.g. the supervisor's beat

    def wake(self) -> None:
        """Tell the child that a delivery was stored or a call queued."""
        if self._stopping:
            return
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
        self.started()
        try:
            code = await asyncio.to_thread(self._proc.wait)
        finally:
            if self._proc.poll() is None:  # cancelled: the shutdown's grace is over
                self._proc.terminate()
                try:
                    await asyncio.to_thread(self._proc.wait, STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
        if not self._stopping:
            raise ChildDied(f"the processing process exited with {code}")
        os.close(self._read)

    def _spawn(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "bot.engine.processor", "--config", self.config_path]
        cmd += ["--db", self.db_path, "--wake-fd", str(self._read), "--parent", str(os.getpid())]
        return subprocess.Popen(cmd, pass_fds=(self._read,))


def die_with(parent: int) -> None:
    """Have the kernel kill this process when `parent` dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


async def process(app: web.Application, wake_fd: int, stopped: list[int]) -> None:
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
    try:
        await done.wait()
    finally:
        loop.remove_reader(wake_fd)
        await runner.cleanup()  # finishes what is in hand, as serve does on SIGTERM


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child `promobot serve` starts."""
    parser = argparse.ArgumentParser(prog="promobot-processing")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--wake-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    die_with(args.parent)
    stopped: list[int] = []  # a SIGTERM before the loop runs must not kill it mid-start
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _: stopped.append(number))
    os.nice(NICE)
    from bot.app import create_app
    from bot.cli import load_inbound, serve_secrets, setup_logs
    from bot.config import load_config

    config = load_config(args.config)
    secrets = serve_secrets(config)
    setup_logs(secrets)
    app = create_app(config, secrets, db_path=Path(args.db), inbound=load_inbound())
    asyncio.run(process(app, args.wake_fd, stopped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
