"""Cheap checks on a mail's raw bytes, before the stdlib parser sees it. Pure (bytes in, a code out).

The stdlib parser's cost is not linear in what a mail can hold: 15,000 folded encoded words in a `From:`
(240 KB) cost it 7.7 s and 2.9 GB, 40,000 empty MIME parts (1.4 MB) 19 s. So the bridge first measures
what drives that cost with a few linear scans in C (`bytes.find`, `bytes.count`, one regex per header
block): the header blocks' size, lines and RFC 2047 encoded words, the address headers' size, and the
MIME tree's part count and depth, walked by its boundary lines the way the parser will split them.
Each scan is bounded by the limit it checks, so a hostile mail costs milliseconds to refuse. The same walk
finds the big base64 bodies, which are then decoded from the raw bytes rather than through the parser
(set_aside): a 20 MB attachment costs 0.05 s instead of 0.6 s and 200 MB.
"""
from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email._encoded_words import decode_b   # the stdlib's own decoder of base64 bodies (get_payload's)
from email.message import Message
from email.policy import compat32

MAX_HEADER_LINES = 2000        # physical lines of the top header block (folded lines count one each)
MAX_PART_HEADER_BYTES = 32 * 1024
MAX_PART_HEADER_LINES = 200
MAX_ENCODED_WORDS = 1000       # `=?` in every header block of the mail together
MAX_ADDRESS_BYTES = 32 * 1024  # From, To, Cc… together: the address parser costs ~0.1 s per 10 KB
MAX_DEPTH = 16                 # as bridge.mail_in walks the tree: the top message is depth 0
BIG_LEAF = 256 * 1024          # a base64 body this big is decoded from the raw bytes, not through the parser's lines
_SCAN_FACTOR = 10              # boundary-like lines looked at, per part allowed (lines that only start alike)

_ADDRESS_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc", b"reply-to", b"sender", b"return-path",
                             b"disposition-notification-to", b"resent-from", b"resent-to", b"resent-cc",
                             b"resent-sender"})
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.M)
_CTE = re.compile(rb"^content-transfer-encoding[ \t]*:([^\n]*)(\n[ \t])?", re.M | re.I)
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.M | re.I)


@dataclass(frozen=True)
class GuardLimits:
    max_header_bytes: int = 256 * 1024
    max_parts: int = 120   # every part of every multipart, containers included


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Budget:
    limits: GuardLimits
    parts: int = 0
    looked: int = 0
    words: int = 0
    leaves: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Scan:
    refused: str | None                  # the code of the first limit the mail breaks, None if it may be parsed
    big_leaves: tuple[tuple[int, int], ...] = ()   # (start, end) of base64 bodies of BIG_LEAF bytes or more


def scan(raw: bytes, limits: GuardLimits = GuardLimits()) -> Scan:
    """Walk the mail's raw bytes (lines ending in LF or CRLF: parse_mail turns bare CRs into CRLF first)."""
    budget = _Budget(limits)
    try:
        _message(raw, 0, len(raw), 0, budget, top=True)
    except _Refused as refused:
        return Scan(refused.code)
    return Scan(None, tuple(budget.leaves))


def precheck(raw: bytes, limits: GuardLimits = GuardLimits()) -> str | None:
    """The code of the first limit this mail breaks (a quarantine reason of bridge.mail_in), None if it may be
    parsed."""
    return scan(raw, limits).refused


@dataclass(frozen=True)
class SetAside:
    """The mail to give the parser, each big base64 body replaced by a marker line, and those bodies (views on the
    raw bytes): the parser would turn 20 MB of base64 into 270,000 line strings (0.5 s, 150 MB) only to join and
    decode them. `payload(part)` is get_payload(decode=True), a set-aside body decoded straight from the raw bytes."""
    raw: bytes
    bodies: tuple[memoryview, ...] = ()
    marker: str = ""

    def payload(self, part: Message) -> object:
        found = (re.fullmatch(rf"!{self.marker}-(\d+)!\r?\n?", str(part.get_payload()))
                 if self.bodies and not part.is_multipart() else None)
        if found is None or int(found.group(1)) >= len(self.bodies):
            return part.get_payload(decode=True)
        body = self.bodies[int(found.group(1))]
        try:
            return binascii.a2b_base64(body)   # skips line breaks: what decode_b gives for well-formed base64
        except binascii.Error:
            return decode_b(b"".join(bytes(body).splitlines()))[0]


