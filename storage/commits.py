"""The commits each push carried: their own timestamps and messages, for lead time and reverts."""

from collections.abc import Iterable

from sqlite_utils import Database


def add_commits(
    db: Database, *, repo_id: int, build_id: int, commits: Iterable[tuple[str, str, float]]
) -> None:
    """Record (sha, message, committed_at) of each commit a build's push carried, once each."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO commits (repo_id, sha, build_id, message, committed_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(repo_id, sha, build_id, message, at) for sha, message, at in commits],
    )


def backfill_commits(db: Database) -> int:
    """Read the commits of every push body still stored into `commits`; return how many."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO commits (repo_id, sha, build_id, message, committed_at)"
        " SELECT b.repo_id, json_extract(c.value, '$.id'), b.id,"
        " coalesce(json_extract(c.value, '$.message'), ''),"
        " coalesce(unixepoch(json_extract(c.value, '$.timestamp')), b.pushed_at)"
        " FROM deliveries d"
        " JOIN builds b ON b.sha = json_extract(CAST(d.body AS TEXT), '$.after')"
        " AND b.repo_id = json_extract(CAST(d.body AS TEXT), '$.repository.id'),"
        " json_each(CAST(d.body AS TEXT), '$.commits') c"
        " WHERE d.event = 'push' AND length(d.body) > 0 AND json_valid(CAST(d.body AS TEXT))"
        " AND json_extract(c.value, '$.id') IS NOT NULL"
    )
    return cursor.rowcount
