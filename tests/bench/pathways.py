"""Opening a care pathway (`!parcours ouvrir`) against a bare encrypted `createRoom`, same Synapse, same run.

Target of issue "Care pathways": an opening (the patient's space when new, the encrypted room,
4 invites, the pinned summary) p50 ≤ 0.6 s, and ≤ 2.0 × a bare `createRoom` with 4 invites.

- opening: from the coordinator sending `!parcours ouvrir <INS> … --equipe @a,@b,@c,@d` in an
  encrypted room with the bot, to the coordinator's sync delivering the bot's reply (sent once
  the space, the room, the invites, the summary, its pin and the "who was invited" notice are done);
  a new patient each time, so a new space too;
- floor: the same coordinator's nio client creating an encrypted room (m.room.encryption in the
  initial state) inviting the same 4 professionals, until the createRoom response returns.
Samples are interleaved (one of each per round), each after a short pause so that it does not overlap
the syncs and key queries that the previous one set off; one warm-up of each is not counted.

The Liaison bot measured here is a process of its own (account `liaison-parcours`, a roster of
a coordinator and 4 health professionals, INS test mode), so that run.py's `!aide` bot keeps its
configuration. The professionals log in once (an E2EE device with keys, as in real life: the
bot shares each new room's key with their devices), then stop syncing.

    res = await bench_pathways(synapse, work, samples=30)
    lines = report_lines(res)
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nio import RoomCreateResponse, RoomMessage, RoomVisibility

from liaison.stack.synapse import Synapse
from policies.ins import nir_key
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import MEGOLM, Clinician, _Mailbox, percentiles
from tests.support.botproc import BotProcess

P50_MAX_S = 0.6          # opening p50, seconds
RATIO_P50_MAX = 2.0      # opening p50 ÷ bare createRoom p50
PATHWAY_TYPE = "insuffisance-cardiaque"
TEAM = (("medecin", "Dr Paul Martin", "médecin"), ("infirmiere", "Sophie Bernard", "infirmière"),
        ("pharmacien", "Luc Petit", "pharmacien"), ("kine", "Inès Roux", "kiné"))
OPENING, FLOOR = "Liaison !parcours ouvrir", "createRoom, 4 invites"
SETTLE_S = 0.3           # pause before each sample


def opening_command(i: int, team: list[str]) -> str:
    """`!parcours ouvrir` for patient number `i`: a distinct valid test INS whose traits match."""
    sex, year, month = ("M", "F")[i % 2], 30 + i % 70, 1 + i % 12
    nir = f"{1 + i % 2}{year:02d}{month:02d}75{100 + i // 999:03d}{i % 999 + 1:03d}"
    ins = f"{nir}{nir_key(nir):02d}"
    return (f"!parcours ouvrir {ins} {PATHWAY_TYPE} 15/{month:02d}/19{year:02d} {sex} Patient Bench "
            f"--equipe {','.join(team)}")


class _Coordinator(Clinician):
    """A clinician who also keeps the body of each reply, to check an opening succeeded."""

    async def login(self, *args, **kw) -> None:
        await super().login(*args, **kw)
        self.bodies = _Mailbox()   # replied-to event id -> reply body
        self.client.add_event_callback(self._keep_body, RoomMessage)

    async def _keep_body(self, room, event: RoomMessage) -> None:
        replied = ((event.source.get("content", {}).get("m.relates_to") or {}).get("m.in_reply_to") or {})
        if replied.get("event_id"):
            self.bodies.deliver(replied["event_id"], getattr(event, "body", ""))

    async def open_pathway(self, room_id: str, command: str, bot_id: str, invites: int,
                           timeout: float = 60.0) -> float:
        """Seconds from our command to our sync delivering the bot's reply; raises unless it opened."""
        start = time.perf_counter()
        event_id = await self.send(room_id, command)
        arrived = await self._replies.wait(f"{event_id}|{bot_id}", timeout)
        body = await self.bodies.wait(event_id, 5)
        if "ouvert (" not in body or f"{invites} invitation(s)" not in body:
            raise RuntimeError(f"the opening did not go through: {body!r}")
        return arrived - start

    async def bare_create(self, invite: list[str]) -> float:
        """Seconds for a createRoom of an encrypted room inviting `invite`, to its response."""
        start = time.perf_counter()
        resp = await self.client.room_create(
            visibility=RoomVisibility.private, name="bench createRoom", invite=invite,
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}])
        took = time.perf_counter() - start
        if not isinstance(resp, RoomCreateResponse):
            raise RuntimeError(f"createRoom failed: {resp}")
        return took


