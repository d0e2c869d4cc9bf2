"""`!trace` (J10): who received what about this patient, on which basis — from the hash-chained trace."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from bot.ports import MatrixRooms, TracePort
from bot.registry import Audience, Context, Reply, command
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import txn_id
from liaison.sharing_facts import SharingStores

ACTIONS = {"inviter": "invitation", "retirer": "retrait", "archiver": "archivage", "relayer": "relais",
           "envoyer": "envoi de document", "exporter": "export de la trace"}


class AuditPorts(Protocol):
    """What `!trace` reads: the export's decision, the trace, the clock, and the room it sends the file to."""
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def trace(self) -> TracePort: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def matrix(self) -> MatrixRooms: ...


@command("trace", patient_data=True, en="audit", who=Audience.COORDINATOR, room="pathway",
         help="Exporte la trace des partages concernant le patient de ce salon (résumé + fichier JSON chiffré).")
async def trace(ctx: Context[AuditPorts]) -> Reply:
    pathway = ctx.room_pathway
    decided = await decide_at(ctx.services.sharing, "trace.export", pathway=pathway, recipient=ctx.sender, actor=ctx.sender)
    if not decided.allowed:
        return Reply.plain(decided.decision.reason)
    entries = await ctx.services.trace.entries(pathway.patient_id)
    check = await ctx.services.trace.verify()
    lines = [f"{_when(e.at)} — {ACTIONS.get(e.action, e.action)} : {e.subject}, par {e.actor} — "
             f"{'autorisé' if e.allowed else 'refusé'} ({e.rule}, {e.basis or '—'}) [n° {e.seq}]" for e in entries]
    integrity = (f"Chaînage vérifié ({check.entries} entrées)." if check.ok
                 else f"ATTENTION : la trace est altérée à partir de l'entrée {check.first_bad}.")
    export = json.dumps({"patient_id": pathway.patient_id, "generated_at": _when(ctx.services.clock.now_ms()), "integrity_ok": check.ok,
                         "entries": [e.__dict__ for e in entries]}, ensure_ascii=False, indent=2).encode()
    await ctx.services.matrix.send_file(ctx.room_id, export, f"trace-{pathway.code}.json", "application/json",
                                        txn_id(ctx.event_id, "trace-file"))
    return Reply.plain(f"Trace des partages pour ce patient ({len(entries)} entrées ; fichier JSON joint) :\n"
                       + "\n".join(lines) + f"\n{integrity}")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%d/%m/%Y %H:%M")


ALL = [trace]
