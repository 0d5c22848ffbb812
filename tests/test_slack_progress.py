"""Pipeline progress in Slack: one message per build, edited in place, details in its thread."""

import asyncio
import json

import pytest

from bot.engine import slack
from bot.engine.relay import Permanent
from bot.pipeline import registry
from bot.pipeline.tx import Change, Tx
from tests.conftest import SHA, push_payload, status_payload
from tests.waiting import wait_for

COMMIT_URL = f"https://github.com/Codertocat/Hello-World/commit/{SHA}"
OTHER_SHA = "a" * 40
REPO = 186853002  # the id of Codertocat/Hello-World in the push fixture


@pytest.fixture
def quick(harness) -> None:
    """Let the harness's relay skip Slack pacing, for tests about content rather than pace."""
    harness.services.relay.pace["slack"] = 0.0


def stamp(second: int) -> str:
    """Return a GitHub timestamp `second` seconds after 09:05:00."""
    minutes, seconds = divmod(second, 60)
    return f"2026-11-24T09:{5 + minutes:02d}:{seconds:02d}Z"


def parent_text(fake_slack, channel: str = "C0RELEASES") -> str:
    """Return the current text of the only parent message in `channel`."""
    (message,) = [
        m for (ch, _), m in fake_slack.messages.items() if ch == channel and not m["thread_ts"]
    ]
    return message["blocks"][0]["text"]["text"]


def replies(fake_slack) -> list:
    """Return the thread replies Slack received, in order."""
    return [c for c in fake_slack.of("chat.postMessage") if c.body.get("thread_ts")]


async def test_a_build_is_posted_once_then_edited_in_place_by_channel_id(harness, fake_slack):
    await harness.deliver("push", push_payload(message="Fix the frobnicator\n\nLong story."))
    await harness.settle()
    (post,) = fake_slack.posts()
    assert post.body["channel"] == "#releases"
    assert [b["type"] for b in post.body["blocks"]] == ["section", "context"]
    assert post.body["blocks"][0]["text"]["text"] == (
        f"*Build #1* <{COMMIT_URL}|6113728> Fix the frobnicator\n"
        "CI ⏳ → pasty · → baklava · → dumpling ·"
    )
    assert post.body["blocks"][1]["elements"][0]["text"] == "Codertocat/Hello-World · by octocat"
    assert "Build #1 6113728 Fix the frobnicator" in post.body["text"]

    await harness.deliver("status", status_payload(state="success"))
    await harness.settle()
    (edit,) = fake_slack.of("chat.update")
    ts = harness.rows("SELECT channel_id, ts FROM slack_messages WHERE key = 'build:1'")[0]
    assert (edit.body["channel"], edit.body["ts"]) == (ts["channel_id"], ts["ts"])
    assert edit.body["channel"] == "C0RELEASES"  # the ID: chat.update refuses a channel name
    assert parent_text(fake_slack).endswith(
        "CI ✅ → pasty ⏳ → baklava · → dumpling ·"
    )  # green: pasty is entered on its own
    assert len(fake_slack.posts()) == 1 and replies(fake_slack) == []


@pytest.mark.usefixtures("quick")
async def test_a_ci_failure_names_the_check_in_the_thread_and_is_broadcast(harness, fake_slack):
    await harness.deliver("push", push_payload())
    failed = status_payload(
        state="failure",
        context="ci/lint",
        description="2 errors <in> style & more",
        target_url="https://ci.example.com/builds/7",
    )
    await harness.deliver("status", failed)
    await harness.settle()
    (reply,) = replies(fake_slack)
    assert reply.body["thread_ts"] == harness.rows("SELECT ts FROM slack_messages")[0]["ts"]
    assert reply.body["reply_broadcast"] is True
    assert reply.body["blocks"][0]["text"]["text"] == (
        "❌ CI failed on build #1:\n"
        "• <https://ci.example.com/builds/7|*ci/lint*> — 2 errors &lt;in&gt; style &amp; more"
    )
    assert "CI ❌" in parent_text(fake_slack)

    fixed = status_payload(state="success", context="ci/lint", stamp=stamp(60))
    await harness.deliver("status", fixed)
    await harness.settle()
    recovered = replies(fake_slack)[-1]
    assert recovered.body["text"] == "✅ CI passed on build #1."
    assert recovered.body["reply_broadcast"] is False
    assert "CI ✅" in parent_text(fake_slack)


