"""Slack display names for people shown outside Slack, looked up with users.info and kept a day.

Like the promoter lookup it never holds up Slack's 3-second acknowledgement:
each lookup has a short timeout, and a person whose name is not known yet is
shown by ID (and asked for again next time).
"""

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from storage import Store, people

log = logging.getLogger(__name__)
KEEP_SECONDS = 24 * 3600.0  # people rarely rename; a day-old name is still right
LOOKUP_TIMEOUT = 0.8  # with the promoter lookup's 1.5 s, well inside Slack's 3 s
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def display_name(user: dict[str, Any]) -> str:
    """Return the name Slack shows for a user: display name, else real name, else handle."""
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name")):
        if name and str(name).strip():
            return str(name).strip()
    return str(user.get("name") or user.get("id") or "")


class Names:
    """Resolve Slack user IDs to display names: memory, then the database, then users.info."""

    def __init__(self, client: AsyncWebClient, clock: Callable[[], float], store: Store) -> None:
        self.client = client
        self.clock = clock
        self.store = store
        self._known: dict[str, tuple[str, float]] = {}
        # Lookups left running after an answer: held so they are not collected half-done,
        # and ended by `stop` so that none outlives the app and its Slack session.
        self.later: set[asyncio.Task[None]] = set()

    async def names(self, ids: Iterable[str], timeout: float = LOOKUP_TIMEOUT) -> dict[str, str]:
        """Return a name for every Slack user ID in `ids` (the ID when none is known)."""
        wanted = {i for i in ids if i and SLACK_USER.match(i)}
        await self.learn(wanted, timeout)
        return {i: self._known[i][0] if i in self._known else i for i in wanted}

    async def learn(self, ids: Iterable[str], timeout: float = LOOKUP_TIMEOUT) -> None:
        """Make sure fresh names of `ids` are known and stored; give up quietly after `timeout`."""
        now = self.clock()
        missing = {i for i in ids if SLACK_USER.match(i) and self._stale(i, now)}
        if not missing:
            return
        stored = await self.store.read(
            lambda db: people.names_of(db, missing, fresh_after=now - KEEP_SECONDS)
        )
        self._known.update({i: (name, now) for i, name in stored.items()})
        missing -= set(stored)
        if not missing:
            return
        found = await asyncio.gather(*(self._ask(i, timeout) for i in sorted(missing)))
        fetched = {i: name for i, name in zip(sorted(missing), found, strict=True) if name}
        if fetched:
            self._known.update({i: (name, now) for i, name in fetched.items()})
            await self.store.write(lambda db: people.remember(db, fetched, now))

    def learn_later(self, ids: Iterable[str]) -> None:
        """Look names up without waiting for the answer (`stop` ends what is left)."""
        task = asyncio.ensure_future(self.learn(list(ids)))
        self.later.add(task)
        task.add_done_callback(self._learnt)

    def _learnt(self, task: "asyncio.Task[None]") -> None:
        """Forget a finished lookup; log one that failed (the ID is shown until one works)."""
        self.later.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("name of a person not looked up: %s", task.exception())

    async def stop(self) -> None:
        """End the lookups still running: at shutdown, before the Slack session closes."""
        for task in self.later:
            task.cancel()
        await asyncio.gather(*self.later, return_exceptions=True)

    def _stale(self, user: str, now: float) -> bool:
        known = self._known.get(user)
        return known is None or known[1] < now - KEEP_SECONDS

    async def _ask(self, user: str, timeout: float) -> str | None:
        """Ask Slack for one person's name; None when Slack does not answer in time."""
        try:
            answer = await asyncio.wait_for(
                self.client.api_call("users.info", data={"user": user}), timeout
            )
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.info("cannot look up %s: %s", user, type(exc).__name__)
            return None
        return display_name(answer.get("user") or {}) or None
