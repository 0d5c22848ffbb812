"""No secret reaches the logs, whichever path (good, forged, malformed, relay errors) ran."""

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot.dev.fakes import FakeSlack
from tests.conftest import (
    ROOT,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    fixture,
    push_payload,
    sign_github,
    status_payload,
)
from tests.outbox import github_status, queue, slack_message
from tests.waiting import wait_for_blocking


def assert_clean(text: str, private_key: str) -> None:
    pem_line = private_key.strip().splitlines()[1]
    for secret in (WEBHOOK_SECRET, SIGNING_SECRET, FakeSlack.TOKEN, pem_line):
        assert secret not in text
    for marker in ("xoxb-", "ghs_", "PRIVATE KEY-----"):
        assert marker not in text


async def test_every_path_logs_without_secrets(harness, caplog, private_key):
    caplog.set_level(logging.DEBUG)
    body = json.dumps(push_payload()).encode()
    await harness.deliver("push", body)
    await harness.deliver("push", body, secret="wrong")
    await harness.deliver("push", body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    await harness.deliver("push", b"{not json", headers={"X-Hub-Signature-256": sign_github(b"{")})
    await harness.deliver("status", {"sha": 5, "repository": {"id": "x"}})  # fails in the worker
    await harness.deliver("status", status_payload(state="failure"))
    await harness.deliver("installation", fixture("installation.created"))
    await harness.slash("help")
    await harness.slash("promote", timestamp=int(time.time()) - 3600)  # stale signature
    harness.slack.fail("chat.postMessage", 429, headers={"Retry-After": "1"})
    harness.slack.fail("chat.postMessage", 200, body={"ok": False, "error": "invalid_auth"})
    harness.github.fail("POST /repos/{owner}/{repo}/statuses/{sha}", 401, body={"message": "Bad"})
    await queue(harness, slack_message("a", "one"), slack_message("b", "two"))
    await queue(harness, github_status("a" * 40), github_status("b" * 40))
    await harness.settle()
    assert harness.github.tokens_minted >= 1  # a ghs_ token really went through the code
    assert "refused" in caplog.text  # the error paths did log
    assert_clean(caplog.text, private_key)


def test_the_served_process_logs_without_secrets(tmp_path: Path, private_key: str):
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_APP_ID": "1",
        "GITHUB_PRIVATE_KEY": private_key,
        "SLACK_BOT_TOKEN": FakeSlack.TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing listens: relay errors
    }
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--config", str(ROOT / "app.yaml")]
    cmd += ["--db", str(tmp_path / "p.db"), "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/github/webhooks"
        body = json.dumps(push_payload()).encode()
        wait_for_blocking(
            lambda: post(url, body, "push", sign_github(body)),
            what="promobot serve answering",
            every=0.1,
            ignoring=(OSError,),
        )
        post(url, body, "push", sign_github(body, "forged"))
        post(url, b"[]", "push", sign_github(b"[]"))
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "refused" in stderr
    assert_clean(stderr, private_key)


def post(url: str, body: bytes, event: str, signature: str) -> int:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(time.time_ns())}
    headers |= {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_a_library_logging_a_secret_is_scrubbed_for_every_handler(harness, caplog):
    # create_app installs the redactor on record creation, so caplog sees it scrubbed too.
    logging.getLogger("some.library").warning(
        "headers %s", {"Authorization": f"Bearer {FakeSlack.TOKEN}", "secret": WEBHOOK_SECRET}
    )
    assert "[redacted]" in caplog.text
    assert FakeSlack.TOKEN not in caplog.text
    assert WEBHOOK_SECRET not in caplog.text
