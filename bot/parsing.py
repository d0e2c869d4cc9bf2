"""Reading a message as a command: the registry of the declared commands (bot/registry.py) finds the command and
its sub-command, forgives case, accents and a near word, and binds the words to the declared arguments (a text that
begins with a sub-command's word stays a text, `!tache Annuler le rendez-vous`). What cannot run is a `Problem`
whose French answer says why; what can is an `Invocation`."""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.forms import ArgError, bind
from bot.registry import PREFIXES, Arg, Audience, Command, Declared, Group, Handler, Reply, Sub
from bot.words import Words, fold, strip_reply_fallback


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
