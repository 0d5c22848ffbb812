"""`/ship status` answer times under webhook load: bench/truth.py's half-rate step, alone.

One `promobot serve` (pinned like truth.py's), warmed with real-sized deliveries so the
channel follows a repository; then deliveries arrive open loop at --rate for --seconds
while signed `/ship status` commands arrive at 10/s, and both sets of latencies are printed
(p50/p99 from each request's due moment). Repeat with --runs to see the spread.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, measure, truth


def main() -> None:
    """Start promobot, load it, time /ship status; print one JSON line a run."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=800.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pool", type=int, default=105_000)
    args = parser.parse_args()
    burst, warm = truth.pool(args.pool), truth.pool(2 * 21 * 50)
    with tempfile.TemporaryDirectory(prefix="promobot-status-") as tmp:
        port = common.free_port()
        server = measure.start("promobot", port, Path(tmp))
        try:
            measure.move_children(server.pid, common.CLIENT_CPU)
            measure.wrk(port, warm, 2, 8)
            measure.drain(Path(tmp) / "promobot.db")
            skip = 0
            for _ in range(args.runs):
                load = os.getloadavg()
                ingest = measure.loadgen(
                    port, "pool", args.rate, args.seconds, pool=burst, skip=skip
                )
                command = measure.loadgen(
                    port, "slash", 10, args.seconds, slash="status", connections=4
                )
                figures = {"rate": args.rate, "load": load}
                figures["deliveries"] = measure.collect(ingest)
                figures["ship_status"] = measure.collect(command)
                skip += int(args.rate * args.seconds)
                print(json.dumps(figures), flush=True)
                measure.drain(Path(tmp) / "promobot.db")
        finally:
            common.stop(server)


if __name__ == "__main__":
    main()
