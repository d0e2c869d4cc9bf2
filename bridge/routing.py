"""Which room a mail goes to: pure, over what the caller looked up.

In order: the thread the bridge already knows (only for a party of that thread: citing its
Message-IDs does not make one), the patient's INS in the IHE XDM metadata, the pathway's
sub-address (`liaison+P-7K3Q9@…`). Anything else goes to quarantine, and so does a mail whose
INS contradicts the pathway it names, or whose thread and sub-address name two pathways.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PathwayRef:
    id: str
    code: str
    patient_id: str
    room_id: str
    open: bool


def ref(p) -> PathwayRef:
    """A pathway row (liaison.stores.pathways) as routing sees it."""
    return PathwayRef(p.id, p.code, p.patient_id, p.room_id or "", p.status == "open")


@dataclass(frozen=True)
class Route:
    pathway: PathwayRef
    thread_root: str | None   # an existing Matrix thread, or None for a new one
    how: str                  # French: why this room
    note: str = ""            # French: something the room should know (several pathways…)
    basis: str = "subaddress"  # what the route rests on: thread, ins, subaddress, hand (see MailStore.add_correspondent)
    by: str = ""              # hand: the coordinator who routed it (the decision's actor)


@dataclass(frozen=True)
class Quarantine:
    code: str
    reason: str


@dataclass(frozen=True)
class Lookup:
    """What the caller found for one mail."""
    trusted: bool
    thread: tuple[PathwayRef, str] | None = None        # (pathway, thread root) from In-Reply-To/References,
                                                        # only when the sender is a party of that thread
    foreign_thread: bool = False                        # it cites a thread it is not a party of
    xdm_patient: str | None = None                      # the patient id the XDM's INS belongs to, if known
    xdm_ins_unknown: bool = False                       # an INS is there, but no such patient
    xdm_test_identity: bool = False                     # its INS is under a test OID, and we are not in test mode
    patient_pathways: tuple[PathwayRef, ...] = ()       # that patient's open pathways, most recently active first
    subaddress_code: str | None = None
    subaddress_pathway: PathwayRef | None = None


def subaddress_code(recipients: tuple[str, ...], bridge_address: str) -> str | None:
    """`liaison+P-7K3Q9@msp.mssante.fr` → "P-7K3Q9" when the base address is the bridge's."""
    local, _, domain = bridge_address.lower().partition("@")
    for rcpt in recipients:
        r_local, _, r_domain = rcpt.lower().partition("@")
        if r_domain == domain and r_local.startswith(local + "+") and len(r_local) > len(local) + 1:
            return r_local[len(local) + 1:].upper()
    return None


def route(x: Lookup) -> Route | Quarantine:
    if not x.trusted:
        return Quarantine("untrusted", "l'expéditeur n'appartient pas à l'espace de confiance MSSanté (liste blanche)")
    if x.xdm_test_identity:
        return Quarantine("test_identity", "l'INS du document est un identifiant de test (OID de test) alors que la "
                                           "structure n'est pas en mode test : il ne désigne aucun patient réel")
    if x.xdm_ins_unknown:
        return Quarantine("unknown_patient", "l'INS du document ne correspond à aucun patient suivi par la structure")
    if x.thread:
        pathway, root = x.thread
        if x.xdm_patient and x.xdm_patient != pathway.patient_id:
            return _mismatch()
        if x.subaddress_code and (x.subaddress_pathway is None or x.subaddress_pathway.id != pathway.id):
            return Quarantine("thread_conflict", "le fil de discussion cité et l'adresse du parcours désignent deux "
                                                 "parcours différents")
        if pathway.open:
            return Route(pathway, root, "suite d'un échange déjà dans ce salon", basis="thread")
    if x.xdm_patient:
        if x.subaddress_pathway and x.subaddress_pathway.patient_id != x.xdm_patient:
            return _mismatch()
        if x.subaddress_pathway and x.subaddress_pathway.open:
            return Route(x.subaddress_pathway, None, "selon l'INS du document et l'adresse du parcours", basis="ins")
        if not x.patient_pathways:
            return Quarantine("no_pathway", "aucun parcours ouvert pour le patient désigné par l'INS du document")
        chosen = x.patient_pathways[0]
        note = ""
        if len(x.patient_pathways) > 1:
            others = ", ".join(p.code for p in x.patient_pathways[1:])
            note = (f"Ce patient a plusieurs parcours ouverts ({chosen.code}, {others}) : courriel déposé dans le "
                    "plus récemment actif. Pour viser un parcours, l'expéditeur peut écrire à son adresse "
                    f"(liaison+{chosen.code}@…).")
        return Route(chosen, None, "selon l'INS du document", note, basis="ins")
    if x.subaddress_code:
        if x.subaddress_pathway and x.subaddress_pathway.open:
            return Route(x.subaddress_pathway, None, "selon l'adresse du parcours")
        return Quarantine("unknown_pathway", f"l'adresse vise le parcours {x.subaddress_code}, inconnu ou clos")
    return Quarantine("unroutable", "ni fil de discussion connu, ni INS dans un document IHE XDM, ni adresse de "
                                    "parcours : impossible de savoir de quel patient il s'agit")


def _mismatch() -> Quarantine:
    return Quarantine("ins_mismatch", "l'INS du document ne correspond pas au patient du parcours visé")
