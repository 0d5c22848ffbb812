"""Rows read and written with one SQLite statement each.

sqlite-utils wraps each `Database.query` in a savepoint of its own (three statements per
read), and each `Table.insert` and `Table.update` in a savepoint plus schema lookups (five
and ten). Every statement here is written in storage/ against a known schema, so those
guards buy nothing: `/ship status` made 125 statements, 74 of them savepoints, and on a reader
thread each is a return through the interpreter lock.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlite_utils import Database
from sqlite_utils.utils import dedupe_keys


def select(db: Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Return every row of a SELECT as a dict (a repeated column name gets `_2`, as before)."""
    cursor = db.conn.execute(sql, params)
    names = dedupe_keys(c[0] for c in cursor.description)
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def select_one(db: Database, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    """Return the first row of a SELECT as a dict, or None."""
    cursor = db.conn.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(dedupe_keys(c[0] for c in cursor.description), row, strict=True))


def insert(db: Database, table: str, row: Mapping[str, Any]) -> int:
    """Insert one row of scalar values; return its rowid."""
    names = ", ".join(_quoted(name) for name in row)
    marks = ", ".join("?" for _ in row)
    sql = f"INSERT INTO {_quoted(table)} ({names}) VALUES ({marks})"
    return int(db.conn.execute(sql, list(row.values())).lastrowid or 0)


def update(db: Database, table: str, row_id: int, values: Mapping[str, Any]) -> None:
    """Set columns of the row whose `id` is `row_id`."""
    sets = ", ".join(f"{_quoted(name)} = ?" for name in values)
    db.conn.execute(f"UPDATE {_quoted(table)} SET {sets} WHERE id = ?", [*values.values(), row_id])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
