"""The command registry: a command, and each of its sub-commands, is one async function declared once.

`@command(...)` declares a command of its own (`!aide`, `!trace`); `group(...)` declares a command made of
sub-commands, each declared with `@group.sub(...)` with its English name, its audience and its arguments. Each
argument may carry a parser that returns the value or raises `ArgError` with a French sentence. Usage lines,
`!aide` and the README's command reference are generated from these declarations; the registry routes a
message to its sub-command, refuses whoever it is not for, and answers an unknown word with the closest one.
A command also declares where it runs (`room=`, `open=`: checked before it runs, bot/preconditions.py) and, for
a form, its fields (`form=`, bot/forms.py: bound by the registry, never re-parsed by the handler).

The registry (bot/parsing.py, which also reads a message into an invocation) is built in the wiring from an
explicit list (nothing registers itself on import).
Command words are matched without case or accents: `!aide`, `!Aide`, `!aïde`, `/aide`.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.forms import ArgError, Field
from bot.words import Words, fold, number
from liaison.matrix.content import as_html

__all__ = ["Arg", "ArgError", "Audience", "Command", "Context", "Declared", "Field", "Group", "Reply", "ROOMS", "Sub",
           "Words", "command", "fold", "group", "number"]

if TYPE_CHECKING:
    from bot.parsing import Registry
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
