"""The /ship verbs that read: status, history and where (each leaves a line in the event log)."""

import asyncio

from bot.core import where as wherein
from bot.core.commands import USAGE, Command, CommandError, echo
from bot.pipeline import whereabouts
from bot.pipeline.tx import Tx
from bot.ship import views
from bot.ship.context import (
    SHA,
    Context,
    build_named,
    decide,
    look,
    note,
    repository,
    stage_named,
)


async def status(ctx: Context, command: Command) -> str:
    """status: what is where."""
    repo, args = await repository(ctx, command.args, USAGE["status"])
    if args:
        raise CommandError("status takes no arguments", USAGE["status"])

    # The audit line is durable by the time the answer goes, written while it is read (the
    # note first: the read runs on the loop itself while the line's commit is under way).
    _, answer = await asyncio.gather(
        note(ctx, actor=ctx.user, action="status", repo_id=repo["id"]),
        look(ctx, views.status, repo),
    )
    return answer if answer is not None else await decide(ctx, views.status, repo)


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
