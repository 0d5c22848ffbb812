"""`promobot click` and `promobot fail-next`: drive a --dev server's buttons and deployer."""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.dev import client as devclient
from bot.dev import console as devslack
from bot.dev import forms
from bot.dev import mode as dev
from bot.pipeline import approvals
from storage import connect, pipeline
from storage import dev as devstore

ANSWER_WAIT = 5.0  # seconds to wait for the ephemeral answer a click gets


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
