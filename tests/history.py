"""Script a pipeline's history straight into a database, at chosen times, through the workflows."""

from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from bot.config import Config
from bot.core import ci
from bot.pipeline import workflows
from bot.pipeline.tx import Tx
from storage import connect, migrate

REPO = workflows.Repo(186853002, "Codertocat/Hello-World", "https://github.com/x/y", 957387)


def at(text: str) -> float:
    """Epoch seconds of an ISO time with an offset ('2026-11-24T09:00+00:00')."""
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def sha_of(number: int) -> str:
    return f"{number:02d}" + "abcdef0123456789" * 2 + "abcdef"


class History:
    """A database being filled with builds, reports, deployments and the like."""

    def __init__(self, path: Path, config: Config) -> None:
        migrate(path)
        self.path = path
        self.db: Database = connect(path)
        self.config = config

    def tx(self, now: float) -> Tx:
        return Tx(self.db, self.config, now)

    def push(self, number: int, now: float, author: str = "octocat") -> str:
        sha = sha_of(number)
        push = workflows.Push(REPO, sha, f"change {number}", author, f"https://c/{sha}", 1, now)
        workflows.apply_push(self.tx(now), push)
        return sha

    def report(self, number: int, context: str, state: str, now: float) -> None:
        report = ci.Report(
            REPO.id, sha_of(number), context, "status", state, None, f"https://ci/{number}", now
        )
        workflows.apply_report(self.tx(now), REPO, report)

    def build_id(self, number: int) -> int:
        return self.db.execute("SELECT id FROM builds WHERE number = ?", [number]).fetchone()[0]

    def deploy(self, number: int, stage: str, now: float) -> None:
        self.db["deployments"].insert(
            {
                "repo_id": REPO.id,
                "build_id": self.build_id(number),
                "stage": stage,
                "state": "success",
                "requested_by": "promobot",
                "created_at": now,
                "updated_at": now,
                "finished_at": now,
                "succeeded_at": now,
            }
        )

    def close(self) -> None:
        self.db.close()
