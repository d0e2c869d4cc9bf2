"""Inbound MSSanté mails are parsed into safe values, or refused with a French reason."""
from __future__ import annotations

import base64
import dataclasses
import random
import time
import urllib.parse
import unicodedata
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.auth_results import AuthResult, auth_results
from bridge.mail_in import InboundMail, MailLimits, MailRejected, parse_mail
from bridge.sanitize import BIDI_CONTROLS, safe_filename

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def load(name: str) -> InboundMail:
    return parse_mail((FIXTURES / name).read_bytes())


def refused(raw: bytes, limits: MailLimits = MailLimits()) -> MailRejected:
    with pytest.raises(MailRejected) as info:
        parse_mail(raw, limits)
    return info.value


def mail(body: str = "Bonjour.", **headers: str) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = headers.pop("From", "Dr Martin <dr.martin@medecin.mssante.fr>")
    msg["To"] = headers.pop("To", "msp@liaison-test.mssante.fr")
    msg["Subject"] = headers.pop("Subject", "Suivi")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


# --- fixtures, one per case ---------------------------------------------------

def test_hospital_letter_with_pdf():
    m = load("hospital_letter_pdf.eml")
    assert m.message_id == "cr-2024-1202-0001@chu-test.mssante.fr"
    assert m.from_address == "cardiologie@chu-test.mssante.fr"
    assert m.from_name == "Service de cardiologie"
    assert m.to == ("msp.tilleuls@liaison-test.mssante.fr", "dr.martin@medecin.mssante.fr")
    assert m.subject == "Compte rendu d'hospitalisation"
    assert m.date == datetime(2024, 12, 2, 9, 14, tzinfo=timezone(timedelta(hours=1)))
    assert "compte rendu d'hospitalisation de votre patiente." in m.text
    assert m.html is None
    [pdf] = m.attachments
    assert (pdf.filename, pdf.content_type) == ("CR_hospitalisation.pdf", "application/pdf")
    assert pdf.data.startswith(b"%PDF-1.4")
    assert not m.signed and not m.auto_submitted and m.receipt is None and m.notes == ()
    assert m.loop_hops == 2 and not m.liaison_loop
    assert len(m.content_hash) == 64


def test_reply_threading_and_read_receipt_request():
    m = load("reply_threaded.eml")
    assert m.in_reply_to == "liaison-out-7@liaison-test.mssante.fr"
    assert m.references == ("liaison-out-5@liaison-test.mssante.fr", "liaison-out-7@liaison-test.mssante.fr")
    assert m.mdn_to == "dr.martin@medecin.mssante.fr"
    assert m.text == "D'accord pour la réévaluation du traitement jeudi."


def test_encoded_words_and_rfc2231_names():
    m = load("encoded_names.eml")
    assert m.from_name == "Hélène Dupré"
    assert m.subject == "Compte rendu cardiologie – résultats"
    assert m.text == "Pansement refait, cicatrisation en cours. été noté."
    assert [a.filename for a in m.attachments] == [
        "compte rendu cardiologie.pdf", "plaie téléconsultation.jpg", "ordonnance révisée.pdf"]


def test_html_only_is_sanitised_and_text_derived():
    m = load("html_only_hostile.eml")
    assert m.html is not None
    for bad in ("<script", "alert", "onclick", "onload", "steal", "tracker", "data:", "cid:",
                "javascript", "iframe", "<style", "<title", "document.cookie"):
        assert bad not in m.html
    assert '<a href="https://labo-test.fr/resultats" rel="noopener noreferrer">le portail</a>' in m.html
    assert "3 images distantes retirées." in m.notes
    assert m.text.startswith("Résultats de biologie\n\nLes résultats de M. Durand sont disponibles.")
    assert "- Kaliémie : 4,1" in m.text and "alert" not in m.text
    assert m.attachments == ()


def test_smime_signed_keeps_content_drops_signature():
    m = load("smime_signed.eml")
    assert m.signed
    assert m.text == "Le traitement a été délivré pour un mois."
    assert [a.filename for a in m.attachments] == ["dispensation.pdf"]
    assert m.notes == ("Signature S/MIME présente, non vérifiée par Liaison.",)


def test_smime_encrypted_refused():
    e = refused((FIXTURES / "smime_encrypted.eml").read_bytes())
    assert e.code == "smime_encrypted" and "chiffré" in e.reason