async def test_text_from_github_is_escaped_so_it_pings_nobody(harness, fake_slack):
    message = "Deploy <!channel> & <https://evil.example.com|click> now"
    await harness.deliver("push", push_payload(message=message, author="mal<!here>"))
    await harness.settle()
    (post,) = fake_slack.posts()
    sent = json.dumps(post.body)
    assert "<!channel>" not in sent and "<!here>" not in sent and "|click>" not in sent
    section = post.body["blocks"][0]["text"]["text"]
    assert "Deploy &lt;!channel&gt; &amp; &lt;https://evil.example.com|click&gt; now" in section
    assert "by mal&lt;!here&gt;" in post.body["blocks"][1]["elements"][0]["text"]


async def test_a_long_commit_message_is_cut_to_slack_limits(harness, fake_slack):
    await harness.deliver("push", push_payload(message="&" * 5000))
    await harness.settle()
    (post,) = fake_slack.posts()
    title = post.body["blocks"][0]["text"]["text"].split("\n")[0]
    assert title.endswith("&amp;…") and len(title) < 300
    assert all(len(b["text"]["text"]) <= 3000 for b in post.body["blocks"] if "text" in b)


async def test_non_transitions_send_nothing(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="pending", stamp=stamp(0)))
    await harness.settle()
    calls = len(fake_slack.calls)
    await harness.deliver("status", status_payload(state="pending", stamp=stamp(10)))
    await harness.settle()
    assert len(fake_slack.calls) == calls  # pending -> pending

    success = status_payload(state="success", stamp=stamp(20))
    await harness.deliver("status", success)
    await harness.settle()
    assert len(fake_slack.of("chat.update")) == 1
    calls = len(fake_slack.calls)
    await harness.deliver("status", success)  # the same report again (a new delivery id)
    await harness.deliver("status", status_payload(state="success", stamp=stamp(30)))
    await harness.deliver("status", status_payload(context="ci/other", stamp=stamp(40)))
    await harness.settle()
    assert len(fake_slack.calls) == calls  # identical report, a second success


