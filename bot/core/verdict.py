"""The pull-request check's verdict: frozen, red since a build, or how far behind production.

Pure: the pipeline reads the branch (bot/pipeline/prcheck.py) and publishes what
this decides.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.text import safe_url, when

MAX_DESCRIPTION = 140  # GitHub refuses longer status descriptions


@dataclass(frozen=True)
class Verdict:
    """What the status says: state (success/failure), description and link."""

    state: str
    description: str
    target_url: str | None = None


@dataclass(frozen=True)
class Branch:
    """The records a verdict is computed from, read once per change."""

    red_since: Mapping[str, Any] | None  # first build of the current red run
    failing: Sequence[Mapping[str, Any]]  # its failing check reports
    freeze: Mapping[str, Any] | None
    behind: int
    production: str
    name: str


def cut(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """Shorten `text` to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def red_since(run: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Return the first build of the current red run, or None when the branch is green.

    `run` is the builds with a final CI state, newest first, down to the last green one.
    """
    if not run or run[0]["ci_state"] != "failure":
        return None
    first = run[0]
    for build in run:
        if build["ci_state"] != "failure":
            break
        first = build
    return first


def verdict(branch: Branch, *, block_when_red: bool, timezone: str) -> Verdict:
    """Decide the PR check from the branch's state: frozen, red, or how far behind."""
    if branch.freeze:
        f = branch.freeze
        text = (
            f"merges are frozen: {f['reason']} "
            f"(by {f['frozen_by']}, since {when(f['started_at'], timezone)})"
        )
        return Verdict("failure", cut(text))
    if block_when_red and branch.red_since:
        b = branch.red_since
        names = ", ".join(r["context"] for r in branch.failing) or "CI"
        link = next((r["target_url"] for r in branch.failing if r.get("target_url")), None)
        text = (
            f"{branch.name} is red since #{b['number']} ({b['sha'][:7]}): {names} failed"
            " — fix or revert first"
        )
        return Verdict("failure", cut(text), safe_url(link) or safe_url(b.get("html_url")))
    if branch.behind == 0:
        return Verdict("success", cut(f"{branch.production} is up to date with {branch.name}"))
    plural = "build" if branch.behind == 1 else "builds"
    return Verdict(
        "success", cut(f"{branch.production} is {branch.behind} {plural} behind {branch.name}")
    )
