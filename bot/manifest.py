"""The GitHub App manifest and the Slack app manifest, built from app.yaml."""

from typing import Any

import yaml

from bot.config import Config

SLACK_BOT_SCOPES = (
    "chat:write",  # post and edit pipeline messages
    "chat:write.public",  # post to public channels without being invited first
    "channels:history",  # after a crash, find a post that landed before promobot recorded it
    "groups:history",  # the same, in private channels
    "channels:read",  # ...and, if that post was the channel's first, find the channel by name
    "groups:read",
    "commands",  # /ship and /promote
    "usergroups:read",  # resolve promoter user groups (S…)
    "users:read",  # users.info: display names outside Slack mentions (bot/engine/names.py)
)


def github_manifest(config: Config, url: str) -> dict[str, Any]:
    """Return the GitHub App manifest (the Probot app.yml convention)."""
    url = url.rstrip("/")
    return {
        "name": config.name,
        "url": url,
        "hook_attributes": {"url": f"{url}/github/webhooks", "active": True},
        "redirect_url": f"{url}/github/setup",  # the manifest flow ends there
        "public": False,
        "default_events": list(config.events),
        "default_permissions": dict(config.permissions),
    }


def slack_manifest(config: Config, url: str) -> str:
    """Return the Slack app manifest as YAML."""
    url = url.rstrip("/")
    events = f"{url}/slack/events"
    manifest = {
        "display_information": {
            "name": config.name,
            "description": "Carries every build through the pipeline and runs the release.",
        },
        "features": {
            "bot_user": {"display_name": config.name, "always_online": True},
            "slash_commands": [
                {
                    "command": "/ship",
                    "url": events,
                    "description": "Release pipeline",
                    "usage_hint": "status | promote <build> to <stage> | help",
                    "should_escape": False,
                },
                {
                    "command": "/promote",
                    "url": events,
                    "description": "Promote a build",
                    "usage_hint": "<build> [to] <stage>",
                    "should_escape": False,
                },
            ],
        },
        "oauth_config": {"scopes": {"bot": list(SLACK_BOT_SCOPES)}},
        "settings": {
            "interactivity": {"is_enabled": True, "request_url": events},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