async def test_a_burst_of_forty_reports_makes_a_handful_of_edits(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.settle()
    # A check re-run forty times in a second: every report flips CI between pending and green.
    for i in range(40):
        state = "success" if i % 2 else "pending"
        await harness.deliver("status", status_payload(state=state, stamp=stamp(i)))
    await harness.settle()
    edits = fake_slack.of("chat.update")
    assert 1 <= len(edits) <= 5
    assert parent_text(fake_slack).endswith("CI ✅ → pasty ⏳ → baklava · → dumpling ·")
    assert len(fake_slack.posts()) == 1 and replies(fake_slack) == []


async def test_a_429_is_honoured_until_retry_after_expires(harness, fake_slack):
    fake_slack.fail(
        "chat.postMessage",
        429,
        headers={"Retry-After": "2"},
        body={"ok": False, "error": "ratelimited"},
    )
    await harness.deliver("push", push_payload())
    await harness.settle()
    refused, posted = fake_slack.of("chat.postMessage")
    assert posted.at - refused.at >= 2.0
    assert len(fake_slack.messages) == 1
    assert harness.rows("SELECT state FROM outbox") == [{"state": "sent"}]


async def test_a_5xx_is_retried(harness, fake_slack):
    fake_slack.fail("chat.postMessage", 503)
    await harness.deliver("push", push_payload())
    await harness.settle()
    assert len(fake_slack.of("chat.postMessage")) == 2
    assert len(fake_slack.messages) == 1


async def test_a_crash_before_the_post_then_a_restart_posts_exactly_once(make_harness, fake_slack):
    fake_slack.fail("chat.postMessage", 503, times=1000)  # Slack is down: the row stays queued
    first = await make_harness()
    await first.deliver("push", push_payload())
    await wait_for(lambda: fake_slack.of("chat.postMessage"), what="a first try")
    await first.client.close()  # the process dies with the post still owed
    assert first.rows("SELECT state FROM outbox") == [{"state": "pending"}]

    fake_slack.failures.clear()
    second = await make_harness(db_path=first.db_path)
    await second.settle()
    assert len(fake_slack.messages) == 1
    await second.deliver("status", status_payload(state="success"))
    await second.settle()
    await second.client.close()

    third = await make_harness(db_path=first.db_path)
    await third.deliver("status", status_payload(state="failure", stamp=stamp(60)))
    await third.settle()
    parents = [m for m in fake_slack.messages.values() if not m["thread_ts"]]
    assert len(parents) == 1 and parents[0]["edits"] == 2  # edited after a restart, not reposted


async def test_an_edit_queued_while_the_post_is_in_flight_is_sent_after_it(
    make_harness, fake_slack
):
    entered, gate = asyncio.Event(), asyncio.Event()

    def held_senders(services) -> dict:
        post_or_edit = slack.slack_senders(services.slack, services.store)["slack.message"]

        async def held(row):
            entered.set()
            await gate.wait()  # Slack is slow to answer the first post
            return await post_or_edit(row)

        return {"slack.message": held}

    harness = await make_harness(extra_senders=held_senders)
    await harness.deliver("push", push_payload())
    await entered.wait()
    await harness.deliver("status", status_payload(state="success"))
    await wait_for(
        lambda: harness.rows("SELECT ci_state FROM builds")[0]["ci_state"] == "success",
        what="CI green stored",
    )
    gate.set()
    await harness.settle()
    assert len(fake_slack.posts()) == 1
    assert parent_text(fake_slack).startswith("*Build #1*")
    assert parent_text(fake_slack).endswith("CI ✅ → pasty ⏳ → baklava · → dumpling ·")


async def test_posts_to_one_channel_are_paced_and_channels_do_not_wait_for_each_other(
    harness, fake_slack
):
    await harness.deliver("push", push_payload())
    await harness.deliver("push", push_payload(OTHER_SHA, message="Second"))
    await harness.settle()
    first, second = fake_slack.posts("#releases")
    assert second.at - first.at >= 1.0

    fake_slack.fail("chat.postMessage", 503)  # #releases backs off for two seconds …
    await harness.deliver("push", push_payload("b" * 40, message="Third"))
    await wait_for(lambda: len(fake_slack.posts()) >= 3, what="the third post tried")
    await harness.deliver("push", mingle_push())  # … while #mingle-releases posts at once
    await harness.settle()
    assert [c.body["channel"] for c in fake_slack.posts()[2:]] == [
        "#releases",
        "#mingle-releases",
        "#releases",
    ]


def mingle_push() -> dict:
    """A push to acme/mingle, whose progress goes to its own channel."""
    payload = push_payload("c" * 40, message="Mingle")
    payload["repository"].update(id=4242, full_name="acme/mingle", name="mingle")
    payload["repository"]["html_url"] = "https://github.com/acme/mingle"
    return payload


async def test_chat_update_with_a_channel_name_is_refused_for_good_like_slack_does(harness):
    client = harness.services.slack
    posted = await slack.call(client, "chat.postMessage", channel="#releases", text="hello")
    assert posted["channel"] == "C0RELEASES"
    with pytest.raises(Permanent, match="channel_not_found"):
        await slack.call(client, "chat.update", channel="#releases", ts=posted["ts"], text="x")
    by_id = {"channel": posted["channel"], "ts": posted["ts"]}
    edited = await slack.call(client, "chat.update", **by_id, text="x")
    assert edited["ok"] is True


async def emit(harness, *changes: Change, setup=None) -> None:
    """Apply stored-state changes and emit them in one transaction, as a workflow would."""
    services = harness.services

    def apply(db) -> None:
        tx = Tx(db, services.config, services.clock.now(), registry.reactions())
        if setup:
            setup(db)
        for change in changes:
            tx.emit(change)

    await services.store.write(apply)
    services.relay.wake()
    await harness.settle()


def deployment(db, id_: int, stage: str, state: str, took: float, by: str = "U0DEPLOY") -> None:
    """Store a deployment of build 1 that took `took` seconds."""
    db.execute(
        "INSERT OR REPLACE INTO deployments (id, repo_id, build_id, stage, state, requested_by,"
        " created_at, updated_at, finished_at, succeeded_at)"
        " VALUES (?, 186853002, 1, ?, ?, ?, 1000, ?, ?, ?)",
        [
            id_,
            stage,
            state,
            by,
            1000 + took,
            1000 + took,
            1000 + took if state == "success" else None,
        ],
    )


@pytest.mark.usefixtures("quick")
async def test_deployments_are_told_in_the_thread_and_drawn_on_the_strip(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload(state="success"))
    await harness.settle()

    def started(db) -> None:
        deployment(db, 1, "pasty", "success", 192)
        deployment(db, 2, "baklava", "in_progress", 0)

    done = Change("deployment.changed", REPO, 1, "pasty", {"state": "success", "deployment_id": 1})
    going = Change("deployment.changed", REPO, 1, "baklava", {"state": "in_progress"})
    await emit(harness, done, going, setup=started)
    assert parent_text(fake_slack).endswith("CI ✅ → pasty ✅ → baklava ⏳ → dumpling ·")
    (reply,) = replies(fake_slack)
    assert reply.body["text"] == "✅ Deployed to *pasty* in 3m 12s."
    assert reply.body["reply_broadcast"] is False

    failed = Change(
        "deployment.changed", REPO, 1, "dumpling", {"state": "failure", "deployment_id": 3}
    )
    await emit(harness, failed, setup=lambda db: deployment(db, 3, "dumpling", "failure", 45))
    last = replies(fake_slack)[-1]
    assert last.body["text"] == "❌ Deployment to *dumpling* failed after 45s (by <@U0DEPLOY>)."
    assert last.body["reply_broadcast"] is True  # a failure in the last stage is everyone's news
    assert parent_text(fake_slack).endswith("dumpling ❌")


def promotion(db, id_: int, build: int, stage: str, state: str, rollback: bool = False) -> None:
    """Store a promotion of `build` into `stage`."""
    db.execute(
        "INSERT OR REPLACE INTO promotions (id, repo_id, build_id, stage, requested_by, state,"
        " rollback, created_at) VALUES (?, ?, ?, ?, 'U012ABC', ?, ?, 1000)",
        [id_, REPO, build, stage, state, int(rollback)],
    )


@pytest.mark.usefixtures("quick")
async def test_who_promoted_and_approved_is_told_in_the_thread(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.settle()
    asked = Change("promotion.changed", REPO, 1, "dumpling", {"state": "waiting", "by": "U012ABC"})
    await emit(harness, asked, setup=lambda db: promotion(db, 1, 1, "dumpling", "waiting"))
    assert parent_text(fake_slack).endswith("dumpling ⏸")
    approved = Change(
        "promotion.changed", REPO, 1, "dumpling", {"state": "approved", "by": "U0BOSS"}
    )

    def approve(db):
        promotion(db, 1, 1, "dumpling", "approved")
        db.execute("INSERT INTO approvals (promotion_id, user_id, at) VALUES (1, 'U0BOSS', 1)")

    await emit(harness, approved, setup=approve)
    assert parent_text(fake_slack).endswith("dumpling ·")
    # A promotion that needed no approval is told as who promoted it, not as an approval.
    direct = Change("promotion.changed", REPO, 1, "baklava", {"state": "approved"})
    await emit(harness, direct, setup=lambda db: promotion(db, 2, 1, "baklava", "approved"))
    assert [r.body["text"] for r in replies(fake_slack)] == [
        "🙋 <@U012ABC> asked to promote build #1 to *dumpling*.",
        "👍 <@U0BOSS> approved build #1 for *dumpling*.",
        "🚀 <@U012ABC> promoted build #1 to *baklava*.",
    ]
    assert not any(r.body["reply_broadcast"] for r in replies(fake_slack))


@pytest.mark.usefixtures("quick")
async def test_a_rollback_marks_the_build_it_replaces(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.deliver("push", push_payload(OTHER_SHA, message="Second"))
    await harness.settle()

    def deployed(db) -> None:
        deployment(db, 1, "pasty", "success", 10)
        db.execute(
            "INSERT INTO deployments (id, repo_id, build_id, stage, state, requested_by,"
            " created_at, updated_at) VALUES (2, ?, 2, 'pasty', 'success', 'promobot', 2000, 2000)",
            [REPO],
        )

    done = Change("deployment.changed", REPO, 2, "pasty", {"state": "success", "deployment_id": 2})
    await emit(harness, done, setup=deployed)

    def rollback(db) -> None:
        # As `/ship rollback` records it: the promotion names the build it takes out.
        db.execute(
            "INSERT INTO promotions (id, repo_id, build_id, stage, requested_by, state,"
            " rollback, replaces_build_id, created_at)"
            " VALUES (3, ?, 1, 'pasty', 'U1', 'approved', 1, 2, 3000)",
            [REPO],
        )
        db.execute(
            "INSERT INTO deployments (id, repo_id, build_id, stage, promotion_id, state,"
            " requested_by, created_at, updated_at)"
            " VALUES (3, ?, 1, 'pasty', 3, 'in_progress', 'U1', 3000, 3000)",
            [REPO],
        )

    back = Change("deployment.changed", REPO, 1, "pasty", {"state": "queued", "deployment_id": 3})
    await emit(harness, back, setup=rollback)
    strips = {m["text"].split()[1]: m["text"] for m in fake_slack.messages.values()}
    assert "pasty ⏳" in strips["#1"]
    assert "pasty ↩️" in strips["#2"]


@pytest.mark.usefixtures("quick")
async def test_a_lock_is_drawn_on_the_newest_build_only(harness, fake_slack):
    await harness.deliver("push", push_payload())
    await harness.settle()

    def lock(db) -> None:
        db.execute(
            "INSERT INTO locks (repo_id, stage, locked_by, reason, created_at)"
            " VALUES (186853002, 'baklava', 'U1', 'investigating', 0)"
        )

    await emit(harness, Change("lock.changed", REPO, None, "baklava"), setup=lock)
    assert "baklava · 🔒" in parent_text(fake_slack)
    await harness.deliver("push", push_payload(OTHER_SHA, message="Second"))
    await harness.settle()
    texts = [m["blocks"][0]["text"]["text"] for m in fake_slack.messages.values()]
    assert ["🔒" in t for t in texts] == [False, True]
