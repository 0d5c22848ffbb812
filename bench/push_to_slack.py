"""Figure 3: time from a push's 202 to the fake Slack receiving that build's first post.

Each push is a new build on main, and its parent message is the first thing promobot posts
about it. The relay paces Slack writes to one per second per channel, by design (Slack's own
limit): pushes arriving faster than that queue behind each other and the figure would measure
the pacing, not promobot. So the pushes come one at a time, below 1/s (the next one 1.1 s
after the previous build's post), and each is timed on its own: push → 202 → worker → outbox
→ relay → chat.postMessage.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, fake_slack
from bot.dev import client, payloads

TARGET_P50_MS = 100.0


async def push(session: aiohttp.ClientSession, url: str, index: int) -> float | None:
    """Deliver one signed push; return the perf_counter moment of its 202, or None."""
    repo = payloads.repository(common.REPO["full_name"], common.REPO["id"])
    sha, message = common.new_sha(), f"Bench push {index}"
    body = json.dumps(payloads.push(sha, message=message, stamp=time.time(), repo=repo)).encode()
    headers = client.github_headers("push", body, common.WEBHOOK_SECRET)
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        return time.perf_counter() if response.status == 202 else None


async def measure(pushes: int, wait: float) -> dict:
    """Run the pushes against a real promobot serve posting to the fake Slack."""
    slack_port, port = common.free_port(), common.free_port()
    slack, runner = await fake_slack.start(slack_port)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="promobot-bench-") as tmp:
        environ = common.env(slack_url=f"http://127.0.0.1:{slack_port}/api/")
        server = await asyncio.to_thread(
            common.serve, Path(tmp) / "promobot.db", port, environ, Path(tmp) / "serve.log"
        )
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/github/webhooks"
                for index in range(pushes):
                    accepted = await push(session, url, index)
                    if accepted is None:
                        continue
                    deadline = time.perf_counter() + wait
                    needle = f"Bench push {index}"
                    while time.perf_counter() < deadline and not fake_slack.posts_after(
                        slack, accepted, needle
                    ):
                        await asyncio.sleep(0.002)
                    posts = fake_slack.posts_after(slack, accepted, needle)
                    if not posts:
                        break  # nothing posts builds yet: one timeout says so
                    latencies.append(posts[0].perf - accepted)
                    await asyncio.sleep(1.1)  # keep clear of the 1 post/s pacing
        finally:
            await asyncio.to_thread(common.stop, server)
            await runner.cleanup()
    if not latencies:
        return {
            "push_to_slack": f"no post received within {wait:.0f} s of a push's 202",
            "slack_calls_seen": sorted({call.method for call in slack.calls}),
        }
    p50 = common.ms(common.percentile(latencies, 50))
    return {
        "pushes_timed": len(latencies),
        "push_to_post_p50_ms": p50,
        "push_to_post_p90_ms": common.ms(common.percentile(latencies, 90)),
        "push_to_post_max_ms": common.ms(max(latencies)),
        "push_rate": "one at a time, 1.1 s after the previous post (below Slack's 1 post/s)",
        "p50_met": (p50 or 1e9) <= TARGET_P50_MS,
    }


def main() -> None:
    """Run figure 3 and write bench/results/push_to_slack.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for a post")
    args = parser.parse_args()
    common.write_results("push_to_slack", asyncio.run(measure(args.pushes, args.wait)))


if __name__ == "__main__":
    main()
