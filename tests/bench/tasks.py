"""`!taches` in a direct conversation with many open tasks, against `!aide` in the same room, same bot, same run.

Target of issue 25: with 1,000 open tasks over 200 pathways, the round trip's p95 ≤ 1.3 × `!aide`'s.

- setup: a bot of its own (account `liaison-taches`, a coordinator and a nurse on the roster, INS test mode);
  `--tasks-pathways` pathways opened with the nurse in their team, 5 tasks each for her (`!tache … pour @infirmiere`);
- measured: the nurse's `!taches` and `!aide` in her direct conversation with the bot, interleaved, from her send to
  her sync delivering the bot's reply (the 40 nearest tasks shown, each of their pathways decided for that room).

    res = await bench_tasks(synapse, work, pathways=200, per_pathway=5, samples=20)
    lines = report_lines(res)
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from liaison.stack.synapse import Synapse
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import percentiles
from tests.bench.pathways import _Coordinator, opening_command
from tests.support.botproc import BotProcess

RATIO_P95_MAX = 1.3
SETTLE_S = 0.3
LISTED, HELP = "!taches (direct)", "!aide (direct)"


async def _ask(who: _Coordinator, room: str, text: str, bot_id: str) -> tuple[float, str]:
    start = time.perf_counter()
    event_id = await who.send(room, text)
    arrived = await who._replies.wait(f"{event_id}|{bot_id}", 120)
    return arrived - start, await who.bodies.wait(event_id, 5)


async def bench_tasks(synapse: Synapse, work: Path, pathways: int, per_pathway: int = 5, samples: int = 20) -> dict:
    coord, nurse = _Coordinator("coordination-t"), _Coordinator("infirmiere-t")
    bot = None
    try:
        coord_id, nurse_id, bot_id = [await synapse.aregister(n, PASSWORD)
                                      for n in ("coordination-t", "infirmiere-t", "liaison-taches")]
        roster = [{"user_id": coord_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
                  {"user_id": nurse_id, "name": "Sophie Bernard", "profession": "infirmière"}]
        bot = BotProcess(work / "liaison-taches", synapse.url, synapse.server_name, bot_id, PASSWORD, [],
                         extra={"roster": roster, "pathways": {"ins_test_mode": True}}).start()
        await coord.login(synapse.url, coord_id, PASSWORD, work / "store-coordination-t")
        await nurse.login(synapse.url, nurse_id, PASSWORD, work / "store-infirmiere-t")
        desk = await coord.create_encrypted_room(invite=[bot_id], name="coordination")
        await coord.wait_joined(desk, [bot_id])
        await coord.warm_up(desk, "!aide", bot_id)

        setup = time.perf_counter()
        rooms = []
        for i in range(pathways):
            _, body = await _ask(coord, desk, opening_command(20_000 + i, [nurse_id]), bot_id)
            found = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", body)
            if "ouvert (" not in body or not found:
                raise RuntimeError(f"opening {i} did not go through: {body!r}")
            rooms.append(found.group(1))
        for room in rooms:
            await coord.join(room)
            for k in range(per_pathway):
                _, body = await _ask(coord, room, f"!tache Suivi {k} pour {nurse_id} échéance dans {k + 1} jours",
                                     bot_id)
                if "créée" not in body:
                    raise RuntimeError(f"task not made: {body!r}")
        setup_s = time.perf_counter() - setup

        direct = await nurse.create_encrypted_room(invite=[bot_id], name="Liaison")
        await nurse.wait_joined(direct, [bot_id])
        await nurse.warm_up(direct, "!aide", bot_id)
        _, first = await _ask(nurse, direct, "!taches", bot_id)
        total = pathways * per_pathway
        if not (first.startswith(f"Vos tâches ({total})") or f"et {total - 40} autre(s) plus loin" in first):
            raise RuntimeError(f"unexpected answer: {first[:200]!r}")
        times: dict[str, list[float]] = {LISTED: [], HELP: []}
        for _ in range(samples):
            for name, text in ((LISTED, "!taches"), (HELP, "!aide")):
                await asyncio.sleep(SETTLE_S)
                took, _ = await _ask(nurse, direct, text, bot_id)
                times[name].append(took)
        latency = {name: percentiles(t) for name, t in times.items()}
        ratio = {q: latency[LISTED][q] / latency[HELP][q] for q in ("p50", "p95")}
        return {"pathways": pathways, "tasks": pathways * per_pathway, "samples": samples, "setup_s": setup_s,
                "latency_ms": latency, "ratio": ratio, "target_met": ratio["p95"] <= RATIO_P95_MAX}
    finally:
        for who in (coord, nurse):
            await who.close()
        if bot:
            bot.stop()


def report_lines(res: dict) -> list[str]:
    lat, ratio = res["latency_ms"], res["ratio"]
    lines = [f"{'tasks':<24} {res['tasks']} open tasks over {res['pathways']} pathways (setup {res['setup_s']:.0f} s)",
             f"{'':<24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}"]
    for name, p in lat.items():
        lines.append(f"{name:<24} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f}")
    lines.append(f"{'!taches ÷ !aide':<24} p50 {ratio['p50']:5.2f}  p95 {ratio['p95']:5.2f}  target p95 ≤ "
                 f"{RATIO_P95_MAX} {'✓' if res['target_met'] else '✗'}")
    return lines
