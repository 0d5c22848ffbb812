"""--log-format json: one JSON object per line, with the delivery's facts, secrets redacted."""

import io
import json
import logging

import pytest

from bot import cli
from bot.engine import logs
from tests.conftest import WEBHOOK_SECRET, fixture, push_payload
from tests.outbox import queue, slack_message


@pytest.fixture
def json_lines():
    """Send every log record through the JSON formatter, as `serve --log-format json` does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_a_line_per_delivery_refusal_and_failed_call(harness, json_lines, fake_slack):
    harness.services.relay.pace["slack"] = 0.0
    await harness.deliver("push", push_payload(), delivery_id="guid-push-1")
    status = await harness.deliver("push", push_payload(), secret="not-" + WEBHOOK_SECRET)
    assert status.status == 401
    deployment = fixture("deployment_status")
    deployment["deployment"]["payload"] = {"promotion": 7}
    await harness.deliver("deployment_status", deployment, delivery_id="guid-deploy-1")
    await harness.slash("promote #99 nowhere " + "secret words " * 50)
    fake_slack.fail("chat.postMessage", 500, times=1)
    await queue(harness, slack_message("k1", "hello"))
    await harness.settle(timeout=20)
    lines = json_lines()
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    (push,) = [x for x in lines if x.get("delivery_id") == "guid-push-1"]
    assert push["event"] == "push" and push["outcome"] == "done"
    assert push["repo"] == "Codertocat/Hello-World"
    (deploy,) = [x for x in lines if x.get("delivery_id") == "guid-deploy-1"]
    assert deploy["promotion"] == 7 and deploy["stage"] == deployment["deployment"]["environment"]

    refusals = [x for x in lines if "refusal" in x]
    assert [x["refusal"] for x in refusals if x["logger"] == "handlers.github"] == [
        "X-Hub-Signature-256 does not match the body"
    ]
    (command,) = [x for x in refusals if x["logger"] == "bot.ship.verbs"]
    assert "secret words" not in json.dumps(command)
    (failed,) = [x for x in lines if x.get("target") == "slack" and x["level"] == "WARNING"]
    assert failed["method"] == "slack.message" and "HTTP 500" in failed["message"]
    assert WEBHOOK_SECRET not in json.dumps(lines)


def test_secrets_in_a_line_and_its_fields_are_redacted():
    logs.redact_everywhere(("a-long-secret-value",))
    record = logging.getLogger("t").makeRecord(
        "t", logging.INFO, __file__, 1, "token xoxb-1234-abcd and a-long-secret-value", (), None
    )
    record.repo = "a-long-secret-value"
    line = json.loads(logs.JsonFormatter().format(record))
    assert "xoxb" not in line["message"] and "a-long-secret-value" not in json.dumps(line)


def test_serve_takes_log_format_json_from_the_flag_or_the_environment(monkeypatch):
    assert cli.parser().parse_args(["serve"]).log_format == "text"
    assert cli.parser().parse_args(["serve", "--log-format", "json"]).log_format == "json"
    monkeypatch.setenv("PROMOBOT_LOG_FORMAT", "json")
    assert cli.parser().parse_args(["serve"]).log_format == "json"


def test_an_unknown_log_format_in_the_environment_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("PROMOBOT_LOG_FORMAT", "xml")
    assert cli.main(["serve"]) == 2
    assert "PROMOBOT_LOG_FORMAT must be one of text, json" in capsys.readouterr().err
