"""A light open-loop generator: raw HTTP/1.1 over a few kept-alive, pipelined connections.

Each request is written at its due moment whether or not earlier answers have come back
(HTTP/1.1 pipelining: a server answers a connection's requests in order), and its latency is
counted from that due moment, so a server that falls behind shows its queueing (no
coordinated omission), as wrk2 would. It sends the pool file's signed deliveries, or signed
`/ship` commands (--slash TEXT, signed before the run: a signature holds five minutes); it costs a
few microseconds a request, so the figures are the server's and not the generator's.
Prints one JSON line like bench/loadgen.py.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ms, percentile
from bench.loadgen import Pool, slash_request


class Connection(asyncio.Protocol):
    """One pipelined connection: due times out, answers in."""

    def __init__(self, latencies: list[float], statuses: dict[int, int]) -> None:
        self.due: deque[float] = deque()
        self.buffer = b""
        self.latencies, self.statuses = latencies, statuses
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}
            if fields.get("transfer-encoding") == "chunked":
                last = self.buffer.find(b"0\r\n\r\n", head_end + 4)
                if last < 0:
                    return
                end = last + 5
            else:
                end = head_end + 4 + int(fields.get("content-length") or 0)
            if len(self.buffer) < end:
                return
            status = int(head[0].split()[1])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(time.perf_counter() - self.due.popleft())
            self.buffer = self.buffer[end:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(len(self.due))


def request(pool: Pool, run: str, i: int, host: str) -> bytes:
    """Return the raw bytes of delivery number `i`."""
    return raw(*pool.next(run, i), host)


def raw(path: str, body: bytes, headers: dict, host: str) -> bytes:
    """Return the raw bytes of one POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def run(args: argparse.Namespace) -> dict:
    """Send args.rate deliveries a second for args.seconds; return the figures."""
    host, port = args.url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    conns = []
    for _ in range(args.connections):
        _, conn = await loop.create_connection(
            lambda: Connection(latencies, statuses), host, int(port)
        )
        conns.append(conn)
    total = int(args.rate * args.seconds)
    if args.slash is not None:
        prepared = [raw(*slash_request(args.slash), f"{host}:{port}") for _ in range(total)]
    else:
        pool, run_id = Pool(args.pool, args.skip), uuid.uuid4().hex[:12]
        prepared = [request(pool, run_id, i, f"{host}:{port}") for i in range(total)]
    start = time.perf_counter() + 0.1
    for i, data in enumerate(prepared):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        conn = conns[i % len(conns)]
        conn.due.append(due)
        conn.transport.write(data)  # type: ignore[union-attr]
    deadline = time.perf_counter() + 60
    while len(latencies) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for conn in conns:
        conn.transport.close()  # type: ignore[union-attr]
    lost = total - len(latencies)
    return {
        "mode": "pool" if args.slash is None else "slash",
        "rate": args.rate,
        "count": len(latencies),
        "errors": lost,
        "statuses": statuses,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies) if latencies else None),
    }


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pool")
    parser.add_argument("--slash", help="send signed /ship commands with this text instead")
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--connections", type=int, default=16)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
