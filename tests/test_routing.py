"""The acknowledgement reads only routing fields, and stores exactly what a full decode would."""

from pathlib import Path

import pytest

from bot.core.text import load_json
from bot.dev import payloads
from handlers.github import Refused, parse_delivery, repo_key

RECORDED = [Path(__file__).parent / "fixtures" / "github", payloads.FIXTURES]
FIXTURES = sorted(path for folder in RECORDED for path in folder.glob("*.json"))
HEADERS = {"X-GitHub-Event": "status", "X-GitHub-Delivery": "d-1"}
SHAPES = [
    b'{"repository": {"id": 5}}',
    b'{"repository": 5, "installation": {"id": 7}}',
    b'{"action": 3, "repository": {"id": null}}',
    b'{"action": "opened", "repository": {"id": null}, "installation": {"id": "x"}}',
    b"{}",
    b'{"repository": {"id": 9}, "repository": {"id": 10}}',
    b'{"a": "\\ud83d\\ude00", "repository": {"id": 3}}',
    b'{"a": "\\ud800", "installation": {"id": 4}}',
    b'{"action": "\\udc00x", "repository": {"id": 4}}',
    b'{"action": "\\ud800\\u0041", "repository": {"id": 4}}',
    b'{"action": "\\uDBFF\\uDFFF", "repository": {"id": 4}}',
    b'{"a": "\xed\xa0\x80", "repository": {"id": 6}}',
    b'{"a": NaN, "repository": {"id": 2}}',
    '{"a": "caf\u00e9", "action": "created"}'.encode(),
]


def expected(body: bytes) -> tuple[str | None, str]:
    data = load_json(body)  # the full way: lone surrogates become U+FFFD
    action = data.get("action") if isinstance(data.get("action"), str) else None
    return action, repo_key(data)


@pytest.mark.parametrize("body", [p.read_bytes() for p in FIXTURES] + SHAPES)
def test_action_and_ordering_key_are_those_of_a_full_decode(body):
    delivery = parse_delivery(HEADERS, body)
    assert (delivery.action, delivery.repo_key) == expected(body)
    assert delivery.body == body  # stored as received


@pytest.mark.parametrize(
    "body",
    [
        b"[1]",
        b'"x"',
        b"nope",
        b'{"a": 1',
        b'{"a": "\xff"}',
        b'{"a": 1} x',
        b"",
        b'{"a": "\xc0\xaf"}',
    ],
)
def test_what_is_not_a_json_object_is_still_refused(body):
    with pytest.raises(Refused) as refused:
        parse_delivery(HEADERS, body)
    assert refused.value.status == 400
