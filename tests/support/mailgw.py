"""Run the local MSSanté-like mail gateway as a separate process, the way the stack runs it.

    with running_gateway() as gw:
        gw.info["smtp"]["port"], gw.info["bridge"]["imap_password"], …

`info` is the gateway's ready JSON (the `mail` section of the stack file). The working
directory is made under /tmp by default: Dovecot's unprivileged processes must be able
to walk down to it, which pytest's 0700 temporary directories do not allow.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


@dataclass
class GatewayProcess:
    workdir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    info: dict = field(default_factory=dict)

    @property
    def ready_file(self) -> Path:
        return self.workdir / "ready.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mailgw.log"

    @property
    def dovecot_log(self) -> Path:
        return self.workdir / "dovecot" / "dovecot.log"

    def start(self, timeout: float = 60.0) -> dict:
        self.ready_file.unlink(missing_ok=True)
        out = (self.workdir / "mailgw.stdout").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "liaison.stack.mailgw", "--dir", str(self.workdir),
             "--ready-file", str(self.ready_file)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"la passerelle de messagerie n'a pas démarré:\n{self.log_text()}")
            time.sleep(0.05)
        self.info = json.loads(self.ready_file.read_text())
        return self.info

    def log_text(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.log_path, self.workdir / "mailgw.stdout")
                 if p.exists()]
        return "\n".join(parts)

    def wait_log(self, marker: str, timeout: float = 5.0) -> str:
        """The gateway's log once it holds `marker` (raises after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if marker in text:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"pas de {marker!r} dans le journal de la passerelle:\n{text[-3000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def running_gateway(workdir: Path | None = None, *, keep: bool = False) -> Iterator[GatewayProcess]:
    """A started gateway; stopped (and its temporary directory removed) on exit."""
    made = workdir is None
    root = Path(tempfile.mkdtemp(prefix="liaison-mailgw-")) if made else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    gateway = GatewayProcess(root)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        if made and not keep:
            shutil.rmtree(root, ignore_errors=True)
