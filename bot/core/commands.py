"""The /ship command language: parse text into a verb and arguments, or say what was wrong."""

import shlex
from dataclasses import dataclass, field

from bot.core.render import plain

UNFOLLOWED = (
    "this channel follows no repository: use /ship in a channel app.yaml names"
    " (slack.channel, or repositories.<name>.channel)"
)
# Characters of a person's own word echoed back in a refusal: enough to recognise it.
ECHO_LIMIT = 40

USAGE = {
    "status": "/ship status",
    "promote": '/ship promote <build> [to] <stage> [--force "reason"]',
    "approve": "/ship approve <promotion>",
    "reject": '/ship reject <promotion> "reason"',
    "rollback": "/ship rollback <stage> [to <build>]",
    "lock": '/ship lock <stage> "reason" [for 2h]',
    "unlock": "/ship unlock <stage>",
    "freeze": '/ship freeze "reason"',
    "unfreeze": "/ship unfreeze",
    "history": "/ship history [<stage>]",
    "where": "/ship where <sha | #build | PR number | github-login>",
    "digest": "/ship digest",
    "metrics": "/ship metrics [owner/name] [weeks]",
    "help": "/ship help",
}
HELP = "\n".join(
    [
        "*promobot* carries each build of main through the pipeline. Commands:",
        *(f"• `{line}`" for line in USAGE.values()),
        "`<build>` is `#42`, a short sha like `abc1234`, or a stage name (the build there now).",
        "`/promote <build> [to] <stage>` is short for `/ship promote`.",
    ]
)


class CommandError(Exception):
    """Bad input: `message` says what was wrong, `usage` shows the right form."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def answer(self) -> str:
        """Return the ephemeral text shown to the person who typed the command."""
        usage = f"\nUsage: `{self.usage}`" if self.usage else "\nTry `/ship help`."
        return f":warning: {self.message}{usage}"


def echo(word: str) -> str:
    """Return a word someone typed, escaped and cut short, to quote it in `code`."""
    return plain(word.replace("`", "'"), ECHO_LIMIT)


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


def split(text: str) -> list[str]:
    """Split command text into words, honouring "quoted reasons" (and Slack's curly quotes)."""
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'")
    text = text.replace("\u2019", "'")
    try:
        return shlex.split(text)
    except ValueError:
        raise CommandError("a quote is not closed", None) from None


def parse(text: str, *, command: str = "/ship") -> Command:
    """Parse the text of `/ship …` (or `/promote …`) into a Command."""
    words = split(text)
    if command == "/promote":
        words = ["promote", *words]
    if not words:
        return Command("help")
    verb, rest = words[0].lower(), words[1:]
    if verb not in USAGE:
        raise CommandError(f"`{echo(verb)}` is not a /ship command")
    options: dict[str, str] = {}
    args: list[str] = []
    iterator = iter(rest)
    for word in iterator:
        if word.startswith("--"):
            name = word[2:]
            if name != "force" or verb != "promote":
                raise CommandError(f"`{echo(word)}` is not an option of `{verb}`", USAGE[verb])
            reason = next(iterator, "")
            if not reason.strip() or reason.startswith("--"):
                raise CommandError("`--force` needs a reason in quotes", USAGE[verb])
            options[name] = reason
        else:
            args.append(word)
    return Command(verb, tuple(args), options)
