"""Real-sized, distinct, signed deliveries built from the recorded GitHub payloads.

Each commit of the stream is one push to main (≈ 9 KB, three commits with their file lists)
and twenty CI reports for the pushed sha: seven statuses (≈ 11 KB each) and three check runs
(≈ 12 KB each) start, then finish. Every sha is new,
so each commit makes a build, turns its CI green (a CI change, Slack progress rows) and
enters pasty (a GitHub deployment row), as on a busy repository.
"""

import json
import re
import time
from collections.abc import Iterator
from functools import cache, partial
from pathlib import Path
from typing import Any

from bench import common
from bot.dev import client, payloads

STATUS_CONTEXTS = [f"ci/job-{k}" for k in range(7)]
CHECK_RUNS = ["lint", "unit tests", "integration tests"]
PER_COMMIT = 1 + 2 * len(STATUS_CONTEXTS) + 2 * len(CHECK_RUNS)  # 21 deliveries
SHA = re.compile(rb"\b[0-9a-f]{40}\b")


@cache
def repository() -> dict[str, Any]:
    """Return the recorded repository object, moved to the benchmark's repository."""
    return payloads.repository(common.REPO["full_name"], common.REPO["id"])


def push(sha: str, before: str, at: float, n: int) -> dict[str, Any]:
    """Return a push to main of three commits whose head is `sha` (the recorded body, filled in)."""
    commits = [
        payloads.commit(
            commit_sha,
            f"Change {n}.{k}: tune the widget cache\n\nLonger explanation "
            "of why the cache needed tuning, as people write it.",
            stamp=at,
            repo_url=common.REPO["html_url"],
            added=[f"src/widgets/new_{n}_{k}.py"],
            modified=[f"src/widgets/cache_{j}.py" for j in range(4)] + ["README.md"],
        )
        for k, commit_sha in enumerate([common.new_sha(), common.new_sha(), sha])
    ]
    return payloads.push(sha, before=before, commits=commits, repo=repository())


def commit(n: int, before: str, at: float) -> tuple[str, list[tuple[str, bytes]]]:
    """Return the sha and the 21 (event, body) deliveries of commit number `n`."""
    sha = common.new_sha()
    out = [("push", push(sha, before, at, n))]
    # As CI reports: every job starts, then every job finishes (the build turns green once).
    status = partial(payloads.status, sha, target_url=None, repo=repository())
    check_run = partial(payloads.check_run, sha, repo=repository())
    out += [("status", status(context=c, state="pending", stamp=at + 1)) for c in STATUS_CONTEXTS]
    out += [("check_run", check_run(name, done=False, stamp=at + 2)) for name in CHECK_RUNS]
    out += [
        ("status", status(context=c, state="success", stamp=at + 30 + k))
        for k, c in enumerate(STATUS_CONTEXTS)
    ]
    out += [
        ("check_run", check_run(name, done=True, stamp=at + 40 + k))
        for k, name in enumerate(CHECK_RUNS)
    ]
    return sha, [(event, json.dumps(body).encode()) for event, body in out]


def stream(count: int, start: float | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield `count` deliveries, commit after commit, each sha new.

    The first commit is built from the recorded payloads; later ones are that text with every
    sha (and the commit numbers) replaced, which is as real and a hundred times faster.
    """
    at = start if start is not None else time.time() - 86400
    template_sha, template = commit(0, "0" * 40, at)
    shas = sorted(set(SHA.findall(b"".join(body for _, body in template))))
    before, n, made = template_sha.encode(), 0, 0
    while made < count:
        new = {old: common.new_sha().encode() for old in shas}
        new[b"0" * 40] = before
        swap = partial(_swap, new)
        for event, body in template[: count - made]:
            yield event, SHA.sub(swap, body).replace(b"Change 0.", b"Change %d." % n)
        before = new[template_sha.encode()]
        made += len(template)
        n += 1


def _swap(new: dict[bytes, bytes], match: re.Match[bytes]) -> bytes:
    return new.get(match.group(0), match.group(0))


def write_pool(path: Path, count: int) -> dict[str, Any]:
    """Write `count` signed deliveries for wrk: one 'event<TAB>signature<TAB>body' per line."""
    sizes: dict[str, list[int]] = {}
    with path.open("wb") as out:
        for event, body in stream(count):
            sizes.setdefault(event, []).append(len(body))
            out.write(
                f"{event}\t{client.github_signature(body, common.WEBHOOK_SECRET)}\t".encode()
                + body
                + b"\n"
            )
    return {
        "deliveries": count,
        "commits": -(-count // PER_COMMIT),
        "mean_bytes": {e: round(sum(s) / len(s)) for e, s in sizes.items()},
    }
