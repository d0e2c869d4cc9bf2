"""`!rcp clore` of a meeting of 20 cases: its minutes in the 20 patients' rooms, against the same bot posting 20 plain
notices into the same rooms and against `!aide`, same run.

Target of issue 26: from `!rcp clore` sent in the coordination's room to the 20 minutes posted in the 20 patients'
rooms, ≤ 10 s.

- setup: the bot in this process (tests/bench/inproc.py: the real stores, `Matrix` adapter, `Bot` loop and commands),
  a coordinator, a nurse and a GP on the roster, an external participant (an MSSanté address); 20 open pathways whose
  rooms the bot made with the coordinator in them, each written through the stores (patient, pathway, team, the
  patient's consent to share with the external participant, so that each case's minutes go to him too). Then,
  for each sample, a meeting written through the stores as the commands would: planned, its participants, the 20
  cases enrolled with their question, opened, 3 present, `--rcp-decisions` decisions per case (each a task);
- measured: the coordinator's client sends `!rcp clore` in the coordination's room; its sync delivers the 20 minutes
  (one per patient's room), the pseudonymous file in the coordination's room and the bot's answer (which counts the
  20 mails handed to the bridge's queue, `rcp_mail`; no bridge runs here to send them): the moment the
  last minutes arrived, the file and the answer, from the send. The event ids in `rcp_item.minutes_event` are those
  the client received;
- floors, interleaved with the samples: `!aide` in the coordination's room (the command's trip), and the same bot
  posting 20 plain notices one after the other into the 20 rooms (`Matrix.send`, as the minutes go), from the first
  send to the client's sync delivering the last.

    res = await bench_rcp(synapse, work, samples=10)
    lines = report_lines(res)
"""
from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from nio import RoomEncryptedFile, RoomMessage

from liaison.config import RosterEntry
from liaison.matrix import notice, txn_id
from liaison.stores.tasks import Draft
from policies.ins import nir_key
from tests.bench.demo_peers import PASSWORD
from tests.bench.inproc import InProcessBot, Reader
from tests.bench.measure import percentiles

TARGET_S = 10.0
CASES = 20
EXTERNAL = "dr.correspondant@hopital.mssante.fr"
MINUTES, FILE, ANSWER = "!rcp clore: 20 minutes", "!rcp clore: coordination file", "!rcp clore: answer"
NOTICES, HELP = "20 plain notices (floor)", "!aide (floor)"


def ins_of(i: int) -> str:
    nir = f"{1 + i % 2}{40 + i % 50:02d}{1 + i % 12:02d}75{100 + i // 999:03d}{i % 999 + 1:03d}"
    return f"{nir}{nir_key(nir):02d}"


async def bench_rcp(synapse, work: Path, samples: int = 10, cases: int = CASES, decisions: int = 2) -> dict:
    coord = Reader("coordination-rcp")
    nurse_id, gp_id = f"@infirmiere-rcp:{synapse.server_name}", f"@medecin-rcp:{synapse.server_name}"
    coord_id = await synapse.aregister("coordination-rcp", PASSWORD)
    for name in ("infirmiere-rcp", "medecin-rcp"):
        await synapse.aregister(name, PASSWORD)
    roster = [RosterEntry(user_id=coord_id, name="Claire Morel", profession="coordinateur", coordinator=True),
              RosterEntry(user_id=nurse_id, name="Sophie Bernard", profession="infirmière"),
              RosterEntry(user_id=gp_id, name="Paul Martin", profession="médecin généraliste")]
    try:
        async with InProcessBot(synapse, work, "liaison-rcp", roster) as bot:
            coord.bot_id = bot.user_id
            await coord.login(synapse.url, coord_id, PASSWORD, work / "store-coordination-rcp")
            desk = await bot.coordination_room(coord)
            await coord.warm_up(desk, "!aide", bot.user_id)
            setup = time.perf_counter()
            rooms = await bot.rooms_with(coord, cases)
            s = bot.shared
            pathways = []
            for i, room in enumerate(rooms):
                patient = await s.pathways.add_patient(ins=ins_of(i), oid="1.2.250.1.213.1.4.10",
                                                       birth_name="Bench", first_names="Patient",
                                                       birth_date=date(1950, 1, 1), sex="F", actor=coord_id)
                pathway = await s.pathways.add_pathway(patient_id=patient.id, type_key="insuffisance-cardiaque",
                                                       code=f"P-C{i:04d}", actor=coord_id)
                await s.pathways.update(pathway.id, status="open", room_id=room)
                for member in (coord_id, nurse_id, gp_id):
                    await s.pathways.set_member(pathway.id, member, "joined", "team.health")
                await s.consents.add_consent(patient.id, scope_kind="person", scope=EXTERNAL, means="écrit",
                                             categories=["soins"], notice="Patient informé du partage (bench).",
                                             actor=coord_id, expires_at=None, pathway_id=pathway.id)
                pathways.append(pathway)
            for room in rooms:   # the room keys shared with the coordinator's device before anything is measured
                await bot.matrix.send(room, notice("Salon prêt."), txn_id("bench-rcp-ready", room))
            await coord.until(cases, lambda r, e: getattr(e, "body", "") == "Salon prêt.", 300)
            setup_s = time.perf_counter() - setup

            times: dict[str, list[float]] = {name: [] for name in (MINUTES, FILE, ANSWER, NOTICES, HELP)}
            matched = True
            for k in range(samples + 1):   # the first round warms up (megolm sessions, caches) and is not counted
                meeting = await _meeting(bot, pathways, coord_id, nurse_id, gp_id, k, decisions)
                await bot.settled()
                floor = await _notices(bot, coord, rooms, k)
                await bot.settled()
                aide = await coord.round_trip(desk, "!aide", bot.user_id, timeout=60)
                await bot.settled()
                took, same = await _close(bot, coord, desk, rooms, meeting)
                matched = matched and same
                if k == 0:
                    continue
                for name, value in ((MINUTES, took[0]), (FILE, took[1]), (ANSWER, took[2]), (NOTICES, floor),
                                    (HELP, aide)):
                    times[name].append(value)
        latency = {name: percentiles(t) for name, t in times.items()}
        return {"cases": cases, "decisions_per_case": decisions, "samples": samples, "setup_s": setup_s,
                "latency_ms": latency, "events_match": matched,
                "ratio_p50": latency[MINUTES]["p50"] / latency[NOTICES]["p50"],
                "target_met": latency[MINUTES]["p95"] <= TARGET_S * 1000 and matched}
    finally:
        await coord.close()


