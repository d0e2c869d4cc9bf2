"""Issue #13: an external sender is who the operator authenticated, and shows under a name no one else can wear.

Pure checks of the puppet's name and of the judge (`sender_mismatch`), then end to end on the real servers:
the laboratory writing under the cardiologist's name, and a mail whose From is not the authenticated sender.
"""
from __future__ import annotations

import asyncio
import imaplib
import sqlite3
import ssl
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nio import RoomMemberEvent, RoomMessage, RoomMessageText

from bridge.stages.judge import sender_mismatch
from bridge.mail_in import MailRejected, parse_mail
from bridge.puppets import SUFFIX, puppet_display_name
from liaison.puppet_names import puppet_localpart
from liaison.stores.directory import Entry
from policies.professions import find_profession
from tests.support.mss import box, is_puppet, letter, open_structure, send_mail

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
LAB = "resultats@labo-demo.mssante.test"
CARDIO = "c.lefebvre@chu-demo.mssante.test"
FAKE = "Dr Camille Lefebvre (CHU)"


# --- the puppet's name ----------------------------------------------------------

def test_the_from_name_comes_after_the_address_s_domain():
    """The domain first (#27): a reader who trusts the first words reads who owns the address."""
    assert puppet_display_name(FAKE, LAB) == "labo-demo.mssante.test · Dr Camille Lefebvre (CHU) (MSSanté)"


def test_a_known_name_wins():
    assert puppet_display_name(FAKE, LAB, "Laboratoire Biodémo") == "Laboratoire Biodémo (MSSanté)"
    assert puppet_display_name(FAKE, LAB, " \u202e ") == puppet_display_name(FAKE, LAB), "a blank known name is none"


def listed(**kw) -> Entry:
    """The cardiologist as the national directory lists her (#27)."""
    fields = dict(national_id="810101234567", rpps="10101234567", civility="DR", last_name="Lefebvre",
                  first_name="Camille", profession=find_profession("medecin"), profession_label="Médecin",
                  specialty="Cardiologie et maladies vasculaires", structure="CHU de démonstration",
                  commune="Lyon", postcode="69003", department="69", mailbox=CARDIO)
    return Entry(**{**fields, **kw})


def test_the_directory_names_an_address_it_knows_whatever_its_from_says():
    assert puppet_display_name("Laboratoire Biodémo", CARDIO, None, listed()) == \
        "Dr Camille Lefebvre (cardiologie, CHU de démonstration) (MSSanté)"
    assert puppet_display_name("", CARDIO, None, listed(specialty=None)) == \
        "Dr Camille Lefebvre (médecin, CHU de démonstration) (MSSanté)"
    assert puppet_display_name(FAKE, LAB, "Laboratoire Biodémo", listed()) == "Laboratoire Biodémo (MSSanté)", \
        "the coordination's own record first"
    service = listed(national_id=None, rpps=None, civility=None, last_name="CHU de démonstration", first_name=None,
                     profession=None, profession_label=None, specialty=None)
    assert puppet_display_name(FAKE, CARDIO, None, service) == "CHU de démonstration (MSSanté)"
    shown = puppet_display_name("", CARDIO, None, listed(last_name="L\u202eefebvre" + "x" * 200, structure="S" * 300))
    assert len(shown) <= 255 and "\u202e" not in shown


@pytest.mark.parametrize("name", ["", "   ", "\u202e\u200b", CARDIO, f"<{CARDIO}>", "(MSSanté) · "])
def test_an_empty_name_shows_the_address(name):
    assert puppet_display_name(name, LAB.upper()) == LAB + SUFFIX


def test_the_name_cannot_forge_the_tail():
    shown = puppet_display_name(f"Dr Camille Lefebvre · chu-demo.mssante.test (MSSanté) {CARDIO}", LAB)
    assert shown == "labo-demo.mssante.test · Dr Camille Lefebvre chu-demo.mssante.test (MSSanté)"
    assert puppet_display_name("Dr X （ＭＳＳａｎｔé） ＠chu", LAB) == "labo-demo.mssante.test · Dr X (MSSanté)"


def test_controls_bidi_and_spaces_are_cleaned_and_the_length_capped():
    assert puppet_display_name("Dr\u202e  Hélène\r\n\tDupré\u200d", LAB) == \
        "labo-demo.mssante.test · Dr Hélène Dupré" + SUFFIX
    long = puppet_display_name("x" * 500, LAB)
    assert long == "labo-demo.mssante.test · " + "x" * 63 + "…" + SUFFIX


def test_a_look_alike_domain_shows_in_ascii():
    cyrillic_o = "chu-dem\u043e.mssante.test"
    assert puppet_display_name("Dr X", f"c.lefebvre@{cyrillic_o}") == "xn--chu-dem-gjg.mssante.test · Dr X (MSSanté)"


@given(name=st.text(max_size=300), local=st.from_regex(r"[a-z0-9.]{1,20}", fullmatch=True),
       domain=st.from_regex(r"[a-z0-9-]{1,70}(\.[a-z0-9-]{1,70}){1,3}", fullmatch=True))
