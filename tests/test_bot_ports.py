"""The bot's narrow ports: each module that reads the bot's services declares, as a `typing.Protocol` of read-only
properties, the fields of `Services` it reads (`PeoplePorts`, `PathwayPorts`…), and each command family's handlers
take `Context[<its port>]`. `Services` must satisfy every port: checked by mypy (`_services_satisfy`, this file is in
`[tool.mypy] files`), and here at run time, so a port asking for a field `Services` lacks is named.

(The bridge's ports are checked against `Deps` in tests/test_ports.py, the same way.)
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import pytest

import bot
from bot import archive, bridge_setup, care_plan_post, circle, direct, directory_lookup, documents, enforce, expiries, \
    facts_changed, members as people, newcomers, opening, preconditions, rcp_agenda, rcp_minutes, reactions, reminders, \
    rooms, task_board, watch
from bot.commands import FAMILIES, build_registry
from bot.commands import consents, directory as directory_commands, documents as documents_commands, mss, pathways, \
    ppcs, rcp, tasks, team, trace
from bot.services import Services
from tests.test_ports import members

ROOT = Path(__file__).resolve().parent.parent

BOT_PORTS: list[type] = [
    people.PeoplePorts, circle.RolesPorts, circle.CirclePorts, rooms.CategoriesPorts, rooms.ShowPorts,
    preconditions.WherePorts, enforce.EnforcePorts, bridge_setup.BridgeSetupPorts, watch.WatchPorts,
    opening.OpenerPorts, documents.IndexerPorts, newcomers.NewcomersPorts, archive.ArchivePorts,
    documents_commands.ListingPorts, documents_commands.DocumentPorts, consents.ConsentPorts, trace.AuditPorts,
    pathways.PathwayPorts, team.TeamPorts, mss.MssPorts, expiries.ExpiryPorts,
    facts_changed.ChangePorts, tasks.TaskPorts, reminders.ReminderPorts, task_board.BoardPorts,
    reactions.ReactionPorts, ppcs.CarePlanPorts, care_plan_post.PlanPorts, direct.DirectPorts,
    rcp_agenda.AgendaPorts, rcp_minutes.MinutesPorts, rcp.RcpPorts, directory_lookup.DirectoryPorts,
    directory_commands.AnnuairePorts,
]


def _services_satisfy(s: Services) -> None:
    """Never called: mypy reads it, and fails the build when a bot module's port asks what `Services` lacks (or a
    field of another type)."""
    _00: people.PeoplePorts = s
    _01: circle.RolesPorts = s
    _02: circle.CirclePorts = s
    _03: rooms.CategoriesPorts = s
    _04: rooms.ShowPorts = s
    _05: preconditions.WherePorts = s
    _06: enforce.EnforcePorts = s
    _07: bridge_setup.BridgeSetupPorts = s
    _08: watch.WatchPorts = s
    _09: opening.OpenerPorts = s
    _10: documents.IndexerPorts = s
    _11: newcomers.NewcomersPorts = s
    _12: archive.ArchivePorts = s
    _13: documents_commands.ListingPorts = s
    _14: documents_commands.DocumentPorts = s
    _15: consents.ConsentPorts = s
    _16: trace.AuditPorts = s
    _17: pathways.PathwayPorts = s
    _18: team.TeamPorts = s
    _19: mss.MssPorts = s
    _20: expiries.ExpiryPorts = s
    _21: facts_changed.ChangePorts = s
    _22: tasks.TaskPorts = s
    _23: reminders.ReminderPorts = s
    _24: task_board.BoardPorts = s
    _25: reactions.ReactionPorts = s
    _26: ppcs.CarePlanPorts = s
    _27: care_plan_post.PlanPorts = s
    _28: direct.DirectPorts = s
    _29: rcp_agenda.AgendaPorts = s
    _30: rcp_minutes.MinutesPorts = s
    _31: rcp.RcpPorts = s
    _32: directory_lookup.DirectoryPorts = s
    _33: directory_commands.AnnuairePorts = s


def _bot_ports_defined() -> set[type]:
    """Every `…Ports` Protocol a bot module defines (bot.ports holds the Matrix and store ports, not the parts')."""
    found = set()
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name in ("bot.__main__", "bot.ports"):
            continue
        module = importlib.import_module(info.name)
        found |= {c for c in vars(module).values() if isinstance(c, type) and c.__module__ == info.name
                  and c.__name__.endswith("Ports") and getattr(c, "_is_protocol", False)}
    return found


def missing_from_services(port: type) -> list[str]:
    """The members of `port` that are no field of `Services` (empty: the wiring can hand it `Services`)."""
    fields = {f.name for f in dataclasses.fields(Services)}
    return [name for name in sorted(members(port)) if name not in fields]


def _named(ports: Any) -> set[str]:
    return {f"{p.__module__}.{p.__qualname__}" for p in ports}


def test_every_port_of_the_bot_parts_is_checked_against_services() -> None:
    """A new port is added to BOT_PORTS (and to `_services_satisfy`, for mypy), so the checks below cover it."""
    assert _named(_bot_ports_defined()) == _named(BOT_PORTS)


@pytest.mark.parametrize("port", BOT_PORTS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_member_of_a_bot_port_is_a_read_only_field_of_services(port: type) -> None:
    wanted = members(port)
    assert wanted, f"{port.__name__} declares nothing"
    assert missing_from_services(port) == [], f"{port.__name__} asks what Services lacks"
    assert [name for name, m in sorted(wanted.items()) if not isinstance(m, property)] == [], \
        f"{port.__name__}: each service is a read-only property, so Services' fields (and a narrower type) fit it"


def test_a_port_asking_what_services_lacks_is_named() -> None:
    class PagerPorts(team.TeamPorts, Protocol):
        @property
        def pager(self) -> object: ...

    assert missing_from_services(PagerPorts) == ["pager"]
    assert missing_from_services(team.TeamPorts) == []


def _handlers() -> list[Any]:
    registry = build_registry()
    found = [c.handler for c in registry.commands if c.handler is not None]
    return found + [s.handler for c in registry.commands for s in c.subs]


def test_every_handler_reads_the_services_through_its_familys_port() -> None:
    """`ctx: Context` alone would be `Context[Any]`: a handler that mypy lets read anything. Each takes its module's
    port (or `Context[object]`: `!aide` reads the registry, nothing of the services)."""
    handlers = _handlers()
    assert len(handlers) > 20
    families = {f.__name__ for f in FAMILIES}
    for fn in handlers:
        annotation = inspect.signature(fn).parameters["ctx"].annotation
        assert fn.__module__ in families, fn.__qualname__
        port = annotation.removeprefix("Context[").removesuffix("]") if annotation.startswith("Context[") else None
        assert port == "object" or (port is not None and isinstance(getattr(sys.modules[fn.__module__], port, None),
                                                                     type)), \
            f"{fn.__module__}.{fn.__qualname__} takes ctx: {annotation}, not Context[<a port of its module>]"


def test_mypy_refuses_a_handler_reading_a_service_outside_its_port(tmp_path: Path) -> None:
    """The whole point of the ports: a family that reads a service it does not declare does not type-check."""
    snippet = tmp_path / "peeking_family.py"
    snippet.write_text(
        "from bot.commands.team import TeamPorts\n"
        "from bot.registry import Context, Reply\n\n\n"
        "async def peeks(ctx: Context[TeamPorts]) -> Reply:\n"
        "    await ctx.services.roster.members()   # declared: fine\n"
        "    await ctx.services.trace.verify()     # not declared\n"
        "    return Reply.plain('')\n")
    # A cache of its own (about 4 s cold): the project's would answer for a module of that name checked before.
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                          "--cache-dir", str(tmp_path / "mypy-cache"), str(snippet)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert errors == [f'{snippet}:7: error: "TeamPorts" has no attribute "trace"  [attr-defined]'], run.stdout
