"""The gates of a stage, as pure rules over records and a clock: every gate, with its reason.

A promotion is decided by evaluating all gates together, so a refusal shows
the whole picture (✅/❌ per gate), not just the first failure.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.config import Stage
from bot.core.text import duration, escape

FAILED = ("failure", "error")
# The gates `--force "reason"` may pass. Never the promoter gate (force is for promoters)
# and never approvals.
OVERRIDABLE = ("order", "ci", "soak", "lock")


@dataclass(frozen=True)
class Gate:
    """One gate's verdict: its name, whether it holds, and why."""

    name: str
    ok: bool
    reason: str
    due: float | None = None  # when a failed gate clears by itself (a soak ending, a lock expiring)

    def line(self) -> str:
        """Return the gate as one mrkdwn line: ✅/❌ name: reason."""
        return f"{'✅' if self.ok else '❌'} *{self.name}*: {self.reason}"


@dataclass(frozen=True)
class Facts:
    """What the gates of one (build, stage, person) are decided from."""

    build: dict[str, Any]  # number, ci_state
    stage: Stage
    previous: Stage | None
    previous_deployments: Sequence[dict[str, Any]]  # the build's deployments into `previous`
    lock: dict[str, Any] | None  # the newest lock not lifted
    person: str
    promoter: bool | None  # None: the stage has no promoters list, everyone may
    approvers: Sequence[str] = ()
    rolled_back: bool = False  # a rollback took the build out of `previous` after it went live


def order_gate(f: Facts) -> Gate:
    """The build entered the previous stage successfully (the first stage takes green builds)."""
    if f.previous is None:
        return Gate("order", True, f"{f.stage.name} is the first stage")
    if any(d.get("succeeded_at") for d in f.previous_deployments):
        return Gate("order", True, f"deployed to {f.previous.name} successfully")
    return Gate("order", False, f"not deployed successfully to {f.previous.name} yet")


def ci_gate(f: Facts) -> Gate:
    """The build's CI state is success."""
    state = f.build["ci_state"]
    return Gate("ci", state == "success", "green" if state == "success" else f"CI is {state}")


def soak_gate(f: Facts, now: float) -> Gate:
    """The build has been live in the previous stage long enough, without failing there since."""
    if f.previous is None:
        return Gate("soak", True, "no soak before the first stage")
    good = [d for d in f.previous_deployments if d.get("succeeded_at")]
    if not good:
        need = f" (needs {duration(f.stage.soak)})" if f.stage.soak else ""
        return Gate("soak", f.stage.soak == 0, f"not live in {f.previous.name}{need}")
    last = max(good, key=lambda d: d["success_seq"])  # recorded last, whatever the clocks said
    failed = [d for d in f.previous_deployments if d["id"] > last["id"] and d["state"] in FAILED]
    if failed:
        return Gate("soak", False, f"a later deployment to {f.previous.name} failed")
    if f.rolled_back:
        return Gate("soak", False, f"rolled back out of {f.previous.name}")
    live = now - last["succeeded_at"]
    if live >= f.stage.soak:
        need = f" (needs {duration(f.stage.soak)})" if f.stage.soak else ""
        return Gate("soak", True, f"live in {f.previous.name} for {duration(live)}{need}")
    left = duration(f.stage.soak - live)
    return Gate(
        "soak",
        False,
        f"{duration(f.stage.soak)} needed in {f.previous.name}: {left} left",
        due=last["succeeded_at"] + f.stage.soak,
    )


def lock_gate(f: Facts, now: float) -> Gate:
    """The stage has no open lock (an expired lock lifts itself)."""
    lock = f.lock
    if lock is None or lock.get("lifted_at") or (lock["expires_at"] or math.inf) <= now:
        return Gate("lock", True, f"{f.stage.name} is open")
    until = f" for {duration(lock['expires_at'] - now)} more" if lock["expires_at"] else ""
    reason = f"locked by <@{lock['locked_by']}>{until}: {escape(lock['reason'])}"
    return Gate("lock", False, reason, due=lock["expires_at"] or math.inf)


def promoter_gate(f: Facts) -> Gate:
    """The person may promote into the stage (deny by default when promoters are listed)."""
    if f.person == "promobot":
        return Gate("promoter", True, "automatic entry")
    if f.promoter is None:
        return Gate("promoter", True, f"anyone may promote into {f.stage.name}")
    if f.promoter:
        return Gate("promoter", True, f"<@{f.person}> is a promoter of {f.stage.name}")
    return Gate("promoter", False, f"<@{f.person}> is not a promoter of {f.stage.name}")


def approvals_gate(f: Facts) -> Gate:
    """Enough different people, other than the requester, approved."""
    need, have = f.stage.approvals, len(f.approvers)
    if need == 0:
        return Gate("approvals", True, "none needed")
    if have >= need:
        names = ", ".join(f"<@{a}>" for a in f.approvers)
        return Gate("approvals", True, f"approved by {names}")
    return Gate(
        "approvals",
        False,
        f"needs {need - have} more approval(s) from a promoter other than the requester",
    )


def evaluate(f: Facts, now: float) -> list[Gate]:
    """Return every gate of a (build, stage, person) at `now`, in a fixed order."""
    return [
        order_gate(f),
        ci_gate(f),
        soak_gate(f, now),
        lock_gate(f, now),
        promoter_gate(f),
        approvals_gate(f),
    ]


def blocking(gates: Sequence[Gate], *, forced: bool = False) -> list[Gate]:
    """Return the failed gates, other than approvals, that stop a promotion now."""
    return [
        g
        for g in gates
        if not g.ok and g.name != "approvals" and not (forced and g.name in OVERRIDABLE)
    ]


def overridden(gates: Sequence[Gate]) -> list[Gate]:
    """Return the failed gates a forced promotion goes through."""
    return [g for g in gates if not g.ok and g.name in OVERRIDABLE]


def needs_approval(gates: Sequence[Gate]) -> bool:
    """Say whether the approvals gate is still open."""
    return any(g.name == "approvals" and not g.ok for g in gates)


def render(gates: Sequence[Gate]) -> str:
    """Return the gates as mrkdwn lines."""
    return "\n".join(g.line() for g in gates)
