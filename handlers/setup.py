"""GET /github/setup: the GitHub App's one-click creation and the manifest flow's redirect."""

import asyncio
import logging
import re

from aiohttp import web

from bot.app import SERVICES
from bot.engine.relay import Permanent, RetryAfter, Transient
from bot.web import github_app

log = logging.getLogger(__name__)
CODE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
STATES = web.AppKey("setup_states", dict)
# Each visit of the page mints a state; keep only the newest few, so visits cannot fill memory.
MAX_STATES = 50
LOCK = web.AppKey("setup_lock", asyncio.Lock)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


async def setup(request: web.Request) -> web.Response:
    """Show the creation form, or exchange GitHub's code once and keep the App's credentials."""
    services = request.app[SERVICES]
    known = services.secrets
    if known.dev or any(
        (known.github_app_id, known.github_private_key, known.github_webhook_secret)
    ):
        raise web.HTTPNotFound()  # the App is set up: nothing here to see
    path = github_app.credentials_path(services.store.path)
    states = request.app[STATES]
    code, state = request.query.get("code"), request.query.get("state", "")
    async with request.app[LOCK]:  # one exchange at a time: a code is good for one
        if path.exists():
            return _html(github_app.page("Already created", _restart(path)), 409)
        if code is None:
            state = github_app.new_state()
            states[state] = True
            while len(states) > MAX_STATES:
                del states[next(iter(states))]
            page = github_app.start_page(services.config, services.secrets.github_api_url, state)
            return _html(page)
        if not CODE.match(code) or state not in states:
            body = "<p>This link is not one promobot started (or it was used already). Start "
            body += "again at <a href='/github/setup'>/github/setup</a>.</p>"
            return _html(github_app.page("Unknown or used link", body), 400)
        del states[state]  # single use, whatever GitHub answers
        try:
            answer = await services.github.convert_manifest(code)
        except (Permanent, Transient, RetryAfter) as exc:
            log.warning("GitHub refused the manifest code: %s", exc)
            body = "<p>GitHub did not accept the code (it lasts one hour). Start again at "
            body += "<a href='/github/setup'>/github/setup</a>.</p>"
            return _html(github_app.page("GitHub refused the code", body), 502)
        github_app.write_credentials(path, answer)
    log.info("GitHub App %s created; credentials written to %s", answer.get("id"), path)
    return _html(github_app.done_page(answer, path))


def _restart(path: object) -> str:
    return (
        f"<p>The GitHub App was created and its credentials are in <code>{path}</code>. Point "
        f"<code>GITHUB_PRIVATE_KEY_FILE</code> at it and restart promobot.</p>"
    )


def add_routes(app: web.Application) -> None:
    """Mount the set-up route."""
    app[STATES] = {}
    app[LOCK] = asyncio.Lock()
    app.router.add_get("/github/setup", setup)
