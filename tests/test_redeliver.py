"""Missed deliveries come back: GitHub is asked to redeliver each one once, across restarts."""

import time

from gidgethub import apps

from bot.dev.fakes import FakeGitHub
from tests.conftest import WEBHOOK_SECRET, push_payload, status_payload
from tests.waiting import wait_for

REDELIVER = "POST /app/hook/deliveries/{delivery_id}/attempts"


async def swept(harness, count: int = 1) -> None:
    """Wait until the harness has finished `count` sweeps, then until what they queued is sent."""
    await wait_for(
        lambda: len(harness.rows("SELECT id FROM redelivery_sweeps")) >= count,
        what=f"{count} sweep(s) finished",
    )
    await harness.settle()
    await harness.github.hooks.settle()
    await harness.settle()


async def start(make_harness, fake_github: FakeGitHub, url: bool = True):
    harness = await make_harness(redeliver=True)
    hooks = fake_github.hooks
    hooks.url = str(harness.client.make_url("/github/webhooks")) if url else None
    hooks.secret = WEBHOOK_SECRET
    return harness


def stored(harness) -> dict[str, str]:
    return {r["delivery_id"]: r["state"] for r in harness.rows("SELECT * FROM deliveries")}


async def test_only_the_missed_deliveries_are_redelivered_once_across_restarts(
    make_harness, fake_github
):
    hooks = fake_github.hooks
    now = time.time()
    # 150 delivered attempts, newest, so the missed ones are only found on the second page.
    for i in range(150):
        hooks.add("status", status_payload(f"{i:040x}"), status_code=202, at=now - 60)
    failed = hooks.add("push", push_payload("a" * 40), status_code=502, at=now - 3600)
    retried = hooks.add("status", status_payload("b" * 40), status_code=0, at=now - 7200)
    hooks._attempt(retried["guid"], 504, now - 7000, redelivery=True)  # failed twice
    recovered = hooks.add("status", status_payload("c" * 40), status_code=500, at=now - 7300)
    hooks._attempt(recovered["guid"], 202, now - 7200, redelivery=True)  # came on a redelivery
    too_old = hooks.add("status", status_payload("d" * 40), status_code=502, at=now - 4 * 86400)
    late = hooks.add("status", status_payload("e" * 40), status_code=0, at=now - 7400)

    first = await start(make_harness, fake_github)
    # promobot stored this one, though its answer came too late for GitHub.
    assert (
        await first.deliver("status", status_payload("e" * 40), delivery_id=late["guid"])
    ).status == 202
    await swept(first)

    newest_of_retried = hooks.of(retried["guid"])[1]["id"]
    # Oldest first, so that a repository's events come back in the order they happened.
    assert hooks.redelivery_requests == [newest_of_retried, failed["id"]]
    counted = first.services.metrics.processing.get_sample_value(
        "promobot_redelivery_requests_total", {"outcome": "requested"}
    )
    assert counted == 2  # what GET /metrics shows an operator
    pages = fake_github.of("GET /app/hook/deliveries")
    assert len(pages) == 2  # 100, then the rest
    assert stored(first)[failed["guid"]] == "done" and retried["guid"] in stored(first)
    assert recovered["guid"] not in stored(first) and too_old["guid"] not in stored(first)
    assert [a["status_code"] for a in hooks.of(failed["guid"])] == [502, 202]
    asked = first.rows("SELECT guid, event, status FROM redeliveries ORDER BY guid")
    assert asked == sorted(
        [
            {"guid": failed["guid"], "event": "push", "status": "Invalid HTTP Response: 502"},
            {"guid": retried["guid"], "event": "status", "status": "Invalid HTTP Response: 504"},
        ],
        key=lambda r: r["guid"],
    )
    await first.client.close()

    # Restarted: the list is read again, back to the previous sweep; nothing is asked twice.
    again = await start(make_harness, fake_github)
    await swept(again, count=2)
    assert len(hooks.redelivery_requests) == 2
    (sweep,) = again.rows("SELECT since, listed, asked, error FROM redelivery_sweeps WHERE id = 2")
    assert sweep["asked"] == 0 and sweep["error"] is None
    assert sweep["since"] >= now - 700  # back to the first sweep (less a margin), not 3 days


async def test_a_guid_whose_redelivery_failed_again_is_never_asked_for_twice(
    make_harness, fake_github
):
    hooks = fake_github.hooks
    missed = hooks.add("push", push_payload("f" * 40), status_code=502)
    first = await start(make_harness, fake_github, url=False)  # the redelivery fails too
    await swept(first)
    assert hooks.redelivery_requests == [missed["id"]]
    assert [a["status_code"] for a in hooks.of(missed["guid"])] == [502, 0]
    await first.client.close()
    again = await start(make_harness, fake_github, url=False)
    await swept(again, count=2)
    assert hooks.redelivery_requests == [missed["id"]]
    assert missed["guid"] not in stored(again)


