"""Accept a verified GitHub delivery: store it durably, then wake the worker."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from bot.services import Services
from storage import Store, inbox, ingest, notes

# Seconds between two prunes of the ingest file (ingest.PRUNE_BATCH rows at most each).
PRUNE_EVERY = 0.05
# Seconds without an arrival after which the WAL is copied and fitted (Store.fit_wal).
QUIET_AFTER = 1.0


@dataclass(frozen=True)
class Delivery:
    """A delivery as promobot stores it."""

    delivery_id: str
    event: str
    action: str | None
    repo_key: str
    body: bytes


async def accept(services: Services, delivery: Delivery) -> bool:
    """Store the delivery (once per id) and wake the worker; return True if it was new.

    With a processing process, into the ingest file that only this process writes.
    """
    fields: dict[str, Any] = {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "repo_key": delivery.repo_key,
        "body": delivery.body,
        "now": services.clock.now(),
    }
    if services.intake is not None:
        new = await services.intake.write(
            lambda db: ingest.store_arrival(db, **fields), savepoint=False
        )
    else:
        new = await services.store.write(lambda db: inbox.store_delivery(db, **fields))
    if new:
        services.worker.wake()
    return new


async def prune(intake: Store, every: float = PRUNE_EVERY, quiet: float = QUIET_AFTER) -> None:
    """Delete what the processing process has adopted from the ingest file, a little at a time.

    A small batch now and then rather than all at once: each rides in a group commit of
    acknowledgements and delays them by its deletes. Once no delivery has arrived for `quiet`
    seconds, the WAL is copied into the file, so that the next arrival starts it over from
    its first frame, and brought to its size (cut, or written ahead) before they come.
    """
    latest, since, fitted = -1, time.monotonic(), False
    while True:
        newest = await intake.write(_prune)
        if newest != latest:
            latest, since, fitted = newest, time.monotonic(), False
        elif (
            not fitted
            and time.monotonic() - since >= quiet
            and await intake.backfill_wal()  # else a reader holds part of it: not now
        ):
            fitted = intake.wal_fits() or await intake.fit_wal()
            if not fitted:
                continue  # the next step at once: each is short, and the quiet may not last
        await asyncio.sleep(every)


def _prune(db: Database) -> int:
    ingest.prune(db)
    notes.prune(db)
    return ingest.last_arrival(db)
