"""Where is my change? Which stages a commit has reached, since when, and what holds it.

Pure: the facts are gathered elsewhere; this says them in Slack mrkdwn.
"""

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.render import plain
from bot.core.text import duration, escape, first_line

SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
BUILD = re.compile(r"^#(\d+)$")
PULL = re.compile(r"^(?:pr\s*#?|pull/)?(\d+)$", re.IGNORECASE)
LOGIN = re.compile(r"^@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$")


@dataclass(frozen=True)
class Ref:
    """What `/ship where` was asked about: kind is sha, build, pr or login."""

    kind: str
    value: str


def parse_ref(text: str) -> Ref | None:
    """Read a sha, a #build, a pull request number or a GitHub login; None for anything else."""
    word = text.strip()
    if m := BUILD.match(word):
        return Ref("build", m.group(1))
    if m := PULL.match(word):
        return Ref("pr", m.group(1))
    if SHA.match(word):
        return Ref("sha", word.lower())
    if m := LOGIN.match(word):
        return Ref("login", m.group(1))
    return None


@dataclass(frozen=True)
class Stop:
    """One stage on the way: reached (since when, by which build) or not."""

    stage: str
    reached: bool
    since: float | None = None
    live: int | None = None  # the build there now


@dataclass(frozen=True)
class Whereabouts:
    """A change, the build that first carried it, and its progress through the stages."""

    what: str  # mrkdwn: the commit or build, already escaped
    build: int
    stops: tuple[Stop, ...]
    holds: tuple[str, ...] = ()  # mrkdwn reasons at the first stage not reached


def when(at: float | None, now: float) -> str:
    """Say when, as a UTC time and how long ago."""
    if at is None:
        return "a while"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"{stamp} ({duration(now - at)} ago)"


def answer(w: Whereabouts, now: float) -> str:
    """Say where a change is: each stage reached, then what holds it at the next one."""
    lines = [f"{w.what} went out in build *#{w.build}*."]
    pending = [s for s in w.stops if not s.reached]
    for stop in w.stops:
        if stop.reached:
            lines.append(
                f"✅ *{escape(stop.stage)}* since {when(stop.since, now)} (#{stop.live} there now)"
            )
    if not pending:
        lines.append("It has reached every stage.")
        return "\n".join(lines)
    nxt = pending[0]
    there = f" (#{nxt.live} there now)" if nxt.live else " (nothing deployed there yet)"
    lines.append(f"⏳ not in *{escape(nxt.stage)}* yet{there}.")
    lines += [f"    {h}" for h in w.holds] or [
        "    nothing holds it: it waits for someone to promote it"
    ]
    rest = [escape(s.stage) for s in pending[1:]]
    if rest:
        lines.append(f"· not in {', '.join(rest)} either.")
    return "\n".join(lines)


def commit_what(sha: str, message: str, author: str, pr: int | None) -> str:
    """Name a commit in mrkdwn: `abc1234` title (#pr) by author."""
    title = first_line(message)
    ref = f" (#{pr})" if pr and f"#{pr}" not in title else ""
    by = f" by {plain(author, 40)}" if author else ""
    return f"`{sha[:7]}` {plain(title, 100)}{ref}{by}"


def holds_of(reasons: Sequence[str]) -> tuple[str, ...]:
    """Keep the distinct reasons, in order."""
    return tuple(dict.fromkeys(r for r in reasons if r))
