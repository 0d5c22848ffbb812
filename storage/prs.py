"""Pull requests, the status promobot last gave each, and merge freezes."""

from typing import Any

from sqlite_utils import Database

from storage.rows import select, select_one


def upsert_pull_request(db: Database, pr: dict[str, Any]) -> None:
    """Store a pull request's newest known state (keyed by repository and number)."""
    db.execute(
        "INSERT INTO pull_requests (repo_id, number, head_sha, base_ref, title, author, state,"
        " draft, updated_at) VALUES (:repo_id, :number, :head_sha, :base_ref, :title, :author,"
        " :state, :draft, :updated_at) ON CONFLICT (repo_id, number) DO UPDATE SET"
        " head_sha = excluded.head_sha, base_ref = excluded.base_ref, title = excluded.title,"
        " author = excluded.author, state = excluded.state, draft = excluded.draft,"
        " updated_at = excluded.updated_at",
        pr,
    )


def open_pull_requests(db: Database, repo_id: int, base_ref: str) -> list[dict[str, Any]]:
    """Return the open, non-draft pull requests into `base_ref`, by number."""
    return select(
        db,
        "SELECT * FROM pull_requests WHERE repo_id = ? AND state = 'open' AND draft = 0"
        " AND base_ref = ? ORDER BY number",
        [repo_id, base_ref],
    )


def last_status(db: Database, repo_id: int, number: int) -> dict[str, Any] | None:
    """Return the status last queued for a pull request."""
    return select_one(
        db, "SELECT * FROM pr_statuses WHERE repo_id = ? AND number = ?", [repo_id, number]
    )


def remember_status(db: Database, status: dict[str, Any]) -> None:
    """Record the status just queued for a pull request."""
    db.execute(
        "INSERT OR REPLACE INTO pr_statuses (repo_id, number, sha, state, description,"
        " target_url, queued_at) VALUES (:repo_id, :number, :sha, :state, :description,"
        " :target_url, :queued_at)",
        status,
    )


def open_freeze(db: Database, repo_id: int) -> dict[str, Any] | None:
    """Return the merge freeze in place on a repository, or None."""
    return select_one(
        db,
        "SELECT * FROM freezes WHERE repo_id = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
        [repo_id],
    )


def start_freeze(db: Database, repo_id: int, *, by: str, reason: str, now: float) -> int:
    """Record a merge freeze starting; return its id."""
    cursor = db.execute(
        "INSERT INTO freezes (repo_id, frozen_by, reason, started_at) VALUES (?, ?, ?, ?)",
        [repo_id, by, reason, now],
    )
    return int(cursor.lastrowid or 0)


def end_freeze(db: Database, freeze_id: int, *, by: str, now: float) -> None:
    """Record a merge freeze being lifted."""
    db.execute("UPDATE freezes SET ended_at = ?, ended_by = ? WHERE id = ?", [now, by, freeze_id])


def last_deployed_number(db: Database, repo_id: int, stage: str) -> int | None:
    """Return the number of the build last deployed successfully to `stage`."""
    row = db.conn.execute(
        "SELECT b.number FROM deployments d JOIN builds b ON b.id = d.build_id"
        " WHERE d.repo_id = ? AND d.stage = ? AND d.state = 'success'"
        " ORDER BY coalesce(d.finished_at, d.updated_at) DESC, d.id DESC LIMIT 1",
        [repo_id, stage],
    ).fetchone()
    return row[0] if row else None


def builds_newer_than(db: Database, repo_id: int, number: int) -> int:
    """Count the builds numbered above `number`."""
    row = db.conn.execute(
        "SELECT count(*) FROM builds WHERE repo_id = ? AND number > ?", [repo_id, number]
    ).fetchone()
    return int(row[0])


def red_run(db: Database, repo_id: int) -> list[dict[str, Any]]:
    """Return the builds with a final CI state since the last green one, newest first.

    The list starts with the newest build whose CI finished and stops at (and
    includes) the newest green build, so callers see the whole current red run.
    """
    rows = db.conn.execute(
        "SELECT id, number, sha, ci_state, ci_changed_at, html_url FROM builds"
        " WHERE repo_id = ? AND ci_state IN ('success', 'failure')"
        " AND number >= coalesce((SELECT max(number) FROM builds WHERE repo_id = ?"
        " AND ci_state = 'success'), 0) ORDER BY number DESC",
        [repo_id, repo_id],
    ).fetchall()
    keys = ("id", "number", "sha", "ci_state", "ci_changed_at", "html_url")
    return [dict(zip(keys, row, strict=True)) for row in rows]
