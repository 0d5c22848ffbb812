"""Where features plug in: the reactions to pipeline changes and the GitHub answer recorders.

Each feature adds its entry here and nowhere else, so the composition root
stays one list long.
"""

from collections.abc import Sequence

from bot.engine.github import GitHubRecord
from bot.pipeline import approvals, deployments, prcheck, progress, promotions
from bot.pipeline.tx import Change, Reaction, Tx


def expire_approvals(tx: Tx, change: Change) -> None:
    """Let time pass for waiting promotions whenever the pipeline moves (commands do too)."""
    if change.kind in ("build.created", "ci.changed"):
        approvals.expire_due(tx)


def reactions() -> Sequence[Reaction]:
    """Return the reactions run, in order, on every Change inside its transaction."""
    return (promotions.react, expire_approvals, progress.on_change, prcheck.react)


def github_recorders() -> dict[str, GitHubRecord]:
    """Return the recorders that store what GitHub answered (by the outbox row's `record`)."""
    return {"deployment.created": deployments.record_created}
