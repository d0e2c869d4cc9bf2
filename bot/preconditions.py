"""Where a command runs, checked before it runs: its declared room (`room=`) and, when it needs one, an open
pathway (`open=True`). The handler receives the pathway found (`ctx.pathway`) and never checks the room again.

How a room is recognised: a pathway's clinical room or its circle room (the pathway store), the coordination's
room (the MSSanté quarantine room, when the bridge is configured), a direct conversation (the bot and one
person). Each case a command cannot run in is answered by one sentence (bot.registry.ROOMS, CLOSED).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.ports import MailPort, MatrixRooms
from bot.registry import CLOSED, ROOMS
from bot.rooms import CIRCLE_NO_CHANGE, room_kind
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import Pathway, PathwayStore


@dataclass(frozen=True)
class Here:
    """What the check found: the room's pathway, or why the command cannot run in this room; and, for a command
    that shows patients' data, the kind of room its answer is read in (clinical, circle, coordination, direct,
    other: policies.sharing decides what each may show)."""
    pathway: Pathway | None = None
    refusal: str | None = None
    kind: str = "other"


class WherePorts(Protocol):
    """What recognising a room reads: the pathways' rooms, the coordination's room, the room's members."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def mail(self) -> MailPort | None: ...
    @property
    def matrix(self) -> MatrixRooms: ...


async def where(services: WherePorts, room_id: str, rooms: tuple[str, ...], needs_open: bool,
                patient_data: bool = False) -> Here:
    """`patient_data`: the command shows or takes patients' data; typed anywhere (`room="any"`), it still never
    answers in a circle room, whose non-health members may see nothing clinical (CSP R.1110-2)."""
    if "any" in rooms and not patient_data:
        return Here()
    pathway = await services.pathways.by_room(room_id)
    kind = room_kind(pathway, room_id)   # clinical | circle | other
    if kind == "other" and await _coordination(services, room_id):
        kind = "coordination"
    elif kind == "other" and await _direct(services, room_id):
        kind = "direct"
    if "any" in rooms:
        return Here(refusal=CIRCLE_NO_CHANGE, kind=kind) if kind == "circle" else Here(kind=kind)
    declared = {"clinical": "pathway"}.get(kind, kind)
    if declared not in rooms:
        in_circle = kind == "circle" and "pathway" in rooms   # clinical data: the circle room says why not here
        return Here(refusal=CIRCLE_NO_CHANGE if in_circle else ROOMS[rooms[0]], kind=kind)
    if needs_open and (pathway is None or pathway.status != "open"):
        return Here(refusal=CLOSED, kind=kind)
    return Here(pathway if kind in ("clinical", "circle") else None, kind=kind)


async def _coordination(services: WherePorts, room_id: str) -> bool:
    return services.mail is not None and room_id == await services.mail.setting(QUARANTINE_ROOM)


async def _direct(services: WherePorts, room_id: str) -> bool:
    """The bot and one person: read from the synced state (a command comes after every membership change before it),
    asked of the homeserver for a room not synced yet."""
    members = services.matrix.synced_members(room_id)
    return len(members if members is not None else await services.matrix.members(room_id)) == 2
