"""app.yaml validation, the environment, the manifests and the promobot command line."""

import copy
import json
import subprocess
import sys
from importlib.metadata import EntryPoints
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.cli import serve as cli_serve
from bot.config import ConfigError, load_secrets, parse_config
from handlers.github import router
from tests.conftest import ROOT

GOOD = yaml.safe_load((ROOT / "app.yaml").read_text())


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_the_shipped_app_yaml_is_valid_and_has_the_documented_defaults():
    config = parse_config(GOOD)
    pasty, baklava, dumpling = config.pipeline.stages
    assert (pasty.auto, baklava.auto, dumpling.auto) == (True, False, False)
    assert (baklava.soak, dumpling.soak) == (15 * 60, 30 * 60)
    assert (pasty.approvals, dumpling.approvals) == (0, 1)
    assert dumpling.production and not baklava.production
    assert config.channel_for("ACME/Mingle") == "#mingle-releases"
    assert config.channel_for("acme/other") == "#releases"


def test_every_problem_is_reported_at_once_each_naming_its_key():
    raw = yaml.safe_load((ROOT / "app.yaml").read_text())
    raw["pipeline"]["stages"][0].pop("name")
    raw["pipeline"]["stages"][1]["soak"] = "soon"
    raw["pipeline"]["stages"][2]["promoters"] = ["bob"]
    raw["digest"]["timezone"] = "Mars/Olympus"
    raw["digest"]["days"] = ["mon", "caturday"]
    raw["slack"]["chanel"] = "#typo"
    assert problems_of(raw) == [
        "slack.chanel: unknown key",
        "pipeline.stages[0].name: required",
        "pipeline.stages[1].soak: 'soon' is not a duration (like 15m, 2h, 1d)",
        "pipeline.stages[2].promoters[0]: 'bob' is not a Slack user (U…) or group (S…) ID",
        "digest.timezone: 'Mars/Olympus' is not a known time zone (like Europe/London)",
        "digest.days[1]: 'caturday' is not one of mon, tue, wed, thu, fri, sat, sun",
    ]


