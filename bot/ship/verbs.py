"""The /ship verbs: resolve the repository, build and stage, then decide in one transaction.

Each verb is `async fn(ctx, command) -> str` (the ephemeral answer). Bad input
raises CommandError; the handler answers it with the usage line and `refuse`
logs the refusal, which is the only thing bad input leaves behind.

Which repository: a channel follows the repositories whose channel it is
(`repositories.<name>.channel`, else `slack.channel` for all others). When it
follows several, name one as the first argument: `/ship promote acme/app #42 baklava`.
"""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.config import Stage, parse_duration
from bot.core import where as wherein
from bot.core.channels import repos_for_channel
from bot.core.commands import UNFOLLOWED, USAGE, Command, CommandError, did_you_mean, echo
from bot.core.text import MAX_REASON, MAX_REF, escape, number, too_long
from bot.engine.promoters import Promoters
from bot.pipeline import approvals, locks, promotions, stages, whereabouts
from bot.pipeline.outbox import Ephemeral
from bot.pipeline.tx import Tx
from bot.services import Services
from bot.ship import views
from storage import builds, pipeline

# Characters of a refused command's text kept in the event log (the rest is only counted).
REFUSED_TEXT_CAP = 200
REPO_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
BUILD_NUMBER = re.compile(r"^#?[0-9]+$")  # ASCII digits: `²` is a digit to \d, not a number
SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")

log = logging.getLogger(__name__)


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


# How often the sweep reads when the next waiting promotion is due (a read of the few open
# ones): a promotion queued since its last look is let go at most this late.
SWEEP_SECONDS = 2.0


async def tick(services: Services) -> float | None:
    """Let time pass for waiting promotions now; return when the next one is due."""

    def job(db: Any) -> float | None:
        tx = Tx(db, services.config, services.clock.now(), services.worker.reactions)
        approvals.expire_due(tx)
        return stages.next_due(tx)

    due = await services.store.write(job)
    services.relay.wake()
    return due


async def sweep(services: Services, every: float = SWEEP_SECONDS) -> None:
    """Let time pass for waiting promotions: tick whenever one is due, until cancelled."""

    def due_at(db: Any) -> float | None:
        return stages.next_due(Tx(db, services.config, services.clock.now()))

    # The first look waits a while, as the sweep always did: commands and deliveries sweep
    # lazily anyway, and a service that just started has its own work to finish first.
    await asyncio.sleep(15 * every)
    due: float | None = services.clock.now()
    while True:
        if due is not None and due <= services.clock.now():
            await tick(services)
        await asyncio.sleep(every)
        due = await services.store.read(due_at)


async def refuse(ctx: Context, text: str, error: CommandError) -> None:
    """Log bad input: the refusal is the one trace it leaves."""

    def job(db: Any) -> None:
        tx = Tx(db, ctx.services.config, ctx.services.clock.now())
        # Only a prefix: the refusal is the trace, not an archive of whatever was typed.
        detail: dict[str, Any] = {"text": text[:REFUSED_TEXT_CAP]}
        if len(text) > REFUSED_TEXT_CAP:
            detail["length"] = len(text)
        tx.log(actor=ctx.user, action="command.refused", reason=error.message, detail=detail)

    await ctx.services.store.write(job)
    # One line: the reason (which quotes at most a short, escaped word), never the text.
    log.info("command refused: %s", error.message, extra={"refusal": error.message})


async def tell(ctx: Context, channel: str, text: str) -> None:
    """Queue an ephemeral answer to the person (a button click has no text reply of its own)."""

    def job(db: Any) -> None:
        tx = Tx(db, ctx.services.config, ctx.services.clock.now())
        tx.send(Ephemeral(channel, ctx.user, text))

    await ctx.services.store.write(job)
    ctx.services.relay.wake()


async def repository(ctx: Context, args: tuple[str, ...], usage: str) -> tuple[dict, tuple]:
    """Return the repository a command is about, and the remaining arguments."""
    repos = await ctx.services.store.read(builds.repositories)
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
        raise CommandError(f"this channel follows {names}: name one first", usage)
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


