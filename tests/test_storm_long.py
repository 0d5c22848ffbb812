"""A long rate-limit storm: ingest stays fast, memory stays flat, nobody is hammered, all drains."""

import asyncio
import time
import tracemalloc

import pytest

from bot.pipeline.outbox import Ephemeral
from tests.conftest import status_payload
from tests.outbox import github_status, queue
from tests.test_storm import STATUSES

# Long runs by design: a longer limit than the suite's default, still not forever.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
STORM = 6.0  # seconds


async def ingest_slowest(harness, count: int = 80) -> float:
    took = []
    for i in range(count):
        start = time.perf_counter()
        response = await harness.deliver("status", status_payload(context=f"ci/{i}"))
        took.append(time.perf_counter() - start)
        assert response.status == 202
    return max(took)


def ephemeral(i: int) -> Ephemeral:
    return Ephemeral("#releases", "U111", f"note {i}")


async def test_a_storm_is_waited_out_without_slowing_ingest(harness):
    harness.slack.fail("chat.postEphemeral", 429, times=10_000, headers={"Retry-After": "1"})
    harness.github.fail(STATUSES, 429, times=10_000, headers={"retry-after": "1"})
    tracemalloc.start()
    await queue(harness, *(ephemeral(i) for i in range(300)))
    await queue(harness, *(github_status(f"{i:040x}") for i in range(8)))
    started = time.time()
    slowest = await ingest_slowest(harness)
    await asyncio.sleep(max(0.0, STORM - (time.time() - started)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    harness.slack.failures.clear()
    harness.github.failures.clear()
    ended = time.time()

    # No acknowledgement waited out a Retry-After (1 s) of the relay it shares the process with.
    # How much a storm's pending rows cost each delivery is a figure of `make bench`, not a
    # timed assertion here: a median against a median failed once in `make chaos` (4.3 ms
    # against 1.1, after the kill tests) and passed alone.
    assert slowest < 0.5
    assert peak < 30_000_000  # 300 waiting rows are not held in memory
    for fake, method in ((harness.slack, "chat.postEphemeral"), (harness.github, STATUSES)):
        during = [c for c in fake.of(method) if c.at < ended]
        assert len(during) <= (ended - started) / 1.0 + 2  # one try per Retry-After, no more
    await harness.settle(timeout=60)
    assert harness.rows("SELECT state, count(*) AS n FROM outbox GROUP BY state") == [
        {"state": "sent", "n": 308}
    ]
