"""The words of a command line: folding for matching, splitting that keeps free text verbatim."""
from __future__ import annotations

import unicodedata
from liaison.matrix.content import strip_reply_fallback  # noqa: F401 — the registry reads it here


def fold(word: str) -> str:
    """Lower-case, accents removed: what a hurried clinician may type matches what we declared."""
    decomposed = unicodedata.normalize("NFKD", word.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def number(word: str | None) -> int | None:
    """A number typed as an argument (« 3 », « n°3 », « #3 »); None when it is not one."""
    word = (word or "").lstrip("n°#").strip()
    return int(word) if word.isdigit() and len(word) < 9 else None


_QUOTES = {'"': '"', "«": "»", "“": "”"}   # a structured argument of several words; an apostrophe is a letter


class Words(list):
    """The words of a command line, and the line itself: `rest(k)` is what was typed from the k-th word on,
    byte for byte (apostrophes, quotes, guillemets, line breaks, spaces), for free text (a message, a reason).

    A word is what whitespace separates, or what "double quotes" or « guillemets » enclose (without them:
    `"insuffisance cardiaque"` is one word). A quote never closed is a letter like the others.
    """

    def __init__(self, text: str = "") -> None:
        tokens, self._starts = [], []
        i, n = 0, len(text)
        while i < n:
            if text[i].isspace():
                i += 1
                continue
            close = _QUOTES.get(text[i])
            end = text.find(close, i + 1) if close else -1
            if end > i + 1:
                tokens.append(text[i + 1:end].strip())
                self._starts.append(i)
                i = end + 1
                continue
            j = i
            while j < n and not text[j].isspace():
                j += 1
            tokens.append(text[i:j])
            self._starts.append(i)
            i = j
        super().__init__(tokens)
        self.text = text

    def rest(self, k: int) -> str:
        """The raw text from the k-th word on ("" when there are no more words)."""
        return self.text[self._starts[k]:] if k < len(self._starts) else ""

