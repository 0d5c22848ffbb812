"""The layers: the pure core (bot/core) imports no storage, network, database or event loop."""

import ast
import pkgutil
import subprocess
import sys

import bot.core
from tests.conftest import ROOT

IMPURE = ("storage", "aiohttp", "slack_sdk", "sqlite3", "asyncio")


def test_the_pure_core_imports_no_storage_network_database_or_event_loop():
    modules = sorted(f"bot.core.{m.name}" for m in pkgutil.iter_modules(bot.core.__path__))
    assert "bot.core.text" in modules and "bot.core.gates" in modules
    # A fresh interpreter: this one has long imported everything.
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += f"print(sorted(m for m in {IMPURE!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_pure_core_and_storage_agree_on_what_is_in_flight():
    # bot/core may not import storage, so the stream keeps its own copy: it must not drift.
    from bot.core.stream import IN_FLIGHT as seen_by_the_map
    from storage.pipeline import IN_FLIGHT as held_by_the_gates

    assert seen_by_the_map == held_by_the_gates


def imported_packages(folder: str) -> dict[str, set[str]]:
    """Return, per module file under `folder`, the top-level packages it imports (anywhere)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_dependencies_point_from_handlers_to_bot_to_storage():
    bot = imported_packages("bot")
    storage = imported_packages("storage")
    assert "bot/engine/ingest.py" in bot and "storage/inbox.py" in storage
    assert {path for path, names in bot.items() if "handlers" in names} == set()
    assert {path for path, names in storage.items() if names & {"bot", "handlers"}} == set()
