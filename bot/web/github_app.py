"""Finish the GitHub App's manifest flow: keep what GitHub answered, say what to do next."""

import html
import json
import os
import secrets as random
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.config import Config
from bot.manifest import github_manifest

CREDENTIALS_FILE = "promobot-github-app.json"


def credentials_path(db_path: str | Path) -> Path:
    """Return where the App's credentials are written: next to the database."""
    return Path(db_path).resolve().parent / CREDENTIALS_FILE


def github_web_url(api_url: str) -> str:
    """Return GitHub's web address for its API address (GitHub Enterprise serves /api/v3)."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc == "api.github.com":
        return "https://github.com"
    return f"{parts.scheme}://{parts.netloc}"


def new_state() -> str:
    """Return an unguessable state that GitHub hands back with the code."""
    return random.token_urlsafe(24)


def write_credentials(path: Path, answer: dict[str, Any]) -> None:
    """Write the App's id, key and secret to `path`, readable by the service user alone."""
    kept = {
        "app_id": answer["id"],
        "slug": answer.get("slug"),
        "html_url": answer.get("html_url"),
        "webhook_secret": answer["webhook_secret"],
        "pem": answer["pem"],
        "client_id": answer.get("client_id"),
        "client_secret": answer.get("client_secret"),
    }
    # Created 0600 before anything is written into it, and never over an existing file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(kept, out, indent=2)
        out.flush()
        os.fsync(out.fileno())


def page(title: str, body: str) -> str:
    """Wrap `body` (already escaped) in a minimal page."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='font-family:sans-serif;max-width:46em;margin:2em auto'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def start_page(config: Config, api_url: str, state: str) -> str:
    """Return the one-click page: a form that hands GitHub the App manifest."""
    manifest = json.dumps(github_manifest(config, config.url))
    action = f"{github_web_url(api_url)}/settings/apps/new?state={state}"
    return page(
        f"Create the GitHub App for {config.name}",
        f"<p>GitHub will show the App it is about to create from this manifest; accept, and it "
        f"sends you back here to finish.</p>"
        f"<form method='post' action='{html.escape(action)}'>"
        f"<input type='hidden' name='manifest' value='{html.escape(manifest)}'>"
        f"<button type='submit'>Create the GitHub App</button></form>"
        f"<p>For an organisation, GitHub's address is "
        f"<code>/organizations/ORG/settings/apps/new</code>.</p>",
    )


def done_page(answer: dict[str, Any], path: Path) -> str:
    """Return the page that says where the credentials are and what to do next."""
    where = html.escape(str(path))
    install = html.escape(f"{answer.get('html_url') or ''}/installations/new")
    return page(
        f"GitHub App {answer.get('name') or answer.get('slug') or ''} created",
        f"<p>App id <b>{int(answer['id'])}</b>. Its id, private key and webhook secret are in "
        f"<code>{where}</code>, readable only by the user promobot runs as.</p><ol>"
        f"<li>Point <code>GITHUB_PRIVATE_KEY_FILE</code> at <code>{where}</code> (it supplies "
        f"<code>GITHUB_APP_ID</code> and <code>GITHUB_WEBHOOK_SECRET</code> too), or set "
        f"<code>GITHUB_APP_ID</code>, <code>GITHUB_WEBHOOK_SECRET</code> and "
        f"<code>GITHUB_PRIVATE_KEY</code> from it.</li>"
        f"<li>Restart promobot.</li>"
        f"<li>Install the App on your repositories: <a href='{install}'>{install}</a>.</li></ol>",
    )
