"""The command registry: a command, and each of its sub-commands, is one async function declared once.

`@command(...)` declares a command of its own (`!aide`, `!trace`); `group(...)` declares a command made of
sub-commands, each declared with `@group.sub(...)` with its English name, its audience and its arguments. Each
argument may carry a parser that returns the value or raises `ArgError` with a French sentence. Usage lines,
`!aide` and the README's command reference are generated from these declarations; the registry routes a
message to its sub-command, refuses whoever it is not for, and answers an unknown word with the closest one.
A command also declares where it runs (`room=`, `open=`: checked before it runs, bot/preconditions.py) and, for
a form, its fields (`form=`, bot/forms.py: bound by the registry, never re-parsed by the handler).

The registry is built in the wiring from an explicit list (nothing registers itself on import).
Command words are matched without case or accents: `!aide`, `!Aide`, `!aïde`, `/aide`.
"""
from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.forms import ArgError, Field, bind
from bot.words import Words, fold, number, strip_reply_fallback
from liaison.matrix.content import as_html

__all__ = ["Arg", "ArgError", "Audience", "Command", "Context", "Declared", "Field", "Group", "Invocation", "Problem",
           "Registry", "Reply", "ROOMS", "Sub", "Words", "command", "fold", "group", "number"]

if TYPE_CHECKING:
    from liaison.stores.pathways import Pathway

PREFIXES = ("!", "/")
MAIL_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class Audience(enum.Enum):
    EVERYONE = "tous les membres du salon"
    STAFF = "l'équipe de la structure"
    COORDINATOR = "la coordination de la structure"

    def admits(self, is_staff: bool, is_coordinator: bool) -> bool:
        if self is Audience.COORDINATOR:
            return is_coordinator
        return self is Audience.EVERYONE or is_staff or is_coordinator


# Where a command runs, and the one sentence that says so to whoever types it elsewhere.
ROOMS = {
    "pathway": "Tapez cette commande dans le salon du parcours concerné.",
    "circle": "Tapez cette commande dans le cercle élargi du parcours concerné.",
    "coordination": "Tapez cette commande dans le salon de la coordination (« Quarantaine MSSanté »).",
    "direct": "Tapez cette commande dans une conversation privée avec Liaison.",
    "any": "",
}
# What the answer of a command declared `patient_data` shows, and so who decides it (policies.sharing, path
# command.show, against the room the answer is read in: ctx.room_kind):
SHOWS = {
    "room": "the patient's data of the room's pathway: the bot decides for the room before the handler runs",
    "items": "several pathways' data, or one room's in two forms: the handler decides each (bot.rooms.may_show)",
    "none": "no patient's data beyond what the person typed (the answer to an opening, the list of types)",
}
CLOSED = "Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir)."   # a command declared `open=True`
_PLACES = {"pathway": "dans le salon du parcours", "circle": "dans le cercle élargi du parcours",
           "coordination": "dans le salon de la coordination", "direct": "en conversation privée avec Liaison"}


def place(room: tuple[str, ...], open: bool = False) -> str:
    """Where a command runs, as `!aide` and the README say it (« » when anywhere)."""
    if "any" in room:
        return ""
    return " ou ".join(_PLACES[k] for k in room) + (" (parcours ouvert)" if open else "")


def _shows(shows: str) -> str:
    if shows not in SHOWS:
        raise ValueError(f"shows is one of {', '.join(SHOWS)}: {shows!r}")
    return shows


def _rooms(room: str | Iterable[str]) -> tuple[str, ...]:
    kinds = (room,) if isinstance(room, str) else tuple(room)
    unknown = [k for k in kinds if k not in ROOMS]
    if unknown or not kinds:
        raise ValueError(f"room kinds are {', '.join(ROOMS)}: {kinds}")
    return kinds


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    required: bool = True
    rest: bool = False   # the raw text of every remaining word, byte for byte
    parse: Callable[[str], Any] | None = None   # the value, or ArgError

    def usage(self) -> str:
        text = f"<{self.name}{'…' if self.rest else ''}>"
        return text if self.required else f"[{text[1:-1]}]"


@dataclass(frozen=True)
class Reply:
    text: str
    html: str | None = None
    sent: Callable[[str], Awaitable[None]] | None = field(default=None, compare=False)   # told the answer's event id

    def then(self, sent: Callable[[str], Awaitable[None]]) -> "Reply":
        """This answer, and what to do with its event id once the homeserver took it."""
        return replace(self, sent=sent)

    @classmethod
    def plain(cls, text: str) -> "Reply":
        return cls(text, as_html(text))


