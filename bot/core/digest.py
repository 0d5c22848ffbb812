"""The daily digest's content: a pure function of the stored records and the clock.

`compose` takes the rows `storage.digests.repo_records` read, and the time;
it reads no database and no clock, so tests script a history and a time zone.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.core.text import duration, escape, link, when
from bot.core.verdict import red_since

DAY = 86_400.0
Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Section:
    """One part of the digest: a title and its lines of mrkdwn."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Digest:
    """A channel's digest for one local day; `quiet` when there is nothing to warn about."""

    channel: str
    day: str
    title: str
    summary: str
    sections: tuple[Section, ...]
    quiet: bool
    also: tuple[str, ...] = ()  # the other names app.yaml gives this channel (its ID, say)


def ref(build: Mapping[str, Any]) -> str:
    """Link a build: '#42 `abc1234`' pointing at its commit."""
    label = f"#{build['number']}"
    return f"{link(build.get('html_url'), label)} `{build['sha'][:7]}`"


def _failed_at(events: Rows) -> dict[int, float]:
    """Return when each build first turned red (the first ci.changed to failure)."""
    first: dict[int, float] = {}
    for e in events:
        if e["detail"].get("to") == "failure":
            first.setdefault(e["build_id"], e["at"])
    return first


def _run_start(builds: Rows, index: int, failed_at: Mapping[int, float]) -> float:
    """Return when main turned red for the red run that contains builds[index]."""
    start = builds[index]
    for b in reversed(builds[:index]):
        if b["ci_state"] == "success":
            break
        if b["ci_state"] == "failure":
            start = b
    return failed_at.get(start["id"], start["ci_changed_at"])


def _failing_checks(build: Mapping[str, Any], events: Rows, transitions: Rows) -> str:
    names: list[str] = []
    for e in events:
        if e["build_id"] == build["id"] and e["detail"].get("to") == "failure":
            names += [n for n in e["detail"].get("failing", []) if n not in names]
    links = {
        t["context"]: t["target_url"]
        for t in transitions
        if t["sha"] == build["sha"] and t["state"] == "failure" and t.get("target_url")
    }
    shown = [link(links[n], escape(n)) if n in links else f"`{escape(n)}`" for n in names]
    return ", ".join(shown) or "CI"


def failed_builds(rec: Mapping[str, Any], since: float) -> list[str]:
    """List the builds that turned red in the window, what failed and what fixed them."""
    builds, events = rec["builds"], rec["ci_events"]
    failed_at = _failed_at(events)
    in_window = {e["build_id"] for e in events if e["detail"].get("to") == "failure"}
    in_window &= {e["build_id"] for e in events if e["at"] >= since}
    lines = []
    for i, b in enumerate(builds):
        if b["id"] not in in_window:
            continue
        start = _run_start(builds, i, failed_at)
        fix = next((f for f in builds[i + 1 :] if f["ci_state"] == "success"), None)
        if b["ci_state"] == "success":
            outcome = f"passed on a rerun; red for {duration(b['ci_changed_at'] - start)}"
        elif fix:
            red_for = duration(fix["ci_changed_at"] - start)
            outcome = f"fixed by #{fix['number']}; main was red for {red_for}"
        elif b["ci_state"] == "pending":
            outcome = "being rerun"
        else:
            outcome = "*not fixed yet*"
        checks = _failing_checks(b, events, rec["transitions"])
        lines.append(f"• {ref(b)} by {escape(b['author'])}: {checks} failed — {outcome}")
    return lines


def flaky_checks(rec: Mapping[str, Any]) -> list[str]:
    """List checks that failed and then passed on the same sha within the window."""
    by_sha = {b["sha"]: b for b in rec["builds"]}
    failed: dict[tuple[str, str], str | None] = {}
    lines = []
    for t in rec["transitions"]:
        key = (t["sha"], t["context"])
        if t["state"] == "failure":
            failed.setdefault(key, t.get("target_url"))
        elif t["state"] == "success" and key in failed:
            url = failed.pop(key)
            name = link(url, escape(t["context"])) if url else f"`{escape(t['context'])}`"
            build = by_sha.get(t["sha"])
            where = ref(build) if build else f"`{t['sha'][:7]}`"
            lines.append(f"• {name} on {where}: failed, then passed on the same commit")
    return lines


def red_now(rec: Mapping[str, Any], branch: str, now: float, tz: str) -> list[str]:
    """Say whether the branch is red right now, since which build and when."""
    final = [b for b in reversed(rec["builds"]) if b["ci_state"] in ("success", "failure")]
    first = red_since(final)
    if first is None:
        return []
    start = _failed_at(rec["ci_events"]).get(first["id"], first["ci_changed_at"])
    return [
        f":red_circle: {escape(branch)} is red since {ref(first)}, {when(start, tz, short=True)}"
        f" ({duration(now - start)} ago)"
    ]


