"""Every change of the patient's will, and every mail rejected from the quarantine, is an entry of the trace."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from nio import RoomMemberEvent

from bot.commands import mss as mss_commands
from bot.registry import Context
from bridge.store import BridgeStore
from liaison.stores.mail import MailStore
from liaison.stores.trace import Trace
from policies.ins import nir_key
from policies.records import RECORDS

NIR = "2620375123456"
INS = f"{NIR}{nir_key(NIR):02d}"
OPEN = f"!parcours ouvrir {INS} diabete 12/03/1962 F Lemoine Anne --equipe medecin"


@pytest.fixture
async def pathway_room(clinician, bot_process):
    """A coordinator and a GP on the roster, an outsider who is not; the pathway room, the coordinator in it."""
    coord, gp, outsider = [await clinician(role) for role in ("coordination", "medecin", "dehors")]
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
              {"user_id": gp.user_id, "name": "Paul Martin", "profession": "médecin"}]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True})
    desk = await coord.create_room([bot.user_id])
    await coord.wait_joined(desk, bot.user_id)
    opened, _ = await coord.ask(desk, OPEN, timeout=60)
    room = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", opened.body).group(1)
    await coord.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent)
                         and e.state_key == coord.user_id and e.membership == "join", 30)
    return coord, outsider, room


def _ref(text: str) -> int:
    """The trace number a reply gives."""
    match = re.search(r"trace (\d+)", text)
    assert match, text
    return int(match.group(1))


async def test_objection_and_consent_changes_are_traced_and_shown_by_trace(pathway_room):
    coord, outsider, room = pathway_room
    changes = []
    for command, rule, subject in [
        ("!opposition infirmier", "objection.recorded", "infirmier"),
        ("!opposition lever infirmier", "objection.lifted", "infirmier"),
        (f"!consentement enregistrer {outsider.user_id} écrit", "consent.recorded", outsider.user_id),
        (f"!consentement retirer {outsider.user_id}", "consent.withdrawn", outsider.user_id),
    ]:
        reply, _ = await coord.ask(room, command)
        changes.append((_ref(reply.body), rule, subject))
    nothing, _ = await coord.ask(room, "!opposition lever infirmier")
    assert "Aucune opposition en vigueur" in nothing.body and "trace" not in nothing.body, "nothing changed"

    summary, _ = await coord.ask(room, "!trace", timeout=30)
    assert "Chaînage vérifié" in summary.body
    lines = summary.body.splitlines()
    for ref, rule, subject in changes:
        line = next((x for x in lines if x.endswith(f"[n° {ref}]")), None)
        assert line is not None, f"trace {ref} missing:\n{summary.body}"
        record = RECORDS[rule]
        assert record.action in line and subject in line and coord.user_id in line, line
        assert f"({rule}, {record.decision.basis})" in line, line
    assert [ref for ref, _, _ in changes] == sorted(ref for ref, _, _ in changes)


@pytest.fixture
async def quarantine(engine):
    """Two mails in the quarantine (numbers 1 and 2), and the stores `!mss rejeter` uses."""
    mail, bridge = MailStore(engine), BridgeStore(engine)
    for uid, sender in ((1, "inconnu@ailleurs.example"), (2, "")):
        mail_id = await bridge.begin_mail("INBOX", 1, uid)
        await mail.quarantine(mail_id, reason_code="untrusted", reason="hors liste blanche", from_address=sender,
                              trusted=False, raw=b"raw mail")
    return SimpleNamespace(mail=mail, trace=Trace(engine))


def _coordinator(services, number: int) -> Context:
    return Context(sender="@coord:hs", room_id="!coord:hs", event_id="$e", args={"n": number}, registry=None,
                   is_staff=True, services=services, is_coordinator=True)


async def test_a_rejected_mail_is_traced_once_with_its_sender(quarantine):
    rejected = (await mss_commands._reject(_coordinator(quarantine, 1))).text
    assert "Courriel n° 1 écarté" in rejected
    again = (await mss_commands._reject(_coordinator(quarantine, 1))).text
    assert "Aucun courriel n° 1" in again and "trace" not in again
    unreadable = (await mss_commands._reject(_coordinator(quarantine, 2))).text

    entries = await quarantine.trace.entries()
    assert [e.seq for e in entries] == [_ref(rejected), _ref(unreadable)]
    first, second = entries
    assert (first.actor, first.subject, first.rule, first.allowed) == (
        "@coord:hs", "inconnu@ailleurs.example", "quarantine.rejected", True)
    assert first.action == RECORDS["quarantine.rejected"].action and first.basis.startswith("RGPD")
    assert first.patient_id is None and second.subject == "courriel n° 2", "an unreadable sender still names the mail"
    assert (await quarantine.trace.verify()).ok
