"""Run the real MSSanté bridge as a separate process, on the bot's config file (its `bridge:` section)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from liaison.stack import stop_process
from tests.support.botproc import log_events, store_key

ROOT = Path(__file__).resolve().parents[2]
DEMO_TRUST_LIST = ROOT / "deploy" / "mssante" / "liste-blanche-demo.xml"


def bridge_section(synapse, mail: dict, workdir: Path, **overrides) -> dict:
    """The `bridge:` config section for the test homeserver and the test mail gateway."""
    box = mail["bridge"]
    section = {
        "user_id": f"@mss_relais:{synapse.server_name}",
        "registration": str(synapse.appservice_path),
        "listen_port": synapse.appservice_port,
        "store_dir": str(workdir / "bridge-store"),
        "store_pickle_key": store_key(workdir / "bridge-store"),
        "trusted_domains_file": str(DEMO_TRUST_LIST),
        "log_file": str(workdir / "bridge.log"),
        "retry_first_seconds": 1,
        "retry_max_seconds": 2,
        "poll_seconds": 5,
        "mailbox": {
            "address": box["address"], "display_name": box["display_name"],
            "imap": mail["imap"], "smtp": mail["smtp"],
            "imap_user": box["imap_user"], "imap_password": box["imap_password"],
            "ca": mail["ca"], "cert": box["cert"], "key": box["key"],
        },
    }
    section.update(overrides)
    return section


@dataclass
class BridgeProcess:
    config_path: Path
    log_path: Path
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)
    _offset: int = 0

    @property
    def ready_file(self) -> Path:
        return self.config_path.parent / "bridge.ready"

    def start(self, timeout: float = 60.0) -> "BridgeProcess":
        self.ready_file.unlink(missing_ok=True)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = (self.config_path.parent / "bridge.stdout").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bridge", "-c", str(self.config_path),
                                         "--ready-file", str(self.ready_file)],
                                        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"le pont n'a pas démarré :\n{self.output()}")
            time.sleep(0.05)
        return self

    def output(self) -> str:
        parts = [p.read_text(errors="replace")[-6000:] for p in (self.log_path, self.config_path.parent /
                                                                  "bridge.stdout") if p.exists()]
        return "\n".join(parts)

    def events(self, name: str) -> list[dict]:
        """The JSON log lines of this run whose event is `name`."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as fh:
            fh.seek(self._offset)
            return log_events(fh.read().decode(errors="replace"), name)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        return stop_process(self.process, sig, timeout)


def documents_section(*, clamd_socket: str = "", **overrides) -> dict:
    """The top-level `documents:` config section (the bot and the bridge read it from the same file)."""
    return {"clamd_socket": clamd_socket, "clamd_timeout_seconds": 5, **overrides}


def with_documents(bot_process, section: dict):
    """A `bot_process` factory whose config file carries this `documents:` section, for `open_structure`."""
    def make(**kwargs):
        return bot_process(**kwargs, documents=section)
    return make
