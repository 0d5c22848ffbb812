"""The /ship verb table and its dispatch: parse what was typed, run its verb, answer."""

from bot.core import commands
from bot.core.text import MAX_COMMAND, too_long
from bot.pipeline import digest_post, freeze
from bot.ship import metrics, reading, verbs
from bot.ship.context import Answer, Context, Verb, learn_name


async def merge_freeze(ctx: Context, command: commands.Command) -> Answer:
    """Start or lift a merge freeze of the channel's repositories."""
    return await freeze.command(
        ctx.services,
        ctx.promoters,
        command.verb,
        command.args,
        user=ctx.user,
        channel_id=ctx.channel_id,
        channel_name=ctx.channel_name,
    )


async def digest(ctx: Context, command: commands.Command) -> Answer:
    """Show today's digest to the person who asked."""
    return await digest_post.ephemeral(
        ctx.services, channel_id=ctx.channel_id, channel_name=ctx.channel_name
    )


# One function per /ship verb: async (ctx, command) -> the ephemeral answer (text, or a dict
# of acknowledgement fields such as text and blocks). Add verbs here
# (and their usage line in bot/core/commands.py).
VERBS: dict[str, Verb] = {
    "freeze": merge_freeze,
    "unfreeze": merge_freeze,
    "digest": digest,
    "status": reading.status,
    "promote": verbs.promote,
    "approve": verbs.approve,
    "reject": verbs.reject,
    "cancel": verbs.cancel,
    "rollback": verbs.rollback,
    "lock": verbs.lock,
    "unlock": verbs.unlock,
    "history": reading.history,
    "metrics": metrics.metrics,
    "where": reading.where,
}


# Verbs that only read answer with <@U…> mentions, which Slack shows by name itself: they
# never wait for users.info (pages and GitHub get the name, looked up after the answer).
READING = frozenset({"help", "status", "history", "where", "metrics", "digest"})


async def answer(ctx: Context, text: str, command: str | None) -> Answer:
    """Parse and run one typed /ship command; return the ephemeral answer (bad input: the usage)."""
    try:
        # shlex takes seconds over a 700 KB command, on the event loop: refuse it unparsed.
        long = too_long("this command", text, MAX_COMMAND)
        if long:
            raise commands.CommandError(long)
        parsed = commands.parse(text, command=command or "/ship")
    except commands.CommandError as exc:
        await learn_name(ctx, wait=False)
        await verbs.refuse(ctx, text, exc)
        return exc.answer()
    # A decision names its person in GitHub and on pages: know the name first (bounded).
    await learn_name(ctx, wait=parsed.verb not in READING)
    return await answer_command(ctx, parsed, text)


async def answer_command(ctx: Context, parsed: commands.Command, text: str = "") -> Answer:
    """Run a parsed command through its verb; bad arguments get the usage line."""
    if parsed.verb == "help":
        return commands.HELP
    try:
        return await VERBS[parsed.verb](ctx, parsed)  # the parser knows only these verbs
    except commands.CommandError as exc:
        await verbs.refuse(ctx, text or " ".join((parsed.verb, *parsed.args)), exc)
        return exc.answer()
