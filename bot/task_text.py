"""How a task reads, wherever it is shown (`!taches`, the board, the reminders): its due date, the first line of its
text, the profession it is asked of. Pure."""
from __future__ import annotations

from bot.task_dates import recurrence_label, shown
from liaison.stores.tasks import Task
from policies.professions import find_profession


def due_text(t: Task) -> str:
    rule = recurrence_label(t.recurrence)
    return (f"échéance {shown(t.due_at)}" if t.due_at else "sans échéance") + (f", {rule}" if rule else "")


def first_line(text: str, width: int = 80) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width and "\n" not in text.strip() else first[:width].rstrip() + "…"


def by_due(t: Task) -> tuple[bool, int, int]:
    """Nearest due date first; tasks without one last, in the order they were made."""
    return (t.due_at is None, t.due_at or 0, t.number)


def singular(key: str) -> str:
    found = find_profession(key)
    return found.label.lower() if found else key


def plural(key: str) -> str:
    word = singular(key)
    return " ".join(w if w.endswith(("s", "x")) else w + "s" for w in word.split(" "))
