"""The plain records the delivery metrics are computed from, and small helpers over them."""

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice

DAY = 86_400.0
WEEK = 7 * DAY
# A deployment whose change is rolled back or reverted this soon after it went live failed.
FAILURE_WINDOW = 7 * DAY
FAILED = ("failure", "error")
REVERT = re.compile(r'^Revert "(.*)"\s*$')
REVERTS_SHA = re.compile(r"This reverts commit ([0-9a-fA-F]{7,40})")
HOTFIX = re.compile(r"\bhot[- ]?fix", re.IGNORECASE)


@dataclass(frozen=True)
class Build:
    """A build of main: its number, head commit and CI outcome."""

    id: int
    number: int
    sha: str
    message: str
    pushed_at: float
    ci_state: str
    ci_changed_at: float


@dataclass(frozen=True)
class Commit:
    """One commit a build's push carried, with its own timestamp."""

    sha: str
    build_id: int
    message: str
    committed_at: float


@dataclass(frozen=True)
class Deployment:
    """A deployment of a build into a stage, with the promotion that asked for it."""

    id: int
    build_id: int
    stage: str
    state: str
    created_at: float
    succeeded_at: float | None = None
    finished_at: float | None = None
    success_seq: int | None = None  # where its success falls in the order of the stages' events
    rollback: bool = False
    asked_at: float | None = None  # the promotion's request
    decided_at: float | None = None  # … and its decision
    approvals: int = 0


@dataclass(frozen=True)
class Rollback:
    """A rollback of a stage, naming the build it took out."""

    stage: str
    at: float
    replaces_build_id: int | None
    seq: int | None = None  # where it falls in the order of the stages' events


@dataclass(frozen=True)
class Lock:
    """A lock on a stage, from when to when (None: still on)."""

    stage: str
    start: float
    end: float | None


@dataclass(frozen=True)
class Records:
    """Everything one repository's metrics need."""

    # `floor`: the highest build number production ran before the first deployment given
    # (0: none), so the next production deployment carries the builds above it.

    stages: tuple[str, ...]
    builds: tuple[Build, ...] = ()
    commits: tuple[Commit, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    rollbacks: tuple[Rollback, ...] = ()
    locks: tuple[Lock, ...] = ()
    soaks: Mapping[str, float] = field(default_factory=dict)
    floor: int = 0

    @property
    def production(self) -> str:
        """Return the last stage's name."""
        return self.stages[-1]


def median(values: Sequence[float]) -> float | None:
    """Return the median, or None for no values."""
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Return the 90th percentile by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def subject(message: str) -> str:
    """Return a commit message's first line."""
    return message.strip().splitlines()[0] if message.strip() else ""


class Commits:
    """Commits indexed by sha and by title, to find what a revert reverts."""

    def __init__(self, commits: Iterable[Commit]) -> None:
        self.every = list(commits)
        self.by_sha = {c.sha.lower(): c for c in self.every}

    @cached_property
    def by_title(self) -> dict[str, Commit]:
        """Index commits by title, once a revert without its sha line asks."""
        return {subject(c.message): c for c in self.every}

    def reverted(self, commit: Commit) -> Commit | None:
        """Return the commit `commit` reverts (by its sha line, else its title), or None."""
        title = REVERT.match(subject(commit.message))
        if not title:
            return None
        named = REVERTS_SHA.search(commit.message)
        if not named:
            found = self.by_title.get(title.group(1))
            return found if found is not commit else None
        sha = named.group(1).lower()
        if sha in self.by_sha:
            return self.by_sha[sha]
        return next((c for c in self.every if c.sha.lower().startswith(sha)), None)


def relands(commit: Commit, target: Commit | None) -> bool:
    """Say whether a revert undoes a revert: the original change lands again, nothing failed."""
    return subject(commit.message).startswith('Revert "Revert ') or bool(
        target and REVERT.match(subject(target.message))
    )


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return how long two intervals overlap."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def merged(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the union of intervals as disjoint intervals, in order."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def paint(span: tuple[float, float], layers: Sequence[tuple[str, list]]) -> dict[str, float]:
    """Split `span` between reasons, each layer taking what earlier ones left; rest: queued."""
    covered: list[tuple[float, float]] = []
    shares: dict[str, float] = {}
    for reason, intervals in layers:
        for start, end in intervals:
            piece = (max(start, span[0]), min(end, span[1]))
            if piece[1] <= piece[0]:
                continue
            fresh = piece[1] - piece[0] - sum(overlap(piece, c) for c in covered)
            shares[reason] = shares.get(reason, 0.0) + fresh
            covered = merged([*covered, piece])
    shares["queued"] = max(0.0, span[1] - span[0] - sum(shares.values()))
    return {reason: seconds for reason, seconds in shares.items() if seconds > 0}


def red_spans(builds: Iterable[Build]) -> list[tuple[float, float]]:
    """Return the merged spans when main was red (still red: the span ends at infinity)."""
    # Red from a build's CI failing until a later build's CI turned green.
    ordered = sorted(builds, key=lambda b: b.number)
    spans = []
    for i, build in enumerate(ordered):
        if build.ci_state != "failure":
            continue
        fixed = next(
            (
                b.ci_changed_at
                for b in islice(ordered, i + 1, None)
                if b.ci_state == "success" and b.ci_changed_at > build.ci_changed_at
            ),
            math.inf,
        )
        spans.append((build.ci_changed_at, fixed))
    return merged(spans)