def test_check_config_prints_a_summary_or_every_error_and_exits_1(tmp_path, capsys):
    assert main(["check-config", "--config", str(ROOT / "app.yaml")]) == 0
    assert "pasty (auto) → baklava, soak 15m → dumpling, soak 30m" in capsys.readouterr().out
    bad = tmp_path / "app.yaml"
    bad.write_text("pipeline:\n  stages:\n    - {name: pasty}\n    - {name: pasty, soak: soon}\n")
    assert main(["check-config", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error: slack.channel: required" in err
    assert "error: pipeline.stages[1].soak: 'soon' is not a duration" in err
    assert "error: pipeline.stages[1].name: 'pasty' is used twice" in err
    assert "Traceback" not in err
    bad.write_text("pipeline: [unclosed\n")
    assert main(["check-config", "--config", str(bad)]) == 1
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["check-config", "--config", str(tmp_path / "missing.yaml")]) == 1


def test_serve_refuses_to_start_naming_every_missing_secret(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "GITHUB_APP_ID": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--config",
            str(ROOT / "app.yaml"),
            "--db",
            str(tmp_path / "x.db"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    for name in (
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_PRIVATE_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
    ):
        assert f"{name}" in result.stderr
    assert "GITHUB_APP_ID" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path(tmp_path / "x.db").exists()


def test_the_private_key_may_come_from_a_file(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    env = {
        "GITHUB_APP_ID": "1",
        "GITHUB_PRIVATE_KEY_FILE": str(key),
        "SLACK_BOT_TOKEN": "x",
        "GITHUB_WEBHOOK_SECRET": "s",
        "SLACK_SIGNING_SECRET": "t",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
    }
    secrets = load_secrets(env)
    assert secrets.github_private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert secrets.github_api_url == "https://ghe.example.com/api/v3"
    assert "abc" not in repr(secrets)


def test_github_manifest_points_at_the_webhook_route(capsys):
    assert (
        main(
            [
                "manifest",
                "github",
                "--config",
                str(ROOT / "app.yaml"),
                "--url",
                "https://bot.example.com/",
            ]
        )
        == 0
    )
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["hook_attributes"]["url"] == "https://bot.example.com/github/webhooks"
    assert manifest["url"] == "https://bot.example.com"
    assert manifest["public"] is False
    assert manifest["default_events"] == GOOD["github"]["default_events"]
    assert manifest["default_permissions"] == GOOD["github"]["default_permissions"]


def test_slack_manifest_has_both_commands_and_interactivity(capsys):
    assert (
        main(
            [
                "manifest",
                "slack",
                "--config",
                str(ROOT / "app.yaml"),
                "--url",
                "https://bot.example.com",
            ]
        )
        == 0
    )
    manifest = yaml.safe_load(capsys.readouterr().out)
    commands = {c["command"]: c["url"] for c in manifest["features"]["slash_commands"]}
    assert commands == {
        "/ship": "https://bot.example.com/slack/events",
        "/promote": "https://bot.example.com/slack/events",
    }
    settings = manifest["settings"]["interactivity"]
    assert settings == {"is_enabled": True, "request_url": "https://bot.example.com/slack/events"}
    assert {"chat:write", "commands", "usergroups:read"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )


def test_app_yaml_events_equal_the_events_the_router_handles():
    routed = set(router._shallow_routes) | set(router._deep_routes)
    # installation events reach every GitHub App whether subscribed or not.
    assert set(GOOD["github"]["default_events"]) == routed - {"installation"}


def test_every_documented_verb_has_a_listener_and_the_manifest_names_both_commands(capsys):
    from bot.core.commands import USAGE
    from bot.ship.dispatch import VERBS

    assert set(VERBS) | {"help"} == set(USAGE)
    main(["manifest", "slack", "--config", str(ROOT / "app.yaml")])
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == {"/ship", "/promote"}


def test_the_github_app_asks_only_for_the_permissions_it_uses(capsys):
    main(["manifest", "github", "--config", str(ROOT / "app.yaml")])
    permissions = json.loads(capsys.readouterr().out)["default_permissions"]
    # Writes: commit statuses (the PR check) and Deployments; check_run/check_suite webhooks
    # need checks: read only, since promobot never creates a check run.
    assert {k for k, v in permissions.items() if v == "write"} == {"statuses", "deployments"}
    assert permissions["checks"] == "read"


def test_the_redelivery_sweep_interval_is_a_checked_duration():
    assert parse_config(GOOD).redeliver_every == 300
    for bad in ("soon", "10s", "2d", True):
        raw = copy.deepcopy(GOOD)
        raw["github"]["redeliver_every"] = bad
        with pytest.raises(ConfigError) as caught:
            parse_config(raw)
        assert caught.value.problems == [
            f"github.redeliver_every: {bad!r} is not a duration from 1m to 24h (like 5m)"
        ]
    raw = copy.deepcopy(GOOD)
    raw["github"]["redeliver_every"] = "1h"
    assert parse_config(raw).redeliver_every == 3600


def test_serve_from_an_uninstalled_checkout_says_how_to_install(tmp_path, monkeypatch):
    # An uninstalled checkout has no entry point for the handlers: the lookup finds none.
    monkeypatch.setattr(cli_serve, "entry_points", lambda **_: EntryPoints(()))
    for name, value in {
        "GITHUB_APP_ID": "1",
        "GITHUB_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
        "SLACK_BOT_TOKEN": "x",
        "GITHUB_WEBHOOK_SECRET": "s",
        "SLACK_SIGNING_SECRET": "t",
    }.items():
        monkeypatch.setenv(name, value)
    args = ["serve", "--config", str(ROOT / "app.yaml"), "--db", str(tmp_path / "x.db")]
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert "pip install -e ." in str(stopped.value.code)
    assert "make run" in str(stopped.value.code)
    assert not (tmp_path / "x.db").exists()
