"""Apply GitHub events to the stored pipeline. Each step runs inside one transaction (a Tx)."""

from dataclasses import dataclass
from typing import Any

from bot.core import ci
from bot.pipeline.tx import Change, Tx
from storage import builds, commits


@dataclass(frozen=True)
class Repo:
    """The repository a delivery is about."""

    id: int
    full_name: str
    html_url: str
    installation_id: int | None


# (sha, message, committed_at, author, pull request number) of one commit of a push
Carried = tuple[str, str, float, str, int | None]


@dataclass(frozen=True)
class Push:
    """A push to the tracked branch, reduced to the build it makes."""

    repo: Repo
    sha: str
    message: str
    author: str
    html_url: str
    commits: int
    pushed_at: float
    # Every commit the push carried: for the delivery metrics and for what a promotion carries
    carried: tuple["Carried", ...] = ()
    capped: bool = False  # the push carried GitHub's cap of commits: there may be more


@dataclass(frozen=True)
class Installation:
    """An installation created, suspended, unsuspended or deleted, and what it covers."""

    id: int
    action: str | None
    account: str
    target_type: str | None
    repositories: tuple[tuple[int, str], ...]  # (id, full_name) of each repository it lists
    sender: str


def remember_repo(tx: Tx, repo: Repo) -> None:
    """Record the repository (and which installation it belongs to)."""
    builds.upsert_repository(
        tx.db,
        repo_id=repo.id,
        full_name=repo.full_name,
        html_url=repo.html_url,
        installation_id=repo.installation_id,
    )


def apply_push(tx: Tx, push: Push) -> None:
    """Create the build for a push, and take any reports that arrived before it."""
    remember_repo(tx, push.repo)
    build = builds.create_build(
        tx.db,
        repo_id=push.repo.id,
        sha=push.sha,
        message=push.message,
        author=push.author,
        html_url=push.html_url,
        commits=push.commits,
        pushed_at=push.pushed_at,
    )
    if build is None:  # the same sha pushed again: it is already a build
        return
    commits.add_commits(tx.db, repo_id=push.repo.id, build_id=build["id"], commits=push.carried)
    if push.capped:
        commits.mark_capped(tx.db, build["id"])
    tx.log(
        actor=push.author,
        action="build.created",
        repo_id=push.repo.id,
        build_id=build["id"],
        detail={"sha": push.sha, "number": build["number"]},
    )
    tx.emit(Change("build.created", push.repo.id, build["id"]))
    recompute_ci(tx, build)


def apply_report(tx: Tx, repo: Repo, report: ci.Report) -> None:
    """Store a check report unless a newer one is stored; recompute the build's CI state."""
    remember_repo(tx, repo)
    stored = builds.check_report(tx.db, report.repo_id, report.sha, report.context)
    if not ci.supersedes(report, stored):
        return
    builds.save_check_report(tx.db, report.as_row())
    build = builds.build_by_sha(tx.db, report.repo_id, report.sha)
    if build:
        recompute_ci(tx, build, report=report)


def recompute_ci(tx: Tx, build: dict[str, Any], report: ci.Report | None = None) -> None:
    """Derive a build's CI state from its reports; on a change, log and emit it."""
    reports = builds.check_reports(tx.db, build["repo_id"], build["sha"])
    state = ci.ci_state(reports, tx.config.pipeline.required_checks)
    if state == build["ci_state"]:
        return
    builds.set_ci_state(tx.db, build["id"], state, tx.now)
    failed = ci.failing(reports, tx.config.pipeline.required_checks)
    tx.log(
        actor="github",
        action="ci.changed",
        repo_id=build["repo_id"],
        build_id=build["id"],
        detail={
            "from": build["ci_state"],
            "to": state,
            "failing": [f["context"] for f in failed],
            "context": report.context if report else None,
        },
    )
    tx.emit(
        Change(
            "ci.changed",
            build["repo_id"],
            build["id"],
            detail={"from": build["ci_state"], "to": state},
        )
    )


def apply_installation(tx: Tx, installation: Installation) -> None:
    """Record an installation being created, suspended, unsuspended or deleted."""
    builds.upsert_installation(
        tx.db,
        installation_id=installation.id,
        account=installation.account,
        target_type=installation.target_type,
        now=tx.now,
    )
    column = {"deleted": "deleted_at", "suspend": "suspended_at", "unsuspend": "suspended_at"}
    action = installation.action
    if action in column:
        stamp = None if action == "unsuspend" else tx.now
        builds.set_installation_state(tx.db, installation.id, column[action], stamp)
    for repo_id, full_name in installation.repositories:
        builds.upsert_repository(
            tx.db,
            repo_id=repo_id,
            full_name=full_name,
            html_url=f"https://github.com/{full_name}",
            installation_id=installation.id,
        )
    tx.log(
        actor=installation.sender,
        action=f"installation.{action}",
        detail={"installation": installation.id, "account": installation.account},
    )