async def promote(ctx: Context, command: Command) -> str:
    """promote <build> [to] <stage> [--force "reason"]."""
    usage = USAGE["promote"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) == 3 and args[1].lower() == "to":
        args = (args[0], args[2])
    if len(args) != 2:
        raise CommandError("promote needs a build and a stage", usage)
    stage = stage_named(ctx, args[1], usage)
    source = ctx.services.config.pipeline.stage(args[0].lower())
    stages = ctx.services.config.pipeline.stages
    if source and stages.index(source) >= stages.index(stage):
        raise CommandError(
            f"{stage.name} does not come after {source.name}: promote forwards"
            " (`/ship rollback` goes back)",
            usage,
        )
    force = command.options.get("force")
    capped(force or "", usage)
    build = await build_named(ctx, repo, args[0], usage)
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters)
    return await decide(ctx, promotions.request, build, stage, ctx.user, allowed, force)


def capped(reason: str, usage: str) -> None:
    """Refuse a reason longer than MAX_REASON (it goes into messages and the log)."""
    problem = too_long("the reason", reason, MAX_REASON)
    if problem:
        raise CommandError(problem, usage)


def promotion_id(command: Command, usage: str) -> int:
    """Return the promotion number a command names."""
    if not command.args or not BUILD_NUMBER.match(command.args[0]):
        raise CommandError("name the promotion by its number", usage)
    wanted = number(command.args[0])
    if wanted is None:
        raise CommandError(f"there is no promotion {echo(command.args[0])}", usage)
    return wanted


async def promotion_stage(ctx: Context, number: int) -> Stage | None:
    """Return the stage a promotion goes into (to check the person against its promoters)."""
    found = await ctx.services.store.read(lambda db: pipeline.promotion(db, number))
    return ctx.services.config.pipeline.stage(found["stage"]) if found else None


async def approve(ctx: Context, command: Command) -> str:
    """approve [<promotion>]: approve one, or list what waits for your approval."""
    if not command.args:
        return await awaiting(ctx)
    number = promotion_id(command, USAGE["approve"])
    stage = await promotion_stage(ctx, number)
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters) if stage else None
    return await decide(ctx, approvals.approve, number, ctx.user, allowed)


async def reject(ctx: Context, command: Command) -> str:
    """reject <promotion> "reason"."""
    usage = USAGE["reject"]
    number = promotion_id(command, usage)
    reason = " ".join(command.args[1:]).strip()
    if not reason:
        raise CommandError("say why", usage)
    capped(reason, usage)
    stage = await promotion_stage(ctx, number)
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters) if stage else None
    return await decide(ctx, approvals.reject, number, ctx.user, allowed, reason)


async def awaiting(ctx: Context) -> str:
    """List the promotions waiting for this person's approval."""
    repo, _ = await repository(ctx, (), USAGE["approve"])
    may = {
        s.name: await ctx.promoters.allows(ctx.user, s.promoters)
        for s in ctx.services.config.pipeline.stages
    }
    return await decide(ctx, approvals.awaiting, repo["id"], ctx.user, may)


async def cancel(ctx: Context, command: Command) -> str:
    """cancel <promotion>: withdraw a waiting promotion (its requester, or a promoter)."""
    number = promotion_id(command, USAGE["cancel"])
    if len(command.args) > 1:
        raise CommandError("cancel takes only the promotion's number", USAGE["cancel"])
    stage = await promotion_stage(ctx, number)
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters) if stage else None
    return await decide(ctx, approvals.cancel, number, ctx.user, allowed)


async def rollback(ctx: Context, command: Command) -> str:
    """rollback <stage> [to <build>] [--force "reason"]."""
    usage = USAGE["rollback"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "to"):
        raise CommandError("rollback needs a stage, and optionally `to <build>`", usage)
    stage = stage_named(ctx, args[0], usage)
    named = await build_named(ctx, repo, args[2], usage) if len(args) == 3 else None
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters)
    force = command.options.get("force")
    return await decide(ctx, locks.rollback, repo["id"], stage, ctx.user, allowed, named, force)