S = TypeVar("S", covariant=True)   # what a family's handlers read of the bot's services: its port


@dataclass(frozen=True)
class Context(Generic[S]):
    """What a command function receives. `services` is typed by the family's port (`Context[PathwayPorts]`): the
    wiring hands the whole `Services`, a handler sees only what its port lists."""
    sender: str
    room_id: str
    event_id: str
    args: dict[str, Any]
    registry: "Registry"
    is_staff: bool
    services: S   # the bot's collaborators, set by the wiring
    is_coordinator: bool = False
    words: Words = field(default_factory=Words)   # what followed the (sub-)command word, as typed
    usage: str = ""                               # the invoked (sub-)command's usage line
    pathway: "Pathway | None" = None              # the pathway of the room, for a command declared in one
    room_kind: str = "other"                      # clinical | circle | coordination | direct | other (preconditions)

    @property
    def room_pathway(self) -> "Pathway":
        """The pathway of the room, for a command declared in one (`room="pathway"` or `"circle"`): found before the
        handler runs (bot/preconditions.py), so a handler never checks it again."""
        if self.pathway is None:
            raise ValueError("a command declared in a pathway's room ran without its pathway")
        return self.pathway


Handler = Callable[[Context[Any]], Awaitable[Reply]]


@dataclass(frozen=True)
class Declared:
    """A command function with its declaration (`@command`), called as the function itself."""
    fn: Handler
    command: "Command"

    def __call__(self, ctx: Context[Any]) -> Awaitable[Reply]:
        return self.fn(ctx)


@dataclass(frozen=True)
class Sub:
    """One sub-command of a group: `!parcours ouvrir`."""
    name: str
    english: str
    summary: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    who: Audience = Audience.EVERYONE
    aliases: tuple[str, ...] = ()
    form: tuple[Field, ...] = ()   # named fields (--nom …) in any order, or by position: bound into ctx.args
    parent: str = ""
    room: tuple[str, ...] | None = None   # where it runs (None: as its command)
    open: bool | None = None              # needs an open pathway (None: as its command)
    shows: str | None = None              # what its answer shows (None: as its command; see SHOWS)

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, self.english, *self.aliases)

    def place(self, cmd: "Command") -> str:
        return place(cmd.room if self.room is None else self.room, cmd.open if self.open is None else self.open)

    def usage(self, prefix: str = "!", *, full: bool = True) -> str:
        """`full`: with the named fields of a form (the short line is for lists)."""
        line = " ".join([f"{prefix}{self.parent} {self.name}", *(a.usage() for a in self.args)])
        if self.form and full:
            line += " ; ou, dans n'importe quel ordre : " + " ".join(f"--{f.name} …" for f in self.form)
        return line


@dataclass(frozen=True)
class Command:
    name: str
    english: str
    summary: str
    handler: Handler | None
    args: tuple[Arg, ...] = ()
    who: Audience = Audience.EVERYONE
    aliases: tuple[str, ...] = ()
    patient_data: bool = False   # shows or takes a patient's data: never in a room that is not encrypted
    subs: tuple[Sub, ...] = ()
    default: str | None = None   # the sub-command run when none is named
    requires: Callable[[Any], str | None] | None = None   # services -> why the command cannot run at all
    room: tuple[str, ...] = ("any",)   # where it runs: pathway, circle, coordination, direct, any
    open: bool = False                 # needs an open pathway
    shows: str = "room"                # for a command with patient_data: see SHOWS

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, self.english, *self.aliases)

    def usage(self, prefix: str = "!", subs: Iterable[Sub] | None = None) -> str:
        """`subs`: the sub-commands to show (those the reader may run); all of them by default."""
        if self.subs:
            return f"{prefix}{self.name} <{' | '.join(s.name for s in (self.subs if subs is None else subs))}> …"
        return " ".join([prefix + self.name, *(a.usage() for a in self.args)])

    def sub(self, word: str) -> Sub | None:
        word = fold(word)
        return next((s for s in self.subs if word in s.words), None)

    def visible_subs(self, is_staff: bool, is_coordinator: bool) -> list[Sub]:
        return [s for s in self.subs if s.who.admits(is_staff, is_coordinator)]


