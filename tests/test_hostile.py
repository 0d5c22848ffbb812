"""Hostile input: odd command text and odd webhook bodies never break promobot.

Property-based (hypothesis) with modest example counts, so they stay fast in `make test`.
"""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import commands
from tests.conftest import fixture, sign_github

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENTS = {
    "push": "push",
    "status": "status",
    "check_run.completed": "check_run",
    "check_run.created": "check_run",
    "check_suite.completed": "check_suite",
    "installation.created": "installation",
    "pull_request.opened": "pull_request",
    "deployment_status": "deployment_status",
    "ping": "ping",
}
# Up to 20,000 characters (240 kB escaped): 4 of them stay under aiohttp's 1 MB client warning.
huge = st.builds(lambda n, c: c * n, st.integers(1_000, 20_000), st.characters())
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | huge
)
odd_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
words = st.lists(
    st.sampled_from([*commands.USAGE, "--force", '"', "'", "“", "#42", "to", "pasty", "--x"])
    | st.text(max_size=12),
    max_size=6,
).map(" ".join)


@given(text=st.text(max_size=200) | words, command=st.sampled_from(["/ship", "/promote"]))
def test_the_parser_only_ever_raises_command_error(text, command):
    try:
        parsed = commands.parse(text, command=command)
    except commands.CommandError as exc:
        answer = exc.answer()
        assert answer.startswith(":warning:")
        assert "Traceback" not in answer
    else:
        assert parsed.verb in commands.USAGE


@FAST
@given(text=words | st.text(max_size=100))
async def test_any_command_text_gets_an_answer_never_a_traceback(harness, text):
    response = await harness.slash(text)
    assert response.status == 200
    answer = await response.text()
    assert "Traceback" not in answer
    assert "Exception" not in answer


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON document."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found += paths(value, (*prefix, index))
    return found


def mutate(data: dict, path: tuple, value: Any, delete: bool) -> dict:
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@FAST
@given(data=st.data())
async def test_a_well_signed_odd_body_never_gets_a_5xx(harness, data):
    name = data.draw(st.sampled_from(sorted(EVENTS)))
    body = fixture(name)
    for _ in range(data.draw(st.integers(1, 4))):
        candidates = paths(body)
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates))
        body = mutate(body, path, data.draw(odd_json), delete=data.draw(st.booleans()))
    response = await harness.deliver(EVENTS[name], body)
    assert response.status == 202, await response.text()
    await harness.settle()
    # The worker survives whatever it was handed: a good delivery still goes through.
    good = await harness.deliver("ping", fixture("ping"))
    assert good.status == 202


@FAST
@given(raw=st.binary(max_size=300) | odd_json.map(lambda v: json.dumps(v).encode()))
async def test_a_refused_body_stores_nothing(harness, raw):
    before = harness.rows("SELECT count(*) AS n FROM deliveries")
    forged = await harness.deliver("push", raw, secret="not-the-secret")
    assert forged.status == 401
    signed = await harness.deliver("push", raw, headers={"X-Hub-Signature-256": sign_github(raw)})
    assert signed.status < 500
    if signed.status >= 400:
        assert "Traceback" not in await signed.text()
        assert harness.rows("SELECT count(*) AS n FROM deliveries") == before
