"""The directory's import of 500,000 synthetic rows (issue 27: ≤ 60 s, peak RSS ≤ 300 MB), then the same file again
(nothing changes), then searches over those rows.

- the extract: PS_LibreAcces_Personne_activite with its real header line (56 columns), Windows-1252, written by
  blocks (tests/support/extracts.py), on a fresh SQLite database (the default) migrated beforehand;
- measured: each import runs in its own process (which loads only what the import needs) (`python -m tests.bench.directory FILE DB`), so that its peak RSS is
  its own: the kernel's high-water mark of that process (VmHWM), read by the child as it ends; the wall time is the import's (`import_path`), measured inside
  the child, and the child's whole life (interpreter start, imports) outside it;
- then, in another child: 50 searches of each kind (a name, a name with a typo, a profession and a commune, an RPPS)
  through `Directory.search`, p50 and p95.

    res = bench_directory_import(work, rows=500_000)
    lines = report_lines(res)
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support import extracts as x

TARGET_S, TARGET_RSS_MB = 60.0, 300.0
ROOT = Path(__file__).resolve().parents[2]
QUERIES = {"nom": lambda i, rows: x.last_name(i * 7919 % rows),
           "nom avec une faute": lambda i, rows: _typo(x.last_name(i * 7919 % rows), i),
           "profession et commune": lambda i, rows: ("kiné Lyon", "infirmière 75", "pharmacien bordeaux")[i % 3],
           "RPPS": lambda i, rows: x.rpps(i * 9973 % rows)}


def _typo(name: str, i: int) -> str:
    """One letter dropped, doubled or swapped with the next, after the first two."""
    at = 2 + i % (len(name) - 3)
    return (name[:at] + name[at + 1:], name[:at] + name[at] + name[at:],
            name[:at] + name[at + 1] + name[at] + name[at + 2:])[i % 3].lower()


def write_extract(path: Path, rows: int) -> None:
    with path.open("wb") as f:
        f.write(x.HEADERS["personnes"].encode("cp1252") + b"\n")
        for start in range(0, rows, 10_000):
            f.write(("\n".join(x.persons(min(10_000, rows - start), start)) + "\n").encode("cp1252", "replace"))


def _child(args: list[str]) -> tuple[dict, float, float]:
    """(what the child printed, its wall seconds, its peak RSS in MB: the kernel's high-water mark of its memory,
    VmHWM, read by the child as it ends; `wait4`'s ru_maxrss would count the parent's pages too, Linux keeping the
    high-water mark across the fork and exec)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.directory", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _pid, status, _usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"directory bench child failed ({proc.returncode})")
    said = json.loads(out.decode().strip().splitlines()[-1])
    return said["result"], time.monotonic() - started, said["vmhwm_kb"] / 1024


def bench_directory_import(work: Path, rows: int = 500_000) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    extract = work / "PS_LibreAcces_Personne_activite_202612060000.txt"
    started = time.monotonic()
    write_extract(extract, rows)
    written = time.monotonic() - started
    db = work / "directory.db"
    _child(["migrate", str(db)])
    first, first_life, first_rss = _child(["import", str(extract), str(db)])
    second, second_life, second_rss = _child(["import", str(extract), str(db)])
    searches, _life, search_rss = _child(["search", str(rows), str(db)])
    from tests.bench.measure import (
        percentiles,  # not in the children: it loads nio and aiohttp
    )
    return {"rows": rows, "file_mb": extract.stat().st_size / 1e6, "write_s": written,
            "first": {**first, "process_s": first_life, "peak_rss_mb": first_rss},
            "second": {**second, "process_s": second_life, "peak_rss_mb": second_rss},
            "search_ms": {kind: percentiles(times) for kind, times in searches.items()}, "search_peak_rss_mb": search_rss}


def report_lines(res: dict) -> list[str]:
    lines = [f"directory import: {res['rows']} rows ({res['file_mb']:.0f} MB, Windows-1252), SQLite"]
    for key, label in (("first", "first import"), ("second", "same file again")):
        r = res[key]
        ok = r["seconds"] <= TARGET_S and r["peak_rss_mb"] <= TARGET_RSS_MB
        lines.append(f"  {label:<16} {r['seconds']:6.1f} s (tables written {r['merge_s']:.1f} s, process "
                     f"{r['process_s']:.1f} s), peak RSS "
                     f"{r['peak_rss_mb']:.0f} MB; added {r['added']}, changed {r['changed']}, unchanged "
                     f"{r['unchanged']}  target ≤ {TARGET_S:.0f} s, ≤ {TARGET_RSS_MB:.0f} MB {'✓' if ok else '✗'}")
    for kind, p in res["search_ms"].items():
        lines.append(f"  search {kind:<22} n {p['n']:>3}  p50 {p['p50']:6.1f} ms  p95 {p['p95']:6.1f} ms")
    return lines


async def _in_child(argv: list[str]) -> dict:
    from liaison.db import open_database
    from liaison.directory.importer import import_path
    from liaison.stores.directory import Directory

    what, *rest = argv
    engine = await open_database(f"sqlite+aiosqlite:///{rest[-1]}")
    try:
        if what == "migrate":
            return {}
        if what == "import":
            started = time.monotonic()
            [r] = await import_path(engine, Path(rest[0]))
            return {"seconds": time.monotonic() - started, "merge_s": r.merge_seconds, "added": r.added, "changed": r.changed,
                    "unchanged": r.unchanged, "malformed": r.malformed}
        directory, found = Directory(engine), {}
        for kind, query in QUERIES.items():
            times = []
            for i in range(50):
                started = time.monotonic()
                _entries, total = await directory.search(query(i, int(rest[0])), limit=10)
                times.append(time.monotonic() - started)
                assert total > 0, kind
            found[kind] = times
        return found
    finally:
        await engine.dispose()


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(_in_child(sys.argv[1:]))
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"result": result, "vmhwm_kb": peak}))
