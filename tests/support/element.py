"""A clinician's device running Element's own crypto (matrix-js-sdk + Rust crypto WASM), driven from a test.

`tests/element/device.mjs` logs in as a new device and reports every room event it sees as a JSON
line; this class reads those lines and sends it commands (see the script's header).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

ELEMENT = Path(__file__).resolve().parents[1] / "element"
SCRIPT = ELEMENT / "device.mjs"


def ensure_installed() -> None:
    if (ELEMENT / "node_modules" / "matrix-js-sdk").exists():
        return
    if not shutil.which("npm"):
        raise RuntimeError("npm is needed for the Element crypto tests (make test installs it)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ELEMENT, check=True)


class ElementDevice:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []
        self.device_id = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self._errors = asyncio.create_task(self._stderr())
        self.stderr: list[str] = []

    @classmethod
    async def start(cls, homeserver: str, user: str, password: str, room: str, *, join: bool = True,
                    timeout: float = 60) -> "ElementDevice":
        ensure_installed()
        # --name=value: a generated password may begin with "-", which parseArgs would take for an option
        args = ["node", str(SCRIPT), f"--homeserver={homeserver}", f"--user={user}", f"--password={password}",
                f"--room={room}", *([] if join else ["--no-join"]),
                *(["--verbose"] if os.environ.get("LIAISON_ELEMENT_VERBOSE") else [])]
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=dict(os.environ))
        device = cls(proc)
        ready = await device.wait_for(lambda x: x.get("ready"), timeout)
        device.device_id = ready["device_id"]
        return device

    async def _read(self) -> None:
        assert self.proc.stdout
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            async with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _stderr(self) -> None:
        assert self.proc.stderr
        async for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    async def wait_for(self, predicate, timeout: float = 30):
        """The first line (seen before or after the call) for which predicate holds."""
        async def scan():
            async with self._changed:
                while True:
                    for line in self.lines:
                        if predicate(line):
                            return line
                    if self._reader.done():
                        raise RuntimeError("the Element device stopped: " + " | ".join(self.stderr[-5:]))
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"nothing expected from the Element device within {timeout} s; it said: "
                               + " | ".join(self.stderr[-8:])) from None

    def events(self, predicate=lambda e: True) -> list[dict]:
        """The latest report of each event (a failed decryption may be followed by a decrypted one)."""
        latest: dict[str, dict] = {}
        for line in self.lines:
            if "event" in line:
                latest[line["event"]] = line
        return [e for e in latest.values() if predicate(e)]

    async def _command(self, cmd: dict) -> None:
        assert self.proc.stdin
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def send(self, text: str, *, reply_to: str | None = None, thread_root: str | None = None,
                   timeout: float = 30) -> str:
        tag = f"t{len(self.lines)}"
        await self._command({"send": text, "tag": tag, "reply_to": reply_to, "thread_root": thread_root})
        return (await self.wait_for(lambda x: x.get("tag") == tag and "sent" in x, timeout))["sent"]

    async def react(self, event_id: str, key: str, timeout: float = 30) -> str:
        tag = f"t{len(self.lines)}"
        await self._command({"react": event_id, "key": key, "tag": tag})
        return (await self.wait_for(lambda x: x.get("tag") == tag and "sent" in x, timeout))["sent"]

    async def join(self, timeout: float = 30) -> None:
        await self._command({"join": True})
        await self.wait_for(lambda x: x.get("joined"), timeout)

    async def quit(self) -> None:
        with contextlib.suppress(Exception):
            await self._command({"quit": True})
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        self._errors.cancel()