def set_aside(raw: bytes, leaves: tuple[tuple[int, int], ...]) -> SetAside:
    """`raw` with the bodies `scan` found big replaced by a marker no mail can guess (a fresh token each time)."""
    if not leaves:
        return SetAside(raw)
    marker, view, pieces, at = f"liaison-{secrets.token_hex(8)}", memoryview(raw), [], 0
    for i, (start, end) in enumerate(leaves):
        pieces += [raw[at:start], f"!{marker}-{i}!\r\n".encode()]
        at = end
    pieces.append(raw[at:])
    return SetAside(b"".join(pieces), tuple(view[start:end] for start, end in leaves), marker)


def without_mime_fields(head: bytes) -> bytes:
    """A header block (of a mail too big to fetch whole) without its MIME fields (Content-*, MIME-Version), as a
    mail of its own with an empty body: parse_mail can then read who sent it, whatever its missing body was."""
    end, _ = _header_block(head, 0, len(head), len(head))
    head = head[:end]
    starts = [(m.start(), m.group(1).lower()) for m in _FIELD.finditer(head)]
    kept = [head[at:following] for (at, name), (following, _) in zip(starts, [*starts[1:], (len(head), b"")])
            if not name.startswith(b"content-") and name != b"mime-version"]
    return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in kept) + b"\r\n"


def _message(raw: bytes, start: int, end: int, depth: int, budget: _Budget, *, top: bool) -> None:
    """A message (the mail, or one attached as message/rfc822): its header block, then its body."""
    if depth > MAX_DEPTH:
        raise _Refused("too_deep")
    head_end, body = _header_block(raw, start, end, budget.limits.max_header_bytes)
    if head_end is None:
        raise _Refused("headers_too_big")
    head = raw[start:head_end]
    _check_header(head, budget, MAX_HEADER_LINES)
    if top:
        _check_addresses(head)
    _body(raw, head, body, end, depth, budget, collect=top)


def _body(raw: bytes, head: bytes, start: int, end: int, depth: int, budget: _Budget, collect: bool) -> None:
    """As the stdlib's feedparser goes on: a multipart's parts, a message/* as a message (message/partial and
    message/external-body too), a delivery-status as header blocks, anything else as one leaf. `collect`: the big
    base64 leaves of the mail itself (not of a message attached to it, which is kept whole) are noted."""
    ctype, boundary = _content_type(head)
    if ctype == "message/delivery-status":
        if end - start > MAX_PART_HEADER_BYTES:   # each of its blocks becomes a message object
            raise _Refused("too_many_parts")
    elif ctype.startswith("multipart/") and boundary is not None:   # "" is a boundary too: every `--` line
        _multipart(raw, start, end, boundary.encode("utf-8", "surrogateescape"), depth, budget, collect)
    elif ctype.startswith("message/"):
        _message(raw, start, end, depth + 1, budget, top=False)
    elif collect and end - start >= BIG_LEAF and _base64(head):
        budget.leaves.append((start, end))


