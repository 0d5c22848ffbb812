"""Write small delivery histories by hand through the storage functions: pushes with their
commits, CI outcomes, deployments, rollbacks, approvals and locks, at chosen times."""

from pathlib import Path

from bot.config import Config
from bot.pipeline import workflows
from storage import builds, pipeline
from tests.history import REPO, History, at

T0 = at("2026-11-02T00:00+00:00")  # a Monday: the window is its four weeks
NOW = T0 + 28 * 86400.0
H, M = 3600.0, 60.0


def sha(name: str) -> str:
    """Return a full sha for a commit called `name`."""
    return (name.encode().hex() + "0" * 40)[:40]


class Story(History):
    """A repository's history, told build by build."""

    def __init__(self, path: Path, config: Config) -> None:
        super().__init__(path, config)
        self.numbers: dict[int, int] = {}

    def build(
        self,
        number: int,
        pushed: float,
        *,
        commits: tuple[tuple[str, str, float], ...] = (),
        ci: str = "success",
        ci_at: float | None = None,
    ) -> int:
        """Push build `number` carrying `commits` (name, message, time); its CI ends as `ci`."""
        head = sha(commits[-1][0]) if commits else sha(f"build{number}")
        message = commits[-1][1] if commits else f"change {number}"
        carried = tuple((sha(name), text, when, "octocat", None) for name, text, when in commits)
        push = workflows.Push(
            REPO, head, message, "octocat", f"https://c/{head}", len(commits) or 1, pushed, carried
        )
        workflows.apply_push(self.tx(pushed), push)
        build = builds.build_by_sha(self.db, REPO.id, head)
        assert build and build["number"] == number
        builds.set_ci_state(self.db, build["id"], ci, ci_at if ci_at is not None else pushed)
        self.numbers[number] = build["id"]
        return build["id"]

    def deploy(  # type: ignore[override]
        self,
        number: int,
        stage: str,
        created: float,
        *,
        took: float = 0.0,
        state: str = "success",
        promotion: int | None = None,
    ) -> int:
        """Deploy build `number` into `stage`; it ends as `state` `took` seconds later."""
        done = created + took
        return pipeline.add_deployment(
            self.db,
            repo_id=REPO.id,
            build_id=self.numbers[number],
            stage=stage,
            promotion_id=promotion,
            state=state,
            requested_by="U012ABC",
            created_at=created,
            updated_at=done,
            finished_at=done,
            succeeded_at=done if state == "success" else None,
        )

    def promote(
        self, number: int, stage: str, asked: float, decided: float, *, approvers: tuple = ()
    ) -> int:
        """Record a promotion of build `number` asked at `asked`, approved at `decided`."""
        promotion = pipeline.add_promotion(
            self.db,
            repo_id=REPO.id,
            build_id=self.numbers[number],
            stage=stage,
            requested_by="U012ABC",
            state="approved",
            created_at=asked,
            decided_at=decided,
        )
        for person in approvers:
            pipeline.add_approval(self.db, promotion, person, decided)
        return promotion

    def rollback(self, stage: str, to: int, out: int, when: float, *, took: float = 0.0) -> None:
        """Roll `stage` back to build `to`, taking build `out` out of it."""
        promotion = pipeline.add_promotion(
            self.db,
            repo_id=REPO.id,
            build_id=self.numbers[to],
            stage=stage,
            requested_by="U012ABC",
            state="approved",
            rollback=1,
            replaces_build_id=self.numbers[out],
            created_at=when,
            decided_at=when,
        )
        self.deploy(to, stage, when, took=took, promotion=promotion)

    def lock(self, stage: str, start: float, lifted: float) -> None:
        """Lock `stage` from `start` until someone lifted the lock at `lifted`."""
        pipeline.add_lock(
            self.db,
            repo_id=REPO.id,
            stage=stage,
            locked_by="U012ABC",
            reason="db migration",
            created_at=start,
            lifted_at=lifted,
            lifted_by="U012ABC",
        )
