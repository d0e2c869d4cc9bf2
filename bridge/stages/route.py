"""Stage 3: which pathway room, from what the bridge knows of the mail's thread, the patient's INS in its archive
and the pathway's sub-address (the rules themselves are pure: bridge/routing.py)."""
from __future__ import annotations

import structlog

from bridge.deps import Deps
from bridge.routing import Lookup, Quarantine, Route, ref, route as choose, subaddress_code
from bridge.stages.judge import Judged
from bridge.stages.outcome import Outcome

log = structlog.get_logger(__name__)


async def route(d: Deps, judged: Judged) -> Route | Outcome:
    where = choose(await lookup(d, judged))
    if isinstance(where, Quarantine):
        return Outcome.quarantined(where, judged.mail.from_address, judged.trusted)
    return where


async def lookup(d: Deps, judged: Judged) -> Lookup:
    mail, xdm = judged.mail, judged.xdm
    ids = [i for i in (mail.in_reply_to, *reversed(mail.references)) if i]
    thread = await d.mail.thread_of_message(ids) if ids else None
    foreign = bool(thread) and mail.from_address.lower() not in await d.mail.thread_parties(thread.thread_root)
    if foreign:   # quoting a thread's Message-IDs (they travel in every References) makes no one a party
        log.info("mail.in_foreign_thread", pathway_id=thread.pathway_id)
        thread = None
    thread_ref = (ref(await d.pathways.pathway(thread.pathway_id)), thread.thread_root) if thread else None
    patient_id, unknown, pathways = None, False, ()
    if xdm is not None and xdm.documents:
        patient = await d.pathways.patient_by_ins(xdm.documents[0].patient_ins)
        if patient is None:
            unknown = True
        else:
            patient_id = patient.id
            pathways = tuple(ref(p) for p in await d.pathways.open_for_patient(patient.id))
    code = subaddress_code(mail.to, d.settings.address)
    sub = await d.pathways.by_code(code) if code else None
    return Lookup(trusted=judged.trusted, thread=thread_ref, foreign_thread=foreign, xdm_patient=patient_id,
                  xdm_ins_unknown=unknown, patient_pathways=pathways, subaddress_code=code,
                  subaddress_pathway=ref(sub) if sub else None)
