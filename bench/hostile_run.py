"""Hostile input against a real `promobot serve --dev` on loopback: requests sent, 5xx, tracebacks.

    .venv/bin/python -m bench.hostile_run [--seconds 60] [--seed 1] [--slow 300]

Starts `promobot serve --dev --no-demo` in a temporary directory on 127.0.0.1 and a free port,
reads the secrets dev mode wrote, then for `--seconds` sends, round after round: unsigned and
signed junk to /github/webhooks and /slack/events (random bytes, odd and non-ASCII signatures
and timestamps, invalid UTF-8, JSON nested thousands deep, mutated real payloads), signed
commands (huge numbers, 700 KB, long reasons, unknown verbs with mentions, other workspaces,
channels that follow nothing, replays), button clicks with odd values, and dashboard pages
with huge build numbers; then `--slow` connections that send headers and stall mid-body.
Afterwards a real push and `/ship status` must still be answered. It prints one JSON object:
requests sent, answers by status, 5xx seen, tracebacks in the server's log, the log's growth
during the slow bodies, and whether the service still works.
"""

import argparse
import asyncio
import collections
import copy
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.dev import client, forms, payloads

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = [ROOT / "tests" / "fixtures" / "github", payloads.FIXTURES]  # recorded payloads
HUGE = "99999999999999999999999"


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Counts:
    """What was sent and what came back."""

    def __init__(self) -> None:
        self.sent = 0
        self.statuses: collections.Counter[str] = collections.Counter()
        self.five_xx: list[str] = []

    def record(self, what: str, status: int | str) -> None:
        """Count one answer (a status, or the name of a connection error)."""
        self.sent += 1
        self.statuses[str(status)] += 1
        if isinstance(status, int) and status >= 500:
            self.five_xx.append(f"{what}: {status}")


