"""Anyone's bytes, headers and command text, signed or not, on both routes: never a 5xx."""

import logging
import time
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEAM, sign_github, sign_slack
from tests.test_hostile import words

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Header values as an HTTP client can send them (Latin-1, no line breaks), with odd digits.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
    | st.sampled_from("²³¹٣"),
    max_size=80,
)
HEADERS = [
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-Hub-Signature-256",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "Content-Type",
]
odd_bodies = (
    st.binary(max_size=2000)
    | st.text(max_size=300).map(str.encode)
    | st.integers(1, 3000).map(lambda n: ("[" * n + "]" * n).encode())
    | st.integers(1, 3000).map(lambda n: urlencode({"payload": "[" * n + "]" * n}).encode())
)


def tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


@FAST
@given(
    route=st.sampled_from(["/github/webhooks", "/slack/events"]),
    body=odd_bodies,
    headers=st.dictionaries(st.sampled_from(HEADERS), header_text, max_size=6),
    signed=st.booleans(),
)
async def test_any_bytes_and_headers_never_get_a_5xx(harness, caplog, route, body, headers, signed):
    caplog.set_level(logging.INFO)
    if signed and route == "/github/webhooks":
        headers["X-Hub-Signature-256"] = sign_github(body)
    elif signed:
        headers.update(sign_slack(body))  # on the raw bytes, which need not be UTF-8
    response = await harness.client.post(route, data=body, headers=headers)
    assert response.status < 500, (response.status, await response.text())
    assert "Traceback" not in await response.text()
    assert tracebacks(caplog) == []


@FAST
@given(
    text=words | st.text(max_size=300) | st.sampled_from(["#" + "9" * 30, "²", "#²", "9" * 5000]),
    command=st.sampled_from(["/ship", "/promote"]),
    team=st.sampled_from([TEAM, TEAM, "T0OTHER", ""]),
)
async def test_any_signed_command_text_gets_an_answer(harness, caplog, text, command, team):
    caplog.set_level(logging.INFO)
    body = urlencode(
        {
            "command": command,
            "text": text,
            "team_id": team,
            "user_id": "U111",
            "channel_id": "C0RELEASES",
            "channel_name": "releases",
            "trigger_id": f"{time.monotonic_ns()}.1.x",
        }
    )
    response = await harness.client.post("/slack/events", data=body, headers=sign_slack(body))
    answer = await response.text()
    assert response.status < 500 and "Traceback" not in answer
    assert tracebacks(caplog) == []
