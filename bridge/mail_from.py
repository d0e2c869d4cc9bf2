"""The From field of the mails the bridge writes, folded at spaces only (pure).

Python's email policy folds a long non-ASCII display name into RFC 2047 encoded words cut at the line's length,
inside a word (« …MSP_de_d=C3=A9monstrati?= =?utf-8?q?on?= »), and readers disagree on the space between two
encoded words: RFC 2047 (§6.2) drops it, some readers (and Python's own parser) keep it, showing « démonstrat ion ».
Here a word that can stand as it is (ASCII, no special) stays plain, the others are encoded, a run of them in one
encoded word, and lines are folded at the spaces between these pieces: every reader reads the same name.
"""
from __future__ import annotations

import re
from email import base64mime, quoprimime
from email.headerregistry import Address

MAX_WORD = 75    # an encoded word's length at most (RFC 2047 §2)
MAX_LINE = 78    # a header line's length at most (RFC 5322 §2.1.1)
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")   # RFC 5322 atext: a word that needs no encoding


def _encoded(text: str) -> str:
    """The shorter of the two encodings (Q reads better, B is shorter for mostly accented text): fewer cuts."""
    data = text.encode("utf-8")
    q, b = quoprimime.header_encode(data, charset="utf-8"), base64mime.header_encode(data, charset="utf-8")
    return q if len(q) <= len(b) else b


def _fits(text: str, limit: int) -> bool:
    """`text` fits in one encoded word with room for the space that may close it."""
    return len(_encoded(text + " ")) <= limit


def _cut(word: str, limit: int) -> list[str]:
    """A word too long for one encoded word, cut between characters: the only cut inside a word, and only here."""
    pieces, current = [], ""
    for char in word:
        if current and not _fits(current + char, limit):
            pieces.append(current)
            current = ""
        current += char
    return [*pieces, current]


def _run(words: list[str], limit: int) -> list[str]:
    """Consecutive words that need encoding, as few encoded words as fit, each of whole words; when a run is cut,
    the space goes inside the encoded word before the cut (where RFC 2047 readers keep it)."""
    texts, current = [], ""
    for word in words:
        joined = f"{current} {word}" if current else word
        if _fits(joined, limit):
            current = joined
            continue
        if current:
            texts.append(current + " ")
        *whole, current = _cut(word, limit)
        texts += whole
    return [_encoded(t) for t in [*texts, current]]


def phrase_tokens(display_name: str, limit: int = MAX_WORD) -> list[str]:
    """The display name as the pieces the field is folded between: plain words and encoded words of `limit`
    characters at most."""
    tokens: list[str] = []
    pending: list[str] = []
    for word in display_name.split():
        if word.isascii() and _ATOM.fullmatch(word) and "=?" not in word:   # « =?…?= » plain would be decoded
            tokens += _run(pending, limit) if pending else []
            pending = []
            tokens.append(word)
        else:
            pending.append(word)
    return tokens + (_run(pending, limit) if pending else [])


def from_field(display_name: str, addr_spec: str, name: str = "From") -> str:
    """The field's value, folded (CRLF + space) for `EmailMessage.set_raw`: an ASCII name as the policy writes it;
    a name with accents as plain and encoded words, lines folded at spaces only."""
    if not display_name or display_name.isascii():
        return str(Address(display_name=display_name, addr_spec=addr_spec))
    lines, width = [""], len(name) + 2
    limit = min(MAX_WORD, MAX_LINE - width)   # an encoded word fits on the first line too
    for token in [*phrase_tokens(display_name, limit), f"<{addr_spec}>"]:
        if not lines[-1]:
            lines[-1] = token
        elif width + 1 + len(token) <= MAX_LINE:
            lines[-1] += " " + token
            width += 1 + len(token)
            continue
        else:
            lines.append(token)
            width = 1
        width += len(token)
    return "\r\n ".join(lines)
