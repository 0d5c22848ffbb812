"""Flow through the value stream over a window: waits per stage and why, red main, lost builds.

A build is ready for the first stage when its CI turned green, and for a later stage when it
went live in the stage before. Its wait ends when its deployment into the stage is created.
The wait is split by reason, each taking what the ones before it left: `lock` (a lock on
the stage), `approval` (its promotion waiting for approvers), `soak` (the time the stage
asks a build to run in the stage before), and `queued` for the rest (nobody promoted it
yet, or another deployment held the stage).
"""

from collections import Counter
from dataclasses import dataclass

from bot.core.metrics import History
from bot.core.records import Build, Deployment, median, overlap, paint

REASONS = ("lock", "approval", "soak", "queued")


@dataclass(frozen=True)
class StageFlow:
    """How long builds waited before entering one stage, and why (seconds per reason)."""

    stage: str
    entered: int
    median_wait: float | None
    reasons: dict[str, float]


@dataclass(frozen=True)
class Flow:
    """The value stream of one window."""

    stages: tuple[StageFlow, ...]
    builds: int
    failed_builds: int
    red_seconds: float
    red_share: float
    skipped: int  # builds older than production's newest that never went live there
    stopped: dict[str, int]  # … by where they stopped: 'CI red', 'CI', or the last stage reached
    newer: int  # builds newer than production's newest: they may still get there


def flow(history: History, start: float, end: float) -> Flow:
    """Measure the flow of the window [start, end)."""
    records = history.records
    pushed = [b for b in records.builds if start <= b.pushed_at < end]
    red = red_seconds(history.red, start, end)
    skipped, stopped, newer = _lost(history, pushed, end)
    return Flow(
        stages=tuple(stage_flow(history, i, start, end) for i in range(len(records.stages))),
        builds=len(pushed),
        failed_builds=sum(1 for b in pushed if b.ci_state == "failure"),
        red_seconds=red,
        red_share=red / (end - start) if end > start else 0.0,
        skipped=skipped,
        stopped=stopped,
        newer=newer,
    )


def stage_flow(history: History, index: int, start: float, end: float) -> StageFlow:
    """Measure the waits before entering the stage at `index`."""
    records = history.records
    stage = records.stages[index]
    waits: list[float] = []
    reasons: Counter[str] = Counter()
    for (into, _), deployment in history.first.items():
        if into != stage or not start <= deployment.created_at < end:
            continue
        ready = _ready(history, deployment, index)
        if ready is None:
            continue
        span = (min(ready, deployment.created_at), deployment.created_at)
        waits.append(span[1] - span[0])
        reasons.update(paint(span, _layers(history, deployment, index, ready)))
    return StageFlow(stage, len(waits), median(waits), {r: reasons[r] for r in REASONS})


def _ready(history: History, deployment: Deployment, index: int) -> float | None:
    """Return when a build became ready for the stage at `index` (None: it never was)."""
    build = history.builds.get(deployment.build_id)
    if build is None:
        return None
    if index == 0:
        return build.ci_changed_at if build.ci_state == "success" else None
    return history.live_at.get((history.records.stages[index - 1], build.id))


def _layers(history: History, deployment: Deployment, index: int, ready: float) -> list:
    records = history.records
    stage = records.stages[index]
    until = deployment.created_at
    locks = [(lk.start, lk.end or until) for lk in records.locks if lk.stage == stage]
    approval = []
    if deployment.approvals and deployment.asked_at is not None:
        approval = [(deployment.asked_at, deployment.decided_at or deployment.created_at)]
    soak = records.soaks.get(stage, 0.0) if index else 0.0
    return [("lock", locks), ("approval", approval), ("soak", [(ready, ready + soak)])]


def red_seconds(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Return how long main was red in the window, from the red spans of `red_spans`."""
    return sum(overlap(span, (start, end)) for span in spans)


def _lost(history: History, pushed: list[Build], end: float) -> tuple[int, dict[str, int], int]:
    """Count the window's builds that production skipped (and where they stopped), and newer."""
    records = history.records
    live = [d for d in history.live if (d.succeeded_at or 0) < end]
    newest = max(
        (history.builds[d.build_id].number for d in live if d.build_id in history.builds),
        default=records.floor,
    )
    went_live = {d.build_id for d in live}
    reached: dict[int, int] = {}
    for d in records.deployments:
        if d.succeeded_at is not None and d.succeeded_at < end:
            rank = records.stages.index(d.stage) if d.stage in records.stages else -1
            reached[d.build_id] = max(reached.get(d.build_id, -1), rank)
    stopped: Counter[str] = Counter()
    for build in pushed:
        if build.number >= newest or build.id in went_live:
            continue
        if build.id in reached:
            stopped[records.stages[reached[build.id]]] += 1
        else:
            stopped["CI red" if build.ci_state == "failure" else "CI"] += 1
    newer = sum(1 for b in pushed if b.number > newest)
    return sum(stopped.values()), dict(stopped), newer
