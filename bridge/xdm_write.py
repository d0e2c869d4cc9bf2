"""Write an IHE XDM package (IHE_XDM.ZIP) for documents sent by Liaison (pure: values in, bytes out)."""
from __future__ import annotations

import hashlib
import html
import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.etree.ElementTree import Element, SubElement, tostring

from bridge.xdm_meta import (
    CLASSIFICATION_TYPE, DOC_AUTHOR, DOC_CLASS, DOC_CONFIDENTIALITY, DOC_FACILITY, DOC_FORMAT,
    DOC_PATIENT_ID, DOC_PRACTICE, DOC_TYPE, DOC_UNIQUE_ID, HAS_MEMBER, INS_OIDS, LCM_NS, RIM_NS,
    SS_AUTHOR, SS_CLASSIFICATION_NODE, SS_CONTENT_TYPE, SS_PATIENT_ID, SS_SOURCE_ID, SS_UNIQUE_ID,
    STABLE_DOCUMENT, XdmError, cda_info, escape, make_cx, make_xcn, make_xon,
)
from liaison.clock import SystemClock

SUBSET = "IHE_XDM/SUBSET01"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_EXT = re.compile(r"^[A-Za-z0-9]{1,4}$")
_IHE_FORMATS = "1.3.6.1.4.1.19376.1.2.3"
# French value sets (CI-SIS JDV): defaults for a primary-care team; to be checked against the current JDV.
CLASS_CODE = ("11", "1.2.250.1.213.1.1.4.1", "Compte rendu")
FACILITY_CODE = ("SA08", "1.2.250.1.71.4.2.4", "Cabinet de groupe")
PRACTICE_CODE = ("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire")
CONFIDENTIALITY_CODE = ("N", "2.16.840.1.113883.5.25", "Normal")
_FORMATS = {
    "application/pdf": ("urn:ihe:iti:xds-sd:pdf:2008", _IHE_FORMATS, "Document PDF encapsulé"),
    "text/plain": ("urn:ihe:iti:xds-sd:text:2008", _IHE_FORMATS, "Document texte encapsulé"),
}
# ebRIM 3.0 lengths: a Slot Value is a LongName, a LocalizedString value a FreeFormText.
LONG_NAME, FREE_FORM_TEXT = 256, 1024
_MIME_SUFFICIENT = ("urn:ihe:iti:xds:2017:mimeTypeSufficient", _IHE_FORMATS, "Format défini par le type MIME")


@dataclass(frozen=True, kw_only=True)
class XdmOut:
    data: bytes
    mime_type: str
    title: str
    type_code: str
    type_display: str
    type_scheme: str = "2.16.840.1.113883.6.1"  # LOINC
    filename_ext: str
    cda_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class XdmAuthor:
    name: str  # as shown, e.g. "Dr Camille Lefebvre"; what precedes "given family" becomes the XCN prefix
    given: str
    family: str
    rpps: str | None = None
    institution: str
    profession: str | None = None


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    """Text that XML 1.0 can carry (control characters and lone surrogates removed)."""
    return _NOT_XML.sub("", str(value))


def _fit(value: str, limit: int) -> str:
    """`value` (XML-safe) cut so that its HL7 v2 escaped form holds in `limit` characters."""
    value = _text(value)[:limit]
    while len(escape(value)) > limit:
        value = value[:-1]
    return value


def _unique_id() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _slot(parent: Element, name: str, *values: str) -> None:
    slot = SubElement(parent, "rim:Slot", {"name": name})
    value_list = SubElement(slot, "rim:ValueList")
    for value in values:
        SubElement(value_list, "rim:Value").text = _text(value)


def _name(parent: Element, text: str) -> None:
    SubElement(SubElement(parent, "rim:Name"), "rim:LocalizedString",
               {"xml:lang": "fr-FR", "charset": "UTF-8", "value": _text(text)[:FREE_FORM_TEXT]})


def _classify(parent: Element, scheme: str, code: str, coding_scheme: str | None, display: str | None,
              slots: dict[str, str] | None = None) -> None:
    node = SubElement(parent, "rim:Classification", {
        "id": _urn(), "objectType": CLASSIFICATION_TYPE, "classificationScheme": scheme,
        "classifiedObject": parent.get("id", ""), "nodeRepresentation": _text(code)})
    for name, value in (slots or {}).items():
        _slot(node, name, value)
    if coding_scheme is not None:
        _slot(node, "codingScheme", coding_scheme)
    if display is not None:
        _name(node, display)


