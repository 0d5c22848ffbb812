"""`promobot serve --dev`: the whole pipeline on a laptop, with no GitHub App and no Slack.

Only the remotes change. Secrets are random (and printed, so a person can
sign requests); the real Slack and GitHub senders call the fake Slack and fake
GitHub (bot/dev/fakes) that the dev server itself serves under /dev/; what
they take is shown on the console and kept in the database; a local
deployer answers each deployment with signed `deployment_status` webhooks to
our own /github/webhooks, so verification, storage, the worker, the outbox and
the gates run exactly as in production. Nothing here is reachable without
--dev: the CLI is the only caller of `dev_secrets`, and the app factory
refuses a DevMode unless the secrets were made by it.
"""

import asyncio
import dataclasses
import json
import logging
import random as random_numbers
import re
import secrets as random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import Config, Secrets
from bot.core.text import duration
from bot.dev import payloads
from bot.dev.client import DEV_TEAM, post_webhook
from bot.dev.console import Console, fake_channel_id, slack_listener
from bot.dev.fakes import Call, FakeGitHub, FakeSlack
from bot.dev.fakes.recorder import Listener
from storage import Store, builds, connect
from storage import dev as devstore

log = logging.getLogger(__name__)
STATE_FILE = ".promobot-dev.json"
DEV_DB = "promobot-dev.db"  # where `make run` keeps its database
# People of the demo workspace. S… user groups in app.yaml resolve to GROUP_MEMBERS in dev mode.
PEOPLE = {"U012ABC": "ada", "U0DEVBOB": "bob", "U0DEVCAT": "cat"}
GROUP_MEMBERS = ("U0DEVBOB", "U0DEVCAT")
DEPLOYMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/deployments$")
DEV_TOKEN = "xoxb-dev-mode-not-a-token"  # good for the fake Slack only
GITHUB_PREFIX = "/dev/github"  # where the dev server serves the fake GitHub
DEPLOYER = {"login": "dev-deployer[bot]", "id": 41898282, "type": "Bot"}


@dataclass(frozen=True)
class DevMode:
    """How dev mode runs: where we listen, the deployer's pace, whether the demo plays."""

    url: str = "http://127.0.0.1:8080"
    deploy_delay: float = 2.0
    deploy_failures: float = 0.0  # the share of deployments the deployer fails (0 to 1)
    demo: bool = False
    demo_patience: float = 15.0  # seconds a demo step waits for the pipeline before moving on
    write: Callable[[str], Any] | None = None  # the console; stdout when None


@dataclass
class DevRuntime:
    """Dev mode as the running service holds it (handlers/dev.py reads it)."""

    mode: DevMode
    console: Console
    slack: FakeSlack  # served at /dev/slack/: the real Slack senders post to it
    github: FakeGitHub  # served at /dev/github/: the real GitHub sender calls it
    # Stages whose next deployment the deployer fails (`promobot fail-next <stage>`).
    fail_next: set[str] = dataclasses.field(default_factory=set)
    deployer: "Deployer | None" = None

    def stop(self) -> None:
        """Stop the deployer: the server it posts each step to is shutting down."""
        if self.deployer is not None:
            self.deployer.stop()


def throwaway_key() -> str:
    """Return a fresh RSA key, so a GitHub App JWT can be signed for the local stand-in."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def dev_secrets(url: str) -> Secrets:
    """Make random webhook and signing secrets, and credentials good only for the stand-ins."""
    return Secrets(
        github_app_id="0",
        github_private_key=throwaway_key(),
        github_webhook_secret=random.token_hex(20),
        slack_bot_token=DEV_TOKEN,
        slack_signing_secret=random.token_hex(16),
        github_api_url=url.rstrip("/") + GITHUB_PREFIX,
        slack_api_url=url.rstrip("/") + "/dev/slack/api/",
        dashboard_token="",
        dev=True,
    )


def scale_soaks(config: Config, factor: int) -> Config:
    """Return `config` with every soak divided by `factor` (at least 1 s where one was set)."""
    stages = tuple(
        dataclasses.replace(s, soak=max(1, s.soak // factor) if s.soak else 0)
        for s in config.pipeline.stages
    )
    return dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, stages=stages))


def banner(config: Config, original: Config, secrets: Secrets, mode: DevMode, db: str) -> str:
    """Describe the dev server: where it is, its secrets, and what differs from production."""
    soaks = ", ".join(
        f"{new.name} {duration(old.soak)} → {duration(new.soak)}"
        for old, new in zip(original.pipeline.stages, config.pipeline.stages, strict=True)
        if old.soak
    )
    return "\n".join(
        [
            "promobot --dev: no GitHub App, no Slack workspace; nothing leaves this machine.",
            f"  dashboard         {mode.url}/",
            f"  GitHub webhooks   {mode.url}/github/webhooks  secret "
            f"{secrets.github_webhook_secret}",
            f"  Slack requests    {mode.url}/slack/events  signing secret "
            f"{secrets.slack_signing_secret}",
            f"  database          {db}; secrets also in {STATE_FILE}",
            f"  soak times scaled down for the demo: {soaks or 'none set'}",
            f"  deployments answered by a local deployer after {mode.deploy_delay:g}s each"
            + (f", {mode.deploy_failures:.0%} of them failing" if mode.deploy_failures else ""),
            "  fail one on purpose: promobot fail-next <stage>",
            f"  Slack user groups contain the demo people {', '.join(GROUP_MEMBERS)}",
            "  try: promobot send /ship status",
        ]
    )


def write_state(path: str | Path, secrets: Secrets, url: str, db: str = DEV_DB) -> None:
    """Write the dev secrets where `promobot send` finds them (readable by this user only)."""
    path = Path(path)
    path.touch(mode=0o600)
    path.chmod(0o600)
    state = {
        "url": url,
        "github_webhook_secret": secrets.github_webhook_secret,
        "slack_signing_secret": secrets.slack_signing_secret,
        "db": str(Path(db).resolve()),
    }
    path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def dev_runtime(
    config: Config, console: Console, store: Store, mode: DevMode, clock: Callable[[], float]
) -> DevRuntime:
    """Make the fake Slack and fake GitHub dev mode serves, each telling the console and store."""
    channels = [config.channel, *config.channels.values()]
    slack = FakeSlack({name: fake_channel_id(name) for name in channels}, token=DEV_TOKEN)
    slack.team_id, slack.users = DEV_TEAM, dict(PEOPLE)
    groups = {who for stage in config.pipeline.stages for who in stage.promoters}
    slack.usergroups = {group: list(GROUP_MEMBERS) for group in groups if group.startswith("S")}
    # A restarted dev server still edits the messages it posted before (its database knows them).
    db = connect(store.path, readonly=True)
    try:
        for key, channel_id, ts in devstore.posted_messages(db):
            slack.knows(channel_id, ts, key)
    finally:
        db.close()
    github = FakeGitHub(prefix=GITHUB_PREFIX)
    slack.listeners.append(slack_listener(console, slack, store, clock))
    github.listeners.append(github_listener(github, store, clock, mode.deploy_delay))
    return DevRuntime(mode, console, slack, github)


def github_listener(
    github: FakeGitHub, store: Store, clock: Callable[[], float], deploy_delay: float
) -> Listener:
    """Build the fake GitHub's listener that records each write (deployments for the deployer)."""

    async def heard(call: Call, answer: Any) -> None:
        verb = call.method.split(" ", 1)[0]
        if verb == "GET" or call.path.endswith("/access_tokens"):
            return
        now, installation = clock(), github.installation_of(call)
        deploy = DEPLOYMENTS.match(call.path) and verb == "POST"
        log.info("dev: GitHub %s %s", verb, call.path)
        await store.write(
            lambda db: devstore.add_github_call(
                db,
                at=now,
                method=verb,
                path=call.path,
                installation_id=installation,
                body=call.body,
                answer=answer,
                deploy_due=now + deploy_delay if deploy else None,
            )
        )

    return heard


