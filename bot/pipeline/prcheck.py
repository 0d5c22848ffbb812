"""The pull-request check: a `promobot/pipeline` commit status on every open PR's head.

A commit status rather than a check run: it needs only `statuses: write`, has
no check-suite lifecycle to drive (create, in_progress, complete), and one
POST replaces the previous verdict for the same (sha, context).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.core import ci
from bot.core.verdict import Branch, Verdict, cut, red_since, verdict
from bot.pipeline.outbox import GitHubRequest
from bot.pipeline.tx import Change, Tx
from storage import builds, people, prs

CONTEXT = "promobot/pipeline"


def read_branch(tx: Tx, repo_id: int) -> Branch:
    """Read what the verdict depends on for one repository."""
    config = tx.config
    production = config.pipeline.stages[-1].name
    first = red_since(prs.red_run(tx.db, repo_id))
    failing: list[dict] = []
    if first:
        reports = builds.check_reports(tx.db, repo_id, first["sha"])
        failing = ci.failing(reports, config.pipeline.required_checks)
    deployed = prs.last_deployed_number(tx.db, repo_id, production)
    return Branch(
        red_since=first,
        failing=failing,
        freeze=frozen_by_name(tx, prs.open_freeze(tx.db, repo_id)),
        behind=prs.builds_newer_than(tx.db, repo_id, deployed or 0),
        production=production,
        name=config.pipeline.branch,
    )


def frozen_by_name(tx: Tx, freeze: dict[str, Any] | None) -> dict[str, Any] | None:
    """Name who froze merges by their Slack display name (GitHub cannot show a mention)."""
    if freeze is None:
        return None
    return {**freeze, "frozen_by": people.name_of(tx.db, freeze["frozen_by"])}


def publish(tx: Tx, pr: Mapping[str, Any], result: Verdict, *, only_flips: bool = False) -> bool:
    """Queue the status for one PR unless it already carries it; return True if queued.

    With `only_flips`, a green PR that stays green keeps its status: a changed
    "N builds behind" alone is not worth a write on every build.
    """
    last = prs.last_status(tx.db, pr["repo_id"], pr["number"])
    if last is not None and last["sha"] == pr["head_sha"]:
        said = (last["state"], last["description"], last["target_url"])
        if said == (result.state, result.description, result.target_url):
            return False
        if only_flips and last["state"] == result.state == "success":
            return False
    repo = builds.repository(tx.db, pr["repo_id"])
    if repo is None:
        return False
    body = {"state": result.state, "description": result.description, "context": CONTEXT}
    if result.target_url:
        body["target_url"] = result.target_url
    # A commit status is idempotent by nature: posting it again after a lost answer only
    # repeats the newest state of (sha, context), so unlike a Deployment it needs no lookup.
    tx.send(
        GitHubRequest.commit_status(
            repo["full_name"],
            pr["head_sha"],
            repo["installation_id"],
            body,
            key=f"prstatus:{pr['repo_id']}:{pr['number']}",
        )
    )
    prs.remember_status(
        tx.db,
        {
            "repo_id": pr["repo_id"],
            "number": pr["number"],
            "sha": pr["head_sha"],
            "state": result.state,
            "description": result.description,
            "target_url": result.target_url,
            "queued_at": tx.now,
        },
    )
    return True


def reevaluate(tx: Tx, repo_id: int, *, number: int | None = None, only_flips: bool = False) -> int:
    """Give one PR (or every open one) its current status; return how many were queued."""
    config: Config = tx.config
    open_prs = prs.open_pull_requests(tx.db, repo_id, config.pipeline.branch)
    if number is not None:
        open_prs = [pr for pr in open_prs if pr["number"] == number]
    if not open_prs:
        return 0
    result = verdict(
        read_branch(tx, repo_id),
        block_when_red=config.block_when_red,
        timezone=config.digest.timezone,
    )
    return sum(publish(tx, pr, result, only_flips=only_flips) for pr in open_prs)


def react(tx: Tx, change: Change) -> None:
    """Re-evaluate PR statuses when something they depend on changed."""
    if change.kind == "pull_request.changed":
        reevaluate(tx, change.repo_id, number=change.detail.get("number"))
    elif change.kind == "ci.changed":
        reevaluate(tx, change.repo_id, only_flips=True)
    elif change.kind == "freeze.changed" or (
        change.kind == "deployment.changed" and change.stage == tx.config.pipeline.stages[-1].name
    ):
        reevaluate(tx, change.repo_id)


@dataclass(frozen=True)
class PullRequest:
    """A pull request as a webhook describes it, reduced to what the check needs."""

    number: int
    head_sha: str
    base_ref: str
    title: str
    author: str
    open: bool
    draft: bool


def apply_pull_request(tx: Tx, repo_id: int, pr: PullRequest) -> None:
    """Track a pull request's state; its check follows (closed ones drop out)."""
    prs.upsert_pull_request(
        tx.db,
        {
            "repo_id": repo_id,
            "number": pr.number,
            "head_sha": pr.head_sha,
            "base_ref": pr.base_ref,
            "title": pr.title,
            "author": pr.author,
            "state": "open" if pr.open else "closed",
            "draft": int(pr.draft),
            "updated_at": tx.now,
        },
    )
    last = prs.last_status(tx.db, repo_id, pr.number)
    if pr.open and pr.base_ref != tx.config.pipeline.branch and last and last["state"] != "success":
        # Retargeted away from the tracked branch: lift our failure, or it blocks for good.
        row = {"repo_id": repo_id, "number": pr.number, "head_sha": pr.head_sha}
        note = f"not into {tx.config.pipeline.branch}: promobot does not gate it"
        publish(tx, row, Verdict("success", cut(note)))
    tx.emit(Change("pull_request.changed", repo_id, detail={"number": pr.number}))
