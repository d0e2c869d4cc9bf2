"""Mails the bridge sends: no header injection, proper encoding, threading, attachments."""
from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mail_out import OutAttachment, as_bytes, compose, header_text, message_id_for

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
BASE = {"From", "To", "Subject", "Date", "Message-ID", "Disposition-Notification-To", "X-Liaison-Event",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}


def make(**overrides):
    args = dict(from_address="msp@msp-demo.mssante.test", from_display="Dr Jeanne Martin (Liaison)",
                to="dr.lefebvre@chu-demo.mssante.test", subject="Suivi de M. X", text="Bonjour,\nmerci.",
                event_id="$ev1:liaison.test", now=NOW)
    args.update(overrides)
    return compose(**args)


def parsed(msg) -> email.message.EmailMessage:
    raw = as_bytes(msg)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    return email.message_from_bytes(raw, policy=email.policy.default)


def body(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def squeeze(text: str) -> str:
    """Text without its whitespace: the stdlib parser keeps the fold between two adjacent
    RFC 2047 encoded words as a space, which RFC 2047 §6.2 says to drop."""
    return "".join(text.split())


def names(msg) -> set[str]:
    return set(msg.keys())


def test_plain_message_headers_and_body():
    back = parsed(make(signature="Dr Jeanne Martin\nMSP de Démo"))
    assert names(back) == BASE
    assert back["From"].addresses[0].addr_spec == "msp@msp-demo.mssante.test"
    assert back["Disposition-Notification-To"] == "<msp@msp-demo.mssante.test>"
    assert back["X-Liaison-Event"] == "$ev1:liaison.test"
    assert body(back) == "Bonjour,\nmerci.\n\n-- \nDr Jeanne Martin\nMSP de Démo\n"
    assert back.get_content_charset() == "utf-8"


def test_no_mdn_when_not_requested():
    assert "Disposition-Notification-To" not in names(parsed(make(request_mdn=False)))


@pytest.mark.parametrize("evil", ["Dr X\r\nBcc: victime@evil.test", "Dr X\nX-Evil: 1", "Dr X\rX-Evil: 1",
                                  "Dr X\u2028X-Evil: 1", "Dr X\x85X-Evil: 1", "Dr X\x00\r\n\r\nbody"])
def test_crlf_injection_in_display_and_subject_adds_no_header(evil):
    back = parsed(make(from_display=evil, subject=evil))
    assert names(back) == BASE
    assert "\n" not in back["Subject"] and "\r" not in back["Subject"]
    assert back["From"].addresses[0].addr_spec == "msp@msp-demo.mssante.test"
    assert len(back["To"].addresses) == 1


def test_french_accents_in_display_name_are_rfc2047_encoded():
    raw = as_bytes(make(from_display="Dr Hélène Dupré-Çà", subject="Compte rendu : évolution"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["From"].addresses[0].display_name == "Dr Hélène Dupré-Çà"
    assert back["Subject"] == "Compte rendu : évolution"


def test_message_id_is_deterministic():
    expected = f"liaison.{hashlib.sha256(b'$ev1:liaison.test').hexdigest()[:32]}@msp-demo.mssante.test"
    assert message_id_for("$ev1:liaison.test", "msp-demo.mssante.test") == expected
    assert parsed(make())["Message-ID"] == f"<{expected}>"
    assert parsed(make(now=datetime(2030, 1, 1, tzinfo=timezone.utc)))["Message-ID"] == f"<{expected}>"
    assert message_id_for("$ev2:liaison.test", "msp-demo.mssante.test") != expected


def test_reply_threading():
    back = parsed(make(in_reply_to="<m2@chu-demo.mssante.test>",
                       references=("<m1@chu-demo.mssante.test>", "m2@chu-demo.mssante.test", "bad id", "<x>y>")))
    assert back["Subject"] == "Re: Suivi de M. X"
    assert back["In-Reply-To"] == "<m2@chu-demo.mssante.test>"
    assert back["References"].split() == ["<m1@chu-demo.mssante.test>", "<m2@chu-demo.mssante.test>"]
    assert parsed(make(subject="RE: déjà", in_reply_to="<a@b.fr>"))["Subject"] == "RE: déjà"


def test_references_capped_at_twenty_keeping_root_and_latest():
    refs = tuple(f"<m{i}@chu.fr>" for i in range(30))
    chain = parsed(make(references=refs, in_reply_to="<last@chu.fr>"))["References"].split()
    assert len(chain) == 20 and chain[0] == "<m0@chu.fr>" and chain[-1] == "<last@chu.fr>"


def test_reply_to_and_extra_headers():
    back = parsed(make(reply_to="coord@msp-demo.mssante.test",
                       extra_headers={"X-MSS-INS": "O", "X-MSS-CODECDA": "11490-0\r\nBcc: x@y.fr"}))
    assert names(back) == BASE | {"Reply-To", "X-MSS-INS", "X-MSS-CODECDA"}
    assert back["X-MSS-INS"] == "O" and back["X-MSS-CODECDA"] == "11490-0 Bcc: x@y.fr"


@pytest.mark.parametrize("headers", [{"Bcc": "x@y.fr"}, {"X-Bad Name": "1"}, {"X-Liaison-Event": "$other"},
                                     {"X-A\r\nBcc": "1"}, {"X-MSS-INS": "O", "x-mss-ins": "O"}])
def test_extra_headers_validated(headers):
    with pytest.raises(ValueError):
        make(extra_headers=headers)


@pytest.mark.parametrize("field, value", [
    ("to", "a@b.fr\r\nBcc: c@d.fr"), ("to", "a@b.fr, c@d.fr"), ("to", "Dr X <a@b.fr>"), ("to", "ab.fr"),
    ("to", "a@@b.fr"), ("from_address", "a b@c.fr"), ("reply_to", "x@"), ("to", "a@b_c.fr"),
    ("in_reply_to", "<a b@c>"), ("event_id", "$ev\r\nX: 1"),
])
def test_invalid_addresses_and_ids_refused_in_french(field, value):
    with pytest.raises(ValueError) as caught:
        make(**{field: value})
    assert any(word in str(caught.value) for word in ("adresse", "Adresse", "invalide", "refusé"))


def test_attachments_round_trip_with_rfc2231_names():
    pdf = OutAttachment("Lettre de liaison – été.pdf", "application/pdf", b"%PDF-1.4\x00\xff binaire")
    xdm = OutAttachment("IHE_XDM.ZIP", "application/zip", b"PK\x03\x04" + bytes(range(256)))
    raw = as_bytes(make(attachments=(pdf, xdm)))
    assert b"filename*=utf-8''" in raw
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back.get_content_type() == "multipart/mixed" and names(back) == BASE - {"Content-Transfer-Encoding"}
    parts = list(back.iter_attachments())
    assert [(p.get_filename(), p.get_content_type(), p.get_content()) for p in parts] == [
        (pdf.filename, "application/pdf", pdf.data), (xdm.filename, "application/zip", xdm.data)]
    assert all(p["Content-Transfer-Encoding"] == "base64" for p in parts)
    assert body(back.get_body()) == "Bonjour,\nmerci.\n"


def test_attachment_name_cannot_carry_a_path_or_header():
    att = OutAttachment("../../etc/passwd\r\nX-Evil: 1", "text/plain", b"x")
    part = next(parsed(make(attachments=(att,))).iter_attachments())
    assert part.get_filename() == "_.._etc_passwd X-Evil: 1" and "X-Evil" not in part.keys()
    with pytest.raises(ValueError):
        make(attachments=(OutAttachment("a.pdf", "application/pdf\r\nX-Evil: 1", b""),))


def test_header_text():
    assert header_text("  a\r\n b\t\x00c\u202eé  ") == "a b cé"
    assert header_text("x" * 500) == "x" * 200
    assert header_text("\u2066\u200fDr\u2069 X") == "Dr X"


@settings(max_examples=100, deadline=None)
@given(display=st.text(max_size=120), subject=st.text(max_size=300), reply=st.booleans())
def test_arbitrary_unicode_never_injects_a_header(display, subject, reply):
    msg = make(from_display=display, subject=subject, in_reply_to="<m1@chu.fr>" if reply else None)
    back = parsed(msg)
    expected = BASE | ({"In-Reply-To", "References"} if reply else set())
    assert names(back) == expected
    assert len(back.get_all("From")) == 1 and len(back.get_all("Subject")) == 1
    assert back["From"].addresses[0].addr_spec == "msp@msp-demo.mssante.test"
    assert squeeze(back["From"].addresses[0].display_name) == squeeze(header_text(display))
    want = header_text(subject)
    if reply and not want.lower().replace(" ", "").startswith("re:"):
        want = header_text(f"Re: {want}")
    assert squeeze(back["Subject"]) == squeeze(want)


async def test_the_signer_and_the_xdm_author_name_the_profession_in_the_members_gender():
    from dataclasses import replace
    from types import SimpleNamespace

    from bridge.documents_out import author_of
    from bridge.outbound import Outbound
    from liaison.stores.roster import RosterMember
    from policies.professions import find_profession

    nurse = RosterMember("@n:hs", "Sophie Bernard", find_profession("infirmier"), "", "MSP des Tilleuls", False, "F")

    class OneMember:
        async def get(self, user_id):
            return nurse if user_id == nurse.user_id else None

    settings = SimpleNamespace(structure="MSP des Tilleuls", display_name="MSP")
    name, signature = await Outbound(SimpleNamespace(roster=OneMember(), settings=settings)).signer("@n:hs", "P-AAAAA")
    assert name == "Sophie Bernard (Infirmière)"
    assert signature.splitlines()[0] == "Sophie Bernard, Infirmière"
    assert author_of(nurse, "@n:hs", "MSP").profession == "Infirmière"
    assert author_of(replace(nurse, sex=""), "@n:hs", "MSP").profession == "Infirmier", "unknown: today's label"
