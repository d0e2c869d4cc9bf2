"""The line of a new task (`!tache <texte> [pour …] [échéance …] [catégorie …] [objectif <n>]`) read into its parts:
the text as typed, then, at its end and in any order, who it is for, its due date (bot/task_dates.py), its category
and the care plan's goal it serves (`objectif 2` or `objectif:2`). Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.arguments import matrix_id
from bot.registry import ArgError, fold
from bot.task_dates import EXAMPLES, Due, read_due
from liaison.stores.tasks import CATEGORIES, MAX_TEXT
from policies.professions import find_profession

_MARKER = re.compile(r"(?<!\S)(pour|[ée]ch[ée]ance|cat[ée]gorie|objectif)(?:[ \t]+|(?<=objectif):[ \t]*)", re.I)


@dataclass(frozen=True)
class NewTask:
    text: str
    owner: str | None = None
    profession: str | None = None
    due: Due | None = None
    category: str = "soins"
    goal: int | None = None   # the number of the care plan's goal it serves


def read_line(raw: str, now_: datetime) -> NewTask | str:
    """The task typed, or why it cannot be read (French), from the clock's now."""
    text, found = raw, NewTask("")
    used: set[str] = set()
    while True:
        marks = [m for m in _MARKER.finditer(text) if "\n" not in text[m.end():] and fold(m.group(1))[:3] not in used]
        if not marks:
            break
        mark = marks[-1]
        kind, value = fold(mark.group(1))[:3], text[mark.end():].strip()
        if kind == "pou":
            if value.startswith("@"):
                try:
                    found = _with(found, owner=matrix_id(value))
                except ArgError as err:
                    return err.message.rstrip(".")
            elif (profession := find_profession(value)) is not None:
                found = _with(found, profession=profession.key)
            else:
                break   # « pour la semaine »: the text's own words
        elif kind == "obj":
            if not value.isdigit() or int(value) < 1:
                break   # « objectif de poids »: the text's own words
            found = _with(found, goal=int(value))
        elif kind == "ech":
            due = read_due(value, now_)
            if isinstance(due, str):
                return due
            found = _with(found, due=due)
        else:
            if fold(value) not in CATEGORIES:
                return f"catégorie « {value} » inconnue ; catégories : {', '.join(CATEGORIES)}"
            found = _with(found, category=fold(value))
        used.add(kind)
        text = text[:mark.start()].rstrip()
    if not text.strip():
        return "écrivez le texte de la tâche avant « pour » ou « échéance »"
    if len(text) > MAX_TEXT:
        return f"le texte d'une tâche tient en {MAX_TEXT} caractères ({len(text)} ici)"
    return _with(found, text=text)


def _with(task: NewTask, **changes: Any) -> NewTask:
    return replace(task, **changes)


def example(raw: str) -> str:
    """An example built from what was typed: its first words, then each way of writing a due date."""
    start = _MARKER.split(raw, maxsplit=1)[0].strip().splitlines()[0][:40] if raw.strip() else "Prise de sang"
    return " ; ".join(f"« !tache {start} échéance {e} »" for e in EXAMPLES)