def _identify(parent: Element, scheme: str, value: str, label: str) -> None:
    ident = SubElement(parent, "rim:ExternalIdentifier", {
        "id": _urn(), "objectType": "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier",
        "identificationScheme": scheme, "registryObject": parent.get("id", ""), "value": value})
    _name(ident, label)


def _author_slots(author: XdmAuthor) -> dict[str, str]:
    full = f"{author.given} {author.family}".strip()
    prefix = author.name[: -len(full)].strip() if full and author.name.endswith(full) else ""
    # Names cut so that the XCN (41 characters of fixed parts, an id of at most 32) stays a LongName.
    person = make_xcn(rpps=author.rpps, family=_fit(author.family, 64), given=_fit(author.given, 64),
                      prefix=_fit(prefix, 16))
    slots = {"authorPerson": person, "authorInstitution": make_xon(_fit(author.institution, LONG_NAME))}
    if author.profession:
        slots["authorRole"] = _text(author.profession)[:LONG_NAME]
    return slots


def _check(documents: list[XdmOut], patient_ins: str, patient_oid: str, author: XdmAuthor, source_id: str) -> None:
    if not documents or len(documents) > 999:
        raise ValueError("Un envoi IHE_XDM doit contenir entre 1 et 999 documents.")
    if patient_oid not in INS_OIDS or not re.fullmatch(r"[0-9A-Za-z]{13,15}", patient_ins or ""):
        raise ValueError("L'INS du patient ou son OID est invalide : le paquet IHE_XDM n'est pas créé.")
    if author.rpps and (len(author.rpps) > 32 or re.search(r"[\\|^&~]", author.rpps)):
        raise ValueError("L'identifiant national du professionnel (RPPS) est invalide.")
    if not _OID.match(source_id):
        raise ValueError("L'identifiant de la source (sourceId) doit être un OID.")
    for doc in documents:
        if not _EXT.match(doc.filename_ext.lstrip(".")):
            raise ValueError("L'extension de fichier d'un document est invalide (1 à 4 lettres ou chiffres).")


def _check_cda(doc: XdmOut, patient_ins: str, patient_oid: str) -> str | None:
    """The CDA code of an outgoing CDA document (refused if its recordTarget names another patient)."""
    found = cda_info(doc.data) if "xml" in doc.mime_type.lower() else None
    if found is None:
        return doc.cda_code
    code, ids = found
    if ids and (patient_ins, patient_oid) not in ids:
        raise XdmError("patient_mismatch", "Le document CDA à envoyer ne concerne pas le patient indiqué.")
    return doc.cda_code or code


def _metadata(documents: list[XdmOut], names: list[str], *, patient_ins: str, patient_oid: str,
              author: XdmAuthor, source_id: str, title: str, stamp: str) -> bytes:
    cx = make_cx(patient_ins, patient_oid)
    root = Element("lcm:SubmitObjectsRequest", {"xmlns:lcm": LCM_NS, "xmlns:rim": RIM_NS})
    objects = SubElement(root, "rim:RegistryObjectList")
    ss_id = _urn()
    package = SubElement(objects, "rim:RegistryPackage", {
        "id": ss_id, "objectType": "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"})
    _slot(package, "submissionTime", stamp)
    _name(package, title)
    _classify(package, SS_AUTHOR, "", None, None, _author_slots(author))
    first = documents[0]
    _classify(package, SS_CONTENT_TYPE, first.type_code, first.type_scheme, first.type_display)
    _identify(package, SS_UNIQUE_ID, _unique_id(), "XDSSubmissionSet.uniqueId")
    _identify(package, SS_SOURCE_ID, source_id, "XDSSubmissionSet.sourceId")
    _identify(package, SS_PATIENT_ID, cx, "XDSSubmissionSet.patientId")
    SubElement(objects, "rim:Classification", {
        "id": _urn(), "objectType": CLASSIFICATION_TYPE, "classifiedObject": ss_id,
        "classificationNode": SS_CLASSIFICATION_NODE})
    for doc, name in zip(documents, names):
        entry = SubElement(objects, "rim:ExtrinsicObject", {
            "id": _urn(), "mimeType": doc.mime_type, "objectType": STABLE_DOCUMENT,
            "status": "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"})
        _slot(entry, "creationTime", stamp)
        _slot(entry, "hash", hashlib.sha1(doc.data).hexdigest())
        _slot(entry, "languageCode", "fr-FR")
        _slot(entry, "size", str(len(doc.data)))
        _slot(entry, "sourcePatientId", make_cx(patient_ins, patient_oid, nh=False))
        _slot(entry, "URI", name)
        _name(entry, doc.title)
        _classify(entry, DOC_AUTHOR, "", None, None, _author_slots(author))
        _classify(entry, DOC_CLASS, CLASS_CODE[0], CLASS_CODE[1], CLASS_CODE[2])
        _classify(entry, DOC_CONFIDENTIALITY, *CONFIDENTIALITY_CODE)
        is_cda = doc.cda_code is not None or b"ClinicalDocument" in doc.data[:65536]
        fmt = _FORMATS.get(doc.mime_type.lower(), _MIME_SUFFICIENT) if not is_cda else _MIME_SUFFICIENT
        _classify(entry, DOC_FORMAT, *fmt)
        _classify(entry, DOC_FACILITY, *FACILITY_CODE)
        _classify(entry, DOC_PRACTICE, *PRACTICE_CODE)
        _classify(entry, DOC_TYPE, doc.type_code, doc.type_scheme, doc.type_display)
        _identify(entry, DOC_PATIENT_ID, cx, "XDSDocumentEntry.patientId")
        _identify(entry, DOC_UNIQUE_ID, _unique_id(), "XDSDocumentEntry.uniqueId")
        association = SubElement(objects, "rim:Association", {
            "id": _urn(), "objectType": "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association",
            "associationType": HAS_MEMBER, "sourceObject": ss_id, "targetObject": entry.get("id", "")})
        _slot(association, "SubmissionSetStatus", "Original")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8", xml_declaration=False)


