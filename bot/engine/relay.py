"""The outbox relay: send queued Slack and GitHub calls, paced, retried, never twice on purpose.

Each lane (a Slack channel, a GitHub installation) is served by one task, in
row order, so a build's first post always precedes its edits and thread
replies. A row is marked sent only after the remote said ok, together with
whatever the answer taught us (a message's ts, a deployment's id).
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlite_utils import Database

from bot.engine.metrics import Metrics
from bot.engine.supervisor import Supervisor
from storage import Store, outbox, pauses

log = logging.getLogger(__name__)
Record = Callable[[Database], None]
Sender = Callable[["Row"], Awaitable[Record | None]]
MAX_BACKOFF = 300.0
# Longer than any one call may take (the clients time out at 30 s).
LEASE = 90.0


class RetryAfter(Exception):
    """The remote asked us to wait (HTTP 429, or GitHub's secondary limit).

    `lane_wide` pauses the whole lane (a GitHub installation's limit); Slack's
    limits are per Web API method, which the Slack client enforces itself.
    `held` says the call never went out (it was held back by a pause in force).
    `scope` names a pause wider than the lane (a Slack method), kept in the database.
    """

    def __init__(
        self,
        seconds: float,
        reason: str = "rate limited",
        *,
        lane_wide: bool = True,
        held: bool = False,
        scope: str | None = None,
    ) -> None:
        super().__init__(f"{reason}; retry after {seconds:.0f}s")
        self.seconds = seconds
        self.lane_wide = lane_wide
        self.held = held
        self.scope = scope


class Transient(Exception):
    """A 5xx or a connection error: try again later."""


class Permanent(Exception):
    """The remote refused the call for good (channel_not_found, 422 …)."""


class Waiting(Exception):
    """The row depends on something not there yet (another row, GitHub's list): look again."""

    def __init__(self, reason: str, seconds: float = 1.0) -> None:
        super().__init__(reason)
        self.seconds = seconds


@dataclass(frozen=True)
class Row:
    id: int
    target: str
    method: str
    lane: str
    payload: dict[str, Any]
    attempts: int
    raw: str = ""  # the payload as stored, to tell whether it was replaced while in flight
    # An earlier attempt may have reached the remote without our knowing: a sender that
    # can should look before it posts again.
    uncertain: bool = False
    created_at: float = 0.0


# Minimum seconds between two calls in one lane, by method or else by target. Every
# Slack write to a channel counts: posts, replies and edits (so a burst of edits
# collapses into one per second); an ephemeral answer is not held back.
PACE = {"chat.postEphemeral": 0.0, "slack": 1.0, "github": 0.75}


class Relay:
    """Sends outbox rows through the sender registered for each method."""

    def __init__(
        self,
        store: Store,
        senders: dict[str, Sender],
        clock: Callable[[], float] = time.time,
        supervisor: Supervisor | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.supervisor = supervisor or Supervisor()
        self.metrics = metrics or Metrics()
        self.senders = senders
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._lanes: dict[str, asyncio.Task] = {}
        self._last_call: dict[tuple[str, str], float] = {}
        self._paused_until: dict[str, float] = {}
        self.pace = dict(PACE)  # per instance, so a test may hurry its own relay
        self.sent = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    def wake(self) -> None:
        """Tell the relay that rows were committed."""
        self._wake.set()

    def stop(self) -> None:
        """Start nothing new; run() returns once the calls in flight are recorded."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def run(self) -> None:
        """Start a task for every lane with pending rows, until stopped or cancelled."""
        try:
            while not self._stopping:
                self._wake.clear()
                lanes = await self.store.read(outbox.pending_lanes)
                self.supervisor.beat("relay")
                for lane in lanes:
                    task = self._lanes.get(lane)
                    if task is None or task.done():
                        self._lanes[lane] = asyncio.create_task(self._guard(lane), name=lane)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
        finally:
            for task in self._lanes.values():
                task.cancel()
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def idle(self) -> None:
        """Wait until no lane has pending work that is due (for tests and shutdown)."""
        while True:
            self.wake()
            await asyncio.sleep(0.02)
            busy = [t for t in self._lanes.values() if not t.done()]
            if not busy and not await self.store.read(outbox.pending_lanes):
                return
            if busy:
                await asyncio.wait(busy, timeout=0.5)

    async def _guard(self, lane: str) -> None:
        # A lane that fails (its database write refused, say) waits out a backoff and
        # ends; run() starts it again while the lane has pending rows.
        name = f"relay lane {lane}"
        try:
            await self._serve(lane)
        except Exception as exc:
            with contextlib.suppress(TimeoutError):
                delay = self.supervisor.failed(name, exc)
                await asyncio.wait_for(self._stopped.wait(), timeout=delay)
        else:
            self.supervisor.beat(name)

    async def _serve(self, lane: str) -> None:
        while not self._stopping:
            now = self.clock()
            row = await self.store.read(partial(_next_row, lane=lane, owner=self.owner, now=now))
            if row is None:
                return  # nothing left, or another instance is serving this lane
            wait = max(row["not_before"] - now, self._pause_left(row))
            if wait > 0:
                with contextlib.suppress(TimeoutError):  # a stop cuts the wait short
                    await asyncio.wait_for(self._stopped.wait(), timeout=wait)
                continue
            leased = await self.store.write(
                partial(_lease, row_id=row["id"], owner=self.owner, now=self.clock())
            )
            if leased:
                await self._send(Row(**leased))

    def _pause_left(self, row: dict[str, Any]) -> float:
        # A lane-wide pause (GitHub limits each installation); Slack's 429s are per method
        # across the workspace, and its client holds back each method itself.
        paused = self._paused_until.get(row["lane"], 0.0) - time.monotonic()
        pace_key = row["method"] if row["method"] in self.pace else row["target"]
        interval = self.pace.get(pace_key, 0.0)
        last = self._last_call.get((row["lane"], pace_key))
        paced = (last + interval - time.monotonic()) if last is not None and interval else 0.0
        return max(paused, paced)

    async def _send(self, row: Row) -> None:
        sender = self.senders.get(row.method)
        pace_key = row.method if row.method in self.pace else row.target
        extra = {"outbox": row.id, "lane": row.lane, "target": row.target, "method": row.method}
        try:
            if sender is None:
                raise Permanent(f"no sender for {row.method}")
            try:
                record = await sender(row)
            finally:
                # Pace from the end of the call: the remote counts arrivals, and its answer
                # comes after our request arrived, so the next one lands a full interval later.
                self._last_call[(row.lane, pace_key)] = time.monotonic()
        except RetryAfter as exc:
            if exc.lane_wide:
                self._paused_until[row.lane] = time.monotonic() + exc.seconds
            if not exc.held:
                log.warning("%s %s: %s", row.target, row.method, exc, extra=extra)
                self.metrics.rate_limit_waits.labels(row.target, row.method).inc()
                self.metrics.rate_limit_seconds.labels(row.target).inc(exc.seconds)
            await self._retry(row, exc.seconds, exc, count=False)
        except Waiting as exc:
            await self._retry(row, exc.seconds, exc, count=False)
        except Transient as exc:
            delay = min(MAX_BACKOFF, 2.0 ** (row.attempts + 1))
            log.warning(
                "%s %s failed (attempt %d), retrying in %.0fs: %s",
                row.target,
                row.method,
                row.attempts + 1,
                delay,
                exc,
                extra=extra,
            )
            await self._retry(row, delay, exc, count=True)
        except Permanent as exc:
            log.error("%s %s refused for good: %s", row.target, row.method, exc, extra=extra)
            error = str(exc)
            await self.store.write(lambda db: outbox.mark_failed(db, row.id, error))
        except Exception as exc:  # a sender's own bug: retry the row later, keep the lane going
            log.exception("%s %s: unexpected error", row.target, row.method, extra=extra)
            delay = min(MAX_BACKOFF, 2.0 ** (row.attempts + 1))
            await self._retry(row, delay, exc, count=True)
        else:
            now = self.clock()
            await self.store.write(lambda db: _sent(db, row.id, row.raw, now, record))
            self.sent += 1

    async def _retry(self, row: Row, delay: float, error: Exception, *, count: bool) -> None:
        not_before, text, until = self.clock() + delay, str(error), time.time() + delay
        # A fresh 429's pause wider than the lane (a Slack method) is kept for a restart too.
        scope = error.scope if isinstance(error, RetryAfter) and not error.held else None

        def write(db: Database) -> None:
            outbox.retry_later(db, row.id, not_before, text, count=count)
            if scope is not None:
                pauses.hold(db, scope, until)

        await self.store.write(write)


def holder_gone(owner: str | None) -> bool:
    """Say whether a lease's owner was a process on this machine that no longer runs."""
    # A kill -9 leaves its leases behind: waiting LEASE out would stall the lane for no one.
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False  # another machine's, an old-style owner, or alive in this very process
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, under another user
    return False


def _held(holder: str | None, until: float | None, owner: str, now: float) -> bool:
    """Say whether another relay, still running, holds a lease that has not expired."""
    return holder not in (None, owner) and (until or 0) >= now and not holder_gone(holder)


def _next_row(db: Database, lane: str, owner: str, now: float) -> dict[str, Any] | None:
    """Return the lane's first pending row, unless another relay holds its lease."""
    row = outbox.head(db, lane)
    if row is None or _held(row["lease_owner"], row["lease_until"], owner, now):
        return None
    return row


def _lease(db: Database, row_id: int, owner: str, now: float) -> dict[str, Any] | None:
    """Take the row for `owner` if it is still pending and free; return it as a Row's fields."""
    row = outbox.pending(db, row_id)
    if row is None or _held(row["lease_owner"], row["lease_until"], owner, now):
        return None
    outbox.lease(db, row_id, owner, now + LEASE)
    keys = ("id", "target", "method", "lane", "raw", "attempts", "created_at")
    record = {k: row[k] for k in keys}
    record["payload"] = json.loads(record["raw"])
    # Unsure whether an earlier attempt reached the remote: it was cut off by a crash (its
    # lease is still there), or it failed in a way that does not say (a timeout, a 5xx).
    record["uncertain"] = row["lease_owner"] is not None or record["attempts"] > 0
    return record


def _sent(db: Database, row_id: int, raw: str, now: float, record: Record | None) -> None:
    # A payload replaced while in flight (a newer edit) stays pending, to be sent next;
    # what the answer taught us (a message's ts) is recorded either way.
    outbox.mark_sent(db, row_id, raw, now)
    if record:
        record(db)
