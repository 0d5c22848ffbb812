"""One stage as a state machine: every way a stage moves is decided here, from its facts.

A stage holds a live build, at most one deployment in flight, at most one open
promotion (waiting for approval, or approved and queued behind something that
clears), at most one lock, and the builds rolled back out of it. `decide` takes
those facts and an intent (promote, approve, cancel, rollback, lock, unlock,
automatic entry, review after an outcome or when time passes) and says what
happens; the pipeline applies it. Nothing here reads the database or the clock.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config import Stage
from bot.core import gates, text

# Gates that clear by themselves or by a person's say: a promotion they hold waits.
CLEARING = ("lock", "approvals")


@dataclass(frozen=True)
class Live:
    """A build that reached the stage: the live one, or an earlier one in its history."""

    build_id: int
    number: int
    since: float


@dataclass(frozen=True)
class Flight:
    """The deployment into the stage that has not finished."""

    build_id: int
    number: int
    promotion_id: int | None


@dataclass(frozen=True)
class Open:
    """The stage's open promotion: waiting for approval, or approved and queued."""

    id: int
    build_id: int
    number: int
    requested_by: str
    forced_reason: str | None
    approvers: tuple[str, ...]
    expires_at: float | None


@dataclass(frozen=True)
class Lock:
    """The stage's lock."""

    locked_by: str
    reason: str
    expires_at: float | None


@dataclass(frozen=True)
class StageFacts:
    """What one stage's decisions are made from."""

    stage: Stage
    now: float
    live: Live | None = None
    flight: Flight | None = None
    open: Open | None = None
    lock: Lock | None = None
    history: tuple[Live, ...] = ()  # each build that was live here, oldest first
    rolled_back: Mapping[int, str] = field(default_factory=dict)  # build id -> how and why


@dataclass(frozen=True)
class Decision:
    """What happens: refuse, wait (accepted, queued), deploy, keep, drop, or a stage change."""

    verdict: str
    reason: str = ""
    checks: tuple[gates.Gate, ...] = ()
    waits_for: tuple[str, ...] = ()
    due: float | None = None  # when to look again by itself
    supersedes: int | None = None  # the open promotion a new one replaces
    forced: tuple[str, ...] = ()  # the gates (or rollback rules) a force went through
    target: Live | None = None  # the build a rollback redeploys
    needs_approval: bool = False

    @property
    def refused(self) -> bool:
        """Say whether nothing may change."""
        return self.verdict == "refuse"


def refuse(reason: str, checks: tuple[gates.Gate, ...] = ()) -> Decision:
    """Return a refusal."""
    return Decision("refuse", reason, checks)


def clock(at: float) -> str:
    """Say a moment as people read it in the log: 10:42 UTC."""
    return time.strftime("%H:%M UTC", time.gmtime(at))


def clears(gate: gates.Gate) -> bool:
    """Say whether a failed gate clears without anyone overriding it."""
    return gate.name in CLEARING or (gate.name == "soak" and gate.due is not None)


def waits(s: StageFacts, checks: list[gates.Gate], forced: bool) -> tuple[list[str], float | None]:
    """Return what a promotion waits for, and when the soonest of them clears by itself."""
    held = [g for g in checks if not g.ok and not (forced and g.name in gates.OVERRIDABLE)]
    phrases, dues = [], []
    for gate in held:
        if gate.name == "soak" and gate.due is not None:
            phrases.append(f"when the soak ends in {text.duration(gate.due - s.now)}")
            dues.append(gate.due)
        elif gate.name == "lock":
            phrases.append(f"when {s.stage.name} is unlocked")
            dues.append(gate.due or 0)
        elif gate.name == "approvals":
            phrases.append("when it is approved")
    if s.flight:
        phrases.append(f"after #{s.flight.number} finishes deploying")
    finite = [d for d in dues if d != float("inf")]
    return phrases, min(finite) if finite else None


def already(s: StageFacts, build_id: int, number: int) -> str | None:
    """Say why a build cannot be promoted into a stage it is already in (or on its way to)."""
    if s.live and s.live.build_id == build_id:
        return f"#{number} is already live in {s.stage.name} since {clock(s.live.since)}."
    if s.flight and s.flight.build_id == build_id:
        return f"#{number} is already deploying into {s.stage.name}."
    return None


