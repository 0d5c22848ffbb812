"""What a build's message shows: each stage's latest deployment, rollbacks, approvals asked."""

from typing import Any

from sqlite_utils import Database

from storage.rows import select_one


def deployment_states(db: Database, build_id: int) -> list[tuple[int, str, str, float]]:
    """Return (id, stage, state, created_at) of every deployment of a build, oldest first."""
    rows = db.execute(
        "SELECT id, stage, state, created_at FROM deployments WHERE build_id = ? ORDER BY id",
        [build_id],
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def stages_waiting(db: Database, build_id: int) -> list[tuple[str, str]]:
    """Return (stage, state) of this build's promotions waiting for approval or their turn."""
    rows = db.execute(
        "SELECT stage, state FROM promotions WHERE build_id = ? AND state IN ('waiting', 'queued')"
        " ORDER BY id",
        [build_id],
    )
    return [(r[0], r[1]) for r in rows]


def rolled_back_build(db: Database, deployment_id: int) -> int | None:
    """Return the build a rollback deployment replaces in its stage, if it is a rollback."""
    row = db.execute(
        "SELECT old.build_id FROM deployments d JOIN promotions p ON p.id = d.promotion_id"
        " JOIN deployments old ON old.repo_id = d.repo_id AND old.stage = d.stage"
        " AND old.id < d.id AND old.build_id != d.build_id"
        " WHERE d.id = ? AND p.rollback = 1 ORDER BY old.id DESC LIMIT 1",
        [deployment_id],
    ).fetchone()
    return row[0] if row else None


def has_approvals(db: Database, promotion_id: int) -> bool:
    """Say whether anyone approved a promotion."""
    row = db.execute("SELECT 1 FROM approvals WHERE promotion_id = ? LIMIT 1", [promotion_id])
    return row.fetchone() is not None


def newest_promotion(db: Database, build_id: int, stage: str | None) -> dict[str, Any] | None:
    """Return the build's newest promotion into `stage`."""
    return select_one(
        db,
        "SELECT * FROM promotions WHERE build_id = ? AND stage = ? ORDER BY id DESC LIMIT 1",
        [build_id, stage],
    )
