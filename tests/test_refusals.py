"""Refused commands leave a short trace and echo back a short, escaped prefix of what was typed."""

import json

from tests.conftest import push_payload


def refusals(harness) -> list[dict]:
    rows = harness.rows("SELECT reason, detail FROM event_log WHERE action = 'command.refused'")
    return [{"reason": r["reason"], **json.loads(r["detail"])} for r in rows]


async def test_a_long_refused_command_stores_and_echoes_only_a_prefix(harness):
    text = "<!channel>" + "x" * 3_900  # one word, under the 4,000-character cap of a command
    response = await harness.slash(text)
    answer = await response.text()
    assert response.status == 200
    assert answer.startswith(":warning: `&lt;!channel&gt;xxx")
    assert "<!channel>" not in answer
    assert len(answer) < 200
    (refusal,) = refusals(harness)
    assert refusal["length"] == len(text)
    assert len(refusal["text"]) == 200 and text.startswith(refusal["text"])
    assert len(refusal["reason"]) < 100


async def test_every_echo_of_typed_words_is_bounded_and_escaped(harness):
    await harness.deliver("push", push_payload())
    await harness.settle()
    long_word = "<@U1>`" + "y" * 5000
    for text in (
        f"status --{long_word}",
        f"promote #{'9' * 5000} pasty",
        f"promote {long_word} pasty",
        f"promote #1 {long_word}",
        f'lock pasty "why" for {long_word}',
    ):
        answer = await (await harness.slash(text)).text()
        assert len(answer) < 400, text[:30]
        assert "<@U1>" not in answer and "yyyyyyyyyy" * 5 not in answer
    assert all(len(r["text"]) <= 200 for r in refusals(harness))


async def test_every_refused_freeze_and_digest_is_in_the_event_log(harness):
    random = {"channel": "C0RANDOM", "channel_name": "random"}
    refused = [
        ("digest", {}, "no repository is known yet, so there is no digest"),
        ('freeze "x"', {"user": "U012ABC"}, "no repository is known yet: install the GitHub App"),
    ]
    for text, where, reason in refused:
        assert reason in await (await harness.slash(text, **where)).text(), text
    await harness.deliver("push", push_payload())
    await harness.settle()
    refused += [
        ('freeze "x"', {"user": "U012ABC", **random}, "this channel follows no repository"),
        ("unfreeze", {"user": "U012ABC", **random}, "this channel follows no repository"),
        ("digest", random, "this channel follows no repository"),
        ("freeze", {"user": "U012ABC"}, "a freeze needs a reason"),
        ("unfreeze now", {"user": "U012ABC"}, "`unfreeze` takes no arguments"),
        (f'freeze "{"r" * 501}"', {"user": "U012ABC"}, "the reason is 501 characters long"),
        ('freeze "x"', {"user": "U999"}, "only dumpling's promoters may freeze merges"),
    ]
    for text, where, reason in refused[2:]:
        assert reason in await (await harness.slash(text, **where)).text(), text
    logged = refusals(harness)
    assert len(logged) == len(refused)
    for (text, _, reason), line in zip(refused, logged, strict=True):
        assert line["text"] == text[:200] and reason in line["reason"], text
    assert harness.rows("SELECT * FROM freezes") == []
