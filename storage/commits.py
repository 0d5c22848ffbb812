"""The commits each push carried: for lead time and reverts, what a promotion carries, and where."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlite_utils import Database

from storage.rows import select, select_one

# Past this many commits in a span, its people are counted person by person from the
# commits_author index (two seeks per person who ever committed) rather than commit by commit.
PEOPLE_BY_PERSON_AFTER = 2000
COMMIT_COLUMNS = ("build_id", "sha", "message", "author", "pr")
# A commit with the number of the build that carried it (`/ship where`).
_WITH_BUILD = "SELECT c.sha, c.message, c.author, c.pr, b.number FROM commits c"
_WITH_BUILD += " JOIN builds b ON b.id = c.build_id"


def add_commits(
    db: Database,
    *,
    repo_id: int,
    build_id: int,
    commits: Iterable[tuple[str, str, float, str, int | None]],
) -> None:
    """Record (sha, message, committed_at, author, pr) of each commit a push carried, once each."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO commits (repo_id, sha, build_id, message, committed_at, author, pr)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(repo_id, commit[0], build_id, *commit[1:]) for commit in commits],
    )


def mark_capped(db: Database, build_id: int) -> None:
    """Note that a build's push carried GitHub's cap of commits (there may have been more)."""
    db.execute("UPDATE builds SET commits_capped = 1 WHERE id = ?", [build_id])


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


def backfill_authors(db: Database) -> None:
    """Fill the authors (from the push bodies still stored) and PR numbers of kept commits."""
    db.executescript(
        """
        CREATE TEMP TABLE push_authors AS SELECT json_extract(c.value, '$.id') AS sha,
            coalesce(json_extract(c.value, '$.author.username'),
                     json_extract(c.value, '$.author.name'), '') AS author
            FROM deliveries d, json_each(CAST(d.body AS TEXT), '$.commits') c
            WHERE d.event = 'push' AND length(d.body) > 0 AND json_valid(CAST(d.body AS TEXT));
        CREATE INDEX temp.push_authors_sha ON push_authors (sha);
        UPDATE commits SET author = (SELECT p.author FROM push_authors p WHERE p.sha = commits.sha)
            WHERE sha IN (SELECT sha FROM push_authors);
        DROP TABLE temp.push_authors;
        UPDATE commits SET pr = CAST(substr(message, 21) AS INTEGER)
            WHERE message LIKE 'Merge pull request #%';
        WITH lines AS (SELECT rowid AS id,
            substr(message, 1, instr(message || char(10), char(10)) - 1) AS line FROM commits
            WHERE pr IS NULL)
        UPDATE commits SET pr = CAST(substr(l.line, instr(l.line, '(#') + 2) AS INTEGER)
            FROM lines l WHERE commits.rowid = l.id AND l.line LIKE '%(#%)';
        UPDATE commits SET pr = NULL WHERE pr = 0;
        """
    )


def builds_between(
    db: Database, repo_id: int, low: int, high: int, limit: int
) -> list[dict[str, Any]]:
    """Return builds numbered above `low` up to `high`, newest first."""
    return select(
        db,
        "SELECT id, number, sha, message, author, html_url, commits, commits_capped,"
        " commits_stored FROM builds WHERE repo_id = ? AND number > ? AND number <= ?"
        " ORDER BY number DESC LIMIT ?",
        [repo_id, low, high, limit],
    )


def span_counts(db: Database, repo_id: int, low: int, high: int) -> dict[str, int]:
    """Count the builds, pushed commits and distinct authors numbered in (low, high]."""
    # The running totals (m023) at each end: a lookup each, however long the span.
    span = {"repo": repo_id, "low": low, "high": high}
    row = db.execute(
        "WITH ends AS (SELECT"
        " (SELECT id FROM builds WHERE repo_id = :repo AND number <= :high"
        "  ORDER BY number DESC LIMIT 1) AS top,"
        " (SELECT id FROM builds WHERE repo_id = :repo AND number <= :low"
        "  ORDER BY number DESC LIMIT 1) AS below,"
        " (SELECT id FROM builds WHERE repo_id = :repo AND number > :low"
        "  ORDER BY number LIMIT 1) AS first)"
        " SELECT (SELECT count(*) FROM builds WHERE repo_id = :repo AND number > :low"
        "  AND number <= :high),"
        " coalesce(t.commits_through, 0) - coalesce(b.commits_through, 0),"
        " coalesce(t.capped_through, 0) - coalesce(b.capped_through, 0),"
        " coalesce(t.stored_through, 0) - coalesce(b.stored_through, 0),"
        " ends.first, ends.top"
        " FROM ends LEFT JOIN builds t ON t.id = ends.top LEFT JOIN builds b ON b.id = ends.below",
        span,
    ).fetchone()
    count, carried, capped, stored, first, top = row
    people = _people(db, span, first, top, carried) if count else 0
    return {
        "builds": count,
        "commits": carried,
        "people": people,
        "capped": capped,
        "unstored": count - stored,
    }


