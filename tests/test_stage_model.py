"""The stages as a model: random days of pushes, CI, promotions, approvals, locks, rollbacks,
deployment outcomes and time, driven through the real promobot (HTTP in, fake Slack and
GitHub out, a fake clock), with the pipeline's invariants checked after every step.

`make test` runs MODEL_EXAMPLES days of up to MODEL_STEPS steps; `make chaos` runs more.
"""

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bot.app import create_app
from bot.config import Secrets, load_config
from bot.core.clock import FakeClock
from bot.dev.fakes import FakeGitHub, FakeSlack
from handlers import inbound
from tests.conftest import (
    ROOT,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    Harness,
    push_payload,
    status_payload,
)
from tests.pipeline_driver import Pipeline, deployment_status_payload, sha

# Each example starts a promobot and plays up to MODEL_STEPS steps, each a real round trip.
MODEL_EXAMPLES, MODEL_STEPS = 10, 25
CHAOS_EXAMPLES, CHAOS_STEPS = 100, 50
STAGES = ("pasty", "baklava", "dumpling")
PEOPLE = ("U012ABC", "U0GROUP", "U111")  # a listed promoter, a usergroup's member, anyone
REFUSED = (":no_entry:", ":warning:", ":information_source:")
# What promobot writes: a refused command must not make any of these calls.
WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open")
PROMOTION_ACTIONS = {
    "promotion.requested",
    "promotion.queued",
    "promotion.approved",
    "promotion.auto",
    "promotion.expired",
    "promotion.cancelled",
    "promotion.rejected",
    "promotion.superseded",
    "rollback",
}
DASHBOARD = {"Authorization": "Bearer model-dashboard"}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


def promotion_of(row: dict[str, Any]) -> int | None:
    """Return the promotion an event-log row names in its detail."""
    detail = json.loads(row["detail"] or "{}")
    return detail.get("promotion") if isinstance(detail, dict) else None


