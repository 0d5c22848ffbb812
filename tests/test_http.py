"""What every HTTP answer says about promobot itself, whichever route answered."""

import pytest

ROUTES = [
    ("GET", "/healthz"),
    ("POST", "/github/webhooks"),
    ("POST", "/slack/events"),
    ("GET", "/"),
    ("GET", "/no/such/page"),
    ("PUT", "/healthz"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_route_names_python_or_aiohttp_versions(harness, method, path):
    response = await harness.client.request(method, path)
    assert response.headers["Server"] == "promobot"