def _people(db: Database, span: dict[str, int], first: int, top: int, carried: int) -> int:
    """Count the distinct authors (ignoring case) of the kept commits of a span."""
    if carried <= PEOPLE_BY_PERSON_AFTER:
        return int(
            db.execute(
                "SELECT count(DISTINCT c.author COLLATE NOCASE) FROM commits c"
                " JOIN builds b ON b.id = c.build_id WHERE b.repo_id = :repo"
                " AND b.number > :low AND b.number <= :high AND c.author != ''",
                span,
            ).fetchone()[0]
        )
    # Person by person along commits_author: a seek to the next name, a seek into its builds.
    # A repository's build ids rise with its build numbers (both are given out in the order
    # builds are created), so the span's builds are the ids from `first` to `top`.
    return int(
        db.execute(
            "WITH RECURSIVE person (name) AS ("
            " SELECT (SELECT author FROM commits WHERE repo_id = :repo"
            "  AND author > '' COLLATE NOCASE ORDER BY author COLLATE NOCASE LIMIT 1)"
            " UNION ALL SELECT (SELECT author FROM commits WHERE repo_id = :repo"
            "  AND author > person.name COLLATE NOCASE ORDER BY author COLLATE NOCASE LIMIT 1)"
            " FROM person WHERE person.name IS NOT NULL)"
            " SELECT count(*) FROM person WHERE name IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM commits c WHERE c.repo_id = :repo"
            "  AND c.author = person.name COLLATE NOCASE AND c.build_id BETWEEN :first AND :top)",
            {**span, "first": first, "top": top},
        ).fetchone()[0]
    )


def commits_of(db: Database, build_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Return the stored commits of each build, newest first (the push's own order, reversed)."""
    found: dict[int, list[dict[str, Any]]] = {b: [] for b in build_ids}
    if not build_ids:
        return found
    marks = ", ".join("?" for _ in build_ids)
    rows = db.execute(
        f"SELECT {', '.join(COMMIT_COLUMNS)} FROM commits WHERE build_id IN ({marks})"
        " ORDER BY build_id, rowid DESC",
        list(build_ids),
    ).fetchall()
    for row in rows:
        found[row[0]].append(dict(zip(COMMIT_COLUMNS, row, strict=True)))
    return found


def commits_by_prefix(db: Database, repo_id: int, prefix: str) -> list[dict[str, Any]]:
    """Return the commits (with their build's number) whose sha starts with `prefix`."""
    return select(
        db,
        f"{_WITH_BUILD} WHERE c.repo_id = ? AND c.sha >= ? AND c.sha < ? ORDER BY b.number LIMIT 3",
        [repo_id, prefix.lower(), prefix.lower() + "g"],
    )


def commit_of_pr(db: Database, repo_id: int, pr: int) -> dict[str, Any] | None:
    """Return the first kept commit naming pull request `pr`, else the PR's head if it is kept."""
    rows = select(
        db,
        f"{_WITH_BUILD} WHERE c.repo_id = ? AND c.pr = ? ORDER BY b.number LIMIT 1",
        [repo_id, pr],
    ) or select(
        db,
        f"{_WITH_BUILD} JOIN pull_requests p ON p.repo_id = c.repo_id AND p.head_sha = c.sha"
        " WHERE c.repo_id = ? AND p.number = ? LIMIT 1",
        [repo_id, pr],
    )
    return rows[0] if rows else None


def latest_commit_by(db: Database, repo_id: int, author: str) -> dict[str, Any] | None:
    """Return a person's newest kept commit (by GitHub login or name, ignoring case)."""
    return select_one(
        db,
        f"{_WITH_BUILD} WHERE c.repo_id = ? AND c.author = ? COLLATE NOCASE"
        " ORDER BY c.build_id DESC, c.rowid DESC LIMIT 1",
        [repo_id, author],
    )
