"""File names, HTML and header values from untrusted mail are made safe."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sanitize import BIDI_CONTROLS, clean_html, header_text, html_to_text, safe_filename


@pytest.mark.parametrize(("raw", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\system32\\evil.dll", "evil.dll"),
    ("/etc/shadow", "shadow"),
    ("C:\\Users\\x\\compte rendu.pdf", "compte rendu.pdf"),
    ("bilan\x00.pdf", "bilan.pdf"),
    ("facture\u202efdp.exe", "facturefdp.exe"),
    ("a\u2066b\u2069c\u200e\u200f.pdf", "abc.pdf"),
    ("CON.txt", "_CON.txt"),
    ("con", "_con"),
    ("LPT9.tar.gz", "_LPT9.tar.gz"),
    ("COM1", "_COM1"),
    ("COM10.txt", "COM10.txt"),
    ("...hidden", "hidden"),
    (".bashrc", "bashrc"),
    ("rapport.pdf. . ", "rapport.pdf"),
    ("e\u0301te\u0301.pdf", "\u00e9t\u00e9.pdf"),
    ("ligne\r\nbrisée.pdf", "lignebrisée.pdf"),
    ("tab\there.pdf", "tabhere.pdf"),
    ("a:b.pdf", "a_b.pdf"),
])
def test_safe_filename_cases(raw, expected):
    assert safe_filename(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "..", "../", "\x00\x01", "\u202e", "/"])
def test_safe_filename_never_empty(raw):
    assert safe_filename(raw) == "piece-jointe"
    assert safe_filename(raw, "message.eml") == "message.eml"


def test_safe_filename_bad_fallback_still_safe():
    assert safe_filename(None, "../\x00") == "piece-jointe"


def test_safe_filename_long_name_keeps_extension():
    name = safe_filename("é" * 300 + ".pdf")
    assert len(name) == 120 and name.endswith(".pdf")
    assert len(safe_filename("x" * 500)) == 120


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.text(), st.lists(st.sampled_from(
    list("./\\ :\x00\u202e\u2066a\u0301é") + ["COM1", "..", "NUL", "CON", ".txt"])).map("".join)))
def test_safe_filename_properties(raw):
    name = safe_filename(raw)
    assert name and len(name) <= 120
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and not name.endswith((".", " "))
    assert not any(c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" for c in name)
    assert unicodedata.is_normalized("NFC", name)
    assert safe_filename(name) == name  # idempotent


def test_header_text_blocks_injection():
    value = header_text("Dr Martin\r\nBcc: victime@example.com\x00\u202e")
    assert value == "Dr Martin Bcc: victime@example.com"
    assert "\r" not in value and "\n" not in value


def test_header_text_collapses_and_limits():
    assert header_text("  a \t\t b  ") == "a b"
    assert len(header_text("x" * 1000)) == 200
    assert header_text("") == ""


@given(st.text())
def test_header_text_is_one_clean_line(raw):
    value = header_text(raw)
    assert len(value) <= 200
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI_CONTROLS for c in value)
    assert value == value.strip()


HOSTILE = """<html><head><title>T</title><style>p{}</style></head><body onload="x()">
<p onclick="evil()" style="color:red">Bonjour <b>docteur</b></p>
<script>alert(1)</script>
<img src="https://tracker.example/p.gif"><img src="http://x/y.png"><img src="data:image/png;base64,AA">
<img src="cid:logo"><img src="mxc://liaison.test/abc" alt="ok">
<a href="javascript:alert(1)">j</a><a href="https://hop.fr" target="_blank">h</a>
<a href="mailto:a@b.fr">m</a><a href="data:text/html,x">d</a>
<iframe src="https://evil"></iframe><form><input></form><details><summary>s</summary>d</details>
<table><tr><td>1</td></tr></table></body></html>"""


def test_clean_html_strips_scripts_handlers_and_remote_images():
    html, removed = clean_html(HOSTILE)
    assert removed == 4
    for bad in ("script", "alert", "onclick", "onload", "style", "tracker", "data:", "cid:",
                "javascript", "iframe", "<form", "<input", "<title", "http://x"):
        assert bad not in html
    assert '<img src="mxc://liaison.test/abc" alt="ok">' in html
    assert '<a href="https://hop.fr" rel="noopener noreferrer">h</a>' in html
    assert 'href="mailto:a@b.fr"' in html
    assert "<details><summary>s</summary>d</details>" in html
    assert "<td>1</td>" in html


def test_clean_html_image_count_tricky_attributes():
    html, removed = clean_html('<img alt="a>b" src="https://x/y.png"><img alt="<img src=x>">')
    assert removed == 2 and "<img" not in html


def test_html_to_text():
    text = html_to_text("<h1>Titre</h1><p>Un   <b>deux</b>\n trois</p><ul><li>a</li><li>b</li></ul>"
                        "<script>x()</script>fin<br>ligne &amp; &eacute;")
    assert text == "Titre\n\nUn deux trois\n\n- a\n- b\nfin\nligne & é"


def test_html_to_text_empty():
    assert html_to_text("") == ""
    assert html_to_text("<p>\x00\u202e</p>") == ""