class StageModel(RuleBasedStateMachine):
    """One promobot per example; rules act as people and GitHub; invariants read its tables."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="stage-model-"))
        self.clock = FakeClock()
        self.builds = 0
        self.ci: dict[int, str] = {}
        self.live: dict[str, int] = {}  # stage -> build the model last saw deployed there
        self.seen_states: dict[int, str] = {}
        self.seen_log = 0
        self.run(self.start())

    def run(self, job: Any) -> Any:
        return self.loop.run_until_complete(job)

    async def start(self) -> None:
        self.slack, self.github = FakeSlack(), FakeGitHub()
        self.slack.usergroups["S0RELEASE"] = ["U0GROUP"]
        self.servers = [TestServer(self.slack.app()), TestServer(self.github.app())]
        for fake, server in zip((self.slack, self.github), self.servers, strict=True):
            await server.start_server()
            fake.server = server
        secrets = Secrets(
            github_app_id="12345",
            github_private_key=KEY.decode(),
            github_webhook_secret=WEBHOOK_SECRET,
            slack_bot_token=FakeSlack.TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            github_api_url=str(self.github.server.make_url("")).rstrip("/"),
            slack_api_url=str(self.slack.server.make_url("/api/")),
            dashboard_token=DASHBOARD["Authorization"].split()[1],
        )
        db_path = self.folder / "promobot.db"
        config = load_config(ROOT / "app.yaml")
        app = create_app(
            config,
            secrets,
            db_path=db_path,
            inbound=inbound(),
            clock=self.clock,
            digest_schedule=False,
            redeliver=False,
        )
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        self.bot = Pipeline(Harness(self.client, db_path, self.slack, self.github), self.clock)

    def teardown(self) -> None:
        async def stop() -> None:
            await self.client.close()
            for server in self.servers:
                await server.close()

        self.run(stop())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # The rules: what people and GitHub do.

    def writes(self) -> list[str]:
        slack = [f"{c.method} {c.body.get('text', '')[:60]}" for c in self.slack.calls]
        github = [c.method for c in self.github.calls if not c.method.startswith("GET")]
        return [c for c in slack if c.split()[0] in WRITES] + github

    def ship(self, text: str, user: str) -> str:
        self.run(self.bot.h.settle())  # the sweep may have woken since the last step
        before = self.writes()
        answer = self.run(self.bot.ship(text, user=user))
        refused = answer.startswith(REFUSED)
        if refused:
            made = self.writes()[len(before) :]
            assert made == [], f"{text!r} was refused ({answer}) but called out: {made}"
        event(f"{text.split()[0]} {'refused' if refused else 'accepted'}")
        return answer

    @initialize()
    def a_morning(self) -> None:
        """Start from a working pipeline: #1 in baklava asked for dumpling, #2 in pasty."""
        for _ in range(2):
            self.push("success")
            (flight,) = self.flights()
            self.end(flight, "success")
        self.run(self.bot.wait(16 * 60))
        self.ship("promote #1 baklava", "U111")
        (flight,) = self.flights()
        self.end(flight, "success")
        self.run(self.bot.wait(31 * 60))
        self.ship("promote #1 dumpling", "U012ABC")

    def open_promotions(self) -> list[int]:
        rows = self.rows("SELECT id FROM promotions WHERE state IN ('waiting', 'queued')")
        return [r["id"] for r in rows]

    def flights(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT d.github_id, d.promotion_id, d.stage, b.number FROM deployments d"
            " JOIN builds b ON b.id = d.build_id WHERE d.github_id IS NOT NULL"
            " AND d.state IN ('requested', 'queued', 'in_progress') ORDER BY d.id"
        )

    def report(self, n: int, state: str) -> None:
        self.run(self.bot.h.deliver("status", status_payload(sha(n), state=state)))
        self.run(self.bot.h.settle())
        self.ci[n] = state

    @rule(ci=st.sampled_from(["success", "success", "failure", "pending"]))
    def push(self, ci: str) -> None:
        self.builds += 1
        n = self.builds
        self.run(self.bot.h.deliver("push", push_payload(sha(n), message=f"Change {n}")))
        self.run(self.bot.h.settle())
        self.ci[n] = "pending"
        if ci != "pending":
            self.report(n, ci)

    @precondition(lambda self: "pending" in self.ci.values())
    @rule(data=st.data(), green=st.booleans())
    def ci_reports(self, data: st.DataObject, green: bool) -> None:
        n = data.draw(st.sampled_from([b for b, s in self.ci.items() if s == "pending"]))
        self.report(n, "success" if green else "failure")

    @precondition(lambda self: self.builds > 0)
    @rule(data=st.data(), stage=st.sampled_from(STAGES), user=st.sampled_from(PEOPLE))
    def promote(self, data: st.DataObject, stage: str, user: str) -> None:
        n = data.draw(st.integers(1, self.builds), label="build")
        force = data.draw(st.sampled_from([False, False, False, True]), label="force")
        self.ship(f"promote #{n} {stage}" + (' --force "model says so"' if force else ""), user)

    def decide_on(self, data: st.DataObject, verb: str, user: str) -> None:
        opened = self.open_promotions()
        number = data.draw(st.sampled_from(opened) if opened else st.integers(1, 9), label="id")
        self.ship(f"{verb} {number}", user)

    @rule(data=st.data(), user=st.sampled_from(PEOPLE))
    def approve(self, data: st.DataObject, user: str) -> None:
        self.decide_on(data, "approve", user)

    @rule(data=st.data(), user=st.sampled_from(PEOPLE))
    def reject(self, data: st.DataObject, user: str) -> None:
        opened = self.open_promotions()
        number = data.draw(st.sampled_from(opened) if opened else st.integers(1, 9), label="id")
        self.ship(f'reject {number} "not today"', user)

    @rule(data=st.data(), user=st.sampled_from(PEOPLE))
    def cancel(self, data: st.DataObject, user: str) -> None:
        self.decide_on(data, "cancel", user)

    @rule(
        stage=st.sampled_from(STAGES), user=st.sampled_from(PEOPLE), hours=st.sampled_from([0, 1])
    )
    def lock(self, stage: str, user: str, hours: int) -> None:
        self.ship(f'lock {stage} "model"' + (f" for {hours}h" if hours else ""), user)

    @rule(stage=st.sampled_from(STAGES), user=st.sampled_from(PEOPLE))
    def unlock(self, stage: str, user: str) -> None:
        self.ship(f"unlock {stage}", user)

    @rule(data=st.data(), stage=st.sampled_from(STAGES), user=st.sampled_from(PEOPLE))
    def rollback(self, data: st.DataObject, stage: str, user: str) -> None:
        to = data.draw(st.none() | st.integers(1, max(1, self.builds)), label="to")
        force = data.draw(st.booleans(), label="force")
        target = f" to #{to}" if to else ""
        forced = ' --force "model says so"' if force else ""
        self.ship(f"rollback {stage}{target}{forced}", user)

    @precondition(lambda self: bool(self.flights()))
    @rule(data=st.data(), ok=st.sampled_from([True, True, True, False]))
    def deployment_ends(self, data: st.DataObject, ok: bool) -> None:
        row = data.draw(st.sampled_from(self.flights()), label="deployment")
        self.end(row, "success" if ok else "failure")

    def end(self, row: dict[str, Any], state: str) -> None:
        body = deployment_status_payload(row["github_id"], state, row["stage"], row["promotion_id"])
        self.run(self.bot.h.deliver("deployment_status", body))
        self.run(self.bot.h.settle())
        if state == "success":
            self.live[row["stage"]] = row["number"]
        event(f"deployment to {row['stage']} {state}")

    @rule(minutes=st.sampled_from([1, 10, 16, 31, 61, 24 * 60 + 1]))
    def time_passes(self, minutes: int) -> None:
        self.run(self.bot.wait(minutes * 60))

    # The invariants, read from the tables after every step.

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        return self.bot.h.rows(sql, params)

    @invariant()
    def a_build_enters_a_stage_only_through_the_one_before_unless_forced(self) -> None:
        for d in self.rows(
            "SELECT d.*, p.forced_reason, p.rollback, p.requested_by AS asker, b.ci_state"
            " FROM deployments d JOIN promotions p ON p.id = d.promotion_id"
            " JOIN builds b ON b.id = d.build_id"
        ):
            if d["forced_reason"]:
                forced = self.rows(
                    "SELECT * FROM event_log WHERE forced = 1 AND build_id = ? AND stage = ?"
                    " AND actor = ? AND reason LIKE ?",
                    [d["build_id"], d["stage"], d["asker"], "%model says so%"],
                )
                assert forced, f"deployment {d['id']} was forced but the log does not say so"
                continue
            if d["rollback"]:  # back to a build that was live in this very stage before
                earlier = self.rows(
                    "SELECT 1 FROM deployments WHERE build_id = ? AND stage = ? AND id < ?"
                    " AND succeeded_at IS NOT NULL",
                    [d["build_id"], d["stage"], d["id"]],
                )
                assert earlier, f"rollback {d['id']} went to a build never live in {d['stage']}"
                continue
            index = STAGES.index(d["stage"])
            if index == 0:
                assert d["ci_state"] == "success", f"a {d['ci_state']} build entered pasty"
                continue
            before = self.rows(
                "SELECT 1 FROM deployments WHERE build_id = ? AND stage = ?"
                " AND succeeded_at IS NOT NULL AND succeeded_at <= ?",
                [d["build_id"], STAGES[index - 1], d["created_at"]],
            )
            assert before, f"deployment {d['id']} skipped {STAGES[index - 1]}"

    @invariant()
    def one_deployment_in_flight_and_one_waiting_promotion_per_stage(self) -> None:
        now = self.clock.now()
        for stage in STAGES:
            flights = self.rows(
                "SELECT id FROM deployments WHERE stage = ? AND state IN"
                " ('requested', 'queued', 'in_progress') AND updated_at > ?",
                [stage, now - 3600],
            )
            assert len(flights) <= 1, f"{len(flights)} deployments in flight into {stage}"
            waiting = self.rows(
                "SELECT id FROM promotions WHERE stage = ? AND state IN ('waiting', 'queued')",
                [stage],
            )
            assert len(waiting) <= 1, f"{len(waiting)} promotions wait for {stage}"

    @invariant()
    def a_build_rolled_back_out_never_re_enters_automatically(self) -> None:
        again = self.rows(
            "SELECT d.id FROM deployments d JOIN promotions r ON r.rollback = 1"
            " AND r.stage = d.stage AND r.replaces_build_id = d.build_id"
            " WHERE d.requested_by = 'promobot'"
            " AND d.id > (SELECT min(id) FROM deployments WHERE promotion_id = r.id)"
        )
        assert again == [], f"rolled-back builds re-entered automatically: {again}"

    @invariant()
    def approvals_are_others_and_bound_to_their_build_and_stage(self) -> None:
        own = self.rows(
            "SELECT a.* FROM approvals a JOIN promotions p ON p.id = a.promotion_id"
            " WHERE a.user_id = p.requested_by"
        )
        assert own == [], "a requester approved their own promotion"
        unbound = self.rows(
            "SELECT d.id FROM deployments d JOIN promotions p ON p.id = d.promotion_id"
            " WHERE d.build_id != p.build_id OR d.stage != p.stage OR d.repo_id != p.repo_id"
        )
        assert unbound == [], "a promotion deployed another build or stage"

    async def dashboard(self) -> str:
        return await (await self.client.get("/", headers=DASHBOARD)).text()

    @invariant()
    def the_live_build_is_the_last_successful_deployment(self) -> None:
        # The model's truth is the deployment that reported success last; status and the
        # dashboard must both name it, even when two successes share a clock reading.
        status = self.run(self.bot.ship("status", user="U111"))
        page = self.run(self.dashboard())
        for stage in STAGES:
            rows = self.rows(
                "SELECT b.number FROM deployments d JOIN builds b ON b.id = d.build_id"
                " WHERE d.stage = ? AND d.success_seq IS NOT NULL"
                " ORDER BY d.success_seq DESC LIMIT 1",
                [stage],
            )
            assert (rows[0]["number"] if rows else None) == self.live.get(stage)
            shown = f"• *{stage}*: #{self.live[stage]} `" if stage in self.live else "nothing"
            assert shown in status, f"status does not show #{self.live.get(stage)} in {stage}"
            card = page.split(f'data-stage="{stage}"')[1].split('class="stage"')[0]
            marked = f"<strong>#{self.live[stage]}</strong>" if stage in self.live else "no build"
            assert marked in card, f"the dashboard does not show #{self.live.get(stage)} in {stage}"

    @invariant()
    def every_state_change_has_one_log_row(self) -> None:
        log = self.rows("SELECT * FROM event_log WHERE id > ? ORDER BY id", [self.seen_log])
        if log:
            self.seen_log = log[-1]["id"]
        states = {r["id"]: r["state"] for r in self.rows("SELECT id, state FROM promotions")}
        for promotion, state in states.items():
            rows = [
                r for r in log if r["action"] in PROMOTION_ACTIONS and promotion_of(r) == promotion
            ]
            moved = self.seen_states.get(promotion) != state
            assert len(rows) == int(moved), (
                f"promotion {promotion} became {state}: log rows {[r['action'] for r in rows]}"
            )
        self.seen_states = states


StageModel.TestCase.settings = settings(
    max_examples=MODEL_EXAMPLES,
    stateful_step_count=MODEL_STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStageModel = pytest.mark.timeout(900)(StageModel.TestCase)


class LongStageModel(StageModel):
    """The same model, for `make chaos`: more and longer days."""


LongStageModel.TestCase.settings = settings(
    max_examples=CHAOS_EXAMPLES,
    stateful_step_count=CHAOS_STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLongStageModel = pytest.mark.timeout(7200)(pytest.mark.slow(LongStageModel.TestCase))
