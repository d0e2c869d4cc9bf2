"""The From display name of our mails is folded at spaces: no reader shows « MSP de démonstrat ion »."""
from __future__ import annotations

import email.policy
from email import message_from_bytes
from email.header import decode_header, make_header

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mail_from import from_field
from bridge.mail_out import as_bytes, compose, header_text
from bridge.receipts import compose_mdn

NAME = "Dr Hélène Dupré-Çà (Médecin généraliste), Maison de santé pluriprofessionnelle de démonstration"
ADDRESS = "liaison@msp-demo.mssante.test"


def _from_lines(raw: bytes) -> list[str]:
    lines = raw.split(b"\r\n\r\n")[0].decode("ascii").split("\r\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("From:"))
    end = next((i for i in range(at + 1, len(lines)) if not lines[i][:1].isspace()), len(lines))
    return lines[at:end]


def _mail(display: str) -> bytes:
    return as_bytes(compose(from_address=ADDRESS, from_display=display, to="dr.x@chu-demo.mssante.test",
                            subject="Objet", text="Bonjour.", event_id="$e1"))


def test_each_encoded_word_of_a_long_accented_name_holds_whole_words():
    lines = _from_lines(_mail(NAME))
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines), "folded, within the line length"
    value = " ".join(line.strip() for line in lines)[len("From: "):]
    words = NAME.split()
    for chunk, charset in decode_header(value):
        if charset:   # an encoded word: its text is whole words of the name, never a piece of one
            assert all(w in words for w in chunk.decode(charset).split()), chunk.decode(charset)
    assert str(make_header(decode_header(value))) == f"{NAME} <{ADDRESS}>", "an RFC 2047 reader"
    back = message_from_bytes(_mail(NAME), policy=email.policy.default)["From"].addresses[0]
    assert " ".join(back.display_name.split()) == NAME, "a reader that keeps the space between encoded words"


def test_the_demo_structure_s_name_reads_the_same_in_every_reader():
    name = "Dr Paul Martin (Médecin généraliste), MSP de démonstration"
    value = " ".join(line.strip() for line in _from_lines(_mail(name)))[len("From: "):]
    assert str(make_header(decode_header(value))) == f"{name} <{ADDRESS}>"
    assert message_from_bytes(_mail(name), policy=email.policy.default)["From"].addresses[0].display_name == name


def test_the_read_receipt_s_from_is_folded_the_same_way():
    raw = as_bytes(compose_mdn(original_message_id="<m1@chu.fr>", original_recipient=ADDRESS, from_address=ADDRESS,
                               from_name=NAME, to="dr.x@chu-demo.mssante.test", subject="Objet"))
    value = " ".join(line.strip() for line in _from_lines(raw))[len("From: "):]
    assert value == " ".join(line.strip() for line in from_field(NAME, ADDRESS).split("\r\n"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=150))
def test_any_name_reads_back_as_written_and_is_never_refolded_by_the_library(display):
    lines = _from_lines(_mail(display))
    name = header_text(display)
    if name and not name.isascii():
        assert "\r\n".join(lines) == "From: " + from_field(name, ADDRESS), "written as folded here"
        assert all(len(line) <= 78 for line in lines)
        value = " ".join(line.strip() for line in lines)[len("From: "):]
        assert str(make_header(decode_header(value))).rpartition(" <")[0] == name, "an RFC 2047 reader"
    back = message_from_bytes(_mail(display), policy=email.policy.default)["From"].addresses[0]
    assert back.addr_spec == ADDRESS   # a reader that keeps the space between encoded words: a word too long
    assert "".join(back.display_name.split()) == "".join(name.split())   # for one is its only extra space
