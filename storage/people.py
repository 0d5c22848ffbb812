"""Slack display names, kept so pages and GitHub statuses can say who without asking Slack."""

from collections.abc import Iterable

from sqlite_utils import Database


def names_of(db: Database, user_ids: Iterable[str], fresh_after: float = 0.0) -> dict[str, str]:
    """Return the stored display names of `user_ids` fetched after `fresh_after`."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = db.execute(
        f"SELECT user_id, name FROM people WHERE user_id IN ({marks}) AND fetched_at > ?",
        [*wanted, fresh_after],
    ).fetchall()
    return dict(rows)


def name_of(db: Database, user_id: str) -> str:
    """Return a person's stored display name, or the ID itself when none is known."""
    return names_of(db, [user_id]).get(user_id, user_id)


def remember(db: Database, names: dict[str, str], now: float) -> None:
    """Store display names fetched from Slack at `now`."""
    db.conn.executemany(
        "INSERT INTO people (user_id, name, fetched_at) VALUES (?, ?, ?) ON CONFLICT (user_id)"
        " DO UPDATE SET name = excluded.name, fetched_at = excluded.fetched_at",
        [(user, name, now) for user, name in names.items()],
    )
