"""Make untrusted mail text safe: file names, HTML, header values. Pure functions."""
from __future__ import annotations

import re
import unicodedata
from email import errors
from email.header import decode_header, make_header
from html import escape
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


def is_unsafe_char(ch: str, *, keep_newlines: bool = False) -> bool:
    """True for control chars (C0, DEL, C1), line/paragraph separators and bidi controls."""
    if keep_newlines and ch in "\n\t":
        return False
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI_CONTROLS


# The same characters as is_unsafe_char, as one class for re (C speed: the character loop cost ~1 s per MB of text).
# Unicode's Cc is exactly C0 and DEL..C1, Zl and Zp one character each, Cs the surrogates.
_BIDI_CLASS = "".join(sorted(BIDI_CONTROLS))
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff{_BIDI_CLASS}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff{_BIDI_CLASS}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_surrogates(text: str) -> str:
    """Raw 8-bit bytes the parser kept as surrogate escapes, decoded (UTF-8, else Windows-1252)."""
    if not _SURROGATE.search(text):
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
    return (_UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE).sub("", text)


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


def clean_html(html: str, homeserver: str = "") -> tuple[str, int]:
    """HTML reduced to what Element renders, and the number of images removed.

    Every decision is nh3's (its attribute filter, URL schemes and link rel), and nh3's output is final: nothing
    rewrites it after (a regex over it once let `<img alt="><a href=javascript:…>">` out as a live link). Only
    images stored on our own homeserver (``mxc://homeserver/…``) survive: remote (http/https), ``data:``,
    ``cid:`` and other servers' images would leak a read or cannot be shown. Between two nh3 passes, a walk
    over the first one's serialisation (well-formed, every attribute quoted) cleans the text of control and
    bidi characters (which nh3 wrote out as characters, whatever entity they came as), drops the images left
    without a source and writes a link's target after it when its text says something else, so that
    « www.chu.fr » cannot hide another address.
    """
    refused = 0

    def keep(tag: str, attr: str, value: str) -> str | None:
        nonlocal refused
        if tag == "img" and attr == "src":
            if own_media(value, homeserver):
                return value
            refused += 1
            return None
        if tag == "a" and attr == "href":
            return value if _LINK.match(value) else None
        return value

    first = strip_unsafe(_nh3(html, keep, _SEEN_SCHEMES), keep_newlines=True)   # entities are characters by now
    if "<a " in first or "<img" in first:
        walked = _Rewriter()
        walked.feed(first)
        walked.close()
        first = "".join(walked.out)
    return _nh3(first, keep, _URL_SCHEMES).strip(), refused


_LINK = re.compile(r"(?i)(https?://|mailto:)")
_URL_SCHEMES = frozenset({"http", "https", "mailto", "mxc"})
_SEEN_SCHEMES = _URL_SCHEMES | {"cid", "data"}   # first pass: refused images reach the filter, to be counted
_MAX_SHOWN = 300


def own_media(url: str, homeserver: str) -> bool:
    """True for a media URL of our own homeserver: ``mxc://<server name>/<media id>``."""
    return bool(homeserver) and re.fullmatch(r"mxc://" + re.escape(homeserver) + r"/[A-Za-z0-9_\-]+", url) is not None


def _nh3(html: str, keep, schemes: frozenset[str]) -> str:
    return nh3.clean(
        html,
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in _ATTRIBUTES.items()},
        attribute_filter=keep,
        url_schemes=set(schemes),
        url_relative="deny",
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def _bare_target(value: str) -> str:
    value = value.strip().lower()
    value = re.sub(r"^(https?://|mailto:)", "", value)
    return value.rstrip("/")


class _Rewriter(HTMLParser):
    """Over nh3's serialisation: no image without a source, a link's target shown when its text differs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._link: tuple[str, list[str]] | None = None   # the open <a>: its href, its text so far

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img" and not values.get("src"):
            return
        if tag == "a":
            self._link = (values.get("href", ""), [])
        self.out.append(f"<{tag}" + "".join(f' {k}="{escape(v)}"' for k, v in values.items()) + ">")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")
        if tag == "a" and self._link is not None:
            href, texts = self._link
            self._link = None
            if href and _bare_target("".join(texts)) != _bare_target(href):
                shown = re.sub(r"(?i)^mailto:", "", href)
                shown = shown if len(shown) <= _MAX_SHOWN else shown[:_MAX_SHOWN] + "…"
                self.out.append(escape(f" ({shown})", quote=False))

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1].append(data)
        self.out.append(escape(data, quote=False))


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
