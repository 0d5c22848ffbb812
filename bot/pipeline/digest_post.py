"""The digest on its way out: Slack blocks within limits, once per channel per day, or as text."""

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.config import Config
from bot.core import metrics_text
from bot.core.channels import channel_key, repos_for_channel, same_channels
from bot.core.commands import UNFOLLOWED, USAGE, CommandError
from bot.core.digest import Digest, compose
from bot.core.render import cut_mrkdwn
from bot.core.schedule import first_of_week
from bot.engine.slack import learn_channel_ids
from bot.pipeline import metrics
from bot.pipeline.outbox import KeyedMessage, ThreadReply
from bot.pipeline.tx import Tx
from bot.services import Services
from storage import Store, builds, digests, pipeline
from storage import slack as slackdb

MAX_BLOCKS = 50
SECTION_CHARS = 3000
MAIN_CHARS = 9000  # Slack suggests keeping a message well under ~10k characters
LINE_CHARS = 600
SHOWN_PER_SECTION = 8


def gather(db: Database, config: Config, now: float) -> list[Digest]:
    """Read every channel's records and compose its digest (a channel with no repository: none).

    A channel app.yaml names twice (`C0123ABCD` here, `#releases` there) gets one digest.
    """
    repos = builds.repositories(db)
    named = {r["full_name"]: config.channel_for(r["full_name"]) for r in repos}
    found = []
    for names in same_channels(named.values(), slackdb.known_channels(db)):
        here = [r for r in repos if named[r["full_name"]] in names]
        found.append(digest_of(db, config, names[0], here, now, also=names[1:]))
    return found


def digest_of(
    db: Database,
    config: Config,
    channel: str,
    repos: Sequence[dict],
    now: float,
    also: tuple[str, ...] = (),
) -> Digest:
    """Compose the digest of `repos` for `channel` (or `also`) over the 24 hours before `now`."""
    since = now - 86_400.0
    weekly = first_of_week(datetime.fromtimestamp(now, UTC), config.digest)
    found = [records(db, config, r, since, now, weekly=weekly) for r in repos]
    return replace(compose(config, channel, found, now), also=also)


def records(
    db: Database, config: Config, repo: dict, since: float, now: float, *, weekly: bool
) -> dict[str, Any]:
    """Read one repository's digest records, with last week's metrics when `weekly`."""
    found = digests.repo_records(db, repo, since=since, now=now)
    live = {s.name: pipeline.current(db, repo["id"], s.name) for s in config.pipeline.stages}
    found["live"] = {stage: there["number"] for stage, there in live.items() if there}
    if weekly:
        found["weekly"] = metrics_text.digest_lines(metrics.report(db, config, repo, 1, now))
    return found


def _clip(line: str) -> str:
    return cut_mrkdwn(line, LINE_CHARS)


def render(digest: Digest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the message (text, blocks) and the thread replies that carry the overflow."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": digest.title[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": digest.summary}]},
    ]
    used = len(digest.title) + len(digest.summary)
    overflow: list[str] = []
    for section in digest.sections:
        head = f"*{section.title}*"
        shown: list[str] = []
        left: list[str] = []
        for line in map(_clip, section.lines):
            size = len(head) + sum(len(s) + 1 for s in shown) + len(line) + 60
            fits = size < SECTION_CHARS and used + size < MAIN_CHARS
            if (
                fits
                and not left
                and len(shown) < SHOWN_PER_SECTION
                and len(blocks) < MAX_BLOCKS - 1
            ):
                shown.append(line)
            else:
                left.append(line)
        overflow += [head, *left] if left else []
        rest = len(left)
        if rest:
            shown.append(f"_…and {rest} more in the thread_")
        if shown and len(blocks) < MAX_BLOCKS - 1:
            text = "\n".join([head, *shown])
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
            used += len(text)
    if overflow:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Details in the thread."}]}
        )
    message = {"text": f"{digest.title} — {digest.summary}", "blocks": blocks}
    return message, [_reply(chunk) for chunk in _chunks(overflow)]


