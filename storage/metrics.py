"""What the delivery metrics read: one repository's builds, commits, deployments, rollbacks
and locks from a time on (plus every build production has not yet run, for lead time)."""

from typing import Any

from sqlite_utils import Database

from storage.rows import select

BUILD = "b.id, b.number, b.sha, b.message, b.pushed_at, b.ci_state, b.ci_changed_at"
DEPLOYMENT = (
    "d.id, d.build_id, d.stage, d.state, d.created_at, d.succeeded_at, d.finished_at,"
    " d.success_seq,"
    " coalesce(p.rollback, 0) AS rollback, p.created_at AS asked_at, p.decided_at,"
    " (SELECT count(*) FROM approvals a WHERE a.promotion_id = p.id) AS approvals"
    " FROM deployments d LEFT JOIN promotions p ON p.id = d.promotion_id"
)


def _tuples(db: Database, sql: str, params: list[Any]) -> list[tuple]:
    # Tens of thousands of rows on a busy repository: plain tuples, in the SELECT's order.
    return db.conn.execute(sql, params).fetchall()


def production_floor(db: Database, repo_id: int, stage: str, before: float) -> int:
    """Return the highest build number that went live in `stage` before `before` (0: none)."""
    row = db.conn.execute(
        "SELECT max(b.number) FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE d.repo_id = ? AND d.stage = ? AND d.succeeded_at < ?",
        [repo_id, stage, before],
    ).fetchone()
    return int(row[0] or 0)


def first_number_since(db: Database, repo_id: int, since: float) -> int | None:
    """Return the lowest build number pushed at or after `since`, or None."""
    row = db.conn.execute(
        "SELECT min(number) FROM builds WHERE repo_id = ? AND pushed_at >= ?", [repo_id, since]
    ).fetchone()
    return row[0]


def delivery_rows(db: Database, repo_id: int, stage: str, since: float) -> dict[str, Any]:
    """Return the rows the metrics of `repo_id` from `since` need; `stage` is production."""
    # Builds from the one after production's newest before `since` (their commits are the
    # lead time of the next production deployment), as tuples in BUILD's order; their commits
    # as (sha, build_id, message, committed_at); deployments created since, or of those builds;
    # rollbacks and locks that were on since.
    floor = production_floor(db, repo_id, stage, since)
    first = first_number_since(db, repo_id, since)
    low = min(floor, first - 1) if first is not None else floor
    deployments = {
        row["id"]: row
        for row in select(
            db, f"SELECT {DEPLOYMENT} WHERE d.repo_id = ? AND d.created_at >= ?", [repo_id, since]
        )
        + select(
            db,
            f"SELECT {DEPLOYMENT} JOIN builds b ON b.id = d.build_id"
            " WHERE b.repo_id = ? AND b.number > ?",
            [repo_id, low],
        )
    }
    return {
        "floor": floor,
        "builds": _tuples(
            db, f"SELECT {BUILD} FROM builds b WHERE b.repo_id = ? AND b.number > ?", [repo_id, low]
        ),
        "commits": _tuples(
            db,
            "SELECT c.sha, c.build_id, c.message, c.committed_at FROM builds b"
            " JOIN commits c ON c.build_id = b.id WHERE b.repo_id = ? AND b.number > ?",
            [repo_id, low],
        ),
        "deployments": sorted(deployments.values(), key=lambda d: d["id"]),
        "rollbacks": select(
            db,
            "SELECT stage, created_at AS at, replaces_build_id, rollback_seq AS seq FROM promotions"
            " WHERE repo_id = ? AND rollback = 1 AND created_at >= ?",
            [repo_id, since],
        ),
        "locks": select(
            db,
            "SELECT stage, created_at AS start, lifted_at, expires_at FROM locks"
            " WHERE repo_id = ? AND coalesce(lifted_at, expires_at, 1e18) >= ?",
            [repo_id, since],
        ),
    }
