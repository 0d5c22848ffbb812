"""Rate-limit pauses wider than one outbox row (a Slack method, workspace-wide), kept.

A 429 puts the refused row off by itself (its `not_before`); a pause that holds back other
rows too lives in memory while promobot runs and here, so a restart still honours it.
"""

from sqlite_utils import Database


def hold(db: Database, name: str, until: float) -> None:
    """Record that `name` may not be called before `until` (epoch seconds; the later wins)."""
    db.execute(
        "INSERT INTO rate_limit_pauses (name, until) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET until = max(until, excluded.until)",
        [name, until],
    )


def active(db: Database, now: float) -> dict[str, float]:
    """Return the pauses still in force at `now`, by name, with when each ends."""
    rows = db.execute("SELECT name, until FROM rate_limit_pauses WHERE until > ?", [now])
    return {name: until for name, until in rows.fetchall()}
