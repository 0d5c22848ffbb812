"""What a span of builds carries (builds, commits, people, capped pushes, builds without kept
commits), counted from running totals, agrees with counting it build by build: on random
histories of pushes into two repositories, and on a database that had builds before the
totals existed.
"""

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from storage import builds, commits, connect, savepoint
from storage.migrations import migrations

REPOS = (186853002, 42)
AT = 1_790_000_000.0
# A few shas and names, so pushes repeat commits and people (in other letter cases too).
SHAS = [f"{n:040x}" for n in range(1, 13)]
AUTHORS = ["ada", "Ada", "bob", "", "cat"]
commit_lists = st.lists(st.tuples(st.sampled_from(SHAS), st.sampled_from(AUTHORS)), max_size=4)


def push(db: Any, repo: int, head: str, carried: list[tuple[str, str]], capped: bool) -> bool:
    """Create a build the way a push does (apply_push); return False for a sha already built."""
    with savepoint(db, "push"):
        build = builds.create_build(
            db,
            repo_id=repo,
            sha=head,
            message="m",
            author="a",
            html_url="u",
            commits=len(carried),
            pushed_at=AT,
        )
        if build is None:
            return False
        rows = [(sha, "m", AT, author, None) for sha, author in carried]
        commits.add_commits(db, repo_id=repo, build_id=build["id"], commits=rows)
        if capped:
            commits.mark_capped(db, build["id"])
    return True


def counted(history: list[dict[str, Any]], low: int, high: int) -> dict[str, int]:
    """Count a span build by build from what the model kept."""
    span = [b for b in history if low < b["number"] <= high]
    people = {author.lower() for b in span for _, author in b["kept"] if author}
    return {
        "builds": len(span),
        "commits": sum(b["carried"] for b in span),
        "people": len(people),
        "capped": sum(b["capped"] for b in span),
        "unstored": sum(1 for b in span if not b["kept"]),
    }


def both_ways(db: Any, repo: int, low: int, high: int, monkeypatch: Any) -> list[dict]:
    """Return span_counts with its people counted commit by commit, then person by person."""
    found = []
    for threshold in (10**9, -1):
        monkeypatch.setattr(commits, "PEOPLE_BY_PERSON_AFTER", threshold)
        found.append(commits.span_counts(db, repo, low, high))
    monkeypatch.undo()
    return found


class SpanModel(RuleBasedStateMachine):
    """Pushes into two repositories; every span of each agrees with the model's count."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="span-model-"))
        self.db = connect(self.folder / "spans.db")
        migrations.apply(self.db)
        for repo in REPOS:
            builds.upsert_repository(
                self.db, repo_id=repo, full_name=f"o/{repo}", html_url="u", installation_id=None
            )
        self.history: dict[int, list[dict[str, Any]]] = {repo: [] for repo in REPOS}
        self.kept: dict[int, set[str]] = {repo: set() for repo in REPOS}
        self.monkeypatch = pytest.MonkeyPatch()

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(
        repo=st.sampled_from(REPOS),
        head=st.sampled_from(SHAS),
        carried=commit_lists,
        capped=st.booleans(),
    )
    def a_push(self, repo: int, head: str, carried: list, capped: bool) -> None:
        built = {b["sha"] for b in self.history[repo]}
        assert push(self.db, repo, head, carried, capped) == (head not in built)
        if head in built:
            return
        kept = []
        for sha, author in carried:  # a commit is kept once, with the first build that carried it
            if sha not in self.kept[repo]:
                self.kept[repo].add(sha)
                kept.append((sha, author))
        number = len(self.history[repo]) + 1
        self.history[repo].append(
            {"number": number, "sha": head, "carried": len(carried), "capped": capped, "kept": kept}
        )

    @invariant()
    def every_span_counts_what_its_builds_carry(self) -> None:
        for repo, history in self.history.items():
            for low in range(len(history) + 1):
                for high in range(low, len(history) + 1):
                    expected = counted(history, low, high)
                    for found in both_ways(self.db, repo, low, high, self.monkeypatch):
                        assert found == expected, (repo, low, high)


SpanModel.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSpanModel = SpanModel.TestCase


def test_an_old_database_gets_running_totals_for_the_builds_it_had(tmp_path, monkeypatch):
    db = connect(tmp_path / "old.db")
    migrations.apply(db, stop_before="m023_span_totals")
    repo = REPOS[0]
    builds.upsert_repository(db, repo_id=repo, full_name="o/r", html_url="u", installation_id=None)
    # Builds from before commits were kept (none stored), then three pushes with commits.
    history = [
        {"number": 1, "carried": 2, "capped": False, "kept": []},
        {"number": 2, "carried": 1, "capped": False, "kept": []},
    ]
    for b in history:
        db.execute(
            "INSERT INTO builds (repo_id, number, sha, message, author, html_url, commits,"
            " pushed_at, ci_changed_at) VALUES (?, ?, ?, 'm', 'a', 'u', ?, ?, ?)",
            [repo, b["number"], f"{b['number']:040x}", b["carried"], AT, AT],
        )
    db.execute("UPDATE repositories SET last_build_number = 2 WHERE id = ?", [repo])
    pushes = [
        ("a" * 40, [("b" * 40, "ada"), ("c" * 40, "bob")], True),
        ("d" * 40, [("e" * 40, "Ada")], False),
        ("f" * 40, [], False),
    ]
    for n, (head, carried, capped) in enumerate(pushes, start=3):
        assert push(db, repo, head, carried, capped)
        history.append({"number": n, "carried": len(carried), "capped": capped, "kept": carried})

    migrations.apply(db)

    for low in range(6):
        for high in range(low, 6):
            for found in both_ways(db, repo, low, high, monkeypatch):
                assert found == counted(history, low, high), (low, high)
    assert commits.span_counts(db, repo, 0, 5) == {
        "builds": 5,
        "commits": 6,
        "people": 2,
        "capped": 1,
        "unstored": 3,  # the two from before, and the push that carried no commits
    }
    db.close()
