"""/ship metrics [owner/name] [weeks]: the delivery report of a repository, to the asker."""

from typing import Any

from bot.core import metrics_text
from bot.core.commands import USAGE, Command, CommandError
from bot.core.text import escape
from bot.pipeline import metrics as measured
from bot.pipeline.tx import Tx
from bot.ship.context import Context, repository


def weeks_of(args: tuple[str, ...], usage: str) -> int:
    """Return the number of weeks a command names (default 4), or say what is wrong."""
    if len(args) > 1:
        raise CommandError("metrics takes a repository and a number of weeks, no more", usage)
    if not args:
        return measured.DEFAULT_WEEKS
    if not args[0].isdigit() or not 1 <= int(args[0]) <= measured.MAX_WEEKS:
        most = measured.MAX_WEEKS
        raise CommandError(f"`{escape(args[0])}` is not a number of weeks (1 to {most})", usage)
    return int(args[0])


async def metrics(ctx: Context, command: Command) -> str:
    """metrics [owner/name] [weeks]."""
    usage = USAGE["metrics"]
    repo, args = await repository(ctx, command.args, usage)
    weeks = weeks_of(args, usage)
    services = ctx.services
    now = services.clock.now()
    # Measured on a reader: a year of history must not hold the writer.
    found = await services.store.read(
        lambda db: measured.report(db, services.config, repo, weeks, now)
    )

    def job(db: Any) -> None:
        tx = Tx(db, services.config, services.clock.now())
        tx.log(actor=ctx.user, action="metrics", repo_id=repo["id"], detail={"weeks": weeks})

    await services.store.write(job)
    return metrics_text.slack(found)