def test_any_name_starts_with_the_real_domain(name, local, domain):
    address = f"{local}@{domain}"
    shown = puppet_display_name(name, address)
    assert shown.count("(MSSanté)") == 1 and shown.count("·") <= 1 and len(shown) <= 255
    tail = domain if len(domain) <= 120 else "…" + domain[-119:]   # the end of a long domain: its registered part
    whole = address if len(address) <= 184 else "…" + address[-183:]
    assert shown == whole + SUFFIX or (shown.startswith(f"{tail} · ") and shown.endswith(SUFFIX))
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@given(local=st.from_regex(r"[a-z0-9.+-]{1,64}", fullmatch=True),
       domain=st.from_regex(r"[a-z0-9-]{1,60}(\.[a-z0-9-]{1,60}){1,3}", fullmatch=True))
def test_a_puppet_s_user_id_names_no_one(local, domain):
    """Its id reaches Synapse's log and database: keyed, so no one can try addresses against it."""
    address = f"{local}@{domain}"
    ident = puppet_localpart("mss_", address, "k" * 32)
    assert ident == puppet_localpart("mss_", address.upper(), "k" * 32), "an address's case is not its identity"
    assert ident != puppet_localpart("mss_", address, "j" * 32), "another install, another id"
    assert ident.startswith("mss_") and len(ident) == 36 and set(ident[4:]) <= set("0123456789abcdef")


# --- the judge --------------------------------------------------------------------

def parsed(name: str, *headers: str):
    raw = (FIXTURES / name).read_bytes()
    return parse_mail("".join(h + "\n" for h in headers).encode() + raw)


def test_from_other_than_the_authenticated_sender_is_quarantined():
    q = sender_mismatch(parsed("from_not_authenticated.eml"))
    assert q.code == "identity_mismatch"
    assert CARDIO in q.reason and LAB in q.reason and "authentifié" in q.reason


def test_the_authenticated_sender_passes_whatever_its_name():
    assert sender_mismatch(parsed("authenticated_letter.eml")) is None


def test_no_authenticated_sender_is_set_aside_unless_the_operator_says_its_gateway_writes_none():
    """A mail with neither Return-Path nor a `pass` (the older fixtures): nothing says who sent it. Set aside
    (`identity_unverified`), unless `mailbox.require_authenticated_sender` is false, where it is no mismatch."""
    checked = []
    for path in sorted(FIXTURES.glob("*.eml")):
        try:
            mail = parse_mail(path.read_bytes())
        except MailRejected:
            continue
        if mail.envelope_sender is None and not any(r.result == "pass" for r in mail.auth_results):
            q = sender_mismatch(mail)
            assert q is not None and q.code == "identity_unverified", path.name
            assert mail.from_address in q.reason and "authentifié" in q.reason
            assert sender_mismatch(mail, required=False) is None, path.name
            checked.append(path.name)
    assert len(checked) >= 10 and "dsn_delivered.eml" in checked and "hospital_letter_pdf.eml" in checked


def test_a_failed_check_authenticates_no_one():
    mail = parsed("reply_threaded.eml", "Authentication-Results: mx; spf=fail smtp.mailfrom=medecin.mssante.fr")
    assert sender_mismatch(mail).code == "identity_unverified"
    assert sender_mismatch(parsed("reply_threaded.eml", "Return-Path: <dr.martin@medecin.mssante.fr>")) is None


@pytest.mark.parametrize("fixture", ["dsn_delivered.eml", "dsn_failed_511.eml", "mdn_displayed.eml"])
def test_a_receipt_comes_with_the_null_sender(fixture):
    assert sender_mismatch(parsed(fixture, "Return-Path: <>")) is None
    mail = parsed(fixture, "Return-Path: <>", "Authentication-Results: mx; spf=pass smtp.mailfrom=postmaster@"
                  + parse_mail((FIXTURES / fixture).read_bytes()).from_address.rpartition("@")[2])
    assert sender_mismatch(mail) is None, "the reporting host's own identity, same domain"


@pytest.mark.parametrize("fixture", ["reply_threaded.eml", "auto_replied.eml"])
def test_the_null_sender_is_not_enough_for_a_mail_that_would_be_posted(fixture):
    q = sender_mismatch(parsed(fixture, "Return-Path: <>"))
    assert q.code == "identity_mismatch" and "expéditeur vide" in q.reason


@pytest.mark.parametrize("header,mismatch", [
    ("Return-Path: <DR.MARTIN@Medecin.MSSante.fr>", False),
    ("Return-Path: <secretariat@medecin.mssante.fr>", True),
    ("Authentication-Results: mx; spf=pass smtp.mailfrom=medecin.mssante.fr", False),
    ("Authentication-Results: mx; spf=pass smtp.mailfrom=autre.mssante.fr", True),
    ("Authentication-Results: mx; spf=fail smtp.mailfrom=autre.mssante.fr", False),   # no one: see above
    ("Authentication-Results: mx; dmarc=pass header.from=autre.mssante.fr", True),
    ("Authentication-Results: mx; auth=pass smtp.mailfrom=secretariat@medecin.mssante.fr", True),
])
def test_every_authenticated_identity_must_agree(header, mismatch):
    q = sender_mismatch(parsed("reply_threaded.eml", header), required=False)
    assert (q is not None) is mismatch
    assert q is None or q.code == "identity_mismatch"


