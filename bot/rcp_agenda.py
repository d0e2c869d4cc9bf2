"""An RCP's agenda goes out by itself `pathways.rcp_agenda_days` days before the meeting, and again after each
change of what it says (cases, moment, participants): `rcp.agenda_version` against `rcp.agenda_sent`.

Each case is a share, decided at the moment it is sent, for each place it goes and each reader, and traced:
- the coordination's room lists every case by pathway code and question (`rcp.agenda`, the coordination's room);
- each patient's clinical room reads its own case (`rcp.agenda`, the clinical room);
- each participant of the structure gets, in their conversation with Liaison, the agenda and an iCalendar invitation
  (.ics) where a case they may not see (`rcp.invite`: outside the patient's team of care, no consent) is its
  pathway code only;
- each external participant gets by mail an invitation (.ics) naming the cases by pathway code only, and one mail per
  case the law lets them read (`rcp.mail`, decided again by the bridge and by the outbox when it leaves).
What was sent is recorded per recipient (`rcp_sent`) with transaction ids made of the meeting, the version and the
room: a crash in the middle sends the rest at the next pass, never twice.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Protocol

import structlog

from bot.direct import DirectPorts, DirectRooms
from bot.members import PeoplePorts
from bot.rcp_text import heading, item_line, when
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, txn_id
from liaison.matrix.content import notice
from liaison.rcp_ics import invitation
from liaison.sharing_facts import SharingStores
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import Pathway
from liaison.stores.rcp import Item, Rcp, RcpMail, RcpStore
from liaison.stores.tasks import TaskStore

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
CHECK_SECONDS = 60


class AgendaPorts(PeoplePorts, DirectPorts, Protocol):
    """What sending an RCP's agenda and its minutes reads and does: the meetings and their tasks, the pathways, the
    decision, the rooms, the clock."""
    @property
    def rcp(self) -> RcpStore | None: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def tasks(self) -> TaskStore: ...


def meetings(services: AgendaPorts) -> RcpStore:
    if services.rcp is None:
        raise ValueError("the RCP store is built by the bootstrap (Services.of)")
    return services.rcp


class RcpAgenda:
    def __init__(self, services: AgendaPorts, days_before: int = 2) -> None:
        self.s = services
        self.days = days_before
        self.direct = DirectRooms(services)
        self._lock = asyncio.Lock()

    def goes_out_at(self, rcp: Rcp) -> int:
        return rcp.starts_at - self.days * DAY_MS

    async def run(self) -> None:
        """Passes, each followed by a sleep until the next agenda's moment (at most CHECK_SECONDS)."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 — one failed pass never stops the agendas
                log.exception("rcp.agenda_failed")
            now = self.s.clock.now_ms()
            wake = now + CHECK_SECONDS * 1000
            for rcp in await meetings(self.s).planned():
                if rcp.agenda_sent < rcp.agenda_version and self.goes_out_at(rcp) > now:
                    wake = min(wake, self.goes_out_at(rcp))
            await self.s.clock.sleep_until(datetime.fromtimestamp(wake / 1000, tz=timezone.utc))

    async def run_once(self) -> int:
        """Send the agendas whose moment has come (or that changed since), and finish the minutes a crash left
        half out; how many meetings."""
        from bot.rcp_minutes import publish   # the minutes read this module's ports
        now, sent = self.s.clock.now_ms(), 0
        for closed in await meetings(self.s).unpublished():
            await publish(self.s, closed)
            sent += 1
        for rcp in await meetings(self.s).planned():
            if rcp.agenda_sent < rcp.agenda_version and self.goes_out_at(rcp) <= now:
                await self.send(rcp)
                sent += 1
        return sent

    async def changed(self, rcp: Rcp) -> None:
        """After a command changed the meeting: the agenda again now, when it has already gone out (or is due)."""
        fresh = await meetings(self.s).get(rcp.id)
        if fresh.state == "prevue" and fresh.agenda_sent < fresh.agenda_version \
                and self.goes_out_at(fresh) <= self.s.clock.now_ms():
            await self.send(fresh)

    async def send(self, rcp: Rcp, *, cancelled: bool = False) -> None:
        async with self._lock:
            store = meetings(self.s)
            rcp = await store.get(rcp.id)
            version = rcp.agenda_version
            what = f"annulation:{version}" if cancelled else f"agenda:{version}"
            items = await store.items(rcp.id)
            pathways = await self.s.pathways.pathways({i.pathway_id for i in items})
            cases = [(i, pathways[i.pathway_id]) for i in items]
            again = rcp.agenda_sent > 0
            posted = await self._patient_rooms(rcp, cases, what, again, cancelled)
            await self._coordination(rcp, cases, what, again, cancelled)
            for p in await store.participants(rcp.id):
                try:
                    if p.external:
                        await self._by_mail(rcp, cases, posted, p.address, what, cancelled)
                    else:
                        await self._direct(rcp, cases, p.address, what, again, cancelled)
                except MatrixError as err:   # one participant's room failing never stops the others'
                    log.warning("rcp.participant_failed", rcp_id=rcp.id, error=str(err)[:200])
            if not cancelled:
                await store.agenda_sent(rcp, version)
            log.info("rcp.agenda_sent", rcp_id=rcp.id, version=version, cases=len(cases), cancelled=cancelled)

    async def _patient_rooms(self, rcp: Rcp, cases: list[tuple[Item, Pathway]], what: str, again: bool,
                             cancelled: bool) -> dict[str, str]:
        """Each case in its patient's clinical room; the event ids posted now (a mail's thread starts there)."""
        store, posted = meetings(self.s), {}
        for item, pathway in cases:
            room = pathway.room_id
            if pathway.status != "open" or room is None or await store.was_sent(rcp.id, what, room):
                continue
            decided = await decide_at(self.s.sharing, "rcp.agenda", pathway=pathway, recipient=self.s.matrix.user_id,
                                      actor=rcp.created_by, room_kind="clinical")
            if not decided.allowed:
                continue
            if cancelled:
                text = f"{heading(rcp)} : annulée. Le cas de ce patient n'y sera pas discuté (trace {decided.trace})."
            else:
                title = "Ordre du jour modifié" if again else "Ordre du jour"
                text = (f"{title} — {heading(rcp)} : le cas de ce patient est inscrit (n° {item.number}, "
                        f"trace {decided.trace}) :\n{item.question}")
            posted[item.id] = await self.s.matrix.send(room, notice(text), txn_id(rcp.id, what, room))
            await store.sent(rcp.id, what, room)
        return posted

    async def _coordination(self, rcp: Rcp, cases: list[tuple[Item, Pathway]], what: str, again: bool,
                            cancelled: bool) -> None:
        room = await self.s.mail.setting(QUARANTINE_ROOM) if self.s.mail is not None else None
        store = meetings(self.s)
        if room is None or await store.was_sent(rcp.id, what, room):
            return
        if cancelled:
            text = f"{heading(rcp)} : annulée ; les salons des patients et les participants sont prévenus."
        else:
            lines = []
            for item, pathway in cases:
                decided = await decide_at(self.s.sharing, "rcp.agenda", pathway=pathway, recipient=rcp.created_by,
                                          actor=rcp.created_by, room_kind="coordination")
                lines.append(item_line(item, pathway.code, decided.allowed))
            title = "Ordre du jour modifié" if again else "Ordre du jour"
            text = f"{title} — {heading(rcp)} :\n" + ("\n".join(lines) if lines else "aucun cas inscrit.")
        await self.s.matrix.send(room, notice(text), txn_id(rcp.id, what, room))
        await store.sent(rcp.id, what, room)

    async def _direct(self, rcp: Rcp, cases: list[tuple[Item, Pathway]], user_id: str, what: str, again: bool,
                      cancelled: bool) -> None:
        store = meetings(self.s)
        if await store.was_sent(rcp.id, what, user_id):
            return
        lines = []
        if not cancelled:
            for item, pathway in cases:
                decided = await decide_at(self.s.sharing, "rcp.invite", pathway=pathway, recipient=user_id,
                                          actor=rcp.created_by)
                lines.append(item_line(item, pathway.code, decided.allowed))
        room = await self.direct.of(user_id)
        ics = invitation(uid=rcp.id, code=rcp.code, starts_at_ms=rcp.starts_at, place=rcp.place, title=rcp.title,
                         lines=lines, sequence=rcp.agenda_version, now_ms=self.s.clock.now_ms(),
                         cancelled=cancelled)
        if cancelled:
            text = f"{heading(rcp)} : annulée. L'invitation jointe la retire de votre agenda."
        else:
            title = "Invitation modifiée" if again else "Invitation"
            text = (f"{title} — {heading(rcp)}. Ordre du jour :\n" + ("\n".join(lines) or "aucun cas inscrit.") +
                    "\nL'invitation jointe (.ics) s'ouvre dans votre agenda.")
        await self.s.matrix.send(room, notice(text), txn_id(rcp.id, what, room, "text"))
        await self.s.matrix.send_file(room, ics.encode(), f"rcp-{rcp.code}.ics", "text/calendar",
                                      txn_id(rcp.id, what, room, "ics"))
        await store.sent(rcp.id, what, user_id)

    async def _by_mail(self, rcp: Rcp, cases: list[tuple[Item, Pathway]], posted: dict[str, str], address: str,
                       what: str, cancelled: bool) -> None:
        """The invitation (pathway codes only: it leaves without a pathway), then each case they may read."""
        store = meetings(self.s)
        if await store.was_sent(rcp.id, what, address):
            return
        codes = [f"{item.number}. {pathway.code}" for item, pathway in cases]
        ics = invitation(uid=rcp.id, code=rcp.code, starts_at_ms=rcp.starts_at, place=rcp.place, title=rcp.title,
                         lines=[] if cancelled else codes, sequence=rcp.agenda_version,
                         now_ms=self.s.clock.now_ms(), cancelled=cancelled)
        state = "annulée" if cancelled else f"le {when(rcp.starts_at)}"
        body = (f"Réunion de concertation pluriprofessionnelle {rcp.code} {state}"
                + (f", {rcp.place}" if rcp.place and not cancelled else "") + ".\n"
                + ("" if cancelled else "Cas inscrits (codes de parcours) :\n" + ("\n".join(codes) or "aucun") +
                   "\nChaque cas que vous pouvez lire vous est envoyé dans un courriel à part, dans le fil de son "
                   "parcours.\n") + "L'invitation jointe (.ics) s'ouvre dans votre agenda.")
        await store.add_mail(RcpMail(txn_id(rcp.id, what, address, "invitation"), rcp.id, "invitation", address,
                                     None, None, None, rcp.created_by, f"RCP {rcp.code} : invitation", body, ics))
        for item, pathway in ([] if cancelled else cases):
            decided = await decide_at(self.s.sharing, "rcp.mail", pathway=pathway, recipient=address,
                                      actor=rcp.created_by)
            if not decided.allowed:
                continue
            text = (f"Réunion de concertation pluriprofessionnelle {rcp.code} du {when(rcp.starts_at)}.\n"
                    f"Cas n° {item.number}, parcours {pathway.code} : question posée à la réunion :\n{item.question}")
            await store.add_mail(RcpMail(txn_id(rcp.id, what, address, item.id), rcp.id, "agenda", address,
                                         pathway.id, pathway.room_id, posted.get(item.id), rcp.created_by,
                                         f"Parcours {pathway.code} : ordre du jour de la RCP {rcp.code}", text, None))
        await store.sent(rcp.id, what, address)