@pytest.mark.parametrize(("name", "code"), [
    ("malformed_no_boundary.eml", "malformed"),
    ("malformed_truncated.eml", "malformed"),
    ("missing_from.eml", "no_from"),
    ("two_from.eml", "many_from"),
    ("two_from_headers.eml", "many_from"),
    ("bad_from.eml", "bad_from"),
    ("loop_40_received.eml", "loop"),
])
def test_refused_fixtures(name, code):
    e = refused((FIXTURES / name).read_bytes())
    assert e.code == code
    assert e.reason and e.reason[0].isupper() and e.reason.endswith(".")
    assert str(e).startswith(code)


def test_dangerous_filenames_made_safe():
    m = load("dangerous_filenames.eml")
    names = [a.filename for a in m.attachments]
    # in a quoted string "\\" is an escape: the parser already removed the backslashes
    assert names == ["passwd", "bilan.pdf.exe", "facturefdp.exe", "_CON.txt", "Windowssystem32evil.dll"]
    assert m.text == "Bilans."


def test_auto_replied_flagged():
    m = load("auto_replied.eml")
    assert m.auto_submitted
    assert m.mdn_to == "dr.absent@medecin.mssante.fr"


def test_our_own_mail_back_is_flagged():
    m = load("liaison_echo.eml")
    assert m.liaison_loop and m.auto_submitted  # Precedence: bulk
    assert m.loop_hops == 1


@pytest.mark.parametrize(("name", "status"), [
    ("dsn_delivered.eml", "delivered"), ("dsn_failed_511.eml", "failed"), ("mdn_displayed.eml", "displayed")])
def test_reports_carry_receipt(name, status):
    m = load(name)
    assert m.receipt is not None and m.receipt.status == status
    assert m.auto_submitted and m.mdn_to is None
    assert m.attachments == ()  # machine parts and returned copies are not attachments


def test_every_fixture_is_clean():
    for path in sorted(FIXTURES.glob("*.eml")):
        try:
            m = parse_mail(path.read_bytes())
        except MailRejected:
            continue
        assert_clean(m)


# --- rules on generated mails -------------------------------------------------

def test_too_big_refused_before_parsing():
    e = refused(b"x" * 101, MailLimits(max_bytes=100))
    assert e.code == "too_big"


def test_header_block_too_big():
    raw = mail(X_Padding="a" * 5000).as_bytes()
    assert refused(raw, MailLimits(max_header_bytes=1000)).code == "headers_too_big"
    assert refused(b"From: a@b.fr\n" + b"X: y\n" * 500, MailLimits(max_header_bytes=1000)).code == "headers_too_big"


def test_twenty_one_attachments_refused_twenty_accepted():
    def build(n: int) -> bytes:
        msg = mail()
        for i in range(n):
            msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=f"cr{i}.pdf")
        return msg.as_bytes()
    assert len(parse_mail(build(20)).attachments) == 20
    assert refused(build(21)).code == "too_many_attachments"
    assert refused(build(3), MailLimits(max_attachments=2)).code == "too_many_attachments"


def test_thirty_received_accepted():
    raw = b"".join(b"Received: from r%d by r%d\n" % (i, i + 1) for i in range(30)) + mail().as_bytes()
    assert parse_mail(raw).loop_hops == 30
    assert refused(b"Received: x\n" + raw).code == "loop"


def test_empty_and_headerless_input_malformed():
    assert refused(b"").code == "malformed"
    assert refused(b"\n\njuste un corps").code == "malformed"


def test_multipart_without_parts_malformed():
    raw = b"From: a@b.fr\nContent-Type: multipart/mixed; boundary=x\n\n--x--\n"
    assert refused(raw).code == "malformed"


def test_inline_image_and_forwarded_message_are_attachments():
    msg = mail("Voir la photo.")
    msg.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<img1@x>")
    fwd = mail("Message transféré", Subject="Original")
    msg.make_mixed()
    msg.attach(_rfc822(fwd))
    m = parse_mail(msg.as_bytes())
    assert [(a.filename, a.content_type) for a in m.attachments] == [
        ("piece-jointe.png", "image/png"), ("message.eml", "message/rfc822")]
    assert b"Subject: Original" in m.attachments[1].data
    assert m.text == "Voir la photo."


def _rfc822(inner: EmailMessage) -> EmailMessage:
    part = EmailMessage(policy=policy.SMTP)
    part.set_content(inner)
    return part


