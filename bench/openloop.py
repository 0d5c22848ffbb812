"""A light open-loop generator: raw HTTP/1.1 over kept-alive connections, one request at a time.

Each request is written at its due moment whether or not earlier answers have come back, and
its latency is counted from that due moment, so a server that falls behind shows its queueing
(no coordinated omission), as wrk2 would. A request goes out on a connection with nothing
outstanding, and a new connection is opened when every one is busy (up to --max-connections,
then the least busy one pipelines): GitHub sends each delivery as a request of its own, so a
fixed handful of pipelined connections would cap what is in flight, and a server answers a
connection's requests one after another. Little's law: 16 connections at 3,000/s leave 5.3 ms
per request before the generator's own queue, not the server, sets the latency.
It sends the pool file's signed deliveries, or signed `/ship` commands (--slash TEXT, signed
before the run: a signature holds five minutes); it costs a few microseconds a request, so the
figures are the server's and not the generator's: it reports how late it sent (`late_p99_ms`).
Prints one JSON line like bench/loadgen.py.
"""

import argparse
import asyncio
import gc
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
    """One connection: due times out, answers in; idle again once all are answered."""

    def __init__(
        self, latencies: list[float], statuses: dict[int, int], idle: list["Connection"]
    ) -> None:
        self.due: deque[float] = deque()
        self.buffer = b""
        self.latencies, self.statuses, self.idle = latencies, statuses, idle
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def write(self, data: bytes, due: float) -> None:
        """Send one request due at `due`."""
        self.due.append(due)
        self.transport.write(data)  # type: ignore[union-attr]

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
            if not self.due:
                self.idle.append(self)

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


class Connections:
    """The open connections, and which of them have nothing outstanding."""

    def __init__(self, host: str, port: int, most: int) -> None:
        self.host, self.port, self.most = host, port, most
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.all: list[Connection] = []
        self.idle: list[Connection] = []
        self.opening = 0
        self.pending: list[asyncio.Task] = []

    async def open(self) -> Connection:
        """Open one more connection (not marked idle: its opener uses it)."""
        self.opening += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                lambda: Connection(self.latencies, self.statuses, self.idle), self.host, self.port
            )
        finally:
            self.opening -= 1
        self.all.append(conn)
        return conn

    def send(self, data: bytes, due: float) -> None:
        """Write `data` on an idle connection, a new one, or (at the cap) the least busy."""
        while self.idle:
            conn = self.idle.pop()
            # The server closes a connection left idle too long: that one is passed over.
            if not conn.transport.is_closing():  # type: ignore[union-attr]
                conn.write(data, due)
                return
        if len(self.all) + self.opening < self.most:
            self.pending.append(asyncio.create_task(self._send_on_new(data, due)))
        else:
            min(self.all, key=lambda c: len(c.due)).write(data, due)

    async def _send_on_new(self, data: bytes, due: float) -> None:
        (await self.open()).write(data, due)


async def run(args: argparse.Namespace) -> dict:
    """Send args.rate deliveries a second for args.seconds; return the figures."""
    host, port = args.url.removeprefix("http://").split(":")
    conns = Connections(host, int(port), max(args.connections, args.max_connections))
    for _ in range(args.connections):
        conns.idle.append(await conns.open())
    latencies, statuses = conns.latencies, conns.statuses
    total = int(args.rate * args.seconds)
    if args.slash is not None:
        prepared = [raw(*slash_request(args.slash), f"{host}:{port}") for _ in range(total)]
    else:
        pool, run_id = Pool(args.pool, args.skip), uuid.uuid4().hex[:12]
        prepared = [request(pool, run_id, i, f"{host}:{port}") for i in range(total)]
    late: list[float] = []
    # No collection while timing: a full one (25-56 ms with the prepared deliveries alive)
    # stopped this generator once a run, and every answer due meanwhile was timed late.
    gc.collect()
    gc.freeze()
    gc.disable()
    start = time.perf_counter() + 0.1
    for i, data in enumerate(prepared):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        late.append(max(0.0, time.perf_counter() - due))
        conns.send(data, due)
    deadline = time.perf_counter() + 60
    while len(latencies) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for conn in conns.all:
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
        "late_p99_ms": ms(percentile(late, 99)),
        "connections": len(conns.all),
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
    parser.add_argument("--connections", type=int, default=16, help="opened before the run")
    parser.add_argument("--max-connections", type=int, default=256)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
