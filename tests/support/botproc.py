"""Run the real bot as a separate process, the way the stack runs it."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from liaison.stack import bot_command, stop_process


def store_key(workdir: Path) -> str:
    """The test's store key: the same for every start of the same process's folder (its keys must reopen)."""
    return hashlib.sha256(f"liaison-test-store:{workdir}".encode()).hexdigest()


@dataclass
class BotProcess:
    workdir: Path
    homeserver: str
    server_name: str
    user_id: str
    password: str
    staff: list[str]
    database_url: str = ""
    extra: dict = field(default_factory=dict)   # more top-level config sections (roster, pathways…)
    process: subprocess.Popen | None = field(default=None, repr=False)
    _log_offset: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = self.database_url or f"sqlite+aiosqlite:///{self.workdir / 'liaison.db'}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "liaison.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bot.log"

    def write_config(self) -> None:
        cfg = {
            "homeserver": {"url": self.homeserver, "server_name": self.server_name},
            "bot": {"user_id": self.user_id, "password": "${LIAISON_BOT_PASSWORD}",
                    "staff": self.staff, "store_dir": "store", "store_pickle_key": store_key(self.workdir)},
            "database": {"url": self.database_url},
            "logging": {"format": "json", "level": "info"},
            **self.extra,
        }
        self.config_path.write_text(yaml.safe_dump(cfg))

    def start(self) -> "BotProcess":
        self.write_config()
        env = dict(os.environ, LIAISON_BOT_PASSWORD=self.password)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_log("bot.started")
        return self

    def command(self) -> list[str]:
        """How this process is started: the way the stack starts the bot."""
        return bot_command(str(self.config_path))

    def current_log(self) -> str:
        """What this run of the process has logged so far."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode(errors="replace")

    def wait_log(self, marker: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.current_log():
                return
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"bot exited ({self.process.returncode}):\n{self.log_path.read_text()}")
            time.sleep(0.05)
        raise TimeoutError(f"no {marker!r} in the bot's log:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        return stop_process(self.process, sig, timeout)

    def events(self, name: str) -> list[dict]:
        """The JSON log lines of this run whose event is `name`."""
        return log_events(self.current_log(), name)


def log_events(text: str, name: str) -> list[dict]:
    """The JSON log lines of `text` whose event is `name` (structlog's JSON renderer)."""
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == name:
            out.append(entry)
    return out