def judge(s: StageFacts, g: gates.Facts, forced: bool) -> Decision:
    """Weigh every gate: refuse on one that does not clear, wait on those that do, else deploy."""
    checks = gates.evaluate(g, s.now)
    hard = [
        c for c in gates.blocking(checks, forced=forced) if not clears(c) and c.name != "approvals"
    ]
    if hard:  # the reason names every gate that holds it, as the answer shows them all
        stops = gates.blocking(checks, forced=forced)
        return refuse("; ".join(f"{c.name}: {c.reason}" for c in stops), tuple(checks))
    phrases, due = waits(s, checks, forced)
    forced_through = tuple(c.name for c in gates.overridden(checks)) if forced else ()
    if phrases:
        return Decision(
            "wait",
            checks=tuple(checks),
            waits_for=tuple(phrases),
            due=due,
            forced=forced_through,
            needs_approval=gates.needs_approval(checks),
        )
    return Decision("deploy", checks=tuple(checks), forced=forced_through)


def promote(s: StageFacts, g: gates.Facts, force: str | None) -> Decision:
    """Decide a person's promotion of a build into the stage."""
    done = already(s, g.build["id"], g.build["number"])
    if done:
        return refuse(done)
    decision = judge(s, g, bool(force))
    if decision.refused or s.open is None:
        return decision
    return Decision(**{**decision.__dict__, "supersedes": s.open.id})


def enter(s: StageFacts, g: gates.Facts) -> Decision:
    """Decide an automatic entry: the newest green build, never one rolled back out of here."""
    build = g.build
    if build["id"] in s.rolled_back:
        return refuse(f"#{build['number']} was rolled back out of {s.stage.name}")
    held = [x for x in (s.live, s.flight, s.open) if x is not None]
    if any(x.number >= build["number"] for x in held):
        return refuse(f"{s.stage.name} already has #{build['number']} or newer")
    decision = judge(s, g, False)
    if decision.refused or decision.needs_approval or (s.lock and decision.verdict == "wait"):
        # An auto stage that needs approval is entered by a person; a locked one on unlock.
        return refuse(decision.reason or "held", decision.checks)
    return Decision(**{**decision.__dict__, "supersedes": s.open.id if s.open else None})


def approve(s: StageFacts, g: gates.Facts, person: str, promoter: bool | None) -> Decision:
    """Decide one person's approval of the open promotion, then what the promotion does."""
    p = s.open
    if p is None:
        return refuse("nothing waits for approval")
    if person == p.requested_by:
        return refuse("You asked for this promotion; someone else must approve it.")
    if promoter is False:
        return refuse(f"<@{person}> is not a promoter of {s.stage.name}.")
    if person in p.approvers:
        return refuse(f"You already approved promotion {p.id}.")
    return review(s, gates.Facts(**{**g.__dict__, "approvers": (*p.approvers, person)}))


def review(s: StageFacts, g: gates.Facts) -> Decision:
    """Look again at the open promotion: deploy it, keep it waiting, or drop or expire it."""
    p = s.open
    if p is None:
        return refuse("nothing waits")
    if p.expires_at is not None and p.expires_at <= s.now:
        return Decision("expire", "nobody approved it within 24h" if p.approvers == () else "")
    done = already(s, p.build_id, p.number)
    if done and not (s.flight and s.flight.build_id == p.build_id):
        return Decision("drop", done)
    decision = judge(s, g, bool(p.forced_reason))
    if decision.refused:
        return Decision("drop", f"a gate no longer holds: {decision.reason}", decision.checks)
    if decision.verdict == "wait":
        return Decision(**{**decision.__dict__, "verdict": "keep"})
    return decision


def cancel(s: StageFacts, person: str, promoter: bool | None) -> Decision:
    """Decide a withdrawal of the open promotion: its requester or a promoter of the stage."""
    p = s.open
    if p is None:
        return refuse("nothing waits")
    if person != p.requested_by and promoter is False:
        return refuse(
            f"<@{person}> is not a promoter of {s.stage.name}, nor the requester of promotion"
            f" {p.id}."
        )
    return Decision("cancel")