def command(name: str, *, en: str, help: str, args: Iterable[Arg] = (),
            who: Audience = Audience.EVERYONE, aliases: Iterable[str] = (), patient_data: bool = False,
            room: str | Iterable[str] = "any", open: bool = False, shows: str = "room") -> Callable[[Handler], Declared]:
    """Describe a command function; the registry is built later from these descriptions."""
    def describe(fn: Handler) -> Declared:
        return Declared(fn, Command(fold(name), fold(en), help, fn, tuple(args), who,
                                    tuple(fold(a) for a in aliases), patient_data, room=_rooms(room), open=open,
                                    shows=_shows(shows)))
    return describe


class Group:
    """A command made of sub-commands; `.command` is its declaration once every `@group.sub` has run."""

    def __init__(self, name: str, *, en: str, help: str, who: Audience = Audience.EVERYONE,
                 aliases: Iterable[str] = (), patient_data: bool = False, default: str | None = None,
                 requires: Callable[[Any], str | None] | None = None, room: str | Iterable[str] = "any",
                 open: bool = False, shows: str = "room") -> None:
        self._command = Command(fold(name), fold(en), help, None, (), who, tuple(fold(a) for a in aliases),
                                patient_data, (), default and fold(default), requires, _rooms(room), open,
                                _shows(shows))

    @property
    def command(self) -> Command:
        return self._command

    def sub(self, name: str, *, en: str, help: str, args: Iterable[Arg] = (), who: Audience | None = None,
            aliases: Iterable[str] = (), form: Iterable[Field] = (), room: str | Iterable[str] | None = None,
            open: bool | None = None, shows: str | None = None) -> Callable[[Handler], Handler]:
        """`form`: the fields, named or by position; their usage and help are generated (no `args` then)."""
        form = tuple(form)
        if form and args:
            raise ValueError(f"!{self._command.name} {name}: a form declares its fields, not arguments")
        if form:
            last = [f for f in form if f.positional][-1]
            args = [Arg(f.shown or f.name, f.help, f.required and f.positional, rest=f is last) for f in form]

        def describe(fn: Handler) -> Handler:
            declared = Sub(fold(name), fold(en), help, fn, tuple(args), who or self._command.who,
                           tuple(fold(a) for a in aliases), form, self._command.name,
                           None if room is None else _rooms(room), open, shows and _shows(shows))
            taken = {w for s in self._command.subs for w in s.words}
            if taken & set(declared.words):
                raise ValueError(f"sub-command word declared twice in !{self._command.name}: {declared.words}")
            self._command = replace(self._command, subs=(*self._command.subs, declared))
            return fn
        return describe


def group(name: str, **kwargs: Any) -> Group:
    return Group(name, **kwargs)


@dataclass(frozen=True)
class Invocation:
    command: Command
    args: dict[str, Any]
    sub: Sub | None = None
    words: Words = field(default_factory=Words)
    problem: Reply | None = None   # the arguments cannot be read: said after the audience is checked

    @property
    def handler(self) -> Handler:
        handler = self.sub.handler if self.sub else self.command.handler
        if handler is None:   # a group runs one of its sub-commands: parse() never binds a group alone
            raise ValueError(f"!{self.command.name} runs its sub-commands, not a handler of its own")
        return handler

    @property
    def who(self) -> Audience:
        return self.sub.who if self.sub else self.command.who

    @property
    def name(self) -> str:
        return f"{self.command.name} {self.sub.name}" if self.sub else self.command.name

    @property
    def room(self) -> tuple[str, ...]:
        return self.sub.room if self.sub and self.sub.room is not None else self.command.room

    @property
    def open(self) -> bool:
        return self.sub.open if self.sub and self.sub.open is not None else self.command.open

    @property
    def shows(self) -> str:
        return self.sub.shows if self.sub and self.sub.shows is not None else self.command.shows

    def usage(self) -> str:
        return self.sub.usage() if self.sub else self.command.usage()


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
    def of(cls, declared: Iterable[Declared | Group]) -> "Registry":
        return cls([d.command for d in declared])

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
        if not cmd.subs:
            return _bind(cmd, None, cmd.args, words, 1)
        named = cmd.sub(words[1]) if len(words) > 1 else None
        default = cmd.sub(cmd.default) if cmd.default else None
        if named is not None:
            if default is not None and _free_text(default) and _first_refused(named, words):
                return _bind(cmd, default, default.args, words, 1)   # `!tache Annuler le rendez-vous`: a text
            return _bind(cmd, named, named.args, words, 2)
        if default is not None and (len(words) == 1 or default.args):
            bound = _bind(cmd, default, default.args, words, 1)
            if bound.problem is None or not _near_sub(cmd, words[1] if len(words) > 1 else ""):
                return bound
        return Problem(_unknown_sub(cmd, words[1] if len(words) > 1 else ""))

    def _unknown(self, word: str) -> Reply:
        close = difflib.get_close_matches(fold(word), list(self._by_word), n=1, cutoff=0.5)
        hint = f" Vouliez-vous dire !{self._by_word[close[0]].name} ?" if close else ""
        return Reply.plain(f"Commande inconnue : « !{word} ».{hint} Tapez !aide pour la liste des commandes.")

    def visible_to(self, is_staff: bool, is_coordinator: bool = False) -> list[Command]:
        return [c for c in self.commands if c.who.admits(is_staff, is_coordinator)]


