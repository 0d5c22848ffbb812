"""Payloads into values: the one place that reads GitHub webhook bodies and Slack payloads.

Each function takes a body as GitHub or Slack sent it and returns the typed value bot/
acts on (or None when the body asks nothing of promobot); a new payload field is read here.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core import ci, diff
from bot.core.text import safe_url
from bot.pipeline import deployments, prcheck, workflows

Body = Mapping[str, Any]
# The pull request actions that change what its check says (`edited` only with a new base).
PR_ACTIONS = ("opened", "reopened", "synchronize", "ready_for_review", "converted_to_draft")


def about(data: Any) -> dict[str, Any]:
    """Return what a delivery's log lines say of it: repository, promotion, stage."""
    if not isinstance(data, dict):
        return {}
    repo = data.get("repository")
    deployment = data.get("deployment")
    extra = deployment.get("payload") if isinstance(deployment, dict) else None
    found = {
        "repo": repo.get("full_name") if isinstance(repo, dict) else None,
        "stage": deployment.get("environment") if isinstance(deployment, dict) else None,
        "promotion": extra.get("promotion") if isinstance(extra, dict) else None,
    }
    return {k: v for k, v in found.items() if isinstance(v, str | int)}


def parse_time(text: str | None) -> float | None:
    """Return epoch seconds of a GitHub timestamp ('2019-05-15T15:20:55Z' or with an offset)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def repo(payload: Body) -> workflows.Repo:
    """Read the repository (and installation) of a webhook body."""
    found = payload["repository"]
    installation = payload.get("installation") or {}
    return workflows.Repo(
        id=int(found["id"]),
        full_name=str(found["full_name"]),
        html_url=str(found.get("html_url") or f"https://github.com/{found['full_name']}"),
        installation_id=installation.get("id"),
    )


def push(payload: Body, branch: str) -> workflows.Push | None:
    """Return the build a push makes, or None unless it moved `branch` (no tag, no deletion)."""
    head = payload.get("head_commit")
    if payload.get("ref") != f"refs/heads/{branch}" or payload.get("deleted") or not head:
        return None
    author = (head.get("author") or {}).get("username") or (head.get("author") or {}).get("name")
    pushed = parse_time(head.get("timestamp")) or 0.0
    commits = payload.get("commits") or []
    return workflows.Push(
        repo=repo(payload),
        sha=payload["after"],
        message=str(head.get("message") or ""),
        author=str(author or (payload.get("pusher") or {}).get("name") or "someone"),
        html_url=str(head.get("url") or ""),
        commits=max(1, len(commits)),
        pushed_at=pushed,
        carried=carried(commits, pushed),
        capped=len(commits) >= diff.PUSH_CAP,
    )


def carried(commits: list[dict[str, Any]], pushed: float) -> tuple[workflows.Carried, ...]:
    """Return each commit of a push (untimed: the push's time), its author and PR number."""
    return tuple(
        (
            str(c["id"]),
            str(c.get("message") or ""),
            parse_time(c.get("timestamp")) or pushed,
            author_of(c),
            diff.pull_request_of(str(c.get("message") or "")),
        )
        for c in commits
        if isinstance(c, dict) and c.get("id")
    )


def author_of(raw: Body) -> str:
    """Return who wrote a commit of a push payload: their GitHub login, else their name."""
    author = raw.get("author") or {}
    return str(author.get("username") or author.get("name") or "")


def status(payload: Body) -> tuple[workflows.Repo, ci.Report] | None:
    """Return a commit status as a check report, or None for promobot's own PR check."""
    if payload.get("context") == prcheck.CONTEXT:
        return None  # our verdict on a PR head must never count as that commit's CI
    about = repo(payload)
    return about, status_report(about.id, payload)


def status_report(repo_id: int, payload: Body) -> ci.Report:
    """Turn a `status` webhook body into a Report."""
    stamp = parse_time(payload.get("updated_at") or payload.get("created_at"))
    return ci.Report(
        repo_id=repo_id,
        sha=payload["sha"],
        context=payload["context"],
        kind="status",
        state=ci.STATUS_STATES[payload["state"]],
        description=payload.get("description"),
        target_url=safe_url(payload.get("target_url")),
        reported_at=stamp or 0.0,
    )


def check_run(payload: Body) -> tuple[workflows.Repo, ci.Report]:
    """Return the check report of a `check_run` body."""
    about = repo(payload)
    return about, check_run_report(about.id, payload["check_run"])


def check_run_report(repo_id: int, run: Body) -> ci.Report:
    """Turn a `check_run` object into a Report."""
    done = run.get("status") == "completed"
    state = ci.CONCLUSIONS.get(run.get("conclusion") or "", "failure") if done else "pending"
    stamp = parse_time(run.get("completed_at") if done else run.get("started_at"))
    output = run.get("output") or {}
    return ci.Report(
        repo_id=repo_id,
        sha=run["head_sha"],
        context=run["name"],
        kind="check_run",
        state=state,
        description=output.get("title") or run.get("conclusion"),
        target_url=safe_url(run.get("html_url")) or safe_url(run.get("details_url")),
        reported_at=stamp or 0.0,
    )


def check_suite(payload: Body) -> tuple[workflows.Repo, ci.Report]:
    """Return a completed `check_suite` body as a report named for its app."""
    about = repo(payload)
    suite = payload["check_suite"]
    app = suite.get("app") or {}
    return about, ci.Report(
        repo_id=about.id,
        sha=suite["head_sha"],
        context=app.get("slug") or app.get("name") or "check-suite",
        kind="check_suite",
        state=ci.CONCLUSIONS.get(suite.get("conclusion") or "", "failure"),
        description=suite.get("conclusion"),
        target_url=None,
        reported_at=parse_time(suite.get("updated_at")) or 0.0,
    )


def pull_request(payload: Body) -> tuple[workflows.Repo, prcheck.PullRequest] | None:
    """Return a pull request whose check may change (open, head, base, draft), else None."""
    action = payload.get("action")
    base_changed = action == "edited" and "base" in (payload.get("changes") or {})
    if action not in (*PR_ACTIONS, "closed") and not base_changed:
        return None
    pr = payload["pull_request"]
    return repo(payload), prcheck.PullRequest(
        number=int(pr["number"]),
        head_sha=str(pr["head"]["sha"]),
        base_ref=str(pr["base"]["ref"]),
        title=str(pr.get("title") or ""),
        author=str((pr.get("user") or {}).get("login") or "someone"),
        open=pr.get("state") == "open",
        draft=bool(pr.get("draft")),
    )


def deployment_status(payload: Body) -> tuple[workflows.Repo, deployments.Status]:
    """Return where a deployment moved (queued, in progress, success, failure …)."""
    status, deployment = payload["deployment_status"], payload["deployment"]
    extra = deployment.get("payload")
    promotion = extra.get("promotion") if isinstance(extra, dict) else None
    return repo(payload), deployments.Status(
        github_id=int(deployment["id"]),
        promotion_id=int(promotion) if isinstance(promotion, int) else None,
        state=str(status["state"]),
        creator=str((status.get("creator") or {}).get("login") or "github"),
        description=str(status.get("description") or ""),
    )


def installation(payload: Body) -> workflows.Installation:
    """Return an installation's change and the repositories it covers."""
    found = payload["installation"]
    return workflows.Installation(
        id=int(found["id"]),
        action=payload.get("action"),
        account=(found.get("account") or {}).get("login", ""),
        target_type=found.get("target_type"),
        repositories=tuple(
            (int(r["id"]), r["full_name"]) for r in payload.get("repositories") or []
        ),
        sender=(payload.get("sender") or {}).get("login", "github"),
    )


@dataclass(frozen=True)
class SlashCommand:
    """A /ship or /promote as Slack sent it: who typed what, where."""

    user: str
    channel_id: str
    channel_name: str
    text: str  # as typed: Slack's escaping of & < > undone
    command: str | None


def slash_command(payload: Body) -> SlashCommand:
    """Return who typed a slash command, where, and what."""
    return SlashCommand(
        user=payload.get("user_id", ""),
        channel_id=payload.get("channel_id", ""),
        channel_name=payload.get("channel_name", ""),
        text=unescape(payload.get("text") or ""),
        command=payload.get("command"),
    )


def unescape(text: str) -> str:
    """Undo Slack's escaping of & < > in command text; everything shown is escaped again."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clicker(body: Body) -> str:
    """Return the user ID of whoever clicked a button or submitted a modal."""
    return (body.get("user") or {}).get("id", "")


def button_value(action: Body) -> str:
    """Return the value of a clicked button (it names the promotion)."""
    return str(action.get("value", ""))


def trigger_id(body: Body) -> str:
    """Return the trigger that lets a click open a modal (for 3 s)."""
    return body.get("trigger_id", "")


def where_clicked(body: Body) -> tuple[str, str]:
    """Return (channel ID, message ts) of the message whose button was clicked."""
    container, channel, message = (
        found if isinstance(found := body.get(key), dict) else {}
        for key in ("container", "channel", "message")
    )
    where = str(channel.get("id") or container.get("channel_id") or "")
    return where, str(container.get("message_ts") or message.get("ts") or "")


def reject_submission(view: Body) -> tuple[str, str, str]:
    """Return (promotion, channel, reason) from a submitted reject modal."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    values = (view.get("state") or {}).get("values") or {}
    reason = ((values.get("reason") or {}).get("reason") or {}).get("value") or ""
    return str(meta.get("promotion", "")), str(meta.get("channel", "")), reason.strip()
