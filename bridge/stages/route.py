"""Stage 3: which pathway room, from what the bridge knows of the mail's thread, the patient's INS in its archive
and the pathway's sub-address (the rules themselves are pure: bridge/routing.py)."""
from __future__ import annotations

from typing import Protocol

import structlog

from bridge.deps import BridgeSettings
from bridge.routing import Lookup, PathwayRef, Quarantine, Route, ref, route as choose, subaddress_code
from bridge.stages.judge import Judged
from bridge.stages.outcome import Outcome
from liaison.stores.mail import MailStore
from liaison.stores.pathways import PathwayStore
from policies.ins import OID_INS_NIA_TEST, OID_INS_NIR_TEST

TEST_OIDS = frozenset({OID_INS_NIR_TEST, OID_INS_NIA_TEST})

log = structlog.get_logger(__name__)


class RoutePorts(Protocol):
    """What routing reads: the mail threads, the pathways and patients, the mailbox's address (sub-addresses)."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def mail(self) -> MailStore: ...

    @property
    def pathways(self) -> PathwayStore: ...


async def route(d: RoutePorts, judged: Judged) -> Route | Outcome:
    where = choose(await lookup(d, judged))
    if isinstance(where, Quarantine):
        return Outcome.quarantined(where, judged.mail.from_address, judged.trusted)
    return where


async def lookup(d: RoutePorts, judged: Judged) -> Lookup:
    mail, xdm = judged.mail, judged.xdm
    ids = [i for i in (mail.in_reply_to, *reversed(mail.references)) if i]
    thread, foreign = await d.mail.thread_of_message(ids) if ids else None, False
    if thread is not None and mail.from_address.lower() not in await d.mail.thread_parties(thread.thread_root):
        # quoting a thread's Message-IDs (they travel in every References) makes no one a party
        log.info("mail.in_foreign_thread", pathway_id=thread.pathway_id)
        thread, foreign = None, True
    thread_ref = (ref(await d.pathways.pathway(thread.pathway_id)), thread.thread_root) if thread else None
    patient_id, unknown, test_identity = None, False, False
    pathways: tuple[PathwayRef, ...] = ()
    if xdm is not None and xdm.documents and xdm.documents[0].patient_oid in TEST_OIDS:
        test_identity = not d.settings.ins_test_mode   # a test identity names no real patient
    if xdm is not None and xdm.documents and not test_identity:
        patient = await d.pathways.patient_by_ins(xdm.documents[0].patient_ins)
        if patient is None:
            unknown = True
        else:
            patient_id = patient.id
            pathways = tuple(ref(p) for p in await d.pathways.open_for_patient(patient.id))
    code = subaddress_code(mail.to, d.settings.address)
    sub = await d.pathways.by_code(code) if code else None
    return Lookup(trusted=judged.trusted, thread=thread_ref, foreign_thread=foreign, xdm_patient=patient_id,
                  xdm_ins_unknown=unknown, xdm_test_identity=test_identity, patient_pathways=pathways, subaddress_code=code,
                  subaddress_pathway=ref(sub) if sub else None)
