"""Load app.yaml and the environment into frozen, validated objects.

Every problem is collected with the key it belongs to, so a person fixing
app.yaml sees all of them at once (`pipeline.stages[1].soak: 'soon' is not a
duration`) instead of one traceback at a time.
"""

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

import yaml

STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SLACK_PRINCIPAL = re.compile(r"^[USW][A-Z0-9]{2,}$")
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KNOWN_EVENTS = (
    "push",
    "status",
    "check_run",
    "check_suite",
    "pull_request",
    "deployment_status",
    "installation",
)


class ConfigError(Exception):
    """app.yaml or the environment is wrong; `problems` names every key at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(text: str) -> int | None:
    """Return the seconds in '15m', '2h', '1h30m' or '1d', or None when it is not one."""
    match = DURATION.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Stage:
    name: str
    auto: bool
    soak: int  # seconds
    approvals: int
    promoters: tuple[str, ...]
    production: bool


@dataclass(frozen=True)
class Pipeline:
    branch: str
    required_checks: tuple[str, ...]
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        """Return the stage called `name`, or None."""
        return next((s for s in self.stages if s.name == name), None)

    def previous(self, stage: Stage) -> Stage | None:
        """Return the stage before `stage`, or None for the first."""
        index = self.stages.index(stage)
        return self.stages[index - 1] if index else None


@dataclass(frozen=True)
class Digest:
    at: time
    timezone: str
    days: tuple[str, ...]
    quiet_when_green: bool


@dataclass(frozen=True)
class Config:
    name: str
    url: str
    events: tuple[str, ...]
    permissions: Mapping[str, str]
    channel: str
    pipeline: Pipeline
    channels: Mapping[str, str]  # repository full name -> channel override
    digest: Digest
    block_when_red: bool
    source: str = "app.yaml"
    redeliver_every: int = 300  # seconds between two sweeps of GitHub's failed deliveries
    team_id: str | None = None  # the one Slack workspace promobot answers (required but in dev)

    def channel_for(self, repo: str) -> str:
        """Return the Slack channel that hears about `repo`."""
        return self.channels.get(repo.lower(), self.channel)


class _Checker:
    """Walk a mapping, collecting problems by key path instead of raising on the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, not {type(value).__name__}")
            return {}
        for name in value:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else str(name), "unknown key")
        return value

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None) -> str:
        value = data.get(key, default)
        if value is None:
            self.fail(path, "required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty string, not {value!r}")
            return ""
        return value.strip()

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {value!r}")
            return default
        return value

    def strings(self, data: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, f"must be a list of strings, not {value!r}")
            return ()
        return tuple(value)


def _stage(check: _Checker, raw: Any, index: int, count: int) -> Stage:
    path = f"pipeline.stages[{index}]"
    data = check.mapping(raw, path, ("name", "auto", "soak", "approvals", "promoters"))
    if raw is not None and not isinstance(raw, dict):
        return Stage("", False, 0, 0, (), False)
    name = check.string(data, "name", f"{path}.name", None)
    if name and not STAGE_NAME.match(name):
        check.fail(f"{path}.name", f"{name!r} must be lowercase letters, digits, - or _")
    production = index == count - 1
    auto = check.boolean(data, "auto", f"{path}.auto", index == 0)
    soak_text = data.get("soak", "0s")
    soak = parse_duration(str(soak_text)) if soak_text is not None else None
    if soak is None or isinstance(soak_text, bool):
        check.fail(f"{path}.soak", f"{soak_text!r} is not a duration (like 15m, 2h, 1d)")
        soak = 0
    approvals = data.get("approvals", 1 if production and count > 1 else 0)
    if not isinstance(approvals, int) or isinstance(approvals, bool) or not 0 <= approvals <= 10:
        check.fail(f"{path}.approvals", f"{approvals!r} is not a whole number from 0 to 10")
        approvals = 0
    promoters = check.strings(data, "promoters", f"{path}.promoters")
    for i, who in enumerate(promoters):
        if not SLACK_PRINCIPAL.match(who):
            check.fail(
                f"{path}.promoters[{i}]", f"{who!r} is not a Slack user (U…) or group (S…) ID"
            )
    return Stage(name, auto, soak, approvals, promoters, production)


def _pipeline(check: _Checker, raw: Any) -> Pipeline:
    data = check.mapping(raw, "pipeline", ("branch", "required_checks", "stages"))
    branch = check.string(data, "branch", "pipeline.branch", "main")
    required = check.strings(data, "required_checks", "pipeline.required_checks")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        check.fail("pipeline.stages", "required: a list of at least one stage")
        raw_stages = []
    stages = tuple(_stage(check, s, i, len(raw_stages)) for i, s in enumerate(raw_stages))
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        if stage.name and stage.name in seen:
            check.fail(f"pipeline.stages[{i}].name", f"{stage.name!r} is used twice")
        seen.add(stage.name)
    return Pipeline(branch, required, stages)


