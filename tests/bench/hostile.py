"""The hostile-input catalogue against the real bridge: what each mail costs it, and /ping meanwhile.

    res = await bench_hostile(synapse, work)
    lines = report_lines(res)

The catalogue of tests/support/hostile.py, sent one mail at a time to a structure with an open pathway (the real
bot, bridge, gateway and Dovecot). For each mail, from its delivery to the state the bridge gives it: the bridge's
CPU seconds (its own process and its mail-parsing workers, a worker killed meanwhile included: the bridge reaps it,
and the kernel adds its time to the bridge's children's), the peak resident memory of each of these processes
(the kernel's VmHWM, reset before each mail through /proc/<pid>/clear_refs, and read every 20 ms while the mail is
handled: a worker killed at its deadline or ceiling takes its own figures with it), and the latency of POST
/_matrix/app/v1/ping (every 20 ms, from a separate probe process, so that the bench's own work is not measured).
Targets (#14): ≤ 1 s of CPU and ≤ 200 MB per mail, /ping p99 ≤ 100 ms.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
import structlog
import yaml

from liaison.stack.synapse import Synapse
from tests.bench.mail import _Local
from tests.support.hostile import catalogue
from tests.support.hostile_run import Outcomes, deliver, one_of_our_mails
from tests.support.mailgw import GatewayProcess
from tests.support.mss import box, open_structure

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LAB = "resultats@labo-demo.mssante.test"
TARGETS = {"cpu_s": 1.0, "rss_mib": 200.0, "ping_p99_ms": 100.0}
PING_EVERY_S = 0.02
SETTLE_S = 0.5


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds of each live process, and (under -1) of the workers the first one (the bridge) has reaped."""
    out = {}
    for i, p in enumerate(procs):
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
            if i == 0:
                out[-1] = t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return out


