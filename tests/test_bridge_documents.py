"""Shared documents through the bridge (#6, J4 and J6), on the real stack: Synapse, the bot and the bridge
as processes, Dovecot and the mutual-TLS SMTP gateway, a real clamd.

In: every file of a mail is checked before anything is posted; a refused one is never uploaded; the
allowed ones are indexed, and one notice in the mail's thread says which number each got and why a
file was refused. Out: `!doc envoyer` sends an indexed document packed as IHE_XDM.ZIP.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile

import time
from dataclasses import replace
from datetime import date
from types import SimpleNamespace

import pytest
from nio import RoomMessageNotice, RoomMessageText
from sqlalchemy import text

from bridge.deps import Deps
from bridge.documents_in import SCAN_PATIENCE_SECONDS, AntivirusUnavailable
from bridge.xdm import xdm_of
from bridge.mail_in import parse_mail
from bridge.posting import REST_BY_RELAY, post_mail
from bridge.puppets import ShutOut
from bridge.routing import PathwayRef, Route
from bridge.xdm import XdmAuthor, XdmOut, read_xdm, write_xdm
from liaison.bootstrap import shared_on
from liaison.db import create_engine
from liaison.doc_check import Antivirus
from liaison.stores.documents import DocumentStore
from liaison.stores.mail import MailStore, Request
from liaison.matrix import MatrixError
from liaison.stores.pathways import PathwayStore
from liaison.trusted import TrustedDomains
from policies.sharing import Knobs
from tests.support.bridgeproc import documents_section, with_documents
from tests.support.clamd import EICAR, REPORTED, running_clamd
from tests.support.mss import INS, PDF, box, drain, is_puppet, letter, open_structure, send_mail, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
TEST_OID = "1.2.250.1.213.1.4.10"


def cda_letter(ins: str = INS, code: str = "11490-0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
            f'<code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<recordTarget><patientRole><id root="{TEST_OID}" extension="{ins}"/></patientRole></recordTarget>'
            f'<title>Lettre de liaison</title></ClinicalDocument>').encode()


def xdm_cda(data: bytes) -> bytes:
    return write_xdm([XdmOut(data=data, mime_type="text/xml", title="CR de sortie structuré", type_code="11490-0",
                             type_display="Lettre de liaison à la sortie d'un établissement de soins",
                             filename_ext="xml")],
                     patient_ins=INS, patient_oid=TEST_OID,
                     author=XdmAuthor(name="Dr Camille Lefebvre", given="Camille", family="Lefebvre",
                                      institution="CHU de démonstration", profession="Cardiologue"),
                     source_id="1.2.250.1.999.1")


def _content(e) -> dict:
    return (getattr(e, "source", None) or {}).get("content") or {}


def _puppet_file(room: str):
    return lambda r, e: (r == room and is_puppet(getattr(e, "sender", ""))
                         and _content(e).get("msgtype") in ("m.file", "m.image"))


def _puppet_files(s) -> list:
    return [e for r, e in s.gp.events if _puppet_file(s.room)(r, e)]


def _bridge_notice(room: str, word: str):
    return lambda r, e: (r == room and isinstance(e, RoomMessageNotice) and e.sender.startswith("@mss_relais")
                         and word in e.body)


def _xdm_part(msg):
    return next((p for p in msg.iter_attachments() if p.get_filename() == "IHE_XDM.ZIP"), None)


@contextlib.asynccontextmanager
async def database(s):
    """The structure's database (the bot's, shared with the bridge), read by the test as the bridge writes it."""
    engine = create_engine(s.bot.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _pathway_id(engine, room: str) -> str:
    pathway = await PathwayStore(engine).by_room(room)
    assert pathway is not None
    return pathway.id


async def _request_state(engine, event_id: str, timeout: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with engine.connect() as conn:
            state = (await conn.execute(text("SELECT state FROM mss_request WHERE event_id = :e"),
                                        {"e": event_id})).scalar()
        if state != "waiting" or asyncio.get_running_loop().time() > deadline:
            return state
        await asyncio.sleep(0.2)


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    s = await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")
    await drain(s.mail, box(s.mail, CARDIO))
    return s


async def test_letter_in_is_indexed_and_sent_out_as_xdm(structure):
    """J4 then J6: the hospital's PDF letter is indexed as document 1; sent back out, it travels as IHE_XDM.ZIP
    with the patient's INS, its bytes intact, and no X-MSS-* header (a PDF is not a CDA). A CDA that came by
    mail goes out with X-MSS-INS: O and X-MSS-CODECDA; a document whose bytes no longer match the index stays."""
    s = structure
    cardio = box(s.mail, CARDIO)
    bridge_address = s.mail["bridge_address"]
    await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="Sortie de M. Durand",
                                           text="Bonjour, voici la lettre de liaison.", xdm=xdm_letter()),
                    bridge_address)

    text_event = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                     and is_puppet(e.sender) and "Sortie de M. Durand" in e.body, 30)
    assert "1 pièce(s) jointe(s)" in text_event.body
    file_event = await s.gp.wait_for(_puppet_file(s.room), 30)
    notice = await s.gp.wait_for(_bridge_notice(s.room, "Document n°"), 30)
    assert "📄 Document n° 1 « Lettre de liaison de sortie.pdf » indexé : Compte rendu d'hospitalisation / " \
           "lettre de liaison — !doc 1" in notice.body, notice.body
    assert _content(notice)["m.relates_to"]["event_id"] == text_event.event_id, "the notice sits in the mail's thread"
    assert _content(file_event)["info"]["mimetype"] == "application/pdf"

    async with database(s) as engine:
        documents = DocumentStore(engine)
        pathway_id = await _pathway_id(engine, s.room)
        doc = await documents.by_number(pathway_id, 1)
        assert doc is not None, "indexed once the notice is out"
        assert (doc.source, doc.doctype, doc.type_code, doc.mime) == ("mssante", "lettre-liaison", "11490-0",
                                                                      "application/pdf")
        assert doc.sha256 == hashlib.sha256(PDF).hexdigest() and doc.size == len(PDF)
        assert doc.author == CARDIO and doc.event_id == file_event.event_id
        assert doc.thread_root == text_event.event_id and doc.rule == "document.allowed"
        assert doc.file == _content(file_event)["file"], "the index keeps the key that opens the room's file"

        # J6, the bridge's half: the request `!doc envoyer` leaves once decided (here written as the bot does).
        ask = await s.gp.send(s.room, "Envoi du document 1 au Dr Lefebvre (demande de test)")
        mail = MailStore(engine)
        assert await mail.add_request(Request(ask, pathway_id, s.room, s.gp.user_id, CARDIO, "", doc.id))
        sent = await wait_mail(s.mail, cardio, lambda m: _xdm_part(m) is not None, 30)
        assert await _request_state(engine, ask) == "queued"
        assert [p.get_filename() for p in sent.iter_attachments()] == ["IHE_XDM.ZIP"]
        assert _xdm_part(sent).get_content_type() == "application/zip"
        assert "X-MSS-INS" not in sent and "X-MSS-CODECDA" not in sent, "a PDF carries no CDA header"
        assert str(sent["Subject"]) == f"Parcours {s.code} : Compte rendu d'hospitalisation / lettre de liaison"
        body = sent.get_body(("plain",)).get_content()
        assert "ci-joint" in body and "Durand" not in body and "Durand" not in str(sent["Subject"])
        package = read_xdm(_xdm_part(sent).get_content())
        [out] = package.documents
        assert (out.patient_ins, out.patient_oid) == (INS, TEST_OID)
        assert hashlib.sha256(out.data).hexdigest() == doc.sha256 and out.data == PDF
        assert (out.type_code, out.mime_type, out.title) == ("11490-0", "application/pdf", doc.title)
        assert "Martin" in (out.author or "") and out.author_institution == "MSP de test"
        assert package.source_id == "1.2.250.1.999.1.1", "the structure's OID (documents.source_oid)"

        # The cardiologist answers that mail: the answer comes back in the thread of the request.
        answer_to = sent["Reply-To"].addresses[0].addr_spec
        await send_mail(s.mail, cardio, letter(cardio, answer_to, subject="Re: document", text="Bien reçu le CR.",
                                               in_reply_to=str(sent["Message-ID"]).strip("<>")), answer_to)
        back = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                   and "Bien reçu le CR" in e.body, 30)
        assert _content(back)["m.relates_to"]["event_id"] == ask

        # A CDA carrying the INS, arrived by mail, goes out with X-MSS-INS: O and X-MSS-CODECDA.
        cda = cda_letter()
        await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="CR structuré", text="Le CDA.",
                                               xdm=xdm_cda(cda)), bridge_address)
        await s.gp.wait_for(_bridge_notice(s.room, "Document n° 2"), 30)
        doc2 = await documents.by_number(pathway_id, 2)
        assert (doc2.mime, doc2.type_code) == ("text/xml", "11490-0")
        ask2 = await s.gp.send(s.room, "Envoi du document 2 (demande de test)")
        await mail.add_request(Request(ask2, pathway_id, s.room, s.gp.user_id, CARDIO, "Le CR structuré.", doc2.id))
        sent2 = await wait_mail(s.mail, cardio, lambda m: _xdm_part(m) is not None and "CR structuré" in
                                m.get_body(("plain",)).get_content(), 30)
        assert sent2["X-MSS-INS"] == "O" and sent2["X-MSS-CODECDA"] == "11490-0"
        [out2] = read_xdm(_xdm_part(sent2).get_content()).documents
        assert out2.data == cda and out2.cda_patient_ins == INS

        # The index says one thing, the media repository another: nothing leaves, the room is told why.
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE document SET sha256 = :h WHERE id = :i"), {"h": "0" * 64, "i": doc.id})
        ask3 = await s.gp.send(s.room, "Envoi du document 1 (empreinte faussée)")
        await mail.add_request(Request(ask3, pathway_id, s.room, s.gp.user_id, CARDIO, "", doc.id))
        refused = await s.gp.wait_for(_bridge_notice(s.room, "Document non envoyé"), 30)
        assert "empreinte" in refused.body and "document.hash_mismatch" in refused.body
        assert _content(refused)["m.relates_to"]["event_id"] == ask3
        assert await _request_state(engine, ask3) == "failed"
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM mail_out WHERE source_event_id = :e"),
                                       {"e": ask3})).scalar() == 0, "nothing queued"

    log = s.bridge.log_path.read_text(errors="replace")
    assert "Lettre de liaison de sortie" not in log and "CR de sortie" not in log, "no file name in the logs"


@pytest.fixture
def clamd_link():
    """A socket path for the bridge's config that leads to no clamd until the test links it to one."""
    where = tempfile.mkdtemp(prefix="av-", dir="/tmp")
    yield os.path.join(where, "clamd.sock")
    shutil.rmtree(where, ignore_errors=True)


