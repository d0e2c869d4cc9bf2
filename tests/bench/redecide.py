"""A change of fact re-decided across many rooms: `!equipe retirer` of a nurse who is in N pathways' rooms.

Target of issue 24: with N = 200 rooms, every removal done within 10 s.

- setup: a bot of its own (account `liaison-redecide`, a roster of a coordinator and two nurses, INS test mode);
  N pathways opened for N patients with both nurses in their team; the nurses and the coordinator join every room;
- measured: from the coordinator sending `!equipe retirer <nurse>` to the nurse's `/joined_rooms` holding none of
  the N rooms (polled every 50 ms), and to the bot's answer reaching the coordinator (its count checked);
- floor, same run: the coordinator's own client kicking the second nurse from the same N rooms, 8 kicks in flight
  (what the homeserver itself costs for N removals).

    res = await bench_redecide(synapse, work, rooms=200)
    lines = report_lines(res)
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from nio import JoinedRoomsResponse, RoomKickResponse
from sqlalchemy import text

from liaison.db import open_database

from liaison.stack.synapse import Synapse
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import Clinician
from tests.bench.pathways import _Coordinator, opening_command
from tests.support.botproc import BotProcess

TARGET_S = 10.0
POLL_S = 0.05
IN_FLIGHT = 8
NURSES = (("infirmiere", "Sophie Bernard"), ("infirmier2", "Marc Blanc"))


async def _all(items, one, in_flight: int = IN_FLIGHT) -> list:
    sem = asyncio.Semaphore(in_flight)

    async def bounded(item):
        async with sem:
            return await one(item)
    return await asyncio.gather(*(bounded(i) for i in items))


async def _joined(client: Clinician, rooms: set[str]) -> int:
    resp = await client.client.joined_rooms()
    if not isinstance(resp, JoinedRoomsResponse):
        raise RuntimeError(f"joined_rooms failed: {resp}")
    return len(rooms & set(resp.rooms))


async def _until_none(client: Clinician, rooms: set[str], start: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while await _joined(client, rooms):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{client.name} still in {await _joined(client, rooms)} rooms after {timeout} s")
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - start


async def _bot_saw_joins(database_url: str, who: list[str], expected: int, timeout: float = 120) -> None:
    """Until the bot has recorded every nurse's join (its membership watcher), read in its database: the removal is
    then timed on the rooms as the bot knows them, not on joins still on their way."""
    engine = await open_database(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with engine.connect() as conn:
                seen = (await conn.execute(text(
                    "SELECT COUNT(*) FROM pathway_member WHERE state = 'joined' AND user_id IN ("
                    + ", ".join(f":u{i}" for i in range(len(who))) + ")"),
                    {f"u{i}": u for i, u in enumerate(who)})).scalar_one()
            if seen >= expected:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot recorded {seen} of {expected} nurses' joins after {timeout} s")
            await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()


async def bench_redecide(synapse: Synapse, work: Path, rooms: int) -> dict:
    coord = _Coordinator("coordination-r")
    nurses = [Clinician(local) for local, _ in NURSES]
    bot = None
    try:
        coord_id, bot_id = [await synapse.aregister(n, PASSWORD) for n in ("coordination-r", "liaison-redecide")]
        nurse_ids = [await synapse.aregister(local, PASSWORD, displayname=name) for local, name in NURSES]
        roster = [{"user_id": coord_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True}]
        roster += [{"user_id": uid, "name": name, "profession": "infirmier"}
                   for uid, (_, name) in zip(nurse_ids, NURSES)]
        bot = BotProcess(work / "liaison-redecide", synapse.url, synapse.server_name, bot_id, PASSWORD, [],
                         extra={"roster": roster, "pathways": {"ins_test_mode": True}}).start()
        await coord.login(synapse.url, coord_id, PASSWORD, work / "store-coordination-r")
        for nurse, uid in zip(nurses, nurse_ids):
            await nurse.login(synapse.url, uid, PASSWORD, work / f"store-{nurse.name}")
        desk = await coord.create_encrypted_room(invite=[bot_id], name="coordination")
        await coord.wait_joined(desk, [bot_id])
        await coord.warm_up(desk, "!aide", bot_id)

        opened: list[str] = []
        setup = time.perf_counter()
        for i in range(rooms):
            event_id = await coord.send(desk, opening_command(10_000 + i, nurse_ids))
            await coord._replies.wait(f"{event_id}|{bot_id}", 120)
            body = await coord.bodies.wait(event_id, 5)
            found = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", body)
            if "ouvert (" not in body or not found:
                raise RuntimeError(f"opening {i} did not go through: {body!r}")
            opened.append(found.group(1))
        made = set(opened)
        for who in (coord, *nurses):
            await _all(opened, lambda room, who=who: who.client.join(room))
            if await _joined(who, made) != rooms:
                raise RuntimeError(f"{who.name} joined {await _joined(who, made)} of {rooms} rooms")
        setup_s = time.perf_counter() - setup

        await _bot_saw_joins(bot.database_url, nurse_ids, len(nurse_ids) * rooms)
        start = time.perf_counter()
        event_id = await coord.send(desk, f"!equipe retirer {nurse_ids[0]}")
        removed_s = await _until_none(nurses[0], made, start, 120)
        await coord._replies.wait(f"{event_id}|{bot_id}", 120)
        answered_s = time.perf_counter() - start
        body = await coord.bodies.wait(event_id, 5)
        if f"Retiré(e) des salons de {rooms} parcours" not in body:
            raise RuntimeError(f"unexpected answer: {body!r}")

        await asyncio.sleep(2)   # pacing between two measurements (Synapse's queues drained), not a wait for a result
        start = time.perf_counter()
        kicks = await _all(opened, lambda room: coord.client.room_kick(room, nurse_ids[1], "plancher"))
        if not all(isinstance(k, RoomKickResponse) for k in kicks):
            raise RuntimeError(f"floor kicks failed: {[k for k in kicks if not isinstance(k, RoomKickResponse)][:3]}")
        floor_s = await _until_none(nurses[1], made, start, 120)
        return {"rooms": rooms, "removed_s": removed_s, "answered_s": answered_s, "floor_s": floor_s,
                "ratio": removed_s / floor_s, "setup_s": setup_s, "target_met": removed_s <= TARGET_S}
    finally:
        for who in (coord, *nurses):
            await who.close()
        if bot:
            bot.stop()


def report_lines(res: dict) -> list[str]:
    return [f"{'fact change re-decided':<24} !equipe retirer, a nurse in {res['rooms']} rooms "
            f"(setup {res['setup_s']:.0f} s)",
            f"{'  all removals done':<24} {res['removed_s']:6.2f} s   target ≤ {TARGET_S:.0f} s "
            f"{'✓' if res['target_met'] else '✗'}",
            f"{'  the bot answered':<24} {res['answered_s']:6.2f} s",
            f"{'  floor: client kicks':<24} {res['floor_s']:6.2f} s   ({IN_FLIGHT} in flight)  "
            f"ratio {res['ratio']:.2f}"]
