"""The worker: apply stored deliveries, in order per repository, through the event router."""

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from gidgethub import routing, sansio
from sqlite_utils import Database

from bot.config import Config
from bot.core.clock import Clock
from bot.core.text import load_json
from bot.engine.metrics import Metrics
from bot.pipeline.tx import Reaction, Tx, transient
from storage import Store, inbox, notes, savepoint

log = logging.getLogger(__name__)
Step = Callable[[Tx], None]
MAX_ATTEMPTS = 5
# Processed bodies are kept this long (GitHub redelivers within 3 days), then dropped.
KEEP_BODIES = 7 * 24 * 3600.0
PRUNE_EVERY = 3600.0


def facts(delivery: dict[str, Any]) -> dict[str, Any]:
    """Return the structured-log fields of a delivery being processed."""
    return {
        "delivery_id": delivery["delivery_id"],
        "event": delivery["event"],
        "repo": delivery["repo_key"],
        **delivery.get("facts", {}),
    }


class UnitOfWork:
    """The steps the router's handlers chose for one delivery, applied later in one transaction."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, step: Callable[..., None], *args: Any) -> None:
        """Queue `step(tx, *args)`."""
        self.steps.append(lambda tx: step(tx, *args))


class Unreadable(Exception):
    """A delivery whose body the handlers could not turn into steps."""


class Poison(Exception):
    """A delivery whose change was kept without the reactions that failed on it."""

    def __init__(self, error: BaseException, skipped: list[str]) -> None:
        what = "; ".join(skipped) or f"{type(error).__name__}: {error}"
        super().__init__(f"kept without what failed on it ({what})")


Planned = UnitOfWork | BaseException | None  # None: passed over (held back, or known)


def passed_over(delivery: dict[str, Any]) -> bool:
    """Say whether a delivery of a batch is left as it is rather than processed now."""
    return bool(delivery.get("held") or delivery.get("known"))


def verdict(
    delivery: dict[str, Any],
    state: str,
    processed_at: float | None,
    error: str | None = None,
    not_before: float | None = None,
    *,
    attempts: int | None = None,
) -> inbox.Settled:
    """Return what is written of a delivery: its state, and one attempt more unless told."""
    return inbox.Settled(
        id=delivery["id"],
        arrival=delivery.get("arrival"),
        state=state,
        attempts=delivery["attempts"] + 1 if attempts is None else attempts,
        error=error,
        not_before=delivery["not_before"] if not_before is None else not_before,
        processed_at=processed_at,
    )


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (2, 4, 8, 16 …)."""
    return float(2**attempt)


