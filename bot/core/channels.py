"""Which repositories a Slack channel speaks for: the one rule every command and the digest use.

app.yaml names a channel by ID (`C0123ABCD`), `#name` or bare `name`
(`slack.channel`, `repositories.<name>.channel`); a slash command names its
channel by both ID and name. An ID is compared with the ID only, a name with
the name only, so a channel configured either way answers for its repositories.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from bot.config import Config

# Public (C), private or legacy group (G) and direct-message (D) conversation IDs.
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

Repo = TypeVar("Repo", bound=Mapping[str, Any])


def is_channel(configured: str, channel_id: str, channel_name: str) -> bool:
    """Say whether a configured channel (ID, #name or name) is the one Slack sent."""
    if CHANNEL_ID.match(configured):
        return configured == channel_id
    name = configured.lstrip("#").lower()
    # Slack keeps channel names lowercase; an empty name (a button click) is no channel.
    return bool(name) and name == channel_name.lower()


def repos_for_channel(
    config: Config, repos: Sequence[Repo], channel_id: str, channel_name: str
) -> list[Repo]:
    """Return the repositories (with `full_name`) the channel speaks for, in their order."""
    return [
        r for r in repos if is_channel(config.channel_for(r["full_name"]), channel_id, channel_name)
    ]
