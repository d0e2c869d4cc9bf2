"""The ports (bot/ports.py, bridge/ports.py) and what stands behind them: the real Matrix client, the fast tests'
FakeMatrix and the stores have every member a port declares, with the same parameters.

Checked twice: by mypy (the typed assignments of `_satisfied`, this file is in `[tool.mypy] files`), and here at run
time, member by member, so a failure names the member that drifted.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any, Protocol

import pytest

import bridge
from bot import ports as bot_ports
from bridge import catch_up, corrections, documents_in, hand_routing, inbound, outbox, own_account, posting, rcp_mail, \
    read_receipts, receipts_in, stages
from bridge import ports as bridge_ports
from bridge.__main__ import RetentionPorts
from bridge.deps import Deps
from bridge.documents_out import PackPorts
from bridge.outbound import OutboundPorts
from bridge.stages import acknowledge, decide, judge, post, route
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory
from liaison.stores.documents import DocumentStore
from liaison.stores.mail import MailStore
from liaison.matrix import Matrix
from liaison.stores.roster import Roster
from liaison.stores.trace import Trace
from tests.fakes import FakeMatrix

MATRIX_PORTS: list[type] = [bot_ports.MatrixRooms, bot_ports.MatrixAccount, bot_ports.MatrixPort,
                            bridge_ports.Poster, bridge_ports.PuppetMatrix, bridge_ports.BridgeMatrix]
STORE_PORTS: list[tuple[type, type]] = [(bot_ports.RosterPort, Roster), (bot_ports.ConsentsPort, ConsentStore),
                                        (bot_ports.TracePort, Trace), (bot_ports.ContactsPort, Contacts),
                                        (bot_ports.MailPort, MailStore), (bot_ports.DocumentsPort, DocumentStore),
                                        (bot_ports.DirectoryPort, Directory)]
PAIRS = ([(port, impl) for port in MATRIX_PORTS for impl in (Matrix, FakeMatrix)] + STORE_PORTS)


def _satisfied(real: Matrix, fake: FakeMatrix, roster: Roster, consents: ConsentStore, trace: Trace,
               contacts: Contacts, mail: MailStore, documents: DocumentStore, directory: Directory) -> None:
    """Never called: mypy reads it, and fails the build when a class no longer fits its port."""
    for m in (real, fake):
        rooms: bot_ports.MatrixRooms = m
        account: bot_ports.MatrixAccount = m
        bot: bot_ports.MatrixPort = m
        poster: bridge_ports.Poster = m
        puppet: bridge_ports.PuppetMatrix = m
        bridge: bridge_ports.BridgeMatrix = m
        del rooms, account, bot, poster, puppet, bridge
    stores: tuple[bot_ports.RosterPort, bot_ports.ConsentsPort, bot_ports.TracePort, bot_ports.ContactsPort,
                  bot_ports.MailPort, bot_ports.DocumentsPort] = (roster, consents, trace, contacts, mail, documents)
    del stores
    read: bot_ports.DirectoryPort = directory
    del read


DEPS_PORTS: list[type] = [
    catch_up.CatchUpPorts, documents_in.DocumentsInPorts, hand_routing.HandRoutingPorts, inbound.InboundPorts,
    outbox.LaterPorts, outbox.OutboxPorts, own_account.SyncPorts, posting.PostingPorts, read_receipts.ReadReceiptsPorts,
    receipts_in.ShowPorts, receipts_in.ReceiptsInPorts, stages.PipelinePorts, acknowledge.AcknowledgePorts,
    decide.DecidePorts, judge.JudgePorts, post.PostPorts, route.RoutePorts, PackPorts, OutboundPorts, RetentionPorts,
    corrections.CorrectionPorts, rcp_mail.RcpMailPorts,
]


def _deps_satisfy(d: Deps) -> None:
    """Never called: mypy reads it, and fails the build when a bridge module's port asks what `Deps` lacks (or
    a field of another type)."""
    _00: catch_up.CatchUpPorts = d
    _01: documents_in.DocumentsInPorts = d
    _02: hand_routing.HandRoutingPorts = d
    _03: inbound.InboundPorts = d
    _04: outbox.LaterPorts = d
    _05: outbox.OutboxPorts = d
    _06: own_account.SyncPorts = d
    _07: posting.PostingPorts = d
    _08: read_receipts.ReadReceiptsPorts = d
    _09: receipts_in.ShowPorts = d
    _10: receipts_in.ReceiptsInPorts = d
    _11: stages.PipelinePorts = d
    _12: acknowledge.AcknowledgePorts = d
    _13: decide.DecidePorts = d
    _14: judge.JudgePorts = d
    _15: post.PostPorts = d
    _16: route.RoutePorts = d
    _17: PackPorts = d
    _18: OutboundPorts = d
    _19: RetentionPorts = d
    _20: corrections.CorrectionPorts = d
    _21: rcp_mail.RcpMailPorts = d


def members(port: type) -> dict[str, Any]:
    """The members a Protocol declares, its bases' included (not those of Protocol and object)."""
    found: dict[str, Any] = {}
    for cls in reversed(port.__mro__):
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        found.update({name: value for name, value in vars(cls).items() if not name.startswith("_")})
    return found