def test_headers_injection_and_controls_removed():
    raw = (b"From: =?utf-8?q?Dr_=0D=0ABcc=3A_x=40y=2Efr_=E2=80=AEevil?= <a@b.fr>\n"
           b"Subject: =?utf-8?q?Objet=0Aligne=00deux?=\n"
           b"Message-ID: <id\x01@b.fr>\n\ncorps\r\n\x00fin\n")
    m = parse_mail(raw)
    assert m.from_name == "Dr Bcc: x@y.fr evil"
    assert m.subject == "Objetlignedeux"
    assert m.message_id == "id@b.fr"
    assert m.text == "corps\nfin"
    assert_clean(m)


def test_unknown_charset_and_unparsable_date_tolerated():
    raw = (b"From: a@b.fr\nDate: pas une date\nContent-Type: text/plain; charset=x-inconnu\n\n"
           b"caf\xc3\xa9")
    m = parse_mail(raw)
    assert m.text == "café" and m.date is None


def test_content_hash_ignores_message_id_but_not_content():
    a = mail(Message_ID="<1@b.fr>").as_bytes()
    b = mail(Message_ID="<2@b.fr>").as_bytes()
    c = mail("Autre texte", Message_ID="<3@b.fr>").as_bytes()
    assert parse_mail(a).content_hash == parse_mail(b).content_hash != parse_mail(c).content_hash


def test_pgp_signed_content_kept():
    raw = (b'From: a@b.fr\nContent-Type: multipart/signed; protocol="application/pgp-signature"; boundary=s\n\n'
           b"--s\nContent-Type: text/plain\n\nsigne\n--s\nContent-Type: application/pgp-signature\n\nSIG\n--s--\n")
    m = parse_mail(raw)
    assert m.signed and m.text == "signe" and m.attachments == ()
    assert m.notes == ("Signature électronique présente, non vérifiée par Liaison.",)


def test_auto_submitted_no_is_not_automatic():
    assert not parse_mail(mail(Auto_Submitted="no").as_bytes()).auto_submitted
    assert parse_mail(mail(Auto_Submitted="auto-generated").as_bytes()).auto_submitted
    assert parse_mail(mail(Precedence="list").as_bytes()).auto_submitted


def test_deep_nesting_refused():
    raw = b"From: a@b.fr\nContent-Type: multipart/mixed; boundary=b0\n\n"
    for i in range(1, 25):
        raw += b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i - 1, i)
    raw += b"--b24\nContent-Type: text/plain\n\nx\n"
    for i in range(24, -1, -1):
        raw += b"--b%d--\n" % i
    assert refused(raw).code == "too_deep"   # seen on the raw bytes, before the parser


# --- whom the operator authenticated (Return-Path, Authentication-Results) ------

LAB = "resultats@labo-demo.mssante.test"


def test_the_gateway_s_headers_on_top_are_the_ones_read():
    """As the local gateway delivers it: Dovecot's Return-Path and the gateway's result above what the mail brought."""
    m = load("from_not_authenticated.eml")
    assert m.from_address == "c.lefebvre@chu-demo.mssante.test"
    assert m.envelope_sender == LAB, "the topmost Return-Path: the delivery's, not the sender's own"
    assert m.auth_results[0] == AuthResult("mssante-gw.test", "x509", "pass", LAB, None)
    assert len(m.auth_results) == 2, "every result is kept: the judge decides"


def test_an_operator_s_results_with_comments_folding_and_versions():
    m = load("authenticated_letter.eml")
    assert m.envelope_sender == LAB, "lower-cased"
    assert [(r.authserv_id, r.method, r.result, r.mailfrom, r.header_from) for r in m.auth_results] == [
        ("mx.operateur.test", "auth", "pass", LAB, None),
        ("mx.operateur.test", "spf", "pass", "labo-demo.mssante.test", None),
        ("mx.operateur.test", "dkim", "fail", None, None),
        ("mx.operateur.test", "dmarc", "pass", None, "labo-demo.mssante.test"),
    ], "the `none` header adds nothing; a `;` inside a comment splits nothing"


def test_without_return_path_nothing_is_recorded():
    m = load("hospital_letter_pdf.eml")
    assert m.envelope_sender is None and m.auth_results == ()


