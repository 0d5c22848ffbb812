"""Repositories, installations, builds and the check reports that decide a build's CI state."""

from typing import Any

from sqlite_utils import Database

from storage.rows import select, select_one

BUILD_COLUMNS = (
    "id",
    "repo_id",
    "number",
    "sha",
    "message",
    "author",
    "html_url",
    "commits",
    "pushed_at",
    "ci_state",
    "ci_changed_at",
)
_SELECT_BUILD = f"SELECT {', '.join(BUILD_COLUMNS)} FROM builds"


def _build(row: tuple | None) -> dict[str, Any] | None:
    return dict(zip(BUILD_COLUMNS, row, strict=True)) if row else None


def upsert_installation(
    db: Database, *, installation_id: int, account: str, target_type: str | None, now: float
) -> None:
    """Record an installation, reviving it if it had been deleted."""
    db.execute(
        "INSERT INTO installations (id, account, target_type, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET account = excluded.account, deleted_at = NULL",
        [installation_id, account, target_type, now],
    )


def set_installation_state(
    db: Database, installation_id: int, column: str, at: float | None
) -> None:
    """Set `suspended_at` or `deleted_at` of an installation."""
    if column not in ("suspended_at", "deleted_at"):
        raise ValueError(column)
    db.execute(f"UPDATE installations SET {column} = ? WHERE id = ?", [at, installation_id])


def upsert_repository(
    db: Database, *, repo_id: int, full_name: str, html_url: str, installation_id: int | None
) -> None:
    """Record a repository by its id, keeping its build counter; a rename updates the name.

    GitHub's id is the repository; its owner/name can move to another id (a repository
    deleted and re-created, or renamed and another one given the old name). The newest
    delivery wins the name: an older record holding it is renamed `owner/name (id N)`.
    """
    db.execute(
        "UPDATE repositories SET full_name = full_name || ' (id ' || id || ')'"
        " WHERE full_name = ? AND id != ?",
        [full_name, repo_id],
    )
    db.execute(
        "INSERT INTO repositories (id, full_name, html_url, installation_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET full_name = excluded.full_name,"
        " html_url = excluded.html_url,"
        " installation_id = coalesce(excluded.installation_id, installation_id)",
        [repo_id, full_name, html_url, installation_id],
    )


def repository(db: Database, repo_id: int) -> dict[str, Any] | None:
    """Return one repository by id."""
    return select_one(db, "SELECT * FROM repositories WHERE id = ?", [repo_id])


def repository_by_name(db: Database, full_name: str) -> dict[str, Any] | None:
    """Return one repository by owner/name, ignoring case."""
    return select_one(db, "SELECT * FROM repositories WHERE full_name = ?", [full_name])


def repositories(db: Database) -> list[dict[str, Any]]:
    """Return every repository, by name."""
    return select(db, "SELECT * FROM repositories ORDER BY full_name")


def create_build(
    db: Database,
    *,
    repo_id: int,
    sha: str,
    message: str,
    author: str,
    html_url: str,
    commits: int,
    pushed_at: float,
) -> dict[str, Any] | None:
    """Create the next-numbered build for `sha`; return None if the sha already is a build."""
    if build_by_sha(db, repo_id, sha):
        return None
    number = db.execute(
        "UPDATE repositories SET last_build_number = last_build_number + 1 WHERE id = ?"
        " RETURNING last_build_number",
        [repo_id],
    ).fetchone()[0]
    cursor = db.execute(
        "INSERT INTO builds (repo_id, number, sha, message, author, html_url, commits,"
        " pushed_at, ci_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [repo_id, number, sha, message, author, html_url, commits, pushed_at, pushed_at],
    )
    return build(db, int(cursor.lastrowid or 0))


def build(db: Database, build_id: int) -> dict[str, Any] | None:
    """Return one build by id."""
    return _build(db.conn.execute(f"{_SELECT_BUILD} WHERE id = ?", [build_id]).fetchone())


def build_by_sha(db: Database, repo_id: int, sha: str) -> dict[str, Any] | None:
    """Return the build of a full sha."""
    return _build(
        db.conn.execute(f"{_SELECT_BUILD} WHERE repo_id = ? AND sha = ?", [repo_id, sha]).fetchone()
    )


def build_by_number(db: Database, repo_id: int, number: int) -> dict[str, Any] | None:
    """Return the build numbered `number` in a repository."""
    return _build(
        db.conn.execute(
            f"{_SELECT_BUILD} WHERE repo_id = ? AND number = ?", [repo_id, number]
        ).fetchone()
    )


def builds_by_prefix(db: Database, repo_id: int, prefix: str, limit: int = 3) -> list[dict]:
    """Return builds whose sha starts with `prefix` (a short sha may match several)."""
    rows = db.conn.execute(
        f"{_SELECT_BUILD} WHERE repo_id = ? AND sha >= ? AND sha < ? ORDER BY number DESC LIMIT ?",
        [repo_id, prefix.lower(), prefix.lower() + "g", limit],
    ).fetchall()
    return [_build(row) for row in rows]  # type: ignore[misc]


def latest_builds(db: Database, repo_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Return the newest builds of a repository, newest first."""
    rows = db.conn.execute(
        f"{_SELECT_BUILD} WHERE repo_id = ? ORDER BY number DESC LIMIT ?", [repo_id, limit]
    ).fetchall()
    return [_build(row) for row in rows]  # type: ignore[misc]


def set_ci_state(db: Database, build_id: int, state: str, at: float) -> None:
    """Store a build's new CI state and when it changed."""
    db.execute(
        "UPDATE builds SET ci_state = ?, ci_changed_at = ? WHERE id = ?", [state, at, build_id]
    )


def check_report(db: Database, repo_id: int, sha: str, context: str) -> dict[str, Any] | None:
    """Return the newest stored report of one context on one sha."""
    return select_one(
        db,
        "SELECT * FROM check_reports WHERE repo_id = ? AND sha = ? AND context = ?",
        [repo_id, sha, context],
    )


def save_check_report(db: Database, report: dict[str, Any]) -> None:
    """Store `report` as the newest of its (repo, sha, context); log a change of state."""
    previous = check_report(db, report["repo_id"], report["sha"], report["context"])
    db.execute(
        "INSERT INTO check_reports (repo_id, sha, context, kind, state, description, target_url,"
        " reported_at) VALUES (:repo_id, :sha, :context, :kind, :state, :description,"
        " :target_url, :reported_at) ON CONFLICT (repo_id, sha, context) DO UPDATE SET"
        " kind = excluded.kind, state = excluded.state, description = excluded.description,"
        " target_url = excluded.target_url, reported_at = excluded.reported_at",
        report,
    )
    if previous is None or previous["state"] != report["state"]:
        db.execute(
            "INSERT INTO check_transitions (repo_id, sha, context, state, target_url, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                report["repo_id"],
                report["sha"],
                report["context"],
                report["state"],
                report["target_url"],
                report["reported_at"],
            ],
        )


def check_reports(db: Database, repo_id: int, sha: str) -> list[dict[str, Any]]:
    """Return every context's newest report on a sha, by context name."""
    return select(
        db,
        "SELECT * FROM check_reports WHERE repo_id = ? AND sha = ? ORDER BY context",
        [repo_id, sha],
    )