def _multipart(raw: bytes, start: int, end: int, boundary: bytes, depth: int, budget: _Budget, collect: bool) -> None:
    """Each part between two delimiter lines (`--boundary`), until the close delimiter (`--boundary--`)."""
    if depth + 1 > MAX_DEPTH:
        raise _Refused("too_deep")
    marker = b"\n--" + boundary
    delimiters: list[tuple[int, int, bool]] = []   # (line start, next line's start, is the close delimiter)
    at = raw.find(marker, max(start - 1, 0), end)
    while at >= 0:
        budget.looked += 1
        if budget.looked > _SCAN_FACTOR * budget.limits.max_parts:
            raise _Refused("too_many_parts")
        line_end = raw.find(b"\n", at + 1, end)
        line_end = end if line_end < 0 else line_end
        rest = raw[at + len(marker):line_end].rstrip(b"\r")
        closing = rest.startswith(b"--")
        if not (rest[2:] if closing else rest).strip(b" \t"):   # `--b1` is not a line of boundary `b`
            delimiters.append((at + 1, line_end + 1, closing))
            if closing:
                break
            budget.parts += 1
            if budget.parts > budget.limits.max_parts:
                raise _Refused("too_many_parts")
        at = raw.find(marker, line_end, end)
    for (_, part_start, closing), following in zip(delimiters, [*delimiters[1:], (end, end, True)]):
        if closing:
            break
        _part(raw, min(part_start, end), following[0], depth + 1, budget, collect)


def _part(raw: bytes, start: int, end: int, depth: int, budget: _Budget, collect: bool) -> None:
    head_end, body = _header_block(raw, start, end, MAX_PART_HEADER_BYTES)
    if head_end is None:
        raise _Refused("headers_too_big")
    head = raw[start:head_end]
    _check_header(head, budget, MAX_PART_HEADER_LINES)
    _body(raw, head, body, end, depth, budget, collect)


def _header_block(raw: bytes, start: int, end: int, max_bytes: int) -> tuple[int | None, int]:
    """(end of the header block, start of the body); (None, …) when no blank line comes within max_bytes.
    Lines end in LF or CRLF (parse_mail turned bare CRs into CRLF): a blank line is a LF followed by LF or CRLF."""
    if raw.startswith((b"\r\n", b"\n"), start, end):
        return start, start + (2 if raw.startswith(b"\r\n", start) else 1)
    window = min(end, start + max_bytes + 3)
    found = [(i, n) for i, n in ((raw.find(b"\n\n", start, window), 2), (raw.find(b"\n\r\n", start, window), 3))
             if i >= 0]
    if found:
        i, n = min(found)
        return (None, i + n) if i + 1 - start > max_bytes else (i + 1, i + n)
    return (end, end) if end - start <= max_bytes else (None, end)


def _check_header(head: bytes, budget: _Budget, max_lines: int) -> None:
    if head.count(b"\n") > max_lines:
        raise _Refused("too_many_header_lines")
    budget.words += head.count(b"=?")
    if budget.words > MAX_ENCODED_WORDS:
        raise _Refused("too_many_encoded_words")


def _check_addresses(head: bytes) -> None:
    starts = [(m.start(), m.group(1).lower()) for m in _FIELD.finditer(head)]
    total = sum(following - at for (at, name), (following, _) in zip(starts, [*starts[1:], (len(head), b"")])
                if name in _ADDRESS_FIELDS)
    if total > MAX_ADDRESS_BYTES:
        raise _Refused("too_many_addresses")


def _base64(head: bytes) -> bool:
    """The first Content-Transfer-Encoding is base64, as get_payload(decode=True) would read it."""
    found = _CTE.search(head)
    return found is not None and not found.group(2) and found.group(1).strip().lower() == b"base64"


def _content_type(head: bytes) -> tuple[str, str | None]:
    """The first Content-Type's type and boundary, read by the stdlib's own parameter parser (quotes, RFC 2231
    `boundary*=`…) on that one header: the boundary the parser will split on."""
    found = _CONTENT_TYPE.search(head)
    if found is None:
        return "text/plain", None
    value = found.group(1).replace(b"\r", b"").replace(b"\n", b"").decode("ascii", "surrogateescape")
    one = Message(policy=compat32)
    one["Content-Type"] = value
    ctype = one.get_content_type()
    return ctype, one.get_boundary() if ctype.startswith("multipart/") else None