def _digest(check: _Checker, raw: Any) -> Digest:
    data = check.mapping(raw, "digest", ("at", "timezone", "days", "quiet_when_green"))
    at_text = str(data.get("at", "09:00"))
    match = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", at_text)
    if not match:
        check.fail("digest.at", f"{at_text!r} is not a time of day like 09:00")
    at = time(int(match.group(1)), int(match.group(2))) if match else time(9)
    tz = check.string(data, "timezone", "digest.timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        check.fail("digest.timezone", f"{tz!r} is not a known time zone (like Europe/London)")
        tz = "UTC"
    days = check.strings(data, "days", "digest.days") if "days" in data else WEEKDAYS[:5]
    for i, day in enumerate(days):
        if day not in WEEKDAYS:
            check.fail(f"digest.days[{i}]", f"{day!r} is not one of {', '.join(WEEKDAYS)}")
    quiet = check.boolean(data, "quiet_when_green", "digest.quiet_when_green", True)
    return Digest(at, tz, days, quiet)


def _github(check: _Checker, raw: Any) -> tuple[tuple[str, ...], dict[str, str], int]:
    allowed = ("default_events", "default_permissions", "redeliver_every")
    data = check.mapping(raw, "github", allowed)
    events = check.strings(data, "default_events", "github.default_events")
    for i, event in enumerate(events):
        if event not in KNOWN_EVENTS:
            check.fail(f"github.default_events[{i}]", f"promobot does not handle {event!r}")
    perms = data.get("default_permissions") or {}
    if not isinstance(perms, dict) or not all(v in ("read", "write") for v in perms.values()):
        check.fail("github.default_permissions", "must map permission names to read or write")
        perms = {}
    every = _sweep_interval(check, data.get("redeliver_every", "5m"))
    return events, {str(k): str(v) for k, v in perms.items()}, every


def _sweep_interval(check: _Checker, raw: Any) -> int:
    seconds = None if isinstance(raw, bool) else parse_duration(str(raw))
    if seconds is None or not 60 <= seconds <= 86400:
        check.fail("github.redeliver_every", f"{raw!r} is not a duration from 1m to 24h (like 5m)")
        return 300
    return seconds


def _channels(check: _Checker, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        check.fail("repositories", "must map owner/name to its overrides")
        return {}
    channels = {}
    for repo, override in raw.items():
        path = f"repositories.{repo}"
        if not re.match(r"^[\w.-]+/[\w.-]+$", str(repo)):
            check.fail(path, "must be owner/name")
        entry = check.mapping(override, path, ("channel",))
        if "channel" in entry:
            channels[str(repo).lower()] = check.string(entry, "channel", f"{path}.channel", None)
    return channels


def parse_config(raw: Any, source: str = "app.yaml") -> Config:
    """Validate the parsed app.yaml; raise ConfigError listing every problem."""
    check = _Checker()
    top_keys = ("name", "url", "github", "slack", "pipeline", "repositories", "digest")
    data = check.mapping(raw, "", (*top_keys, "pull_requests"))
    if raw is None or not isinstance(raw, dict):
        check.fail("(top)", "app.yaml must be a mapping of settings")
    name = check.string(data, "name", "name", "promobot")
    url = check.string(data, "url", "url", "http://127.0.0.1:8080")
    if url and not re.match(r"^https?://", url):
        check.fail("url", f"{url!r} must start with https:// or http://")
    events, permissions, redeliver_every = _github(check, data.get("github"))
    slack = check.mapping(data.get("slack"), "slack", ("channel", "team_id"))
    channel = check.string(slack, "channel", "slack.channel", None)
    team_id = _team_id(check, slack)
    pipeline = _pipeline(check, data.get("pipeline"))
    channels = _channels(check, data.get("repositories"))
    digest = _digest(check, data.get("digest"))
    prs = check.mapping(data.get("pull_requests"), "pull_requests", ("block_when_red",))
    block = check.boolean(prs, "block_when_red", "pull_requests.block_when_red", True)
    if check.problems:
        raise ConfigError(check.problems)
    return Config(
        name=name,
        url=url.rstrip("/"),
        events=events,
        permissions=permissions,
        channel=channel,
        pipeline=pipeline,
        channels=channels,
        digest=digest,
        block_when_red=block,
        source=source,
        redeliver_every=redeliver_every,
        team_id=team_id,
    )


TEAM_ID = re.compile(r"^T[A-Z0-9]{2,20}$")
TEAM_MISSING = (
    "slack.team_id: required outside --dev: the ID (T…) of the one Slack workspace promobot"
    " answers; requests from any other are refused"
)


def _team_id(check: _Checker, slack: dict[str, Any]) -> str | None:
    if slack.get("team_id") is None:
        return None  # required, but only outside dev mode: see require_team
    team = check.string(slack, "team_id", "slack.team_id", None)
    if team and not TEAM_ID.match(team):
        check.fail("slack.team_id", f"{team!r} is not a Slack workspace ID like T012AB3CD")
    return team or None


def require_team(config: Config) -> None:
    """Raise ConfigError unless `config` names its Slack workspace (every mode but --dev)."""
    if not config.team_id:
        raise ConfigError([TEAM_MISSING])


def load_config(path: str | Path) -> Config:
    """Read and validate app.yaml at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{path}{where}: not valid YAML"]) from None
    return parse_config(raw, source=str(path))


@dataclass(frozen=True)
class Secrets:
    """Credentials and endpoints read from the environment, never from app.yaml."""

    github_app_id: str
    github_private_key: str
    github_webhook_secret: str
    slack_bot_token: str
    slack_signing_secret: str
    github_api_url: str = "https://api.github.com"
    slack_api_url: str = "https://slack.com/api/"
    dashboard_token: str = ""
    # GET /metrics: off unless PROMOBOT_METRICS=1 (open) or PROMOBOT_METRICS_TOKEN (Bearer).
    metrics: bool = False
    metrics_token: str = ""
    dev: bool = False
    # Secrets that signed deliveries before a rotation; refused as stale.
    retired_webhook_secrets: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return f"Secrets(app_id={self.github_app_id!r}, dev={self.dev}, <redacted>)"

    def kept_from_logs(self) -> tuple[str, ...]:
        """Return every secret value here, for the logs to redact wherever it shows."""
        return (
            self.github_webhook_secret,
            self.slack_signing_secret,
            self.slack_bot_token,
            self.github_private_key,
            self.dashboard_token,
            self.metrics_token,
            *self.retired_webhook_secrets,
        )


REQUIRED_SECRETS = (
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_APP_ID",
    "GITHUB_PRIVATE_KEY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
)


def app_file(text: str) -> tuple[str, dict[str, str]]:
    """Read a key file: PEM text, or the JSON that `/github/setup` wrote (key, id and secret)."""
    if not text.lstrip().startswith("{"):
        return text, {}
    try:
        data = json.loads(text)
    except ValueError:
        return "", {}
    if not isinstance(data, dict):
        return "", {}
    found = {
        "GITHUB_APP_ID": data.get("app_id"),
        "GITHUB_WEBHOOK_SECRET": data.get("webhook_secret"),
    }
    return str(data.get("pem") or ""), {k: str(v) for k, v in found.items() if v}


# What `promobot digest` posts with: Slack's bot token alone, no GitHub secret.
DIGEST_SECRETS = ("SLACK_BOT_TOKEN",)
GITHUB_SECRETS = ("GITHUB_WEBHOOK_SECRET", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY")
# Before the GitHub App exists, `serve` runs for /github/setup with Slack's secrets alone.
SETUP_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")


def load_secrets(env: Mapping[str, str], required: tuple[str, ...] = REQUIRED_SECRETS) -> Secrets:
    """Read the secrets from `env`; raise ConfigError naming every missing one of `required`."""
    problems = []
    key = env.get("GITHUB_PRIVATE_KEY", "")
    key_file = env.get("GITHUB_PRIVATE_KEY_FILE", "")
    if not key and key_file and "GITHUB_PRIVATE_KEY" in required:
        try:
            key = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"GITHUB_PRIVATE_KEY_FILE: cannot read {key_file} ({exc.strerror})")
    key, from_file = app_file(key)
    values = {name: (env.get(name) or from_file.get(name, "")).strip() for name in REQUIRED_SECRETS}
    values["GITHUB_PRIVATE_KEY"] = key.strip()
    for name in required:
        if not values[name] and not (name == "GITHUB_PRIVATE_KEY" and key_file):
            hint = " (or GITHUB_PRIVATE_KEY_FILE)" if name == "GITHUB_PRIVATE_KEY" else ""
            problems.append(f"{name}{hint}: missing from the environment")
    if problems:
        raise ConfigError(problems)
    return Secrets(
        github_app_id=values["GITHUB_APP_ID"],
        github_private_key=values["GITHUB_PRIVATE_KEY"],
        github_webhook_secret=values["GITHUB_WEBHOOK_SECRET"],
        slack_bot_token=values["SLACK_BOT_TOKEN"],
        slack_signing_secret=values["SLACK_SIGNING_SECRET"],
        github_api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        slack_api_url=env.get("SLACK_API_URL", "https://slack.com/api/"),
        dashboard_token=env.get("PROMOBOT_DASHBOARD_TOKEN", ""),
        metrics=env.get("PROMOBOT_METRICS", "").strip() == "1",
        metrics_token=env.get("PROMOBOT_METRICS_TOKEN", ""),
    )
