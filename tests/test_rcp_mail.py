"""An RCP's mail for its external participant, on the bridge's real stores and outbox (fake SMTP): the invitation
leaves with its .ics and no pathway; a case's mail leaves with its pathway, decided again as it is queued and as it is
sent; one refused is dropped and traced, the others go on."""
from __future__ import annotations


import pytest
from sqlalchemy import text

from bridge import rcp_mail
from liaison.stores.rcp import RcpMail
from tests.test_corrections import CARDIO, COORD, ROOM, relay  # noqa: F401 (the relay fixture)

OTHER_CARDIO = "a.autre@chu-demo.mssante.test"


def _mail(mail_id: str, rcp_id: str, kind: str, address: str, pathway_id: str | None, body: str,
          ics: str | None = None) -> RcpMail:
    return RcpMail(mail_id, rcp_id, kind, address, pathway_id, ROOM if pathway_id else None,
                   "$agenda" if pathway_id else None, COORD, f"RCP : {kind}", body, ics)


@pytest.fixture
async def meeting(relay):
    w = relay
    rcp = await w.d.rcp.plan(w.clock.now_ms() + 3 * 86_400_000, "salle 2", None, COORD)
    pathway = await w.d.pathways.by_code("P-CORR1")
    return w, rcp, pathway


async def test_the_invitation_carries_its_ics_and_a_case_its_pathway(meeting):
    w, rcp, pathway = meeting
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    await w.d.rcp.add_mail(_mail("m1", rcp.id, "invitation", CARDIO, None, "Cas : 1. P-CORR1", ics))
    await w.d.rcp.add_mail(_mail("m2", rcp.id, "agenda", CARDIO, pathway.id, "Question :\n« poids » l’été"))
    assert await rcp_mail.send_waiting(w.d, w.out.signer) == 2
    assert await rcp_mail.send_waiting(w.d, w.out.signer) == 0, "queued once"
    await w.flush()
    invitation, case = w.smtp.sent
    attached = [p for p in invitation.iter_attachments()]
    assert [p.get_content_type() for p in attached] == ["text/calendar"] and "VCALENDAR" in attached[0].get_content()
    assert "+p-corr1" not in str(invitation["Reply-To"] or "")
    assert "« poids » l’été" in case.get_body(("plain",)).get_content() and "+p-corr1@" in str(case["Reply-To"])
    async with w.engine.connect() as conn:
        left = (await conn.execute(text("SELECT state, body FROM rcp_mail ORDER BY id"))).all()
    assert [(r.state, r.body) for r in left] == [("queued", ""), ("queued", "")], "the text is dropped once queued"


async def test_a_case_refused_is_dropped_the_others_go_and_the_outbox_decides_again(meeting):
    w, rcp, pathway = meeting
    await w.d.rcp.add_mail(_mail("m1", rcp.id, "agenda", OTHER_CARDIO, pathway.id, "refusé : hors équipe"))
    await w.d.rcp.add_mail(_mail("m2", rcp.id, "minutes", CARDIO, pathway.id, "compte rendu"))
    await w.d.rcp.add_mail(_mail("m3", rcp.id, "invitation", "pas une adresse", None, "invitation"))
    assert await rcp_mail.send_waiting(w.d, w.out.signer) == 1
    async with w.engine.connect() as conn:
        states = dict((await conn.execute(text("SELECT id, state FROM rcp_mail"))).all())
    assert states == {"m1": "refused", "m2": "queued", "m3": "failed"}
    refusals = [e for e in await w.d.trace.entries() if e.subject == OTHER_CARDIO]
    assert refusals and (refusals[-1].rule, refusals[-1].allowed) == ("outside.no_consent", False)
    await w.d.consents.add_objection(w.patient.id, scope_kind="person", scope=CARDIO, actor=COORD)
    await w.flush()
    assert w.smtp.sent == [], "the objection recorded after it was queued: cancelled as it leaves"
