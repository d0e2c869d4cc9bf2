"""A test INS (under a test OID) names no real patient: outside `ins_test_mode` the route stage never looks it up,
and the mail goes to quarantine (`test_identity`), whatever else it cites (issue 24, item 10)."""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from bridge.deps import BridgeSettings
from bridge.mail_in import parse_mail
from bridge.stages.judge import Judged
from bridge.stages.outcome import Outcome
from bridge.stages.route import lookup, route
from bridge.xdm import xdm_of
from liaison.stores.mail import MailStore
from liaison.stores.pathways import PathwayStore
from tests.fakes import _database
from tests.support.mss import INS, letter, xdm_letter

SENDER = {"display_name": "Dr Camille Lefebvre", "address": "c.lefebvre@chu-demo.mssante.test"}


@pytest.fixture
async def stores(tmp_path):
    engine = await _database(tmp_path)
    pathways = PathwayStore(engine)
    patient = await pathways.add_patient(ins=INS, oid="1.2.250.1.213.1.4.10", birth_name="DURAND",
                                         first_names="Marcel", birth_date=date(1948, 5, 12), sex="M", actor="@c:hs")
    pathway = await pathways.add_pathway(patient_id=patient.id, type_key="diabete", code="P-TEST1", actor="@c:hs")
    await pathways.update(pathway.id, room_id="!room:hs", status="open")
    yield pathways, MailStore(engine)
    await engine.dispose()


def _deps(stores, test_mode: bool):
    pathways, mail = stores
    settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                              bot_user_id="@liaison:hs", ins_test_mode=test_mode)
    return SimpleNamespace(pathways=pathways, mail=mail, settings=settings)


def _judged() -> Judged:
    raw = bytes(letter(SENDER, "liaison@msp-demo.mssante.test", subject="Lettre", text="Bonjour",
                       xdm=xdm_letter(INS)))
    mail = parse_mail(raw)
    return Judged(mail, xdm_of(mail), True)


async def test_outside_test_mode_a_test_identity_is_quarantined_not_routed(stores):
    found = await lookup(_deps(stores, test_mode=False), _judged())
    assert found.xdm_test_identity and found.xdm_patient is None, "not even looked up"
    outcome = await route(_deps(stores, test_mode=False), _judged())
    assert isinstance(outcome, Outcome) and outcome.quarantine is not None
    assert outcome.quarantine.code == "test_identity" and "mode test" in outcome.quarantine.reason


async def test_in_test_mode_the_same_mail_reaches_its_patient_s_pathway(stores):
    found = await lookup(_deps(stores, test_mode=True), _judged())
    assert not found.xdm_test_identity and found.xdm_patient is not None
    routed = await route(_deps(stores, test_mode=True), _judged())
    assert not isinstance(routed, Outcome) and routed.pathway.code == "P-TEST1"
