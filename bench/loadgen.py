"""An open-loop load generator: send requests at a fixed rate, time each from its due moment.

Timing from the moment a request was *due* (not sent) keeps a slow server from hiding its
queueing (coordinated omission). Modes: `pool` (the signed real-sized deliveries of a pool file
written by bench/deliveries.py, from line `--skip` on), `status` (small signed status
deliveries) and `slash` (a signed Slack slash command, its text a parameter).
Prints one JSON line: count, errors, statuses, p50/p99/max in ms.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, SIGNING_SECRET, WEBHOOK_SECRET, ms, new_sha, percentile, team_id
from bot.dev import client, forms, payloads


def signed_bodies(count: int = 200) -> list[tuple[bytes, str]]:
    """Prepare status bodies and their signatures (the delivery id header is not signed)."""
    shas = [new_sha() for _ in range(50)]
    small = [
        payloads.small_status(
            shas[i % 50], REPO["full_name"], REPO["id"], context=f"ci/job-{i % 7}"
        )
        for i in range(count)
    ]
    bodies = [json.dumps(body).encode() for body in small]
    return [(body, client.github_signature(body, WEBHOOK_SECRET)) for body in bodies]


def status_request(run: str, i: int, bodies: list[tuple[bytes, str]]) -> tuple[str, bytes, dict]:
    """Return path, body and headers of one signed status delivery with a unique id."""
    body, signature = bodies[i % len(bodies)]
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "status",
        "X-GitHub-Delivery": f"{run}-{i}",
        "X-Hub-Signature-256": signature,
    }
    return "/github/webhooks", body, headers


class Pool:
    """Read a pool file's deliveries in order, starting over at its end."""

    def __init__(self, path: str, skip: int) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - held for the whole run
        for _ in range(skip):
            if not self.file.readline():
                self.file.seek(0)

    def next(self, run: str, i: int) -> tuple[str, bytes, dict]:
        """Return path, body and headers of the next delivery."""
        line = self.file.readline()
        if not line:
            self.file.seek(0)
            line = self.file.readline()
        event, signature, body = line.rstrip(b"\n").split(b"\t", 2)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event.decode(),
            "X-GitHub-Delivery": f"{run}-{i}",
            "X-Hub-Signature-256": signature.decode(),
        }
        return "/github/webhooks", body, headers


def slash_request(text: str) -> tuple[str, bytes, dict]:
    """Return path, body and headers of one signed slash command."""
    form = forms.slash_form(  # a new trigger ID each time: replays are refused
        text,
        user="U111",
        user_name="u111",
        response_url="http://127.0.0.1:9/response",
        channel_id="C0RELEASES",
        team=team_id(),
    )
    body = urlencode(form)
    return "/slack/events", body.encode(), client.slack_headers(body, SIGNING_SECRET)


async def run(args: argparse.Namespace) -> dict:
    """Send args.rate requests per second for args.seconds; return the figures."""
    run_id = uuid.uuid4().hex[:12]
    bodies = signed_bodies() if args.mode == "status" else []
    pool = Pool(args.pool, args.skip) if args.mode == "pool" else None
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    total = int(args.rate * args.seconds)
    connector = aiohttp.TCPConnector(limit=args.connections)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            if args.mode == "pool":
                path, body, headers = pool.next(run_id, i)
            elif args.mode == "status":
                path, body, headers = status_request(run_id, i, bodies)
            else:
                path, body, headers = slash_request(args.text)
            try:
                async with session.post(args.url + path, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    latencies.append(time.perf_counter() - due)
            except aiohttp.ClientError:
                errors += 1

        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    return {
        "mode": args.mode,
        "rate": args.rate,
        "count": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies) if latencies else None),
    }


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pool", "status", "slash"])
    parser.add_argument("--pool", help="the pool file of mode pool")
    parser.add_argument("--skip", type=int, default=0, help="pool lines already sent")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--text", default="help")
    parser.add_argument("--connections", type=int, default=64)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