async def test_rate_limits_and_lost_answers_are_honoured(make_harness, fake_github):
    hooks = fake_github.hooks
    fake_github.fail(
        "GET /app/hook/deliveries",
        403,
        headers={"retry-after": "120", "x-ratelimit-remaining": "0"},
        body={"message": "API rate limit exceeded"},
    )
    missed = hooks.add("push", push_payload("1" * 40), status_code=502)
    other = hooks.add("push", push_payload("2" * 40), status_code=502)
    first = await start(make_harness, fake_github)
    await swept(first)
    (sweep,) = first.rows("SELECT asked, error FROM redelivery_sweeps")
    assert sweep["asked"] == 0 and "retry after 120s" in sweep["error"]
    assert hooks.redelivery_requests == []
    await first.client.close()

    # Next start: the first request is rate limited (sent again after Retry-After); the second
    # is carried out but its answer is lost (a 502), and the retry sees it arrived.
    fake_github.fail(REDELIVER, 429, headers={"retry-after": "1"})
    fake_github.fail(REDELIVER, 502, after=True)
    again = await start(make_harness, fake_github)
    await swept(again, count=2)
    calls = fake_github.of(REDELIVER)
    assert len(calls) == 3 and calls[1].at - calls[0].at >= 0.9
    assert len([a for a in hooks.attempts if a["redelivery"]]) == 2  # one each
    assert {missed["guid"], other["guid"]} <= set(stored(again))
    assert again.rows("SELECT state FROM outbox WHERE method = 'github.redeliver'") == [
        {"state": "sent"},
        {"state": "sent"},
    ]


async def test_a_request_whose_answer_was_lost_is_not_asked_again_before_github_lists_it(
    make_harness, fake_github
):
    hooks = fake_github.hooks
    hooks.lag = 3.0  # GitHub makes (and lists) the redelivery seconds after accepting it
    missed = hooks.add("push", push_payload("3" * 40), status_code=502)
    fake_github.fail(REDELIVER, 502, after=True)  # carried out, but the answer is lost
    harness = await start(make_harness, fake_github, url=False)  # and the redelivery fails
    await swept(harness)
    assert harness.rows("SELECT state FROM outbox WHERE method = 'github.redeliver'") == [
        {"state": "sent"}
    ]
    assert hooks.redelivery_requests == [missed["id"]]  # asked once
    assert [a["redelivery"] for a in hooks.of(missed["guid"])] == [False, True]


async def test_the_fake_refuses_what_github_refuses(fake_github, aiohttp_client, private_key):
    client = await aiohttp_client(fake_github.app())
    assert (await client.get("/app/hook/deliveries")).status == 401
    token = {"Authorization": "token ghs_" + "0" * 36}
    assert (await client.get("/app/hook/deliveries", headers=token)).status == 401
    app = {"Authorization": "Bearer " + apps.get_jwt(app_id="1", private_key=private_key)}
    assert (await client.get("/app/hook/deliveries?per_page=101", headers=app)).status == 422
    assert (await client.get("/app/hook/deliveries?cursor=zz", headers=app)).status == 400
    assert (await client.post("/app/hook/deliveries/123/attempts", headers=app)).status == 404
    assert (await client.get("/app/hook/deliveries", headers=app)).status == 200


async def test_a_restart_soon_after_a_lost_answer_does_not_ask_github_again(
    make_harness, fake_github
):
    hooks = fake_github.hooks
    # GitHub makes the redelivery seconds after accepting the request: longer than the
    # relay's first retry (2 s after the lost answer) and than a restart.
    hooks.lag = 5.0
    missed = hooks.add("push", push_payload("4" * 40), status_code=502)
    fake_github.fail(REDELIVER, 502, after=True)  # carried out, but the answer is lost
    first = await start(make_harness, fake_github)
    request = "SELECT state, attempts FROM outbox WHERE method = 'github.redeliver'"
    await wait_for(
        lambda: first.rows(request) == [{"state": "pending", "attempts": 1}],
        what="the lost answer recorded",
    )
    await first.client.close()  # `serve` stops before GitHub lists the redelivery

    again = await start(make_harness, fake_github)  # the redelivery arrives here
    await wait_for(
        lambda: [r["state"] for r in again.rows(request)] == ["sent"],
        timeout=60,
        what="the request done",
    )
    assert len(fake_github.of(REDELIVER)) == 1  # asked once, across the restart
    assert hooks.redelivery_requests == [missed["id"]]
    await again.settle()
    assert stored(again) == {missed["guid"]: "done"}
