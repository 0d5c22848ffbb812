"""`promobot send`, `click`, `fail-next`: drive a --dev server's commands, buttons and deployer."""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.cli.configure import Subcommands
from bot.dev import client as devclient
from bot.dev import console as devslack
from bot.dev import forms
from bot.dev import mode as dev
from bot.pipeline import approvals
from storage import connect, pipeline
from storage import dev as devstore

ANSWER_WAIT = 5.0  # seconds to wait for the ephemeral answer a click gets


def add_commands(sub: Subcommands) -> None:
    """Add click, fail-next and send to the `promobot` parser."""
    click_ = sub.add_parser("click", help="click Approve or Reject on a --dev approval message")
    click_.add_argument("action", choices=("approve", "reject"))
    click_.add_argument("promotion", help="the promotion's number")
    click_.add_argument("reason", nargs="*", help="why (reject)")
    click_.set_defaults(run=click)
    failing = sub.add_parser("fail-next", help="--dev: fail the next deployment into a stage")
    failing.add_argument("stage")
    failing.set_defaults(run=fail_next)
    for command in (click_, failing):
        command.add_argument("--as", dest="user", default="U0DEVBOB", help="Slack user ID")
        command.add_argument("--state", default=dev.STATE_FILE)
    slash = sub.add_parser("send", help="sign and send a slash command to a --dev server")
    slash.add_argument("words", nargs=argparse.REMAINDER, help="/ship status, /promote #3 baklava")
    slash.add_argument("--as", dest="user", default="U012ABC", help="Slack user ID of the sender")
    slash.add_argument("--url", default=None, help="the dev server (default: from the state file)")
    slash.add_argument("--secret", default=None, help="Slack signing secret (default: state file)")
    slash.add_argument("--state", default=dev.STATE_FILE)
    slash.set_defaults(run=send)


def state_of(path: str) -> dict[str, Any]:
    """Read the dev server's state file (URL, secrets, database), or nothing."""
    found = Path(path)
    return json.loads(found.read_text(encoding="utf-8")) if found.exists() else {}


def digest_db(given: str | None) -> str:
    """Return the database the digest reads: the one named, promobot.db, else `make run`'s."""
    if given:
        return given
    if Path("promobot.db").exists():
        return "promobot.db"
    made = state_of(dev.STATE_FILE).get("db") or dev.DEV_DB
    if Path(made).exists():
        print(f"reading {made}, the database `make run` made", file=sys.stderr)
        return str(made)
    return "promobot.db"


def click(args: argparse.Namespace) -> int:
    """Click Approve or Reject (with its modal's reason) as `--as`; print the answer they get."""
    state = state_of(args.state)
    if not state.get("slack_signing_secret"):
        print("no dev server: start `promobot serve --dev` (make run) first", file=sys.stderr)
        return 2
    reason = " ".join(args.reason).strip()
    if args.action == "reject" and not reason:
        print('say why: promobot click reject 7 "the migration is not reviewed"', file=sys.stderr)
        return 2
    try:
        return asyncio.run(_click(state, args.action, args.promotion, args.user, reason))
    except aiohttp.ClientError as exc:
        print(f"cannot reach {state.get('url')}: {exc}", file=sys.stderr)
        return 1


async def _click(state: dict, action: str, promotion: str, user: str, reason: str) -> int:
    url, secret = state["url"], state["slack_signing_secret"]
    name = dev.PEOPLE.get(user, user.lower())
    where = _approval_message(state, promotion)
    if where is None:
        print(f"promotion {promotion} has no approval message to click", file=sys.stderr)
        return 2
    channel, since = where[0], _last_message(state)
    async with aiohttp.ClientSession() as session:
        form = forms.button_forms(
            action, promotion, user=user, user_name=name, where=where, url=url
        )
        status, body = await devclient.post_slack(session, url, secret, form)
        if status == 200 and action == "reject":
            view = approvals.reject_view(promotion, channel)
            typed = forms.view_submission(user=user, user_name=name, view=view, reason=reason)
            form = forms.interaction_form(typed)
            status, body = await devclient.post_slack(session, url, secret, form)
    if status != 200:
        print(f"HTTP {status}: {body.strip()}", file=sys.stderr)
        return 1
    answer = await _answer(state, user, since)
    print(answer or "(clicked; no answer came back yet: see the server's console)")
    return 0


