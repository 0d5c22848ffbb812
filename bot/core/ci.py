"""Pure rules for check reports and a build's CI state. No I/O, no clock."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.text import safe_url

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


def parse_time(text: str | None) -> float | None:
    """Return epoch seconds of a GitHub timestamp ('2019-05-15T15:20:55Z' or with an offset)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


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


def status_report(repo_id: int, payload: Mapping[str, Any]) -> Report:
    """Turn a `status` webhook body into a Report."""
    stamp = parse_time(payload.get("updated_at") or payload.get("created_at"))
    return Report(
        repo_id=repo_id,
        sha=payload["sha"],
        context=payload["context"],
        kind="status",
        state=STATUS_STATES[payload["state"]],
        description=payload.get("description"),
        target_url=safe_url(payload.get("target_url")),
        reported_at=stamp or 0.0,
    )


def check_run_report(repo_id: int, run: Mapping[str, Any]) -> Report:
    """Turn a `check_run` object into a Report."""
    done = run.get("status") == "completed"
    state = CONCLUSIONS.get(run.get("conclusion") or "", "failure") if done else "pending"
    stamp = parse_time(run.get("completed_at") if done else run.get("started_at"))
    output = run.get("output") or {}
    return Report(
        repo_id=repo_id,
        sha=run["head_sha"],
        context=run["name"],
        kind="check_run",
        state=state,
        description=output.get("title") or run.get("conclusion"),
        target_url=safe_url(run.get("html_url")) or safe_url(run.get("details_url")),
        reported_at=stamp or 0.0,
    )


def check_suite_report(repo_id: int, suite: Mapping[str, Any]) -> Report:
    """Turn a completed `check_suite` object into a Report named for its app."""
    app = suite.get("app") or {}
    return Report(
        repo_id=repo_id,
        sha=suite["head_sha"],
        context=app.get("slug") or app.get("name") or "check-suite",
        kind="check_suite",
        state=CONCLUSIONS.get(suite.get("conclusion") or "", "failure"),
        description=suite.get("conclusion"),
        target_url=None,
        reported_at=parse_time(suite.get("updated_at")) or 0.0,
    )
