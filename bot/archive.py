"""The daily job: a pathway past its retention is exported, emptied and forgotten.

The export (every message the bot can read, with the identity, the summary and the care plan with its versions) goes
to the
coordinator who closed the pathway (decided then, another coordinator if they no longer are one)
as an encrypted file in a direct room; then everyone is removed from the clinical and the circle
rooms (people, MSSanté puppets, the bridge), the bot leaves them and drops their room keys, and
the pathway's rows that retention covers are deleted: what each store declares (liaison/stores/retention.py: summary,
documents index, mail threads and correspondents, requests, quarantined mails routed to it). The trace is kept.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog

from bot.ports import MatrixRooms, RosterPort
from bot.rcp_text import when as rcp_when
from bot.reply import when as _when
from bot.services import PathwaySettings
from bot.store import BotStore
from bot.room_specs import BOT_ONLY, power_levels, room_initial_state
from liaison.clock import Clock
from liaison.enforcement import Decided, decide_at
from liaison.matrix import MatrixError, txn_id
from liaison.sharing_facts import SharingStores
from liaison.stores.rcp import STATES, RcpStore
from liaison.stores.care_plan import GOAL_STATES, CarePlanStore
from liaison.stores.pathways import SUMMARY_FIELDS, Pathway, PathwayStore, Patient
from liaison.stores.retention import Retention, forget_pathway, shared
from policies.gender import born

log = structlog.get_logger(__name__)

# Every store that holds a pathway's rows: what the archive forgets (tests/test_retention.py checks none is missed).
RETAINED: tuple[Retention, ...] = (*shared(), BotStore.RETENTION)


_DONE_AS = {"objectif": "objectif ajouté", "atteint": "objectif atteint", "abandonne": "objectif abandonné",
            "referent": "référent désigné", "mots": "mots du patient notés", "clos": "plan clos avec le parcours"}


class ArchivePorts(Protocol):
    """What archiving a pathway reads and does."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def matrix(self) -> MatrixRooms: ...
    @property
    def settings(self) -> PathwaySettings: ...
    @property
    def roster(self) -> RosterPort: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def rcp(self) -> RcpStore | None: ...
    @property
    def care_plans(self) -> CarePlanStore: ...


