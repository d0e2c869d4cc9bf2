"""A quarantined mail routed by hand (`!mss router`) enters the inbound pipeline at `decide` (bridge/hand_routing.py,
bridge/stages/): decided again by the coordinator's rule, posted by its sender's puppet, acknowledged like any mail;
refused now, it stays in quarantine and the quarantine room is told why. On the real stores (SQLite), the Matrix edge
faked."""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bridge.deps import BridgeSettings
from bridge.hand_routing import HandRouting
from bridge.metrics import Metrics
from bridge.parse_pool import MailParser
from bridge.mail_in import MailLimits
from bridge.puppets import ShutOut
from bridge.scan_patience import ScanPatience
from bridge.store import BridgeStore
from liaison.bootstrap import shared_on
from liaison.doc_check import Antivirus
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.trusted import TrustedDomains
from policies.paths import PATHS
from policies.sharing import Knobs
from tests.fakes import FakeMatrix
from tests.support.mss import letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
COORD = "@coord:hs"


class _Puppets:
    def __init__(self, matrix: FakeMatrix) -> None:
        self.matrix, self.banned = matrix, False

    async def get(self, address: str, name: str, known_name: str | None = None, listed=None):
        return SimpleNamespace(user_id=self.matrix.user_id), self.matrix

    async def enter(self, puppet, matrix, room_id: str, by_hand: bool = False) -> None:
        assert by_hand, "a mail routed by hand brings its puppet back into the room"
        if self.banned:
            raise ShutOut("ban")


@pytest.fixture
async def routing(tmp_path):
    from liaison.db import open_database
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'hand.db'}")
    shared = shared_on(engine, Knobs(), bridge=True, trusted=TrustedDomains(frozenset({"chu-demo.mssante.test"})))
    puppet = FakeMatrix("@mss_0c6f2a:hs")
    bridge = FakeMatrix("@mss_relais:hs")
    room, qroom = puppet.add_room("!room:hs"), bridge.add_room("!quarantine:hs")
    bridge.add_room(room)
    await shared.mail.set_setting(QUARANTINE_ROOM, qroom)
    settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                              bot_user_id="@bot:hs")
    d = SimpleNamespace(settings=settings, store=BridgeStore(engine), mail=shared.mail, pathways=shared.pathways,
                        sharing=shared.sharing, knobs=shared.knobs, documents=shared.documents, contacts=None,
                        consents=shared.consents, trace=shared.trace, matrix=bridge, puppets=_Puppets(puppet),
                        metrics=Metrics(), antivirus=Antivirus(), scan_patience=ScanPatience(), directory=shared.directory)
    patient = await shared.pathways.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10",
                                                birth_name="DURAND", first_names="Marcel",
                                                birth_date=date(1948, 5, 12), sex="M", actor=COORD)
    pathway = await shared.pathways.add_pathway(patient_id=patient.id, type_key="autre", code="P-HAND1", actor=COORD)
    await shared.pathways.update(pathway.id, status="open", room_id=room)
    parser = MailParser(MailLimits(max_bytes=2**20, max_attachments=5), "hs")
    yield SimpleNamespace(d=d, hand=HandRouting(d, parser), puppet=puppet, bridge=bridge, room=room, qroom=qroom,
                          pathway=pathway, patient=patient, engine=engine)
    parser.close()
    await engine.dispose()


async def _routed_by_hand(r, raw: bytes | None = None) -> tuple[int, str]:
    """A mail kept aside as unroutable, then routed by the coordinator to the pathway (what the bot writes)."""
    mail_id = await r.d.store.begin_mail("INBOX", 1, 1)
    if raw is None:
        raw = bytes(letter({"display_name": "Dr Camille Lefebvre", "address": CARDIO}, "liaison@msp-demo.mssante.test",
                           subject="Sortie", text="Lettre de sortie de M. Durand."))
    number = await r.d.mail.quarantine(mail_id, reason_code="unroutable", reason="…", from_address=CARDIO,
                                       trusted=True, raw=raw)
    await r.d.store.finish_mail(mail_id, "quarantined", reason="unroutable")
    assert await r.d.mail.decide_quarantined(number, state="routing", actor=COORD, pathway_id=r.pathway.id)
    return number, mail_id


