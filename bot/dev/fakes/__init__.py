"""One fake Slack and one fake GitHub, for dev mode, the tests and the benchmarks."""

from bot.dev.fakes.github import FakeGitHub
from bot.dev.fakes.recorder import Call, Failure
from bot.dev.fakes.slack import FakeSlack

__all__ = ["Call", "Failure", "FakeGitHub", "FakeSlack"]
