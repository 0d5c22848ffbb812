"""GET /metrics: Prometheus text from prometheus-client, off unless enabled, per-app registry."""

import dataclasses
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_app
from bot.config import load_secrets
from bot.engine.metrics import Metrics
from handlers import inbound
from tests.conftest import Harness, push_payload, status_payload
from tests.devsupport import deploy
from tests.outbox import queue, slack_message


@pytest.fixture
def start(aiohttp_client, tmp_path, config, secrets, fake_slack, fake_github):
    """Start promobot with the metrics settings given (as the environment would set them)."""

    async def go(**settings) -> Harness:
        app = create_app(
            config,
            dataclasses.replace(secrets, **settings),
            db_path=tmp_path / "metrics.db",
            inbound=inbound(),
            digest_schedule=False,
        )
        return Harness(await aiohttp_client(app), tmp_path / "metrics.db", fake_slack, fake_github)

    return go


async def scrape(harness, **headers) -> dict[tuple[str, tuple], float]:
    response = await harness.client.get("/metrics", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_are_off_unless_enabled(start):
    harness = await start()
    response = await harness.client.get("/metrics")
    assert response.status == 404
    assert "PROMOBOT_METRICS" in await response.text()


async def test_a_metrics_token_is_required_when_set(start):
    harness = await start(metrics_token="scrape-me-please")
    assert (await harness.client.get("/metrics")).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await harness.client.get("/metrics", headers=wrong)).status == 401
    await scrape(harness, Authorization="Bearer scrape-me-please")


def test_the_environment_turns_metrics_on():
    env = {"PROMOBOT_METRICS": "1", "PROMOBOT_METRICS_TOKEN": "t0ken-value"}
    secrets = load_secrets(env, required=())
    assert secrets.metrics and secrets.metrics_token == "t0ken-value"
    assert not load_secrets({}, required=()).metrics


async def test_deliveries_calls_waits_backlog_and_deployments_are_counted(start, fake_slack):
    harness = await start(metrics=True)
    harness.services.relay.pace["slack"] = 0.0
    await harness.deliver("push", push_payload())
    await harness.deliver("status", status_payload())
    await harness.deliver("push", b"[]")  # refused at the door: not a delivery
    await harness.settle()
    fake_slack.fail("chat.postMessage", 429, headers={"Retry-After": "1"})
    await queue(harness, slack_message("k1", "after a wait", "#mingle-releases"))
    await harness.settle(timeout=20)
    now = time.time()
    deploy(harness.db_path, 1, "baklava", "success", now - 100, took=42.0)
    await queue(harness, slack_message("k2", "waits", "#nowhere"))  # pending in the outbox
    m = await scrape(harness)

    assert m[("promobot_deliveries_total", (("event", "push"), ("outcome", "done")))] == 1
    assert m[("promobot_deliveries_total", (("event", "status"), ("outcome", "done")))] == 1
    assert m[("promobot_ack_seconds_count", ())] == 2
    post_ok = (("method", "chat.postMessage"), ("status", "ok"), ("target", "slack"))
    assert m[("promobot_remote_calls_total", post_ok)] >= 2
    post_429 = (("method", "chat.postMessage"), ("status", "429"), ("target", "slack"))
    assert m[("promobot_remote_calls_total", post_429)] == 1
    deployments = (("method", "POST /repos/{owner}/{repo}/deployments"), ("status", "201"))
    assert m[("promobot_remote_calls_total", (*deployments, ("target", "github")))] == 1
    waits = (("method", "slack.message"), ("target", "slack"))
    assert m[("promobot_rate_limit_waits_total", waits)] == 1
    assert m[("promobot_rate_limit_wait_seconds_total", (("target", "slack"),))] == 1.0
    assert m[("promobot_backlog_items", (("queue", "inbox"), ("state", "pending")))] == 0
    assert m[("promobot_backlog_items", (("queue", "outbox"), ("state", "pending")))] == 1
    assert m[("promobot_backlog_oldest_age_seconds", (("queue", "outbox"),))] >= 0
    assert m[("promobot_deployments", (("stage", "pasty"), ("state", "requested")))] == 1
    assert m[("promobot_deployments", (("stage", "baklava"), ("state", "success")))] == 1
    assert m[("promobot_deployment_seconds_count", (("stage", "baklava"),))] == 1
    assert m[("promobot_deployment_seconds_sum", (("stage", "baklava"),))] == 42.0
    assert m[("promobot_deployment_seconds_bucket", (("le", "60"), ("stage", "baklava")))] == 1
    assert m[("promobot_deployment_seconds_bucket", (("le", "30"), ("stage", "baklava")))] == 0
    assert ("promobot_redelivery_requests_total", (("outcome", "requested"),)) not in m


async def test_each_app_counts_on_its_own_registry(start):
    first = await start(metrics=True)
    await first.deliver("push", push_payload())
    await first.settle()
    counted = 'promobot_deliveries_total{event="push",outcome="done"} 1.0'
    assert counted in first.services.metrics.exposition({}).decode()
    assert "promobot_deliveries_total{" not in Metrics().exposition({}).decode()


def test_the_serving_process_shows_what_its_processing_child_saved(tmp_path):
    child, serving = Metrics(), Metrics(child=tmp_path / "promobot.db.processing-metrics")
    assert "promobot_deliveries_total" not in serving.exposition({}).decode()  # not saved yet
    child.deliveries.labels("push", "done").inc(3)
    child.call("slack", "chat.postMessage", "ok")
    child.save(tmp_path / "promobot.db.processing-metrics")
    serving.ack_seconds.observe(0.004)
    families = {f.name: f for f in text_string_to_metric_families(serving.exposition({}).decode())}
    (done,) = families["promobot_deliveries"].samples[:1]
    assert done.labels == {"event": "push", "outcome": "done"} and done.value == 3
    assert families["promobot_ack_seconds"].samples[-2].value == 1  # the serving side's count
    assert "promobot_remote_calls" in families and "promobot_backlog_items" in families