async def _route(r) -> None:
    await r.hand.routed()


async def test_a_mail_routed_by_hand_is_decided_by_the_coordinator_and_posted_by_the_pipeline(routing):
    r = routing
    number, mail_id = await _routed_by_hand(r)
    await _route(r)
    [text_] = [s for s in r.puppet.sent if s.room_id == r.room]
    assert "Lettre de sortie de M. Durand." in text_.body
    assert f"déposé à la main par la coordination (quarantaine n° {number})" in text_.body
    assert (await r.d.mail.quarantined_one(number)).state == "routed"
    assert await r.d.mail.quarantine_raw(number) is None, "its raw text leaves the quarantine with it"
    assert await r.d.store.mail_state("INBOX", 1, 1) == (mail_id, "posted")
    assert await r.d.mail.is_correspondent(r.pathway.id, CARDIO)
    async with r.engine.connect() as conn:
        traced = (await conn.execute(text("SELECT actor, allowed FROM trace_entry WHERE action = :a"),
                                        {"a": PATHS["mail.in.route"].label})).all()
        basis = (await conn.execute(text("SELECT basis FROM mss_correspondent"))).scalar()
    assert [(t.actor, t.allowed) for t in traced] == [(COORD, 1)], "decided again, by the coordinator's rule"
    assert basis == "hand"
    assert r.d.metrics.relayed_in._value.get() == 1
    await _route(r)
    assert len(r.puppet.sent) == 1, "routed once"


async def test_an_objection_recorded_since_keeps_it_in_quarantine_and_the_room_is_told(routing):
    r = routing
    number, _ = await _routed_by_hand(r)
    assert await r.d.consents.add_objection(r.patient.id, scope_kind="person", scope=CARDIO, actor=COORD)
    await _route(r)
    assert not r.puppet.sent
    held = await r.d.mail.quarantined_one(number)
    assert (held.state, held.pathway_id) == ("waiting", None)
    assert await r.d.mail.quarantine_raw(number), "kept for a later decision"
    [told] = r.bridge.bodies(r.qroom)
    assert told.startswith(f"Courriel n° {number} non déposé dans le parcours P-HAND1 : ")
    assert "opposé" in told and told.endswith(". Il reste en quarantaine.")


async def test_a_banned_sender_is_not_posted_by_hand_either(routing):
    r = routing
    r.d.puppets.banned = True
    number, _ = await _routed_by_hand(r)
    await _route(r)
    assert not r.puppet.sent
    assert (await r.d.mail.quarantined_one(number)).state == "waiting"
    [told] = r.bridge.bodies(r.qroom)
    assert f"Courriel n° {number} non déposé" in told and "Il reste en quarantaine." in told


async def test_an_unreadable_mail_stays_in_quarantine(routing):
    r = routing
    number, _ = await _routed_by_hand(r, raw=b"\x00" * 10)
    await _route(r)
    assert not r.puppet.sent
    assert (await r.d.mail.quarantined_one(number)).state == "waiting"
    [told] = r.bridge.bodies(r.qroom)
    assert f"Courriel n° {number} non déposé dans le parcours P-HAND1" in told


def test_hand_routing_posts_and_decides_only_through_the_pipeline():
    """One inbound path: the loop that finds mails routed by hand neither decides, posts nor acknowledges by itself."""
    from tests.test_layers import ROOT, imports
    used = set(imports(ROOT / "bridge" / "hand_routing.py"))
    assert "bridge.stages" in used
    assert not used & {"bridge.posting", "liaison.enforcement", "bridge.stages.acknowledge", "bridge.quarantine_room"}
