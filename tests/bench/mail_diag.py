"""Diagnostics for the mail benchmark: CPU of the processes, a py-spy profile of the bridge,
the bridge's IMAP batches and Synapse's requests, all read in the same run."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

from tests.bench.measure import percentiles
from tests.support.bridgeproc import BridgeProcess
from tests.support.mss import is_puppet


PROFILE_DELAY_S = 5.0   # sustained: py-spy starts this long after the first mail...
PROFILE_S = 20          # ... and records the bridge for this long

class _CpuSampler:
    """CPU % (of one core; a process and its descendants) of named processes, every second, by phase."""

    def __init__(self, pids: dict[str, int], own_only: tuple[str, ...] = ()) -> None:
        self.roots = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.own_only = set(own_only)   # the bench: its children are the other processes
        self._procs: dict[int, psutil.Process] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.phases: dict[str, tuple[float, float]] = {}
        self._task: asyncio.Task | None = None

    def _group(self, name: str, root: psutil.Process) -> list[psutil.Process]:
        out = []
        try:
            members = [root] if name in self.own_only else [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return out
        for p in members:
            if p.pid not in self._procs:
                self._procs[p.pid] = p
                try:
                    p.cpu_percent(None)   # first call: the reference point
                except psutil.NoSuchProcess:
                    continue
            out.append(self._procs[p.pid])
        return out

    def _sample(self) -> dict[str, float]:
        values = {}
        for name, root in self.roots.items():
            total = 0.0
            for p in self._group(name, root):
                try:
                    total += p.cpu_percent(None)
                except psutil.NoSuchProcess:
                    pass
            values[name] = total
        return values

    async def _run(self) -> None:
        self._sample()
        while True:
            await asyncio.sleep(1.0)
            self.samples.append((time.monotonic(), self._sample()))

    def start(self) -> "_CpuSampler":
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def mark(self, phase: str) -> str:
        self.phases[phase] = (time.monotonic(), float("inf"))
        return phase

    def close(self, phase: str) -> None:
        self.phases[phase] = (self.phases[phase][0], time.monotonic())

    def means(self) -> dict[str, dict]:
        out = {}
        for phase, (start, end) in self.phases.items():
            rows = [v for t, v in self.samples if start < t <= end]   # a sample covers the second before it
            out[phase] = {"n": len(rows), **{name: (sum(r[name] for r in rows) / len(rows) if rows else float("nan"))
                                            for name in self.roots}}
        return out


_FRAME_LINE = re.compile(r":\d+\)$")
_MARKER = re.compile(r"^(process \d+:|thread \(\d+\))")   # py-spy's process and thread frames


_IDLE_LEAVES = ("EpollSelector.select (", "_connection_worker_thread (aiosqlite", "Condition.wait (",
                "_worker (concurrent/futures")


def _thread_kind(frames: list[str]) -> str:
    joined = ";".join(frames)
    if "MainThread" in frames[0] or "run_forever" in joined:
        return "main"
    if "_connection_worker_thread" in joined:
        return "aiosqlite"
    return "other"


def _profile_top(raw: str, top: int = 15) -> dict:
    """py-spy raw (collapsed, --threads --idle) stacks: self time by last frame (all threads, and the main
    thread's without its idle wait), inclusive time by function, samples by kind of thread."""
    leaf: Counter = Counter()
    main_leaf: Counter = Counter()
    inclusive: Counter = Counter()
    threads: Counter = Counter()
    kinds: Counter = Counter()
    idle: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = next((f for f in frames if _MARKER.match(f) and f.startswith("thread ")), "?")
        funcs = [_FRAME_LINE.sub(")", f) for f in frames if not _MARKER.match(f)]
        if not funcs:
            continue
        total += n
        threads[thread] += n
        kind = _thread_kind([thread, *funcs])
        kinds[kind] += n
        is_idle = funcs[-1].startswith(_IDLE_LEAVES)
        if is_idle:
            idle[kind] += n
        leaf[funcs[-1]] += n
        if kind == "main" and not is_idle:
            main_leaf[funcs[-1]] += n
            for f in set(funcs):
                inclusive[f] += n
    return {"samples": total, "threads": dict(threads.most_common(8)), "thread_count": len(threads),
            "kinds": dict(kinds), "idle": dict(idle), "self": leaf.most_common(top),
            "main_busy_self": main_leaf.most_common(top), "main_busy_inclusive": inclusive.most_common(60)}


def _bridge_batches(bridge: BridgeProcess, start: float, end: float) -> dict:
    """From the bridge's log, the IMAP batches between two epoch times: sizes, durations, gaps between them."""
    from datetime import datetime
    rows = []
    with bridge.log_path.open("rb") as fh:
        fh.seek(bridge._offset)
        for line in fh.read().decode(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") not in ("imap.fetched", "imap.moved") or "timestamp" not in e:
                continue
            t = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            if start <= t <= end:
                rows.append((t, e["event"], e.get("count")))
    batches, gaps, fetched_at, moved_at = [], [], None, None
    for t, name, count in rows:
        if name == "imap.fetched" and count:
            if moved_at is not None:
                gaps.append(t - moved_at)
            fetched_at, size = t, count
        elif name == "imap.moved" and fetched_at is not None:
            batches.append((size, t - fetched_at))
            fetched_at, moved_at = None, t
    sizes = [b[0] for b in batches]
    return {"batches": len(batches), "mails": sum(sizes), "size_mean": sum(sizes) / len(sizes) if sizes else 0,
            "size_max": max(sizes, default=0), "batch_s": percentiles([b[1] for b in batches]),
            "batch_total_s": sum(b[1] for b in batches), "gap_s": percentiles(gaps), "gap_total_s": sum(gaps)}


_ACCESS = re.compile(r"\{(?P<who>[^}]*)\} Processed request: (?P<sec>[\d.]+)sec.*? (?P<code>\d{3}) "
                     r'"(?P<method>[A-Z]+) (?P<path>[^ ?]+)')


def _synapse_requests(log: Path, start: int, end: int) -> dict:
    """Synapse's access log between two byte offsets: requests by (requester kind, method, endpoint)."""
    with log.open("rb") as fh:
        fh.seek(start)
        text = fh.read(max(0, end - start)).decode(errors="replace")
    agg: dict[str, list[float]] = {}
    for m in _ACCESS.finditer(text):
        who = m.group("who")
        kind = ("puppet" if is_puppet(who) else "bridge" if who.startswith("@mss_") else
                "gp" if "medecin" in who else "coord" if "coordination" in who else
                "bot" if "liaison" in who.split(":")[0] else "other")
        path = re.sub(r"/(![^/]+|%21[^/]+|@[^/]+|%40[^/]+|\$[^/]+|%24[^/]+)", "/{id}", m.group("path"))
        path = re.sub(r"/send/([^/]+)/[^/]+$", r"/send/\1/{txn}", path)
        path = re.sub(r"/sendToDevice/([^/]+)/[^/]+$", r"/sendToDevice/\1/{txn}", path)
        path = re.sub(r"/_matrix/client/(v3|r0|unstable)", "", path)
        agg.setdefault(f"{kind:<7} {m.group('method')} {path}", []).append(float(m.group("sec")))
    rows = sorted(agg.items(), key=lambda kv: -sum(kv[1]))
    return {key: {"n": len(v), "total_s": sum(v), "mean_ms": sum(v) / len(v) * 1000} for key, v in rows}


async def _py_spy(pid: int, delay: float, seconds: int) -> dict | None:
    """A raw py-spy profile of `pid` (non-blocking sampling, 100 Hz, wall clock: idle frames too), aggregated."""
    spy = Path(sys.executable).with_name("py-spy")   # the venv's
    if not spy.exists():
        return {"error": f"no py-spy at {spy}"}
    await asyncio.sleep(delay)
    out = Path(tempfile.mkdtemp(prefix="liaison-pyspy-")) / "raw.txt"
    try:
        proc = await asyncio.create_subprocess_exec(
            str(spy), "record", "-p", str(pid), "-d", str(seconds), "-r", "100", "-f", "raw", "--threads", "--idle",
            "--nonblocking", "-o", str(out), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            text, _ = await asyncio.wait_for(proc.communicate(), seconds + 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return {"error": "py-spy did not finish"}
        if proc.returncode != 0 or not out.exists():
            return {"error": f"py-spy exit {proc.returncode}: {text.decode(errors='replace')[-300:]}"}
        res = _profile_top(out.read_text(errors="replace"))
        res.update({"seconds": seconds, "rate_hz": 100})
        return res
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
