"""`promobot deliveries`: what GitHub sent against what promobot stored; retry or drop a failure."""

import argparse
import asyncio
import getpass
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from sqlite_utils import Database

from bot.cli.configure import Subcommands
from bot.config import ConfigError, load_secrets, parse_duration
from bot.core.deliveries import github_side, needs_attention, promobot_side, table
from bot.engine.github import GitHubClient, parse_expiry
from bot.engine.relay import Permanent, RetryAfter, Transient
from storage import Store, audit, connect, inbox, migrate, redeliveries

APP_SECRETS = ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY")


def add_commands(sub: Subcommands) -> None:
    """Add deliveries to the `promobot` parser."""
    deliveries = sub.add_parser(
        "deliveries", help="what GitHub sent against what promobot stored; retry or drop one"
    )
    deliveries.add_argument("verb", nargs="?", choices=("retry", "drop"))
    deliveries.add_argument("id", nargs="?", help="the delivery's GUID (X-GitHub-Delivery)")
    deliveries.add_argument("--failed", action="store_true", help="only what needs attention")
    deliveries.add_argument("--since", default="24h", help="how far back (like 2h, 3d)")
    deliveries.add_argument("--db", default=os.environ.get("PROMOBOT_DB", "promobot.db"))
    deliveries.set_defaults(run=command)


def command(args: argparse.Namespace) -> int:
    """List deliveries both sides saw, or retry or drop one that failed in promobot."""
    if args.verb and not args.id:
        print(f"usage: promobot deliveries {args.verb} ID", file=sys.stderr)
        return 2
    if args.verb:
        return settle_failed(args.db, args.id, args.verb)
    window = parse_duration(args.since)
    if window is None:
        print(f"error: --since {args.since!r} is not a duration (like 2h, 3d)", file=sys.stderr)
        return 2
    return show(args.db, time.time() - window, args.failed)


async def github_attempts(since: float) -> list[dict[str, Any]]:
    """Return GitHub's delivery attempts since `since`; raise ConfigError when it cannot tell."""
    secrets = load_secrets(os.environ, APP_SECRETS)
    async with aiohttp.ClientSession() as session:
        client = GitHubClient(
            session,
            app_id=secrets.github_app_id,
            private_key=secrets.github_private_key,
            api_url=secrets.github_api_url,
        )
        try:
            return await client.hook_deliveries(since)
        except (RetryAfter, Transient, Permanent) as exc:
            raise ConfigError([f"GitHub's list of deliveries: {exc}"]) from None


def compare(db: Database, attempts: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """Return one row per GUID: GitHub's attempts against promobot's delivery and request."""
    by_guid: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts:
        by_guid.setdefault(str(attempt["guid"]), []).append(attempt)
    stored = {d["delivery_id"]: d for d in inbox.deliveries_since(db, since)}
    stored.update(inbox.deliveries_by_guid(db, list(by_guid)))
    asked = redeliveries.requests(db, list(by_guid))
    rows = []
    for guid in by_guid.keys() | stored.keys():
        tried, kept = by_guid.get(guid, []), stored.get(guid)
        first = min(tried, key=lambda a: a["id"]) if tried else None
        rows.append(
            {
                "guid": guid,
                "at": parse_expiry(first["delivered_at"]) if first else (kept or {})["received_at"],
                "seq": first["id"] if first else 0,
                "event": (first or kept or {}).get("event") or "?",
                "action": (first or kept or {}).get("action"),
                "github": github_side(tried) if tried else "not in GitHub's list",
                "promobot": promobot_side(kept, asked.get(guid)),
            }
        )
    return sorted(rows, key=lambda r: (r["at"], r["seq"]), reverse=True)


def show(db_path: str | Path, since: float, failed_only: bool) -> int:
    """Print the comparison since `since`; with `failed_only`, only what needs attention."""
    attempts: list[dict[str, Any]] = []
    try:
        attempts = asyncio.run(github_attempts(since))
    except ConfigError as error:
        for problem in error.problems:
            print(f"note: GitHub's side is not shown: {problem}", file=sys.stderr)
    migrate(db_path)
    db = connect(db_path, readonly=True)
    try:
        rows = compare(db, attempts, since)
    finally:
        db.close()
    shown = [r for r in rows if needs_attention(r)] if failed_only else rows
    print(table(shown))
    missed = sum(1 for r in rows if r["promobot"].startswith("not stored"))
    print(
        f"\n{len(attempts)} attempt(s) by GitHub, {len(rows)} delivery(ies) in all since "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(since))} UTC; {missed} not stored"
    )
    return 0


def settle_failed(db_path: str | Path, guid: str, verb: str) -> int:
    """Make promobot's failed delivery `guid` pending again (retry) or mark it dropped (drop)."""
    store = Store(db_path)
    store.open()
    try:
        found = asyncio.run(_settle(store, guid, verb))
    finally:
        store.close()
    if found is None:
        print(f"error: no delivery {guid} is stored", file=sys.stderr)
        return 1
    if found["state"] != "failed":
        print(
            f"error: delivery {guid} is {found['state']}, not failed: nothing changed",
            file=sys.stderr,
        )
        return 1
    if verb == "retry":
        print(f"delivery {guid} ({found['event']}) is pending again; promobot processes it next")
    else:
        print(f"delivery {guid} ({found['event']}) dropped; kept so a redelivery of it is ignored")
    return 0


async def _settle(store: Store, guid: str, verb: str) -> dict[str, Any] | None:
    return await store.write(partial(_settle_in, guid=guid, verb=verb, now=time.time()))


def _settle_in(db: Database, guid: str, verb: str, now: float) -> dict[str, Any] | None:
    found = inbox.delivery(db, guid)
    if found is None or found["state"] != "failed":
        return found
    if verb == "retry":
        inbox.revive_delivery(db, found["id"])
    else:
        inbox.drop_delivery(db, found["id"], now=now)
    repo = str(found["repo_key"])
    audit.log_event(
        db,
        at=now,
        actor=f"cli:{getpass.getuser()}",
        action="delivery.retried" if verb == "retry" else "delivery.dropped",
        repo_id=int(repo[5:]) if repo.startswith("repo:") and repo[5:].isdigit() else None,
        reason=(found["error"] or "")[:300] or None,
        detail={"delivery": guid, "event": found["event"], "attempts": found["attempts"]},
    )
    return found
