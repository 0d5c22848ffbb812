"""Promotions, approvals, deployments and locks: the records the gates are decided from."""

from typing import Any

from sqlite_utils import Database

from storage.rows import insert, select, select_one, update

# The one in-flight set: a deployment in one of these states holds its stage.
IN_FLIGHT = ("requested", "queued", "pending", "in_progress")
# The one open-lock predicate: neither lifted nor expired (bind the time once).
OPEN_LOCK = "lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
FAILED = ("failure", "error")
STALE_SECONDS = 3600.0
# The one rule for the build live in a stage: the success recorded last, by the stage order's
# sequence (storage/stage_order.py), not the latest clock reading: two can share one.
LAST_SUCCESS = "d.success_seq IS NOT NULL ORDER BY d.success_seq DESC LIMIT 1"
# A rollback counts against the build it took out until that build goes live there again.
STILL_OUT = (
    "p.rollback_seq > coalesce((SELECT max(s.success_seq) FROM deployments s"
    " WHERE s.build_id = p.replaces_build_id AND s.stage = p.stage), 0)"
)


def add_promotion(db: Database, **row: Any) -> int:
    """Insert a promotion; return its id."""
    return insert(db, "promotions", row)


def promotion(db: Database, promotion_id: int) -> dict[str, Any] | None:
    """Return one promotion by id."""
    return select_one(db, "SELECT * FROM promotions WHERE id = ?", [promotion_id])


def set_promotion(db: Database, promotion_id: int, **values: Any) -> None:
    """Update columns of one promotion."""
    update(db, "promotions", promotion_id, values)


def open_promotions(db: Database, repo_id: int, stage: str | None = None) -> list[dict]:
    """Return promotions still waiting for approval or for the stage, oldest first."""
    sql = "SELECT * FROM promotions WHERE repo_id = ? AND state IN ('waiting', 'queued')"
    params: list[Any] = [repo_id]
    if stage:
        sql += " AND stage = ?"
        params.append(stage)
    return select(db, sql + " ORDER BY id", params)


def due_promotions(db: Database, now: float) -> list[dict[str, Any]]:
    """Return promotions waiting for approval whose time ran out."""
    return select(
        db,
        "SELECT * FROM promotions WHERE state = 'waiting' AND expires_at <= ? ORDER BY id",
        [now],
    )


def approvals(db: Database, promotion_id: int) -> list[str]:
    """Return who approved a promotion, in order."""
    rows = db.execute(
        "SELECT user_id FROM approvals WHERE promotion_id = ? ORDER BY at, user_id", [promotion_id]
    ).fetchall()
    return [r[0] for r in rows]


def add_approval(db: Database, promotion_id: int, user_id: str, at: float) -> bool:
    """Record an approval once per person; return True when it is new."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO approvals (promotion_id, user_id, at) VALUES (?, ?, ?)",
        [promotion_id, user_id, at],
    )
    return cursor.rowcount == 1


def add_deployment(db: Database, **row: Any) -> int:
    """Insert a deployment; return its id."""
    return insert(db, "deployments", row)


def deployment(db: Database, deployment_id: int) -> dict[str, Any] | None:
    """Return one deployment by its local id."""
    return select_one(db, "SELECT * FROM deployments WHERE id = ?", [deployment_id])


def deployment_for_status(
    db: Database, github_id: int, promotion_id: int | None
) -> dict[str, Any] | None:
    """Find our deployment by GitHub's id, else by the promotion named in its payload."""
    found = select_one(db, "SELECT * FROM deployments WHERE github_id = ?", [github_id])
    if found or promotion_id is None:
        return found
    return select_one(
        db,
        "SELECT * FROM deployments WHERE promotion_id = ? AND github_id IS NULL"
        " ORDER BY id DESC LIMIT 1",
        [promotion_id],
    )


def set_deployment(db: Database, deployment_id: int, **values: Any) -> None:
    """Update columns of one deployment."""
    update(db, "deployments", deployment_id, values)


