"""A form: a sub-command whose fields may be named (`--nom Durand`, in any order) or given by position.

The registry binds the words of the line to the declared fields, runs each field's parser, and hands the
handler `ctx.args` bound; what cannot be read is answered in French, naming the field, with an example of the
command built from what was typed. Checks that need the structure's settings or several fields at once (the
configured pathway types, the INS against the identity traits) stay with the handler.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.words import fold


class ArgError(ValueError):
    """An argument that cannot be read; `message` says why in French (with an example when it helps)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Field:
    """One field of a form; its value in `ctx.args` is under `name`."""
    name: str                    # as named on the line: --nom (accents and dashes forgiven)
    label: str                   # as « Il manque : … » names it
    help: str
    parse: Callable[[str], Any] | None = None   # the value, or ArgError
    aliases: tuple[str, ...] = ()
    example: str = ""            # its placeholder in the example line (default: <name>)
    one_word: bool = False       # named: one word, what follows is read by position again
    several: bool = False        # by position: several words, up to one the next field `looks` like
    looks: Callable[[str], bool] | None = None   # a word that can only be this field
    positional: bool = True      # may also be given by position
    required: bool = True
    shown: str = ""              # as the usage line shows it (default: the name)

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def placeholder(self) -> str:
        return self.example or f"<{self.name}>"


def bind(form: Sequence[Field], words: Sequence[str], command: str) -> dict[str, Any] | str:
    """The fields' values, or a French sentence saying what is wrong (with an example built from `words`)."""
    raw = _named(form, words)
    if isinstance(raw, str):
        return raw
    fields, positional = raw
    missing = [f for f in form if f.positional and f.name not in fields]
    for field, value in zip(missing, _by_position(missing, positional)):
        fields[field.name] = value
    absent = [f.label for f in form if f.required and not fields.get(f.name)]
    if absent:
        return f"Il manque : {', '.join(absent)}. Par exemple : {_example(form, fields, command)}."
    values: dict[str, Any] = {}
    for field in form:
        if field.name not in fields:
            continue
        try:
            values[field.name] = field.parse(fields[field.name]) if field.parse else fields[field.name]
        except ArgError as err:
            del fields[field.name]   # the example shows how it should read
            return f"{err.message} Par exemple : {_example(form, fields, command)}."
    return values


def _named(form: Sequence[Field], words: Sequence[str]) -> tuple[dict[str, str], list[str]] | str:
    """(the named fields' raw values, the words given by position), or why a field cannot be read."""
    by_flag = {fold(flag).replace("-", ""): f for f in form for flag in f.flags}
    fields: dict[str, str] = {}
    positional: list[str] = []
    current: Field | None = None
    for word in words:
        folded = fold(word)
        flag = folded[2:] if folded.startswith("--") else None
        if flag is not None and flag.replace("-", "") in by_flag:
            current = by_flag[flag.replace("-", "")]
            if current.name in fields:
                return f"Le champ --{flag} est donné deux fois."
            fields[current.name] = ""
        elif current is not None:
            fields[current.name] = f"{fields[current.name]} {word}".strip()
            if current.one_word:
                current = None
        else:
            positional.append(word)
    empty = [name for name, value in fields.items() if not value]
    if empty:
        return f"Le champ --{empty[0]} est vide : indiquez sa valeur après lui."
    return fields, positional


def _by_position(fields: Sequence[Field], words: Sequence[str]) -> list[str]:
    """One word each; a `several` field up to the first word the next field looks like; the last, the rest."""
    values: list[str] = []
    i = 0
    for n, field in enumerate(fields):
        if i >= len(words):
            break
        if n == len(fields) - 1:
            values.append(" ".join(words[i:]))
            break
        end = i + 1
        following = fields[n + 1]
        if field.several and following.looks is not None:
            end = next((j for j in range(i + 1, len(words)) if following.looks(words[j])), end)
        values.append(" ".join(words[i:end]))
        i = end
    return values


def _example(form: Sequence[Field], fields: dict[str, str], command: str) -> str:
    """The command as it should read, from what was typed (placeholders for the rest)."""
    shown = [f for f in form if f.positional and f.required]
    parts = []
    for n, field in enumerate(shown):
        value = fields.get(field.name) or field.placeholder
        parts.append(f"« {value} »" if " " in value and n < len(shown) - 1 else value)
    return " ".join([command, *parts])
