"""Make untrusted mail text safe: file names, HTML, header values. Pure functions."""
from __future__ import annotations

import re
import unicodedata
from email import errors
from email.header import decode_header, make_header
from html.parser import HTMLParser

import nh3

# Unicode bidi controls (embeddings, overrides, isolates, LRM/RLM, ALM).
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_MAX_NAME = 120
_MAX_HEADER = 200

# What Element renders (Matrix client-server spec, m.room.message formatted body).
_TAGS = frozenset({
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a",
    "ul", "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "strike",
    "code", "hr", "br", "div", "table", "thead", "tbody", "tr", "th", "td",
    "caption", "pre", "span", "img", "details", "summary",
})
_ATTRIBUTES = {
    "font": {"data-mx-bg-color", "data-mx-color", "color"},
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler"},
    "a": {"href", "name"},
    "img": {"width", "height", "alt", "title", "src"},
    "ol": {"start"},
}
_DROP_WITH_CONTENT = frozenset({"script", "style", "title", "noscript", "template", "iframe", "object"})
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HAS_SRC = re.compile(r"\ssrc=\"", re.IGNORECASE)


def is_unsafe_char(ch: str, *, keep_newlines: bool = False) -> bool:
    """True for control chars (C0, DEL, C1), line/paragraph separators and bidi controls."""
    if keep_newlines and ch in "\n\t":
        return False
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI_CONTROLS


def fix_surrogates(text: str) -> str:
    """Raw 8-bit bytes the parser kept as surrogate escapes, decoded (UTF-8, else Windows-1252)."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    try:
        return decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
    except UnicodeEncodeError:
        return "".join(c for c in text if not "\ud800" <= c <= "\udfff")


def strip_unsafe(text: str, *, keep_newlines: bool = False) -> str:
    """Remove control and bidi characters (CR always goes; LF and tab kept if asked)."""
    text = fix_surrogates(text)
    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if not is_unsafe_char(c, keep_newlines=keep_newlines))


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from bytes in the declared charset, else UTF-8, else Windows-1252 (never fails)."""
    for candidate in (charset or "utf-8", "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):  # unknown charset, bad bytes, NUL in the name
            continue
    return data.decode("cp1252", "replace")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words of a raw header value (unchanged when undecodable)."""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, TypeError, errors.MessageError):
        return value


def header_text(value: str) -> str:
    """Text safe to put into a mail header: one line, no control chars, ≤ 200 chars."""
    value = unicodedata.normalize("NFC", fix_surrogates(value or ""))
    value = "".join("" if c in BIDI_CONTROLS or unicodedata.category(c) == "Co" else
                    " " if is_unsafe_char(c) or c.isspace() else c for c in value)
    value = " ".join(value.split())
    return value[:_MAX_HEADER].rstrip()


def safe_filename(name: str | None, fallback: str = "piece-jointe") -> str:
    """A file name without directory, control/bidi chars or reserved device name; never empty."""
    cleaned = _clean_filename(name or "")
    if not cleaned:
        cleaned = _clean_filename(fallback) or "piece-jointe"
    return cleaned


def _clean_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", fix_surrogates(name))
    name = "".join(c for c in name if not is_unsafe_char(c) and c not in "\ufeff\u200b")
    name = re.split(r"[/\\]", name)[-1]          # directory part, ../, ..\, C:\…
    name = name.replace(":", "_")                # drive letters, NTFS streams
    name = " ".join(name.split())                # any whitespace → one space
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        return ""
    stem = name.split(".", 1)[0].strip().upper()
    if stem in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > _MAX_NAME:
        name = _shorten(name)
    return unicodedata.normalize("NFC", name)


def _shorten(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 0 < len(ext) <= 16:
        keep = _MAX_NAME - len(ext) - 1
        return stem[:keep].rstrip(". ") + "." + ext
    return name[:_MAX_NAME].rstrip(". ")


def clean_html(html: str) -> tuple[str, int]:
    """HTML reduced to what Element renders, and the number of images removed.

    Only ``mxc://`` images survive: remote (http/https), ``data:`` and ``cid:``
    images are removed, since they would leak a read or cannot be shown.
    """
    def keep(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src" and not value.lower().startswith("mxc://"):
            return None
        if tag == "a" and attr == "href" and not re.match(r"(?i)(https?:|mailto:)", value):
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in _ATTRIBUTES.items()},
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "mxc"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    removed = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal removed
        if _HAS_SRC.search(match.group(0)):
            return match.group(0)
        removed += 1
        return ""

    cleaned = strip_unsafe(_IMG_TAG.sub(drop, cleaned), keep_newlines=True)
    cleaned = cleaned.strip()
    return cleaned, removed


_BLOCKS = frozenset({
    "p", "div", "br", "hr", "tr", "table", "blockquote", "pre", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "details", "summary", "caption", "thead", "tbody",
})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCKS:
            self.out.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS and tag != "li":
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: block tags become line breaks, spaces collapsed."""
    parser = _TextExtractor()
    parser.feed(html or "")
    parser.close()
    text = strip_unsafe("".join(parser.out), keep_newlines=True)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