class Archiver:
    def __init__(self, services: ArchivePorts, bot_store: BotStore | None = None,
                 retained: Sequence[Retention] = RETAINED) -> None:
        self.s, self.retained = services, tuple(retained)
        self.bot_store = bot_store or BotStore(services.pathways.engine)   # where the archive rooms are kept

    async def run_once(self) -> int:
        ids = await self.s.pathways.past_retention(self.s.clock.now_ms())
        done = 0
        for pathway_id in ids:
            try:
                await self.archive(await self.s.pathways.pathway(pathway_id))
                done += 1
            except MatrixError as err:
                log.warning("archive.failed", pathway_id=pathway_id, error=str(err))
        return done

    async def archive(self, pathway: Pathway) -> None:
        """The export to the coordination (decided now), then every room of the pathway emptied — people,
        puppets, the bridge — and forgotten, and the patient's rows that retention covers deleted; the trace stays."""
        store, matrix, bot = self.s.pathways, self.s.matrix, self.s.settings.bot_user_id
        recipient, decided = await self._recipient(pathway)
        if decided.allowed:
            export = await self._export(pathway, await store.patient(pathway.patient_id))
            dm = await self._archive_room(recipient)
            await matrix.send_file(dm, export, f"archive-{pathway.code}.txt", "text/plain; charset=utf-8",
                                   txn_id(pathway.id, "archive"))
        else:
            log.warning("archive.no_recipient", pathway_id=pathway.id, rule=decided.decision.rule)
        for room in filter(None, (pathway.room_id, pathway.circle_room_id)):
            for user_id in await matrix.members(room) - {bot}:
                try:
                    await matrix.kick(room, user_id, "Parcours archivé (délai de conservation écoulé).")
                except MatrixError:
                    pass   # already gone
            await matrix.forget_room(room)
        for user_id, state, _rule in await store.members(pathway.id):
            if state in ("invited", "joined", "circle"):
                await store.set_member(pathway.id, user_id, "left", "archive.coordination")
        await store.update(pathway.id, status="archived")
        deleted = await forget_pathway(store.engine, self.retained, pathway.id)
        log.info("archive.done", pathway_id=pathway.id, exported=decided.allowed, rows_deleted=deleted)

    async def _recipient(self, pathway: Pathway) -> tuple[str, Decided]:
        """Who closed it, if still of the coordination; otherwise another coordinator. Decided and traced."""
        first = pathway.closed_by or pathway.opened_by
        others = [m.user_id for m in await self.s.roster.members() if m.coordinator and m.user_id != first]
        for user_id in [first, *others]:
            decided = await decide_at(self.s.sharing, "archive.export", pathway=pathway, recipient=user_id,
                                      actor=self.s.settings.bot_user_id)
            if decided.allowed:
                return user_id, decided
        return first, decided

    async def _export(self, pathway: Pathway, patient: Patient) -> bytes:
        label = self.s.settings.type_label(pathway.type)
        fields = await self.s.pathways.summary(pathway.id)
        lines = [f"Archive du parcours {label} ({pathway.code})",
                 f"Patient : {patient.birth_name.upper()} {patient.first_names}, {born(patient.sex)} le "
                 f"{patient.birth_date:%d/%m/%Y}, INS {patient.ins} (OID {patient.ins_oid})",
                 f"Ouvert le {_when(pathway.opened_at)} par {pathway.opened_by} ; clos le {_when(pathway.closed_at)}"
                 f" ({pathway.close_reason or '—'})"]
        lines += [f"{name} : {fields.get(key, ('—', 0))[0]}" for key, name in SUMMARY_FIELDS.items()]
        for rcp, item in await self.s.rcp.items_of_pathway(pathway.id) if self.s.rcp is not None else []:
            lines.append(f"RCP {rcp.code} du {rcp_when(rcp.starts_at)} ({STATES[rcp.state]}), cas n° {item.number} : "
                         f"{item.question}" + (" — compte rendu dans l'historique ci-dessous" if item.minutes_event
                                               else ""))
        lines += await self._plan(pathway)
        lines.append("")
        for m in await self.s.matrix.history(pathway.room_id) if pathway.room_id else []:
            body = m["body"] if m["body"] is not None else "[message que le bot ne peut pas déchiffrer]"
            lines.append(f"{_when(m['ts'])} — {m['sender']} : {body}")
        return ("\n".join(lines) + "\n").encode("utf-8")

    async def _plan(self, pathway: Pathway) -> list[str]:
        """The care plan (PPCS) as it ended, then each of its versions: who changed what, when."""
        plan = await self.s.care_plans.plan(pathway.id)
        if plan.empty:
            return []
        lines = ["", f"Plan personnalisé de coordination (PPCS), version {plan.version}",
                 f"Référent : {plan.referent or '—'}", f"Ce qui compte pour moi (mots du patient) : {plan.words or '—'}"]
        lines += [f"Objectif n° {g.number} ({GOAL_STATES[g.state]}, ajouté le {_when(g.created_at)} par "
                  f"{g.created_by}) : {g.text}" for g in plan.goals]
        lines.append("Versions du plan :")
        for v in await self.s.care_plans.versions(pathway.id):
            goal = f" n° {v.goal}" if v.goal is not None else ""
            detail = f" : {v.detail}" if v.detail and v.what in ("referent", "mots", "objectif") else ""
            lines.append(f"v{v.version} {_when(v.at)} — {_DONE_AS.get(v.what, v.what)}{goal}, par {v.actor}{detail}")
        return lines

    async def _archive_room(self, user_id: str) -> str:
        """The coordinator's own « Archives Liaison » room: the bot and them, nobody else. One where anyone else
        is (invited by them, or by a homeserver admin) is not used again: a new one is made."""
        bot = self.s.settings.bot_user_id
        known = await self.bot_store.archive_room(user_id)
        if known:
            try:
                others = await self.s.matrix.members(known) - {bot, user_id}
            except MatrixError:
                others = {"?"}   # left, or forgotten: not a room the bot can vouch for
            if not others:
                return known
            log.warning("archive.room_not_private", members=len(others))
        room_id = await self.s.matrix.create_room(
            name="Archives Liaison", topic="Archives des parcours clos (fichiers chiffrés).",
            initial_state=room_initial_state(), power_levels=power_levels(bot, [], invite=BOT_ONLY),
            invite=[user_id])
        await self.bot_store.set_archive_room(user_id, room_id)
        return room_id
