"""The demo story `make run` plays against its own dev server, over HTTP, signed as in production.

Pushes, CI green and red (and the fix), automatic deploys to the first stage,
a promotion, an approval by a second person clicking the button, a lock and a
rollback. Each step is a request a real GitHub or Slack would send; when the
bot refuses one, the story says so and carries on.
"""

import asyncio
import hashlib
import json
import logging
import time
import uuid
from functools import partial
from typing import Any

import aiohttp

from bot.dev import payloads
from bot.dev.client import post_slack, post_webhook
from bot.dev.console import fake_channel_id, render
from bot.dev.forms import block_actions, interaction_form, slash_form
from bot.dev.mode import PEOPLE, DevMode
from bot.services import Services
from storage import builds, pipeline
from storage import dev as devstore
from storage import slack as slackdb

log = logging.getLogger(__name__)

# The demo's repository: its webhooks are GitHub's recorded bodies, moved to this repository.
REPO = payloads.repository("acme/storefront", 700_001)
INSTALLATION = 4242


class Demo:
    """Plays the story once, then leaves the server to the person."""

    def __init__(self, services: Services, mode: DevMode) -> None:
        self.services = services
        self.mode = mode
        self.secrets = services.secrets
        self.run_id = uuid.uuid4().hex
        self.head = "0" * 40
        self.session: aiohttp.ClientSession | None = None

    def say(self, text: str) -> None:
        """Narrate a step of the story on the console."""
        write = self.services.dev.console.write if self.services.dev else print
        write(f"\n▶ demo: {text}\n")

    async def play(self) -> None:
        """Wait for the server to listen, play the story, and say how to carry on."""
        async with aiohttp.ClientSession() as session:
            self.session = session
            if not await self.serving():
                self.say(f"the server at {self.mode.url} never answered; no demo")
                return
            await self.story()
        self.say(
            f"that was the story. The dashboard is at {self.mode.url}/ — "
            "try `promobot send /ship status` (promobot keeps serving; Ctrl-C stops it)"
        )

    async def serving(self) -> bool:
        """Wait until /healthz answers."""
        assert self.session is not None
        for _ in range(100):
            try:
                async with self.session.get(self.mode.url + "/healthz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        return False

    async def story(self) -> None:
        """The story: five pushes, one red; promote; approve; lock; roll back."""
        for stage in await self.services.store.read(
            partial(_locked_stages, now=self.services.clock.now())
        ):
            self.say(f"{stage} is still locked from an earlier run")
            await self.ship("U012ABC", f"unlock {stage}")
        for promotion in await self.services.store.read(_waiting_promotions):
            self.say(f"promotion {promotion} still waits from an earlier run")
            await self.ship("U0DEVBOB", f'reject {promotion} "a new demo run starts"')
        first = await self.commit("ada", "Add the checkout page", green=True)
        await self.deployed(first, "pasty")
        await self.commit("bob", "Speed up search with a trigram index", green=False)
        fix = await self.commit("bob", "Fix the search index migration", green=True)
        await self.deployed(fix, "pasty")
        await self.soak("baklava", "pasty")
        await self.ship("U012ABC", "promote pasty to baklava")
        await self.deployed(fix, "baklava")
        tidy = await self.commit("cat", "Tidy the request logs", green=True)
        await self.deployed(tidy, "pasty")
        await self.soak("dumpling", "baklava")
        seen = await self.services.store.read(devstore.last_message_id)
        await self.ship("U012ABC", "baklava to dumpling", command="/promote")
        await self.approve("U0DEVBOB", after=seen)
        await self.deployed(fix, "dumpling")
        await self.ship("U012ABC", 'lock baklava "release 2026.11 under test" for 2h')
        retry = await self.commit("cat", "Retry the payment webhook on 502", green=True)
        await self.deployed(retry, "pasty")
        await self.ship("U0DEVCAT", "rollback pasty")
        await self.deployed(tidy, "pasty", after=retry)
        await self.ship("U012ABC", "status")

    async def commit(self, login: str, message: str, *, green: bool) -> str:
        """Push one commit to main and report its CI (one red check when not green)."""
        sha = hashlib.sha1(f"{self.run_id}{message}".encode()).hexdigest()
        before, self.head = self.head, sha
        self.say(f"{login} pushes {sha[:7]} “{message}” to main")
        change = payloads.commit(
            sha,
            message,
            author=login,
            stamp=time.time(),
            repo_url=REPO["html_url"],
            modified=["app/search.py"],
        )
        body = payloads.push(
            sha, before=before, commits=[change], repo=REPO, installation=INSTALLATION
        )
        await self.github("push", body)
        for context in ("ci/lint", "ci/test"):
            await self.report(sha, context, "pending", "running")
        await asyncio.sleep(1.0)
        await self.report(sha, "ci/lint", "success", "clean")
        if green:
            await self.report(sha, "ci/test", "success", "412 passed")
        else:
            self.say("ci/test goes red on that commit")
            await self.report(sha, "ci/test", "failure", "2 failed: test_search_ranking")
        return sha

    async def report(self, sha: str, context: str, state: str, description: str) -> None:
        """Report one commit status, as a CI service does."""
        body = payloads.status(
            sha,
            state=state,
            context=context,
            stamp=time.time(),
            description=description,
            target_url=f"https://ci.acme.test/{context}/{sha[:7]}",
            repo=REPO,
            installation=INSTALLATION,
        )
        await self.github("status", body)

    async def github(self, event: str, body: dict[str, Any]) -> None:
        """Deliver one signed webhook; say so when it is refused."""
        assert self.session is not None
        secret = self.secrets.github_webhook_secret
        try:
            status, text = await post_webhook(self.session, self.mode.url, secret, event, body)
        except aiohttp.ClientError as exc:
            status, text = 0, type(exc).__name__
        if status != 202:
            self.say(f"GitHub {event} delivery was refused: {status} {text[:200]}")

    async def ship(self, user: str, text: str, *, command: str = "/ship") -> None:
        """Send a signed slash command as `user`; show its immediate answer."""
        assert self.session is not None
        self.say(f"{PEOPLE.get(user, user)} types: {command} {text}")
        form = slash_form(
            text,
            user=user,
            user_name=PEOPLE.get(user, user),
            command=command,
            response_url=self.mode.url + "/dev/slack/respond",
        )
        await self.slack(form, f"{command} {text}")

    async def slack(self, form: dict[str, str], what: str) -> None:
        """POST a signed Slack request and print what it answered at once."""
        assert self.session is not None
        secret = self.secrets.slack_signing_secret
        try:
            status, body = await post_slack(self.session, self.mode.url, secret, form)
        except aiohttp.ClientError as exc:
            status, body = 0, type(exc).__name__
        if status != 200:
            self.say(f"{what} was refused: HTTP {status} {body[:200]}")
            return
        answer = _ack_text(body)
        if answer and self.services.dev:
            lines = render(answer, None, self.services.dev.console.names)
            self.services.dev.console.show("answer, only the sender sees it", lines)

    async def approve(self, user: str, *, after: int) -> None:
        """Click the Approve button of the newest approval message as `user`."""
        find = partial(_approve_button, after=after)
        found = await self.until(lambda: self.services.store.read(find), "approval")
        if found is None:
            self.say("no Approve button appeared; approving by command instead")
            promotion = await self.services.store.read(devstore.newest_waiting_promotion)
            await self.ship(user, f"approve {promotion or 1}")
            return
        message, block_id, action = found
        self.say(f"{PEOPLE.get(user, user)} clicks Approve")
        click = block_actions(
            user=user,
            user_name=PEOPLE.get(user, user),
            channel_id=message["channel_id"],
            message=message,
            action=action,
            block_id=block_id,
            response_url=self.mode.url + "/dev/slack/respond",
        )
        await self.slack(interaction_form(click), "the Approve click")

    async def deployed(self, sha: str, stage: str, *, after: str | None = None) -> None:
        """Wait until `sha` is live in `stage` (deployed after `after`'s deployment, if given)."""

        def live(db: Any) -> bool:
            return devstore.live_since(db, sha, stage, after)

        if await self.until(lambda: self.services.store.read(live), f"{sha[:7]} in {stage}"):
            self.say(f"{sha[:7]} is live in {stage}")

    async def soak(self, stage: str, previous: str) -> None:
        """Wait out the soak `stage` asks of a build in the stage before it."""
        target = self.services.config.pipeline.stage(stage)
        if target and target.soak:
            self.say(f"{stage} asks for {target.soak}s in {previous} first (scaled); waiting")
            await asyncio.sleep(target.soak + 1)

    async def until(self, probe: Any, what: str) -> Any:
        """Poll `probe` until it returns something, or give up (the story carries on)."""
        deadline = time.monotonic() + self.mode.demo_patience
        while time.monotonic() < deadline:
            found = await probe()
            if found:
                return found
            await asyncio.sleep(0.25)
        self.say(f"gave up waiting for {what}; the story carries on")
        return None


def _ack_text(body: str) -> str:
    if not body:
        return ""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body
    return str(data.get("text") or "") if isinstance(data, dict) else ""


def _approve_button(db: Any, after: int) -> tuple[dict, str, dict] | None:
    """Find the newest message shown after `after` with an Approve button still on it."""
    newest: dict[Any, dict] = {}
    for message in devstore.messages(db, since_id=after, limit=100_000):
        newest[message["key"] or message["id"]] = message  # an edit replaces its message
    for message in sorted(newest.values(), key=lambda m: -m["id"]):
        for block in message["blocks"] or []:
            for element in block.get("elements") or [block.get("accessory") or {}]:
                label = json.dumps([element.get("action_id"), element.get("text")]).lower()
                if element.get("type") == "button" and "approve" in label:
                    where = slackdb.message_ts(db, message["key"]) or (
                        fake_channel_id(message["channel"]),
                        message["ts"],
                    )
                    shown = {**message, "channel_id": where[0], "ts": where[1]}
                    return shown, block.get("block_id", ""), element
    return None


def _repo_id(db: Any) -> int:
    repo = builds.repository_by_name(db, REPO["full_name"])
    return int(repo["id"]) if repo else 0


def _locked_stages(db: Any, now: float) -> list[str]:
    return sorted(pipeline.locked_stages(db, _repo_id(db), now))


def _waiting_promotions(db: Any) -> list[int]:
    return [p["id"] for p in pipeline.open_promotions(db, _repo_id(db))]
