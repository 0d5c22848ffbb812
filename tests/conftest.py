"""Shared fixtures: real payloads, signed as GitHub and Slack sign them, against shared fakes."""

import asyncio
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlite_utils import Database

from bot.app import SERVICES, create_app
from bot.config import Config, Secrets, load_config
from bot.core.clock import Clock, FakeClock
from bot.dev import client, forms, payloads
from bot.dev.fakes import FakeGitHub, FakeSlack
from handlers import inbound
from storage import Store, connect, inbox
from tests.waiting import wait_for

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
WEBHOOK_SECRET = "test-webhook-secret"
SIGNING_SECRET = "test-signing-secret"
SHA = payloads.RECORDED_SHA
TEAM = "T012AB3CD"  # slack.team_id in app.yaml: the one workspace promobot answers


def fixture(name: str) -> dict[str, Any]:
    """Load a copy of a real GitHub webhook body: tests/fixtures/github's, or the package's."""
    path = FIXTURES / "github" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else payloads.recorded(name)


def sign_github(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """Sign `body` as GitHub does, with the tests' webhook secret unless told otherwise."""
    return client.github_signature(body, secret)


def sign_slack(
    body: str | bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict:
    """Return Slack's headers for `body`, signed with the tests' signing secret by default."""
    return client.slack_headers(body, secret, timestamp)


# The bodies tests deliver: the recorded ones, moved onto main with the sha and state set.
push_payload = payloads.push
status_payload = payloads.status


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `promobot …` as a separate process without blocking the fakes' event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture(scope="session")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def config() -> Config:
    return load_config(ROOT / "app.yaml")


@pytest.fixture
async def fake_slack(aiohttp_server: Callable) -> FakeSlack:
    fake = FakeSlack()
    fake.server = await aiohttp_server(fake.app())
    return fake


@pytest.fixture
async def fake_github(aiohttp_server: Callable) -> FakeGitHub:
    fake = FakeGitHub()
    fake.server = await aiohttp_server(fake.app())
    return fake


@pytest.fixture
def secrets(fake_slack: FakeSlack, fake_github: FakeGitHub, private_key: str) -> Secrets:
    return Secrets(
        github_app_id="12345",
        github_private_key=private_key,
        github_webhook_secret=WEBHOOK_SECRET,
        slack_bot_token=FakeSlack.TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        github_api_url=str(fake_github.server.make_url("")).rstrip("/"),
        slack_api_url=str(fake_slack.server.make_url("/api/")),
        retired_webhook_secrets=("retired-webhook-secret",),
    )


class Harness:
    """One running promobot (app, worker, relay) over a temporary database, driven over HTTP."""

    def __init__(self, client: Any, db_path: Path, slack: FakeSlack, github: FakeGitHub) -> None:
        self.client = client
        self.db_path = db_path
        self.slack = slack
        self.github = github

    @property
    def services(self) -> Any:
        return self.client.server.app[SERVICES]

    async def deliver(
        self,
        event: str,
        payload: dict | bytes,
        *,
        delivery_id: str | None = None,
        secret: str = WEBHOOK_SECRET,
        headers: dict | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent: dict[str, str | None] = {
            **client.github_headers(event, body, secret, delivery=delivery_id)
        }
        sent.update(headers or {})
        data = io.BytesIO(body) if len(body) > 1 << 20 else body  # aiohttp warns on big bytes
        headers = {k: v for k, v in sent.items() if v is not None}
        return await self.client.post("/github/webhooks", data=data, headers=headers)

    async def slash(
        self,
        text: str,
        *,
        command: str = "/ship",
        user: str = "U111",
        channel: str = "C0RELEASES",
        channel_name: str = "releases",
        timestamp: int | None = None,
    ) -> Any:
        form = forms.slash_form(
            text,
            user=user,
            user_name=user.lower(),
            response_url=str(self.slack.server.make_url("/api/response_url")),
            command=command,
            channel_id=channel,
            channel_name=channel_name,
            team=TEAM,
        )
        body = urlencode(form)
        return await self.client.post(
            "/slack/events", data=body, headers=sign_slack(body, timestamp=timestamp)
        )

    async def interact(self, payload: dict, *, timestamp: int | None = None) -> Any:
        """Post an interactive payload (a button click) as Slack does: form field `payload`."""
        body = urlencode({"payload": json.dumps({**payload, "trigger_id": forms.trigger_id()})})
        return await self.client.post(
            "/slack/events", data=body, headers=sign_slack(body, timestamp=timestamp)
        )

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every ready delivery is processed and the outbox has nothing due."""
        deadline = time.monotonic() + timeout
        services = self.services

        async def drained() -> bool:
            ready = await services.store.read(
                partial(inbox.ready_deliveries, now=services.clock.now())
            )
            if ready:
                services.worker.wake()
            return not ready

        await wait_for(drained, timeout, what="every delivery processed", every=0.01)
        await asyncio.wait_for(services.relay.idle(), timeout=deadline - time.monotonic())

    def db(self) -> Database:
        return connect(self.db_path, readonly=True)

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        db = self.db()
        try:
            return list(db.query(sql, params or []))
        finally:
            db.close()


@pytest.fixture
def make_harness(
    fake_slack: FakeSlack,
    fake_github: FakeGitHub,
    secrets: Secrets,
    aiohttp_client: Callable,
    tmp_path: Path,
    config: Config,
) -> Iterator[Callable]:
    """Start promobot; call again with the same db_path to 'restart' it.

    `intake=True` acknowledges into the ingest file, as `serve` does beside its processing
    process, and the worker takes the deliveries from there.
    """
    # The fakes come first so that they are torn down last: promobot's shutdown (the relay
    # finishing, a name lookup after its answer) meets a running fake, never one closing
    # under it, whose late-accepted connection nobody closes (a ResourceWarning later).
    intakes: list[Store] = []

    async def make(
        *,
        db_path: Path | None = None,
        clock: Clock | None = None,
        config_: Config | None = None,
        secrets_: Secrets | None = None,
        intake: bool = False,
        **kwargs: Any,
    ) -> Harness:
        path = db_path or tmp_path / "promobot.db"
        kwargs.setdefault("digest_schedule", False)  # no wall-clock digests in tests
        kwargs.setdefault("redeliver", False)  # GitHub's delivery list is read where tested
        app = create_app(
            config_ or config,
            secrets_ or secrets,
            db_path=path,
            inbound=inbound(),
            clock=clock,
            **kwargs,
        )
        client = await aiohttp_client(app)
        if intake:
            intakes.append(Store(path, checkpoints=False, intake=True))
            intakes[-1].open()
            app[SERVICES].intake = intakes[-1]
        return Harness(client, path, fake_slack, fake_github)

    yield make
    for store in intakes:
        store.close()


@pytest.fixture
async def harness(make_harness: Callable) -> Harness:
    return await make_harness()


@pytest.fixture
def clock() -> FakeClock:
    """Return the clock a pipeline test moves by hand."""
    return FakeClock()


@pytest.fixture
async def bot(make_harness: Callable, clock: FakeClock, fake_slack: FakeSlack) -> Any:
    """Return promobot driven through its public interfaces; S0RELEASE holds U0GROUP."""
    from tests.pipeline_driver import Pipeline  # it imports this module

    fake_slack.usergroups["S0RELEASE"] = ["U0GROUP"]
    return Pipeline(await make_harness(clock=clock), clock)
