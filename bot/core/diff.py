"""The diff of a promotion: which builds and commits go into a stage (or come out of it).

Pure: the records are read elsewhere and passed in; this shapes them and says them
in Slack mrkdwn, cut to a budget with the rest behind GitHub's compare link.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.render import cut, plain
from bot.core.text import escape, first_line, link

PUSH_CAP = 2048  # GitHub puts at most this many commits in one push payload
TITLE_LIMIT = 150
COMMITS_SHOWN = 5  # per build, in chat; the compare view has them all
BUDGET = 1800  # characters of mrkdwn a diff may take in one message
_PR = re.compile(r"^Merge pull request #(\d+)\b|\(#(\d+)\)\s*$")


def pull_request_of(message: str) -> int | None:
    """Return the pull request a commit's first line names (`(#123)`, `Merge pull request #123`)."""
    found = _PR.search(first_line(message))
    return int(found.group(1) or found.group(2)) if found else None


def compare_url(repo_url: str, base: str, head: str) -> str:
    """Return GitHub's compare view from `base` to `head`."""
    return f"{repo_url.rstrip('/')}/compare/{base[:12]}...{head[:12]}"


@dataclass(frozen=True)
class Carried:
    """One build in a diff, with the commits its push carried (newest first)."""

    number: int
    sha: str
    title: str
    url: str
    commits: tuple[dict[str, Any], ...] = ()
    stored: bool = True  # False for builds older than the commit store
    capped: bool = False  # the push hit GitHub's cap: there may have been more commits


@dataclass(frozen=True)
class Diff:
    """What promoting build `target` into `stage` changes, against the build live there."""

    stage: str
    target: int
    target_sha: str
    live: int | None
    live_sha: str | None
    builds: tuple[Carried, ...]  # newest first; maybe fewer than counts["builds"]
    counts: Mapping[str, int] = field(default_factory=dict)
    compare: str | None = None

    @property
    def rollback(self) -> bool:
        """Say whether the target is older than the live build."""
        return self.live is not None and self.target < self.live

    @property
    def empty(self) -> bool:
        """Say whether the target is the live build itself."""
        return self.live == self.target


def plural(n: int, word: str) -> str:
    """Say `n word(s)`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts_text(diff: Diff) -> str:
    """Say the size of a diff: `3 builds, 11 commits by 4 people`."""
    c = diff.counts
    people = c.get("people", 0)
    by = f" by {plural(people, 'person') if people == 1 else f'{people} people'}" if people else ""
    return f"{plural(c.get('builds', 0), 'build')}, {plural(c.get('commits', 0), 'commit')}{by}"


def headline(diff: Diff) -> str:
    """Say in one plain line what the promotion does to the stage."""
    if diff.empty:
        return f"#{diff.target} is already live in {diff.stage}: nothing changes"
    if diff.live is None:
        return f"first build in {diff.stage}: {counts_text(diff)} up to #{diff.target}"
    if diff.rollback:
        n = diff.counts.get("builds", 0)
        return (
            f"rollback of {plural(n, 'build')} in {diff.stage} (#{diff.live} → #{diff.target}),"
            f" taking out {counts_text(diff).split(', ', 1)[1]}"
        )
    return f"{counts_text(diff)} since #{diff.live} in {diff.stage}"


def notes(diff: Diff) -> list[str]:
    """Say where the stored commits are not the whole story."""
    said = []
    capped = [f"#{b.number}" for b in diff.builds if b.capped]
    if capped or diff.counts.get("capped"):
        said.append(
            f"a push ({', '.join(capped) or 'older'}) carried GitHub's cap of {PUSH_CAP} commits:"
            " there are more in the compare view"
        )
    if diff.counts.get("unstored"):
        said.append(f"{plural(diff.counts['unstored'], 'build')} from before commits were kept")
    return said


def build_lines(b: Carried, verb: str = "") -> list[str]:
    """Say one build and its first commits in mrkdwn."""
    lines = [f"• *#{b.number}* {link(b.url, f'`{b.sha[:7]}`')} {plain(b.title, 100)}{verb}"]
    for c in b.commits[:COMMITS_SHOWN]:
        title = first_line(c["message"])[:TITLE_LIMIT]
        pr = f" (#{c['pr']})" if c.get("pr") and f"#{c['pr']}" not in title else ""
        by = f" — {plain(c['author'], 40)}" if c.get("author") else ""
        lines.append(f"    ◦ {plain(title, 100)}{pr}{by}")
    hidden = len(b.commits) - COMMITS_SHOWN
    if hidden > 0:
        lines.append(f"    ◦ and {plural(hidden, 'more commit')}")
    return lines


def mrkdwn(diff: Diff, budget: int = BUDGET) -> str:
    """Say a diff in Slack mrkdwn within `budget` characters, the rest behind the compare link."""
    icon = "↩️ " if diff.rollback else ""
    view = link(diff.compare, "compare on GitHub") if diff.compare else ""
    head = f"{icon}*{escape(headline(diff))}*" + (f" · {view}" if view else "")
    if diff.empty:
        return head
    lines = [head] + [f"_{escape(n)}_" for n in notes(diff)]
    verb = " _(taken out)_" if diff.rollback else ""
    shown = 0
    for b in diff.builds:
        more = build_lines(b, verb)
        if len("\n".join([*lines, *more])) > budget - 80:
            break
        lines += more
        shown += 1
    rest = diff.counts.get("builds", len(diff.builds)) - shown
    if rest > 0:
        where = f" in the {view}" if view else ""
        lines.append(f"…and {plural(rest, 'more build')}{where}")
    return cut("\n".join(lines), budget)


def assemble(
    stage: str,
    target: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    span: Sequence[Mapping[str, Any]],
    commits: Mapping[int, Sequence[Mapping[str, Any]]],
    counts: Mapping[str, int],
    repo_url: str,
) -> Diff:
    """Shape the builds between the live build and the target (either way) into a Diff."""
    carried = tuple(
        Carried(
            number=b["number"],
            sha=b["sha"],
            title=first_line(b.get("message") or ""),
            url=b.get("html_url") or "",
            commits=tuple(dict(c) for c in commits.get(b["id"], ())),
            stored=bool(b.get("commits_stored", 1)),
            capped=bool(b.get("commits_capped", 0)),
        )
        for b in span
    )
    back = live is not None and target["number"] < live["number"]
    base, head = (target, live) if back else (live, target)
    url = compare_url(repo_url, base["sha"], head["sha"]) if base and head and repo_url else None
    return Diff(
        stage=stage,
        target=target["number"],
        target_sha=target["sha"],
        live=live["number"] if live else None,
        live_sha=live["sha"] if live else None,
        builds=carried,
        counts=dict(counts),
        compare=url if live and live["number"] != target["number"] else None,
    )
