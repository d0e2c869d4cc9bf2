"""A person's private conversation with Liaison, where the bot sends what is for them alone (an RCP invitation).

The conversation is a room with the bot and that person only, neither a pathway's room nor the coordination's, as
the bot last synced it. When there is none, one is made: encrypted, named « Liaison » (no patient data), the person
invited; history is readable from the invitation, so what the bot posts right after is theirs to read once joined.
"""
from __future__ import annotations

import asyncio
from typing import Protocol

from bot.ports import MailPort, MatrixRooms
from bot.room_specs import room_initial_state
from liaison.stores.pathways import PathwayStore
from liaison.stores.mail import QUARANTINE_ROOM

NAME = "Liaison"
TOPIC = "Conversation privée avec Liaison : ce qui n'est que pour vous (invitations, vos tâches : !taches)."


class DirectPorts(Protocol):
    @property
    def matrix(self) -> MatrixRooms: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def mail(self) -> MailPort | None: ...


class DirectRooms:
    def __init__(self, services: DirectPorts) -> None:
        self.s = services
        self._lock = asyncio.Lock()
        self._made: dict[str, str] = {}   # made by this process, before the sync shows them

    async def of(self, user_id: str) -> str:
        """The room id of `user_id`'s conversation with Liaison, made when there is none."""
        async with self._lock:
            found = await self.find(user_id)
            if found is not None:
                return found
            room_id = await self.s.matrix.create_room(name=NAME, topic=TOPIC, initial_state=room_initial_state(),
                                                      power_levels=None, invite=[user_id])
            self._made[user_id] = room_id
            return room_id

    async def find(self, user_id: str) -> str | None:
        if user_id in self._made:
            return self._made[user_id]
        bot = self.s.matrix.user_id
        coordination = await self.s.mail.setting(QUARANTINE_ROOM) if self.s.mail is not None else None
        for room_id in sorted(self.s.matrix.rooms_with(user_id)):
            if self.s.matrix.synced_members(room_id) != {bot, user_id} or room_id == coordination:
                continue
            if await self.s.pathways.by_room(room_id) is None:
                return room_id
        return None