def waiting_in_stage(rec: Mapping[str, Any], stages: Sequence[str], now: float) -> list[str]:
    """List, per stage, the newest build that passed it over a day ago and went no further."""
    numbers = {b["id"]: b for b in rec["builds"]}
    entered: dict[str, dict[int, float]] = {s: {} for s in stages}
    for d in rec["deployments"]:
        if d["stage"] in entered and d["build_id"] in numbers:
            at = d["finished_at"] or d["updated_at"]
            seen = entered[d["stage"]].get(d["build_id"])
            entered[d["stage"]][d["build_id"]] = min(at, seen) if seen else at
    out = {(r["build_id"], r["stage"]) for r in rec["rolled_back"]}  # it waits nowhere there
    lines = []
    for index, (stage, following) in enumerate(pairwise(stages)):
        later = set().union(*(entered[s] for s in stages[index + 1 :]))
        ahead = rec["live"].get(following, 0)  # what runs there now, a rollback's build too
        stuck = [
            (numbers[i], at)
            for i, at in entered[stage].items()
            if i not in later
            and (i, stage) not in out
            and numbers[i]["number"] > ahead
            and at <= now - DAY
        ]
        if stuck:
            build, at = max(stuck, key=lambda s: s[0]["number"])
            there = f"#{ahead}" if ahead else "nothing yet"
            lines.append(
                f"• {ref(build)} has waited in {stage} for {duration(now - at)}"
                f" ({following} has {there})"
            )
    return lines


def _pending(rec: Mapping[str, Any], now: float, tz: str) -> tuple[list[str], list[str]]:
    """Return the lines of approvals waiting, and of locks and freezes in place."""
    numbers = {b["id"]: b for b in rec["builds"]}
    approvals = [
        f"• promotion {p['id']}: {ref(numbers[p['build_id']]) if p['build_id'] in numbers else ''}"
        f" to {p['stage']}, asked by <@{p['requested_by']}> {duration(now - p['created_at'])}"
        f" ago ({p['approvals']} approval(s) so far)"
        for p in rec["promotions"]
    ]
    held = [
        f"• :lock: {lk['stage']} locked by <@{lk['locked_by']}>"
        f" since {when(lk['created_at'], tz, short=True)}"
        f": {escape(lk['reason'])}"
        + (f" (until {when(lk['expires_at'], tz, short=True)})" if lk.get("expires_at") else "")
        for lk in rec["locks"]
    ]
    held += [
        f"• :snowflake: merges frozen by <@{f['frozen_by']}>"
        f" since {when(f['started_at'], tz, short=True)}:"
        f" {escape(f['reason'])}"
        for f in rec["freezes"]
    ]
    return approvals, held


def deployed(rec: Mapping[str, Any], stage: str, since: float, tz: str) -> list[str]:
    """List the builds deployed to production in the window."""
    numbers = {b["id"]: b for b in rec["builds"]}
    rows = sorted(
        (d for d in rec["deployments"] if d["stage"] == stage and d["build_id"] in numbers),
        key=lambda d: d["finished_at"] or d["updated_at"],
    )
    return [
        f"• {ref(numbers[d['build_id']])}"
        f" at {when(d['finished_at'] or d['updated_at'], tz, short=True)}"
        for d in rows
        if (d["finished_at"] or d["updated_at"]) >= since
    ]


def compose(
    config: Config, channel: str, records: Sequence[Mapping[str, Any]], now: float
) -> Digest:
    """Build a channel's digest for the 24 hours before `now` from its repositories' records."""
    tz, since = config.digest.timezone, now - DAY
    stages = [s.name for s in config.pipeline.stages]
    sections: list[Section] = []
    counts = {"failed": 0, "flaky": 0, "red": 0, "deployed": 0}
    for rec in records:
        name = f" — {escape(rec['repo']['full_name'])}" if len(records) > 1 else ""
        approvals, held = _pending(rec, now, tz)
        parts = {
            "red": ("Red right now", red_now(rec, config.pipeline.branch, now, tz)),
            "failed": ("Failed builds", failed_builds(rec, since)),
            "flaky": ("Flaky checks", flaky_checks(rec)),
            "waiting": ("Waiting over a day", waiting_in_stage(rec, stages, now)),
            "approvals": ("Approvals waiting", approvals),
            "held": ("Locks and freezes", held),
            "deployed": (f"Deployed to {stages[-1]}", deployed(rec, stages[-1], since, tz)),
            "weekly": ("The week's delivery (DORA)", list(rec.get("weekly") or ())),
        }
        for key, (title, lines) in parts.items():
            if lines:
                sections.append(Section(title + name, tuple(lines)))
                if key in counts:
                    counts[key] += len(lines)
    quiet = all(s.title.startswith(f"Deployed to {stages[-1]}") for s in sections)
    summary = ", ".join(
        [
            f"{counts['failed']} failed build(s)",
            f"{counts['flaky']} flaky check(s)",
            f"{counts['deployed']} deployment(s) to {stages[-1]}",
            "main is red" if counts["red"] else "main is green",
        ]
    ).replace("main", config.pipeline.branch)
    day = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(tz))
    title = f"Daily digest for {day:%a %d %b %Y}: the last 24 hours"
    return Digest(channel, day.date().isoformat(), title, summary, tuple(sections), quiet)