async def bench_pathways(synapse: Synapse, work: Path, samples: int) -> dict:
    """Interleaved samples of a pathway opening and of a bare createRoom; percentiles in ms, ratio."""
    coord = _Coordinator("coordination")
    bot = None
    try:
        coord_id, bot_id = [await synapse.aregister(n, PASSWORD) for n in ("coordination", "liaison-parcours")]
        team = [await synapse.aregister(local, PASSWORD, displayname=name) for local, name, _ in TEAM]
        for uid in team:   # one E2EE device each, keys uploaded; no sync needed afterwards
            pro = Clinician(uid.split(":")[0][1:])
            await pro.login(synapse.url, uid, PASSWORD, work / f"store-{pro.name}")
            await pro.close()
        roster = [{"user_id": coord_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True}]
        roster += [{"user_id": uid, "name": name, "profession": prof} for uid, (_, name, prof) in zip(team, TEAM)]
        bot = BotProcess(work / "liaison-parcours", synapse.url, synapse.server_name, bot_id, PASSWORD, [],
                         extra={"roster": roster, "pathways": {"ins_test_mode": True}}).start()
        await coord.login(synapse.url, coord_id, PASSWORD, work / "store-coordination")
        desk = await coord.create_encrypted_room(invite=[bot_id], name="coordination")
        await coord.wait_joined(desk, [bot_id])
        await coord.warm_up(desk, "!aide", bot_id)

        invites = len(team) + 1   # the coordinator is invited too
        first = {OPENING: await coord.open_pathway(desk, opening_command(0, team), bot_id, invites),
                 FLOOR: await coord.bare_create(team)}
        times: dict[str, list[float]] = {OPENING: [], FLOOR: []}
        for i in range(1, samples + 1):
            await asyncio.sleep(SETTLE_S)
            times[OPENING].append(await coord.open_pathway(desk, opening_command(i, team), bot_id, invites))
            await asyncio.sleep(SETTLE_S)
            times[FLOOR].append(await coord.bare_create(team))
        latency = {name: percentiles(s) for name, s in times.items()}
        ratio = {q: latency[OPENING][q] / latency[FLOOR][q] for q in ("p50", "p95")}
        return {"latency_ms": latency, "ratio": ratio, "first_ms": {k: v * 1000 for k, v in first.items()},
                "samples": samples, "team": len(team), "settle_s": SETTLE_S}
    finally:
        await coord.close()
        if bot:
            bot.stop()


def report_lines(res: dict) -> list[str]:
    """The pathway part of the report, in run.py's style; adds the verdicts to `res`."""
    lat, ratio = res["latency_ms"], res["ratio"]
    lines = [f"{'care pathway':<24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'first ms':>9}"]
    for name, p in lat.items():
        lines.append(f"{name:<24} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f} {res['first_ms'][name]:>9.1f}")
    res["target_p50_met"] = lat[OPENING]["p50"] <= P50_MAX_S * 1000
    res["target_ratio_met"] = ratio["p50"] <= RATIO_P50_MAX
    lines.append(f"{'opening p50':<24} {lat[OPENING]['p50'] / 1000:5.2f} s  target ≤ {P50_MAX_S} s "
                 f"{'✓' if res['target_p50_met'] else '✗'}")
    lines.append(f"{'opening ÷ createRoom':<24} p50 {ratio['p50']:5.2f}  p95 {ratio['p95']:5.2f}  "
                 f"target p50 ≤ {RATIO_P50_MAX} {'✓' if res['target_ratio_met'] else '✗'}")
    return lines