def _approval_message(state: dict, promotion: str) -> tuple[str, str] | None:
    """Return (channel ID, ts) of a promotion's approval message in the dev database."""
    path = state.get("db")
    if not promotion.isdigit() or not path or not Path(path).exists():
        return None
    db = connect(path, readonly=True)
    try:
        return pipeline.approval_message(db, int(promotion))
    finally:
        db.close()


def _last_message(state: dict) -> int:
    """Return the id of the newest message the dev server showed, to read only newer ones."""
    rows = _messages(state, 0)
    return rows[-1]["id"] if rows else 0


def _messages(state: dict, since: int) -> list[dict[str, Any]]:
    path = state.get("db")
    if not path or not Path(path).exists():
        return []
    db = connect(path, readonly=True)
    try:
        found: list[dict[str, Any]] = []
        while batch := devstore.messages(db, since_id=since):
            found += batch
            since = batch[-1]["id"]
        return found
    finally:
        db.close()


async def _answer(state: dict, user: str, since: int) -> str:
    """Wait for the ephemeral answer to `user` after message `since`; return it as text."""
    deadline = time.monotonic() + ANSWER_WAIT
    while time.monotonic() < deadline:
        mine = [
            m for m in _messages(state, since) if m["kind"] == "ephemeral" and m["user_id"] == user
        ]
        if mine:
            shown = devslack.render(mine[0]["text"] or "", mine[0]["blocks"], dev.PEOPLE)
            return "\n".join(shown).rstrip()
        await asyncio.sleep(0.1)
    return ""


def fail_next(args: argparse.Namespace) -> int:
    """Ask the dev deployer to fail the next deployment into a stage."""
    url = state_of(args.state).get("url") or os.environ.get("PROMOBOT_DEV_URL")
    if not url:
        print("no dev server: start `promobot serve --dev` (make run) first", file=sys.stderr)
        return 2
    try:
        status, text = asyncio.run(_post(url + "/dev/fail-next", {"stage": args.stage}))
    except aiohttp.ClientError as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(text, file=sys.stdout if status == 200 else sys.stderr)
    return 0 if status == 200 else 1


async def _post(url: str, form: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as response:
        return response.status, await response.text()


def send(args: argparse.Namespace) -> int:
    """Sign a slash command with the dev server's secret and POST it; print the answer."""
    words = [w for w in args.words if w != "--"]
    if not words or words[0] not in ("/ship", "/promote"):
        print("usage: promobot send /ship <verb> … (or /promote …)", file=sys.stderr)
        return 2
    state = state_of(args.state)
    url = args.url or state.get("url") or "http://127.0.0.1:8080"
    secret = args.secret or state.get("slack_signing_secret")
    if not secret:
        print("no signing secret: start `promobot serve --dev` or pass --secret", file=sys.stderr)
        return 2
    form = forms.slash_form(
        " ".join(words[1:]),
        user=args.user,
        user_name=dev.PEOPLE.get(args.user, args.user.lower()),
        command=words[0],
        response_url=url + "/dev/slack/respond",
    )
    try:
        status, body = asyncio.run(_post_signed(url, secret, form))
    except aiohttp.ClientError as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    return show_answer(status, body)


def show_answer(status: int, body: str) -> int:
    """Print an answer as Slack shows it (text and blocks); say the status only when it failed."""
    if status != 200:
        print(f"HTTP {status}: {body.strip()}", file=sys.stderr)
        return 1
    answer: dict[str, Any] = json.loads(body) if body.startswith("{") else {"text": body}
    lines = devslack.render(str(answer.get("text") or ""), answer.get("blocks"), dev.PEOPLE)
    print("\n".join(lines).rstrip())
    return 0


async def _post_signed(url: str, secret: str, form: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        return await devclient.post_slack(session, url, secret, form)