class Attacker:
    """Signs and sends requests as GitHub and Slack would, and as nobody should."""

    def __init__(self, base: str, state: dict[str, Any], rng: random.Random) -> None:
        self.base = base
        self.github_secret = state["github_webhook_secret"]
        self.slack_secret = state["slack_signing_secret"]
        self.rng = rng
        self.counts = Counts()

    async def post(self, session: aiohttp.ClientSession, what: str, path: str, body: bytes,
                   headers: dict[str, str]) -> int | str:  # fmt: skip
        """POST and count the answer."""
        try:
            async with session.post(self.base + path, data=body, headers=headers) as response:
                await response.read()
                status: int | str = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            status = type(exc).__name__
        self.counts.record(what, status)
        return status

    async def get(self, session: aiohttp.ClientSession, what: str, path: str) -> None:
        """GET and count the answer."""
        try:
            async with session.get(self.base + path) as response:
                await response.read()
                self.counts.record(what, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counts.record(what, type(exc).__name__)

    def github_headers(self, body: bytes, *, signed: bool = True, event: str = "push") -> dict:
        """Headers of a delivery, signed with the webhook secret unless `signed` is off."""
        headers = client.github_headers(event, body, self.github_secret)
        if not signed:
            headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        return headers

    def slack_headers(self, body: bytes) -> dict[str, str]:
        """Headers Slack would send with `body`: a fresh timestamp and its signature."""
        return client.slack_headers(body, self.slack_secret)

    def command(self, text: str, *, team: str = client.DEV_TEAM, channel: str = "CDEVRELEASES",
                name: str = "releases") -> bytes:  # fmt: skip
        """Return the form body of a /ship command."""
        form = forms.slash_form(
            text,
            user="U0DEVBOB",
            user_name="bob",
            response_url=self.base + "/dev/slack/respond",
            channel_id=channel,
            channel_name=name,
            team=team,
        )
        return urlencode(form).encode()

    def click(self, value: str) -> bytes:
        """Return the form body of an Approve click whose button carries `value`."""
        click = forms.block_actions(
            user="U0DEVBOB",
            user_name="bob",
            channel_id="CDEVRELEASES",
            message={"ts": "1.2", "text": "Promotion"},
            action={"action_id": "promotion.approve", "value": value},
            block_id="b",
            response_url=self.base + "/dev/slack/respond",
        )
        return urlencode(forms.interaction_form(click)).encode()

    def mutated(self) -> dict[str, Any]:
        """Return a real payload with a few of its values replaced by odd ones."""
        path = self.rng.choice(sorted(p for folder in FIXTURES for p in folder.glob("*.json")))
        data = json.loads(path.read_text())
        odd = [None, True, -1, 2**70, "²", "<!channel>", "x" * 5000, [], {}, "\ud800"[:0] + "é"]
        for _ in range(self.rng.randint(1, 4)):
            target = data
            while isinstance(target, dict) and target and self.rng.random() < 0.6:
                key = self.rng.choice(list(target))
                if not isinstance(target[key], dict):
                    break
                target = target[key]
            if isinstance(target, dict) and target:
                target[self.rng.choice(list(target))] = copy.deepcopy(self.rng.choice(odd))
        return data

    async def round(self, session: aiohttp.ClientSession) -> None:
        """Send one of each kind of hostile request."""
        rng = self.rng
        junk = rng.randbytes(rng.randint(0, 3000))
        deep = ("[" * 3000 + "]" * 3000).encode()
        nested = ('{"a": ' * 2000 + "1" + "}" * 2000).encode()
        for body in (junk, deep, b"\xff\xfe" + junk[:50]):
            await self.post(session, "unsigned webhook", "/github/webhooks", body,
                            self.github_headers(body, signed=False))  # fmt: skip
        for signature in ("sha256=é", "sha256=²²", "sha1=" + "a" * 40, ""):
            headers = {**self.github_headers(junk), "X-Hub-Signature-256": signature}
            await self.post(session, "odd github signature", "/github/webhooks", junk, headers)
        for body in (deep, nested, b"\xff" * 10, json.dumps(self.mutated()).encode()):
            await self.post(session, "signed webhook", "/github/webhooks", body,
                            self.github_headers(body))  # fmt: skip
        for body in (junk, urlencode({"payload": "[" * 3000}).encode(), b"payload=%7Bno"):
            headers = self.slack_headers(b"something else")
            await self.post(session, "unsigned slack", "/slack/events", body, headers)
        for signature, stamp in (("v0=é²", None), ("v0=x", "²"), ("v0=x", "1e9"), ("", "")):
            headers = {**self.slack_headers(junk), "X-Slack-Signature": signature}
            if stamp is not None:
                headers["X-Slack-Request-Timestamp"] = stamp
            await self.post(session, "odd slack headers", "/slack/events", junk, headers)
        signed_junk = (
            urlencode({"payload": "[" * 3000 + "]" * 3000}).encode(),
            urlencode({"payload": "{not json"}).encode(),
            b"command=/ship&text=\xff\xfe",
            junk,
        )
        for body in signed_junk:
            await self.post(session, "signed slack junk", "/slack/events", body,
                            self.slack_headers(body))  # fmt: skip
        texts = [
            f"promote #{HUGE} pasty", f"approve {HUGE}", f'reject #{HUGE} "no"',
            f"rollback pasty to #{HUGE}", "x" * 700_000, f'lock pasty "{"r" * 5000}"',
            "<!channel> " + "y" * 100_000, "history", "status", f"promote {'a' * 300} pasty",
            '"unclosed', "²", rng.choice(["", "help", "--force", "digest"]),
        ]  # fmt: skip
        for text in texts:
            body = self.command(text)
            await self.post(session, f"command {text[:20]!r}", "/slack/events", body,
                            self.slack_headers(body))  # fmt: skip
        for body in (self.command("status", team="T0OTHER"),
                     self.command("status", channel="C0RANDOM", name="random")):  # fmt: skip
            await self.post(session, "foreign", "/slack/events", body, self.slack_headers(body))
        body = self.command("status")
        headers = self.slack_headers(body)
        for _ in range(2):  # the second is a replay
            await self.post(session, "replay", "/slack/events", body, headers)
        for value in ("²", HUGE, "-1", "1", "", "<@U1>"):
            body = self.click(value)
            await self.post(session, "click", "/slack/events", body, self.slack_headers(body))
        for path in (f"/builds/acme/app/{HUGE}", "/builds/acme/app/" + "9" * 5000,
                     "/insights?weeks=²", "/insights?weeks=" + "9" * 5000):  # fmt: skip
            await self.get(session, "dashboard", path)


async def slow_bodies(base: str, count: int, hold: float) -> dict[str, int]:
    """Open `count` connections that send headers and part of a body, then stall."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        b"POST /github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\nContent-Length: 100000\r\n\r\n{"
    )
    outcome: collections.Counter[str] = collections.Counter()

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            outcome["refused at connect"] += 1
            return
        writer.write(head)
        try:
            answer = await asyncio.wait_for(reader.read(200), timeout=hold)
            outcome[answer.split(b"\r\n")[0].decode() or "closed"] += 1
        except TimeoutError:
            outcome["still open"] += 1
        except OSError:
            outcome["reset"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return dict(outcome)


async def still_works(attacker: Attacker, session: aiohttp.ClientSession) -> bool:
    """Send a real push and /ship status; say whether both were answered as usual."""
    body = json.dumps(payloads.push("a" * 40, message="after the storm")).encode()
    stored = await attacker.post(session, "real push", "/github/webhooks", body,
                                 attacker.github_headers(body))  # fmt: skip
    body = attacker.command("status")
    async with session.post(attacker.base + "/slack/events", data=body,
                            headers=attacker.slack_headers(body)) as response:  # fmt: skip
        answered = response.status == 200 and "Traceback" not in await response.text()
    return stored == 202 and answered


async def attack(base: str, state: dict, seconds: float, seed: int, slow: int) -> dict:
    """Run the rounds for `seconds`, then the slow bodies; return the figures."""
    attacker = Attacker(base, state, random.Random(seed))
    timeout = aiohttp.ClientTimeout(total=30)
    rounds = 0
    async with aiohttp.ClientSession(timeout=timeout) as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await attacker.round(session)
            rounds += 1
        works = await still_works(attacker, session)
    return {"rounds": rounds, "attacker": attacker, "works": works, "slow": slow}


def main() -> int:
    """Start the server, attack it, print the figures as JSON."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=60.0)
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--slow", type=int, default=300, help="slow-body connections")
    options.add_argument("--hold", type=float, default=30.0, help="seconds a slow body waits")
    options.add_argument("--keep-log", default="", help="copy the server's log here")
    args = options.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--dev", "--no-demo",
                 "--config", str(ROOT / "app.yaml"),
                 "--host", "127.0.0.1", "--port", str(port), "--db", str(Path(tmp) / "h.db")],
                cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                try:
                    state = asyncio.run(ready(base, Path(tmp) / ".promobot-dev.json"))
                except TimeoutError:
                    print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                    raise
                result = asyncio.run(attack(base, state, args.seconds, args.seed, args.slow))
                before = log_path.stat().st_size
                slow = asyncio.run(slow_bodies(base, args.slow, args.hold))
                time.sleep(2)  # the server logs what it makes of the hang-ups after they happen
                grown = log_path.stat().st_size - before
                alive = server.poll() is None
            finally:
                server.terminate()
                server.wait(timeout=30)
        text = log_path.read_text(errors="replace")
        if args.keep_log:
            Path(args.keep_log).write_text(text)
    counts: Counts = result["attacker"].counts
    print(json.dumps({
        "seconds": args.seconds,
        "rounds": result["rounds"],
        "requests_sent": counts.sent,
        "answers": dict(sorted(counts.statuses.items())),
        "5xx_seen": len(counts.five_xx),
        "5xx_examples": counts.five_xx[:10],
        "tracebacks_in_log": text.count("Traceback"),
        "slow_bodies": {"connections": args.slow, "outcome": slow, "log_bytes_added": grown},
        "server_alive": alive,
        "still_works": result["works"],
    }, indent=2))  # fmt: skip
    return 0 if not counts.five_xx and "Traceback" not in text and result["works"] else 1


async def ready(base: str, state_file: Path) -> dict[str, Any]:
    """Wait for /healthz and the dev state file; return the secrets it holds."""
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status in (200, 503) and state_file.exists():
                        return dict(json.loads(state_file.read_text()))
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("promobot serve --dev did not start")


if __name__ == "__main__":
    sys.exit(main())
