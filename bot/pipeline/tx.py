"""The unit of work: state changes, their reactions and their outbox rows in one transaction."""

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from bot.config import Config
from bot.core.render import fit
from bot.pipeline.outbox import Outbound
from storage import audit, outbox, savepoint


@dataclass(frozen=True)
class Change:
    """Something that happened to the pipeline, for the reactions to act on.

    kinds: build.created, ci.changed, deployment.changed, promotion.changed,
    lock.changed, freeze.changed, pull_request.changed
    """

    kind: str
    repo_id: int
    build_id: int | None = None
    stage: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Reaction = Callable[["Tx", Change], None]


def transient(error: BaseException) -> bool:
    """Say whether an error may pass on a retry: the database's trouble, not the body's.

    A locked database, a full disk or an I/O error (sqlite3.OperationalError) clear
    up; anything else a handler, a step or a reaction raises on a delivery's body
    (KeyError, TypeError, a constraint, an integer too large) fails the same way on
    every try: that delivery is poison.
    """
    return isinstance(error, sqlite3.OperationalError)


@dataclass
class Tx:
    """What a workflow step sees: the open transaction, the config, the time, the reactions."""

    db: Database
    config: Config
    now: float
    reactions: Sequence[Reaction] = ()
    # When set, a reaction that fails for good is undone and named in `skipped`, and the
    # change itself stands: a poison delivery then still records its build.
    isolate: bool = False
    skipped: list[str] = field(default_factory=list)

    def emit(self, change: Change) -> None:
        """Let every reaction act on `change` inside this transaction."""
        for reaction in self.reactions:
            if not self.isolate:
                reaction(self, change)
                continue
            try:
                with savepoint(self.db, "reaction"):
                    reaction(self, change)
            except Exception as exc:
                if transient(exc) or not self.db.conn.in_transaction:
                    raise
                name = getattr(reaction, "__name__", type(reaction).__name__)
                self.skipped.append(f"{name} on {change.kind}: {type(exc).__name__}: {exc}")

    def log(self, **entry: Any) -> int:
        """Append to the event log at this transaction's time."""
        return audit.log_event(self.db, at=self.now, **entry)

    def send(self, row: Outbound) -> int:
        """Queue an outbound call (a typed row of bot.pipeline.outbox); sent after commit.

        A pending row with the same coalesce key takes the new payload in place:
        only the newest version of an edit is worth sending, and the row keeps
        its place in the lane, so replies queued after it still follow it.
        """
        payload = row.to_row()
        if row.target == "slack":
            payload = fit(payload)  # the one place every Slack message passes before the outbox
        return outbox.queue(
            self.db,
            target=row.target,
            method=row.method,
            lane=row.lane,
            payload=payload,
            created_at=self.now,
            coalesce_key=row.coalesce_key,
        )
