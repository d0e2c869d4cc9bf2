"""The Liaison bot in the bench's own process, wired as bot/__main__.py wires it (the same stores, the real `Matrix`
adapter, the real `Bot` sync loop, the command registry), so that a bench can write what it needs through the stores
(opening 20 or 200 pathways by command is the pathways bench's business) and time a real command on a real Synapse.

The MSSanté bridge's stores are there (no bridge runs): the coordination's room (the quarantine room's setting) can be
named, so the commands typed there are the coordination's (`!rcp clore`, `!parcours export`), and mail to a trusted
domain is handed to the bridge's queue.

    async with InProcessBot(synapse, work, "liaison-rcp", roster) as bot:
        room = await bot.matrix.create_room(...)
        await bot.shared.tasks.create(...)
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nio import MatrixRoom, RoomMessage

from bot.app import Bot, BotSettings
from bot.commands import build_registry
from bot.services import PathwaySettings, Services
from bot.store import BotStore
from liaison.bootstrap import Shared, shared_on
from liaison.clock import SystemClock
from liaison.config import RosterEntry
from liaison.db import open_database
from liaison.matrix import Matrix
from liaison.matrix.crypto_store import prepare_stores
from liaison.stack.synapse import Synapse
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.trusted import TrustedDomains
from policies.sharing import Knobs
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import Clinician

TRUSTED = frozenset({"hopital.mssante.fr"})   # the bridge's trusted-domain list: mail to an external participant
ENCRYPTED = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


class Reader(Clinician):
    """A client that keeps every message of the bot with the moment its sync delivered it (decrypted)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.bot_id = ""
        self.received: list[tuple[float, str, RoomMessage]] = []   # (arrival, room, event)
        self._arrived = asyncio.Event()

    async def _on_message(self, room: MatrixRoom, event: RoomMessage) -> None:
        await super()._on_message(room, event)
        if event.sender == self.bot_id:
            self.received.append((time.perf_counter(), room.room_id, event))
            self._arrived.set()

    async def until(self, count: int, match, timeout: float) -> list[tuple[float, str, RoomMessage]]:
        """The messages `match(room, event)` once `count` of them arrived."""
        deadline = time.monotonic() + timeout
        while len(found := [r for r in self.received if match(r[1], r[2])]) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {len(found)} of {count} messages received within {timeout} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(left, 5))
            except asyncio.TimeoutError:
                pass
        return found


class InProcessBot:
    def __init__(self, synapse: Synapse, work: Path, account: str, roster: list[RosterEntry]) -> None:
        self.synapse, self.work, self.account, self.roster = synapse, work, account, roster
        self.user_id = ""
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "InProcessBot":
        self.user_id = await self.synapse.aregister(self.account, PASSWORD)
        self.engine = await open_database(f"sqlite+aiosqlite:///{self.work / (self.account + '.db')}")
        knobs = Knobs()
        self.shared: Shared = shared_on(self.engine, knobs, bridge=True, trusted=TrustedDomains(TRUSTED),
                                        clock=SystemClock())
        await self.shared.roster.load(self.roster)
        store_dir, key = self.work / f"{self.account}-store", f"bench-{self.account}-store-key-" + "0" * 32
        await prepare_stores([store_dir], key, "bot.store_pickle_key")
        self.matrix = Matrix(self.synapse.url, self.user_id, store_dir, "Liaison", pickle_key=key)
        self.services = Services.of(self.shared, self.matrix, PathwaySettings(
            server_name=self.synapse.server_name, bot_user_id=self.user_id, naming=knobs.room_naming,
            ins_test_mode=True))
        self.store = BotStore(self.engine, self.shared.clock)
        bot = Bot(self.matrix, self.store, build_registry(),
                  BotSettings(password=PASSWORD, staff=frozenset()), self.services)
        self._task = asyncio.create_task(bot.run(), name=f"bench-{self.account}")
        await asyncio.wait_for(bot.ready.wait(), 120)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.matrix.close()
        await self.engine.dispose()

    async def settled(self, timeout: float = 30.0) -> None:
        """Until every command the bot received is answered and recorded so (`bot_command.answered_at`): a sample
        starts when the last one's tail work (the answer's record, its callbacks) is done, not after a fixed pause."""
        deadline = asyncio.get_running_loop().time() + timeout
        while waiting := await self.store.unanswered():
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{len(waiting)} command(s) still unanswered after {timeout} s")
            await asyncio.sleep(0.01)

    async def coordination_room(self, coordinator: Clinician) -> str:
        """The coordination's room: made by the coordinator with the bot, joined by it, named in the settings."""
        room = await coordinator.create_encrypted_room(invite=[self.user_id], name="coordination")
        assert self.shared.mail is not None
        await self.shared.mail.set_setting(QUARANTINE_ROOM, room)
        await coordinator.wait_joined(room, [self.user_id])
        return room

    async def rooms_with(self, member: Clinician, count: int, concurrency: int = 4) -> list[str]:
        """`count` encrypted rooms made by the bot with `member` invited and joined (as an opening makes them), once
        the bot's sync saw the join (its room keys go to the member's device)."""
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with sem:
                room = await self.matrix.create_room(name=f"patient {i}", topic="", initial_state=ENCRYPTED,
                                                     power_levels=None, invite=[member.user_id])
                await member.join(room, timeout=120)
                return room

        made = list(await asyncio.gather(*(one(i) for i in range(count))))
        deadline = time.monotonic() + 120
        rooms = self.matrix.client.rooms
        while not all(r in rooms and member.user_id in rooms[r].users
                      and member.user_id not in rooms[r].invited_users for r in made):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not see {member.user_id} join every room")
            await asyncio.sleep(0.2)
        return made
