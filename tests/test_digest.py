"""The daily digest: its sections from a scripted history, quiet days, Slack's limits."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.digest import Digest, Section
from bot.core.render import cut_mrkdwn
from bot.pipeline.digest_post import as_text, gather, queue_all, render
from tests.history import History, at, sha_of

T = at("2026-11-24T09:00+00:00")  # a Tuesday; London is on GMT
H = 3600.0


@pytest.fixture
def history(tmp_path, config):
    h = History(tmp_path / "promobot.db", config)
    yield h
    h.close()


def script_bad_day(h: History) -> None:
    """One fixed failure, one flaky check, one failure still red, and pipeline leftovers."""
    h.push(1, T - 30 * H)
    h.report(1, "ci/test", "success", T - 30 * H)
    h.deploy(1, "pasty", T - 29 * H)
    h.push(2, T - 20 * H, author="mallory")
    h.report(2, "ci/test", "failure", T - 19 * H)
    h.push(3, T - 18 * H)
    h.report(3, "ci/test", "success", T - 16 * H)
    h.push(4, T - 10 * H)
    h.report(4, "ci/lint", "failure", T - 9 * H)
    h.report(4, "ci/lint", "success", T - 8.5 * H)  # the same sha passes on a rerun
    h.push(5, T - 2 * H, author="<!channel>")
    h.report(5, "ci/test", "failure", T - 1 * H)
    h.deploy(3, "dumpling", T - 3 * H)
    h.db["promotions"].insert(
        {"repo_id": 186853002, "build_id": h.build_id(3), "stage": "dumpling",
         "requested_by": "U123", "state": "waiting", "created_at": T - H}
    )  # fmt: skip
    h.db["locks"].insert(
        {"repo_id": 186853002, "stage": "baklava", "locked_by": "U9",
         "reason": "db migration <tonight>", "created_at": T - 4 * H}
    )  # fmt: skip
    h.db["freezes"].insert(
        {"repo_id": 186853002, "frozen_by": "U012ABC", "reason": "release", "started_at": T - H}
    )


def sections(digest: Digest) -> dict[str, list[str]]:
    return {s.title: list(s.lines) for s in digest.sections}


def test_the_digest_tells_the_day_from_the_records(history, config):
    script_bad_day(history)
    (digest,) = gather(history.db, config, T)
    got = sections(digest)
    assert digest.channel == "#releases" and digest.day == "2026-11-24" and not digest.quiet
    assert list(got) == [
        "Red right now",
        "Failed builds",
        "Flaky checks",
        "Waiting over a day",
        "Approvals waiting",
        "Locks and freezes",
        "Deployed to dumpling",
    ]
    assert got["Red right now"] == [
        f":red_circle: main is red since <https://c/{sha_of(5)}|#5> `{sha_of(5)[:7]}`,"
        " Tue 08:00 (1h ago)"
    ]
    fixed, flaky, red = got["Failed builds"]
    assert "#2>" in fixed and "by mallory" in fixed
    assert "<https://ci/2|ci/test> failed — fixed by #3; main was red for 3h" in fixed
    assert "<https://ci/4|ci/lint> failed — passed on a rerun; red for 30m" in flaky
    assert "by &lt;!channel&gt;" in red and red.endswith("*not fixed yet*")
    assert got["Flaky checks"] == [
        f"• <https://ci/4|ci/lint> on <https://c/{sha_of(4)}|#4> `{sha_of(4)[:7]}`:"
        " failed, then passed on the same commit"
    ]
    assert got["Waiting over a day"] == [
        f"• <https://c/{sha_of(1)}|#1> `{sha_of(1)[:7]}` has waited in pasty for 1d 5h"
        " (baklava has nothing yet)"
    ]
    assert (
        "to dumpling, asked by <@U123> 1h ago (0 approval(s) so far)"
        in (got["Approvals waiting"][0])
    )
    assert got["Locks and freezes"] == [
        "• :lock: baklava locked by <@U9> since Tue 05:00: db migration &lt;tonight&gt;",
        "• :snowflake: merges frozen by <@U012ABC> since Tue 08:00: release",
    ]
    assert got["Deployed to dumpling"] == [f"• <https://c/{sha_of(3)}|#3> `03abcde` at Tue 06:00"]
    assert digest.summary == (
        "3 failed build(s), 1 flaky check(s), 1 deployment(s) to dumpling, main is red"
    )


def test_a_failure_older_than_a_day_is_not_reported_again(history, config):
    script_bad_day(history)
    (digest,) = gather(history.db, config, T + 22 * H)
    failed = sections(digest)["Failed builds"]
    assert len(failed) == 1 and "#5>" in failed[0]  # still red, and red within the day


def test_a_build_that_moved_on_no_longer_waits(history, config):
    script_bad_day(history)
    history.deploy(1, "baklava", T - 2 * H)
    assert "Waiting over a day" not in sections(gather(history.db, config, T)[0])


def test_a_waiting_build_is_told_what_the_next_stage_runs_after_a_rollback(history, config):
    for n in (1, 2, 3):
        history.push(n, T - 40 * H)
        history.report(n, "ci/test", "success", T - 40 * H)
    for n, stage, hours in ((1, "pasty", 39), (1, "baklava", 38), (2, "pasty", 37)):
        history.deploy(n, stage, T - hours * H)
    history.deploy(2, "baklava", T - 36 * H)
    history.deploy(1, "baklava", T - 35 * H)  # rolled back: baklava runs #1 again
    history.deploy(3, "pasty", T - 30 * H)
    waiting = sections(gather(history.db, config, T)[0])["Waiting over a day"]
    assert (
        f"• <https://c/{sha_of(3)}|#3> `{sha_of(3)[:7]}` has waited in pasty for 1d 6h"
        " (baklava has #1)"
    ) in waiting


def test_a_green_day_is_quiet_and_posts_nothing(history, config):
    history.push(1, T - 5 * H)
    history.report(1, "ci/test", "success", T - 4 * H)
    history.deploy(1, "dumpling", T - 3 * H)
    (digest,) = gather(history.db, config, T)
    assert digest.quiet and [s.title for s in digest.sections] == ["Deployed to dumpling"]
    assert queue_all(history.db, config, T) == ["#releases"]  # the day is claimed ...
    assert history.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # ... silently
    loud = dataclasses.replace(
        config, digest=dataclasses.replace(config.digest, quiet_when_green=False)
    )
    history.db.execute("DELETE FROM digests")
    assert queue_all(history.db, loud, T) == ["#releases"]
    assert history.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1


def test_one_claim_per_channel_and_day(history, config):
    script_bad_day(history)
    assert queue_all(history.db, config, T) == ["#releases"]
    assert queue_all(history.db, config, T + H) == []
    rows = history.db.execute("SELECT method, lane FROM outbox").fetchall()
    assert rows == [("slack.message", "#releases")]


def test_a_long_digest_stays_within_slack_limits_and_threads_the_rest():
    lines = tuple(f"• build #{n} by someone: `ci/test` failed — " + "x" * 150 for n in range(400))
    sections = tuple(Section(f"Failed builds {k}", lines[k::8]) for k in range(8))
    digest = Digest("#releases", "2026-11-24", "Daily digest", "400 failed", sections, False)
    message, replies = render(digest)
    assert len(message["blocks"]) <= 50
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert sum(map(len, texts)) < 10_000
    assert "_…and 42 more in the thread_" in texts[0]
    threaded = "\n".join(r["text"] for r in replies)
    assert all(len(r["text"]) <= 3000 for r in replies)
    assert all(line in threaded or any(line in t for t in texts) for line in lines)


def test_dry_run_text_lists_every_section(history, config):
    script_bad_day(history)
    text = as_text(gather(history.db, config, T)[0])
    assert text.startswith("#releases: Daily digest for Tue 24 Nov 2026: the last 24 hours")
    assert "Flaky checks:" in text and "Locks and freezes:" in text
    assert "merges frozen by @U012ABC" in text and "db migration <tonight>" in text
    assert "<https://" not in text and "ci/lint on #4 04abcde" in text.replace("`", "")


def _links_whole(text: str) -> bool:
    return text.count("<") == text.count(">") and all(
        part.count(">") == 1 for part in text.split("<")[1:]
    )


def test_a_long_line_is_cut_between_links_and_keeps_its_bold_closed():
    link = "<https://ci.example.com/builds/123456789|ci/integration (linux, py3.12)>"
    line = "• " + "word " * 110 + "*" + "fails " * 5 + link + " and more*" + " tail" * 40
    assert len(line) > 800 and line.index(link) < 600 < line.index(link) + len(link)
    digest = Digest(
        "#releases",
        "2026-11-24",
        "Daily digest",
        "1 failed",
        (Section("Failed builds", (line,)),),
        False,
    )
    message, _ = render(digest)
    text = message["blocks"][2]["text"]["text"]
    shown = text.split("\n")[1]
    assert len(shown) <= 600
    assert _links_whole(shown)
    assert "https://ci.example.com/builds/123456789|" not in shown  # cut before the link
    assert shown.endswith("*…") and shown.count("*") % 2 == 0  # the bold is closed


@given(
    st.lists(
        st.sampled_from(
            [
                "word",
                " ",
                "*",
                "_",
                "~",
                "`",
                "&amp;",
                "snake_case",
                "<https://x.y/z|a label>",
                "<@U123>",
            ]
        ),
        max_size=300,
    ),
    st.integers(min_value=10, max_value=600),
)
def test_cut_mrkdwn_keeps_within_the_limit_and_never_splits_a_link(parts, limit):
    text = "".join(parts)
    cut = cut_mrkdwn(text, limit)
    assert len(cut) <= limit
    assert _links_whole(cut)
    if len(text) <= limit:
        assert cut == text
