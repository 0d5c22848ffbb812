"""Which repositories a Slack channel speaks for: the one rule every command and the digest use.

app.yaml names a channel by ID (`C0123ABCD`), `#name` or bare `name`
(`slack.channel`, `repositories.<name>.channel`); a slash command names its
channel by both ID and name. An ID is compared with the ID only, a name with
the name only, so a channel configured either way answers for its repositories.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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


def channel_key(configured: str) -> str:
    """Return what one channel is called however app.yaml spells it: its ID, or `#name`."""
    if CHANNEL_ID.match(configured):
        return configured
    return "#" + configured.lstrip("#").lower()


def same_channels(configured: Iterable[str], known: Mapping[str, str]) -> list[tuple[str, ...]]:
    """Group the channels app.yaml names that are one Slack channel; names first in a group.

    Spellings of one name are one channel (`#Releases`, `releases`), and a name is the
    channel of its ID once Slack told promobot that ID (`known`: configured name -> ID).
    """
    by_key: dict[str, set[str]] = defaultdict(set)
    for channel in configured:
        by_key[channel_key(channel)].add(channel)
    groups: dict[str, set[str]] = defaultdict(set)
    for key, names in by_key.items():
        ids = sorted(known[n] for n in names if n in known)
        groups[ids[0] if ids and not CHANNEL_ID.match(key) else key] |= names
    # A name first: the digest and its lane keep the name people read in app.yaml.
    return sorted(
        tuple(sorted(names, key=lambda n: (bool(CHANNEL_ID.match(n)), n)))
        for names in groups.values()
    )


def repos_for_channel(
    config: Config, repos: Sequence[Repo], channel_id: str, channel_name: str
) -> list[Repo]:
    """Return the repositories (with `full_name`) the channel speaks for, in their order."""
    return [
        r for r in repos if is_channel(config.channel_for(r["full_name"]), channel_id, channel_name)
    ]
