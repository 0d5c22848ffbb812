"""What the daily digest reads, and the record that a channel's digest for a day was sent."""

import json
from typing import Any

from sqlite_utils import Database

from storage.dashboard import rollbacks_of
from storage.pipeline import OPEN_LOCK
from storage.rows import select

# Enough history for any red run a digest reports on, without reading the whole table.
MAX_BUILDS = 500


def repo_records(db: Database, repo: dict[str, Any], *, since: float, now: float) -> dict:
    """Return every record the digest of one repository needs, as plain rows."""
    repo_id = repo["id"]
    recent = select(
        db,
        "SELECT * FROM builds WHERE repo_id = ? ORDER BY number DESC LIMIT ?",
        [repo_id, MAX_BUILDS],
    )
    oldest = min((b["id"] for b in recent), default=0)
    events = select(
        db,
        "SELECT build_id, at, detail FROM event_log WHERE action = 'ci.changed'"
        " AND repo_id = ? AND build_id >= ? ORDER BY id",
        [repo_id, oldest],
    )
    for event in events:
        event["detail"] = json.loads(event["detail"] or "{}")
    return {
        "repo": repo,
        "builds": sorted(recent, key=lambda b: b["number"]),
        "ci_events": events,
        "transitions": select(
            db,
            "SELECT * FROM check_transitions WHERE repo_id = ? AND at >= ? ORDER BY at, id",
            [repo_id, since],
        ),
        # Only the recent builds' deployments are shown; by build id the read is as long
        # over a year as over a week (the planner would walk every success of the repository).
        "deployments": select(
            db,
            "SELECT * FROM deployments INDEXED BY deployments_build"
            " WHERE build_id >= ? AND repo_id = ? AND state = 'success' ORDER BY id DESC LIMIT ?",
            [oldest, repo_id, MAX_BUILDS],
        ),
        # Rolled back out of a stage and not back there since (the stage order's one rule).
        "rolled_back": rollbacks_of(db, [b["id"] for b in recent]),
        "promotions": select(
            db,
            "SELECT p.*, (SELECT count(*) FROM approvals a WHERE a.promotion_id = p.id)"
            " AS approvals FROM promotions p WHERE repo_id = ? AND state = 'waiting'"
            " ORDER BY id",
            [repo_id],
        ),
        "locks": select(
            db,
            f"SELECT * FROM locks WHERE repo_id = ? AND {OPEN_LOCK} ORDER BY id",
            [repo_id, now],
        ),
        "freezes": select(
            db,
            "SELECT * FROM freezes WHERE repo_id = ? AND ended_at IS NULL ORDER BY id",
            [repo_id],
        ),
    }


def record_digest(db: Database, channel: str, day: str, now: float) -> bool:
    """Claim a channel's digest for a local day; False when it was already claimed."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO digests (channel, day, recorded_at) VALUES (?, ?, ?)",
        [channel, day, now],
    )
    return cursor.rowcount == 1
