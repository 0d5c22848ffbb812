"""Build the webhook bodies GitHub sends: the recorded payloads with the sha, state and times set.

Dev mode's demo, the tests and bench/ build their deliveries here: a push is about 7 KB before
its commits, a status about 10 KB, a check run about 12 KB, as GitHub's are.
"""

import hashlib
import json
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "github"  # octokit's: see ../SOURCES.md
RECORDED_SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"  # the sha the recorded bodies name
RECORDED_REPO = "Codertocat/Hello-World"
INSTALLATION = 957387  # the recorded bodies' installation


@cache
def _text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def recorded(name: str) -> dict[str, Any]:
    """Return a fresh copy of one recorded webhook body (`push`, `status`, `check_run.created`)."""
    return dict(json.loads(_text(name)))


def iso(at: float) -> str:
    """Return GitHub's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _when(stamp: str | float) -> str:
    return stamp if isinstance(stamp, str) else iso(stamp)


def repository(full_name: str = RECORDED_REPO, repo_id: int | None = None) -> dict[str, Any]:
    """Return the recorded repository object, moved to `full_name` (every URL with it)."""
    text = json.dumps(recorded("push")["repository"]).replace(RECORDED_REPO, full_name)
    repo = dict(json.loads(text))
    repo["name"] = full_name.split("/")[1]
    repo["owner"]["login"] = full_name.split("/")[0]
    if repo_id is not None:
        repo["id"] = repo_id
    return repo


def commit(
    sha: str,
    message: str,
    *,
    author: str = "octocat",
    stamp: str | float = "2026-11-24T09:00:00Z",
    repo_url: str = f"https://github.com/{RECORDED_REPO}",
    added: Sequence[str] = (),
    modified: Sequence[str] = (),
) -> dict[str, Any]:
    """Return one commit of a push, shaped as GitHub sends it."""
    return {
        "id": sha,
        "tree_id": hashlib.sha1(sha.encode()).hexdigest(),
        "distinct": True,
        "message": message,
        "timestamp": _when(stamp),
        "url": f"{repo_url}/commit/{sha}",
        "author": {"name": author.title(), "email": f"{author}@example.com", "username": author},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": list(added),
        "removed": [],
        "modified": list(modified),
    }


def push(
    sha: str = RECORDED_SHA,
    *,
    message: str = "Fix the frobnicator",
    author: str = "octocat",
    ref: str = "refs/heads/main",
    stamp: str | float = "2026-11-24T09:00:00Z",
    before: str = "0" * 40,
    commits: list[dict[str, Any]] | None = None,
    repo: dict[str, Any] | None = None,
    installation: int = INSTALLATION,
) -> dict[str, Any]:
    """Return a push to `ref` whose head commit is `sha` (or the last of `commits`)."""
    body = recorded("push")
    if repo is not None:
        body["repository"] = repo
    url = body["repository"]["html_url"]
    commits = commits or [commit(sha, message, author=author, stamp=stamp, repo_url=url)]
    body.update(
        ref=ref,
        before=before,
        after=sha,
        created=False,
        deleted=False,
        compare=f"{url}/compare/{before[:12]}...{sha[:12]}",
        commits=commits,
        head_commit=commits[-1],
        installation={"id": installation},
    )
    return body


def status(
    sha: str = RECORDED_SHA,
    *,
    state: str = "success",
    context: str = "ci/test",
    stamp: str | float = "2026-11-24T09:05:00Z",
    description: str | None = None,
    target_url: str | None = "https://ci.example.com/1",
    repo: dict[str, Any] | None = None,
    installation: int = INSTALLATION,
) -> dict[str, Any]:
    """Return a commit status of `sha` on main, reported by `context` as `state`."""
    body = recorded("status")
    at = _when(stamp)
    body.update(sha=sha, state=state, context=context, created_at=at, updated_at=at)
    body.update(description=description, target_url=target_url)
    body["commit"]["sha"] = sha
    body["branches"] = [{"name": "main", "commit": {"sha": sha}, "protected": True}]
    if repo is not None:
        body.update(name=repo["full_name"], repository=repo)
    body["installation"] = {"id": installation}
    return body


def small_status(
    sha: str, full_name: str, repo_id: int, *, context: str = "ci/test", state: str = "success"
) -> dict[str, Any]:
    """Return a commit status cut to the fields promobot reads (about 700 bytes, not 11 KB)."""
    url, at = f"https://github.com/{full_name}", iso(time.time())
    return {
        "id": 1,
        "sha": sha,
        "name": full_name,
        "target_url": "https://ci.example.com/1",
        "context": context,
        "description": "The build succeeded",
        "state": state,
        "commit": {"sha": sha, "html_url": f"{url}/commit/{sha}"},
        "branches": [{"name": "main", "commit": {"sha": sha}}],
        "created_at": at,
        "updated_at": at,
        "repository": {
            "id": repo_id,
            "full_name": full_name,
            "html_url": url,
            "name": full_name.split("/")[1],
            "owner": {"login": full_name.split("/")[0]},
        },
        "installation": {"id": INSTALLATION},
        "sender": {"login": "ci-bot"},
    }


def check_run(
    sha: str,
    name: str,
    *,
    done: bool,
    stamp: float,
    repo: dict[str, Any] | None = None,
    installation: int = INSTALLATION,
) -> dict[str, Any]:
    """Return a check run of `sha` started (in progress) or `done` (a success) at `stamp`."""
    body = recorded("check_run.completed" if done else "check_run.created")
    run = body["check_run"]
    run.update(head_sha=sha, name=name, started_at=iso(stamp - 1))
    run.update(status="completed" if done else "in_progress")
    run.update(conclusion="success" if done else None, completed_at=iso(stamp) if done else None)
    run["check_suite"]["head_sha"] = sha
    if repo is not None:
        body["repository"] = repo
    body["installation"] = {"id": installation}
    return body


def deployment_status(
    deployment_id: int,
    state: str,
    environment: str,
    *,
    payload: dict[str, Any] | None = None,
    description: str = "",
    installation: int = INSTALLATION,
    created: dict[str, Any] | None = None,
    status_id: int | None = None,
    stamp: float | None = None,
    repo: dict[str, Any] | None = None,
    sender: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return GitHub's report that deployment `deployment_id` into `environment` is `state`."""
    # `created`: the deployment as GitHub answered its creation (dev mode keeps that answer);
    # without it, the recorded deployment carries the id, environment and `payload`.
    body = recorded("deployment_status")
    status = body["deployment_status"]
    status.update(state=state, environment=environment, description=description)
    if created is None:
        body["deployment"].update(id=deployment_id, environment=environment, payload=payload or {})
    else:
        body["deployment"] = created
        status.update(deployment_url=created["url"], repository_url=created["repository_url"])
    if status_id is not None:
        status.update(id=status_id, url=f"{status['deployment_url']}/statuses/{status_id}")
    if stamp is not None:
        status.update(created_at=iso(stamp), updated_at=iso(stamp))
    if sender is not None:
        body["sender"] = status["creator"] = sender
    if repo is not None:
        body["repository"] = repo
    body["installation"] = {"id": installation}
    return body
