"""Devices as people live them (#12): a new phone reading the next letter, a late colleague reading the summary.

    res = await bench_devices(synapse, work, samples=20)
    lines = report_lines(res)

The real bot and bridge processes, the local mail gateway, a structure with an open pathway (coordinator,
GP, the cardiologist's puppet once her first letter came):
- new device → first letter: before each letter the GP logs in a new device (matrix-nio, E2EE); from the
  letter's SMTP acceptance to that new device decrypting the puppet's message. Floor, the same letter on the
  GP's long-lived device (the bridge's own inbound latency). The new device is logged out afterwards.
- late joiner → a readable summary: for each sample a new pathway is opened with a nurse invited who has
  never logged in; she logs in, then joins; from her join to her device decrypting the bot's summary
  posted again for her. Floor, the bot's `!aide` round trip from that device, right after.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from nio import RoomMessageText

from liaison.stack.synapse import Synapse
from policies.ins import nir_key
from tests.bench.demo_peers import PASSWORD
from tests.bench.mail import CARDIO, _Local
from tests.bench.measure import percentiles
from tests.support.clinician import Clinician
from tests.support.mss import box, letter, open_structure, room_of, smtp_for

TARGETS = {"new_device_p95_s": 2.0, "late_joiner_p95_s": 5.0}


async def bench_devices(synapse: Synapse, work: Path, samples: int = 20) -> dict:
    from tests.support.mailgw import GatewayProcess

    local = _Local(synapse, work / "devices")
    gw_dir = Path(tempfile.mkdtemp(prefix="liaison-mailgw-"))   # Dovecot must walk down to it: not under work
    gateway = GatewayProcess(gw_dir)
    await asyncio.to_thread(gateway.start)
    nurses = [await synapse.aregister(f"devnurse{i}", PASSWORD) for i in range(samples)]
    try:
        s = await open_structure(local.clinician, local.bot, local.bridge, synapse, gateway, work / "devices" / "bridge",
                                 extra_members=tuple({"user_id": n, "name": f"Infirmière {i}",
                                                      "profession": "infirmier"} for i, n in enumerate(nurses)))
        cardio = box(s.mail, CARDIO)
        to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
        smtp = smtp_for(s.mail, cardio)
        await smtp.send(bytes(letter(cardio, to, subject="Échauffement", text="Échauffement.")),
                        sender=cardio["address"], recipients=[to], notify=False)
        await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText) and "Échauffement" in e.body,
                            30)
        new, floor = [], []
        for i in range(samples):
            device = await Clinician(synapse.url, s.gp.user_id, s.gp.password, work / f"gp-new-{i}").start()
            words = f"Lettre {i} pour le nouvel appareil"
            await smtp.send(bytes(letter(cardio, to, subject=f"Lettre {i}", text=words)),
                            sender=cardio["address"], recipients=[to], notify=False)
            accepted = time.perf_counter()
            seen = asyncio.create_task(s.gp.wait_for(_text(s.room, words), 30))
            await device.wait_for(_text(s.room, words), 30)
            new.append(time.perf_counter() - accepted)
            await seen
            floor.append(_stamp(s.gp, s.room, words) - accepted)
            await device.client.logout()
            await device.stop()
        await smtp.close()

        joins, aide = [], []
        for i, nurse_id in enumerate(nurses):
            nir = f"2480575{i:06d}"
            opened, _ = await s.coord.ask(s.desk, f"!parcours ouvrir {nir}{nir_key(nir):02d} diabete 12/05/1948 F "
                                                  f"Martin Jeanne --equipe {s.gp.user_id},{nurse_id}", timeout=60)
            room = room_of(opened.body)
            nurse = await Clinician(synapse.url, nurse_id, PASSWORD, work / f"nurse-{i}", auto_join=False).start()
            started = time.perf_counter()
            await nurse.client.join(room)
            summary = await nurse.wait_for(lambda r, e: r == room and getattr(e, "sender", "") == s.bot.user_id
                                           and "Résumé republié" in getattr(e, "body", ""), 30)
            joins.append(_stamp(nurse, room, summary.body[:40]) - started)
            t0 = time.perf_counter()
            await nurse.ask(room, "!aide")
            aide.append(time.perf_counter() - t0)
            await nurse.stop()
        return {"samples": samples, "new_device": percentiles(new), "new_device_floor": percentiles(floor),
                "late_joiner": percentiles(joins), "late_joiner_floor_aide": percentiles(aide)}
    finally:
        await local.close()
        await asyncio.to_thread(gateway.stop)
        shutil.rmtree(gw_dir, ignore_errors=True)


def _text(room: str, words: str):
    return lambda r, e: r == room and isinstance(e, RoomMessageText) and words in e.body


def _stamp(c: Clinician, room: str, words: str) -> float:
    """When the client's sync handed over the (first) message carrying `words`."""
    return next(t for t, r, e in c.stamped if r == room and words in getattr(e, "body", ""))


def report_lines(res: dict) -> list[str]:
    nd, ndf, lj, ljf = (res[k] for k in ("new_device", "new_device_floor", "late_joiner", "late_joiner_floor_aide"))
    ok_nd = nd["p95"] / 1000 <= TARGETS["new_device_p95_s"]
    ok_lj = lj["p95"] / 1000 <= TARGETS["late_joiner_p95_s"]
    return [
        f"devices ({res['samples']} samples each)          p50 ms   p95 ms",
        f"letter, GP's long-lived device (floor)  {ndf['p50']:8.1f} {ndf['p95']:8.1f}",
        f"letter, GP's device logged in just before {nd['p50']:6.1f} {nd['p95']:8.1f}   ratio p95 "
        f"{nd['p95'] / ndf['p95']:.2f}; target p95 ≤ {TARGETS['new_device_p95_s']:.0f} s {'✓' if ok_nd else '✗'}",
        f"late joiner: join → readable summary    {lj['p50']:8.1f} {lj['p95']:8.1f}   ratio p95 to !aide "
        f"{lj['p95'] / ljf['p95']:.2f}; target p95 ≤ {TARGETS['late_joiner_p95_s']:.0f} s {'✓' if ok_lj else '✗'}",
        f"  floor: !aide round trip from her device {ljf['p50']:6.1f} {ljf['p95']:8.1f}",
    ]
