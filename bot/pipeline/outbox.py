"""Typed outbox rows: one small constructor for each kind of outbound call.

Writers queue these (`Tx.send(row)`) and senders read them back with
`from_row`, so a row's shape is said once. A row knows its target, its
method (the relay's sender), its lane (calls in one lane go in order) and,
for a message edited in place, the key that coalesces its pending versions.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


class Outbound(Protocol):
    """What `Tx.send` needs of a row."""

    target: ClassVar[str]
    method: ClassVar[str]

    @property
    def lane(self) -> str:
        """Return the lane: calls in one lane are sent one after another, in order."""
        ...

    @property
    def coalesce_key(self) -> str | None:
        """Return the key under which a pending version is replaced, or None."""
        ...

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        ...


@dataclass(frozen=True)
class KeyedMessage:
    """A Slack message posted once, then edited in place (a build, an approval, a digest)."""

    target: ClassVar[str] = "slack"
    method: ClassVar[str] = "slack.message"
    key: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None

    @property
    def lane(self) -> str:
        """Return the channel: its posts, edits and replies go in order."""
        return self.channel

    @property
    def coalesce_key(self) -> str:
        """Return the message's key: only its newest version is worth sending."""
        return self.key

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        row: dict[str, Any] = {"key": self.key, "channel": self.channel, "text": self.text}
        if self.blocks is not None:
            row["blocks"] = self.blocks
        return row

    @classmethod
    def from_row(cls, payload: dict[str, Any]) -> "KeyedMessage":
        """Read the row back."""
        return cls(payload["key"], payload["channel"], payload["text"], payload.get("blocks"))


@dataclass(frozen=True)
class ThreadReply:
    """A reply in the thread of a keyed message, optionally also shown in the channel."""

    target: ClassVar[str] = "slack"
    method: ClassVar[str] = "slack.reply"
    coalesce_key: ClassVar[None] = None
    parent_key: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    broadcast: bool = False

    @property
    def lane(self) -> str:
        """Return the parent's channel, so the reply follows its parent."""
        return self.channel

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored (the channel is the lane)."""
        row: dict[str, Any] = {"parent_key": self.parent_key, "text": self.text}
        if self.blocks is not None:
            row["blocks"] = self.blocks
        return row | {"broadcast": self.broadcast}

    @classmethod
    def from_row(cls, payload: dict[str, Any], lane: str) -> "ThreadReply":
        """Read the row back."""
        return cls(
            payload["parent_key"],
            lane,
            payload["text"],
            payload.get("blocks"),
            bool(payload.get("broadcast")),
        )


@dataclass(frozen=True)
class Announcement:
    """A plain message to a channel that everyone should see (a lock, a freeze, a force)."""

    target: ClassVar[str] = "slack"
    method: ClassVar[str] = "chat.postMessage"
    coalesce_key: ClassVar[None] = None
    channel: str
    text: str

    @property
    def lane(self) -> str:
        """Return the channel."""
        return self.channel

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        return {"channel": self.channel, "text": self.text}

    @classmethod
    def from_row(cls, payload: dict[str, Any]) -> "Announcement":
        """Read the row back."""
        return cls(payload["channel"], payload["text"])


@dataclass(frozen=True)
class Ephemeral:
    """An answer only one person sees, in the channel they typed in."""

    target: ClassVar[str] = "slack"
    method: ClassVar[str] = "chat.postEphemeral"
    coalesce_key: ClassVar[None] = None
    channel: str
    user: str
    text: str

    @property
    def lane(self) -> str:
        """Return the channel."""
        return self.channel

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        return {"channel": self.channel, "user": self.user, "text": self.text}

    @classmethod
    def from_row(cls, payload: dict[str, Any]) -> "Ephemeral":
        """Read the row back."""
        return cls(payload["channel"], payload["user"], payload["text"])


@dataclass(frozen=True)
class GitHubRequest:
    """One GitHub REST call as an installation; `record` names what stores its answer."""

    target: ClassVar[str] = "github"
    method: ClassVar[str] = "github.request"
    verb: str
    path: str
    body: dict[str, Any]
    installation_id: int | None
    record: str | None = None
    deployment_id: int | None = None
    key: str | None = field(default=None, compare=False)

    @property
    def lane(self) -> str:
        """Return the installation: GitHub limits each one on its own."""
        return f"installation:{self.installation_id}"

    @property
    def coalesce_key(self) -> str | None:
        """Return the key under which a pending version is replaced, or None."""
        return self.key

    @classmethod
    def deployment(
        cls, full_name: str, installation_id: int | None, body: dict[str, Any], deployment_id: int
    ) -> "GitHubRequest":
        """Create a GitHub Deployment for our deployment `deployment_id`."""
        return cls(
            "POST",
            f"/repos/{full_name}/deployments",
            body,
            installation_id,
            record="deployment.created",
            deployment_id=deployment_id,
        )

    @classmethod
    def commit_status(
        cls,
        full_name: str,
        sha: str,
        installation_id: int | None,
        body: dict[str, Any],
        *,
        key: str | None = None,
    ) -> "GitHubRequest":
        """Set a commit status on `sha` (the newest one queued under `key` wins)."""
        return cls("POST", f"/repos/{full_name}/statuses/{sha}", body, installation_id, key=key)

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        row: dict[str, Any] = {
            "method": self.verb,
            "path": self.path,
            "body": self.body,
            "installation_id": self.installation_id,
        }
        if self.record:
            row["record"] = self.record
        if self.deployment_id is not None:
            row["deployment_id"] = self.deployment_id
        return row

    @classmethod
    def from_row(cls, payload: dict[str, Any]) -> "GitHubRequest":
        """Read the row back."""
        return cls(
            payload["method"],
            payload["path"],
            payload.get("body") or {},
            payload.get("installation_id"),
            payload.get("record"),
            payload.get("deployment_id"),
        )


@dataclass(frozen=True)
class Redelivery:
    """Ask GitHub to deliver a missed webhook delivery again (as the App, not an installation)."""

    target: ClassVar[str] = "github"
    method: ClassVar[str] = "github.redeliver"
    coalesce_key: ClassVar[None] = None
    lane: ClassVar[str] = "github:app"
    hook_delivery_id: int
    guid: str

    def to_row(self) -> dict[str, Any]:
        """Return the payload as stored."""
        return {"hook_delivery_id": self.hook_delivery_id, "guid": self.guid}

    @classmethod
    def from_row(cls, payload: dict[str, Any]) -> "Redelivery":
        """Read the row back."""
        return cls(int(payload["hook_delivery_id"]), str(payload["guid"]))
