"""IHE XDM (`IHE_XDM.ZIP`) packages: read them safely, write valid ones, derive the X-MSS-* headers.

Pure functions over bytes. Reading checks the whole archive (entry count, declared sizes, ratios,
names, nested archives) before decompressing anything, then decompresses with a hard byte cap.
Writing lives in `bridge.xdm_write`; both share the metadata vocabulary of `bridge.xdm_meta`.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Iterable
from xml.etree.ElementTree import Element

from bridge.xdm_meta import (
    DOC_AUTHOR, DOC_CLASS, DOC_FORMAT, DOC_PATIENT_ID, DOC_TYPE, DOC_UNIQUE_ID, INS_OIDS, RIM,
    SS_CLASSIFICATION_NODE, SS_PATIENT_ID, SS_SOURCE_ID, SS_UNIQUE_ID, STABLE_DOCUMENT, XdmError,
    cda_info, count_fr, parse_cx, parse_xml, render_xcn, xon_name,
)
from bridge.xdm_write import XdmAuthor, XdmOut, write_xdm

__all__ = ["XdmAuthor", "XdmDocument", "XdmError", "XdmLimits", "XdmOut", "XdmPackage", "mss_headers",
           "read_xdm", "write_xdm", "xdm_archive", "xdm_of"]

_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".tar", ".zst", ".cab", ".jar")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c",
                  b"Rar!\x1a\x07", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"MSCF")
_RATIO_FLOOR = 64 * 1024  # entries declaring less than this are too small to be a bomb, whatever their ratio
_METADATA = re.compile(r"^IHE_XDM/([^/]+)/METADATA\.XML$", re.IGNORECASE)
_CHUNK = 64 * 1024
_CENTRAL_ENTRY = b"PK\x01\x02"
# What zipfile/zlib raise on a corrupted archive (bad headers, CRC, names that are not UTF-8…).
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
           ValueError, OSError, OverflowError, struct.error)


@dataclass(frozen=True)
class XdmLimits:
    max_entries: int = 50
    max_total_bytes: int = 50 * 1024 * 1024  # sum of declared uncompressed sizes
    max_ratio: int = 100  # uncompressed / compressed, per entry
    max_depth: int = 0  # nested archives (.zip inside) are refused
    # METADATA.XML is parsed whole into a tree, whose cost follows its elements (4 MB of empty ones: 1 million, 0.8 s
    # and 90 MB to parse and search) and its attributes (2 MB of them in one element: 0.15 s, 40 MB). Ours holds 7 KB
    # and 150 tags per document (330 KB and 7,200 tags for the 47 an archive may carry): room for wordier senders.
    max_metadata_bytes: int = 2 * 1024 * 1024
    max_metadata_tags: int = 50_000


@dataclass(frozen=True)
class XdmDocument:
    entry_uuid: str
    unique_id: str
    patient_ins: str
    patient_oid: str
    source_patient_ins: str | None
    title: str
    mime_type: str
    type_code: str
    type_scheme: str
    type_display: str
    class_code: str | None
    format_code: str | None
    author: str | None
    author_institution: str | None
    creation_time: str | None
    hash_sha1: str | None
    size: int | None
    uri: str
    data: bytes
    cda_code: str | None
    cda_patient_ins: str | None


@dataclass(frozen=True)
class XdmPackage:
    submission_set_id: str
    source_id: str | None
    documents: tuple[XdmDocument, ...]


# --- the archive ---------------------------------------------------------------------------------

def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part in ("..", ".") for part in name.rstrip("/").split("/")) or "//" in name


def _too_many_entries(count: int, limits: XdmLimits) -> XdmError:
    return XdmError("too_many_entries", f"L'archive IHE_XDM contient {count} fichiers, "
                                        f"au-delà de la limite de {limits.max_entries}.")


def _check_entries(infos: list[zipfile.ZipInfo], limits: XdmLimits) -> None:
    """Everything that can be judged from the central directory, before any decompression."""
    if len(infos) > limits.max_entries:
        raise _too_many_entries(len(infos), limits)
    seen: set[str] = set()
    total = 0
    for info in infos:
        if _unsafe_name(info.filename) or info.filename.upper() in seen:
            raise XdmError("unsafe_path", "L'archive IHE_XDM contient un chemin de fichier dangereux "
                                          "(absolu, « .. », antislash ou doublon) : elle est refusée.")
        seen.add(info.filename.upper())
        if info.flag_bits & 0x1:
            raise XdmError("bad_zip", "L'archive IHE_XDM contient un fichier chiffré : elle ne peut pas être lue.")
        if info.is_dir():
            continue
        if limits.max_depth <= 0 and info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
            raise XdmError("nested_archive", "L'archive IHE_XDM contient elle-même une archive : "
                                             "elle est refusée par sécurité.")
        if _METADATA.match(info.filename) and info.file_size > limits.max_metadata_bytes:
            raise XdmError("metadata_too_big", f"Le fichier METADATA.XML de l'archive IHE_XDM est anormalement "
                                               f"volumineux ({_mb(info.file_size)} Mo, au-delà de "
                                               f"{_mb(limits.max_metadata_bytes)} Mo) : l'archive est refusée sans "
                                               "être ouverte.")
        total += info.file_size
        ratio_too_high = info.file_size > _RATIO_FLOOR and (
            info.compress_size <= 0 or info.file_size > limits.max_ratio * info.compress_size)
        if ratio_too_high or total > limits.max_total_bytes:
            raise XdmError("zip_bomb", "L'archive IHE_XDM se décompresserait en un volume anormal "
                                       "(bombe de décompression) : elle est refusée sans être ouverte.")


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".replace(".", ",").removesuffix(",0")


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Decompress one entry, never producing more than its declared size nor the remaining budget."""
    cap = min(info.file_size, budget)
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while len(out) <= cap:
                chunk = stream.read(min(_CHUNK, cap + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
    except _BROKEN:
        raise XdmError("bad_zip", "L'archive IHE_XDM est corrompue et ne peut pas être lue.") from None
    if len(out) > cap:
        raise XdmError("zip_bomb", "Un fichier de l'archive IHE_XDM dépasse la taille annoncée : "
                                   "l'archive est refusée.")
    return bytes(out)


def _unpack(data: bytes, limits: XdmLimits) -> dict[str, bytes]:
    # Every entry zipfile will read starts with a central directory signature: counted in C before zipfile builds
    # one ZipInfo per entry (300,000 of them: seconds and hundreds of MB), whatever the end record declares.
    declared = data.count(_CENTRAL_ENTRY)
    if declared > limits.max_entries:
        raise _too_many_entries(declared, limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _BROKEN:
        raise XdmError("bad_zip", "La pièce jointe IHE_XDM n'est pas une archive ZIP lisible.") from None
    with archive:
        infos = archive.infolist()
        _check_entries(infos, limits)
        files: dict[str, bytes] = {}
        budget = limits.max_total_bytes
        for info in infos:
            if info.is_dir():
                continue
            content = _read_capped(archive, info, budget)
            budget -= len(content)
            if limits.max_depth <= 0 and content.startswith(_ARCHIVE_MAGIC):
                raise XdmError("nested_archive", "L'archive IHE_XDM contient elle-même une archive : "
                                                 "elle est refusée par sécurité.")
            files[info.filename] = content
    return files


# --- the metadata --------------------------------------------------------------------------------

def _slots(obj: Element) -> dict[str, list[str]]:
    return {slot.get("name", ""): [(v.text or "").strip() for v in slot.iter(f"{RIM}Value")]
            for slot in obj.findall(f"{RIM}Slot")}


def _slot(obj: Element, name: str) -> str | None:
    values = _slots(obj).get(name) or []
    return values[0] if values and values[0] else None


def _name(obj: Element) -> str:
    string = obj.find(f"{RIM}Name/{RIM}LocalizedString")
    return (string.get("value") if string is not None else None) or ""


def _ident(obj: Element, scheme: str) -> str | None:
    for ext in obj.findall(f"{RIM}ExternalIdentifier"):
        if ext.get("identificationScheme") == scheme:
            return (ext.get("value") or "").strip() or None
    return None


def _classification(obj: Element, scheme: str) -> Element | None:
    return next((c for c in obj.findall(f"{RIM}Classification") if c.get("classificationScheme") == scheme),
                None)


def _submission_set(root: Element) -> Element:
    packages = list(root.iter(f"{RIM}RegistryPackage"))
    marked = {c.get("classifiedObject") for c in root.iter(f"{RIM}Classification")
              if c.get("classificationNode") == SS_CLASSIFICATION_NODE}
    chosen = [p for p in packages if p.get("id") in marked] or (packages if len(packages) == 1 else [])
    if len(chosen) != 1:
        raise XdmError("bad_metadata", "METADATA.XML ne décrit pas un lot de soumission (SubmissionSet) unique.")
    return chosen[0]


def _patient(value: str | None, what: str) -> tuple[str, str]:
    ins, oid = parse_cx(value) if value else (None, None)
    if not ins or oid not in INS_OIDS:
        raise XdmError("bad_metadata", f"{what} de METADATA.XML n'est pas un INS (identifiant national de santé).")
    return ins, oid


def _document(entry: Element, subset: str, files: dict[str, bytes]) -> XdmDocument:
    slots = _slots(entry)
    ins, oid = _patient(_ident(entry, DOC_PATIENT_ID), "L'identifiant patient d'un document")
    uris = slots.get("URI") or [""]
    uri = uris[0]
    if len(uris) > 1 and all(re.match(r"^\d{1,3}\|", v) for v in uris):  # long URI split: "1|…", "2|…"
        uri = "".join(v.split("|", 1)[1] for v in sorted(uris, key=lambda v: int(v.split("|")[0])))
    lookup = {name.upper(): name for name in files}
    path = lookup.get(f"{subset}/{uri}".upper()) if uri and not _unsafe_name(uri) else None
    if path is None:
        raise XdmError("missing_document", "Un document annoncé dans METADATA.XML est absent de l'archive IHE_XDM.")
    data = files[path]
    hash_sha1 = (_slot(entry, "hash") or "").lower() or None
    if hash_sha1 and hashlib.sha1(data).hexdigest() != hash_sha1:
        raise XdmError("hash_mismatch", "L'empreinte d'un document ne correspond pas à METADATA.XML : "
                                        "le document a pu être altéré.")
    size_text = _slot(entry, "size")
    try:
        size = int(size_text) if size_text else None
    except ValueError:
        raise XdmError("bad_metadata", "La taille d'un document dans METADATA.XML n'est pas un nombre.") from None
    if size is not None and size != len(data):
        raise XdmError("size_mismatch", "La taille d'un document ne correspond pas à METADATA.XML : "
                                        "le document a pu être tronqué ou altéré.")
    type_node = _classification(entry, DOC_TYPE)
    if type_node is None or not type_node.get("nodeRepresentation"):
        raise XdmError("bad_metadata", "Un document de METADATA.XML n'a pas de type (typeCode).")
    author = _classification(entry, DOC_AUTHOR)
    person = _slot(author, "authorPerson") if author is not None else None
    institution = _slot(author, "authorInstitution") if author is not None else None
    class_node, format_node = _classification(entry, DOC_CLASS), _classification(entry, DOC_FORMAT)
    mime = entry.get("mimeType", "")
    cda = cda_info(data) if "xml" in mime.lower() else None
    cda_code, cda_ins = (cda[0], None) if cda else (None, None)
    if cda and cda[1]:
        cda_ins = next((i for i, o in cda[1] if (i, o) == (ins, oid)), cda[1][0][0])
        if (ins, oid) not in cda[1]:
            raise XdmError("patient_mismatch", "Le patient du document CDA (recordTarget) n'est pas celui "
                                               "de METADATA.XML : le document est refusé.")
    source = _slot(entry, "sourcePatientId")
    return XdmDocument(
        entry_uuid=entry.get("id", ""), unique_id=_ident(entry, DOC_UNIQUE_ID) or "",
        patient_ins=ins, patient_oid=oid, source_patient_ins=parse_cx(source)[0] if source else None,
        title=_name(entry), mime_type=mime,
        type_code=type_node.get("nodeRepresentation", ""), type_scheme=_slot(type_node, "codingScheme") or "",
        type_display=_name(type_node),
        class_code=class_node.get("nodeRepresentation") if class_node is not None else None,
        format_code=format_node.get("nodeRepresentation") if format_node is not None else None,
        author=render_xcn(person) if person else None,
        author_institution=xon_name(institution) if institution else None,
        creation_time=_slot(entry, "creationTime"), hash_sha1=hash_sha1, size=size, uri=uri, data=data,
        cda_code=cda_code, cda_patient_ins=cda_ins)


def xdm_archive(mail) -> bytes | None:
    """The bytes of the IHE_XDM.ZIP among a parsed mail's attachments; None without one."""
    return next((a.data for a in mail.attachments if a.filename.upper() == "IHE_XDM.ZIP"), None)


def xdm_of(mail) -> XdmPackage | None:
    """The IHE_XDM.ZIP among a parsed mail's attachments, read here (XdmError when refused); None without one. The
    bridge reads it in a parse worker instead (bridge.parse_pool `MailParser.read_xdm`), never on its event loop."""
    archive = xdm_archive(mail)
    return read_xdm(archive) if archive is not None else None


def read_xdm(data: bytes, limits: XdmLimits = XdmLimits()) -> XdmPackage:
    """Read an IHE_XDM.ZIP; XdmError (`.code`, `.reason` in French) when it is unsafe or inconsistent."""
    files = _unpack(data, limits)
    subsets = [(m.group(1), name) for name in files if (m := _METADATA.match(name))]
    if not subsets:
        raise XdmError("no_metadata", "L'archive IHE_XDM ne contient pas de fichier IHE_XDM/SUBSET01/METADATA.XML.")
    if len(subsets) > 1:
        raise XdmError("bad_metadata", "L'archive IHE_XDM contient plusieurs lots : un seul est accepté.")
    subset, metadata_name = subsets[0]
    metadata = files[metadata_name]
    if (tags := metadata.count(b"<")) > limits.max_metadata_tags:   # counted in C, before any tree is built
        raise XdmError("metadata_too_big", f"Le fichier METADATA.XML de l'archive IHE_XDM compte un nombre anormal de "
                                           f"balises ({count_fr(tags)}, au-delà de "
                                           f"{count_fr(limits.max_metadata_tags)}) : l'archive est refusée sans être "
                                           "lue.")
    root = parse_xml(metadata, "METADATA.XML", "bad_metadata")
    package = _submission_set(root)
    entries = [e for e in root.iter(f"{RIM}ExtrinsicObject") if e.get("objectType") == STABLE_DOCUMENT]
    if not entries:
        raise XdmError("bad_metadata", "METADATA.XML ne décrit aucun document.")
    documents = tuple(_document(e, f"IHE_XDM/{subset}", files) for e in entries)
    patients = {(d.patient_ins, d.patient_oid) for d in documents}
    set_patient = _ident(package, SS_PATIENT_ID)
    if set_patient:
        patients.add(_patient(set_patient, "L'identifiant patient du lot"))
    if len(patients) > 1:
        raise XdmError("patient_mismatch", "Les documents de l'archive IHE_XDM ne concernent pas tous le même "
                                           "patient : l'archive est refusée.")
    return XdmPackage(submission_set_id=_ident(package, SS_UNIQUE_ID) or package.get("id") or "",
                      source_id=_ident(package, SS_SOURCE_ID), documents=documents)


def _cda_facts(doc: XdmDocument | XdmOut) -> tuple[str | None, bool]:
    """(CDA code, carries the INS) of a read or outgoing document; (None, False) when not a CDA."""
    if isinstance(doc, XdmDocument):
        return doc.cda_code, bool(doc.cda_patient_ins)
    found = cda_info(doc.data) if "xml" in doc.mime_type.lower() else None
    return (doc.cda_code or (found[0] if found else None)), bool(found and found[1])


def mss_headers(package_or_documents: XdmPackage | Iterable[XdmDocument | XdmOut]) -> dict[str, str]:
    """The X-MSS-* headers of a mail carrying this XDM (Référentiel MSSanté #2, ECO.2.4.1-2).

    `X-MSS-CODECDA` lists the codes of the CDA documents, `X-MSS-INS: O` says a CDA carries the
    patient's INS; an XDM without CDA (e.g. a PDF) gives `{}`.
    """
    documents = (package_or_documents.documents if isinstance(package_or_documents, XdmPackage)
                 else tuple(package_or_documents))
    facts = [_cda_facts(d) for d in documents]
    codes = list(dict.fromkeys(code for code, _ in facts if code))
    if not codes:
        return {}
    headers = {"X-MSS-CODECDA": ",".join(codes)}
    if any(code and has_ins for code, has_ins in facts):
        headers = {"X-MSS-INS": "O", **headers}
    return headers
