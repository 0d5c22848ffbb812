"""What Slack told promobot: where each keyed message was posted, and channel IDs by name."""

from sqlite_utils import Database


def message_ts(db: Database, key: str) -> tuple[str, str] | None:
    """Return (channel ID, ts) of a keyed message already posted, or None."""
    row = db.execute("SELECT channel_id, ts FROM slack_messages WHERE key = ?", [key]).fetchone()
    return (row[0], row[1]) if row else None


def remember_message(db: Database, key: str, channel_id: str, ts: str, at: float) -> None:
    """Record where a keyed message was posted, so later versions edit it."""
    db.execute(
        "INSERT OR REPLACE INTO slack_messages (key, channel_id, ts, posted_at)"
        " VALUES (?, ?, ?, ?)",
        [key, channel_id, ts, at],
    )


def channel_id(db: Database, name: str) -> str | None:
    """Return the ID Slack gave for a channel name, if it ever did."""
    row = db.execute("SELECT id FROM slack_channels WHERE name = ?", [name]).fetchone()
    return row[0] if row else None


def remember_channel(db: Database, name: str, channel_id: str) -> None:
    """Record the ID of a channel named by name."""
    db.execute("INSERT OR REPLACE INTO slack_channels (name, id) VALUES (?, ?)", [name, channel_id])


def known_channels(db: Database) -> dict[str, str]:
    """Return every channel name Slack gave an ID for, with that ID."""
    return dict(db.execute("SELECT name, id FROM slack_channels").fetchall())
