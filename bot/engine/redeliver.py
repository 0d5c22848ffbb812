"""Recover missed deliveries: GitHub never retries one, so promobot reads GitHub's list and asks.

At start and every `github.redeliver_every`, the sweep lists the App's delivery
attempts back to the previous sweep (or GitHub's 3-day retention), and for each
GUID that no attempt delivered and that promobot neither stored nor asked for
before, it records the request and queues it in the outbox, in one transaction.
The relay then sends it, paced and honouring GitHub's rate limits; a request is
recorded before it is sent, so a GUID is never asked for twice, even across restarts.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlite_utils import Database

from bot.config import Config
from bot.core.clock import Clock
from bot.core.deliveries import Attempt, missed
from bot.engine.github import GitHubClient, parse_expiry
from bot.engine.metrics import Metrics
from bot.engine.relay import Permanent, RetryAfter, Row, Sender, Transient, Waiting
from bot.pipeline.outbox import Redelivery
from bot.pipeline.tx import Tx
from storage import Store, inbox, redeliveries

log = logging.getLogger(__name__)
RETENTION = 3 * 86400.0  # GitHub keeps an App's deliveries for 3 days
# Read this far before the previous sweep's start: an attempt that was failing while that
# sweep read the list is listed by the time of this one.
MARGIN = 600.0
# GitHub lists a redelivery only once it has made it, seconds after accepting the request:
# after a lost answer, look again every LOOK_AGAIN seconds, and ask again only when it still
# does not show SETTLE seconds after our request (which then most likely never arrived). When
# the request was sent is stored (wall clock), so a restart inside SETTLE does not ask again.
SETTLE = 30.0
LOOK_AGAIN = 5.0
# The App's own endpoints have their own rate limit: their own lane, paced like any GitHub write.


def queue_requests(db: Database, attempts: list[Attempt], *, config: Config, now: float) -> int:
    """Record and queue a redelivery of each missed GUID never stored nor asked; return how many."""
    wanted = missed(attempts)
    fresh = redeliveries.never_asked(db, [a["guid"] for a in wanted])
    tx = Tx(db, config, now)
    # Oldest first: the relay sends them in order, so a repository's events come back in order.
    for attempt in (a for a in wanted if a["guid"] in fresh):
        outbox_id = tx.send(Redelivery(int(attempt["id"]), str(attempt["guid"])))
        redeliveries.add_request(
            db,
            guid=attempt["guid"],
            hook_delivery_id=int(attempt["id"]),
            event=str(attempt.get("event") or "?"),
            action=attempt.get("action"),
            status=str(attempt.get("status") or attempt.get("status_code")),
            delivered_at=parse_expiry(attempt["delivered_at"]),
            asked_at=now,
            outbox_id=outbox_id,
        )
    return len(fresh)


class Sweeper:
    """Reads GitHub's list of the App's deliveries now and then, and asks again for missed ones."""

    def __init__(
        self,
        store: Store,
        github: GitHubClient,
        config: Config,
        clock: Clock,
        on_commit: Callable[[], None],
    ) -> None:
        self.store, self.github, self.config, self.clock = store, github, config, clock
        self.on_commit = on_commit
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Stop after the sweep in hand."""
        self._stop.set()

    async def run(self) -> None:
        """Sweep at start, then every `github.redeliver_every` (longer when GitHub says wait)."""
        while not self._stop.is_set():
            pause = max(float(self.config.redeliver_every), await self.sweep())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=pause)

    async def sweep(self) -> float:
        """Read the list once and queue what is missing; return how long GitHub asked us to wait."""
        started = self.clock.now()
        since = await self.store.read(
            partial(redeliveries.sweep_since, now=started, retention=RETENTION, margin=MARGIN)
        )
        wait, error, attempts = 0.0, None, []
        try:
            attempts = await self.github.hook_deliveries(since)
        except RetryAfter as exc:
            wait, error = exc.seconds, str(exc)
        except (Transient, Permanent) as exc:
            error = str(exc)
        if error:
            log.warning("cannot list GitHub's deliveries (%s); next sweep will look again", error)
        asked = await self.store.write(partial(self._record, attempts, started, since, error))
        if asked:
            log.info("asked GitHub to redeliver %d missed delivery(ies)", asked)
            self.on_commit()
        return wait

    def _record(
        self, attempts: list[Attempt], started: float, since: float, error: str | None, db: Database
    ) -> int:
        now = self.clock.now()
        asked = queue_requests(db, attempts, config=self.config, now=now)
        redeliveries.add_sweep(
            db,
            started_at=started,
            since=since,
            finished_at=now,
            listed=len(attempts),
            asked=asked,
            error=error,
        )
        return asked


def redeliver_senders(
    client: GitHubClient, store: Store, clock: Clock, metrics: Metrics | None = None
) -> dict[str, Sender]:
    """Build the relay's sender of redelivery requests (as the App, with its JWT)."""
    counted = metrics or Metrics()

    async def redelivered(row: Row, guid: str) -> bool:
        if await store.read(partial(inbox.delivery, guid=guid)) is not None:
            return True  # it arrived after the sweep: nothing to ask for
        if not row.uncertain:
            return False
        # After a crash or a lost answer, look before asking again: GitHub's list shows
        # the redelivery our first request started, if it reached GitHub.
        attempts = await client.hook_deliveries(row.created_at - MARGIN)
        if any(a["guid"] == guid and a.get("redelivery") for a in attempts):
            return True
        # When the request was sent is stored, so a restart within SETTLE waits too; a wait
        # longer than SETTLE means the wall clock stepped back: ask rather than wait it out.
        sent = await store.read(partial(redeliveries.requested_at, guid=guid))
        left = 0.0 if sent is None else sent + SETTLE - clock.now()
        if 0 < left <= SETTLE:
            raise Waiting(
                f"GitHub does not list the redelivery of {guid} yet", min(left, LOOK_AGAIN)
            )
        return False

    async def redeliver(row: Row) -> Any:
        request = Redelivery.from_row(row.payload)
        if await redelivered(row, request.guid):
            return None
        # Recorded before sending: a crash in between costs a SETTLE wait, not a second ask.
        await store.write(partial(redeliveries.mark_requested, guid=request.guid, at=clock.now()))
        try:
            await client.redeliver(request.hook_delivery_id)
        except Exception:
            counted.redelivery_requests.labels("failed").inc()
            raise
        counted.redelivery_requests.labels("requested").inc()
        return None

    return {Redelivery.method: redeliver}
