"""maubot as a peer of the latency benchmark: an echo plugin of ours, run the maubot way.

maubot (https://github.com/maubot/maubot, mautrix-python, E2EE through python-olm) is
installed by `pip install 'maubot[encryption]'` into its own venv under
.liaison/bench/maubot-venv (made with python3 -m venv, reused when already there), so
none of its pins touch the project's venv. Then:

1. a config in `workdir` (sqlite database that also holds the crypto store, management
   API on a free loopback port, one admin, the Synapse with its registration secret);
2. `python -m maubot -c config.yaml`; we wait for GET /_matrix/maubot/v1/features;
3. management API (maubot/management/api/*.py, base path /_matrix/maubot/v1, bearer token
   from POST /auth/login {"username", "password"}):
   - POST /plugins/upload?allow_override=true, the .mbp zip (maubot.yaml + one module) as body;
   - PUT /client/{mxid} {"homeserver", "access_token", "device_id", "autojoin": true, ...}
     with a token and device id from our own password login: a device id turns maubot's
     OlmMachine on (Client.enable_crypto);
   - PUT /instance/{id} {"type": plugin id, "primary_user": mxid, "enabled": true}.
4. mautrix ignores the events of a client's first sync (maubot sets ignore_first_sync), an
   invite included: we are ready only once that sync's token is stored (the `client` row's
   next_batch in maubot's sqlite database), so the invites sent after it are answered.

    async with MaubotEcho(synapse, workdir) as m:
        m.user_id, m.pid, m.version, m.install_seconds
"""
from __future__ import annotations

import asyncio
import io
import secrets
import shutil
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

import aiohttp
import yaml

from liaison.stack.synapse import Synapse, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".liaison" / "bench" / "maubot-venv"
API = "/_matrix/maubot/v1"
PLUGIN_ID = "fr.liaison.bench.echo"
INSTANCE_ID = "benchecho"

PLUGIN_META = {
    "maubot": "0.1.0", "id": PLUGIN_ID, "version": "1.0.0", "license": "AGPL-3.0-or-later",
    "modules": ["bench_echo"], "main_class": "BenchEcho", "database": False,
}
PLUGIN_SOURCE = '''\
import html

from maubot import MessageEvent, Plugin
from maubot.handlers import event
from mautrix.types import EventType, Format, MessageType, TextMessageEventContent


class BenchEcho(Plugin):
    """Replies to every text message with a rich reply, as tests/bench/echo_bot.py does."""

    @event.on(EventType.ROOM_MESSAGE)
    async def echo(self, evt: MessageEvent) -> None:
        if evt.sender == self.client.mxid or evt.content.msgtype != MessageType.TEXT:
            return
        body = evt.content.body
        await evt.reply(TextMessageEventContent(
            msgtype=MessageType.TEXT, body=f"echo: {body}", format=Format.HTML,
            formatted_body=f"<p>echo: {html.escape(body)}</p>"))
'''


class MaubotUnavailable(RuntimeError):
    """maubot could not be installed or started here."""


def ensure_installed(venv: Path = VENV) -> float | None:
    """Install maubot[encryption] into `venv`; seconds it took, None when it was there."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import maubot, olm"],
                                          capture_output=True).returncode == 0:
        return None
    start = time.monotonic()
    base = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
    steps = [[base, "-m", "venv", str(venv)],
             [python, "-m", "pip", "install", "-q", "maubot[encryption]"]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise MaubotUnavailable(f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - start


def build_plugin() -> bytes:
    """The .mbp: a zip of maubot.yaml and the plugin module."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("maubot.yaml", yaml.safe_dump(PLUGIN_META, sort_keys=False))
        zf.writestr("bench_echo.py", PLUGIN_SOURCE)
    return buf.getvalue()


