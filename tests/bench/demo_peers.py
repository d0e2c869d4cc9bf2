"""Try the benchmark's peers out: floor, nio echo bot and maubot, round trips and idle RSS.

    .venv/bin/python tests/bench/demo_peers.py [--samples 50] [--idle 10] [--fresh-maubot]

Starts a throwaway Synapse under .liaison/bench/, the echo bot (tests/bench/echo_bot.py)
and maubot (tests/bench/maubot_peer.py), two clinicians; one encrypted room per peer
(two echoing bots in one room would answer each other forever); measures samples of
each round trip one after the other, then the bots' RSS after an idle spell; prints a table.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

from liaison.stack.synapse import Synapse  # noqa: E402
from maubot_peer import VENV, MaubotEcho  # noqa: E402
from measure import (Clinician, floor_sample, floor_warm_up, percentiles, rss_mib,  # noqa: E402
                     wait_device_keys)

PASSWORD = "bench-password"


def start_echo_bot(synapse: Synapse, user_id: str, work: Path) -> subprocess.Popen:
    log = open(work / "echo_bot.log", "ab")
    try:
        return subprocess.Popen(
            [sys.executable, str(HERE / "echo_bot.py"), "--homeserver", synapse.url,
             "--user", user_id, "--password", PASSWORD, "--store", str(work / "echo-store")],
            stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


async def sample(n: int, one) -> list[float]:
    return [await one(i) for i in range(n)]


async def run(args: argparse.Namespace, work: Path) -> None:
    synapse = Synapse(work / "synapse")
    await asyncio.to_thread(synapse.start)
    echo_proc = None
    a, b = Clinician("alice"), Clinician("bob")
    try:
        alice, bob, echo = [await synapse.aregister(n, PASSWORD, displayname=n.capitalize())
                            for n in ("alice", "bob", "echo")]
        echo_proc = start_echo_bot(synapse, echo, work)
        if args.fresh_maubot and VENV.exists():
            shutil.rmtree(VENV)
        async with MaubotEcho(synapse, work / "maubot") as mau:
            for clin, uid in ((a, alice), (b, bob)):
                await clin.login(synapse.url, uid, PASSWORD, work / f"store-{clin.name}")
            await wait_device_keys(synapse.url, echo, a.client.access_token)

            floor_room = await a.create_encrypted_room(invite=[bob])
            echo_room = await a.create_encrypted_room(invite=[echo])
            mau_room = await a.create_encrypted_room(invite=[mau.user_id])
            await b.join(floor_room)
            await a.wait_joined(floor_room, [bob])
            await a.wait_joined(echo_room, [echo])
            await a.wait_joined(mau_room, [mau.user_id])

            n = args.samples
            results, warm = {}, {}
            warm["floor A→B"] = await floor_warm_up(a, b, floor_room)
            results["floor A→B"] = await sample(
                n, lambda i: floor_sample(a, b, floor_room, f"floor {i}"))
            warm["nio echo bot"] = await a.warm_up(echo_room, "warm-up", echo)
            results["nio echo bot"] = await sample(
                n, lambda i: a.round_trip(echo_room, f"ping {i}", echo))
            warm["maubot"] = await a.warm_up(mau_room, "warm-up", mau.user_id)
            results["maubot"] = await sample(
                n, lambda i: a.round_trip(mau_room, f"ping {i}", mau.user_id))

            await asyncio.sleep(args.idle)
            rss = {"nio echo bot": rss_mib(echo_proc.pid), "maubot": rss_mib(mau.pid)}
            print_table(results, warm, rss, args.idle)
            installed = (f"installed in {mau.install_seconds:.1f} s" if mau.install_seconds
                         else f"reused venv {VENV}")
            print(f"\nmaubot {mau.version} ({installed}); Synapse {synapse.url}; work dir {work}")
    finally:
        await a.close()
        await b.close()
        if echo_proc:
            echo_proc.terminate()
            echo_proc.wait(10)
        await asyncio.to_thread(synapse.stop)


def print_table(results: dict, warm: dict, rss: dict, idle: float) -> None:
    print(f"\n{'peer':<14} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} "
          f"{'warm-up sends':>13} {f'RSS MiB ({idle:g} s idle)':>22}")
    for name, samples in results.items():
        p = percentiles(samples)
        mem = f"{rss[name]:.1f}" if name in rss else "-"
        print(f"{name:<14} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f} {p['mean']:>8.1f} "
              f"{warm[name]:>13} {mem:>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--fresh-maubot", action="store_true",
                        help="delete maubot's venv first, to time its install")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    logging.getLogger("nio").setLevel(logging.ERROR)  # "Missing session for device ..." noise
    base = ROOT / ".liaison" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="demo-", dir=base))
    started = time.monotonic()
    try:
        asyncio.run(run(args, work))
    finally:
        print(f"total {time.monotonic() - started:.1f} s")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