class Worker:
    """Drains the inbox: route each delivery to steps, then commit them with its new state."""

    def __init__(
        self,
        store: Store,
        router: routing.Router,
        config: Config,
        clock: Clock,
        reactions: Sequence[Reaction] = (),
        on_commit: Callable[[], None] = lambda: None,
        beat: Callable[[], None] = lambda: None,
        nudge: Callable[[], None] = lambda: None,
        about: Callable[[Any], dict[str, Any]] = lambda data: {},
    ) -> None:
        self.store = store
        self.router = router
        self.about = about  # what a delivery's log lines say of it (its body read at the edge)
        self.config = config
        self.clock = clock
        self.reactions = reactions
        self.on_commit = on_commit  # wakes the outbox relay
        self.beat = beat  # tells the supervisor the worker is making progress
        self.nudge = nudge  # cuts the supervisor's backoff short when new work arrives
        self._wake = asyncio.Event()
        self._stopping = False
        self._pruned_at = 0.0
        self.metrics = Metrics()  # the app's own replaces it

    def wake(self) -> None:
        """Tell the worker that a delivery was stored."""
        self._wake.set()
        self.nudge()

    async def run(self) -> None:
        """Process deliveries until stopped, sleeping until woken or a retry is due.

        A failed database read or write ends this call with its error; the
        supervisor logs it and calls again after a backoff. Nothing is lost:
        a batch whose commit failed is still pending in the inbox.
        """
        while True:
            self._wake.clear()
            await self.adopt_notes()
            if await self.drain_once():
                self.beat()
                continue
            if self._stopping:
                return
            await self.prune()
            due = await self.store.read(inbox.next_wake)
            self.beat()  # a whole loop went through: any earlier failure has cleared
            timeout = 30.0 if due is None else min(30.0, max(0.05, due - self.clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def adopt_notes(self) -> None:
        """Move the audit lines the answering process kept (storage/notes.py) to the event log."""
        if await self.store.read(notes.waiting):
            await self.store.write(notes.adopt)

    async def prune(self) -> None:
        """Drop old processed bodies, at most once an hour, while idle."""
        now = self.clock.now()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        dropped = await self.store.write(
            lambda db: inbox.prune_bodies(db, before=now - KEEP_BODIES)
        )
        if dropped:
            log.info("dropped the bodies of %d deliveries processed over a week ago", dropped)

    def stop(self) -> None:
        """Finish what is ready, then return from run()."""
        self._stopping = True
        self._wake.set()

    async def drain_once(self) -> int:
        """Process one batch of ready deliveries; return how many were handled (or copied)."""
        now = self.clock.now()
        batch = await self.store.read(lambda db: inbox.ready_deliveries(db, now=now))
        if not batch:
            return 0
        planned = [(d, None if passed_over(d) else await self._plan(d)) for d in batch]
        outcomes = await self.store.write(lambda db: self._apply(db, planned))
        self.on_commit()
        for delivery, outcome in outcomes:
            self.metrics.deliveries.labels(delivery["event"], outcome).inc()
            log.info("delivery %s", outcome, extra={**facts(delivery), "outcome": outcome})
        return len(batch)

    async def _plan(self, delivery: dict[str, Any]) -> UnitOfWork | BaseException:
        try:
            data = load_json(delivery["body"])
            delivery["facts"] = self.about(data)
            event = sansio.Event(
                data,
                event=delivery["event"],
                delivery_id=delivery["delivery_id"],
            )
            work = UnitOfWork()
            await self.router.dispatch(event, uow=work, config=self.config)
            return work
        except Exception as exc:  # a body the handlers cannot read: retrying will not help
            return Unreadable(f"{type(exc).__name__}: {exc}")

    def _apply(self, db: Database, planned: list[tuple[dict, Planned]]) -> list[tuple[dict, str]]:
        now = self.clock.now()
        outcomes: list[tuple[dict, str]] = []
        settled: list[inbox.Settled] = []
        blocked: set[str] = set()
        for delivery, work in planned:
            if work is None or delivery["repo_key"] in blocked:
                # Not processed now: an earlier one of its repository waits for a retry (keep
                # the order), or it is stored already. An arrival still moves to the main file.
                if delivery["id"] is None and not delivery.get("known"):
                    settled.append(verdict(delivery, "pending", None, attempts=0))
                continue
            if isinstance(work, BaseException):
                outcome = self._defer(delivery, work, now, settled)  # unreadable: poison, kept
                outcomes.append((delivery, outcome))
                continue
            error = self._steps(db, work, Tx(db, self.config, now, self.reactions))
            if error is not None and not transient(error):
                # Poison: keep it as failed now, and keep what it changed without the
                # reaction that broke (its build is not lost), if that much holds.
                isolated = Tx(db, self.config, now, self.reactions, isolate=True)
                if self._steps(db, work, isolated) is None:
                    error = Poison(error, isolated.skipped) if isolated.skipped else None
            if error is None:
                state = "done" if work.steps else "ignored"
                settled.append(verdict(delivery, state, now))
                outcomes.append((delivery, state))
                continue
            if transient(error):
                blocked.add(delivery["repo_key"])  # retried later, and its repository waits
            outcomes.append((delivery, self._defer(delivery, error, now, settled)))
        arrivals = [d["arrival"] for d, _ in planned if d["id"] is None]
        inbox.settle(db, settled, through=max(arrivals, default=None))
        return outcomes

    def _steps(self, db: Database, work: UnitOfWork, tx: Tx) -> Exception | None:
        """Apply a delivery's steps in a savepoint; return the error that undid them, or None."""
        try:
            with savepoint(db, "delivery"):
                for step in work.steps:
                    step(tx)
        except Exception as exc:
            if not db.conn.in_transaction:
                raise  # the database refused the whole batch (a full disk): retry it all
            return exc
        return None

    def _defer(
        self, delivery: dict, error: BaseException, now: float, settled: list[inbox.Settled]
    ) -> str:
        attempt = delivery["attempts"] + 1
        # Only the database's own trouble is worth a retry; a poison body is kept at once.
        give_up = attempt >= MAX_ATTEMPTS or not transient(error)
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        text = text.encode("utf-8", "backslashreplace").decode()  # storable, whatever it quotes
        log.warning(
            "delivery %s (%s) failed, attempt %d%s: %s",
            delivery["delivery_id"],
            delivery["event"],
            attempt,
            "; kept as failed" if give_up else "",
            text,
            extra=facts(delivery),
        )
        state = "failed" if give_up else "pending"
        retry_at = now + backoff(attempt)
        settled.append(verdict(delivery, state, now if give_up else None, text[:2000], retry_at))
        return "failed" if give_up else "retry"
