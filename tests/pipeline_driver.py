"""Drive promotion tests: green builds, deployment statuses, /ship commands, button clicks."""

from typing import Any

from bot.core.clock import FakeClock
from bot.dev import forms, payloads
from bot.engine.approval_sweep import tick
from tests.conftest import TEAM, Harness, push_payload, status_payload
from tests.waiting import wait_for


def sha(n: int) -> str:
    """Return a distinct full sha for build `n`."""
    return f"{n:07x}" + "d" * 33


REPO_URL = "https://github.com/Codertocat/Hello-World"


def commit(n: int, i: int, title: str, login: str) -> dict:
    """Return commit `i` of build `n`'s push, by `login`."""
    return payloads.commit(
        f"{n:04x}{i:03x}" + "c" * 33, f"{title}\n\nThe body says more.", author=login
    )


async def push(bot: "Pipeline", n: int, commits: list[dict]) -> None:
    """Push build `n` carrying `commits` (oldest first; the head is build n's sha) and pass CI."""
    data = push_payload(sha(n), message=f"Change {n}")
    head = dict(commits[-1], id=sha(n)) if commits else data["head_commit"]
    data["commits"] = [*commits[:-1], head]
    data["head_commit"] = head
    await bot.h.deliver("push", data)
    await bot.h.deliver("status", status_payload(sha(n), state="success"))
    await bot.h.settle()


def deployment_status_payload(
    github_id: int, state: str, environment: str, promotion: int | None
) -> dict:
    """GitHub's report on deployment `github_id`, carrying the promotion promobot created it for."""
    payload = {"promotion": promotion} if promotion is not None else {}
    return payloads.deployment_status(github_id, state, environment, payload=payload)


class Pipeline:
    """One promobot with a fake clock, driven like people and GitHub drive it."""

    def __init__(self, harness: Harness, clock: FakeClock) -> None:
        self.h = harness
        self.clock = clock
        relay = harness.services.relay
        if hasattr(relay, "pace"):  # a relay paced per instance: these tests need no pacing
            relay.pace = {}
        self.slack = harness.slack
        self.github = harness.github

    async def green(self, n: int, *, state: str = "success") -> None:
        """Push build `n` and report its CI state."""
        await self.h.deliver("push", push_payload(sha(n), message=f"Change {n}"))
        await self.h.deliver("status", status_payload(sha(n), state=state))
        await self.h.settle()

    def deployments(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Return the Deployments GitHub was asked to create, oldest first."""
        found = sorted(self.github.deployments.values(), key=lambda d: d["id"])
        return [d for d in found if stage is None or d["environment"] == stage]

    async def report(self, stage: str, state: str = "success", *, github_id: int | None = None):
        """Report the newest Deployment into `stage` as `state`, as GitHub would."""
        deployment = self.deployments(stage)[-1]
        body = deployment_status_payload(
            github_id or deployment["id"], state, stage, deployment["payload"]["promotion"]
        )
        response = await self.h.deliver("deployment_status", body)
        assert response.status == 202
        await self.h.settle()

    async def ship(self, text: str, *, user: str = "U012ABC", command: str = "/ship") -> str:
        """Type a slash command; return the ephemeral answer in Slack's acknowledgement."""
        response = await self.h.slash(text, user=user, command=command)
        assert response.status == 200
        answer = await response.text()
        await self.h.settle()
        return answer

    async def click(self, action: str, promotion: int | str, *, user: str) -> str:
        """Click Approve or Reject on an approval message; return the latest ephemeral answer."""
        # The click comes from the approval message promobot posted for the promotion.
        posted = self.h.rows(
            "SELECT channel_id, ts FROM slack_messages WHERE key = ?", [f"promotion:{promotion}"]
        )
        channel, ts = (posted[0]["channel_id"], posted[0]["ts"]) if posted else ("C0RELEASES", "1")
        payload = forms.block_actions(
            user=user,
            user_name=user.lower(),
            channel_id=channel,
            message={"ts": ts, "text": f"Promotion {promotion}"},
            action={"action_id": f"promotion.{action}", "value": str(promotion)},
            block_id=f"promotion:{promotion}",
            response_url=str(self.slack.server.make_url("/api/response_url")),
            team=TEAM,
        )
        opened = len(self.slack.of("views.open"))
        response = await self.h.interact(payload)
        assert response.status == 200
        if action == "reject":  # the modal opens after the acknowledgement
            await wait_for(lambda: len(self.slack.of("views.open")) > opened, what="the modal")
            return ""
        await self.h.settle()
        return self.told(user)

    def told(self, user: str) -> str:
        """Return the latest ephemeral message `user` was shown."""
        return [c for c in self.slack.of("chat.postEphemeral") if c.body["user"] == user][-1].body[
            "text"
        ]

    async def submit_reject(self, reason: str, *, user: str) -> str:
        """Submit the newest reject modal with `reason`; return the ephemeral answer."""
        view = self.slack.views[-1]
        payload = forms.view_submission(
            user=user, user_name=user.lower(), view=view, reason=reason, team=TEAM
        )
        response = await self.h.interact(payload)
        assert response.status == 200
        await self.h.settle()
        return self.told(user)

    async def wait(self, seconds: float) -> None:
        """Let `seconds` pass, and the sweep wake as it does when a soak ends or a wait expires."""
        self.clock.advance(seconds)
        await tick(self.h.services)
        await self.h.settle()

    def channel_texts(self) -> list[str]:
        """Return the texts posted to the channel (parents), oldest first."""
        return [c.body.get("text") or "" for c in self.slack.posts()]

    def approval_message(self, promotion: int) -> dict[str, Any]:
        """Return the approval message of a promotion as Slack now shows it."""
        return self.message(f"promotion:{promotion}")

    def message(self, key: str) -> dict[str, Any]:
        """Return a keyed message (build:1, promotion:3) as Slack now shows it."""
        (row,) = self.h.rows("SELECT channel_id, ts FROM slack_messages WHERE key = ?", [key])
        return self.slack.messages[(row["channel_id"], row["ts"])]

    def log(self, *actions: str) -> list[dict[str, Any]]:
        """Return event log entries (optionally only some actions), oldest first."""
        rows = self.h.rows("SELECT * FROM event_log ORDER BY id")
        return [r for r in rows if not actions or r["action"] in actions]
