"""The event log: append-only, who did what, when, to which build and stage, and why."""

import json
from typing import Any

from sqlite_utils import Database


def log_event(
    db: Database,
    *,
    at: float,
    actor: str,
    action: str,
    repo_id: int | None = None,
    build_id: int | None = None,
    stage: str | None = None,
    reason: str | None = None,
    forced: bool = False,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry to the event log and return its id."""
    cursor = db.execute(
        "INSERT INTO event_log"
        " (at, actor, action, repo_id, build_id, stage, reason, forced, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            at,
            actor,
            action,
            repo_id,
            build_id,
            stage,
            reason,
            int(forced),
            json.dumps(detail, sort_keys=True) if detail else None,
        ],
    )
    return int(cursor.lastrowid or 0)
