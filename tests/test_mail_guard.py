"""Hostile mails are refused from their raw bytes, in milliseconds, before the stdlib parser; ordinary ones pass."""
from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mail_guard import (MAX_ADDRESS_BYTES, MAX_DEPTH, MAX_ENCODED_WORDS, MAX_HEADER_LINES, GuardLimits,
                               precheck, without_mime_fields)
from bridge.mail_in import MailLimits, MailRejected, parse_mail
from tests.support.hostile import (empty_parts, folded_encoded_from, nested, references, xdm_entries_mail)

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def cheap(raw: bytes) -> str | None:
    started = time.process_time()
    code = precheck(raw)
    assert time.process_time() - started < 0.1, "the checks are linear scans in C"
    return code


def test_the_poison_mails_are_refused_before_parsing():
    assert 230_000 < len(folded_encoded_from(15_000)) < 256 * 1024, "under the header cap, as measured"
    assert cheap(folded_encoded_from(15_000)) == "too_many_header_lines"
    assert len(empty_parts(40_000)) == pytest.approx(1.4e6, rel=0.1)
    assert cheap(empty_parts(40_000)) == "too_many_parts"
    assert cheap(references(60_000)) == "headers_too_big"
    with pytest.raises(MailRejected) as refused:   # parse_mail runs the same checks first
        parse_mail(folded_encoded_from(15_000))
    assert refused.value.code == "too_many_header_lines" and "sans être lu" in refused.value.reason


