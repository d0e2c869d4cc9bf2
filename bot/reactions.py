"""Reactions that act: ✋ on a task's notice takes the task, ✅ marks it done.

A reaction is read as the command it stands for (`!tache prendre <n>`, `!tache faite <n>`), typed by whoever reacted
in the room of the notice: it is stored, answered and decided like any command (same checks, same trace), and its
answer replies to the notice. A reaction carries only its emoji (reactions are sent unencrypted by Element): the
command it stands for shows nothing by itself, and its answer goes encrypted into the pathway's room.
"""
from __future__ import annotations

import re
from typing import Protocol

from liaison.matrix import Reaction, TextMessage
from liaison.stores.tasks import TaskStore

_VARIANTS = re.compile("[\ufe0f\ufe0e\U0001f3fb-\U0001f3ff\u200d\u2640\u2642]")   # presentation, skin tones, gender
TAKE = frozenset({"✋", "🤚", "🖐", "🙋"})
DONE = frozenset({"✅", "✔", "☑"})


class ReactionPorts(Protocol):
    @property
    def tasks(self) -> TaskStore: ...


def verb(key: str) -> str | None:
    """The sub-command a reaction's key stands for (any skin tone or presentation of the emoji), or None."""
    bare = _VARIANTS.sub("", key.strip())
    return "prendre" if bare in TAKE else "faite" if bare in DONE else None


async def as_commands(services: ReactionPorts, reactions: list[Reaction]) -> list[TextMessage]:
    """The reactions on a task's notice that stand for a command, read as that command."""
    out = []
    for r in reactions:
        sub = verb(r.key)
        if sub is None:
            continue
        task = await services.tasks.by_notice(r.target)
        if task is None:
            continue
        out.append(TextMessage(r.room_id, r.event_id, r.sender, f"!tache {sub} {task.number}", encrypted=True,
                               reply_to=r.target))
    return out