def _free_text(sub: Sub) -> bool:
    """A sub-command that takes one text, as typed (`!tache nouvelle <texte…>`): the group's words may begin it."""
    return len(sub.args) == 1 and sub.args[0].rest and not sub.form


def _first_refused(sub: Sub, words: Words) -> bool:
    """The words after a sub-command's name make a phrase (two or more) whose first is not its first argument
    (`!tache annuler le rendez-vous`: « le » is no task number): the line is a text that begins with that name.
    One word alone (`!tache annuler un`) is a mistyped argument, answered with the usage."""
    if len(words) < 4 or not sub.args or sub.args[0].rest or sub.args[0].parse is None:
        return False
    try:
        sub.args[0].parse(words[2])
    except ArgError:
        return True
    return False


def _near_sub(cmd: Command, word: str) -> bool:
    """A word that looks like a mistyped sub-command (`!doc envoier 1 …`), not an argument of the default one."""
    return bool(word) and bool(difflib.get_close_matches(fold(word), [w for s in cmd.subs for w in s.words], n=1,
                                                         cutoff=0.75))


def _unknown_sub(cmd: Command, word: str) -> Reply:
    words = {w: s for s in cmd.subs for w in s.words}
    close = difflib.get_close_matches(fold(word), list(words), n=1, cutoff=0.5) if word else []
    hint = f" Vouliez-vous dire !{cmd.name} {words[close[0]].name} ?" if close else ""
    what = f"sous-commande inconnue « {word} »" if word else "précisez la sous-commande"
    return Reply.plain(f"!{cmd.name} : {what}.{hint} Possibles : {', '.join(s.name for s in cmd.subs)} "
                       f"(détail : !aide {cmd.name}).")


def _bind(cmd: Command, sub: Sub | None, declared: tuple[Arg, ...], line: Words, start: int) -> Invocation:
    """Bind the words from `start` on to the declared arguments; a `rest` argument is the raw text of what
    remains. A parser's refusal, a missing or an extra argument is the invocation's `problem`, with the generated
    usage line (said only to someone the command is for)."""
    inv = Invocation(cmd, {}, sub, Words(line.rest(start)))
    words = list(line[start:])
    if sub is not None and sub.form:
        bound = bind(sub.form, words, f"!{inv.name}")
        if isinstance(bound, str):
            return replace(inv, problem=Reply.plain(f"{bound} (utilisation : {inv.usage()})"))
        return replace(inv, args=bound)
    raw: dict[str, str] = {}
    for i, arg in enumerate(declared):
        if arg.rest:
            if words[i:]:
                raw[arg.name] = line.rest(start + i)
            words = words[:i]
            break
        if i < len(words):
            raw[arg.name] = words[i]
    missing = [a.name for a in declared if a.required and a.name not in raw]
    extra = len(words) - len([a for a in declared if not a.rest])
    if missing or extra > 0:
        what = f"il manque : {', '.join(missing)}" if missing else "trop d'arguments"
        return replace(inv, problem=Reply.plain(f"!{inv.name} : {what}. Utilisation : {inv.usage()}"))
    for arg in declared:
        if arg.name in raw:
            try:
                inv.args[arg.name] = arg.parse(raw[arg.name]) if arg.parse else raw[arg.name]
            except ArgError as err:
                return replace(inv, problem=Reply.plain(f"!{inv.name} : {err.message} Utilisation : {inv.usage()}"))
    return inv