def _index(documents: list[XdmOut], names: list[str], author: XdmAuthor, title: str, when: datetime) -> bytes:
    rows = "\n".join(f'<li><a href="{SUBSET}/{html.escape(n)}">{html.escape(d.title)}</a> '
                     f"({html.escape(d.type_display)})</li>" for d, n in zip(documents, names))
    page = (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"<p>Envoi de {html.escape(author.name)} ({html.escape(author.institution)}), "
            f"le {when:%d/%m/%Y à %H:%M} (UTC).</p>\n<ul>\n{rows}\n</ul>\n"
            f"<p>Les métadonnées IHE XDM sont dans {SUBSET}/METADATA.XML.</p></body></html>\n")
    return page.encode("utf-8")


def _readme(author: XdmAuthor, when: datetime) -> bytes:
    text = ("Archive IHE XDM (profil IHE ITI XDM) produite par Liaison, messagerie de coordination\r\n"
            "des équipes de soins primaires.\r\n\r\n"
            f"Émetteur : {author.name}, {author.institution}\r\n"
            f"Date de création : {when:%d/%m/%Y %H:%M} (UTC)\r\n\r\n"
            "Ouvrez INDEX.HTM pour la liste des documents ; les métadonnées XDS sont dans\r\n"
            f"{SUBSET}/METADATA.XML. Ces documents contiennent des données de santé : ils sont\r\n"
            "couverts par le secret professionnel.\r\n")
    return text.encode("utf-8")


def write_xdm(documents: list[XdmOut], *, patient_ins: str, patient_oid: str, author: XdmAuthor, source_id: str,
              title: str = "Envoi Liaison", now: datetime | None = None) -> bytes:
    """The bytes of an IHE_XDM.ZIP holding `documents` for one patient (ValueError on invalid input)."""
    documents = list(documents)
    _check(documents, patient_ins, patient_oid, author, source_id)
    documents = [XdmOut(**{**doc.__dict__, "cda_code": _check_cda(doc, patient_ins, patient_oid)})
                 for doc in documents]
    when = (now or SystemClock().now())
    when = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    stamp = when.strftime("%Y%m%d%H%M%S")
    names = [f"DOC{i:04d}.{doc.filename_ext.lstrip('.').upper()}" for i, doc in enumerate(documents, 1)]
    metadata = _metadata(documents, names, patient_ins=patient_ins, patient_oid=patient_oid, author=author,
                         source_id=source_id, title=title, stamp=stamp)
    files = [("INDEX.HTM", _index(documents, names, author, title, when)), ("README.TXT", _readme(author, when)),
             (f"{SUBSET}/METADATA.XML", metadata),
             *((f"{SUBSET}/{n}", d.data) for d, n in zip(documents, names))]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()
