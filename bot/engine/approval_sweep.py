"""The approval sweep: let time pass for waiting promotions (soaks ending, approvals expiring)."""

import asyncio
from typing import Any

from bot.pipeline import approvals, stages
from bot.pipeline.tx import Tx
from bot.services import Services

# How often the sweep reads when the next waiting promotion is due (a read of the few open
# ones): a promotion queued since its last look is let go at most this late.
SWEEP_SECONDS = 2.0


async def tick(services: Services) -> float | None:
    """Let time pass for waiting promotions now; return when the next one is due."""

    def job(db: Any) -> float | None:
        tx = Tx(db, services.config, services.clock.now(), services.worker.reactions)
        approvals.expire_due(tx)
        return stages.next_due(tx)

    due = await services.store.write(job)
    services.relay.wake()
    return due


async def sweep(services: Services, every: float = SWEEP_SECONDS) -> None:
    """Let time pass for waiting promotions: tick whenever one is due, until cancelled."""

    def due_at(db: Any) -> float | None:
        return stages.next_due(Tx(db, services.config, services.clock.now()))

    # The first look waits a while, as the sweep always did: commands and deliveries sweep
    # lazily anyway, and a service that just started has its own work to finish first.
    await asyncio.sleep(15 * every)
    due: float | None = services.clock.now()
    while True:
        if due is not None and due <= services.clock.now():
            await tick(services)
        await asyncio.sleep(every)
        due = await services.store.read(due_at)