@pytest.mark.parametrize("value,expected", [
    ("<>", ""), ("< >", ""), ("<A@B.fr>", "a@b.fr"), ("  <a@b.fr>  ", "a@b.fr"),
    ("<@relais.fr,@autre.fr:a@b.fr>", "a@b.fr"), ("a@b.fr", "a@b.fr"), ("n'importe quoi", "n'importe quoi"),
])
def test_return_path_forms(value, expected):
    assert parse_mail(mail(Return_Path=value).as_bytes()).envelope_sender == expected


@pytest.mark.parametrize("header,expected", [
    ("example.com; spf=pass smtp.mailfrom=example.net", [("example.com", "spf", "pass", "example.net", None)]),
    ("example.com; none", []),
    ("example.com 1; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net",
     [("example.com", "auth", "pass", None, None), ("example.com", "spf", "pass", "example.net", None)]),
    ('mx (a (nested) ; b) ; SPF / 1 = Pass (c ; d) smtp . mailfrom = "A;B"@X.fr',
     [("mx", "spf", "pass", "a;b@x.fr", None)]),
    ('"quoted id"; dmarc=pass header.from=<x.fr>', [("quoted id", "dmarc", "pass", None, "x.fr")]),
    ("mx; smtp.mailfrom=a@b.fr", []), ("", []), ("mx; =pass", []),
])
def test_authentication_results_grammar(header, expected):
    got = [(r.authserv_id, r.method, r.result, r.mailfrom, r.header_from) for r in auth_results([header])]
    assert got == expected


def test_authentication_results_are_bounded():
    header = "mx; " + "; ".join(f"spf=pass smtp.mailfrom=a{i}@b.fr" for i in range(100))
    assert len(auth_results([header] * 100)) == 32
    started = time.monotonic()
    for hostile in ("a" * 200_000, "a." * 100_000, '"(' * 100_000):
        auth_results(["mx; " + hostile] * 100)
    assert time.monotonic() - started < 2, "read in linear time, a few KiB of each header"


@given(st.text(max_size=200))
def test_authentication_results_never_crash(header):
    for r in auth_results([header]):
        assert not FORBIDDEN & set(r.authserv_id + r.method + r.result + (r.mailfrom or ""))


# --- properties -----------------------------------------------------------------

FORBIDDEN = {"\r", "\x00"} | set(BIDI_CONTROLS)


def assert_clean(m: InboundMail) -> None:
    for field in dataclasses.fields(m):
        value = getattr(m, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, str):
                assert not FORBIDDEN & set(v), field.name
                if field.name not in ("text", "html"):
                    assert not any(unicodedata.category(c) == "Cc" for c in v), field.name
    for a in m.attachments:
        assert a.filename and safe_filename(a.filename) == a.filename
        assert "/" not in a.filename and "\\" not in a.filename


safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=safe_text, subject=safe_text, body=safe_text, files=st.lists(safe_text, max_size=3),
       html=st.booleans())
def test_generated_mails_are_clean_or_refused(name, subject, body, files, html):
    try:
        msg = EmailMessage(policy=policy.default)
        msg["From"] = f'"{name}" <a@b.fr>' if name else "a@b.fr"
        msg["To"] = "msp@liaison-test.mssante.fr"
        msg["Subject"] = subject
        msg.set_content(body)
        if html:
            msg.add_alternative(f"<p>{body}</p>", subtype="html")
        for f in files:
            msg.add_attachment(b"data", maintype="application", subtype="octet-stream", filename=f)
        raw = msg.as_bytes()
    except (ValueError, TypeError, UnicodeError, IndexError):
        return  # the stdlib refuses to build such a mail: nothing to parse
    check_parse(raw)


def _encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode() + "?="


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=safe_text, subject=safe_text, body=safe_text, files=st.lists(safe_text, max_size=4))
def test_hostile_encoded_headers_are_clean_or_refused(name, subject, body, files):
    """Encoded words and RFC 2231 smuggle any character (CR, LF, NUL, RLO) past the wire format."""
    parts = [
        f"From: {_encoded_word(name)} <a@b.fr>",
        "To: msp@liaison-test.mssante.fr",
        f"Subject: {_encoded_word(subject)}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_b"',
        "",
        "--=_b",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        base64.b64encode(body.encode("utf-8")).decode(),
    ]
    for i, f in enumerate(files):
        encoded = urllib.parse.quote(f.encode("utf-8"), safe="")
        name_param = f'name="{_encoded_word(f)}"' if i % 2 else f"name*=utf-8''{encoded}"
        parts += ["--=_b", f"Content-Type: application/pdf; {name_param}",
                  f"Content-Disposition: attachment; filename*=utf-8''{encoded}" if i % 2 == 0
                  else "Content-Disposition: attachment", "", "JVBERi0K"]
    parts.append("--=_b--")
    m = check_parse("\n".join(parts).encode("ascii"))
    if m is not None:
        assert len(m.attachments) == len(files)


