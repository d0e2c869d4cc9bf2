"""The daily job: a pathway past its retention is exported, emptied and forgotten.

The export (every message the bot can read, with the identity and summary) goes to the
coordinator who closed the pathway as an encrypted file in a direct room; then the members
are removed, and the bot leaves the room and drops the room keys it holds.
"""
from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text

from bot.reply import when as _when
from liaison.pathway_store import SUMMARY_FIELDS, Pathway, now_ms
from liaison.matrix import MatrixError, txn_id
from policies.decision import Allow

log = structlog.get_logger(__name__)
ARCHIVE_RULE = Allow("pathway.archive", "Délai de conservation écoulé : le parcours est archivé.",
                     "RGPD art. 5.1.e (limitation de la conservation)")


class Archiver:
    def __init__(self, services) -> None:
        self.s = services

    async def loop(self, interval_s: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("archive.run_failed")
            await asyncio.sleep(interval_s)

    async def run_once(self) -> int:
        async with self.s.pathways.engine.connect() as conn:
            ids = [r.id for r in await conn.execute(text(
                "SELECT id FROM pathway WHERE status = 'closed' AND retention_until <= :now"), {"now": now_ms()})]
        done = 0
        for pathway_id in ids:
            try:
                await self.archive(await self.s.pathways.pathway(pathway_id))
                done += 1
            except MatrixError as err:
                log.warning("archive.failed", pathway_id=pathway_id, error=str(err))
        return done

    async def archive(self, pathway: Pathway) -> None:
        store, matrix = self.s.pathways, self.s.matrix
        patient = await store.patient(pathway.patient_id)
        export = await self._export(pathway, patient)
        recipient = pathway.closed_by or pathway.opened_by
        dm = await self._archive_room(recipient)
        await matrix.send_file(dm, export, f"archive-{pathway.code}.txt", "text/plain; charset=utf-8",
                               txn_id(pathway.id, "archive"))
        for user_id, state, _rule in await store.members(pathway.id):
            if state in ("invited", "joined"):
                try:
                    await matrix.kick(pathway.room_id, user_id, "Parcours archivé (délai de conservation écoulé).")
                except MatrixError:
                    pass   # already gone
                await store.set_member(pathway.id, user_id, "left", ARCHIVE_RULE.rule)
        await matrix.forget_room(pathway.room_id)
        await store.update(pathway.id, status="archived")
        await self.s.trace.append(actor=self.s.settings.bot_user_id, action="archiver", subject=recipient,
                          decision=ARCHIVE_RULE, patient_id=patient.id, pathway_id=pathway.id)
        log.info("archive.done", pathway_id=pathway.id, bytes=len(export))

    async def _export(self, pathway: Pathway, patient) -> bytes:
        label = self.s.settings.type_label(pathway.type)
        fields = await self.s.pathways.summary(pathway.id)
        lines = [f"Archive du parcours {label} ({pathway.code})",
                 f"Patient : {patient.birth_name.upper()} {patient.first_names}, né(e) le "
                 f"{patient.birth_date:%d/%m/%Y}, INS {patient.ins} (OID {patient.ins_oid})",
                 f"Ouvert le {_when(pathway.opened_at)} par {pathway.opened_by} ; clos le {_when(pathway.closed_at)}"
                 f" ({pathway.close_reason or '—'})"]
        lines += [f"{name} : {fields.get(key, ('—', 0))[0]}" for key, name in SUMMARY_FIELDS.items()]
        lines.append("")
        for m in await self.s.matrix.history(pathway.room_id):
            body = m["body"] if m["body"] is not None else "[message que le bot ne peut pas déchiffrer]"
            lines.append(f"{_when(m['ts'])} — {m['sender']} : {body}")
        return ("\n".join(lines) + "\n").encode("utf-8")

    async def _archive_room(self, user_id: str) -> str:
        store, matrix = self.s.pathways, self.s.matrix
        async with store.engine.connect() as conn:
            row = (await conn.execute(text("SELECT room_id FROM archive_room WHERE user_id = :u"),
                                      {"u": user_id})).first()
        if row:
            return row.room_id
        room_id = await matrix.create_room(
            name="Archives Liaison", topic="Archives des parcours clos (fichiers chiffrés).",
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
            power_levels=None, invite=[user_id])
        async with store.engine.begin() as conn:
            await conn.execute(text("INSERT INTO archive_room (user_id, room_id) VALUES (:u, :r)"),
                               {"u": user_id, "r": room_id})
        return room_id
