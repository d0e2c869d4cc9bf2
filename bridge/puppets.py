"""Puppets: one Matrix account per external MSSanté address, each with its own E2EE device.

A puppet never syncs: it only posts what its professional sent by mail. Before each post
it asks who is in the room, so the room key reaches every member's device.
"""
from __future__ import annotations

import asyncio
import re
import unicodedata
from collections import OrderedDict
from pathlib import Path

import structlog

from bridge.homeserver import AppserviceApi
from bridge.ports import BridgeMatrix, PuppetMatrix
from bridge.sanitize import fix_surrogates
from bridge.store import BridgeStore, Puppet
from liaison.logs import digest
from liaison.puppet_names import PuppetNames
from liaison.stores.directory import Entry
from liaison.matrix import Matrix, MatrixError
from policies.professions import find_specialty

log = structlog.get_logger(__name__)

SUFFIX = " (MSSanté)"
_OPEN_MAX = 64
_NAME_MAX = 64
_DOMAIN_MAX = 120
_DETAIL_MAX = 40
_SEPARATORS = re.compile(r"[·•∙⋅‧・|]")
_OWN_SUFFIX = re.compile(r"\(\s*mss\s*ant[eé]\s*\)", re.IGNORECASE)
_ADDRESS = re.compile(r"\S*@\S*")


def puppet_display_name(from_name: str, address: str, known_name: str | None = None,
                        listed: Entry | None = None) -> str:
    """The name a puppet shows in the rooms: never one correspondent's under another's address.

    In order of trust: the name the coordination recorded for the address (its contacts); then the national
    directory's entry of the address: « Dr Camille Lefebvre (cardiologie, CHU de démonstration) (MSSanté) »;
    else the From name, which any sender writes as it likes, after the address's real domain, so that a reader
    meets the domain first: « labo-demo.mssante.test · Dr Camille Lefebvre (MSSanté) ». That name loses what
    could forge the tail (middle dots, « (MSSanté) », addresses); an empty one shows the address.
    A professional's name is public; a display name is in clear state: it never carries a patient's data.
    """
    known = _clean(known_name or "")
    if known:
        return known + SUFFIX
    if listed is not None and (shown := _listed_name(listed)):
        return shown + SUFFIX
    name = _clean(_ADDRESS.sub(" ", _OWN_SUFFIX.sub(" ", _SEPARATORS.sub(" ", _normal(from_name)))))
    if not name:
        return _tail(_ascii_domain(address.lower()), _NAME_MAX + _DOMAIN_MAX) + SUFFIX
    return f"{_tail(_ascii_domain(address.lower().rpartition('@')[2]), _DOMAIN_MAX)} · {name}{SUFFIX}"


def _listed_name(e: Entry) -> str:
    """« Dr Camille Lefebvre (cardiologie, CHU de démonstration) »: the directory's name, then what the professional
    does (the specialty, else the profession) and where."""
    name = _clean(e.name)
    specialty = find_specialty(e.specialty or "")
    does = (specialty.field if specialty else e.profession.label.lower() if e.profession
            else e.profession_label or e.specialty or "")
    details = [d for d in (_clean(does, _DETAIL_MAX), _clean(e.structure or "")) if d and d != name]
    return f"{name} ({', '.join(details)})" if name and details else name


def _normal(text: str) -> str:
    """NFKC (fullwidth ＠ and （ ） read as @ and ( )); controls and line breaks become spaces; format
    characters (bidi controls, zero-width joiners…) go."""
    text = unicodedata.normalize("NFKC", fix_surrogates(text or ""))
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text
                   if unicodedata.category(c) not in ("Cf", "Cs"))


