"""Dev mode's local stand-ins for Slack's and GitHub's APIs (404 unless `serve --dev`).

What promobot would have sent to Slack directly (a `respond()` to a command's
response_url, a Web API call outside the outbox) is shown on the console and
stored; user groups resolve to the demo people; GitHub calls are recorded and
answered as GitHub would.
"""

import json
import time
from typing import Any

from aiohttp import web

from bot.app import SERVICES
from bot.dev.client import DEV_TEAM
from bot.dev.console import fake_channel_id, render
from bot.dev.mode import GROUP_MEMBERS, PEOPLE, github_answer
from bot.pipeline.outbox import GitHubRequest
from bot.services import Services
from storage import dev as devstore


def _dev(request: web.Request) -> Services:
    services = request.app[SERVICES]
    if services.dev is None:
        raise web.HTTPNotFound()
    return services


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return data if isinstance(data, dict) else {}
    form = dict(await request.post())
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def respond(request: web.Request) -> web.Response:
    """Show what the bot answered through a command's response_url."""
    services = _dev(request)
    body = await _body(request)
    blocks = body.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    who = "everyone in the channel" if body.get("response_type") == "in_channel" else "the sender"
    await _show(services, "response", "response_url", f"reply seen by {who}", body, blocks)
    return web.Response(text="ok")


async def slack_api(request: web.Request) -> web.Response:
    """Answer a Slack Web API call promobot made outside the outbox."""
    services = _dev(request)
    method, body = request.match_info["method"], await _body(request)
    if method == "usergroups.users.list":
        return web.json_response({"ok": True, "users": list(GROUP_MEMBERS)})
    if method == "users.info":
        user = str(body.get("user", ""))
        name = PEOPLE.get(user, user.lower())
        return web.json_response({"ok": True, "user": {"id": user, "name": name}})
    if method == "auth.test":
        return web.json_response({"ok": True, "team_id": DEV_TEAM, "user_id": "U0PROMOBOT"})
    if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
        blocks = body.get("blocks")
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        channel = str(body.get("channel", ""))
        kind = {"chat.postEphemeral": "ephemeral", "chat.update": "edit"}.get(method, "plain")
        ts = await _show(services, kind, channel, f"{channel} ({method})", body, blocks)
        return web.json_response(
            {"ok": True, "channel": fake_channel_id(channel), "ts": body.get("ts") or ts}
        )
    return web.json_response({"ok": True})


async def _show(
    services: Services, kind: str, channel: str, heading: str, body: dict, blocks: Any
) -> str:
    console = services.dev.console  # type: ignore[union-attr]
    text = str(body.get("text") or "")
    console.show(heading, render(text, blocks, console.names))
    ts, now = console.ts(), services.clock.now()
    await services.store.write(
        lambda db: devstore.add_message(
            db,
            at=now,
            kind=kind,
            channel=channel,
            text=text,
            blocks=blocks,
            ts=ts,
            thread_ts=body.get("thread_ts"),
            user_id=body.get("user"),
        )
    )
    return ts


async def github_api(request: web.Request) -> web.Response:
    """Answer a GitHub REST call promobot made outside the outbox, recording writes."""
    services = _dev(request)
    path = "/" + request.match_info["tail"]
    if path.startswith("/app/installations/") and path.endswith("/access_tokens"):
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return web.json_response({"token": "ghs_devmode", "expires_at": expires}, status=201)
    text = await request.text()
    body = json.loads(text) if text else None
    now = services.clock.now()
    call = GitHubRequest(request.method, path, body or {}, None)
    answer = github_answer(int(now * 1000) % 10**6, call, now)
    if request.method != "GET":
        await services.store.write(
            lambda db: devstore.add_github_call(
                db,
                at=now,
                method=request.method,
                path=path,
                installation_id=None,
                body=body,
                answer=answer,
                deploy_due=None,
            )
        )
    return web.json_response(answer, status=200 if request.method == "GET" else 201)


async def fail_next(request: web.Request) -> web.Response:
    """Make the deployer fail the next deployment into a stage (`promobot fail-next <stage>`)."""
    services = _dev(request)
    stage = str((await _body(request)).get("stage", "")).strip().lower()
    known = [s.name for s in services.config.pipeline.stages]
    if stage not in known:
        return web.Response(
            status=400, text=f"{stage or 'nothing'} is not a stage ({', '.join(known)})"
        )
    services.dev.fail_next.add(stage)  # type: ignore[union-attr]
    text = f"the next deployment into {stage} will fail"
    services.dev.console.show("dev deployer", [text])  # type: ignore[union-attr]
    return web.Response(text=text)


def add_routes(app: web.Application) -> None:
    """Mount the stand-ins; each answers 404 unless the service runs with --dev."""
    app.router.add_post("/dev/slack/respond", respond)
    app.router.add_post("/dev/slack/api/{method}", slack_api)
    app.router.add_route("*", "/dev/github/{tail:.*}", github_api)
    app.router.add_post("/dev/fail-next", fail_next)
