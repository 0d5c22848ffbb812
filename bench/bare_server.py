"""The baseline: a bare aiohttp POST handler that reads the body and answers 202."""

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    """Read the whole body, then answer 202 as promobot does."""
    body = await request.read()
    return web.json_response({"stored": "new", "bytes": len(body)}, status=202)


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/github/webhooks", accept)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