def _clean(text: str, limit: int = _NAME_MAX) -> str:
    text = " ".join(_normal(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _ascii_domain(address: str) -> str:
    """An internationalised domain in its ASCII form (`xn--…`): a look-alike letter shows as what it is."""
    local, at, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return local + at + domain.encode("idna").decode("ascii")
    except UnicodeError:
        return address


def _tail(text: str, limit: int) -> str:
    """At most `limit` characters, keeping the end (a domain's registered part)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


class ShutOut(Exception):
    """A member of the team removed the puppet from the room (kick or ban): its mail is not posted there."""

    def __init__(self, membership: str) -> None:
        super().__init__(membership)
        self.banned = membership == "ban"

    def sentence(self) -> str:
        if self.banned:
            return ("son correspondant a été banni du salon par un membre de l'équipe : levez le bannissement "
                    "dans Element, puis routez-le à la main (!mss router)")
        return ("son correspondant a été retiré du salon par un membre de l'équipe : un coordinateur peut "
                "l'y router à la main (!mss router), ce qui le fait revenir")


class Puppets:
    def __init__(self, api: AppserviceApi, store: BridgeStore, *, homeserver: str, server_name: str,
                 store_dir: Path, bridge: BridgeMatrix, names: PuppetNames, pickle_key: str, bot_user_id: str = "") -> None:
        self.api, self.store, self.bridge, self.pickle_key = api, store, bridge, pickle_key
        self.liaison = frozenset(u for u in (bridge.user_id, bot_user_id) if u)   # their removals are Liaison's
        self.homeserver, self.server_name = homeserver, server_name
        self.names = names   # shared with the appservice's filter (bridge/__main__.py)
        self.store_dir = Path(store_dir) / "puppets"
        self._open: OrderedDict[str, PuppetMatrix] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def is_puppet(self, user_id: str) -> bool:
        return self.names.is_bridged(user_id) and user_id != self.bridge.user_id

    async def get(self, address: str, name: str, known_name: str | None = None,
                  listed: Entry | None = None) -> tuple[Puppet, PuppetMatrix]:
        """The address's puppet, logged in; its display name follows the contacts, the directory or the mail's
        (see puppet_display_name)."""
        address = address.lower()
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            puppet = await self.store.puppet(address)
            display = puppet_display_name(name, address, known_name, listed)
            if puppet is None or puppet.display_name != display:
                puppet = await self._make(address, display, puppet)
            matrix = self._open.get(address)
            if matrix is None:
                matrix = await self._login(puppet)
            self._open[address] = matrix
            self._open.move_to_end(address)
            while len(self._open) > _OPEN_MAX:
                _, old = self._open.popitem(last=False)
                await old.close()
            return puppet, matrix

    async def _make(self, address: str, display: str, known: Puppet | None) -> Puppet:
        user_id = known.user_id if known else self.names.user_id_for(address)
        if known is None:
            await self.api.register(user_id[1:].split(":")[0])
        puppet = Puppet(address, user_id, display)
        matrix = self._open.get(address) or await self._login(puppet)
        self._open[address] = matrix
        await matrix.set_display_name(display)
        await self.store.add_puppet(puppet)
        log.info("puppet.ready", puppet=digest(user_id), new=known is None)
        return puppet

    async def _login(self, puppet: Puppet) -> PuppetMatrix:
        saved = await self.store.account(puppet.user_id)
        matrix = Matrix(self.homeserver, puppet.user_id, self.store_dir / puppet.user_id[1:].split(":")[0],
                        device_name="Liaison MSSanté", pickle_key=self.pickle_key)
        if saved is None:
            session = await self.api.login(puppet.user_id, "Liaison MSSanté")
            await matrix.login("", session)
            await self.store.save_session(session)
        else:
            await matrix.login("", saved.session)
        return matrix

    async def join(self, puppet: Puppet, matrix: PuppetMatrix, room_id: str) -> None:
        """The bridge's account invites the puppet, which joins; remembered once done."""
        if await self.store.puppet_in_room(puppet.user_id, room_id):
            return
        try:
            await self.bridge.invite(room_id, puppet.user_id)
        except MatrixError as err:   # M_FORBIDDEN: already in the room (or may not be: its join below tells)
            if err.errcode != "M_FORBIDDEN":
                raise
        await matrix.join(room_id)
        await self.store.add_puppet_room(puppet.user_id, room_id)

    async def enter(self, puppet: Puppet, matrix: PuppetMatrix, room_id: str, by_hand: bool = False) -> None:
        """In the room, its members and devices known, before a post.

        A puppet the store thinks is in the room but is not is forgotten there. Removed by Liaison (an
        objection since lifted, say), it is brought back. Removed by a member of the team, that is their
        will: ShutOut, the mail goes to quarantine; a coordinator routing it by hand brings it back after a
        kick, never past a ban.
        """
        try:
            await self.join(puppet, matrix, room_id)
            await matrix.refresh_members(room_id)
            return
        except MatrixError as err:
            if err.errcode not in ("M_FORBIDDEN", "M_BAD_STATE"):   # M_BAD_STATE: Synapse's "banned" at invite
                raise
        await self.store.remove_puppet_room(puppet.user_id, room_id)   # the thread is no longer blocked on it
        membership, by = await self._membership(room_id, puppet.user_id)
        if membership == "ban" or (membership == "leave" and by not in self.liaison | {puppet.user_id}
                                   and not by_hand):
            log.info("puppet.shut_out", room_id=room_id, membership=membership)
            raise ShutOut(membership)
        log.info("puppet.not_in_room", room_id=room_id, membership=membership)
        await self.join(puppet, matrix, room_id)
        await matrix.refresh_members(room_id)

    async def _membership(self, room_id: str, user_id: str) -> tuple[str, str]:
        """The puppet's membership in the room and who set it, read by the bridge's account."""
        for event in await self.bridge.state(room_id):
            if event.get("type") == "m.room.member" and event.get("state_key") == user_id:
                return (event.get("content") or {}).get("membership", ""), event.get("sender", "")
        return "", ""

    async def close(self) -> None:
        for matrix in self._open.values():
            await matrix.close()
        self._open.clear()