async def test_refused_files_are_not_posted(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path,
                                            clamd_link):
    """A program disguised as a PDF and the EICAR test virus are never uploaded; the notice says why; the clean
    file of the same mail is indexed. While clamd is unreachable, the mail waits in the inbox."""
    link = clamd_link
    s = await open_structure(clinician, with_documents(bot_process, documents_section(clamd_socket=link)),
                             bridge_process, synapse, mail_gateway, tmp_path / "bridge")
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    msg = letter(cardio, to, subject="Trois pièces", text="Voici trois pièces jointes.")
    clean = b"%PDF-1.4\nbilan propre\n%%EOF\n" + secrets.token_bytes(512)
    msg.add_attachment(b"MZ\x90\x00\x03\x00\x00\x00" + secrets.token_bytes(256), maintype="application",
                       subtype="pdf", filename="ordonnance-piegee.pdf")
    msg.add_attachment(EICAR, maintype="text", subtype="plain", filename="notes-virus.txt")
    msg.add_attachment(clean, maintype="application", subtype="pdf", filename="bilan-propre.pdf")
    await send_mail(s.mail, cardio, msg, to)

    # clamd unreachable: nothing is posted, the mail waits (the bridge retries at each poll).
    await asyncio.sleep(8)
    assert not [e for r, e in s.gp.events if r == s.room and is_puppet(getattr(e, "sender", ""))], \
        "the sender's puppet does not even join before the files are checked"
    assert s.bridge.events("mail.in_retry_later"), s.bridge.output()

    with running_clamd(tmp_path / "clamd") as clamd:
        os.symlink(clamd.socket_path, link)
        text_event = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                         and "Trois pièces" in e.body, 60)
        notice = await s.gp.wait_for(_bridge_notice(s.room, "indexé"), 30)
    assert "1 pièce(s) jointe(s)" in text_event.body, "only what is posted is counted"
    assert _content(notice)["m.relates_to"]["event_id"] == text_event.event_id
    body = notice.body
    assert "« bilan-propre.pdf » indexé" in body and "!doc 1" in body, body
    assert "« ordonnance-piegee.pdf » n'a pas été déposé" in body
    assert "se présente comme un PDF mais contient un programme exécutable" in body
    assert "document.type_spoofed" in body
    assert "« notes-virus.txt » n'a pas été déposé" in body and f"virus « {REPORTED} »" in body
    assert "document.infected" in body
    files = _puppet_files(s)
    assert [_content(e)["body"] for e in files] == ["bilan-propre.pdf"], "refused files are never uploaded"

    async with database(s) as engine:
        pathway_id = await _pathway_id(engine, s.room)
        [doc] = await DocumentStore(engine).of_pathway(pathway_id)
        assert (doc.title, doc.number, doc.sha256) == ("bilan-propre.pdf", 1, hashlib.sha256(clean).hexdigest())
        assert doc.event_id == files[0].event_id
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM document"))).scalar() == 1, "nothing else kept"
            assert (await conn.execute(text("SELECT state FROM mail_in ORDER BY received_at DESC"))).scalar() \
                == "posted"
    log = s.bridge.log_path.read_text(errors="replace")
    for name in ("ordonnance-piegee", "notes-virus", "bilan-propre"):
        assert name not in log, f"{name} in the bridge's log"


