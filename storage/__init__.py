"""SQLite through sqlite-utils: migrations, records and queries. Imports nothing above it."""

from storage.connection import connect, savepoint
from storage.db import Store, migrate

__all__ = ["Store", "connect", "migrate", "savepoint"]
