"""A real Synapse for the local stack and the tests: config, process, admin registration.

Only the client API listens, on one loopback port; no federation, no key servers,
rate limits lifted (the bot and the tests send faster than a person).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from liaison.private import private_dir, write_private

APPSERVICE_ID = "liaison-mss"
PUPPET_PREFIX = "mss_"

_UNLIMITED = {"per_second": 1000, "burst_count": 10000}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SynapseSecrets:
    registration_shared_secret: str
    macaroon_secret_key: str
    form_secret: str
    as_token: str
    hs_token: str

    @classmethod
    def load_or_create(cls, path: Path) -> "SynapseSecrets":
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls(*(secrets.token_urlsafe(32) for _ in range(5)))
        write_private(path, json.dumps(made.__dict__, indent=2))
        return made


@dataclass
class Synapse:
    """One homeserver process, its data under `data_dir`."""

    data_dir: Path
    server_name: str = "liaison.localhost"
    port: int = 0
    log_dir: Path | None = None
    appservice_port: int = 0   # where the MSSanté bridge listens for the homeserver's pushes
    console: bool = True       # its warnings on stderr too (the tests); `liaison up` keeps them in the log file
    process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = private_dir(Path(self.data_dir).resolve())   # its database, media, keys
        self.log_dir = Path(self.log_dir or self.data_dir).resolve()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.logs: Path = self.log_dir   # the folder of its log, now known
        self.secrets = SynapseSecrets.load_or_create(self.data_dir / "secrets.json")
        if not self.port:
            self.port = free_port()
        if not self.appservice_port:
            self.appservice_port = free_port()

    @property
    def appservice_url(self) -> str:
        return f"http://127.0.0.1:{self.appservice_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "homeserver.yaml"

    @property
    def appservice_path(self) -> Path:
        return self.data_dir / "appservice-mss.yaml"

    def write_config(self) -> None:
        """Every file 0600: the signing key, the registration (as/hs tokens), homeserver.yaml (the registration
        shared secret is enough to create an admin)."""
        d = self.data_dir
        key = d / "signing.key"
        if not key.exists():
            from signedjson.key import generate_signing_key, write_signing_keys

            text = io.StringIO()
            write_signing_keys(text, [generate_signing_key("a_" + secrets.token_hex(2))])
            write_private(key, text.getvalue())
        key.chmod(0o600)
        log_config = d / "log.yaml"
        write_private(log_config, yaml.safe_dump(self._log_config()))
        write_private(self.appservice_path, yaml.safe_dump(self._appservice_registration()))
        cfg = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [{
                "port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http",
                "tls": False, "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(d / "media"),
            "signing_key_path": str(key),
            "registration_shared_secret": self.secrets.registration_shared_secret,
            "macaroon_secret_key": self.secrets.macaroon_secret_key,
            "form_secret": self.secrets.form_secret,
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "enable_registration": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "max_upload_size": "50M",
            "app_service_config_files": [str(self.appservice_path)],
            "rc_message": _UNLIMITED,
            "rc_room_creation": _UNLIMITED,
            "rc_registration": _UNLIMITED,
            "rc_login": {k: _UNLIMITED for k in ("address", "account", "failed_attempts")},
            "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
            "rc_joins_per_room": _UNLIMITED,
            "rc_invites": {k: _UNLIMITED for k in ("per_room", "per_user", "per_issuer")},
            "rc_3pid_validation": _UNLIMITED,
            "rc_admin_redaction": _UNLIMITED,
            "rc_key_requests": _UNLIMITED,
        }
        write_private(self.config_path, yaml.safe_dump(cfg, sort_keys=False))

    def _appservice_registration(self) -> dict:
        name = self.server_name.replace(".", r"\.")
        return {
            "id": APPSERVICE_ID,
            "url": self.appservice_url,
            "as_token": self.secrets.as_token,
            "hs_token": self.secrets.hs_token,
            "sender_localpart": PUPPET_PREFIX + "bridge",
            "rate_limited": False,
            "namespaces": {
                "users": [{"exclusive": True, "regex": f"@{PUPPET_PREFIX}.*:{name}"}],
                "aliases": [],
                "rooms": [],
            },
        }

    def _log_config(self) -> dict:
        return {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {"class": "logging.FileHandler", "formatter": "plain",
                         "filename": str(self.logs / "synapse.log"), "level": "INFO"},
                "console": {"class": "logging.StreamHandler", "formatter": "plain", "level": "WARNING"},
            },
            "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
            "root": {"level": "INFO", "handlers": ["file", "console"] if self.console else ["file"]},
            "disable_existing_loggers": False,
        }

    def start(self, stdout=None, timeout: float = 60.0) -> None:
        self.write_config()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.data_dir, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited with code {self.process.returncode}; see {self.log_dir}/synapse.log")
            try:
                with urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise TimeoutError(f"Synapse did not answer on {self.url} within {timeout} s")

    def stop(self, timeout: float = 15.0) -> None:
        from liaison.stack import stop_process

        stop_process(self.process, timeout=timeout)

    # -- accounts ---------------------------------------------------------

    def register(self, localpart: str, password: str, *, admin: bool = False,
                 displayname: str | None = None) -> str:
        """Register through the shared-secret admin API; an existing account is kept."""
        base = self.url + "/_synapse/admin/v1/register"
        with urllib.request.urlopen(base, timeout=10) as resp:
            nonce = json.load(resp)["nonce"]
        mac = hmac.new(self.secrets.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        body = {"nonce": nonce, "username": localpart, "password": password,
                "admin": admin, "mac": mac.hexdigest()}
        if displayname:
            body["displayname"] = displayname
        req = urllib.request.Request(base, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as err:
            answer = json.loads(err.read() or b"{}")
            if answer.get("errcode") != "M_USER_IN_USE":
                raise RuntimeError(f"registering {localpart} failed: {answer}") from err
        return f"@{localpart}:{self.server_name}"

    async def aregister(self, localpart: str, password: str, **kw) -> str:
        return await asyncio.to_thread(self.register, localpart, password, **kw)