def lock(s: StageFacts, person: str, promoter: bool | None) -> Decision:
    """Decide a lock: one per stage; locking a locked stage says who holds it."""
    if promoter is False:
        return refuse(f"<@{person}> is not a promoter of {s.stage.name}, so cannot lock it.")
    if s.lock:
        return refuse(f"{s.stage.name} is already {held(s.lock, s.now)}.")
    return Decision("lock")


def held(lock_: Lock, now: float) -> str:
    """Say who holds a lock, until when and why."""
    until = (
        f" until {clock(lock_.expires_at)} ({text.duration(lock_.expires_at - now)} more)"
        if lock_.expires_at
        else " until someone unlocks it"
    )
    return f"locked by <@{lock_.locked_by}>{until}: {text.escape(lock_.reason)}"


def unlock(s: StageFacts, person: str, promoter: bool | None) -> Decision:
    """Decide an unlock."""
    if promoter is False:
        return refuse(f"<@{person}> is not a promoter of {s.stage.name}, so cannot unlock it.")
    if s.lock is None:
        return refuse(f"{s.stage.name} is not locked.")
    return Decision("unlock")


def rollback(
    s: StageFacts, person: str, promoter: bool | None, named: Live | None, force: str | None
) -> Decision:
    """Decide a rollback: back to the build live before, or to an older one that was live here."""
    name = s.stage.name
    if promoter is False:
        return refuse(f"<@{person}> is not a promoter of {name}, so cannot roll it back.")
    if s.live is None:
        return refuse(f"Nothing has been deployed to {name} yet.")
    if s.flight:
        return refuse(f"#{s.flight.number} is deploying into {name}; roll back once it finishes.")
    if named is None:
        ids = [h.build_id for h in s.history]
        upto = ids.index(s.live.build_id) if s.live.build_id in ids else len(ids)
        before = [h for h in s.history[:upto] if h.build_id not in s.rolled_back]
        if not before:
            return refuse(f"No earlier build was live in {name}.")
        return Decision("rollback", target=before[-1])
    if named.build_id == s.live.build_id:
        return refuse(f"#{named.number} is already live in {name} since {clock(s.live.since)}.")
    problems = []
    if not any(h.build_id == named.build_id for h in s.history):
        problems.append(f"#{named.number} was never live in {name}")
    if named.number > s.live.number:
        problems.append(f"#{named.number} is newer than the live #{s.live.number}")
    if problems and not force:
        return refuse("; ".join(problems) + '. A promoter may add `--force "reason"`.')
    return Decision("rollback", "; ".join(problems), target=named, forced=tuple(problems))


@dataclass(frozen=True)
class Intent:
    """What someone (or something) wants of a stage."""

    kind: str  # promote, enter, approve, review, cancel, reject, lock, unlock, rollback
    person: str = "promobot"
    promoter: bool | None = None
    gate: gates.Facts | None = None  # the gates' facts of the build concerned
    force: str | None = None
    named: Live | None = None  # the build a rollback names


def decide(s: StageFacts, intent: Intent) -> Decision:
    """Decide what an intent does to a stage: the one place a stage's rules live."""
    kind, g = intent.kind, intent.gate
    if kind in ("promote", "enter", "approve", "review") and g is None:
        raise ValueError(f"{kind} needs the facts of a build")
    if kind == "promote":
        return promote(s, g, intent.force)  # type: ignore[arg-type]
    if kind == "enter":
        return enter(s, g)  # type: ignore[arg-type]
    if kind == "approve":
        return approve(s, g, intent.person, intent.promoter)  # type: ignore[arg-type]
    if kind == "review":
        return review(s, g)  # type: ignore[arg-type]
    if kind in ("cancel", "reject"):
        return cancel(s, intent.person, intent.promoter)
    if kind == "lock":
        return lock(s, intent.person, intent.promoter)
    if kind == "unlock":
        return unlock(s, intent.person, intent.promoter)
    if kind == "rollback":
        return rollback(s, intent.person, intent.promoter, intent.named, intent.force)
    raise ValueError(f"no such intent: {kind}")
