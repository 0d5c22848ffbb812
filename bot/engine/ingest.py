"""Accept a verified GitHub delivery: store it durably, then wake the worker."""

from dataclasses import dataclass

from bot.services import Services
from storage import inbox


@dataclass(frozen=True)
class Delivery:
    """A delivery as promobot stores it."""

    delivery_id: str
    event: str
    action: str | None
    repo_key: str
    body: bytes


async def accept(services: Services, delivery: Delivery) -> bool:
    """Store the delivery (once per id) and wake the worker; return True if it was new."""
    now = services.clock.now()
    new = await services.store.write(
        lambda db: inbox.store_delivery(
            db,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            action=delivery.action,
            repo_key=delivery.repo_key,
            body=delivery.body,
            now=now,
        )
    )
    if new:
        services.worker.wake()
    return new
