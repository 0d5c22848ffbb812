"""Queue outbox rows straight through a Tx, as a feature's workflow would."""

from typing import Any

from bot.pipeline.outbox import GitHubRequest, KeyedMessage, Outbound
from bot.pipeline.tx import Tx


async def queue(harness: Any, *rows: Outbound) -> list[int]:
    """Queue typed rows in one transaction; return their ids."""
    services = harness.services

    def write(db: Any) -> list[int]:
        tx = Tx(db, services.config, services.clock.now())
        return [tx.send(row) for row in rows]

    ids = await services.store.write(write)
    services.relay.wake()
    return ids


def slack_message(key: str, text: str, channel: str = "#releases") -> KeyedMessage:
    """A keyed Slack message row."""
    return KeyedMessage(key, channel, text)


def github_status(sha: str, state: str = "success") -> GitHubRequest:
    """A commit status write through the GitHub sender."""
    body = {"state": state, "context": "promobot", "description": "bench"}
    return GitHubRequest.commit_status("Codertocat/Hello-World", sha, 957387, body)
