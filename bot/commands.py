"""The command registry: one command = one async function declared with `@command(...)`.

The decorator only describes the function; the registry that routes messages is built
in the wiring from an explicit list of commands (nothing registers itself on import).
Command words are matched without case or accents: `!aide`, `!Aide`, `!aïde`, `/aide`.
"""
from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from liaison.matrix.content import as_html

PREFIXES = ("!", "/")
MAIL_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class Audience(enum.Enum):
    EVERYONE = "tous les membres du salon"
    STAFF = "l'équipe de la structure"
    COORDINATOR = "la coordination de la structure"


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    required: bool = True
    rest: bool = False   # takes every remaining word

    def usage(self) -> str:
        text = f"<{self.name}{'…' if self.rest else ''}>"
        return text if self.required else f"[{text[1:-1]}]"


@dataclass(frozen=True)
class Reply:
    text: str
    html: str | None = None

    @classmethod
    def plain(cls, text: str) -> "Reply":
        return cls(text, as_html(text))


@dataclass
class Context:
    """What a command function receives."""
    sender: str
    room_id: str
    event_id: str
    args: dict[str, str]
    registry: "Registry"
    is_staff: bool
    services: object = None   # the bot's collaborators, set by the wiring
    is_coordinator: bool = False


Handler = Callable[[Context], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    english: str
    summary: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    who: Audience = Audience.EVERYONE
    aliases: tuple[str, ...] = ()
    patient_data: bool = False   # shows or takes a patient's data: never in a room that is not encrypted

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, self.english, *self.aliases)

    def usage(self, prefix: str = "!") -> str:
        return " ".join([prefix + self.name, *(a.usage() for a in self.args)])


def command(name: str, *, en: str, help: str, args: Iterable[Arg] = (),
            who: Audience = Audience.EVERYONE, aliases: Iterable[str] = (), patient_data: bool = False):
    """Describe a command function; the registry is built later from these descriptions."""
    def describe(fn: Handler) -> Handler:
        fn.command = Command(fold(name), fold(en), help, fn, tuple(args), who,
                             tuple(fold(a) for a in aliases), patient_data)
        return fn
    return describe


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


def strip_reply_fallback(body: str) -> str:
    """A reply's body starts with the quoted message (`> …` lines, then a blank line)."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    return "\n".join(lines[i:]).lstrip("\n")


@dataclass(frozen=True)
class Invocation:
    command: Command
    args: dict[str, str]


@dataclass(frozen=True)
class Problem:
    """A message that looked like a command but cannot run; `reply` says why in French."""
    reply: Reply


@dataclass
class Registry:
    commands: list[Command] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_word: dict[str, Command] = {}
        for cmd in self.commands:
            for word in cmd.words:
                if word in self._by_word:
                    raise ValueError(f"command word {word!r} declared twice")
                self._by_word[word] = cmd

    @classmethod
    def of(cls, functions: Iterable[Handler]) -> "Registry":
        return cls([fn.command for fn in functions])

    def find(self, word: str) -> Command | None:
        return self._by_word.get(fold(word))

    def parse(self, body: str) -> Invocation | Problem | None:
        """None when the message is not a command at all (ordinary conversation)."""
        text = strip_reply_fallback(body).strip()
        if len(text) < 2 or text[0] not in PREFIXES or not (text[1].isalpha() or text[1] == "?"):
            return None
        words = Words(text[1:])
        cmd = self.find(words[0])
        if cmd is None:
            return Problem(self._unknown(words[0]))
        return self._bind(cmd, words)

    def _unknown(self, word: str) -> Reply:
        close = difflib.get_close_matches(fold(word), list(self._by_word), n=1, cutoff=0.5)
        hint = f" Vouliez-vous dire !{self._by_word[close[0]].name} ?" if close else ""
        return Reply.plain(f"Commande inconnue : « !{word} ».{hint} Tapez !aide pour la liste des commandes.")

    def _bind(self, cmd: Command, line: Words) -> Invocation | Problem:
        """`line`: the command word, then its arguments; a `rest` argument is the raw text of what remains."""
        args: dict[str, str] = {}
        words = list(line[1:])
        for i, arg in enumerate(cmd.args):
            if arg.rest:
                if words[i:]:
                    args[arg.name] = line.rest(i + 1)
                words = words[:i]
                break
            if i < len(words):
                args[arg.name] = words[i]
        missing = [a.name for a in cmd.args if a.required and a.name not in args]
        extra = len(words) - len([a for a in cmd.args if not a.rest])
        if missing or extra > 0:
            what = f"il manque : {', '.join(missing)}" if missing else "trop d'arguments"
            return Problem(Reply.plain(f"!{cmd.name} : {what}. Utilisation : {cmd.usage()}"))
        return Invocation(cmd, args)

    def visible_to(self, is_staff: bool, is_coordinator: bool = False) -> list[Command]:
        allowed = {Audience.EVERYONE} | ({Audience.STAFF} if is_staff else set()) | (
            {Audience.STAFF, Audience.COORDINATOR} if is_coordinator else set())
        return [c for c in self.commands if c.who in allowed]