class _Peaks:
    """The highest VmHWM of the bridge and of its workers, read every 20 ms until stopped."""

    def __init__(self, root: int) -> None:
        self.root, self.bridge, self.workers = root, 0.0, 0.0
        self._task = asyncio.create_task(self._watch())

    def _read(self) -> None:
        self.bridge = max(self.bridge, _peak_mib(self.root))
        try:
            workers = [p.pid for p in psutil.Process(self.root).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        self.workers = max([self.workers, *map(_peak_mib, workers)])

    async def _watch(self) -> None:
        while True:
            self._read()
            await asyncio.sleep(PING_EVERY_S)

    async def stop(self) -> dict[str, float]:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._read()
        return {"bridge": self.bridge, "workers": self.workers}


def _reset_peaks(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            Path(f"/proc/{p.pid}/clear_refs").write_text("5")   # VmHWM := current RSS
        except OSError:
            pass


def _peak_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return 0.0


class _Probe:
    """`python -m tests.bench.hostile --probe URL TOKEN`: one JSON line (perf_counter, seconds, ok) per ping."""

    def __init__(self, synapse: Synapse) -> None:
        self.url = f"http://127.0.0.1:{synapse.appservice_port}/_matrix/app/v1/ping"
        self.token = yaml.safe_load(Path(synapse.appservice_path).read_text())["hs_token"]
        self.samples: list[tuple[float, float, bool]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.hostile", "--probe", self.url, self.token,
            stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._proc.stdout.readline():
            at, seconds, ok = json.loads(line)
            self.samples.append((at, seconds, ok))

    def between(self, start: float, end: float) -> list[tuple[float, bool]]:
        return [(s, ok) for at, s, ok in self.samples if start <= at <= end]

    async def stop(self) -> None:
        self._proc.terminate()
        await self._proc.wait()
        await self._reader


def _probe_main(url: str, token: str) -> None:
    import aiohttp

    async def run() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                started = time.perf_counter()
                ok = True
                try:
                    async with http.post(url, json={"transaction_id": "ping"}, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                print(json.dumps([started, time.perf_counter() - started, ok]), flush=True)
                await asyncio.sleep(PING_EVERY_S)
    asyncio.run(run())


def _ms(samples: list[float]) -> dict:
    """n, p50, p99 and max in milliseconds of `samples` given in seconds."""
    if not samples:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ms = sorted(x * 1000 for x in samples)
    return {"n": len(ms), "p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max": ms[-1]}


async def bench_hostile(synapse: Synapse, work: Path) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    gw_dir = Path(tempfile.mkdtemp(prefix="liaison-mailgw-"))
    gateway = GatewayProcess(gw_dir)
    local = _Local(synapse, work / "hostile")
    probe = _Probe(synapse)
    try:
        mail = await asyncio.to_thread(gateway.start)
        s = await open_structure(local.clinician, local.bot, local.bridge, synapse, gateway,
                                 work / "hostile" / "bridge")
        cardio = box(mail, CARDIO)
        local_part, domain = mail["bridge_address"].split("@")
        to = f"{local_part}+{s.code.lower()}@{domain}"
        cited = await one_of_our_mails(s, cardio, to, 60)
        outcomes = Outcomes(s.bot.database_url)
        cases = catalogue(CARDIO, to, cited, mail["bridge_address"], f"B{int(time.time())}", other=LAB)
        await probe.start()
        await asyncio.sleep(1)   # one idle second of pings: the floor the catalogue's pings are read against
        idle = [x for x, _ in probe.between(0, time.perf_counter())]
        rows, first = [], time.perf_counter()
        for case in cases:
            procs = _tree(s.bridge.process.pid)
            _reset_peaks(procs)
            cpu0 = _cpu(procs)
            peaks = _Peaks(s.bridge.process.pid)
            started = time.perf_counter()
            await deliver(mail, gw_dir, case, to)
            _, state, reason = await outcomes.next(120)
            ended = time.perf_counter()
            await asyncio.sleep(SETTLE_S)   # the mail's own end (moved to « Traités », memory handed back)
            procs = _tree(s.bridge.process.pid)   # a worker may have started (or been replaced) meanwhile
            cpu1 = _cpu(procs)
            pings = probe.between(started, ended)
            rows.append({
                "case": case.name, "size_mib": len(case.raw) / 2**20, "expected": [case.expected, case.reason],
                "got": [state, reason], "seconds": ended - started,
                "cpu_s": sum(cpu1.values()) - sum(cpu0.values()),   # a worker gone meanwhile: in the bridge's reaped
                "cpu_bridge_s": cpu1.get(procs[0].pid, 0) - cpu0.get(procs[0].pid, 0),
                "rss_peak_mib": await peaks.stop(),
                "ping_ms": _ms([x for x, _ in pings]), "ping_failures": sum(1 for _, ok in pings if not ok)})
        window = probe.between(first, time.perf_counter())
        return {"cases": rows, "ping_idle_ms": _ms(idle), "ping_all_ms": _ms([x for x, _ in window]),
                "ping_failures": sum(1 for _, ok in window if not ok), "ping_every_s": PING_EVERY_S,
                "half_stored": outcomes.half_stored()}
    finally:
        if probe._proc is not None:
            await probe.stop()
        await local.close()
        await asyncio.to_thread(gateway.stop)
        shutil.rmtree(gw_dir, ignore_errors=True)


def report_lines(res: dict) -> list[str]:
    t = TARGETS

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"
    lines = [f"hostile mail catalogue: targets ≤ {t['cpu_s']} s bridge CPU, ≤ {t['rss_mib']:.0f} MB peak RSS per "
             f"process, /ping p99 ≤ {t['ping_p99_ms']:.0f} ms (probe every {res['ping_every_s'] * 1000:.0f} ms)",
             f"{'mail':<58} {'MiB':>6} {'outcome':<34} {'CPU s':>6} {'RSS bridge':>10} {'worker':>7} "
             f"{'ping p99':>8} {'max':>6}"]
    ok_all = True
    for r in res["cases"]:
        p = r["ping_ms"]
        ok = (r["got"][0] == {"quarantine": "quarantined"}.get(r["expected"][0], r["expected"][0])
              and (r["got"][1] or "") == (r["expected"][1] or "") and r["cpu_s"] <= t["cpu_s"]
              and max(r["rss_peak_mib"].values()) <= t["rss_mib"] and p["p99"] <= t["ping_p99_ms"]
              and not r["ping_failures"])
        ok_all &= ok
        got = f"{r['got'][0]} {r['got'][1] or ''}".strip()
        lines.append(f"{r['case'][:58]:<58} {r['size_mib']:>6.1f} {got[:34]:<34} {r['cpu_s']:>6.2f} "
                     f"{r['rss_peak_mib']['bridge']:>10.0f} {r['rss_peak_mib']['workers']:>7.0f} {p['p99']:>8.1f} "
                     f"{p['max']:>6.1f} {mark(ok)}")
    a = res["ping_all_ms"]
    lines.append(f"/ping while the catalogue is processed: n {a['n']} p50 {a['p50']:.1f} ms p99 {a['p99']:.1f} ms "
                 f"max {a['max']:.1f} ms, failures {res['ping_failures']} (idle p99 {res['ping_idle_ms']['p99']:.1f} "
                 f"ms) {mark(a['p99'] <= t['ping_p99_ms'] and not res['ping_failures'])}; half-stored mails: "
                 f"{len(res['half_stored'])} {mark(not res['half_stored'])}")
    res["verdict"] = ok_all and a["p99"] <= t["ping_p99_ms"] and not res["half_stored"] and not res["ping_failures"]
    return lines


if __name__ == "__main__" and sys.argv[1:2] == ["--probe"]:
    _probe_main(sys.argv[2], sys.argv[3])