def check_parse(raw: bytes) -> InboundMail | None:
    try:
        m = parse_mail(raw)
    except MailRejected as e:
        assert e.code != "unreadable", "the parser hit an unexpected error"
        return None
    assert_clean(m)
    return m


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([b"", b"From: a@b.fr\n", b"From: a@b.fr\nContent-Type: multipart/mixed; boundary=x\n\n--x\n"]))
def test_arbitrary_bytes_never_crash(noise, prefix):
    check_parse(prefix + noise)


def test_dsn_with_truncated_returned_message_is_accepted():
    raw = (b"From: MAILER-DAEMON@mx.fr\nContent-Type: multipart/report; report-type=delivery-status; boundary=o\n\n"
           b"--o\nContent-Type: text/plain\n\nEchec\n--o\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; mx.fr\n\nFinal-Recipient: rfc822; a@b.fr\nAction: failed\nStatus: 5.1.1\n\n"
           b"--o\nContent-Type: message/rfc822\n\nMessage-ID: <out-1@liaison>\n"
           b"Content-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\ntronqu\n--o--\n")
    m = parse_mail(raw)
    assert m.receipt is not None and m.receipt.original_message_id == "out-1@liaison"
    assert m.receipt.status == "failed" and m.text == "Echec"


def test_encoded_crlf_in_display_names_is_cleaned_not_fatal():
    raw = (b"From: =?utf-8?b?RHIgDQpCY2M6IHhAeS5mcg==?= <A@B.fr>\n"
           b"To: =?utf-8?b?DQo=?= <msp@l.fr>, autre@l.fr\n\ncorps\n")
    m = parse_mail(raw)
    assert (m.from_name, m.from_address, m.to) == ("Dr Bcc: x@y.fr", "a@b.fr", ("msp@l.fr", "autre@l.fr"))


def test_mutated_fixtures_never_crash():
    """A seeded mutation fuzz over every fixture: clean result or MailRejected, never the safety net."""
    rnd = random.Random(20241202)
    seeds = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    tokens = [b"\r", b"\n", b"\x00", b"=?utf-8?b?DQo=?=", b"<", b">", b'"', b";", b"\\", b"--", b":",
              b"@", b"%", b"*", b"'", b"\xff", b"\xe9", b"=", b" ", b"\t", b"\xe2\x80\xae"]
    for _ in range(1500):
        raw = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            pos = rnd.randrange(len(raw) + 1)
            op = rnd.random()
            if op < 0.5:
                raw[pos:pos] = rnd.choice(tokens)
            elif op < 0.8:
                del raw[pos:pos + rnd.randint(1, 5)]
            else:
                raw = raw[:pos]
        check_parse(bytes(raw))


@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_raw_8bit_headers_decoded(charset):
    raw = ("From: Hélène Dupré <h@ide.mssante.fr>\nSubject: Résultats été\nContent-Type: application/pdf\n"
           'Content-Disposition: attachment; filename="compte rendu été.pdf"\n\nx').encode(charset)
    m = parse_mail(raw)
    assert (m.from_name, m.subject) == ("Hélène Dupré", "Résultats été")
    assert [a.filename for a in m.attachments] == ["compte rendu été.pdf"]


def test_a_long_french_name_folded_mid_word_reads_whole():
    """Composers fold a long display name into several encoded words, cutting inside a word."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = '"Dr Camille Lefebvre (cardiologie, CHU de démonstration)" <c.lefebvre@chu-demo.mssante.test>'
    msg["To"] = "liaison@msp-demo.mssante.test"
    msg["Subject"] = "Sortie d'hospitalisation de M. Durand, lettre de liaison et ordonnances de sortie"
    msg.set_content("Bonjour")
    assert b"?=\n =?" in bytes(msg), "the name is folded between two encoded words"
    mail = parse_mail(bytes(msg))
    assert mail.from_name == "Dr Camille Lefebvre (cardiologie, CHU de démonstration)"
    assert mail.subject == "Sortie d'hospitalisation de M. Durand, lettre de liaison et ordonnances de sortie"