def test_each_limit_has_its_code():
    w = b"=?utf-8?q?a?= "
    assert cheap(b"From: a@b.fr\r\nSubject: " + w * (MAX_ENCODED_WORDS + 1) + b"\r\n\r\nx") == "too_many_encoded_words"
    assert cheap(b"From: a@b.fr\r\nSubject: " + w * MAX_ENCODED_WORDS + b"\r\n\r\nx") is None
    many = b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADER_LINES + 1))
    assert cheap(b"From: a@b.fr\r\n" + many + b"\r\nx") == "too_many_header_lines"
    to = b", ".join(b"p%d@hop.fr" % i for i in range(MAX_ADDRESS_BYTES // 11 + 1))
    assert cheap(b"From: a@b.fr\r\nTo: " + to + b"\r\n\r\nx") == "too_many_addresses"
    assert cheap(b"From: a@b.fr\r\nTo: " + to[:MAX_ADDRESS_BYTES // 2] + b"\r\nCc: " + to[:MAX_ADDRESS_BYTES // 2]
                 + b"\r\n\r\nx") == "too_many_addresses", "address headers count together"
    assert cheap(nested(MAX_DEPTH + 1)) == "too_deep"
    assert cheap(nested(MAX_DEPTH)) is None
    part_head = b"Content-Disposition: attachment; filename=\"" + b"a" * 40_000 + b".pdf\"\r\n"
    assert cheap(b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + part_head
                 + b"\r\nx\r\n--b--\r\n") == "headers_too_big"
    encoded_name = b"Content-Disposition: attachment; filename=\"" + w * 600 + b"\"\r\n"
    two = b"--b\r\n" + encoded_name + b"\r\nx\r\n"
    assert cheap(b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + two * 2 + b"--b--\r\n") \
        == "too_many_encoded_words", "encoded words of every header block count together"


def test_parts_are_counted_by_their_real_delimiters():
    limits = GuardLimits(max_parts=10)
    body = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\n-----\r\n--b1 is not a delimiter\r\n" for _ in range(10))
    raw = b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + body + b"--b--\r\n--b\r\n" * 50
    assert precheck(raw, limits) is None, "dash lines, longer boundaries and the epilogue are not parts"
    assert precheck(raw.replace(b"--b--\r\n", b"--b\r\n\r\n--b--\r\n", 1), limits) == "too_many_parts"


def test_an_attached_message_is_walked_too():
    inner = nested(MAX_DEPTH - 1)
    raw = (b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n"
           b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--outer--\r\n")
    assert precheck(raw) == "too_deep"


def test_every_fixture_and_ordinary_mail_passes():
    for path in sorted(FIXTURES.glob("*.eml")):
        assert precheck(path.read_bytes()) is None, path.name
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Dr Lefebvre <c.lefebvre@chu.fr>", "msp@hop.fr", "Compte rendu"
    msg.set_content("Bonjour.")
    msg.add_alternative("<p>Bonjour.</p>", subtype="html")
    for i in range(20):
        msg.add_attachment(b"%PDF-1.4" * 100, maintype="application", subtype="pdf", filename=f"cr-{i}.pdf")
    assert precheck(bytes(msg), GuardLimits(max_parts=MailLimits().max_parts)) is None
    assert len(parse_mail(bytes(msg)).attachments) == 20


def test_an_xdm_of_300000_entries_is_a_mail_of_ordinary_shape():
    raw = xdm_entries_mail(300_000, sender="c.lefebvre@chu-demo.mssante.test", to="liaison@msp-demo.mssante.test")
    assert precheck(raw) is None, "its cost is in the archive: bridge.xdm counts the entries before zipfile"
    assert len(raw) < MailLimits().max_bytes


def test_the_header_of_a_mail_too_big_to_fetch_says_who_sent_it():
    head = (b"Return-Path: <c.lefebvre@chu.fr>\r\nFrom: Dr L <c.lefebvre@chu.fr>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed;\r\n boundary=\"x\"\r\nSubject: Gros\r\n\r\n")
    mail = parse_mail(without_mime_fields(head))
    assert (mail.from_address, mail.subject, mail.attachments) == ("c.lefebvre@chu.fr", "Gros", ())


@settings(max_examples=80, deadline=None)
@given(st.recursive(st.just("leaf"), lambda kids: st.lists(kids, min_size=1, max_size=4), max_leaves=30))
def test_the_walk_agrees_with_the_parser_on_generated_trees(tree):
    """What the guard lets through, the parser reads without refusing it for its depth; deeper trees are refused."""
    def build(node, depth: int = 0) -> EmailMessage:
        msg = EmailMessage()
        if node == "leaf":
            msg.set_content(f"feuille {depth}\n--b{depth}\n-- \n")
            return msg
        msg.make_mixed()
        for child in node:
            msg.attach(build(child, depth + 1))
        return msg

    def depth_of(node) -> int:
        return 0 if node == "leaf" else 1 + max(depth_of(c) for c in node)

    top = build(tree)
    top["From"] = "a@b.fr"
    raw = bytes(top)
    code = precheck(raw)
    if code == "too_many_parts":
        return
    assert (code == "too_deep") == (depth_of(tree) > MAX_DEPTH), code
    if code is None:
        try:
            parse_mail(raw)
        except MailRejected as err:
            assert err.code == "too_many_attachments", err.code


def test_parts_cannot_hide_from_the_walk():
    """Every way the stdlib's parser finds parts, the walk finds them too."""
    limits = GuardLimits(max_parts=10)
    parts = b"--xy\r\n\r\na\r\n" * 11 + b"--xy--\r\n"
    rfc2231 = b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary*=utf-8''xy\r\n\r\n" + parts
    assert precheck(rfc2231, limits) == "too_many_parts"
    quoted = b'From: a@b.fr\r\nContent-Type: multipart/mixed;\r\n boundary="xy"\r\n\r\n' + parts
    assert precheck(quoted, limits) == "too_many_parts"
    empty = b'From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=""\r\n\r\n' + b"--\r\n\r\na\r\n" * 11
    assert precheck(empty, limits) == "too_many_parts", "an empty boundary makes every `--` line a delimiter"
    partial = b"From: a@b.fr\r\nContent-Type: message/partial; id=1\r\n\r\n" + rfc2231
    assert precheck(partial, limits) == "too_many_parts"
    mixed_endings = b"From: a@b.fr\nContent-Type: multipart/mixed; boundary=xy\n\r\n" + parts.replace(b"\r\n", b"\n")
    assert precheck(mixed_endings, limits) == "too_many_parts"
    status = (b"From: a@b.fr\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
              b"--r\r\nContent-Type: message/delivery-status\r\n\r\n" + b"A: b\r\n\r\n" * 10_000 + b"--r--\r\n")
    assert precheck(status) == "too_many_parts", "each block of a delivery-status becomes a message object"


def test_bare_carriage_returns_break_lines_for_the_walk_as_for_the_parser():
    bare = b"From: a@b.fr\rContent-Type: multipart/mixed; boundary=xy\r\r" + b"--xy\r\ra\r" * 200 + b"--xy--\r"
    with pytest.raises(MailRejected) as refused:
        parse_mail(bare)
    assert refused.value.code == "too_many_parts"


def _parsed_whole(raw: bytes):
    """parse_mail without setting any body aside: every byte through the stdlib's parser."""
    from bridge import mail_in
    from bridge.mail_guard import SetAside
    return mail_in._parse(SetAside(raw), MailLimits(), "")


def test_big_bodies_decoded_from_the_raw_bytes_give_the_same_mail():
    import base64
    data = bytes(range(256)) * 2000   # 512 KB
    html = ("<p>" + "Bonjour docteur. " * 30_000 + "</p>").encode()
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "Dr L <l@chu.fr>", "Gros"
    msg.set_content("Voir pièces.")
    msg.add_alternative(html.decode(), subtype="html", cte="base64")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename="cr.pdf")
    inner = EmailMessage()
    inner["From"] = "x@y.fr"
    inner.add_attachment(data, maintype="application", subtype="pdf", filename="dans.pdf")
    msg.add_attachment(inner)
    raw = bytes(msg)
    from bridge.mail_guard import scan
    assert len(scan(raw).big_leaves) == 2, "the html and the pdf; the attached message is kept whole"
    assert parse_mail(raw) == _parsed_whole(raw)
    assert parse_mail(raw).attachments[0].data == data
    unpadded = raw.replace(base64.encodebytes(data)[-6:].replace(b"\n", b"\r\n"), b"QUJD\r\n", 1)
    assert parse_mail(unpadded) == _parsed_whole(unpadded), "broken base64: the stdlib's own decoder"


def test_a_body_cannot_pass_for_a_set_aside_one():
    big = b"A" * (300 * 1024)
    raw = (b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\n!liaison-0000000000000000-0!\r\n"
           b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + big + b"\r\n--b--\r\n")
    mail = parse_mail(raw)
    assert mail.text == "!liaison-0000000000000000-0!" and len(mail.attachments[0].data) == len(big) * 3 // 4