async def _meeting(bot: InProcessBot, pathways, coord_id: str, nurse_id: str, gp_id: str, k: int, decisions: int):
    """A meeting of every pathway's case, open, its participants present, `decisions` decisions per case."""
    store, tasks = bot.shared.rcp, bot.shared.tasks
    now = bot.shared.clock.now_ms()
    meeting = await store.plan(now + 3_600_000, "salle 2", f"RCP de bench {k}", coord_id)
    await store.add_participants(meeting, [coord_id, nurse_id, gp_id, EXTERNAL], coord_id)
    items = [(await store.enrol(meeting, p.id, f"Adapter le traitement diurétique ? (cas {i}, réunion {k})",
                                coord_id))[0] for i, p in enumerate(pathways)]
    opened = await store.open(meeting, coord_id)
    assert opened is not None
    await store.present(opened, [coord_id, nurse_id, gp_id], coord_id)
    for item in items:
        for d in range(decisions):
            owner = (nurse_id, gp_id)[d % 2]
            await store.record_decision(opened, item, Draft(f"Décision {d} : contrôle du poids et de la kaliémie",
                                                             "soins", owner, None, now + (d + 2) * 86_400_000),
                                        tasks, coord_id)
    return opened


async def _notices(bot: InProcessBot, coord: Reader, rooms: list[str], k: int) -> float:
    text = f"Avis de bench {k}"
    started = time.perf_counter()
    for room in rooms:
        await bot.matrix.send(room, notice(text), txn_id("bench-rcp-floor", room, str(k)))
    arrived = await coord.until(len(rooms), lambda r, e: getattr(e, "body", "") == text, 120)
    return max(a for a, _r, _e in arrived) - started


async def _close(bot: InProcessBot, coord: Reader, desk: str, rooms: list[str], meeting) -> tuple[tuple, bool]:
    """(minutes, file, answer) seconds from the send, and whether the event ids recorded are those received."""
    patient_rooms, heading = set(rooms), f"Compte rendu — RCP {meeting.code} "
    started = time.perf_counter()
    sent = await coord.send(desk, "!rcp clore")

    def minutes(room: str, e: RoomMessage) -> bool:
        return room in patient_rooms and getattr(e, "body", "").startswith(heading)

    def file(room: str, e: RoomMessage) -> bool:
        return room == desk and isinstance(e, RoomEncryptedFile) and e.body == f"compte-rendu-{meeting.code}.txt"

    def answer(room: str, e: RoomMessage) -> bool:
        relates = e.source.get("content", {}).get("m.relates_to") or {}
        return room == desk and (relates.get("m.in_reply_to") or {}).get("event_id") == sent

    got = await coord.until(len(rooms), minutes, 120)
    (filed,) = await coord.until(1, file, 60)
    (answered,) = await coord.until(1, answer, 60)
    body = getattr(answered[2], "body", "")
    if f"Compte rendu publié dans {len(rooms)} salon(s) de patient ; {len(rooms)} courriel(s)" not in body:
        raise RuntimeError(f"unexpected answer: {body[:300]!r}")
    recorded = {i.minutes_event for i in await bot.shared.rcp.items(meeting.id)}
    same = recorded == {e.event_id for _a, _r, e in got} and len({r for _a, r, _e in got}) == len(rooms)
    return (max(a for a, _r, _e in got) - started, filed[0] - started, answered[0] - started), same


def report_lines(res: dict) -> list[str]:
    lat = res["latency_ms"]
    ok = lat[MINUTES]["p95"] <= TARGET_S * 1000
    lines = [f"{'rcp':<32} !rcp clore of {res['cases']} cases, {res['decisions_per_case']} decision(s) each, "
             f"an external participant (setup {res['setup_s']:.0f} s)",
             f"{'':<32} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}"]
    for name, p in lat.items():
        target = f"  target ≤ {TARGET_S * 1000:.0f} ms {'✓' if ok else '✗'}" if name == MINUTES else ""
        lines.append(f"{name:<32} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f}{target}")
    lines.append(f"{'minutes ÷ 20 plain notices':<32} p50 {res['ratio_p50']:5.2f}")
    lines.append(f"{'rcp_item.minutes_event':<32} the event ids received, one per room "
                 f"{'✓' if res['events_match'] else '✗'}")
    return lines
