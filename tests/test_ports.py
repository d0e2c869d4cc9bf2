"""The ports (bot/ports.py, bridge/ports.py) and what stands behind them: the real Matrix client, the fast tests'
FakeMatrix and the stores have every member a port declares, with the same parameters.

Checked twice: by mypy (the typed assignments of `_satisfied`, this file is in `[tool.mypy] files`), and here at run
time, member by member, so a failure names the member that drifted.
"""
from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest

from bot import ports as bot_ports
from bridge import ports as bridge_ports
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
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
                                        (bot_ports.MailPort, MailStore), (bot_ports.DocumentsPort, DocumentStore)]
PAIRS = ([(port, impl) for port in MATRIX_PORTS for impl in (Matrix, FakeMatrix)] + STORE_PORTS)


def _satisfied(real: Matrix, fake: FakeMatrix, roster: Roster, consents: ConsentStore, trace: Trace,
               contacts: Contacts, mail: MailStore, documents: DocumentStore) -> None:
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
