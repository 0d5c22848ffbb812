"""The fake GitHub's record of the App's webhook deliveries: listed, paged, and redelivered.

Like GitHub, it lists attempts newest first in cursor pages (Link rel="next"), keeps
each redelivery as a new attempt of the same GUID, answers a redelivery request 202
and only then delivers, signed, to the App's webhook URL (when one is set).
"""

import asyncio
import calendar
import itertools
import json
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from bot.dev import client
from bot.dev.payloads import iso

RETENTION = 3 * 86400


def status_text(code: int) -> str:
    """Return GitHub's words for how an attempt went."""
    if 200 <= code < 300:
        return "OK"
    return f"Invalid HTTP Response: {code}" if code else "failed to connect to host"


class HookDeliveries:
    """The attempts GitHub made to deliver the App's webhooks, and the bodies it sent."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.bodies: dict[str, tuple[str, bytes]] = {}  # guid -> (event, body)
        self.url: str | None = None  # where redeliveries go; None: they fail to connect
        self.secret = ""
        self.redelivery_requests: list[int] = []
        # Seconds GitHub takes to make (and so to list) a redelivery it accepted.
        self.lag = 0.0
        self._ids = itertools.count(90_000_001)
        self._tasks: set[asyncio.Task[None]] = set()

    def add(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        status_code: int,
        at: float | None = None,
        guid: str | None = None,
    ) -> dict[str, Any]:
        """Record that GitHub tried to deliver `payload` and promobot answered `status_code`."""
        guid = guid or str(uuid.uuid4())
        self.bodies[guid] = (event, json.dumps(payload).encode())
        return self._attempt(guid, status_code, at or time.time(), redelivery=False)

    def _attempt(self, guid: str, code: int, at: float, *, redelivery: bool) -> dict[str, Any]:
        event, body = self.bodies[guid]
        data = json.loads(body)
        attempt = {
            "id": next(self._ids),
            "guid": guid,
            "delivered_at": iso(at),
            "redelivery": redelivery,
            "duration": 0.05,
            "status": status_text(code),
            "status_code": code,
            "event": event,
            "action": data.get("action"),
            "installation_id": (data.get("installation") or {}).get("id"),
            "repository_id": (data.get("repository") or {}).get("id"),
            "throttled_at": None,
        }
        self.attempts.append(attempt)
        return attempt

    def of(self, guid: str) -> list[dict[str, Any]]:
        """Return the attempts of one GUID, oldest first."""
        return [a for a in self.attempts if a["guid"] == guid]

    def listing(self, request: web.Request) -> web.Response:
        """GET /app/hook/deliveries: newest first, `per_page` up to 100, opaque cursors."""
        per_page = request.query.get("per_page", "30")
        if not per_page.isdigit() or not 1 <= int(per_page) <= 100:
            return web.json_response({"message": "Validation Failed"}, status=422)
        cursor = request.query.get("cursor")
        newest = sorted(self.attempts, key=lambda a: a["id"], reverse=True)
        if cursor is not None:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                return web.json_response({"message": "Bad Request"}, status=400)
            newest = [a for a in newest if a["id"] < int(cursor[3:])]
        page, rest = newest[: int(per_page)], newest[int(per_page) :]
        headers = {}
        if rest:
            after = request.url.with_query({"per_page": per_page, "cursor": f"v1_{page[-1]['id']}"})
            headers["Link"] = f'<{after}>; rel="next"'
        return web.json_response(page, headers=headers)

    def redeliver(self, attempt_id: str) -> web.Response:
        """POST …/attempts: 202, then deliver again (a new attempt of the same GUID)."""
        self.redelivery_requests.append(int(attempt_id) if attempt_id.isdigit() else -1)
        found = next((a for a in self.attempts if str(a["id"]) == attempt_id), None)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        tried = calendar.timegm(time.strptime(found["delivered_at"], "%Y-%m-%dT%H:%M:%SZ"))
        if tried < time.time() - RETENTION:  # GitHub keeps (and redelivers) 3 days
            return web.json_response({"message": "Validation Failed"}, status=422)
        task = asyncio.get_running_loop().create_task(self._deliver(found["guid"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({}, status=202)

    async def _deliver(self, guid: str) -> None:
        await asyncio.sleep(self.lag)
        event, body = self.bodies[guid]
        code = 0
        if self.url:
            headers = client.github_headers(event, body, self.secret, delivery=guid)
            headers["User-Agent"] = "GitHub-Hookshot/fake"
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(self.url, data=body, headers=headers) as answer,
                ):
                    code = answer.status
            except aiohttp.ClientError:
                code = 0
        self._attempt(guid, code, time.time(), redelivery=True)

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every redelivery started has been attempted."""
        async with asyncio.timeout(timeout):  # a redelivery that never ends fails here
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