async def lock(ctx: Context, command: Command) -> str:
    """lock <stage> "reason" [for 2h]."""
    usage = USAGE["lock"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) not in (2, 4) or not args[1].strip():
        raise CommandError("lock needs a stage and a reason", usage)
    capped(args[1], usage)
    stage = stage_named(ctx, args[0], usage)
    seconds = None
    if len(args) == 4:
        seconds = parse_duration(args[3]) if args[2].lower() == "for" else None
        if not seconds:
            raise CommandError(
                f"`{echo(' '.join(args[2:]))}` is not a duration like `for 2h`", usage
            )
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters)
    return await decide(ctx, locks.lock, repo["id"], stage, ctx.user, allowed, args[1], seconds)


async def unlock(ctx: Context, command: Command) -> str:
    """unlock <stage>."""
    usage = USAGE["unlock"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) != 1:
        raise CommandError("unlock needs a stage", usage)
    stage = stage_named(ctx, args[0], usage)
    allowed = await ctx.promoters.allows(ctx.user, stage.promoters)
    return await decide(ctx, locks.unlock, repo["id"], stage, ctx.user, allowed)


async def status(ctx: Context, command: Command) -> str:
    """status: what is where."""
    repo, args = await repository(ctx, command.args, USAGE["status"])
    if args:
        raise CommandError("status takes no arguments", USAGE["status"])

    def job(tx: Tx) -> str:
        tx.log(actor=ctx.user, action="status", repo_id=repo["id"])
        return views.status(tx, repo)

    return await decide(ctx, job)


async def history(ctx: Context, command: Command) -> str:
    """history [<stage>]."""
    usage = USAGE["history"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) > 1:
        raise CommandError("history takes at most a stage or a build", usage)
    stages = {s.name for s in ctx.services.config.pipeline.stages}
    if args and (args[0].startswith("#") or SHA.match(args[0])) and args[0].lower() not in stages:
        build = await build_named(ctx, repo, args[0], usage)
        return await decide(ctx, lambda tx: views.build_story(tx.db, build))
    stage = stage_named(ctx, args[0], usage).name if args else None

    def job(tx: Tx) -> str:
        answer = views.history(tx.db, repo, stage)  # read before this command is logged
        tx.log(actor=ctx.user, action="history", repo_id=repo["id"], stage=stage)
        return answer

    return await decide(ctx, job)


NOT_BOUND = ":warning: This button is not bound to a promotion."
ELSEWHERE = ":warning: This button does not belong to promotion {}'s approval message."


async def unbound(ctx: Context, value: str, channel: str, ts: str) -> str | None:
    """Say why a click is not on its promotion's approval message (channel and ts), or None.

    The button's value names the promotion; the message it sits on must be the
    one promobot posted for that promotion, in that channel.
    """
    promotion = number(value)
    if promotion is None:
        return NOT_BOUND
    posted = await ctx.services.store.read(lambda db: pipeline.approval_message(db, promotion))
    if posted is None or posted != (channel, ts):
        return ELSEWHERE.format(promotion)
    return None


async def where(ctx: Context, command: Command) -> str:
    """where <sha | #build | PR number | login>: which stages a change has reached."""
    usage = USAGE["where"]
    repo, args = await repository(ctx, command.args, usage)
    if len(args) != 1:
        raise CommandError("where needs one sha, #build, pull request number or login", usage)
    ref = wherein.parse_ref(args[0])
    if ref is None:
        raise CommandError(f"`{echo(args[0])}` is not a sha, #build, PR number or login", usage)

    def job(tx: Tx) -> str:
        tx.log(actor=ctx.user, action="where", repo_id=repo["id"], detail={"ref": args[0][:80]})
        return whereabouts.whereabouts(tx, repo["id"], ref)

    return await decide(ctx, job)


async def click(ctx: Context, action: str, value: str) -> str:
    """Answer an Approve button on an approval message (the value is the promotion)."""
    if number(value) is None:
        return NOT_BOUND
    try:
        return await approve(ctx, Command("approve", (value,)))
    except CommandError as exc:
        return exc.answer()
