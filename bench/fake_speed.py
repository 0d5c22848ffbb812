"""How many calls a second the fake Slack answers, contract checks included.

The benchmarks serve it from a thread of their process: it must answer far faster than
promobot's relay asks (about 5,000 calls/s is the bar). Run:
`.venv/bin/python bench/fake_speed.py --seconds 5 --connections 16`.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, fake_slack

BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*#12* Fix the frobnicator"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "CI ✅ → pasty ⏳"}]},
]


async def hammer(url: str, seconds: float, connections: int) -> dict:
    """Post chat.postMessage from `connections` clients for `seconds`; count the answers."""
    headers = {"Authorization": f"Bearer {common.BOT_TOKEN}"}
    body = {"channel": "#releases", "text": "#12 Fix the frobnicator", "blocks": BLOCKS}
    done = refused = 0
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done, refused
        while time.perf_counter() < deadline:
            async with session.post(url + "chat.postMessage", json=body, headers=headers) as r:
                answer = await r.json()
            done += 1
            refused += not answer.get("ok")

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(connections)))
        took = time.perf_counter() - started
    return {"calls": done, "refused": refused, "calls_per_s": round(done / took)}


def own_cost(calls: int = 20_000) -> float:
    """Return the microseconds the fake's own work takes a call: contract checks, post, answer."""
    fake = fake_slack.bench_slack()
    body = {"channel": "#releases", "text": "#12 Fix the frobnicator", "blocks": BLOCKS}
    started = time.perf_counter()
    for _ in range(calls):
        fake.answer("chat.postMessage", body, f"Bearer {common.BOT_TOKEN}")
    return round((time.perf_counter() - started) * 1e6 / calls, 1)


def main() -> None:
    """Serve the fake in a thread (as the benchmarks do); post to it from a child process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--url", help="post to this fake (the child's part)")
    args = parser.parse_args()
    if args.url:
        print(json.dumps(asyncio.run(hammer(args.url, args.seconds, args.connections))))
        return
    url = fake_slack.start_in_thread()
    argv = [sys.executable, __file__, "--url", url, "--seconds", str(args.seconds)]
    argv += ["--connections", str(args.connections)]
    child = subprocess.run(argv, capture_output=True, text=True, check=True)
    figures = json.loads(child.stdout)
    print(json.dumps({**figures, "fake_own_work_us_per_call": own_cost()}))


if __name__ == "__main__":
    main()