def in_flight(db: Database, repo_id: int, stage: str, now: float) -> dict[str, Any] | None:
    """Return the deployment into `stage` that has not finished yet, if any.

    A deployment GitHub refused to create (its outbox row failed), or one nothing
    reported on for STALE_SECONDS, no longer holds the stage: it would hold it forever.
    """
    # `+d.id` keeps SQLite on the (repo_id, stage, state) index: the few deployments in
    # flight are sorted, instead of the stage's whole history being walked in id order.
    marks = ", ".join("?" for _ in IN_FLIGHT)
    return select_one(
        db,
        f"SELECT d.*, b.number FROM deployments d JOIN builds b ON b.id = d.build_id"
        f" WHERE d.repo_id = ? AND d.stage = ? AND d.state IN ({marks}) AND d.updated_at > ?"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.state = 'failed'"
        " AND o.method = 'github.request' AND json_extract(o.payload, '$.deployment_id') = d.id)"
        " ORDER BY +d.id LIMIT 1",
        [repo_id, stage, *IN_FLIGHT, now - STALE_SECONDS],
    )


def current(db: Database, repo_id: int, stage: str) -> dict[str, Any] | None:
    """Return the deployment that succeeded last in a stage (the build there now) and its build."""
    return select_one(
        db,
        "SELECT d.*, b.number, b.sha FROM deployments d JOIN builds b ON b.id = d.build_id"
        f" WHERE d.repo_id = ? AND d.stage = ? AND {LAST_SUCCESS}",
        [repo_id, stage],
    )


def previous_good(db: Database, repo_id: int, stage: str, before: dict) -> dict | None:
    """Return the last other build that succeeded in `stage` before the deployment `before`."""
    return select_one(
        db,
        "SELECT d.*, b.number, b.sha FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE d.repo_id = ? AND d.stage = ? AND d.success_seq < ? AND d.build_id != ?"
        " ORDER BY d.success_seq DESC LIMIT 1",
        [repo_id, stage, before["success_seq"], before["build_id"]],
    )


def build_deployments(db: Database, build_id: int, stage: str) -> list[dict[str, Any]]:
    """Return every deployment of one build into one stage, oldest first."""
    return select(
        db,
        "SELECT * FROM deployments WHERE build_id = ? AND stage = ? ORDER BY id",
        [build_id, stage],
    )


def rolled_back(db: Database, repo_id: int, stage: str, build_id: int) -> bool:
    """Say whether a rollback took `build_id` out of `stage` after it last went live there."""
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM promotions p WHERE p.repo_id = ? AND p.stage = ?"
        f" AND p.rollback = 1 AND p.replaces_build_id = ? AND {STILL_OUT})",
        [repo_id, stage, build_id],
    ).fetchone()
    return bool(row[0])


def open_lock(db: Database, repo_id: int, stage: str, now: float) -> dict[str, Any] | None:
    """Return the newest lock on a stage that is neither lifted nor expired."""
    return select_one(
        db,
        f"SELECT * FROM locks WHERE repo_id = ? AND stage = ? AND {OPEN_LOCK}"
        " ORDER BY id DESC LIMIT 1",
        [repo_id, stage, now],
    )


def add_lock(db: Database, **row: Any) -> int:
    """Insert a lock; return its id."""
    return insert(db, "locks", row)


def lift_locks(db: Database, repo_id: int, stage: str, by: str, now: float) -> int:
    """Lift every open lock on a stage; return how many were open."""
    cursor = db.execute(
        f"UPDATE locks SET lifted_at = ?, lifted_by = ? WHERE repo_id = ? AND stage = ?"
        f" AND {OPEN_LOCK}",
        [now, by, repo_id, stage, now],
    )
    return cursor.rowcount


def history(db: Database, repo_id: int, stage: str | None, limit: int = 15) -> list[dict]:
    """Return the newest event log entries of a repository (or one stage), newest first."""
    sql = (
        # Reads (status, history, metrics, where) are noise in a history.
        "SELECT e.*, b.number FROM event_log e LEFT JOIN builds b ON b.id = e.build_id"
        " WHERE e.repo_id = ? AND e.action NOT IN ('status', 'history', 'metrics', 'where')"
    )
    params: list[Any] = [repo_id]
    if stage:
        sql += " AND e.stage = ?"
        params.append(stage)
    return select(db, sql + " ORDER BY e.id DESC LIMIT ?", [*params, limit])