def mismatches(port: type, impl: type) -> list[str]:
    """What in `impl` does not fit `port`, one sentence per member (empty: it fits)."""
    problems = []
    for name, wanted in sorted(members(port).items()):
        got = inspect.getattr_static(impl, name, None)
        if got is None:
            problems.append(f"{name}: missing")
        elif isinstance(wanted, property):
            if not isinstance(got, property):
                problems.append(f"{name}: a property in the port, not in {impl.__name__}")
        elif inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(got):
            problems.append(f"{name}: async in one and not in the other")
        else:
            problems += [f"{name}: {p}" for p in _parameter_problems(inspect.signature(wanted),
                                                                     inspect.signature(got))]
    return problems


def _parameter_problems(wanted: inspect.Signature, got: inspect.Signature) -> list[str]:
    want, have = list(wanted.parameters.values()), list(got.parameters.values())
    problems = [f"parameter {i} is {h.name!r} ({h.kind.description}), the port says {w.name!r} "
                f"({w.kind.description})" for i, (w, h) in enumerate(zip(want, have))
                if (w.name, w.kind) != (h.name, h.kind)]
    problems += [f"{w.name!r}: optional in the port, required here" for w, h in zip(want, have)
                 if w.default is not w.empty and h.default is h.empty]
    problems += [f"missing parameter {w.name!r}" for w in want[len(have):]]
    problems += [f"extra required parameter {h.name!r}" for h in have[len(want):] if h.default is h.empty]
    return problems


@pytest.mark.parametrize("port, impl", PAIRS, ids=lambda c: c.__name__)
def test_the_class_has_every_member_of_the_port_with_its_parameters(port: type, impl: type) -> None:
    assert mismatches(port, impl) == [], f"{impl.__name__} does not fit {port.__name__}"


def test_every_matrix_port_member_is_a_method_of_the_real_client() -> None:
    """A port asks only what the client offers: none invents a call the fake alone would answer."""
    for port in MATRIX_PORTS:
        assert set(members(port)) <= {n for n in dir(Matrix) if not n.startswith("_")}, port.__name__


class _Drifted:
    """A fake that drifted: a renamed parameter, a sync method, a member gone, a property turned method."""

    def user_id(self) -> str:
        return "@x:hs"

    async def send(self, room_id: str, body: dict[str, Any], txn_id: str) -> str:
        return "$e"

    def upload_encrypted(self, data: bytes) -> dict[str, Any]:
        return {}


def test_a_drifted_fake_is_caught_and_each_member_named() -> None:
    found = mismatches(bridge_ports.BridgeMatrix, _Drifted)
    assert "send: parameter 2 is 'body' (positional or keyword), the port says 'content' (positional or keyword)" \
        in found
    assert "upload_encrypted: async in one and not in the other" in found
    assert "user_id: a property in the port, not in _Drifted" in found
    assert "react: missing" in found


def test_a_member_optional_in_the_port_must_stay_optional() -> None:
    class Strict:
        async def history(self, room_id: str, max_events: int) -> list[dict[str, Any]]:
            return []

    assert "history: 'max_events': optional in the port, required here" in mismatches(bot_ports.MatrixRooms, Strict)


def _bridge_ports_defined() -> set[type]:
    """Every `…Ports` Protocol a bridge module defines (bridge.ports holds the Matrix ports, not the parts')."""
    found = set()
    for info in pkgutil.walk_packages(bridge.__path__, "bridge."):
        module = importlib.import_module(info.name)
        found |= {c for c in vars(module).values() if isinstance(c, type) and c.__module__ == info.name
                  and c.__name__.endswith("Ports") and getattr(c, "_is_protocol", False)}
    return found


def missing_from_deps(port: type) -> list[str]:
    """The members of `port` that are no field of `Deps` (empty: the wiring can hand it `Deps`)."""
    fields = {f.name for f in dataclasses.fields(Deps)}
    return [name for name in sorted(members(port)) if name not in fields]


def test_every_port_of_the_bridge_parts_is_checked_against_deps() -> None:
    """A new port is added to DEPS_PORTS (and to `_deps_satisfy`, for mypy), so the checks below cover it."""
    def named(ports: Any) -> set[str]:
        return {f"{p.__module__}.{p.__qualname__}" for p in ports}
    assert named(_bridge_ports_defined()) == named(DEPS_PORTS)


@pytest.mark.parametrize("port", DEPS_PORTS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_member_of_a_bridge_port_is_a_read_only_field_of_deps(port: type) -> None:
    wanted = members(port)
    assert wanted, f"{port.__name__} declares nothing"
    assert missing_from_deps(port) == [], f"{port.__name__} asks what Deps lacks"
    assert [name for name, m in sorted(wanted.items()) if not isinstance(m, property)] == [], \
        f"{port.__name__}: each part is a read-only property, so Deps' fields (and a narrower type) fit it"


def test_a_port_asking_what_deps_lacks_is_named() -> None:
    class Wrong(catch_up.CatchUpPorts, Protocol):
        @property
        def mailer(self) -> object: ...

    assert missing_from_deps(Wrong) == ["mailer"]
