"""Read-only queries behind the dashboard: what is where, what waits, and each build's journey."""

import json
from typing import Any

from sqlite_utils import Database

from storage.pipeline import IN_FLIGHT, LAST_SUCCESS, OPEN_LOCK, STILL_OUT
from storage.rows import select


def live_deployments(db: Database, repo_id: int, stages: list[str]) -> dict[str, dict[str, Any]]:
    """Return, per stage, the deployment live there (as /ship status says) with its build."""
    live: dict[str, dict[str, Any]] = {}
    for stage in stages:  # one seek in deployments_success_seq each, however long the history
        rows = select(
            db,
            "SELECT d.stage, d.id AS deployment_id, d.state, d.created_at AS requested_at,"
            " d.succeeded_at AS live_at, d.requested_by,"
            " b.id, b.number, b.sha, b.message, b.author, b.html_url, b.pushed_at,"
            " b.ci_state FROM deployments d JOIN builds b ON b.id = d.build_id"
            f" WHERE d.repo_id = ? AND d.stage = ? AND {LAST_SUCCESS}",
            [repo_id, stage],
        )
        if rows:
            live[stage] = rows[0]
    return live


def deployments_in_flight(db: Database, repo_id: int) -> list[dict[str, Any]]:
    """Return deployments not finished yet, with their build number."""
    marks = ", ".join("?" for _ in IN_FLIGHT)
    return select(
        db,
        "SELECT d.stage, d.state, d.created_at, d.requested_by, b.number, b.sha"
        " FROM deployments d JOIN builds b ON b.id = d.build_id"
        f" WHERE d.repo_id = ? AND d.state IN ({marks}) ORDER BY d.id",
        [repo_id, *IN_FLIGHT],
    )


def open_locks(db: Database, repo_id: int, now: float) -> list[dict[str, Any]]:
    """Return the locks in force: not lifted and not expired."""
    return select(
        db,
        "SELECT stage, locked_by, reason, created_at, expires_at FROM locks"
        f" WHERE repo_id = ? AND {OPEN_LOCK}"
        " ORDER BY id",
        [repo_id, now],
    )


def open_freezes(db: Database, repo_id: int) -> list[dict[str, Any]]:
    """Return the merge freezes in force."""
    return select(
        db,
        "SELECT frozen_by, reason, started_at FROM freezes"
        " WHERE repo_id = ? AND ended_at IS NULL ORDER BY id",
        [repo_id],
    )


def waiting_promotions(db: Database, repo_id: int, now: float) -> list[dict[str, Any]]:
    """Return promotions waiting for approval, with their build and who approved so far."""
    rows = select(
        db,
        "SELECT p.id, p.stage, p.requested_by, p.created_at, p.expires_at, b.number, b.sha,"
        " (SELECT group_concat(user_id, ', ') FROM approvals a WHERE a.promotion_id = p.id)"
        " AS approved_by"
        " FROM promotions p JOIN builds b ON b.id = p.build_id"
        " WHERE p.repo_id = ? AND p.state = 'waiting' AND (p.expires_at IS NULL"
        " OR p.expires_at > ?) ORDER BY p.id",
        [repo_id, now],
    )
    return rows


def recent_builds(db: Database, repo_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the newest builds of a repository, newest first."""
    return select(
        db,
        "SELECT id, number, sha, message, author, html_url, pushed_at, ci_state,"
        " ci_changed_at FROM builds WHERE repo_id = ? ORDER BY number DESC LIMIT ?",
        [repo_id, limit],
    )


def deployments_of(db: Database, build_ids: list[int]) -> list[dict[str, Any]]:
    """Return every deployment of the given builds, oldest first."""
    if not build_ids:
        return []
    marks = ", ".join("?" for _ in build_ids)
    return select(
        db,
        "SELECT id, build_id, stage, state, promotion_id, requested_by, created_at,"
        " succeeded_at, updated_at, finished_at FROM deployments"
        f" WHERE build_id IN ({marks}) ORDER BY id",
        build_ids,
    )


def promotions_of(db: Database, build_id: int) -> list[dict[str, Any]]:
    """Return a build's promotions, oldest first."""
    return select(
        db,
        "SELECT id, stage, requested_by, state, forced_reason, rollback, created_at,"
        " decided_at, decided_by, reason FROM promotions WHERE build_id = ? ORDER BY id",
        [build_id],
    )


def checks_of(db: Database, repo_id: int, sha: str) -> list[dict[str, Any]]:
    """Return the newest report of every check on a sha, by name."""
    return select(
        db,
        "SELECT context, kind, state, description, target_url, reported_at"
        " FROM check_reports WHERE repo_id = ? AND sha = ? ORDER BY context",
        [repo_id, sha],
    )


def events_of(db: Database, build_id: int) -> list[dict[str, Any]]:
    """Return a build's event log, oldest first, details decoded."""
    rows = select(
        db,
        "SELECT at, actor, action, stage, reason, forced, detail FROM event_log"
        " WHERE build_id = ? ORDER BY id",
        [build_id],
    )
    for row in rows:
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows


def promotions_of_builds(db: Database, build_ids: list[int]) -> list[dict[str, Any]]:
    """Return the promotions of the given builds, with how many approvals each got."""
    if not build_ids:
        return []
    marks = ", ".join("?" for _ in build_ids)
    return select(
        db,
        "SELECT p.id, p.build_id, p.stage, p.state, p.rollback, p.replaces_build_id,"
        " p.created_at, p.decided_at,"
        " (SELECT count(*) FROM approvals a WHERE a.promotion_id = p.id) AS approvals"
        f" FROM promotions p WHERE p.build_id IN ({marks}) ORDER BY p.id",
        build_ids,
    )


def rollbacks_of(db: Database, build_ids: list[int]) -> list[dict[str, Any]]:
    """Return when rollbacks took the given builds out of a stage they have not re-entered."""
    if not build_ids:
        return []
    marks = ", ".join("?" for _ in build_ids)
    return select(
        db,
        "SELECT p.replaces_build_id AS build_id, p.stage, p.created_at AS at,"
        " b.number AS to_number FROM promotions p JOIN builds b ON b.id = p.build_id"
        f" WHERE p.rollback = 1 AND p.replaces_build_id IN ({marks}) AND {STILL_OUT}"
        " ORDER BY p.id",
        build_ids,
    )


def successes_since(db: Database, repo_id: int, since: float) -> list[dict[str, Any]]:
    """Return the successful deployments since `since`, oldest first (who replaced whom)."""
    return select(
        db,
        "SELECT d.stage, d.build_id, b.number, d.succeeded_at FROM deployments d"
        " JOIN builds b ON b.id = d.build_id WHERE d.repo_id = ? AND d.succeeded_at >= ?"
        " ORDER BY d.success_seq",
        [repo_id, since],
    )


def locks_since(db: Database, repo_id: int, since: float, now: float) -> list[dict[str, Any]]:
    """Return the spans stages were locked since `since`: (stage, start, end)."""
    return select(
        db,
        "SELECT stage, created_at AS start,"
        " min(coalesce(lifted_at, ?), coalesce(expires_at, ?)) AS end FROM locks"
        " WHERE repo_id = ? AND coalesce(lifted_at, expires_at, ?) >= ? ORDER BY id",
        [now, now, repo_id, now, since],
    )
