"""Build the forms Slack posts: slash commands, button clicks and modal submissions.

Dev mode's CLI and demo, the tests and bench/ type and click through these, signed by client.py.
"""

import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from bot.dev.client import DEV_TEAM

FIXTURES = Path(__file__).parent / "fixtures" / "slack"  # bolt-python's: see ../SOURCES.md


def trigger_id() -> str:
    """Return a fresh trigger ID: Slack makes one per request, so no two bodies are the same."""
    return f"{int(time.time())}.1.{uuid.uuid4().hex[:16]}"


def slash_form(
    text: str,
    *,
    user: str,
    user_name: str,
    response_url: str,
    command: str = "/ship",
    channel_id: str = "CDEVRELEASES",
    channel_name: str = "releases",
    team: str = DEV_TEAM,
) -> dict[str, str]:
    """Return the form fields of a slash command, as Slack sends them."""
    return {
        "token": "dev-verification-token",
        "team_id": team,
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
        "trigger_id": trigger_id(),
    }


@cache
def _recorded_click() -> str:
    return (FIXTURES / "block_actions.json").read_text()


def block_actions(
    *,
    user: str,
    user_name: str,
    channel_id: str,
    message: dict[str, Any],
    action: dict[str, Any],
    block_id: str,
    response_url: str,
    team: str = DEV_TEAM,
) -> dict[str, Any]:
    """Return a click on a button of a message: bolt-python's recorded block_actions, filled in."""
    payload = dict(json.loads(_recorded_click()))
    payload.update(
        user={"id": user, "username": user_name, "name": user_name, "team_id": team},
        team={"id": team, "domain": "promobot-dev"},
        container={
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        channel={"id": channel_id, "name": "releases"},
        message={
            "type": "message",
            "ts": message["ts"],
            "text": message["text"],
            "blocks": message.get("blocks") or [],
        },
        response_url=response_url,
        trigger_id=trigger_id(),
    )
    payload["actions"][0].update(
        action_id=action.get("action_id", ""),
        block_id=block_id,
        value=action.get("value", ""),
        action_ts=f"{time.time():.6f}",
    )
    if action.get("text"):
        payload["actions"][0]["text"] = action["text"]
    return payload


def view_submission(
    *, user: str, user_name: str, view: dict[str, Any], reason: str, team: str = DEV_TEAM
) -> dict[str, Any]:
    """Return the submission of a modal with `reason` typed into its `reason` input."""
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "promobot-dev"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": team},
        "api_app_id": "A0DEV",
        "token": "dev-verification-token",
        "trigger_id": trigger_id(),
        "view": {
            "id": "VDEV",
            "team_id": team,
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


def interaction_form(payload: dict[str, Any]) -> dict[str, str]:
    """Return the form Slack posts an interaction in: one field, `payload`, holding its JSON."""
    return {"payload": json.dumps(payload)}


def button_forms(
    action: str, promotion: str, *, user: str, user_name: str, where: tuple[str, str], url: str
) -> dict[str, str]:
    """Return the form of a click on a button of an approval message at (channel ID, ts)."""
    click = block_actions(
        user=user,
        user_name=user_name,
        channel_id=where[0],
        message={"ts": where[1], "text": f"Promotion {promotion}"},
        action={"action_id": f"promotion.{action}", "value": promotion},
        block_id=f"promotion:{promotion}",
        response_url=url.rstrip("/") + "/dev/slack/respond",
    )
    return interaction_form(click)
