"""Which rooms the catch-up reads back (bridge/catch_up.py), on the fakes: those holding a mail thread, and those a
puppet entered even when the thread of its mail is not recorded yet (a stop between a mail's text and its thread:
the reply written meanwhile must still be found)."""
from __future__ import annotations

from types import SimpleNamespace

from bridge.catch_up import catch_up
from bridge.metrics import Metrics
from bridge.store import BridgeStore
from liaison.clock import SystemClock
from liaison.stores.mail import MailStore
from tests.fakes import BRIDGE, GP, FakeMatrix, _database

PUPPET = "@mss_0c6f2a9e:hs"


async def test_a_room_a_puppet_entered_is_read_back_even_without_a_thread(tmp_path):
    engine = await _database(tmp_path)
    try:
        store, matrix = BridgeStore(engine), FakeMatrix(BRIDGE)
        room = matrix.add_room(members=(BRIDGE, GP, PUPPET))
        quiet = matrix.add_room(members=(BRIDGE, GP))   # no thread, no puppet: nothing to relay can be there
        text = matrix.post(room, PUPPET, "Voici la lettre.")
        reply = matrix.post(room, GP, "Bien reçu.")
        matrix.post(quiet, GP, "Rien pour le pont.")
        await store.add_puppet_room(PUPPET, room)
        d = SimpleNamespace(mail=MailStore(engine), matrix=matrix, clock=SystemClock(), metrics=Metrics())
        found = await catch_up(d, store, lambda e: e.get("sender") != BRIDGE)
        assert found == 2
        kept = {e["event_id"] for e in await store.pending_events()}
        assert {text, reply} <= kept and len(kept) == 2, "the quiet room was not read"
    finally:
        await engine.dispose()
