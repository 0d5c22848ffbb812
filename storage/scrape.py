"""What GET /metrics reads from the database: backlogs, promotions, deployments."""

from collections import defaultdict
from typing import Any

from sqlite_utils import Database


def figures(db: Database, *, now: float) -> dict[str, Any]:
    """Return the backlog counts and oldest ages, promotions and deployments by stage and state."""
    snap: dict[str, Any] = {}
    for queue, table, stamp in (
        ("inbox", "deliveries", "received_at"),
        ("outbox", "outbox", "created_at"),
    ):
        rows = db.conn.execute(
            f"SELECT state, count(*), min({stamp}) FROM {table}"
            " WHERE state IN ('pending', 'failed') GROUP BY state"
        ).fetchall()
        snap[queue] = {state: count for state, count, _ in rows}
        pending = [first for state, _, first in rows if state == "pending"]
        snap[f"{queue}_oldest_age"] = max(0.0, now - pending[0]) if pending else 0.0
    for table in ("promotions", "deployments"):
        snap[table] = db.conn.execute(
            f"SELECT stage, state, count(*) FROM {table} GROUP BY stage, state"
        ).fetchall()
    durations: dict[str, list[float]] = defaultdict(list)
    for stage, seconds in db.conn.execute(
        "SELECT stage, finished_at - created_at FROM deployments WHERE finished_at IS NOT NULL"
    ):
        durations[stage].append(max(0.0, seconds))
    snap["deployment_durations"] = dict(durations)
    return snap
