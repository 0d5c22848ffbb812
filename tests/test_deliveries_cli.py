"""`promobot deliveries`: GitHub's attempts against promobot's store; retry and drop a failure."""

import os

from bot.dev.fakes import FakeGitHub
from tests.conftest import push_payload, run_cli, status_payload


def app_env(fake_github: FakeGitHub, private_key: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "GITHUB_APP_ID": "12345",
        "GITHUB_PRIVATE_KEY": private_key,
        "GITHUB_API_URL": str(fake_github.server.make_url("")).rstrip("/"),
    }


def line_of(out: str, guid: str) -> str:
    (line,) = [x for x in out.splitlines() if guid in x]
    return line


async def test_the_list_shows_both_sides_and_failed_deliveries_are_retried_or_dropped(
    make_harness, fake_github, private_key
):
    harness = await make_harness()
    broken = status_payload()
    del broken["sha"]  # the handlers cannot read it: kept as failed
    await harness.deliver("status", broken, delivery_id="guid-broken")
    await harness.deliver("push", push_payload(), delivery_id="guid-push")
    await harness.settle()
    await harness.client.close()
    hooks = fake_github.hooks
    hooks.add("status", broken, status_code=202, guid="guid-broken")
    hooks.add("push", push_payload(), status_code=202, guid="guid-push")
    hooks.add("push", push_payload("9" * 40), status_code=502, guid="guid-missed")
    env, db = app_env(fake_github, private_key), str(harness.db_path)

    code, out, err = await run_cli("deliveries", "--db", db, "--since", "2h", env=env)
    assert (code, err) == (0, "")
    assert "202 OK" in line_of(out, "guid-push") and line_of(out, "guid-push").endswith("done")
    assert "202 OK" in line_of(out, "guid-broken")
    assert "failed: bot.engine.worker.Unreadable: KeyError" in line_of(out, "guid-broken")
    missed = line_of(out, "guid-missed")
    assert "failed x1 (Invalid HTTP Response: 502)" in missed and missed.endswith("not stored")
    assert "3 delivery(ies) in all" in out and "1 not stored" in out
    code, out, _ = await run_cli("deliveries", "--failed", "--db", db, env=env)
    assert "guid-push" not in out and "guid-broken" in out and "guid-missed" in out

    code, out, _ = await run_cli("deliveries", "retry", "guid-broken", "--db", db, env=env)
    assert code == 0 and "pending again" in out
    assert harness.rows("SELECT state FROM deliveries WHERE delivery_id = 'guid-broken'") == [
        {"state": "pending"}
    ]
    code, _, err = await run_cli("deliveries", "drop", "guid-broken", "--db", db, env=env)
    assert code == 1 and "is pending, not failed: nothing changed" in err
    code, _, err = await run_cli("deliveries", "drop", "guid-push", "--db", db, env=env)
    assert code == 1 and "is done, not failed" in err
    code, _, err = await run_cli("deliveries", "retry", "no-such", "--db", db, env=env)
    assert code == 1 and "no delivery no-such is stored" in err

    again = await make_harness(db_path=harness.db_path)  # processed again: it fails again
    await again.settle()
    await again.client.close()
    code, out, _ = await run_cli("deliveries", "drop", "guid-broken", "--db", db, env=env)
    assert code == 0 and "dropped" in out
    log = harness.rows(
        "SELECT actor, action, reason, detail FROM event_log WHERE action LIKE 'delivery.%'"
    )
    assert [e["action"] for e in log] == ["delivery.retried", "delivery.dropped"]
    assert log[0]["actor"].startswith("cli:") and "KeyError" in log[0]["reason"]
    assert '"delivery": "guid-broken"' in log[1]["detail"]
    # Dropped, it is still stored: GitHub redelivering it changes nothing.
    last = await make_harness(db_path=harness.db_path)
    answer = await last.deliver("status", broken, delivery_id="guid-broken")
    assert (await answer.json())["stored"] == "already stored"
    await last.settle()
    assert last.rows("SELECT state FROM deliveries WHERE delivery_id = 'guid-broken'") == [
        {"state": "dropped"}
    ]


async def test_without_app_credentials_only_promobots_side_is_shown(harness):
    await harness.deliver("push", push_payload(), delivery_id="guid-push")
    await harness.settle()
    env = {"PATH": os.environ["PATH"]}
    code, out, err = await run_cli("deliveries", "--db", str(harness.db_path), env=env)
    assert code == 0 and "GITHUB_APP_ID: missing from the environment" in err
    assert "not in GitHub's list" in line_of(out, "guid-push")
    code, _, err = await run_cli("deliveries", "--since", "soon", env=env)
    assert code == 2 and "'soon' is not a duration" in err
