"""The value stream map's cells: per build and stage, arrival, the wait and why, and what followed.

Pure: every record is read elsewhere and passed in (times are epoch seconds).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

REACHED = ("success", "inactive")
FAILED = ("failure", "error")
IN_FLIGHT = ("requested", "queued", "pending", "in_progress")
# What the marks of the map mean, shown under it.
LEGEND = (
    ("✓", "done", "arrived (live there now: green edge)"),
    ("☑", "was-live", "was live there, since replaced by a newer build"),
    ("↩", "rolled-back", "rolled back out of the stage"),
    ("◔", "running", "deploying (or CI running)"),
    ("‖", "waiting", "waiting: for approval, or queued for the stage"),
    ("✗", "failed", "a deployment failed (retried ones are counted)"),
)


@dataclass(frozen=True)
class Cell:
    """One stage of one build on the map."""

    state: str  # done, running, failed, waiting, none
    at: float | None = None  # when it got there (or the event the state is about)
    waited: float | None = None  # from arriving in the stage before to deploying here
    why: tuple[tuple[str, float], ...] = ()  # what the wait was made of: (reason, seconds)
    failures: int = 0  # failed deployment attempts into this stage
    live: bool = False
    left_at: float | None = None  # replaced by a newer build …
    left_for: int | None = None  # … numbered this
    rolled_back_at: float | None = None
    label: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def overlap(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Return how long `spans` cover of [start, end] (spans may overlap one another)."""
    total, reach = 0.0, start
    for a, b in sorted(spans):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def reasons(
    since: float,
    started: float,
    promotion: dict[str, Any] | None,
    soak: float,
    locks: Sequence[tuple[float, float]],
) -> tuple[tuple[str, float], ...]:
    """Split a wait into soak, lock, nobody promoting yet, approval and queue (largest first)."""
    asked = promotion["created_at"] if promotion else started
    decided = (promotion or {}).get("decided_at") or asked
    parts = {
        "soak": min(soak, max(0.0, asked - since)),
        "lock": overlap(locks, since, asked),
        "approval": max(0.0, decided - asked) if promotion and promotion.get("approvals") else 0,
        "queued": max(0.0, started - max(decided, asked)),
    }
    parts["until promoted"] = max(0.0, asked - since - parts["soak"] - parts["lock"])
    kept = [(k, v) for k, v in parts.items() if v >= 1]
    return tuple(sorted(kept, key=lambda kv: -kv[1]))


def cell(
    stage: str,
    since: float | None,
    deployments: Sequence[dict[str, Any]],
    promotions: Sequence[dict[str, Any]],
    *,
    live: bool,
    soak: float = 0.0,
    locks: Sequence[tuple[float, float]] = (),
    left: tuple[float, int] | None = None,
    rolled_back_at: float | None = None,
) -> Cell:
    """Describe one build in one stage from its deployments and promotions there."""
    failures = sum(1 for d in deployments if d["state"] in FAILED)
    done = [d for d in deployments if d["state"] in REACHED]
    if done:
        first = done[0]
        at = first.get("succeeded_at") or first["finished_at"] or first["updated_at"]
        promotion = next((p for p in promotions if p["id"] == first.get("promotion_id")), None)
        why = reasons(since, first["created_at"], promotion, soak, locks) if since else ()
        back = rolled_back_at  # only a rollback the build has not re-entered the stage since
        if back:
            label = f"reached {stage}, later rolled back out"
        elif live:
            label = f"live in {stage}"
        else:
            label = f"was live in {stage}" + (f" until #{left[1]} replaced it" if left else "")
        return Cell(
            "done",
            at,
            at - since if since else None,
            why,
            failures,
            live=live and back is None,
            left_at=None if live or back else (left[0] if left else None),
            left_for=None if live or back else (left[1] if left else None),
            rolled_back_at=back,
            label=label,
        )
    flying = [d for d in deployments if d["state"] in IN_FLIGHT]
    if flying:
        return Cell(
            "running", flying[0]["created_at"], None, (), failures, label=f"deploying to {stage}"
        )
    waiting = [p for p in promotions if p["state"] in ("waiting", "queued")]
    if waiting:
        what = "waits for approval" if waiting[0]["state"] == "waiting" else "queued"
        return Cell("waiting", waiting[0]["created_at"], None, (), failures, label=what)
    if failures:
        last = max((d for d in deployments if d["state"] in FAILED), key=lambda d: d["id"])
        at = last["finished_at"] or last["updated_at"]
        return Cell("failed", at, None, (), failures, label=f"{stage} deploy failed")
    return Cell("none", label="")
