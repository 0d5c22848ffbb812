"""Deployments through GitHub: create them, follow their statuses, gather the gates' facts.

Entering a stage is a deployments row plus an outbox row that asks GitHub to
create the Deployment; GitHub's id is recorded when it answers. Progress comes
back as `deployment_status` webhooks (apply_status).
"""

from dataclasses import dataclass, replace
from typing import Any

from bot.config import Stage
from bot.core import gates
from bot.pipeline.outbox import GitHubRequest
from bot.pipeline.tx import Change, Tx
from storage import builds, people, pipeline

TERMINAL = ("success", "failure", "error", "inactive")
STATES = ("queued", "in_progress", *TERMINAL)


def start(tx: Tx, build: dict[str, Any], stage: Stage, promotion_id: int, requested_by: str) -> int:
    """Create the deployment of `build` into `stage`, queue GitHub's Deployment; return its id."""
    repo = builds.repository(tx.db, build["repo_id"]) or {}
    deployment_id = pipeline.add_deployment(
        tx.db,
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        promotion_id=promotion_id,
        state="requested",
        requested_by=requested_by,
        created_at=tx.now,
        updated_at=tx.now,
    )
    body = github_body(
        build, stage, promotion_id, requested_by, people.name_of(tx.db, requested_by)
    )
    tx.send(
        GitHubRequest.deployment(
            str(repo.get("full_name")), repo.get("installation_id"), body, deployment_id
        )
    )
    tx.log(
        actor=requested_by,
        action="deployment.requested",
        repo_id=build["repo_id"],
        build_id=build["id"],
        stage=stage.name,
        detail={"deployment": deployment_id, "promotion": promotion_id},
    )
    changed(tx, build["repo_id"], build["id"], stage.name, "requested", deployment_id)
    return deployment_id


def github_body(
    build: dict[str, Any], stage: Stage, promotion_id: int, requested_by: str, name: str = ""
) -> dict[str, Any]:
    """Return the body of POST /repos/{owner}/{repo}/deployments for a build entering a stage."""
    return {
        "ref": build["sha"],
        "environment": stage.name,
        "production_environment": stage.production,
        "auto_merge": False,
        "required_contexts": [],  # promobot gates itself
        "payload": {
            "build": build["number"],
            "promotion": promotion_id,
            "requested_by": requested_by,
        },
        # People read the description on GitHub: a name, where the payload keeps the ID.
        "description": f"#{build['number']} to {stage.name} for {name or requested_by}"[:140],
    }


def changed(tx: Tx, repo_id: int, build_id: int, stage: str, state: str, dep: int) -> None:
    """Emit deployment.changed for the renderers and reactions."""
    detail = {"state": state, "deployment_id": dep}
    tx.emit(Change("deployment.changed", repo_id, build_id, stage, detail=detail))


def record_created(answer: Any, request: GitHubRequest) -> Any:
    """Store the id GitHub gave the new Deployment on our deployments row."""
    github_id, local_id = (answer or {}).get("id"), request.deployment_id
    if github_id is None or local_id is None:
        return None
    return lambda db: pipeline.set_deployment(db, int(local_id), github_id=int(github_id))


@dataclass(frozen=True)
class Status:
    """A deployment_status webhook, reduced to what moves our deployment."""

    github_id: int
    promotion_id: int | None
    state: str
    creator: str
    description: str


def apply_status(tx: Tx, status: Status) -> None:
    """Move our deployment to the reported state; log it and emit deployment.changed."""
    dep = pipeline.deployment_for_status(tx.db, status.github_id, status.promotion_id)
    if status.state == "pending":  # GitHub's older name for queued
        status = replace(status, state="queued")
    if dep is None or status.state not in STATES or dep["state"] == status.state:
        return  # not ours (another tool deploys too), or nothing new
    if dep["state"] in TERMINAL and status.state not in TERMINAL:
        return  # a late queued/in_progress never reopens a finished deployment
    values: dict[str, Any] = {"state": status.state, "updated_at": tx.now}
    if dep["github_id"] is None:
        values["github_id"] = status.github_id
    if status.state in TERMINAL and dep["finished_at"] is None:
        values["finished_at"] = tx.now
    if status.state == "success":
        values["succeeded_at"] = tx.now
    pipeline.set_deployment(tx.db, dep["id"], **values)
    tx.log(
        actor=status.creator,
        action=f"deployment.{status.state}",
        repo_id=dep["repo_id"],
        build_id=dep["build_id"],
        stage=dep["stage"],
        reason=status.description or None,
        detail={"deployment": dep["id"], "github_id": status.github_id},
    )
    changed(tx, dep["repo_id"], dep["build_id"], dep["stage"], status.state, dep["id"])


def facts(
    tx: Tx,
    build: dict[str, Any],
    stage: Stage,
    person: str,
    promoter: bool | None,
    approvers: tuple[str, ...] = (),
) -> gates.Facts:
    """Gather what the gates of (build, stage, person) are decided from."""
    previous = tx.config.pipeline.previous(stage)
    return gates.Facts(
        build=build,
        stage=stage,
        previous=previous,
        previous_deployments=pipeline.build_deployments(tx.db, build["id"], previous.name)
        if previous
        else [],
        lock=pipeline.open_lock(tx.db, build["repo_id"], stage.name, tx.now),
        rolled_back=previous is not None
        and pipeline.rolled_back(tx.db, build["repo_id"], previous.name, build["id"]),
        person=person,
        promoter=promoter,
        approvers=approvers,
    )
