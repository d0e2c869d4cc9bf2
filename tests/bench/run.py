"""`make bench`: the Liaison bot's `!aide` round trip, restart and memory, against floors measured in the same run.

    .venv/bin/python -m tests.bench.run [--samples 200] [--rooms 1000] [--idle 10] [--no-maubot] [--pathways 30]
                                        [--mail 100] [--mail-pdf 5] [--mail-sustained 0] [--no-mail] [--only-mail]
                                        [--docs 20] [--only-docs] [--devices 20] [--only-devices]
                                        [--no-hostile] [--only-hostile] [--redecide 200] [--only-redecide]
                                        [--tasks-pathways 200] [--only-tasks] [--reminders-rooms 200]
                                        [--only-reminders] [--rcp-samples 10] [--only-rcp] [--export-samples 20]
                                        [--only-export] [--only-directory-import [--directory-rows 500000]]

One throwaway Synapse; in encrypted rooms (one room per peer: echo bots answer everything):
- floor: client A → client B via /sync;
- a minimal matrix-nio echo bot (tests/bench/echo_bot.py): the floor for any bot (two trips through Synapse);
- maubot with an echo plugin (tests/bench/maubot_peer.py);
- the Liaison bot's `!aide`.
Samples are interleaved (one of each per round) so that drift hits every peer alike.
Then: idle RSS of each bot; the bot's restart with `--rooms` joined rooms, to the first answered command;
then a care-pathway opening against a bare encrypted createRoom (tests/bench/pathways.py);
then the MSSanté bridge against the gateway's IDLE floor, and optionally a sustained load (tests/bench/mail.py);
then indexing a 10 MiB PDF against its raw download (tests/bench/documents.py);
then a new device reading the next letter and a late joiner reading the summary (tests/bench/devices.py);
then the hostile-mail catalogue: the bridge's CPU and peak memory per mail, /ping meanwhile (tests/bench/hostile.py);
then a fact change re-decided across `--redecide` rooms against the homeserver's own kicks (tests/bench/redecide.py);
then `!taches` over 5 open tasks in each of `--tasks-pathways` pathways against `!aide` (tests/bench/tasks.py);
then reminders on a moved clock: their lateness, and 10 due in the same minute in each of `--reminders-rooms` rooms
against the same bot posting as many plain notices (tests/bench/reminders.py);
then `!rcp clore` of a meeting of 20 cases, to its 20 minutes in the patients' rooms, against 20 plain notices and
`!aide` (tests/bench/rcp.py);
then `!parcours export` of a pathway of 200 tasks, 50 documents and 20 consents, to its file in the coordination's
room, against `!aide`, the file validated by fhir.resources (tests/bench/export.py).
`--only-directory-import`: the directory's import of `--directory-rows` synthetic rows, the same file again, then
searches; no homeserver (tests/bench/directory.py).
Results are printed and written as JSON under .liaison/bench/ (the bridge's part also as mail-<timestamp>.json).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from liaison.stack.synapse import Synapse
from tests.bench.demo_peers import PASSWORD, start_echo_bot
from tests.bench.devices import bench_devices, report_lines as devices_report_lines
from tests.bench.documents import bench_documents, report_lines as documents_report_lines
from tests.bench.export import bench_export, report_lines as export_report_lines
from tests.bench.directory import bench_directory_import, report_lines as directory_report_lines
from tests.bench.hostile import bench_hostile, report_lines as hostile_report_lines
from tests.bench.mail import bench_mail, report_lines as mail_report_lines
from tests.bench.maubot_peer import MaubotEcho
from tests.bench.measure import Clinician, floor_sample, floor_warm_up, percentiles, rss_mib, wait_device_keys
from tests.bench.pathways import bench_pathways, report_lines
from tests.bench.rcp import bench_rcp, report_lines as rcp_report_lines
from tests.bench.redecide import bench_redecide, report_lines as redecide_report_lines
from tests.bench.reminders import bench_reminders, report_lines as reminders_report_lines
from tests.bench.tasks import bench_tasks, report_lines as tasks_report_lines
from tests.support.botproc import BotProcess

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {  # ratio: (p50 max, p95 max)
    "!aide ÷ nio echo bot": (1.1, 1.2),
    "!aide ÷ maubot echo": (1.0, None),
}


async def _bench_rooms(a: Clinician, bot_id: str, count: int, concurrency: int = 6) -> float:
    """Create `count` encrypted rooms with the bot invited (it joins them all); seconds taken."""
    started = time.monotonic()
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            resp = await a.client.room_create(name=f"charge {i}", invite=[bot_id], initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            if not hasattr(resp, "room_id"):
                raise RuntimeError(f"room creation failed: {resp}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return time.monotonic() - started


async def _joined_count(a: Clinician, bot_id: str) -> int:
    return sum(1 for room in a.client.rooms.values() if bot_id in room.users and bot_id not in room.invited_users)


async def _restart_to_first_answer(bot: BotProcess, a: Clinician, room: str) -> dict:
    assert bot.stop() == 0
    started = time.perf_counter()
    starting = asyncio.create_task(asyncio.to_thread(bot.start))
    event_id = await a.send(room, "!aide")   # waits on the server while the bot starts
    arrived = await a._replies.wait(f"{event_id}|{bot.user_id}", 60)
    await starting
    return {"seconds": arrived - started}


async def _mail(args: argparse.Namespace, synapse: Synapse, work: Path) -> dict | None:
    if not args.mail and not args.mail_sustained:
        return None
    return await bench_mail(synapse, work, samples=args.mail, pdf_samples=args.mail_pdf,
                            sustained_s=args.mail_sustained)


async def run(args: argparse.Namespace, work: Path) -> dict:
    synapse = Synapse(work / "synapse")
    await asyncio.to_thread(synapse.start)
    a, b = Clinician("alice"), Clinician("bob")
    echo_proc, bot, mau = None, None, None
    try:
        if args.only_mail:
            return {"mail": await _mail(args, synapse, work)}
        if args.only_docs:
            return {"documents": await bench_documents(synapse, work, args.docs)}
        if args.only_devices:
            return {"devices": await bench_devices(synapse, work, args.devices)}
        if args.only_hostile:
            return {"hostile": await bench_hostile(synapse, work)}
        if args.only_redecide:
            return {"redecide": await bench_redecide(synapse, work, args.redecide)}
        if args.only_tasks:
            return {"tasks": await bench_tasks(synapse, work, args.tasks_pathways)}
        if args.only_reminders:
            return {"reminders": await bench_reminders(synapse, work, args.reminders_rooms)}
        if args.only_rcp:
            return {"rcp": await bench_rcp(synapse, work, args.rcp_samples)}
        if args.only_export:
            return {"export": await bench_export(synapse, work, args.export_samples)}
        alice, bob, echo, liaison = [await synapse.aregister(n, PASSWORD) for n in ("alice", "bob", "echo", "liaison")]
        echo_proc = start_echo_bot(synapse, echo, work)
        bot = BotProcess(work / "liaison", synapse.url, synapse.server_name, liaison, PASSWORD, [alice]).start()
        if not args.no_maubot:
            mau = MaubotEcho(synapse, work / "maubot")
            await mau.start()
        for clin, uid in ((a, alice), (b, bob)):
            await clin.login(synapse.url, uid, PASSWORD, work / f"store-{clin.name}")
        await wait_device_keys(synapse.url, echo, a.client.access_token)

        rooms = {"floor": await a.create_encrypted_room(invite=[bob]),
                 "echo": await a.create_encrypted_room(invite=[echo]),
                 "liaison": await a.create_encrypted_room(invite=[liaison])}
        if mau:
            rooms["maubot"] = await a.create_encrypted_room(invite=[mau.user_id])
        await b.join(rooms["floor"])
        for key, who in (("floor", bob), ("echo", echo), ("liaison", liaison)):
            await a.wait_joined(rooms[key], [who])
        if mau:
            await a.wait_joined(rooms["maubot"], [mau.user_id])

        peers = {
            "client→client (floor)": lambda i: floor_sample(a, b, rooms["floor"], f"floor {i}"),
            "nio echo bot": lambda i: a.round_trip(rooms["echo"], f"ping {i}", echo),
            "Liaison !aide": lambda i: a.round_trip(rooms["liaison"], "!aide", liaison),
        }
        await floor_warm_up(a, b, rooms["floor"])
        await a.warm_up(rooms["echo"], "warm-up", echo)
        await a.warm_up(rooms["liaison"], "!aide", liaison)
        if mau:
            peers["maubot echo"] = lambda i: a.round_trip(rooms["maubot"], f"ping {i}", mau.user_id)
            await a.warm_up(rooms["maubot"], "warm-up", mau.user_id)
        samples: dict[str, list[float]] = {name: [] for name in peers}
        for i in range(args.samples):
            for name, one in peers.items():
                samples[name].append(await one(i))
        latency = {name: percentiles(s) for name, s in samples.items()}

        await asyncio.sleep(args.idle)
        rss = {"Liaison bot": rss_mib(bot.process.pid), "nio echo bot": rss_mib(echo_proc.pid)}
        if mau:
            rss["maubot"] = rss_mib(mau.pid)

        restart: dict = {"rooms": args.rooms}
        if args.rooms:
            restart["create_seconds"] = await _bench_rooms(a, liaison, args.rooms)
            deadline = time.monotonic() + 600
            while await _joined_count(a, liaison) < args.rooms + 1 and time.monotonic() < deadline:
                await asyncio.sleep(1)
            restart["joined"] = await _joined_count(a, liaison)
            await asyncio.sleep(args.idle)
            restart["rss_before_mib"] = rss_mib(bot.process.pid)
        restart.update(await _restart_to_first_answer(bot, a, rooms["liaison"]))
        pathways = await bench_pathways(synapse, work, args.pathways) if args.pathways else None
        mail = None if args.no_mail else await _mail(args, synapse, work)
        documents = await bench_documents(synapse, work, args.docs) if args.docs else None
        devices = await bench_devices(synapse, work, args.devices) if args.devices else None
        hostile = None if args.no_hostile else await bench_hostile(synapse, work)
        redecide = await bench_redecide(synapse, work, args.redecide) if args.redecide else None
        tasks = await bench_tasks(synapse, work, args.tasks_pathways) if args.tasks_pathways else None
        reminders = await bench_reminders(synapse, work, args.reminders_rooms) if args.reminders_rooms else None
        rcp = await bench_rcp(synapse, work, args.rcp_samples) if args.rcp_samples else None
        export = await bench_export(synapse, work, args.export_samples) if args.export_samples else None
        return {"latency_ms": latency, "rss_mib": rss, "restart": restart, "samples": args.samples,
                "pathways": pathways, "maubot_version": getattr(mau, "version", None), "mail": mail,
                "documents": documents, "devices": devices, "hostile": hostile, "redecide": redecide,
                "tasks": tasks, "reminders": reminders, "rcp": rcp, "export": export}
    finally:
        await a.close()
        await b.close()
        for proc in (echo_proc,):
            if proc:
                proc.terminate()
                proc.wait(10)
        if bot:
            bot.stop()
        if mau:
            await mau.stop()
        await asyncio.to_thread(synapse.stop)


def report(res: dict) -> list[str]:
    lines = _report_bots(res) if "latency_ms" in res else []
    if res.get("mail"):
        lines += ["", *mail_report_lines(res["mail"])]
    if res.get("documents"):
        lines += ["", *documents_report_lines(res["documents"])]
    if res.get("devices"):
        lines += ["", *devices_report_lines(res["devices"])]
    if res.get("hostile"):
        lines += ["", *hostile_report_lines(res["hostile"])]
    if res.get("redecide"):
        lines += ["", *redecide_report_lines(res["redecide"])]
    if res.get("tasks"):
        lines += ["", *tasks_report_lines(res["tasks"])]
    if res.get("reminders"):
        lines += ["", *reminders_report_lines(res["reminders"])]
    if res.get("rcp"):
        lines += ["", *rcp_report_lines(res["rcp"])]
    if res.get("export"):
        lines += ["", *export_report_lines(res["export"])]
    if res.get("directory_import"):
        lines += ["", *directory_report_lines(res["directory_import"])]
    return lines


def _report_bots(res: dict) -> list[str]:
    lat, lines = res["latency_ms"], []
    lines.append(f"{'peer':<24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    for name, p in lat.items():
        lines.append(f"{name:<24} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f}")
    aide = lat["Liaison !aide"]
    ratios = {"!aide ÷ nio echo bot": lat["nio echo bot"], "!aide ÷ client→client": lat["client→client (floor)"]}
    if "maubot echo" in lat:
        ratios["!aide ÷ maubot echo"] = lat["maubot echo"]
    lines.append("")
    res["ratios"] = {}
    for name, base in ratios.items():
        r50, r95 = aide["p50"] / base["p50"], aide["p95"] / base["p95"]
        res["ratios"][name] = {"p50": r50, "p95": r95}
        t50, t95 = TARGETS.get(name, (None, None))
        verdict = ""
        if t50:
            ok = r50 <= t50 and (t95 is None or r95 <= t95)
            verdict = f"  target p50 ≤ {t50}" + (f", p95 ≤ {t95}" if t95 else "") + (" ✓" if ok else " ✗")
        lines.append(f"{name:<24} p50 {r50:5.2f}  p95 {r95:5.2f}{verdict}")
    lines.append("")
    for name, mib in res["rss_mib"].items():
        lines.append(f"idle RSS {name:<16} {mib:6.1f} MiB")
    if "maubot" in res["rss_mib"]:
        ratio = res["rss_mib"]["Liaison bot"] / res["rss_mib"]["maubot"]
        res["ratios"]["RSS Liaison ÷ maubot"] = ratio
        lines.append(f"RSS Liaison ÷ maubot     {ratio:5.2f}  target ≤ 1.3 {'✓' if ratio <= 1.3 else '✗'}")
    rs = res["restart"]
    lines.append(f"restart to first answered command, {rs.get('joined', 1)} joined rooms: {rs['seconds']:.2f} s "
                 f"(target ≤ 5 s {'✓' if rs['seconds'] <= 5 else '✗'})"
                 + (f"; RSS with them {rs['rss_before_mib']:.1f} MiB" if "rss_before_mib" in rs else ""))
    if res.get("pathways"):
        lines += ["", *report_lines(res["pathways"])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--no-maubot", action="store_true")
    parser.add_argument("--pathways", type=int, default=30, help="pathway openings to time (0: none)")
    parser.add_argument("--mail", type=int, default=100, help="MSSanté bridge rounds (floor, in, out) to time")
    parser.add_argument("--mail-pdf", type=int, default=5, help="inbound mails with a 100 KiB PDF in an XDM")
    parser.add_argument("--mail-sustained", type=float, default=0, metavar="SECONDS",
                        help="then 20 inbound mails/s for SECONDS (0: skip)")
    parser.add_argument("--no-mail", action="store_true", help="skip the MSSanté bridge")
    parser.add_argument("--only-mail", action="store_true", help="only the MSSanté bridge (no bots, no pathways)")
    parser.add_argument("--docs", type=int, default=20, help="10 MiB PDF indexings to time (0: none)")
    parser.add_argument("--only-docs", action="store_true", help="only the document indexing")
    parser.add_argument("--devices", type=int, default=20, help="new-device and late-joiner samples (0: none)")
    parser.add_argument("--only-devices", action="store_true", help="only the new devices and late joiners")
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile-mail catalogue")
    parser.add_argument("--redecide", type=int, default=200,
                        help="rooms a nurse removed from the team is in, all re-decided (0: none)")
    parser.add_argument("--only-redecide", action="store_true", help="only the re-decision of a fact change")
    parser.add_argument("--tasks-pathways", type=int, default=200,
                        help="pathways holding 5 open tasks each for one nurse, listed by !taches (0: none)")
    parser.add_argument("--only-tasks", action="store_true", help="only !taches against !aide")
    parser.add_argument("--reminders-rooms", type=int, default=200,
                        help="rooms holding 10 reminders due in the same minute each (0: no reminders bench)")
    parser.add_argument("--only-reminders", action="store_true",
                        help="only the reminders: lateness on a moved clock, and a burst against plain notices")
    parser.add_argument("--rcp-samples", type=int, default=10,
                        help="!rcp clore of a meeting of 20 cases, timed so many times (0: no RCP bench)")
    parser.add_argument("--only-rcp", action="store_true",
                        help="only !rcp clore: 20 minutes in 20 patients' rooms, against 20 plain notices and !aide")
    parser.add_argument("--export-samples", type=int, default=20,
                        help="!parcours export of a pathway of 200 tasks, 50 documents, 20 consents (0: none)")
    parser.add_argument("--only-export", action="store_true",
                        help="only !parcours export against !aide, and the file validated by fhir.resources")
    parser.add_argument("--only-hostile", action="store_true",
                        help="only the hostile-mail catalogue (bridge CPU and memory per mail, /ping meanwhile)")
    parser.add_argument("--only-directory-import", action="store_true",
                        help="only the directory's import of synthetic rows, then searches (no homeserver)")
    parser.add_argument("--directory-rows", type=int, default=500_000, help="rows of the synthetic extract")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    logging.getLogger("nio").setLevel(logging.ERROR)
    base = ROOT / ".liaison" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    started = time.monotonic()
    try:
        res = ({"directory_import": bench_directory_import(work, args.directory_rows)} if args.only_directory_import
               else asyncio.run(run(args, work)))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    lines = report(res)
    res["total_seconds"] = time.monotonic() - started
    stamp = time.strftime('%Y%m%d-%H%M%S')
    out = base / f"bench-{stamp}.json"
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False))
    print("\n".join(lines))
    if res.get("mail"):
        mail_out = base / f"mail-{stamp}.json"
        mail_out.write_text(json.dumps(res["mail"], indent=2, ensure_ascii=False))
        print(f"\nmail results: {mail_out}")
    print(f"\nresults: {out} ; total {res['total_seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