async def test_doc_envoyer_end_to_end(structure):
    """J6 through the bot: the GP sends document 1 to the cardiologist, a correspondent of the pathway since she
    wrote; she reads it over IMAP as IHE_XDM.ZIP. Then a CDA the GP posted in Element goes the same way."""
    s = structure
    cardio = box(s.mail, CARDIO)
    bridge_address = s.mail["bridge_address"]
    await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="Sortie", text="La lettre.",
                                           xdm=xdm_letter()), bridge_address)
    await s.gp.wait_for(_bridge_notice(s.room, "Document n° 1"), 30)
    reply, _ = await s.gp.ask(s.room, f"!doc envoyer 1 {CARDIO} Pour la consultation de jeudi.", timeout=30)
    try:
        sent = await wait_mail(s.mail, cardio, lambda m: _xdm_part(m) is not None, 30)
    except TimeoutError:
        pytest.fail(f"no IHE_XDM.ZIP mail for the cardiologist; the bot answered: {reply.body}")
    assert "Pour la consultation de jeudi." in sent.get_body(("plain",)).get_content()
    assert "X-MSS-INS" not in sent and "X-MSS-CODECDA" not in sent
    [out] = read_xdm(_xdm_part(sent).get_content()).documents
    assert (out.patient_ins, out.patient_oid, out.type_code) == (INS, TEST_OID, "11490-0")
    assert out.data == PDF
    async with database(s) as engine:
        documents = DocumentStore(engine)
        pathway_id = await _pathway_id(engine, s.room)
        doc = await documents.by_number(pathway_id, 1)
        assert hashlib.sha256(out.data).hexdigest() == doc.sha256

        # A CDA carrying the INS, posted by the GP in Element (indexed by the bot), leaves with the CDA headers.
        cda = cda_letter(code="11488-4")
        posted = await s.gp.send_file(s.room, cda, "cr-consultation.xml", "text/xml")
        deadline = asyncio.get_running_loop().time() + 30
        while (doc2 := await documents.by_event(posted)) is None or doc2.state == "pending":
            assert asyncio.get_running_loop().time() < deadline, "the bot did not index the CDA"
            await asyncio.sleep(0.2)
        assert doc2.state == "indexed", doc2
        reply, _ = await s.gp.ask(s.room, f"!doc envoyer {doc2.number} {CARDIO}", timeout=30)
        try:
            sent2 = await wait_mail(s.mail, cardio, lambda m: m.get("X-MSS-CODECDA") is not None, 30)
        except TimeoutError:
            pytest.fail(f"no CDA mail for the cardiologist; the bot answered: {reply.body}")
        assert sent2["X-MSS-INS"] == "O" and sent2["X-MSS-CODECDA"] == "11488-4"
        [out2] = read_xdm(_xdm_part(sent2).get_content()).documents
        assert out2.data == cda and out2.cda_patient_ins == INS and out2.mime_type == "text/xml"

        # !docs shows what came by mail and what was posted in Element; !doc gives the mail's type code.
        listing, _ = await s.gp.ask(s.room, "!docs", timeout=30)
        assert "MSSanté" in listing.body and "Element" in listing.body, listing.body
        assert "cr-consultation.xml" in listing.body
        detail, _ = await s.gp.ask(s.room, "!doc 1", timeout=30)
        assert "(code 11490-0)" in detail.body and "via MSSanté" in detail.body, detail.body

        # Refused by the policy: nothing asked of the bridge, nothing sent.
        for address, rule in (("inconnu@messagerie-ordinaire.test", "mail.untrusted_domain"),
                              ("resultats@labo-demo.mssante.test", "outside.no_consent")):
            refused, asked = await s.gp.ask(s.room, f"!doc envoyer 1 {address}", timeout=30)
            assert "Document non envoyé" in refused.body and rule in refused.body, refused.body
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT COUNT(*) FROM mss_request WHERE event_id = :e"),
                                           {"e": asked})).scalar() == 0
        missing, _ = await s.gp.ask(s.room, f"!doc envoyer 7 {CARDIO}", timeout=30)
        assert "Aucun document n° 7 dans ce parcours" in missing.body


