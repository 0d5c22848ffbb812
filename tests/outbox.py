"""Queue outbox rows straight through a Tx, as a feature's workflow would."""

from typing import Any

from bot.pipeline.tx import Tx


async def queue(harness: Any, *rows: tuple[str, str, dict, str]) -> list[int]:
    """Queue (target, method, payload, lane) rows in one transaction; return their ids."""
    services = harness.services

    def write(db: Any) -> list[int]:
        tx = Tx(db, services.config, services.clock.now())
        return [tx.send(t, m, p, lane=lane) for t, m, p, lane in rows]

    ids = await services.store.write(write)
    services.relay.wake()
    return ids


def slack_message(key: str, text: str, channel: str = "#releases") -> tuple[str, str, dict, str]:
    """A keyed Slack message row."""
    return ("slack", "slack.message", {"key": key, "channel": channel, "text": text}, channel)


def github_status(sha: str, state: str = "success") -> tuple[str, str, dict, str]:
    """A commit status write through the GitHub sender."""
    payload = {
        "method": "POST",
        "path": f"/repos/Codertocat/Hello-World/statuses/{sha}",
        "body": {"state": state, "context": "promobot", "description": "bench"},
        "installation_id": 957387,
    }
    return ("github", "github.request", payload, "installation:957387")
