"""What every /ship verb stands on: who asks and where, which repository, build and stage
they name, and deciding in one transaction.

Which repository: a channel follows the repositories whose channel it is
(`repositories.<name>.channel`, else `slack.channel` for all others). When it
follows several, name one as the first argument: `/ship promote acme/app #42 baklava`.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.config import Stage
from bot.core.channels import repos_for_channel
from bot.core.commands import UNFOLLOWED, Command, CommandError, did_you_mean, echo
from bot.core.text import MAX_REF, escape, number
from bot.engine.promoters import Promoters
from bot.pipeline import approvals, stages
from bot.pipeline.outbox import Ephemeral
from bot.pipeline.tx import Tx
from bot.services import Services
from storage import audit, builds, notes, pipeline

REPO_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
BUILD_NUMBER = re.compile(r"^#?[0-9]+$")  # ASCII digits: `²` is a digit to \d, not a number
SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


@dataclass(frozen=True)
class Context:
    """Who typed a command, where, and the services to act with."""

    services: Services
    promoters: Promoters
    user: str
    channel_id: str = ""
    channel_name: str = ""


Answer = str | dict[str, Any]  # the ephemeral text, or the acknowledgement's fields
Verb = Callable[[Context, Command], Awaitable[Answer]]


async def decide(ctx: Context, fn: Callable[..., str], *args: Any) -> str:
    """Run `fn(tx, *args)` in one writer transaction (after lazy expiry); wake the relay."""
    services = ctx.services

    def job(db: Any) -> str:
        tx = Tx(db, services.config, services.clock.now(), services.worker.reactions)
        approvals.expire_due(tx)
        return fn(tx, *args)

    answer = await services.store.write(job)
    services.relay.wake()
    return answer


async def look(ctx: Context, fn: Callable[..., str], *args: Any) -> str | None:
    """Run a short `fn(tx, *args)` on the loop when no promotion is due; None when one is."""
    services = ctx.services

    def job(db: Any) -> str | None:
        tx = Tx(db, services.config, services.clock.now())
        due = stages.next_due(tx)
        # Letting time pass would change what is read: that takes the writer (see decide).
        return None if due is not None and due <= tx.now else fn(tx, *args)

    return await services.store.read_here(job)


async def note(ctx: Context, **entry: Any) -> None:
    """Write an audit line where acknowledgements go, never waiting for the main file's lock.

    With a processing process that is the ingest file (storage/notes.py), from which the
    worker moves it into the event log; else the one writer that also stores deliveries.
    """
    services, at = ctx.services, ctx.services.clock.now()
    if services.intake is None:
        await services.store.write(lambda db: audit.log_event(db, at=at, **entry))
        return
    await services.intake.write(lambda db: notes.keep(db, at=at, entry=entry), savepoint=False)
    services.worker.wake()


async def learn_name(ctx: Context, *, wait: bool = True) -> None:
    """Look the person's display name up (bounded); `wait=False` lets it finish after the answer."""
    names = ctx.services.names
    if names is None:
        return
    if wait:
        await names.learn([ctx.user])
    else:
        names.learn_later([ctx.user])


async def tell(ctx: Context, channel: str, text: str) -> None:
    """Queue an ephemeral answer to the person (a button click has no text reply of its own)."""

    def job(db: Any) -> None:
        tx = Tx(db, ctx.services.config, ctx.services.clock.now())
        tx.send(Ephemeral(channel, ctx.user, text))

    await ctx.services.store.write(job)
    ctx.services.relay.wake()


async def repository(ctx: Context, args: tuple[str, ...], usage: str) -> tuple[dict, tuple]:
    """Return the repository a command is about, and the remaining arguments."""
    repos = await ctx.services.store.read_here(builds.repositories)  # a row or two: no thread
    config = ctx.services.config
    # Only the repositories whose channel this is: never every repository from anywhere.
    here = repos_for_channel(config, repos, ctx.channel_id, ctx.channel_name)
    if args and REPO_NAME.match(args[0]):
        named = [r for r in repos if r["full_name"].lower() == args[0].lower()]
        if not named:
            raise CommandError(f"promobot does not follow `{echo(args[0])}`", usage)
        if named[0] not in here:
            where = escape(config.channel_for(named[0]["full_name"]))
            raise CommandError(f"`{echo(args[0])}` is followed in {where}, not here", usage)
        return named[0], args[1:]
    if not repos:
        raise CommandError("promobot has not seen a push to any repository yet", usage)
    if not here:
        raise CommandError(UNFOLLOWED, usage)
    if len(here) > 1:
        names = ", ".join(f"`{r['full_name']}`" for r in here[:5])
        # Where it goes, shown with this very command: "first" alone read as before the verb.
        verb = " ".join(usage.split()[:2])
        shown = f"`{verb} {here[0]['full_name']} …`"
        raise CommandError(f"this channel follows {names}: name one first, as in {shown}", usage)
    return here[0], args


def stage_named(ctx: Context, name: str, usage: str) -> Stage:
    """Return the stage called `name`, or say which stages exist."""
    stage = ctx.services.config.pipeline.stage(name.lower())
    if stage is None:
        names = [s.name for s in ctx.services.config.pipeline.stages]
        hint = did_you_mean(name, names)
        raise CommandError(f"`{echo(name)}` is not a stage ({', '.join(names)}).{hint}", usage)
    return stage


def find_build(db: Any, repo_id: int, ref: str, stages: tuple[str, ...]) -> dict | str:
    """Return the build `ref` names (#42, a sha, a stage), or what is wrong with it."""
    said = echo(ref)  # what is quoted back: escaped, and short whatever was typed
    if len(ref) > MAX_REF:
        return f"`{said}` is too long to be a build: use #42, a sha, or a stage name"
    ref = escape(ref)  # a valid ref has nothing to escape
    if BUILD_NUMBER.match(ref) and (ref.startswith("#") or len(ref) < 7):
        wanted = number(ref)  # None past any id we store
        found = builds.build_by_number(db, repo_id, wanted) if wanted is not None else None
        return found or f"there is no build {said if said.startswith('#') else '#' + said}"
    if ref.lower() in stages:
        there = pipeline.current(db, repo_id, ref.lower())
        found = builds.build(db, there["build_id"]) if there else None
        return found or f"nothing runs in {ref} yet"
    if SHA.match(ref):
        matches = builds.builds_by_prefix(db, repo_id, ref, limit=3)
        if len(matches) > 1:
            names = " and ".join(f"#{b['number']}" for b in matches)
            return f"`{ref}` matches {names}: give more of the sha, or the #number"
        return matches[0] if matches else f"no build has a sha starting `{ref}`"
    return f"`{said}` is not a build: use #42, a sha, or a stage name"


async def build_named(ctx: Context, repo: dict, ref: str, usage: str) -> dict[str, Any]:
    """Return the build `ref` names in `repo`, or raise CommandError saying why not."""
    stages = tuple(s.name for s in ctx.services.config.pipeline.stages)
    found = await ctx.services.store.read(lambda db: find_build(db, repo["id"], ref, stages))
    if isinstance(found, str):
        raise CommandError(found, usage)
    return found