# --- replay after a crash, the Matrix edge faked (the index on SQLite and PostgreSQL) -------------------


class FakeMatrix:
    """The homeserver as a puppet sees it: uploads counted, sends deduped on the transaction id as Synapse does."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.uploads: list[bytes] = []
        self.sent: dict[str, tuple[str, dict]] = {}
        self.kicked = False            # a member removed this account from the room: its sends are refused
        self.kicked_after: int | None = None   # … once it has sent this many events

    async def upload_encrypted(self, data: bytes) -> dict:
        self.uploads.append(data)
        return {"url": f"mxc://hs/{len(self.uploads)}", "key": {"k": "k"}, "iv": "iv", "hashes": {"sha256": "h"},
                "v": "v2"}

    async def send(self, room_id: str, content: dict, txn_id: str) -> str:
        if self.kicked:
            raise MatrixError("send", SimpleNamespace(status_code="M_FORBIDDEN", message="User not in room"))
        if txn_id not in self.sent:
            self.sent[txn_id] = (f"${self.user_id[1:4]}{len(self.sent)}", content)
        self.kicked = self.kicked_after is not None and len(self.sent) >= self.kicked_after
        return self.sent[txn_id][0]

    async def refresh_members(self, room_id: str) -> None:
        pass


class FakePuppets:
    def __init__(self, matrix: FakeMatrix) -> None:
        self.matrix = matrix

    async def get(self, address: str, name: str, known_name: str | None = None, listed=None):
        return SimpleNamespace(user_id=self.matrix.user_id), self.matrix

    async def enter(self, puppet, matrix, room_id: str, by_hand: bool = False) -> None:
        if self.matrix.kicked:
            raise ShutOut("leave")



async def _deps(engine, antivirus: Antivirus = Antivirus()):
    pathways = PathwayStore(engine)
    patient = await pathways.add_patient(ins=INS, oid=TEST_OID, birth_name="DURAND", first_names="Marcel",
                                         birth_date=date(1948, 5, 12), sex="M", actor="@coord:hs")
    pathway = await pathways.add_pathway(patient_id=patient.id, type_key="insuffisance-cardiaque", code="P-TEST1",
                                         actor="@coord:hs")
    puppet, bridge = FakeMatrix("@mss_0c6f2a:hs"), FakeMatrix("@mss_relais:hs")
    shared = shared_on(engine, Knobs(), bridge=True, trusted=TrustedDomains(frozenset()))
    d = Deps.of(shared, settings=None, store=None, matrix=bridge, puppets=FakePuppets(puppet), smtp=None,
                metrics=None, antivirus=antivirus)
    route = Route(PathwayRef(pathway.id, pathway.code, patient.id, "!room:hs", True), None, "selon l'INS du document")
    return d, route, puppet, bridge


def _mixed_mail() -> bytes:
    sender = {"display_name": "Dr Camille Lefebvre", "address": CARDIO}
    msg = letter(sender, "liaison@msp-demo.mssante.test", subject="Deux pièces", text="…", xdm=xdm_letter())
    msg.add_attachment(b"MZ\x90\x00" + bytes(64), maintype="application", subtype="pdf", filename="faux.pdf")
    return bytes(msg)


async def test_a_mail_replayed_after_a_crash_posts_and_indexes_its_files_once(engine):
    d, route, puppet, bridge = await _deps(engine)
    mail = parse_mail(_mixed_mail())
    first = await post_mail(d, mail_id="mail-1", mail=mail, xdm=xdm_of(mail), route=route)
    again = await post_mail(d, mail_id="mail-1", mail=mail, xdm=xdm_of(mail), route=route)
    assert again == first
    assert puppet.uploads == [PDF], "the refused file is never uploaded, the allowed one once"
    assert len(puppet.sent) == 2 and len(bridge.sent) == 1, "text + file by the puppet, one notice by the bridge"
    [doc] = await d.documents.of_pathway(route.pathway.id)
    assert (doc.number, doc.source, doc.doctype, doc.type_code) == (1, "mssante", "lettre-liaison", "11490-0")
    [(_, notice)] = bridge.sent.values()
    assert notice["msgtype"] == "m.notice" and notice["m.relates_to"]["event_id"] == first
    assert "Document n° 1" in notice["body"] and "« faux.pdf » n'a pas été déposé" in notice["body"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM document"))).scalar() == 1


async def test_a_puppet_removed_between_a_mails_text_and_its_file_does_not_cut_the_mail_in_half(engine):
    """A member removes the correspondent while her letter is being posted (CI saw it: the kick landed between
    the text and the PDF). The pass is refused (the next one asks the law again); the letter came before their
    decision: its file follows by the bridge's own account, in its thread, and the mail is not set aside half
    posted; a replay after a crash adds nothing."""
    d, route, puppet, bridge = await _deps(engine)
    puppet.kicked_after = 1   # the kick lands once the text is in
    mail = parse_mail(_mixed_mail())
    with pytest.raises(MatrixError, match="M_FORBIDDEN"):   # the inbound loop tries the mail again
        await post_mail(d, mail_id="mail-3", mail=mail, xdm=xdm_of(mail), route=route)
    [(first, text_)] = [(e, c) for e, c in puppet.sent.values()]
    assert text_["msgtype"] == "m.text" and not bridge.sent
    assert await post_mail(d, mail_id="mail-3", mail=mail, xdm=xdm_of(mail), route=route) == first
    assert len(puppet.sent) == 1, "its text is not posted again"
    [file] = [c for _, c in bridge.sent.values() if c["msgtype"] == "m.file"]
    assert file["m.relates_to"]["event_id"] == first, "in the letter's thread"
    [notice] = [c for _, c in bridge.sent.values() if c["msgtype"] == "m.notice"]
    assert notice["body"].startswith(REST_BY_RELAY) and "Document n° 1" in notice["body"]
    assert puppet.uploads == [PDF], "uploaded once, by the puppet, before the kick: the same upload is posted"

    again = await post_mail(d, mail_id="mail-3", mail=mail, xdm=xdm_of(mail), route=route)   # a crash before its end
    assert again == first and len(puppet.sent) == 1 and len(bridge.sent) == 2
    [doc] = await d.documents.of_pathway(route.pathway.id)
    assert doc.number == 1 and doc.author == CARDIO


async def test_a_file_posted_before_the_removal_is_not_posted_again_by_the_relay(engine):
    d, route, puppet, bridge = await _deps(engine)
    puppet.kicked_after = 2   # the text and the first file are in
    sender = {"display_name": "Dr Camille Lefebvre", "address": CARDIO}
    msg = letter(sender, "liaison@msp-demo.mssante.test", subject="Deux lettres", text="…", xdm=xdm_letter())
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="seconde.pdf")
    mail = parse_mail(bytes(msg))
    with pytest.raises(MatrixError, match="M_FORBIDDEN"):
        await post_mail(d, mail_id="mail-5", mail=mail, xdm=xdm_of(mail), route=route)
    first = await post_mail(d, mail_id="mail-5", mail=mail, xdm=xdm_of(mail), route=route)
    assert [c["msgtype"] for _, c in puppet.sent.values()] == ["m.text", "m.file"]
    assert [c["msgtype"] for _, c in bridge.sent.values()] == ["m.file", "m.notice"], "the second file only"
    docs = await d.documents.of_pathway(route.pathway.id)
    assert sorted(doc.number for doc in docs) == [1, 2] and all(doc.event_id for doc in docs)
    assert {doc.thread_root for doc in docs} == {first}


async def test_a_puppet_removed_before_a_mail_posts_none_of_it(engine):
    d, route, puppet, bridge = await _deps(engine)
    puppet.kicked = True
    mail = parse_mail(_mixed_mail())
    with pytest.raises(ShutOut):
        await post_mail(d, mail_id="mail-4", mail=mail, xdm=xdm_of(mail), route=route)
    assert not puppet.sent and not bridge.sent and not puppet.uploads
    assert await d.mail.thread_of_message([mail.message_id]) is None


async def test_an_antivirus_that_does_not_answer_makes_the_mail_wait_then_refuses(engine, tmp_path):
    d, route, puppet, bridge = await _deps(engine, Antivirus(str(tmp_path / "no-clamd.sock"), 1.0))
    mail = parse_mail(_mixed_mail())
    with pytest.raises(AntivirusUnavailable):
        await post_mail(d, mail_id="mail-2", mail=mail, xdm=xdm_of(mail), route=route)
    assert not puppet.sent and not puppet.uploads, "nothing posted while the mail waits"
    d.scan_patience.since["mail-2"] = time.monotonic() - SCAN_PATIENCE_SECONDS - 1
    await post_mail(d, mail_id="mail-2", mail=mail, xdm=xdm_of(mail), route=route)
    assert not puppet.uploads and "mail-2" not in d.scan_patience.since
    [(_, notice)] = bridge.sent.values()
    assert notice["body"].count("n'a pas été déposé") == 2 and "document.scan_failed" in notice["body"]
    assert "renvoyer" in notice["body"] and "Réessayez" not in notice["body"], "a mail is not retried by the room"


async def test_a_thread_the_relay_can_find_always_has_its_correspondent(engine):
    """A stop between a mail's text and its records (CI saw it under load: the bridge stopped right after the text,
    and the reply caught up after the restart was refused, its writer not yet known as a correspondent). Whenever
    the thread is known, so is who wrote it."""
    d, route, puppet, bridge = await _deps(engine)
    route = replace(route, basis="ins")   # routed by the INS of its document: its writer takes part in the care
    mail = parse_mail(_mixed_mail())
    recorded = d.mail.add_thread

    async def stopped(*_args, **_kwargs):
        raise asyncio.CancelledError()   # the service stops here

    d.mail.add_thread = stopped
    with pytest.raises(asyncio.CancelledError):
        await post_mail(d, mail_id="mail-4", mail=mail, xdm=xdm_of(mail), route=route)
    assert await d.mail.is_correspondent(route.pathway.id, CARDIO), "recorded before the thread"
    d.mail.add_thread = recorded
    first = await post_mail(d, mail_id="mail-4", mail=mail, xdm=xdm_of(mail), route=route)
    thread = await d.mail.thread_of_event(first)
    assert thread is not None and await d.mail.is_correspondent(thread.pathway_id, thread.correspondent)