def locked_stages(db: Database, repo_id: int, now: float) -> set[str]:
    """Return the stages of a repository under a lock in force."""
    rows = db.execute(f"SELECT stage FROM locks WHERE repo_id = ? AND {OPEN_LOCK}", [repo_id, now])
    return {row[0] for row in rows}


def approval_message(db: Database, promotion_id: int) -> tuple[str, str] | None:
    """Return (channel ID, ts) of a promotion's approval message once it is posted, or None."""
    row = db.execute(
        "SELECT channel_id, ts FROM slack_messages WHERE key = ?", [f"promotion:{promotion_id}"]
    ).fetchone()
    return (row[0], row[1]) if row else None


def reached_since(db: Database, repo_id: int, stage: str, number: int) -> float | None:
    """Return since when a build numbered `number` or later has been live in `stage`.

    The first success of such a build after the last success of an older one: a
    rollback below `number` starts the clock again.
    """
    row = db.execute(
        "SELECT min(d.succeeded_at) FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE d.repo_id = ? AND d.stage = ? AND b.number >= ? AND d.success_seq > coalesce("
        "  (SELECT max(o.success_seq) FROM deployments o JOIN builds ob ON ob.id = o.build_id"
        "   WHERE o.repo_id = ? AND o.stage = ? AND ob.number < ?), 0)",
        [repo_id, stage, number, repo_id, stage, number],
    ).fetchone()
    return row[0] if row else None


def stage_history(db: Database, repo_id: int, stage: str) -> list[dict[str, Any]]:
    """Return each build that was live in a stage, with when it last went live, oldest first."""
    return select(
        db,
        "SELECT d.build_id, b.number, max(d.succeeded_at) AS since, max(d.success_seq) AS seq"
        " FROM deployments d JOIN builds b ON b.id = d.build_id WHERE d.repo_id = ?"
        " AND d.stage = ? AND d.success_seq IS NOT NULL GROUP BY d.build_id ORDER BY seq",
        [repo_id, stage],
    )


def rollbacks(db: Database, repo_id: int, stage: str) -> list[dict[str, Any]]:
    """Return the rollbacks of a stage (which build each took out, who, when, why), oldest first."""
    return select(
        db,
        "SELECT p.replaces_build_id, b.number, p.requested_by, p.created_at, p.reason"
        " FROM promotions p JOIN builds b ON b.id = p.replaces_build_id"
        " WHERE p.repo_id = ? AND p.stage = ? AND p.rollback = 1 ORDER BY p.id",
        [repo_id, stage],
    )


def last_failed(db: Database, repo_id: int, stage: str) -> dict[str, Any] | None:
    """Return the newest failed deployment into a stage, with its build number."""
    marks = ", ".join("?" for _ in FAILED)
    # max(id) seeks the end of each state's range in deployments_stage_state; ORDER BY id
    # DESC LIMIT 1 walked back through every success since the last failure.
    return select_one(
        db,
        "SELECT d.*, b.number FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE d.id = (SELECT max(id) FROM deployments"
        f" WHERE repo_id = ? AND stage = ? AND state IN ({marks}))",
        [repo_id, stage, *FAILED],
    )


def open_stages(db: Database) -> list[tuple[int, str]]:
    """Return every (repository, stage) with an open promotion."""
    rows = db.execute(
        "SELECT DISTINCT repo_id, stage FROM promotions WHERE state IN ('waiting', 'queued')"
        " ORDER BY repo_id, stage"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def green_after(db: Database, repo_id: int, number: int) -> tuple[int, int | None, int | None]:
    """Count the green builds numbered above `number`; with the first and last of their numbers."""
    # Along builds_ci: a count of index entries, and a seek to each end (min and max in one
    # aggregate would visit every entry once more).
    green = "FROM builds WHERE repo_id = :repo AND ci_state = 'success' AND number > :number"
    count, first, last = db.execute(
        f"SELECT (SELECT count(*) {green}), (SELECT number {green} ORDER BY number LIMIT 1),"
        f" (SELECT number {green} ORDER BY number DESC LIMIT 1)",
        {"repo": repo_id, "number": number},
    ).fetchone()
    return count, first, last
