"""GitHub App auth: a JWT backdated 60 s, installation tokens cached until shortly before expiry."""

import itertools
import time
from types import SimpleNamespace

import aiohttp
import jwt
import pytest
from gidgethub import apps

from bot.engine.github import JWT_REUSE, GitHubClient, wait_from_headers
from bot.engine.relay import Permanent, RetryAfter, Transient


@pytest.fixture
async def client(fake_github, private_key):
    async with aiohttp.ClientSession() as session:
        yield GitHubClient(
            session,
            app_id="12345",
            private_key=private_key,
            api_url=str(fake_github.server.make_url("")),
        )


async def test_the_app_jwt_is_backdated_and_the_installation_token_is_reused(client, fake_github):
    body = {"state": "success", "context": "promobot/pipeline"}
    for _ in range(3):
        await client.request("POST", "/repos/acme/mingle/statuses/abc1234", body, installation_id=7)
    (mint,) = fake_github.of("POST /app/installations/{installation_id}/access_tokens")
    claims = jwt.decode(
        mint.headers["Authorization"].split()[1], options={"verify_signature": False}
    )
    assert claims["iss"] == "12345"
    assert time.time() - 70 <= claims["iat"] <= time.time() - 50
    assert claims["exp"] - claims["iat"] <= 600
    writes = fake_github.of("POST /repos/{owner}/{repo}/statuses/{sha}")
    assert len(writes) == 3
    assert {w.headers["Authorization"] for w in writes} == {"token ghs_fake" + "0" * 31 + "1"}


async def test_the_app_jwt_is_signed_once_for_several_minutes_of_mints(
    client, fake_github, monkeypatch
):
    seconds = itertools.count(int(time.time()) - 250, 100)  # mints 100 s apart, until now
    monkeypatch.setattr(apps, "time", SimpleNamespace(time=lambda: next(seconds)))
    for installation in (7, 8):
        await client.installation_token(installation)
    signed, at = client._jwt
    client._jwt = (signed, at - JWT_REUSE)  # now past its reuse
    await client.installation_token(9)
    mints = fake_github.of("POST /app/installations/{installation_id}/access_tokens")
    bearers = [m.headers["Authorization"] for m in mints]
    assert len(bearers) == 3 and bearers[0] == bearers[1] != bearers[2]


async def test_a_token_near_its_expiry_is_renewed(client, fake_github):
    await client.installation_token(7)
    token, _ = client._tokens[7]
    client._tokens[7] = (token, time.time() + 200)  # inside the renewal margin
    await client.installation_token(7)
    assert fake_github.tokens_minted == 2


async def test_github_refusals_map_onto_relay_outcomes(client, fake_github):
    path = "/repos/acme/mingle/statuses/abc1234"
    with pytest.raises(Permanent, match="422"):
        await client.request("POST", path, {"state": "sideways"}, installation_id=7)
    fake_github.fail(
        "POST /repos/{owner}/{repo}/statuses/{sha}",
        403,
        headers={"retry-after": "30"},
        body={"message": "secondary rate limit"},
    )
    with pytest.raises(RetryAfter) as caught:
        await client.request("POST", path, {"state": "success"}, installation_id=7)
    assert caught.value.seconds == 30
    fake_github.fail("POST /repos/{owner}/{repo}/statuses/{sha}", 502)
    with pytest.raises(Transient):
        await client.request("POST", path, {"state": "success"}, installation_id=7)


def test_rate_limit_headers_say_how_long_to_wait():
    assert wait_from_headers({"retry-after": "12"}, now=0) == 12
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}
    assert wait_from_headers(reset, now=940) == 60
    assert wait_from_headers({"x-ratelimit-remaining": "10"}, now=0) is None
