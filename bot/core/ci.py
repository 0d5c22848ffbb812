"""Pure rules for check reports and a build's CI state. No I/O, no clock."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATUS_STATES = {
    "pending": "pending",
    "success": "success",
    "failure": "failure",
    "error": "failure",
}
# A check run's conclusion, as branch protection reads it.
CONCLUSIONS = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failure",
    "timed_out": "failure",
    "cancelled": "failure",
    "action_required": "failure",
    "startup_failure": "failure",
    "stale": "failure",
}
TERMINAL = ("success", "failure")


@dataclass(frozen=True)
class Report:
    """One check's state on one sha, as a status or a check run reported it."""

    repo_id: int
    sha: str
    context: str
    kind: str  # status, check_run, check_suite
    state: str  # pending, success, failure
    description: str | None
    target_url: str | None
    reported_at: float

    def as_row(self) -> dict[str, Any]:
        """Return the report as a check_reports row."""
        return {
            "repo_id": self.repo_id,
            "sha": self.sha,
            "context": self.context,
            "kind": self.kind,
            "state": self.state,
            "description": self.description,
            "target_url": self.target_url,
            "reported_at": self.reported_at,
        }


def supersedes(new: Report, old: Mapping[str, Any] | None) -> bool:
    """Say whether `new` should replace the stored report `old` of the same context.

    The report's own timestamp decides, not its arrival: a late `pending` never
    overwrites a newer result. On a tie, a result beats `pending`, so a run that
    starts and finishes within one second still ends as its result.
    """
    if old is None:
        return True
    if new.reported_at != old["reported_at"]:
        return new.reported_at > old["reported_at"]
    return not (new.state == "pending" and old["state"] in TERMINAL)


def ci_state(reports: Iterable[Mapping[str, Any]], required: Iterable[str]) -> str:
    """Combine a sha's newest reports into pending, success or failure.

    With `required` empty every reported status and check run counts (check
    suites are only aggregates of their runs, and apps that never run leave
    suites queued forever, so they count only when named). With `required`
    set, only those contexts count and a missing one keeps the build pending.
    """
    required = tuple(required)
    states = {r["context"]: r["state"] for r in reports}
    kinds = {r["context"]: r["kind"] for r in reports}
    if required:
        counted = [states.get(name, "pending") for name in required]
    else:
        counted = [s for ctx, s in states.items() if kinds[ctx] != "check_suite"]
    if "failure" in counted:
        return "failure"
    if not counted or "pending" in counted:
        return "pending"
    return "success"


def failing(reports: Iterable[Mapping[str, Any]], required: Iterable[str]) -> list[dict]:
    """Return the counted reports that failed, by context name."""
    required = set(required)
    return sorted(
        (
            dict(r)
            for r in reports
            if r["state"] == "failure"
            and (r["context"] in required if required else r["kind"] != "check_suite")
        ),
        key=lambda r: r["context"],
    )
