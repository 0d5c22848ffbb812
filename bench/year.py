"""A synthetic year of one busy repository, written straight into SQLite, and its query plans."""

import json
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlite_utils import Database

from bench import common
from storage import migrate
from storage.stage_order import renumber

BUILDS, REPORTS_PER_BUILD, DEPLOYMENTS = 100_000, 10, 10_000
# Bumped whenever the generated rows change, so a stale template is not reused.
VERSION = 5
STAGES = ("pasty", "baklava", "dumpling")
YEAR = 365 * 86400.0


def generate(
    path: Path, seed: int = 7, builds: int = BUILDS, deployments: int = DEPLOYMENTS
) -> dict:
    """Write the synthetic year into a migrated database at `path`; return counts and time."""
    start = time.perf_counter()
    migrate(path)
    rng = random.Random(seed)
    now = time.time()
    repo = common.REPO
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # generation only; the service runs as shipped
    conn.execute(
        "INSERT INTO repositories (id, full_name, html_url, installation_id, last_build_number)"
        " VALUES (?, ?, ?, ?, ?)",
        [repo["id"], repo["full_name"], repo["html_url"], 957387, builds],
    )
    shas = [f"{rng.getrandbits(160):040x}" for _ in range(builds)]
    # A build every 315 s whatever the size: a smaller history is a shorter one, as busy on
    # its last day, so comparing sizes compares history, not the day's activity.
    every = YEAR / BUILDS
    pushed = [now - builds * every + i * every for i in range(builds)]
    states = ["failure" if rng.random() < 0.08 else "success" for _ in range(builds)]
    # commits_stored = 1 up front, as every build gets its commits below: set by the trigger
    # of each commit instead, it moved the running totals of every later build, 100,000 times.
    conn.executemany(
        "INSERT INTO builds (id, repo_id, number, sha, message, author, html_url, commits,"
        " commits_stored, pushed_at, ci_state, ci_changed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?)",
        (
            (
                i + 1,
                repo["id"],
                i + 1,
                shas[i],
                f"Change number {i + 1}",
                f"dev{i % 40}",
                f"{repo['html_url']}/commit/{shas[i]}",
                pushed[i],
                states[i],
                pushed[i] + 600,
            )
            for i in range(builds)
        ),
    )
    contexts = [f"ci/job-{j}" for j in range(REPORTS_PER_BUILD)]

    def reports() -> object:
        for i in range(builds):
            failing = rng.randrange(REPORTS_PER_BUILD) if states[i] == "failure" else -1
            for j, context in enumerate(contexts):
                state = "failure" if j == failing else "success"
                yield (
                    repo["id"],
                    shas[i],
                    context,
                    "status",
                    state,
                    None,
                    f"https://ci.example.com/{i}/{j}",
                    pushed[i] + 60 + j,
                )

    rows = list(reports())
    conn.executemany("INSERT INTO check_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(
        "INSERT INTO check_transitions (repo_id, sha, context, state, target_url, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ((r[0], r[1], r[2], r[4], r[6], r[7]) for r in rows),
    )
    del rows
    step = builds // (deployments // len(STAGES))
    conn.executemany(
        "INSERT INTO deployments (repo_id, build_id, stage, github_id, state, requested_by,"
        " created_at, updated_at, finished_at, succeeded_at)"
        " VALUES (?, ?, ?, ?, 'success', ?, ?, ?, ?, ?)",
        (
            (
                repo["id"],
                b,
                STAGES[k % 3],
                10_000_000 + k,
                "promobot" if k % 3 == 0 else "U012ABC",
                pushed[b - 1] + 900 * (k % 3 + 1),
                pushed[b - 1] + 900 * (k % 3 + 1) + 120,
                pushed[b - 1] + 900 * (k % 3 + 1) + 120,
                pushed[b - 1] + 900 * (k % 3 + 1) + 120,
            )
            for k in range(deployments)
            for b in [min(builds, (k // 3) * step + 1)]
        ),
    )
    delivery(conn, rng, shas, pushed, builds)
    # Rows written here out of time order (the rollbacks last) take their place in the stages'
    # order from their times, as a database that predates the order would.
    renumber(Database(conn))
    conn.executemany(
        "INSERT INTO event_log (at, actor, action, repo_id, build_id, detail)"
        " VALUES (?, ?, 'build.created', ?, ?, ?)",
        (
            (pushed[i], f"dev{i % 40}", repo["id"], i + 1, json.dumps({"number": i + 1}))
            for i in range(builds)
        ),
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"generate_s": round(time.perf_counter() - start, 1)}


def delivery(
    conn: sqlite3.Connection, rng: random.Random, shas: list, pushed: list, builds: int
) -> None:
    """Give the year what the delivery metrics read: each push's commits (1 to 3, some of them
    reverts and hotfixes), failed production deployments and rollbacks."""
    repo_id = common.REPO["id"]

    def commits() -> object:
        for i in range(builds):
            extra = rng.randrange(3)
            for k in range(extra, -1, -1):
                sha = shas[i] if k == 0 else f"{rng.getrandbits(160):040x}"
                message = f"Change number {i + 1}" + (f" part {k}" if k else "")
                if k == 0 and i % 50 == 49:
                    message = (
                        f'Revert "Change number {i - 9}"\n\nThis reverts commit {shas[i - 10]}.'
                    )
                elif k == 0 and i % 40 == 39:
                    message = f"Hotfix: guard change {i - 3}"
                author = ("ada", "bob", "cat")[(i + k) % 3]
                yield (repo_id, sha, i + 1, message, pushed[i] - 300 * k, author)

    conn.executemany(
        "INSERT INTO commits (repo_id, sha, build_id, message, committed_at, author)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        commits(),
    )
    live = conn.execute(
        "SELECT id, build_id, succeeded_at FROM deployments WHERE stage = 'dumpling' ORDER BY id"
    ).fetchall()
    for n, (deployment, build, at) in enumerate(live):
        if n % 40 == 39:  # a failed deployment: production keeps the build before it
            conn.execute(
                "UPDATE deployments SET state = 'failure', succeeded_at = NULL WHERE id = ?",
                [deployment],
            )
        elif n % 25 == 24:  # rolled back an hour later to the build live before it
            back = live[n - 1][1]
            cursor = conn.execute(
                "INSERT INTO promotions (repo_id, build_id, stage, requested_by, state, rollback,"
                " created_at, decided_at, replaces_build_id)"
                " VALUES (?, ?, 'dumpling', 'U012ABC', 'approved', 1, ?, ?, ?)",
                [repo_id, back, at + 3600, at + 3600, build],
            )
            conn.execute(
                "INSERT INTO deployments (repo_id, build_id, stage, promotion_id, state,"
                " requested_by, created_at, updated_at, finished_at, succeeded_at)"
                " VALUES (?, ?, 'dumpling', ?, 'success', 'U012ABC', ?, ?, ?, ?)",
                [repo_id, back, cursor.lastrowid, at + 3600, *[at + 3720] * 3],
            )


def template(builds: int = BUILDS, deployments: int = DEPLOYMENTS) -> Path:
    """Return the pristine year of `builds` builds, generated once and kept in bench/results."""
    path = common.RESULTS / f"year-{builds}.v{VERSION}.template.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(partial, builds=builds, deployments=deployments)
        partial.rename(path)
    return path


def query_plans(path: Path) -> dict:
    """Show that the lookups status, history and digest make use an index, not a scan."""
    lookups = {
        "builds by repo+number": "SELECT * FROM builds WHERE repo_id = 1 AND number = 5",
        "builds by repo+sha prefix": "SELECT * FROM builds WHERE repo_id = 1 AND sha >= 'ab'"
        " AND sha < 'ac'",
        "latest builds": "SELECT * FROM builds WHERE repo_id = 1 ORDER BY number DESC LIMIT 20",
        "check_reports by sha": "SELECT * FROM check_reports WHERE repo_id = 1 AND sha = 'x'",
        "check_transitions since": "SELECT * FROM check_transitions WHERE at >= 0",
        "deployments by repo+stage": "SELECT * FROM deployments WHERE repo_id = 1"
        " AND stage = 'pasty' ORDER BY id DESC LIMIT 1",
        "stage's current build (status)": "SELECT * FROM deployments WHERE repo_id = 1"
        " AND stage = 'pasty' AND success_seq IS NOT NULL ORDER BY success_seq DESC LIMIT 1",
        "digest: ci events since a build": "SELECT build_id, at, detail FROM event_log"
        " WHERE action = 'ci.changed' AND repo_id = 1 AND build_id >= 99500 ORDER BY id",
        "digest: transitions of the day": "SELECT * FROM check_transitions WHERE repo_id = 1"
        " AND at >= 1e9 ORDER BY at, id",
    }
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plans = {}
    for name, sql in lookups.items():
        detail = " / ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        plans[name] = (
            "index" if "USING" in detail and "SCAN" not in detail.split("USING")[0] else "SCAN"
        ) + f": {detail}"
    conn.close()
    return plans
