"""Delivery and read receipts are recognised, and our own read receipt is well formed."""
from __future__ import annotations

from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mail_in import parse_mail
from bridge.receipts import Receipt, compose_mdn, dsn_reason, parse_receipt

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def parsed(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def fixture(name: str) -> EmailMessage:
    return parsed((FIXTURES / name).read_bytes())


def test_dsn_delivered():
    assert parse_receipt(fixture("dsn_delivered.eml")) == Receipt(
        kind="dsn", original_message_id="liaison-out-7@liaison-test.mssante.fr",
        envelope_id="liaison-env-0007", status="delivered", reason="",
        recipient="cardiologie@chu-test.mssante.fr")


def test_dsn_failed_user_unknown():
    r = parse_receipt(fixture("dsn_failed_511.eml"))
    assert r is not None
    assert (r.kind, r.status, r.recipient) == ("dsn", "failed", "dr.inconnu@medecin.mssante.fr")
    assert r.original_message_id == "liaison-out-8@liaison-test.mssante.fr"  # from the returned message/rfc822
    assert r.envelope_id == "liaison-env-0008"
    assert r.reason == "la boîte aux lettres du destinataire n'existe pas."


def test_mdn_displayed():
    assert parse_receipt(fixture("mdn_displayed.eml")) == Receipt(
        kind="mdn", original_message_id="liaison-out-7@liaison-test.mssante.fr", envelope_id=None,
        status="displayed", reason="", recipient="dr.martin@medecin.mssante.fr")


@pytest.mark.parametrize("name", ["hospital_letter_pdf.eml", "auto_replied.eml", "smime_signed.eml",
                                  "html_only_hostile.eml"])
def test_ordinary_mails_are_not_receipts(name):
    assert parse_receipt(fixture(name)) is None


@pytest.mark.parametrize(("status", "diagnostic", "expected"), [
    ("5.1.1", "", "la boîte aux lettres du destinataire n'existe pas."),
    ("5.2.2", "smtp; 552 mailbox full", "la boîte aux lettres du destinataire est pleine."),
    ("4.4.1", "", "échec temporaire, l'opérateur réessaie."),
    ("4.2.2", "", "échec temporaire, l'opérateur réessaie."),
    ("5.7.1", "smtp; 550 5.7.1 relaying denied", "refusé par la politique du serveur destinataire."),
    ("5.7.26", "", "refusé par la politique du serveur destinataire."),
    ("", "smtp; 550 5.1.1 user unknown", "la boîte aux lettres du destinataire n'existe pas."),
    ("5.3.0", "smtp; 554 Message\r\n refusé\x00 par antivirus",
     "le système de messagerie du destinataire n'a pas accepté le message (code 5.3.0)."),
    ("5.0.0", "", "le serveur destinataire n'a pas accepté le message (code 5.0.0)."),
    ("", "", "le serveur destinataire n'a pas accepté le message."),
    ("5.6.0", "", "le contenu du message a été refusé par le serveur destinataire (code 5.6.0)."),
])
def test_dsn_reasons_in_french(status, diagnostic, expected):
    assert dsn_reason(status, diagnostic) == expected


def test_the_reason_is_our_sentence_never_the_reporting_server_s_text():
    for diagnostic in ("smtp; " + "x" * 1000, "smtp; 550 Votre patient est décédé, rappelez le 08 99 00 00 00",
                       "<a href=https://evil.example>cliquez</a>\r\nBcc: x@evil.example"):
        reason = dsn_reason("5.3.4", diagnostic)
        assert reason == "le système de messagerie du destinataire n'a pas accepté le message (code 5.3.4)."
        assert dsn_reason("", diagnostic) == "le serveur destinataire n'a pas accepté le message."


def _dsn(blocks: str, third: str = "", report_type: str = "delivery-status") -> bytes:
    return (f"From: MAILER-DAEMON@mx.fr\nContent-Type: multipart/report; report-type={report_type}; boundary=b\n\n"
            f"--b\nContent-Type: text/plain\n\nRapport\n--b\nContent-Type: message/delivery-status\n\n{blocks}\n"
            f"{third}--b--\n").encode()


def test_dsn_several_recipients_reports_the_failure():
    raw = _dsn("Reporting-MTA: dns; mx.fr\n\nFinal-Recipient: rfc822; ok@a.fr\nAction: delivered\nStatus: 2.0.0\n\n"
               "Final-Recipient: rfc822; Ko@b.fr\nAction: failed\nStatus: 5.2.2\n")
    r = parse_receipt(parsed(raw))
    assert r is not None and (r.status, r.recipient) == ("failed", "ko@b.fr")
    assert r.original_message_id is None and r.envelope_id is None


def test_dsn_delayed_and_action_from_status():
    delayed = parse_receipt(parsed(_dsn("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.fr\n"
                                        "Action: delayed\nStatus: 4.4.7\n")))
    assert delayed is not None and delayed.status == "delayed" and delayed.reason.startswith("échec temporaire")
    guessed = parse_receipt(parsed(_dsn("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.fr\nStatus: 5.1.1\n")))
    assert guessed is not None and guessed.status == "failed"


def test_dsn_envelope_id_used_when_no_headers_part():
    r = parse_receipt(parsed(_dsn("Original-Envelope-Id: <env-9@liaison>\n\nFinal-Recipient: rfc822; a@b.fr\n"
                                  "Action: relayed\nStatus: 2.0.0\n")))
    assert r is not None and r.original_message_id == "env-9@liaison" and r.status == "relayed"


def test_report_without_status_part_or_unknown_type():
    assert parse_receipt(parsed(_dsn("Reporting-MTA: dns; x\n", report_type="x-custom"))) is None
    no_part = b"From: a@b.fr\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n" \
              b"--b\nContent-Type: text/plain\n\nx\n--b--\n"
    assert parse_receipt(parsed(no_part)) is None
    assert parse_receipt(parsed(_dsn("Reporting-MTA: dns; x\n"))) is None  # no recipient block
    assert parse_receipt(parsed(_dsn("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.fr\n"
                                     "Action: bizarre\n"))) is None


def test_mdn_with_unknown_disposition_ignored():
    raw = (b"From: a@b.fr\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: message/disposition-notification\n\n"
           b"Disposition: manual-action/MDN-sent-manually; exploded\n\n--b--\n")
    assert parse_receipt(parsed(raw)) is None


def test_mdn_old_style_modifier_and_deleted():
    raw = (b"From: a@b.fr\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: message/disposition-notification\n\n"
           b"Original-Recipient: rfc822; Z@b.fr\nOriginal-Message-ID: <m1@x>\n"
           b"Disposition: manual-action/MDN-sent-manually; deleted/error\n\n--b--\n")
    r = parse_receipt(parsed(raw))
    assert r is not None and (r.status, r.recipient, r.original_message_id) == ("deleted", "z@b.fr", "m1@x")


def _mdn(**kw) -> EmailMessage:
    args = dict(original_message_id="<cr-1@chu-test.mssante.fr>", original_recipient="msp@liaison-test.mssante.fr",
                from_address="msp@liaison-test.mssante.fr", from_name="MSP des Tilleuls",
                to="cardiologie@chu-test.mssante.fr", subject="Compte rendu",
                date=datetime(2024, 12, 2, 10, 0, tzinfo=timezone.utc))
    args.update(kw)
    return compose_mdn(**args)


def test_compose_mdn_structure():
    msg = _mdn()
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "disposition-notification"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<cr-1@chu-test.mssante.fr>" == msg["References"]
    assert str(msg["Message-ID"]).endswith("@liaison-test.mssante.fr>")
    assert msg["To"] == "cardiologie@chu-test.mssante.fr"
    assert msg["Subject"] == "Accusé de lecture : Compte rendu"
    human, machine = msg.get_payload()
    assert "affiché dans Liaison" in human.get_content()
    fields = machine.as_string()
    for line in ("Reporting-UA: Liaison", "Original-Recipient: rfc822;msp@liaison-test.mssante.fr",
                 "Final-Recipient: rfc822;msp@liaison-test.mssante.fr",
                 "Original-Message-ID: <cr-1@chu-test.mssante.fr>",
                 "Disposition: automatic-action/MDN-sent-automatically; displayed"):
        assert line in fields
    raw = msg.as_bytes()
    assert b"\r\n" in raw and max(len(x) for x in raw.split(b"\r\n")) <= 998


def test_compose_mdn_round_trips_through_parse_mail():
    m = parse_mail(_mdn().as_bytes())
    assert m.receipt == Receipt(kind="mdn", original_message_id="cr-1@chu-test.mssante.fr", envelope_id=None,
                                status="displayed", reason="", recipient="msp@liaison-test.mssante.fr")
    assert m.auto_submitted and m.mdn_to is None
    assert m.in_reply_to == "cr-1@chu-test.mssante.fr"
    assert m.from_name == "MSP des Tilleuls"


def test_compose_mdn_blocks_header_injection():
    msg = _mdn(from_name="MSP\r\nBcc: x@evil.fr", subject="Objet\r\nBcc: x@evil.fr")
    raw = msg.as_bytes()
    assert b"\r\nBcc:" not in raw
    assert msg["Subject"] == "Accusé de lecture : Objet Bcc: x@evil.fr"
    for bad in ({"to": "a@b.fr\r\nBcc: x@evil.fr"}, {"original_message_id": "id\r\nBcc: x"},
                {"original_message_id": "<>"}, {"from_address": "pas une adresse"}):
        with pytest.raises(ValueError):
            _mdn(**bad)


ids = st.from_regex(r"\A[a-zA-Z0-9._%+-]{1,30}@[a-z0-9-]{1,20}\.[a-z]{2,6}\Z")


@settings(max_examples=60, deadline=None)
@given(original=ids, subject=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
       name=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_compose_parse_round_trip_property(original, subject, name):
    msg = _mdn(original_message_id=original, subject=subject, from_name=name)
    r = parse_mail(msg.as_bytes()).receipt
    assert r is not None and (r.kind, r.status, r.original_message_id) == ("mdn", "displayed", original)
