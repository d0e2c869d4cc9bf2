"""Devices that arrive after the pinned summary: the summary posted again, readable for them.

Megolm room keys go to the devices that exist when a message is sent. A colleague who logs in after
being invited, or a clinician on a new phone, cannot decrypt what came before, and Element accepts
forwarded keys only from the user's own devices (history sharing on invite, MSC4268, carries only
sessions sent under a `shared` history visibility, to the devices existing at invite time: our rooms
show history from one's invitation). So when a member joins, or a member's devices change, the bot
compares the room's current devices with those holding the summary's key; if some cannot read it, it
decides the share for each newcomer (traced), posts the summary again and re-pins it, with the
task board, the care plan and the documents list — once per change, not once per device.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import Protocol

import structlog

from bot.commands.documents import ListingPorts, listing
from bot.enforce import EnforcePorts, reevaluate
from bot.opening import Opener, OpenerPorts, _notice
from bot.care_plan_post import CarePlanPost
from bot.task_board import TaskBoard
from liaison.matrix import Membership, MatrixError, txn_id
from liaison.enforcement import decide_at

log = structlog.get_logger(__name__)

SETTLE_SECONDS = 0.5   # changes that come together (a join, then its devices) make one new post


class NewcomersPorts(EnforcePorts, OpenerPorts, ListingPorts, Protocol):
    """What posting the summary again reads and does: who can read it, the decision for each newcomer, the rooms
    evaluated again (bot/enforce.py), the summary (bot/opening.py), the task board, the care plan and the documents'
    list."""
    @property
    def boards(self) -> TaskBoard: ...
    @property
    def plans(self) -> CarePlanPost: ...


class Newcomers:
    def __init__(self, services: NewcomersPorts, settle: float = SETTLE_SECONDS) -> None:
        self.s = services
        self.settle = settle
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    async def handle(self, joins: list[Membership], changed_users: list[str]) -> None:
        rooms = {m.room_id for m in joins if m.membership == "join" and not self._ours(m.user_id)}
        for user_id in changed_users:
            if not self._ours(user_id):
                rooms.update(self.s.matrix.rooms_with(user_id))
        for room_id in rooms:
            self._schedule(room_id)

    def _ours(self, user_id: str) -> bool:
        settings = self.s.settings
        return user_id == settings.bot_user_id or settings.is_bridged(user_id)

    def _schedule(self, room_id: str) -> None:
        if room_id in self._running:
            self._again.add(room_id)   # looked at again once the current look is done
            return
        self._running[room_id] = asyncio.create_task(self._settle_and_check(room_id))

    async def _settle_and_check(self, room_id: str) -> None:
        try:
            while True:
                await asyncio.sleep(self.settle)
                self._again.discard(room_id)
                try:
                    await self.check(room_id)
                except (MatrixError, OSError, asyncio.TimeoutError) as err:
                    log.warning("newcomers.failed", room_id=room_id, error=str(err)[:200])
                if room_id not in self._again:
                    return
        except Exception:
            log.exception("newcomers.crashed", room_id=room_id)
        finally:
            self._running.pop(room_id, None)

    async def check(self, room_id: str) -> bool:
        """Post the summary again if a current member's device cannot read it; True when posted."""
        s = self.s
        pathway = await s.pathways.by_room(room_id)
        if (pathway is None or pathway.room_id != room_id or pathway.status != "open"
                or not pathway.summary_event_id):
            return False
        people = {u for u in await s.matrix.joined(room_id) if not self._ours(u)}
        missing = await s.matrix.member_devices(room_id, people) - await s.pathways.summary_readers(pathway.id)
        if not missing:
            return False
        bot = s.settings.bot_user_id
        allowed: list[str] = []
        refused: list[str] = []
        for user_id in sorted({u for u, _ in missing}):
            decided = await decide_at(s.sharing, "summary.repost", pathway=pathway, recipient=user_id, actor=bot)
            (allowed if decided.allowed else refused).append(user_id)
        if refused:   # someone the policy refuses is still in the room: removed first, never given the key
            await reevaluate(s, pathway, bot, "Nouvel appareil")
            if set(refused) & await s.matrix.joined(room_id):
                log.warning("newcomers.refused_still_in_room", pathway_id=pathway.id, refused=len(refused))
                return False
        if not allowed:
            return False
        salt = hashlib.sha256(repr(sorted(missing)).encode()).hexdigest()[:16]
        # The whole team reads this summary: the note names no one, says nothing of anyone's phone, and comes last.
        note = "Résumé republié : lisible aussi sur les appareils connectés depuis le précédent."
        await Opener(s).post_current_summary(pathway, note=note, salt=salt)
        await s.boards.post_again(pathway, salt)   # the task board's first event is as unreadable for them
        await s.plans.post_again(pathway, salt)    # and the care plan's
        if await s.documents.of_pathway(pathway.id):
            docs = await listing(s, pathway)
            await s.matrix.send(room_id, _notice(docs.text, docs.html or docs.text), txn_id(pathway.id, "docs", salt))
        log.info("newcomers.reposted", pathway_id=pathway.id, devices=len(missing), people=len(allowed))
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)
