"""`!doc envoyer`: an indexed document of the room, packed as IHE_XDM.ZIP for an external MSSanté address.

The bot decided and traced the share; here the file is fetched again from the media repository,
decrypted, checked against the hash kept in the index, and packed with the patient's INS and the
professional who asked as author. Nothing of the document is logged.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from bridge.deps import BridgeSettings
from bridge.mail_out import OutAttachment
from bridge.ports import BridgeMatrix
from bridge.xdm import XdmAuthor, XdmOut, mss_headers, write_xdm
from liaison.clock import Clock
from liaison.stores.documents import Document, DocumentStore
from liaison.stores.mail import Request
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.roster import Roster, RosterMember
from liaison.sniff import extension
from policies.documents import DocType, doctype_of, send_code
from policies.sharing import Knobs

XDM_NAME = "IHE_XDM.ZIP"
_TITLES = re.compile(r"^(?:dr|dr\.|docteure?|pr|pr\.|professeure?|mme|mme\.|m\.|mr|mlle)\s+", re.IGNORECASE)


class PackPorts(Protocol):
    """What packing a document uses: the index, the media repository (by the bridge's account), the size limits,
    the patient's INS, the author from the team, the structure's OID and the date."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def knobs(self) -> Knobs: ...

    @property
    def documents(self) -> DocumentStore: ...

    @property
    def matrix(self) -> BridgeMatrix: ...

    @property
    def pathways(self) -> PathwayStore: ...

    @property
    def roster(self) -> Roster: ...

    @property
    def clock(self) -> Clock: ...


class Unsendable(Exception):
    """The document cannot leave (gone from the index, altered, no valid INS…): `reason` in French."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Packed:
    document: Document
    doctype: DocType
    attachment: OutAttachment
    headers: dict[str, str]     # X-MSS-INS / X-MSS-CODECDA, only for a CDA carrying the INS


def author_of(member: RosterMember | None, user_id: str, structure: str) -> XdmAuthor:
    """The XDM author: the roster member who asked (RPPS when their professional id is one)."""
    if member is None:
        local = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
        return XdmAuthor(name=local, given="", family=local, institution=structure)
    name = " ".join(member.display_name.split())
    words = _TITLES.sub("", name).split()
    given, family = (words[0], " ".join(words[1:])) if len(words) > 1 else ("", " ".join(words) or name)
    rpps = member.professional_id if re.fullmatch(r"\d{11}", member.professional_id or "") else None
    return XdmAuthor(name=name, given=given, family=family, rpps=rpps, institution=member.structure or structure,
                     profession=member.profession_label)


async def pack(d: PackPorts, r: Request, pathway: Pathway) -> Packed:
    """The IHE_XDM.ZIP of the request's document; Unsendable when it must not leave, MatrixError/OSError
    when the media repository did not answer (tried again later)."""
    doc = await d.documents.get(r.document_id or "")
    if doc is None or doc.pathway_id != r.pathway_id or doc.state != "indexed" or not doc.sha256:
        raise Unsendable("document.not_indexed", "le document demandé n'est pas (ou plus) dans l'index de ce "
                                                 "parcours")
    limit = max(d.settings.max_mail_bytes, d.knobs.document_max_mib * 1024 * 1024)
    data = await d.matrix.download(doc.file, limit)
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise Unsendable("document.hash_mismatch",
                         f"le fichier du document n° {doc.number} ne correspond plus à son empreinte enregistrée "
                         "à l'indexation : il a pu être altéré et n'est pas envoyé")
    doctype = doctype_of(doc.doctype)
    code, display = send_code(doctype, doc.type_code)
    out = XdmOut(data=data, mime_type=doc.mime or "application/octet-stream", title=doc.title, type_code=code,
                 type_display=display, filename_ext=extension(doc.mime) or "bin")
    patient = await d.pathways.patient(pathway.patient_id)
    s = d.settings
    author = author_of(await d.roster.get(r.sender), r.sender, s.structure or s.display_name)
    try:
        # Deflating up to the document limit (10 MiB and more) and checking the metadata: off the event loop, which
        # keeps relaying mail meanwhile.
        archive = await asyncio.to_thread(write_xdm, [out], patient_ins=patient.ins, patient_oid=patient.ins_oid,
                                          author=author, source_id=s.source_oid,
                                          title=f"Parcours {pathway.code} : {doctype.label}", now=d.clock.now())
        headers = mss_headers([out])
    except ValueError as err:   # XdmError included: its message is already a French sentence
        raise Unsendable("document.xdm_invalid", str(err).rstrip(".")) from None
    return Packed(doc, doctype, OutAttachment(XDM_NAME, "application/zip", archive), headers)


def subject(pathway: Pathway, packed: Packed) -> str:
    """No patient identity in a subject line: the pathway's code and the document's type."""
    return f"Parcours {pathway.code} : {packed.doctype.label}"


def default_text(packed: Packed) -> str:
    return (f"Bonjour,\n\nVeuillez trouver ci-joint un document ({packed.doctype.label.lower()}) transmis par "
            "l'équipe de soins, au format IHE XDM (IHE_XDM.ZIP).\n\nBien cordialement.")
