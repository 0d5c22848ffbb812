"""The services one running promobot is made of, built once by the app factory."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config, Secrets
from bot.core.clock import Clock
from bot.engine.metrics import Metrics
from bot.engine.supervisor import Supervisor
from storage import Store

if TYPE_CHECKING:  # the worker and relay import this module's neighbours
    from bot.dev.mode import DevRuntime
    from bot.engine.github import GitHubClient
    from bot.engine.names import Names
    from bot.engine.relay import Relay
    from bot.engine.worker import Worker


@dataclass
class Services:
    """Everything a handler may use, injected rather than imported."""

    config: Config
    secrets: Secrets
    store: Store
    clock: Clock
    worker: "Worker"
    relay: "Relay"
    github: "GitHubClient"
    slack: AsyncWebClient
    supervisor: Supervisor
    metrics: Metrics = field(default_factory=Metrics)
    dev: "DevRuntime | None" = None  # set only by `promobot serve --dev`
    names: "Names | None" = None  # Slack display names; the app factory sets it
    # Where acknowledged deliveries are stored when a processing process applies them.
    intake: Store | None = None
