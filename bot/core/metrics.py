"""The five DORA metrics of one repository over a window, from its plain records; no I/O.

Definitions (each counted in the window [start, end)):
- deployment frequency: successful deployments into the last stage, rollbacks included;
- lead time: per commit that reached production, from its commit timestamp to the first
  successful production deployment that carried it — every commit of every build above the
  highest build number production had run before; median and 90th percentile (nearest rank);
- change failure rate: production changes (deployments that are not rollbacks and finished)
  that failed, or were rolled back or had a commit reverted within 7 days of going live;
- recovery time: from a failed change (its failure, or going live when later rolled back) to
  the next successful production deployment that replaced it; median;
- rework rate: successful production deployments that were unplanned: rollbacks, and those
  carrying a revert of a commit already in production or a commit saying it is a hotfix.
A revert of a revert lands the original change again: it fails nothing and is not rework.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass

from bot.core.records import (
    DAY,
    FAILED,
    FAILURE_WINDOW,
    HOTFIX,
    Build,
    Commit,
    Commits,
    Deployment,
    Records,
    median,
    p90,
    red_spans,
    relands,
)


@dataclass(frozen=True)
class Dora:
    """The DORA metrics of one window; None where nothing was there to measure."""

    deployments: int
    per_day: float
    lead_times: tuple[float, ...]
    lead_median: float | None
    lead_p90: float | None
    changes: int
    failed: int
    rolled_back: int
    reverted: int
    failed_changes: int
    change_failure_rate: float | None
    recoveries: tuple[float, ...]
    recovery_median: float | None
    unrecovered: int
    rework: int
    rework_rate: float | None


class History:
    """One repository's production history, indexed once for every window measured on it."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.builds: dict[int, Build] = {b.id: b for b in records.builds}
        by_build: dict[int, list[Commit]] = defaultdict(list)
        for commit in records.commits:
            by_build[commit.build_id].append(commit)
        self.commits = {
            b.id: tuple(by_build.get(b.id) or [Commit(b.sha, b.id, b.message, b.pushed_at)])
            for b in records.builds
        }
        prod = [d for d in records.deployments if d.stage == records.production]
        # In the order the successes were recorded: two can share a clock reading.
        self.live = sorted(
            (d for d in prod if d.succeeded_at is not None), key=lambda d: d.success_seq or 0
        )
        self.prod = prod
        self.carried = self._carried()
        self.in_production = {c.sha: d for d in self.live for c in self.carried[d.id]}
        index = Commits(c for cs in self.commits.values() for c in cs)
        self.reverts = {c: t for c in index.every if (t := index.reverted(c)) and not relands(c, t)}
        self.reverted_by: dict[str, list[Commit]] = defaultdict(list)
        for revert, target in self.reverts.items():
            self.reverted_by[target.sha].append(revert)
        self.red = red_spans(records.builds)
        # The first deployment of each build into each stage, and when it first went live there.
        self.first: dict[tuple[str, int], Deployment] = {}
        self.live_at: dict[tuple[str, int], float] = {}
        for d in sorted(records.deployments, key=lambda d: (d.created_at, d.id)):
            if not d.rollback:
                self.first.setdefault((d.stage, d.build_id), d)
            if d.succeeded_at is not None:
                key = (d.stage, d.build_id)
                self.live_at[key] = min(self.live_at.get(key, d.succeeded_at), d.succeeded_at)

    def _carried(self) -> dict[int, tuple[Commit, ...]]:
        """Map each live production deployment to the commits it brought there first."""
        by_number = sorted(self.records.builds, key=lambda b: b.number)
        numbers = [b.number for b in by_number]
        high, carried = self.records.floor, {}
        for deployment in self.live:
            build = self.builds.get(deployment.build_id)
            number = build.number if build else 0
            brought = by_number[bisect_right(numbers, high) : bisect_right(numbers, number)]
            carried[deployment.id] = tuple(c for b in brought for c in self.commits[b.id])
            high = max(high, number)
        return carried

    def went_live(self, start: float, end: float) -> list[Deployment]:
        """Return the successful production deployments of the window, in order."""
        return [d for d in self.live if start <= (d.succeeded_at or 0) < end]

    def changes(self, start: float, end: float) -> list[Deployment]:
        """Return the production changes that finished in the window (no rollbacks)."""
        return sorted(
            (
                d
                for d in self.prod
                if not d.rollback
                and (d.succeeded_at is not None or d.state in FAILED)
                and start <= _finished(d) < end
            ),
            key=lambda d: (_finished(d), d.id),
        )

    def rolled_back(self, deployment: Deployment) -> float | None:
        """Return when a rollback took this deployment's build out within the window, or None."""
        live = deployment.succeeded_at
        for rollback in self.records.rollbacks:
            if (
                live is not None
                and rollback.stage == self.records.production
                and rollback.replaces_build_id == deployment.build_id
                and (rollback.seq or 0) > (deployment.success_seq or 0)
                and rollback.at <= live + FAILURE_WINDOW
            ):
                return rollback.at
        return None

    def was_reverted(self, deployment: Deployment) -> bool:
        """Say whether a later commit reverted one this deployment brought, within 7 days."""
        mine = {c.sha for c in self.carried.get(deployment.id, ())}
        live = deployment.succeeded_at or 0.0
        return any(
            revert.sha not in mine and revert.committed_at <= live + FAILURE_WINDOW
            for sha in mine
            for revert in self.reverted_by.get(sha, ())
        )

    def unplanned(self, deployment: Deployment) -> bool:
        """Say whether a live deployment was rework: a rollback, a revert or a hotfix."""
        if deployment.rollback:
            return True
        live = deployment.succeeded_at or 0.0
        brought = self.carried.get(deployment.id, ())
        for commit in brought:
            target = self.reverts.get(commit)
            earlier = self.in_production.get(target.sha) if target else None
            if earlier is not None and live - (earlier.succeeded_at or 0) <= FAILURE_WINDOW:
                return True
            if HOTFIX.search(commit.message) and not relands(commit, target):
                return True
        return False

    def recovered(self, deployment: Deployment, since: float) -> float | None:
        """Return when production next succeeded with another deployment after `since`."""
        for later in self.live:
            if later.id == deployment.id or (later.succeeded_at or 0) <= since:
                continue
            if deployment.succeeded_at is None or later.build_id != deployment.build_id:
                return later.succeeded_at
        return None