class MaubotEcho:
    """One maubot process with one E2EE client and our echo plugin instance."""

    def __init__(self, synapse: Synapse, workdir: str | Path, localpart: str = "maubot",
                 password: str | None = None, venv: Path = VENV) -> None:
        self.synapse = synapse
        self.workdir = Path(workdir).resolve()
        self.localpart = localpart
        self.password = password or secrets.token_urlsafe(16)
        self.venv = venv
        self.port = free_port()
        self.admin_password = secrets.token_urlsafe(16)
        self.user_id = f"@{localpart}:{synapse.server_name}"
        self.process: subprocess.Popen | None = None
        self.install_seconds: float | None = None
        self.version: str | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def write_config(self) -> Path:
        w = self.workdir
        for sub in ("plugins", "trash", "plugin-dbs"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        cfg = {
            "database": f"sqlite:{w / 'maubot.db'}",
            "crypto_database": "default",
            "crypto_db_pickle_key": secrets.token_urlsafe(16),
            "plugin_directories": {"upload": str(w / "plugins"), "load": [str(w / "plugins")],
                                   "trash": str(w / "trash")},
            "plugin_databases": {"sqlite": str(w / "plugin-dbs"), "postgres": None},
            "server": {"hostname": "127.0.0.1", "port": self.port,
                       "public_url": f"http://127.0.0.1:{self.port}",
                       "unshared_secret": secrets.token_urlsafe(32)},
            "homeservers": {self.synapse.server_name: {
                "url": self.synapse.url,
                "secret": self.synapse.secrets.registration_shared_secret}},
            "admins": {"root": "", "bench": self.admin_password},
            "logging": {
                "version": 1,
                "formatters": {"normal": {"format": "[%(asctime)s] [%(levelname)s@%(name)s] %(message)s"}},
                "handlers": {"file": {"class": "logging.FileHandler", "formatter": "normal",
                                      "filename": str(w / "maubot.log")}},
                "root": {"level": "INFO", "handlers": ["file"]},
            },
        }
        path = w / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    async def __aenter__(self) -> "MaubotEcho":
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self, timeout: float = 60.0) -> None:
        self.install_seconds = await asyncio.to_thread(ensure_installed, self.venv)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        log = open(self.workdir / "maubot.out", "ab")
        self.process = subprocess.Popen([self.venv / "bin" / "python", "-m", "maubot", "-c", config],
                                        cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._http = aiohttp.ClientSession()
        await self._wait_api(timeout)
        token = (await self._call("POST", "/auth/login", json={
            "username": "bench", "password": self.admin_password}))["token"]
        self._http.headers["Authorization"] = f"Bearer {token}"
        self.version = (await self._call("GET", "/version"))["version"]

        await self._call("POST", "/plugins/upload?allow_override=true", data=build_plugin(),
                         headers={"Content-Type": "application/zip"})
        await self.synapse.aregister(self.localpart, self.password, displayname="maubot")
        access_token, device_id = await self._matrix_login()
        client = await self._call("PUT", f"/client/{self.user_id}", json={
            "homeserver": self.synapse.url, "access_token": access_token, "device_id": device_id,
            "enabled": True, "sync": True, "autojoin": True, "online": True})
        if not client.get("fingerprint"):
            raise MaubotUnavailable(f"maubot client has no E2EE identity: {client}")
        await self._call("PUT", f"/instance/{INSTANCE_ID}", json={
            "type": PLUGIN_ID, "primary_user": self.user_id, "enabled": True, "config": ""})
        await self._wait_first_sync(timeout)

    async def stop(self, timeout: float = 15.0) -> None:
        if self._http:
            await self._http.close()
            self._http = None
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)

    # -- helpers ----------------------------------------------------------

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise MaubotUnavailable(f"maubot exited with code {self.process.returncode}; "
                                    f"see {self.workdir}/maubot.out and maubot.log")

    async def _call(self, method: str, path: str, **kw) -> dict:
        async with self._http.request(method, self.api_url + path, **kw) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 400:
                raise MaubotUnavailable(f"maubot {method} {path}: HTTP {resp.status} {body}")
            return body

    async def _wait_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                async with self._http.get(self.api_url + "/features") as resp:
                    if resp.status == 200:  # the one route needing no token
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise MaubotUnavailable(f"maubot API did not answer on {self.api_url} within {timeout} s")

    async def _matrix_login(self) -> tuple[str, str]:
        """A password login of our own: maubot gets its token and device id."""
        async with aiohttp.ClientSession() as http, http.post(
                self.synapse.url + "/_matrix/client/v3/login", json={
                    "type": "m.login.password", "password": self.password,
                    "identifier": {"type": "m.id.user", "user": self.localpart},
                    "initial_device_display_name": "maubot bench"}) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise MaubotUnavailable(f"Matrix login of {self.user_id} failed: {body}")
            return body["access_token"], body["device_id"]

    async def _wait_first_sync(self, timeout: float) -> None:
        db = f"file:{self.workdir / 'maubot.db'}?mode=ro"

        def next_batch() -> str:
            with sqlite3.connect(db, uri=True, timeout=5) as con:
                row = con.execute("SELECT next_batch FROM client WHERE id=?",
                                  (self.user_id,)).fetchone()
            return row[0] if row else ""

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if await asyncio.to_thread(next_batch):
                return
            await asyncio.sleep(0.1)
        raise MaubotUnavailable(f"maubot's client did not finish its first sync in {timeout} s")
