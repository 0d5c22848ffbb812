"""GitHub's delivery attempts against what promobot stored: the missed ones, and a table."""

import time
from collections.abc import Iterable
from typing import Any

Attempt = dict[str, Any]  # one entry of GET /app/hook/deliveries


def delivered(attempt: Attempt) -> bool:
    """Say whether promobot answered this attempt with a 2xx."""
    return 200 <= int(attempt.get("status_code") or 0) < 300


def missed(attempts: Iterable[Attempt]) -> list[Attempt]:
    """Return, for each GUID that no attempt delivered, its newest attempt.

    Oldest delivery first (by its first attempt), so that asking in this order
    brings a repository's events back in the order they happened.
    """
    newest: dict[str, Attempt] = {}
    first: dict[str, tuple[str, int]] = {}
    ok: set[str] = set()
    for attempt in attempts:
        guid, at = str(attempt["guid"]), (str(attempt["delivered_at"]), int(attempt["id"]))
        if delivered(attempt):
            ok.add(guid)
        if guid not in newest or attempt["id"] > newest[guid]["id"]:
            newest[guid] = attempt
        first[guid] = min(first.get(guid, at), at)
    found = [guid for guid in newest if guid not in ok]
    return [newest[guid] for guid in sorted(found, key=first.__getitem__)]


def github_side(attempts: list[Attempt]) -> str:
    """Describe what GitHub saw of one GUID's attempts: '202 OK', 'failed x2 (…)'."""
    ordered = sorted(attempts, key=lambda a: a["id"])
    codes = [str(a.get("status_code") or 0) for a in ordered]
    last = ordered[-1]
    if delivered(last):
        earlier = len(ordered) - 1
        return f"{codes[-1]} OK" + (f" after {earlier} failed" if earlier else "")
    status = str(last.get("status") or "failed")[:40]
    return f"failed x{len(ordered)} ({status})"


def promobot_side(stored: dict[str, Any] | None, request: dict[str, Any] | None) -> str:
    """Describe what promobot holds of one GUID: its state, or the redelivery asked for it."""
    if stored is not None:
        error = f": {str(stored['error'])[:60]}" if stored.get("error") else ""
        return f"{stored['state']}{error}"
    if request is not None:
        outcome = {"sent": "asked, GitHub accepted", "failed": "asked, GitHub refused"}
        said = outcome.get(request.get("state") or "", "asking GitHub")
        error = f": {str(request['error'])[:60]}" if request.get("state") == "failed" else ""
        return f"not stored; redelivery {said}{error}"
    return "not stored"


def needs_attention(row: dict[str, Any]) -> bool:
    """Say whether a row belongs under --failed: GitHub failed, or promobot failed or lacks it."""
    return row["github"].startswith("failed") or not row["promobot"].startswith(
        ("done", "ignored", "pending", "dropped")
    )


def table(rows: list[dict[str, Any]]) -> str:
    """Lay the comparison out as fixed-width text, newest first."""
    head = f"{'when (UTC)':<19}  {'delivery':<36}  {'event':<24}  {'GitHub':<38}  promobot"
    lines = [head]
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        event = row["event"] + (f".{row['action']}" if row.get("action") else "")
        lines.append(
            f"{when:<19}  {row['guid']:<36}  {event[:24]:<24}  {row['github']:<38}  "
            f"{row['promobot']}"
        )
    return "\n".join(lines)
