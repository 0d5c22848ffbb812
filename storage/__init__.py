"""SQLite through sqlite-utils: migrations, records and queries. Imports nothing above it."""

from storage.db import Store, connect, migrate, savepoint

__all__ = ["Store", "connect", "migrate", "savepoint"]