# --- end to end -------------------------------------------------------------------

@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


def _puppets_in(s):
    return [e for r, e in s.gp.events if r == s.room and is_puppet(getattr(e, "sender", ""))]


async def test_the_laboratory_writing_as_the_cardiologist_shows_under_its_own_domain(structure):
    s = structure
    lab = box(s.mail, LAB)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    await send_mail(s.mail, lab, letter(lab, to, subject="Bilan", text="Premier bilan."), to)
    first = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                and "Premier bilan" in e.body, 30)
    assert first.sender == s.puppet(LAB)
    assert s.gp.client.rooms[s.room].user_name(first.sender) == \
        "labo-demo.mssante.test · Laboratoire de biologie de démonstration (MSSanté)"

    await send_mail(s.mail, lab, letter({**lab, "display_name": FAKE}, to, subject="Bilan", text="Second bilan."), to)
    renamed = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMemberEvent)
                                  and e.state_key == first.sender and FAKE in (e.content.get("displayname") or ""), 30)
    second = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                 and "Second bilan" in e.body, 30)
    assert second.sender == first.sender, "the same puppet: the lab's address"
    shown = renamed.content["displayname"]   # the room's member event: what every client shows
    assert shown == f"labo-demo.mssante.test · {FAKE} (MSSanté)"
    assert "chu-demo" not in shown, "never the cardiologist's"


async def test_a_from_other_than_the_certificate_is_quarantined_never_posted(structure):
    s = structure
    lab, cardio = box(s.mail, LAB), box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    forged = letter({**cardio, "display_name": FAKE}, to, subject="Résultats", text="Texte usurpé.")
    await send_mail(s.mail, lab, forged, to)   # the lab's certificate and MAIL FROM, the cardiologist's From

    notice = await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and e.sender.startswith("@mss_relais")
                                    and "quarantaine" in getattr(e, "body", ""), 30)
    assert "n'est pas celui que la messagerie MSSanté a authentifié" in notice.body
    assert CARDIO in notice.body and LAB in notice.body and "!mss router" in notice.body
    db = sqlite3.connect(s.bot.database_url.split("///", 1)[1])
    assert db.execute("SELECT reason_code, from_address FROM mss_quarantine").fetchall() == \
        [("identity_mismatch", CARDIO)]

    # The lab's own mail after it goes through: the forged one was held, not merely late.
    await send_mail(s.mail, lab, letter(lab, to, subject="Résultats", text="Texte authentique."), to)
    await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                        and "Texte authentique" in e.body, 30)
    await asyncio.sleep(1)
    posted = _puppets_in(s)
    assert not [e for e in posted if "usurpé" in getattr(e, "body", "")], "nothing of it in the patient room"
    assert not [e for e in posted if e.sender == s.puppet(CARDIO)], "the cardiologist's puppet never spoke"


def _append(mail: dict, b: dict, raw: bytes) -> None:
    """Files a mail straight into a box by IMAP: no delivery, so no Return-Path, and no Authentication-Results."""
    context = ssl.create_default_context(cafile=mail["ca"])
    context.load_cert_chain(b["cert"], b["key"])
    with imaplib.IMAP4_SSL(mail["imap"]["host"], mail["imap"]["port"], ssl_context=context) as imap:
        imap.login(b["imap_user"], b["imap_password"])
        status, _ = imap.append("INBOX", None, None, raw)
        assert status == "OK"


async def test_a_mail_no_header_authenticates_is_set_aside_as_unverified(structure):
    """#24: a mail filed with neither Return-Path nor Authentication-Results says nothing of who sent it: it goes to
    the quarantine (identity_unverified), never to the room, and the same sender's delivered mail still goes."""
    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    raw = bytes(letter(cardio, to, subject="Résultats", text="Texte sans expéditeur authentifié."))
    assert b"Return-Path" not in raw and b"Authentication-Results" not in raw
    await asyncio.to_thread(_append, s.mail, box(s.mail, s.mail["bridge"]["address"]), raw)

    notice = await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and e.sender.startswith("@mss_relais")
                                    and "quarantaine" in getattr(e, "body", ""), 30)
    assert "rien n'atteste que ce courriel vient de" in notice.body and CARDIO in notice.body
    db = sqlite3.connect(s.bot.database_url.split("///", 1)[1])
    assert db.execute("SELECT reason_code, from_address FROM mss_quarantine").fetchall() == \
        [("identity_unverified", CARDIO)]

    await send_mail(s.mail, cardio, letter(cardio, to, subject="Résultats", text="Texte remis."), to)
    delivered = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                    and "Texte remis" in e.body, 30)
    assert delivered.sender == s.puppet(CARDIO)
    assert not [e for e in _puppets_in(s) if "sans expéditeur" in getattr(e, "body", "")], "never in the room"
