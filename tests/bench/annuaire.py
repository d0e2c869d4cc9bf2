"""`!annuaire <query>` over a directory of 500,000 professionals, against `!aide` in the same room, same bot, same run.

Target of issue 27: the round trip's p95 ≤ 1.3 × `!aide`'s.

- setup: `--annuaire-rows` synthetic professionals written straight into `directory_person` and
  `directory_mailbox` by `executemany`, and the search index rebuilt (tests/support/directory_rows.py; the importer
  is not what is measured here), 60 % of them with an MSSanté address, before the bot starts on that database; then
  the bot in this process (tests/bench/inproc.py: the real stores, `Matrix` adapter, `Bot` loop and commands), a
  coordinator on the roster;
- measured: the coordinator's client sends `!annuaire <query>` in the coordination's room, to its sync delivering
  the bot's answer, interleaved with `!aide` in the same room; the queries turn over a name, a name and a first name,
  a profession and a commune, a profession and a department, an RPPS, a savoir-faire; one warm-up not counted;
- then: each query's search alone in this process (the store's `search`, p50 over 5 rounds).

    res = await bench_annuaire(synapse, work, rows=500_000, samples=20)
    lines = report_lines(res)
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from liaison.config import RosterEntry
from liaison.db import open_database
from tests.bench.demo_peers import PASSWORD
from tests.bench.inproc import InProcessBot, Reader
from tests.bench.measure import percentiles
from tests.support.directory_rows import Person, rpps, seed

RATIO_P95_MAX = 1.3
SEARCH, HELP = "!annuaire", "!aide (floor)"
ACCOUNT = "liaison-annuaire"
LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
        "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
        "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand",
        "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin",
        "Morin", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin")
FIRST = ("Camille", "Paul", "Julie", "Karim", "Sophie", "Nadia", "Louis", "Emma", "Hugo", "Léa", "Lucas", "Chloé",
         "Jules", "Manon", "Nathan", "Inès", "Théo", "Sarah", "Tom", "Zoé", "Mehdi", "Anne", "Pierre", "Marie")
PLACES = (("Lille", "59"), ("Roubaix", "59"), ("Douai", "59"), ("Arras", "62"), ("Lens", "62"), ("Amiens", "80"),
          ("Paris", "75"), ("Lyon", "69"), ("Marseille", "13"), ("Toulouse", "31"), ("Nantes", "44"),
          ("Rennes", "35"), ("Bordeaux", "33"), ("Strasbourg", "67"), ("Nice", "06"), ("Dijon", "21"),
          ("Brest", "29"), ("Rouen", "76"), ("Reims", "51"), ("Tours", "37"))
PROFESSIONS = ("medecin", "infirmier", "infirmier", "masseur-kinesitherapeute", "pharmacien")
SPECIALTIES = ("Médecine générale", "Cardiologie et maladies vasculaires", "Pneumologie", "Gériatrie", "Pédiatrie")


def synthetic(rows: int) -> Iterator[Person]:
    for i in range(rows):
        last, first = LAST[i % len(LAST)], FIRST[(i // len(LAST)) % len(FIRST)]
        commune, department = PLACES[(i // 7) % len(PLACES)]
        profession = PROFESSIONS[i % len(PROFESSIONS)]
        last = last if i % 4 else f"{last}-{LAST[(i // len(LAST)) % len(LAST)]}"   # a quarter with a compound name
        yield Person(rpps(i), "MME" if i % 2 else "M", first, last, profession,
                     commune, department, f"Cabinet {i // 3}",
                     SPECIALTIES[(i // len(PROFESSIONS)) % len(SPECIALTIES)] if profession == "medecin" else None,
                     f"p{i}@{commune.lower()}.mssante.fr" if i % 5 < 3 else None)


def queries() -> list[str]:
    return ["Lefebvre", "Camille Lefebvre", "kiné Lille", "infirmier 59", rpps(4242), "cardiologie Lille"]


async def bench_annuaire(synapse, work: Path, rows: int = 500_000, samples: int = 20) -> dict:
    coord = Reader("coordination-annuaire")
    coord_id = await synapse.aregister("coordination-annuaire", PASSWORD)
    roster = [RosterEntry(user_id=coord_id, name="Claire Morel", profession="coordinateur", coordinator=True)]
    try:
        started = time.perf_counter()   # written before the bot starts, in the database it then opens
        engine = await open_database(f"sqlite+aiosqlite:///{work / (ACCOUNT + '.db')}")
        try:
            written = await seed(engine, synthetic(rows))
        finally:
            await engine.dispose()
        seed_s = time.perf_counter() - started
        async with InProcessBot(synapse, work, ACCOUNT, roster) as bot:
            coord.bot_id = bot.user_id
            await coord.login(synapse.url, coord_id, PASSWORD, work / "store-coordination-annuaire")
            desk = await bot.coordination_room(coord)
            await coord.warm_up(desk, "!aide", bot.user_id)
            await _search(coord, desk, bot.user_id, queries()[0])

            times: dict[str, list[float]] = {SEARCH: [], HELP: []}
            by_query: dict[str, list[float]] = {q: [] for q in queries()}
            for k in range(samples):
                await bot.settled()
                query = queries()[k % len(queries())]
                times[SEARCH].append(await _search(coord, desk, bot.user_id, query))
                by_query[query].append(times[SEARCH][-1])
                await bot.settled()
                times[HELP].append(await coord.round_trip(desk, "!aide", bot.user_id, timeout=60))
            alone = await _alone(bot)
        latency = {name: percentiles(ts) for name, ts in times.items()}
        ratio = latency[SEARCH]["p95"] / latency[HELP]["p95"]
        each = {q: percentiles(ts)["p50"] for q, ts in by_query.items() if ts}
        return {"rows": written, "samples": samples, "seed_s": seed_s, "latency_ms": latency, "alone_ms": alone,
                "round_trip_by_query_p50_ms": each,
                "ratio_p95": ratio, "target_met": ratio <= RATIO_P95_MAX}
    finally:
        await coord.close()


async def _search(coord: Reader, desk: str, bot_id: str, query: str) -> float:
    """Seconds from the send to the sync delivering the answer; the answer must be a page of matches."""
    started = time.perf_counter()
    sent = await coord.send(desk, f"!annuaire {query}")

    def answer(room: str, e) -> bool:
        relates = e.source.get("content", {}).get("m.relates_to") or {}
        return room == desk and (relates.get("m.in_reply_to") or {}).get("event_id") == sent

    (answered,) = await coord.until(1, answer, 60)
    body = getattr(answered[2], "body", "")
    if "Annuaire santé :" not in body:
        raise RuntimeError(f"unexpected answer to a search: {body[:300]!r}")
    return answered[0] - started


async def _alone(bot: InProcessBot, rounds: int = 5) -> dict[str, float]:
    """Each query's search in the store alone, in this process: p50 ms."""
    directory = bot.services.directory
    assert directory is not None
    found = {}
    for query in queries():
        took = []
        for _ in range(rounds):
            started = time.perf_counter()
            await directory.search(query, limit=5)
            took.append(time.perf_counter() - started)
        found[query] = percentiles(took)["p50"]
    return found


def report_lines(res: dict) -> list[str]:
    lat = res["latency_ms"]
    ok = "✓" if res["target_met"] else "✗"
    lines = [f"{'annuaire':<28} !annuaire over {res['rows']:,} rows (written in {res['seed_s']:.0f} s)",
             f"{'':<28} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}"]
    for name, p in lat.items():
        lines.append(f"{name:<28} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f}")
    lines.append(f"{'!annuaire ÷ !aide':<28} p95 {res['ratio_p95']:5.2f}  target ≤ {RATIO_P95_MAX} {ok}")
    lines.append(f"{'round trip by query (p50 ms)':<28} "
                 + ", ".join(f"{q!r} {ms:.0f}" for q, ms in res["round_trip_by_query_p50_ms"].items()))
    lines.append(f"{'search alone (p50 ms)':<28} " + ", ".join(f"{q!r} {ms:.0f}" for q, ms in res["alone_ms"].items()))
    return lines