def deployment_status(
    call: dict[str, Any], state: str, repo: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    """Shape a `deployment_status` webhook body like GitHub's for a recorded deployment."""
    created = {**call["answer"], "updated_at": payloads.iso(now), "creator": {**DEPLOYER}}
    full_name = DEPLOYMENTS.match(call["path"]).group(1)  # type: ignore[union-attr]
    return payloads.deployment_status(
        int(created["id"]),
        state,
        str(created["environment"]),
        description=f"dev deployer: {state.replace('_', ' ')}",
        installation=int(call["installation_id"]),
        created=created,
        status_id=int(f"{call['id']}{len(state)}"),
        stamp=now,
        repo=payloads.repository(full_name, int((repo or {}).get("id") or 0)),
        sender={**DEPLOYER},
    )


class Deployer:
    """Completes every recorded deployment: in_progress, then success, each after a delay."""

    def __init__(
        self,
        store: Store,
        secrets: Secrets,
        mode: DevMode,
        clock: Callable[[], float],
        fail_next: set[str] | None = None,
    ) -> None:
        self.store = store
        self.secret = secrets.github_webhook_secret
        self.mode = mode
        self.clock = clock
        self.fail_next = fail_next if fail_next is not None else set()
        self.dice = random_numbers.Random()
        self._stopping = False

    def outcome(self, stage: str) -> str:
        """Decide how a deployment into `stage` ends: failed on request or by chance, or fine."""
        if stage in self.fail_next:  # taken off once GitHub-as-us accepted the failure
            return "failure"
        return "failure" if self.dice.random() < self.mode.deploy_failures else "success"

    def stop(self) -> None:
        """Send no more steps; run() returns. A step due later is sent by the next start."""
        self._stopping = True

    async def run(self) -> None:
        """Play due steps until stopped."""
        async with aiohttp.ClientSession() as session:
            while not self._stopping:
                due = partial(devstore.due_deployments, now=self.clock())
                for call in await self.store.read(due):
                    if self._stopping:
                        break
                    await self.step(session, call)
                await asyncio.sleep(0.25)

    async def step(self, session: aiohttp.ClientSession, call: dict[str, Any]) -> None:
        """Send the next deployment_status of one deployment; try again later if refused."""
        stage = str((call.get("answer") or {}).get("environment") or "")
        state = "in_progress" if call["deploy_step"] == 0 else self.outcome(stage)
        full_name = DEPLOYMENTS.match(call["path"]).group(1)  # type: ignore[union-attr]
        repo = await self.store.read(lambda db: builds.repository_by_name(db, full_name))
        body = deployment_status(call, state, repo, self.clock())
        try:
            status, text = await post_webhook(
                session, self.mode.url, self.secret, "deployment_status", body
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, text = 0, type(exc).__name__
        step, due = call["deploy_step"] + 1, self.clock() + self.mode.deploy_delay
        if status != 202:
            log.warning("dev deployer: %s of %s refused (%s %s)", state, full_name, status, text)
            step = call["deploy_step"]
        else:
            log.info("dev deployer: %s %s → %s", full_name, stage, state)
            if state == "failure":
                self.fail_next.discard(stage)
        done = step >= 2
        await self.store.write(
            lambda db: devstore.advance_deployment(db, call["id"], step, None if done else due)
        )