def _chunks(lines: Sequence[str]) -> list[str]:
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + len(line) + 1 < SECTION_CHARS:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def _reply(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def as_text(digest: Digest) -> str:
    """Render a digest for a terminal: title, summary, every line."""
    out = [f"{digest.channel}: {digest.title}", digest.summary]
    if digest.quiet:
        out.append("(quiet: nothing failed or waits, so the schedule posts nothing)")
    for section in digest.sections:
        out += ["", f"{section.title}:", *section.lines]
    return plain("\n".join(out))


def plain(mrkdwn: str) -> str:
    """Turn mrkdwn into terminal text: links and mentions by their label, entities unescaped."""
    text = re.sub(r"<([^|<>]+)\|([^<>]+)>", r"\2", mrkdwn)
    text = re.sub(r"<@(\w+)>", r"@\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def queue(tx: Tx, digest: Digest) -> bool:
    """Claim the channel's day and queue the post with it; False when it was claimed already.

    The claim and the outbox rows commit together, so two instances (or a
    restart) never post one day twice, and a crash after commit still posts.
    """
    # Claimed under every name of the channel: a day served under one is served under all.
    claimed = [
        digests.record_digest(tx.db, c, digest.day, tx.now) for c in (digest.channel, *digest.also)
    ]
    if not all(claimed):
        return False
    tx.log(actor="promobot", action="digest.queued", detail={"channel": digest.channel})
    if digest.quiet and tx.config.digest.quiet_when_green:
        return True
    key = f"digest:{digest.channel}:{digest.day}"
    message, replies = render(digest)
    tx.send(KeyedMessage(key, digest.channel, message["text"], message["blocks"]))
    for reply in replies:
        tx.send(ThreadReply(key, digest.channel, reply["text"], reply["blocks"]))
    return True


def queue_all(db: Database, config: Config, now: float, reactions: Sequence[Any] = ()) -> list[str]:
    """Queue the digest of every channel not yet served today; return the channels queued."""
    tx = Tx(db, config, now, reactions)
    return [d.channel for d in gather(db, config, now) if queue(tx, d)]


async def learn_channels(store: Store, client: AsyncWebClient, config: Config) -> None:
    """Ask Slack the IDs of channels app.yaml names by name, when two names may be one channel."""
    repos = await store.read(builds.repositories)
    named = {config.channel_for(r["full_name"]) for r in repos}
    if len({channel_key(c) for c in named}) > 1:
        await learn_channel_ids(client, store, named)


async def post_all(services: Services, now: float) -> list[str]:
    """Queue today's digest for every channel not yet served, and wake the relay."""
    config, reactions = services.config, services.worker.reactions
    await learn_channels(services.store, services.slack, config)
    queued = await services.store.write(lambda db: queue_all(db, config, now, reactions))
    services.relay.wake()
    return queued


async def ephemeral(services: Services, *, channel_id: str, channel_name: str) -> dict[str, Any]:
    """Return the digest of the asker's channel as an ephemeral answer (CommandError: none)."""
    config, now = services.config, services.clock.now()

    def read(db: Database) -> Digest:
        repos = builds.repositories(db)
        here = repos_for_channel(config, repos, channel_id, channel_name)
        if not repos:
            raise CommandError("no repository is known yet, so there is no digest", USAGE["digest"])
        if not here:  # another channel's digest is not this channel's business
            raise CommandError(UNFOLLOWED, USAGE["digest"])
        return digest_of(db, config, config.channel_for(here[0]["full_name"]), here, now)

    found = await services.store.read(read)
    message, replies = render(found)
    if replies:
        message["blocks"].append(
            {"type": "section", "text": {"type": "mrkdwn", "text": replies[0]["text"]}}
        )
    return {"text": message["text"], "blocks": message["blocks"][:MAX_BLOCKS]}
