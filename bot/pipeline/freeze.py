"""Merge freezes: `/ship freeze "reason"` and `/ship unfreeze`, by the last stage's promoters."""

import logging
from collections.abc import Sequence
from typing import Any

from bot.core.channels import repos_for_channel
from bot.core.commands import UNFOLLOWED, USAGE, CommandError, Forbidden
from bot.core.text import MAX_REASON, escape, too_long, when
from bot.engine.promoters import Promoters
from bot.pipeline.naming import said
from bot.pipeline.outbox import Announcement
from bot.pipeline.tx import Change, Tx
from bot.services import Services
from storage import builds, prs

log = logging.getLogger(__name__)


def _announce(tx: Tx, repos: Sequence[dict[str, Any]], text: str) -> None:
    # Once: `repos` are the asking channel's (repos_for_channel), even when app.yaml names
    # that channel by ID for one repository and by #name for another.
    tx.send(Announcement(tx.config.channel_for(repos[0]["full_name"]), text))


def freeze(tx: Tx, repos: Sequence[dict[str, Any]], *, user: str, reason: str) -> str:
    """Freeze merges into the asking channel's `repos`; return the answer for the asker."""
    frozen = [r for r in repos if prs.open_freeze(tx.db, r["id"]) is None]
    if not frozen:
        f = prs.open_freeze(tx.db, repos[0]["id"]) or {}
        return (
            f":snowflake: merges are already frozen: {escape(f.get('reason', ''))}"
            f" (by <@{f.get('frozen_by')}>). `/ship unfreeze` lifts it."
        )
    for repo in frozen:
        prs.start_freeze(tx.db, repo["id"], by=user, reason=reason, now=tx.now)
        tx.log(actor=user, action="freeze.started", repo_id=repo["id"], reason=reason)
        tx.emit(Change("freeze.changed", repo["id"], detail={"frozen": True}))
    names = ", ".join(escape(r["full_name"]) for r in frozen)
    _announce(
        tx, frozen, f":snowflake: {said(tx.db, user)} froze merges into {names}: {escape(reason)}"
    )
    return f":snowflake: merges into {names} are frozen: {escape(reason)}. PR checks now fail."


def unfreeze(tx: Tx, repos: Sequence[dict[str, Any]], *, user: str) -> str:
    """Lift the merge freeze on the asking channel's `repos`; return the answer for the asker."""
    lifted = []
    for repo in repos:
        f = prs.open_freeze(tx.db, repo["id"])
        if f is None:
            continue
        prs.end_freeze(tx.db, f["id"], by=user, now=tx.now)
        since = when(f["started_at"], tx.config.digest.timezone)
        tx.log(
            actor=user,
            action="freeze.ended",
            repo_id=repo["id"],
            reason=f["reason"],
            detail={"frozen_by": f["frozen_by"], "since": since},
        )
        tx.emit(Change("freeze.changed", repo["id"], detail={"frozen": False}))
        lifted.append(repo)
    if not lifted:
        return ":sunny: merges are not frozen."
    names = ", ".join(escape(r["full_name"]) for r in lifted)
    _announce(tx, lifted, f":sunny: {said(tx.db, user)} lifted the merge freeze on {names}.")
    return f":sunny: the merge freeze on {names} is lifted."


async def command(
    services: Services,
    promoters: Promoters,
    verb: str,
    args: Sequence[str],
    *,
    user: str,
    channel_id: str,
    channel_name: str,
) -> str:
    """Run `/ship freeze "reason"` or `/ship unfreeze` for `user`; bad input raises CommandError."""
    config = services.config
    last = config.pipeline.stages[-1]
    usage = USAGE[verb]
    if verb == "freeze" and (len(args) != 1 or not args[0].strip()):
        raise CommandError("a freeze needs a reason", usage)
    long = too_long("the reason", args[0], MAX_REASON) if verb == "freeze" else None
    if long:
        raise CommandError(long, usage)
    if verb == "unfreeze" and args:
        raise CommandError("`unfreeze` takes no arguments", usage)
    if await promoters.allows(user, last.promoters) is False:
        raise Forbidden(f"only {last.name}'s promoters may {verb} merges")
    repos = await services.store.read(builds.repositories)
    if not repos:
        raise CommandError("no repository is known yet: install the GitHub App first", usage)
    targets = repos_for_channel(config, repos, channel_id, channel_name)
    if not targets:
        raise CommandError(UNFOLLOWED, usage)
    reactions = services.worker.reactions

    def apply(db: Any) -> str:
        tx = Tx(db, config, services.clock.now(), reactions)
        if verb == "freeze":
            return freeze(tx, targets, user=user, reason=args[0].strip())
        return unfreeze(tx, targets, user=user)

    answer = await services.store.write(apply)
    services.relay.wake()
    return answer