def _finished(deployment: Deployment) -> float:
    return deployment.succeeded_at or deployment.finished_at or deployment.created_at


def dora(history: History, start: float, end: float) -> Dora:
    """Measure the five DORA metrics of the window [start, end)."""
    live = history.went_live(start, end)
    leads = tuple(
        (d.succeeded_at or 0) - c.committed_at
        for d in live
        if not d.rollback
        for c in history.carried[d.id]
    )
    counts = {"failed": 0, "rolled_back": 0, "reverted": 0, "any": 0}
    recoveries: list[float] = []
    unrecovered = 0
    changes = history.changes(start, end)
    for change in changes:
        kind = _failure(history, change)
        if kind is None:
            continue
        counts[kind] += 1
        counts["any"] += 1
        if kind == "reverted":
            continue
        began = change.finished_at if kind == "failed" else change.succeeded_at
        back = history.recovered(change, began or change.created_at)
        if back is None:
            unrecovered += 1
        else:
            recoveries.append(back - (began or change.created_at))
    rework = sum(1 for d in live if history.unplanned(d))
    return Dora(
        deployments=len(live),
        per_day=len(live) / max((end - start) / DAY, 1e-9),
        lead_times=leads,
        lead_median=median(leads),
        lead_p90=p90(leads),
        changes=len(changes),
        failed=counts["failed"],
        rolled_back=counts["rolled_back"],
        reverted=counts["reverted"],
        failed_changes=counts["any"],
        change_failure_rate=counts["any"] / len(changes) if changes else None,
        recoveries=tuple(recoveries),
        recovery_median=median(recoveries),
        unrecovered=unrecovered,
        rework=rework,
        rework_rate=rework / len(live) if live else None,
    )


def _failure(history: History, change: Deployment) -> str | None:
    """Say how a production change failed: 'failed', 'rolled_back', 'reverted', or None."""
    if change.succeeded_at is None:
        return "failed"
    if history.rolled_back(change) is not None:
        return "rolled_back"
    return "reverted" if history.was_reverted(change) else None
