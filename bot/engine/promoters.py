"""Who may promote: Slack user IDs and user groups, the groups resolved and cached a few minutes."""

import asyncio
import logging
from collections.abc import Callable, Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
CACHE_SECONDS = 300.0
LOOKUP_TIMEOUT = 1.5  # the answer to Slack must come within 3 s


class Promoters:
    """Resolve `promoters` lists (U… users, S… groups) with usergroups.users.list, cached."""

    def __init__(self, client: AsyncWebClient, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self._groups: dict[str, tuple[frozenset[str], float]] = {}

    async def members(self, group: str) -> frozenset[str]:
        """Return a user group's members; an unknown group or an error counts as empty."""
        cached = self._groups.get(group)
        if cached and cached[1] > self.clock():
            return cached[0]
        try:
            answer = await asyncio.wait_for(
                # A form POST: Slack takes it for every method (and the fakes serve POST only).
                self.client.api_call("usergroups.users.list", data={"usergroup": group}),
                LOOKUP_TIMEOUT,
            )
            users = frozenset(answer.get("users") or [])
        except (SlackApiError, TimeoutError, OSError) as exc:
            # Deny by default: a group we cannot read admits nobody (and is asked again soon).
            log.warning("cannot resolve user group %s: %s", group, type(exc).__name__)
            return frozenset()
        self._groups[group] = (users, self.clock() + CACHE_SECONDS)
        return users

    async def allows(self, user: str, promoters: Sequence[str]) -> bool | None:
        """Say whether `user` is a promoter; None when the list is empty (everyone may)."""
        if not promoters:
            return None
        if user in promoters:
            return True
        for group in (p for p in promoters if p.startswith("S")):
            if user in await self.members(group):
                return True
        return False
