"""Sign and send requests to a running promobot as GitHub and Slack would (dev mode and demo)."""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp

DEV_TEAM = "T0DEV"  # the workspace dev mode answers, and the one `promobot send` speaks for

# The demo repository: webhook bodies are shaped like GitHub's, about this repository.
REPO: dict[str, Any] = {"id": 700_001, "full_name": "acme/storefront", "installation": 4242}


def github_signature(body: bytes, secret: str) -> str:
    """Return X-Hub-Signature-256 for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the headers Slack signs a request body with."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{stamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def post_webhook(
    session: aiohttp.ClientSession, url: str, secret: str, event: str, payload: dict[str, Any]
) -> tuple[int, str]:
    """POST a signed GitHub delivery to `url`/github/webhooks; return (status, body)."""
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(body, secret),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/promobot-dev",
    }
    async with session.post(url.rstrip("/") + "/github/webhooks", data=body, headers=headers) as r:
        return r.status, await r.text()


async def post_slack(
    session: aiohttp.ClientSession, url: str, secret: str, form: dict[str, str]
) -> tuple[int, str]:
    """POST a signed Slack form (slash command or interaction) to `url`/slack/events."""
    body = urlencode(form)
    headers = slack_headers(body, secret)
    async with session.post(url.rstrip("/") + "/slack/events", data=body, headers=headers) as r:
        return r.status, await r.text()


def slash_form(
    text: str,
    *,
    user: str,
    user_name: str,
    response_url: str,
    command: str = "/ship",
    channel_id: str = "CDEVRELEASES",
    channel_name: str = "releases",
) -> dict[str, str]:
    """Return the form fields of a slash command, as Slack sends them."""
    return {
        "token": "dev-verification-token",
        "team_id": DEV_TEAM,
        "team_domain": "promobot-dev",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A0DEV",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex[:16]}",
    }


def block_actions_form(
    *,
    user: str,
    user_name: str,
    channel_id: str,
    message: dict[str, Any],
    action: dict[str, Any],
    block_id: str,
    response_url: str,
) -> dict[str, str]:
    """Return the form of a button click (block_actions) on a message, as Slack sends it."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": DEV_TEAM},
        "api_app_id": "A0DEV",
        "token": "dev-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex[:16]}",
        "team": {"id": DEV_TEAM, "domain": "promobot-dev"},
        "channel": {"id": channel_id, "name": "releases"},
        "message": {
            "type": "message",
            "ts": message["ts"],
            "text": message["text"],
            "blocks": message.get("blocks") or [],
        },
        "response_url": response_url,
        "actions": [
            {
                "action_id": action.get("action_id", ""),
                "block_id": block_id,
                "text": action.get("text") or {"type": "plain_text", "text": "Button"},
                "value": action.get("value", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return {"payload": json.dumps(payload)}


def iso(at: float) -> str:
    """Return GitHub's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def repository() -> dict[str, Any]:
    """Return the demo repository as webhook bodies carry it."""
    owner, name = REPO["full_name"].split("/")
    return {
        "id": REPO["id"],
        "node_id": "R_demo",
        "name": name,
        "full_name": REPO["full_name"],
        "private": True,
        "owner": {"login": owner, "id": 9_000_001, "type": "Organization"},
        "html_url": f"https://github.com/{REPO['full_name']}",
        "url": f"https://api.github.com/repos/{REPO['full_name']}",
        "default_branch": "main",
        "master_branch": "main",
    }


def push_body(sha: str, before: str, message: str, login: str, at: float) -> dict[str, Any]:
    """Return a push to main with one commit, shaped like GitHub's."""
    base = f"https://github.com/{REPO['full_name']}"
    commit = {
        "id": sha,
        "tree_id": hashlib.sha1(sha.encode()).hexdigest(),
        "distinct": True,
        "message": message,
        "timestamp": iso(at),
        "url": f"{base}/commit/{sha}",
        "author": {"name": login.title(), "email": f"{login}@acme.test", "username": login},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [],
        "removed": [],
        "modified": ["app/search.py"],
    }
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": sha,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{base}/compare/{before[:12]}...{sha[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "repository": repository(),
        "pusher": {"name": login, "email": f"{login}@acme.test"},
        "sender": {"login": login, "id": 1000 + len(login), "type": "User"},
        "installation": {"id": REPO["installation"]},
    }


def status_body(sha: str, context: str, state: str, description: str, at: float) -> dict:
    """Return a commit status event, shaped like GitHub's."""
    return {
        "id": int(at * 1000) % 10**9,
        "sha": sha,
        "name": REPO["full_name"],
        "target_url": f"https://ci.acme.test/{context}/{sha[:7]}",
        "context": context,
        "description": description,
        "state": state,
        "commit": {"sha": sha, "html_url": f"https://github.com/{REPO['full_name']}/commit/{sha}"},
        "branches": [{"name": "main", "commit": {"sha": sha}, "protected": True}],
        "created_at": iso(at),
        "updated_at": iso(at),
        "repository": repository(),
        "sender": {"login": "ci-bot", "id": 77, "type": "Bot"},
        "installation": {"id": REPO["installation"]},
    }


def view_submission_form(*, user: str, user_name: str, view: dict[str, Any], reason: str) -> dict:
    """Return the form of a modal submitted with `reason` typed into its `reason` input."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T0DEV", "domain": "promobot-dev"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": "T0DEV"},
        "api_app_id": "A0DEV",
        "token": "dev-verification-token",
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex[:16]}",
        "view": {
            "id": "VDEV",
            "team_id": "T0DEV",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view.get("private_metadata", ""),
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
            },
            "hash": f"{int(time.time())}.dev",
        },
        "response_urls": [],
    }
    return {"payload": json.dumps(payload)}


def button_forms(
    action: str, promotion: str, *, user: str, user_name: str, where: tuple[str, str], url: str
) -> dict[str, str]:
    """Return the form of a click on a button of an approval message at (channel ID, ts)."""
    return block_actions_form(
        user=user,
        user_name=user_name,
        channel_id=where[0],
        message={"ts": where[1], "text": f"Promotion {promotion}"},
        action={"action_id": f"promotion.{action}", "value": promotion},
        block_id=f"promotion:{promotion}",
        response_url=url.rstrip("/") + "/dev/slack/respond",
    )
