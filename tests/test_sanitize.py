"""File names, HTML and header values from untrusted mail are made safe."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from html.parser import HTMLParser

from bridge.sanitize import BIDI_CONTROLS, clean_html, header_text, html_to_text, own_media, safe_filename

HOMESERVER = "liaison.test"


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
    html, removed = clean_html(HOSTILE, HOMESERVER)
    assert removed == 4
    for bad in ("script", "alert", "onclick", "onload", "style", "tracker", "data:", "cid:",
                "javascript", "iframe", "<form", "<input", "<title", "http://x"):
        assert bad not in html
    assert '<img src="mxc://liaison.test/abc" alt="ok">' in html
    assert '<a href="https://hop.fr" rel="noopener noreferrer">h</a> (https://hop.fr)' in html
    assert 'href="mailto:a@b.fr"' in html
    assert "<details><summary>s</summary>d</details>" in html
    assert "<td>1</td>" in html


class _Tree(HTMLParser):
    """What a browser would build from the cleaned HTML: every element with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def test_clean_html_image_count_tricky_attributes():
    html, removed = clean_html('<img alt="a>b" src="https://x/y.png"><img alt="<img src=x>">', HOMESERVER)
    assert removed == 1   # one source refused; the other image had none
    assert not [e for e in _Tree(html).elements if e[0] == "img"], html


@pytest.mark.parametrize("hostile", [
    '<img alt="><a href=javascript:alert(1)>clic</a>">',
    "<img alt='><a href=javascript:alert(1)>clic</a>'>",
    '<img src="cid:x" alt="><a href=javascript:alert(1)>clic</a>">',
    '<a title="><a href=javascript:alert(1)>clic</a>" href="https://hop.fr">x</a>',
    '<a href="java\tscript:alert(1)">clic</a><a href="&#106;avascript:alert(1)">clic</a>',
    '<svg><a href="javascript:alert(1)">clic</a></svg><math><a href="javascript:alert(1)">clic</a></math>',
    '<noscript><a href="javascript:alert(1)">clic</a></noscript>',
    '<a href="https://hop.fr"><img alt="</a><a href=javascript:alert(1)>clic</a>"></a>',
])
def test_the_known_nh3_bypass_and_its_cousins_come_out_harmless(hostile):
    html, _ = clean_html(hostile, HOMESERVER)
    for tag, attrs in _Tree(html).elements:
        assert tag in ("a", "p", "img"), html
        assert set(attrs) <= {"href", "rel", "alt", "src", "title"}, html
        for name in ("href", "src"):
            assert not (attrs.get(name) or "https:").lower().startswith(("javascript", "java")), html
        assert attrs.get("href", "https://hop.fr") == "https://hop.fr", html


def test_images_only_from_our_own_homeserver():
    html, removed = clean_html('<img src="mxc://liaison.test/AbC_1-2"><img src="mxc://evil.test/abc">'
                               '<img src="mxc://liaison.test.evil.test/abc"><img src="mxc://liaison.test/a/../b">'
                               '<img src="MXC://liaison.test/abc">', HOMESERVER)
    assert [a["src"] for t, a in _Tree(html).elements if t == "img"] == ["mxc://liaison.test/AbC_1-2"]
    assert removed == 4
    assert clean_html('<img src="mxc://liaison.test/abc">')[1] == 1, "no homeserver known: no image"
    assert own_media("mxc://liaison.test/abc", HOMESERVER) and not own_media("mxc://liaison.test/abc", "")


def test_a_link_whose_text_is_not_its_target_shows_the_target():
    html, _ = clean_html('<p><a href="https://phish.example/chu">https://www.chu-demo.fr</a>, '
                         '<a href="https://www.chu-demo.fr/">www.chu-demo.fr</a>, '
                         '<a href="mailto:sec@chu.fr">le secrétariat</a>, <a href="mailto:sec@chu.fr">sec@chu.fr</a>, '
                         '<a href="https://chu.fr/rdv"><img src="mxc://liaison.test/logo"></a></p>', HOMESERVER)
    text = _Tree(html).text
    assert "https://www.chu-demo.fr (https://phish.example/chu)" in text
    assert "www.chu-demo.fr," in text, "the same address written without its scheme is not repeated"
    assert "le secrétariat (sec@chu.fr)" in text and "sec@chu.fr, " in text
    assert text.endswith(" (https://chu.fr/rdv)"), "an image link shows where it goes"
    assert "(https://phish.example/chu)" in html_to_text(html)
    long_target = "https://exemple.fr/" + "a" * 1000
    assert len(_Tree(clean_html(f'<a href="{long_target}">ici</a>')[0]).text) < 320


def test_controls_and_bidi_removed_even_as_character_references():
    html, _ = clean_html('<p title="x">a\u202eb &#x202e;c &#8238;d &#x1b;e</p><img src="mxc://liaison.test/a" '
                         'alt="f\u202eg">', HOMESERVER)
    assert not any(c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" for c in html), repr(html)
    assert "abcde" in html.replace(" ", "") and 'alt="fg"' in html


def test_html_to_text():
    text = html_to_text("<h1>Titre</h1><p>Un   <b>deux</b>\n trois</p><ul><li>a</li><li>b</li></ul>"
                        "<script>x()</script>fin<br>ligne &amp; &eacute;")
    assert text == "Titre\n\nUn deux trois\n\n- a\n- b\nfin\nligne & é"


def test_html_to_text_empty():
    assert html_to_text("") == ""
    assert html_to_text("<p>\x00\u202e</p>") == ""


def test_strip_unsafe_removes_what_is_unsafe_char_names_for_every_code_point():
    from bridge.sanitize import fix_surrogates, is_unsafe_char, strip_unsafe
    text = "".join(chr(cp) for cp in range(0x110000))
    for keep in (False, True):
        fixed = fix_surrogates(text)
        fixed = fixed.replace("\r\n", "\n").replace("\r", "\n") if keep else fixed
        expected = "".join(c for c in fixed if not is_unsafe_char(c, keep_newlines=keep))
        assert strip_unsafe(text, keep_newlines=keep) == expected
