"""`promobot digest [--dry-run]`: print today's digest, or post it and wait until Slack has it."""

import argparse
import asyncio
import os
import time
from functools import partial
from pathlib import Path

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.configure import Subcommands, fail, with_config
from bot.cli.devcommands import digest_db
from bot.config import DIGEST_SECRETS, Config, ConfigError, load_secrets
from bot.engine.relay import Relay
from bot.engine.slack import slack_senders
from bot.engine.slack_api import restore_pauses
from bot.pipeline import registry
from bot.pipeline.digest_post import as_text, gather, learn_channels, queue_all
from storage import Store, connect, migrate, outbox

SEND_TIMEOUT = 120.0


def add_commands(sub: Subcommands, config_default: str) -> None:
    """Add digest to the `promobot` parser."""
    digest = sub.add_parser("digest", help="build the daily digest now; print it or post it")
    digest.add_argument("--config", default=config_default)
    digest.add_argument("--db", default=os.environ.get("PROMOBOT_DB"), help="default: promobot.db,"
                        " else the database `make run` made")  # fmt: skip
    digest.add_argument("--dry-run", action="store_true", help="print it; post nothing")
    digest.set_defaults(run=with_config(command))


def command(config: Config, args: argparse.Namespace) -> int:
    """Print today's digest (--dry-run), or post it."""
    db = digest_db(args.db)
    return dry_run(config, db, time.time()) if args.dry_run else post(config, db)


def dry_run(config: Config, db_path: str | Path, now: float) -> int:
    """Print every channel's digest as text; post nothing, record nothing."""
    migrate(db_path)
    db = connect(db_path, readonly=True)
    try:
        found = gather(db, config, now)
    finally:
        db.close()
    if not found:
        print("No repository is known yet, so there is no digest.")
    print("\n\n".join(as_text(d) for d in found))
    return 0


async def _post(config: Config, db_path: str | Path, token: str, api_url: str) -> list[str]:
    store = Store(db_path)
    store.open()
    try:
        async with aiohttp.ClientSession() as session:
            slack = AsyncWebClient(token=token, base_url=api_url, session=session)
            # Outbox rows are leased, so this relay and a running service's never both send one.
            relay = Relay(store, slack_senders(slack, store))
            await restore_pauses(slack, store)  # Slack's 429 pauses that promobot keeps
            await learn_channels(store, slack, config)
            queued = await store.write(
                partial(queue_all, config=config, now=time.time(), reactions=registry.reactions())
            )
            runner = asyncio.create_task(relay.run())
            try:
                await asyncio.wait_for(_until_sent(store, queued), SEND_TIMEOUT)
            finally:
                relay.stop()
                await asyncio.gather(runner, return_exceptions=True)
            return queued
    finally:
        store.close()


async def _until_sent(store: Store, channels: list[str]) -> None:
    """Return once no row for the digest's channels is waiting in the outbox."""
    while await store.read(partial(outbox.pending_in_lanes, lanes=channels)):
        await asyncio.sleep(0.1)


def post(config: Config, db_path: str | Path) -> int:
    """Record and queue today's digest for every channel, then relay it until sent."""
    try:
        secrets = load_secrets(os.environ, DIGEST_SECRETS)
    except ConfigError as error:
        return fail(error)
    queued = asyncio.run(_post(config, db_path, secrets.slack_bot_token, secrets.slack_api_url))
    if not queued:
        print("Today's digest was already posted (or skipped as quiet) in every channel.")
    for channel in queued:
        print(f"digest queued and relayed for {channel}")
    return 0
