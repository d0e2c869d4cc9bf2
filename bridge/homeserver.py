"""The appservice's own calls to the homeserver (registration, login, ping), made with its as_token.

Everything else a puppet does goes through `liaison.matrix.Matrix` once it has a session.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yaml

from liaison.matrix import Session


class HomeserverError(RuntimeError):
    pass


@dataclass(frozen=True)
class Registration:
    id: str
    as_token: str
    hs_token: str
    sender_localpart: str

    @classmethod
    def load(cls, path: str | Path) -> "Registration":
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise HomeserverError("enregistrement de l'appservice illisible : une section (clé: valeur) est attendue")
        values = []
        for key in ("id", "as_token", "hs_token", "sender_localpart"):
            if key not in raw:
                raise HomeserverError(f"enregistrement de l'appservice incomplet : {key} manquant")
            if raw[key] is None or not str(raw[key]).strip():
                # An empty hs_token would let anyone push transactions without a token.
                raise HomeserverError(f"enregistrement de l'appservice : {key} vide")
            values.append(str(raw[key]))
        return cls(*values)


class AppserviceApi:
    def __init__(self, homeserver: str, registration: Registration) -> None:
        self.base = homeserver.rstrip("/")
        self.reg = registration
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.reg.as_token}"},
                                               timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    async def _post(self, path: str, body: dict) -> tuple[int, dict]:
        async with self._session().post(self.base + path, json=body) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = {}
            return resp.status, data or {}

    async def register(self, localpart: str) -> None:
        """Create a puppet account (an existing one is fine)."""
        status, data = await self._post("/_matrix/client/v3/register",
                                        {"type": "m.login.application_service", "username": localpart})
        if status != 200 and data.get("errcode") != "M_USER_IN_USE":
            raise HomeserverError(f"register {localpart}: {status} {data.get('errcode')}")

    async def login(self, user_id: str, device_name: str) -> Session:
        """A device of its own for the account: its messages are end-to-end encrypted like anyone's."""
        status, data = await self._post("/_matrix/client/v3/login", {
            "type": "m.login.application_service", "identifier": {"type": "m.id.user", "user": user_id},
            "initial_device_display_name": device_name})
        if status != 200:
            raise HomeserverError(f"login {user_id}: {status} {data.get('errcode')}")
        return Session(data["user_id"], data["device_id"], data["access_token"])

    async def ping(self) -> bool:
        """Ask the homeserver to push to us now (it backs off while the appservice was down)."""
        try:
            status, _ = await self._post(f"/_matrix/client/v1/appservice/{quote(self.reg.id)}/ping", {})
        except (aiohttp.ClientError, OSError):
            return False
        return status == 200

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
