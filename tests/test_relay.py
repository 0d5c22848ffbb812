"""The relay: two instances on one database never send the same outbox row."""

import asyncio
import json

from bot.relay import Relay
from storage import Store


async def test_two_relays_on_one_database_send_each_row_once(tmp_path):
    path = tmp_path / "shared.db"
    stores = [Store(path), Store(path)]
    for store in stores:
        store.open()
    sent: list[int] = []

    async def send(row):
        await asyncio.sleep(0.01)  # a real call takes a while: give the other relay a chance
        sent.append(row.payload["n"])

    def queue(db):
        for n in range(30):
            db.execute(
                "INSERT INTO outbox (target, method, lane, payload, created_at)"
                " VALUES ('slack', 'test.send', ?, ?, 0)",
                [f"#lane{n % 3}", json.dumps({"n": n})],
            )

    await stores[0].write(queue)
    relays = [Relay(store, {"test.send": send}) for store in stores]
    for relay in relays:
        relay.pace["slack"] = 0.0
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    await asyncio.gather(*(relay.idle() for relay in relays))
    for relay in relays:
        relay.stop()
    await asyncio.gather(*tasks)
    for store in stores:
        store.close()
    assert sorted(sent) == list(range(30))
    assert sum(relay.sent for relay in relays) == 30
