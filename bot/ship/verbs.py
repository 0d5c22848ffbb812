"""The /ship verbs that ask and decide: promote, approve, reject, cancel, rollback, lock, unlock.

Each verb is `async fn(ctx, command) -> str` (the ephemeral answer). Bad input
raises CommandError; the dispatcher answers it with the usage line and `refuse`
logs the refusal, which is the only thing bad input leaves behind.
"""

import logging
from typing import Any

from bot.config import Stage, parse_duration
from bot.core.commands import USAGE, Command, CommandError, echo
from bot.core.text import MAX_REASON, number, too_long
from bot.pipeline import approvals, locks, promotions
from bot.pipeline.tx import Tx
from bot.ship.context import (
    BUILD_NUMBER,
    REPO_NAME,
    Context,
    build_named,
    decide,
    repository,
    stage_named,
)
from storage import pipeline

# Characters of a refused command's text kept in the event log (the rest is only counted).
REFUSED_TEXT_CAP = 200

log = logging.getLogger(__name__)


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
    if not command.args or (len(command.args) == 1 and REPO_NAME.match(command.args[0])):
        return await awaiting(ctx, command.args)  # of one repository, where a channel has more
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


async def awaiting(ctx: Context, args: tuple[str, ...]) -> str:
    """List the promotions of the repository waiting for this person's approval."""
    repo, _ = await repository(ctx, args, USAGE["approve"])
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


NOT_BOUND = ":warning: This button is not bound to a promotion."
ELSEWHERE = ":warning: This button does not belong to promotion {}'s approval message."


async def unbound(ctx: Context, value: str, channel: str, ts: str) -> str | None:
    """Say why a click is not on its promotion's approval message (channel and ts), or None.

    The button's value names the promotion; the message it sits on must be the
    one promobot posted for that promotion, in that channel.
    """
    promotion = number(value)
    if promotion is None:
        problem = NOT_BOUND
    else:
        posted = await ctx.services.store.read(lambda db: pipeline.approval_message(db, promotion))
        if posted == (channel, ts):
            return None
        problem = ELSEWHERE.format(promotion)
    await refuse(ctx, f"click {value}", CommandError(problem.removeprefix(":warning: ")))
    return problem


async def click(ctx: Context, action: str, value: str) -> str:
    """Answer an Approve button on an approval message (the value is the promotion)."""
    if number(value) is None:
        return NOT_BOUND
    try:
        return await approve(ctx, Command("approve", (value,)))
    except CommandError as exc:
        await refuse(ctx, f"click {value}", exc)
        return exc.answer()
