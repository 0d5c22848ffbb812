"""The /ship command language: parse text into a verb and arguments, or say what was wrong."""

import difflib
import shlex
from collections.abc import Iterable
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
    "approve": "/ship approve [<promotion>]",
    "reject": '/ship reject <promotion> "reason"',
    "rollback": '/ship rollback <stage> [to <build>] [--force "reason"]',
    "cancel": "/ship cancel <promotion>",
    "lock": '/ship lock <stage> "reason" [for 2h]',
    "unlock": "/ship unlock <stage>",
    "freeze": '/ship freeze "reason"',
    "unfreeze": "/ship unfreeze",
    "history": "/ship history [<stage> | #build]",
    "where": "/ship where <sha | #build | PR number | github-login>",
    "digest": "/ship digest",
    "metrics": "/ship metrics [owner/name] [weeks]",
    "help": "/ship help",
}
EXAMPLES = {
    "status": "/ship status",
    "promote": "/ship promote #42 baklava",
    "approve": "/ship approve 7",
    "reject": "/ship reject 7 the migration is not reviewed",
    "cancel": "/ship cancel 7",
    "rollback": "/ship rollback dumpling to #40",
    "lock": "/ship lock dumpling db migration for 2h",
    "unlock": "/ship unlock dumpling",
    "freeze": "/ship freeze release day",
    "unfreeze": "/ship unfreeze",
    "history": "/ship history #42",
    "where": "/ship where 123",
    "digest": "/ship digest",
    "help": "/ship help",
}


def example(verb: str) -> str:
    """Return ` — e.g. `…`` for a verb whose example says more than its usage line."""
    shown = EXAMPLES.get(verb, USAGE[verb])
    return "" if shown == USAGE[verb] else f" — e.g. `{shown}`"


HELP = "\n".join(
    [
        "*promobot* carries each build of main through the pipeline. Commands, with examples:",
        *(f"• `{line}`{example(verb)}" for verb, line in USAGE.items()),
        "`<build>` is `#42`, a short sha like `abc1234`, or a stage name (the build there now).",
        "A reason needs no quotes when it ends the line: `/ship lock dumpling db migration`.",
        "`/promote <build> [to] <stage>` is short for `/ship promote`.",
        "The strip on each build: ✅ live there now · ☑️ was live · ↩️ rolled back out · ⏳ deploying"
        " · 🕒 queued · ⏸ waiting for approval · ❌ failed · 🔒 locked.",
    ]
)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` Did you mean `x`?` for a near miss among `choices`, else nothing."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


# Verbs whose last argument is a reason: words after the others are one reason, quoted or not.
REASON_AFTER = {"reject": 1, "freeze": 0, "lock": 1}


def gather_reason(verb: str, args: list[str]) -> list[str]:
    """Join an unquoted reason back into one argument (`lock dumpling db migration for 2h`)."""
    if verb not in REASON_AFTER or len(args) <= REASON_AFTER[verb]:
        return args
    head, rest = args[: REASON_AFTER[verb]], args[REASON_AFTER[verb] :]
    tail: list[str] = []
    if verb == "lock" and len(rest) >= 3 and rest[-2].lower() == "for":
        rest, tail = rest[:-2], rest[-2:]
    return [*head, " ".join(rest), *tail] if rest else args


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


class Forbidden(CommandError):
    """A command the person may not give: said without a usage line, logged like bad input."""

    def answer(self) -> str:
        """Return the ephemeral text shown to the person who typed the command."""
        return f":no_entry: {self.message}."


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
        raise CommandError(f"`{echo(verb)}` is not a /ship command.{did_you_mean(verb, USAGE)}")
    options: dict[str, str] = {}
    args: list[str] = []
    iterator = iter(rest)
    for word in iterator:
        if word.startswith("--"):
            name = word[2:]
            if name != "force" or verb not in ("promote", "rollback"):
                raise CommandError(f"`{echo(word)}` is not an option of `{verb}`", USAGE[verb])
            words = list(iterator)  # the reason is the rest of the line, quoted or not
            reason = " ".join(words).strip()
            if not reason or reason.startswith("--"):
                raise CommandError("`--force` needs a reason", USAGE[verb])
            options[name] = reason
        else:
            args.append(word)
    return Command(verb, tuple(gather_reason(verb, args)), options)
