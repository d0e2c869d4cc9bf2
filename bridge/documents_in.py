"""The files of an incoming mail: each checked before anything is posted (real type, size, antivirus),
the allowed ones uploaded encrypted once and indexed, the refused ones never uploaded; one notice in
the mail's thread says which document got which number, and why a file was refused.

Crash-safe: an allowed file is kept in the index under its origin (`<mail id>/<i>`) with its upload
before its event is sent; after a crash the same upload is posted again under the same transaction
id, so the room shows it once and the index keeps its number. Nothing of a file's name or content
is logged: ids, counts and rule names only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from bridge.mail_in import InboundMail
from bridge.ports import Poster
from bridge.sanitize import safe_filename
from bridge.scan_patience import SCAN_PATIENCE_SECONDS, ScanPatience
from bridge.xdm import XdmPackage
from liaison.doc_check import Antivirus, Checked, check
from liaison.stores.documents import Document, DocumentStore, Facts, NewFile
from liaison.matrix import file_content as _file_content, notice, txn_id, with_relation
from liaison.sniff import extension
from policies.documents import doctype_label as _label, guess_doctype
from policies.sharing import Knobs

log = structlog.get_logger(__name__)


class DocumentsInPorts(Protocol):
    """What an incoming mail's files use: the checks and their knobs, the index, the notice by the bridge's account."""

    @property
    def knobs(self) -> Knobs: ...

    @property
    def antivirus(self) -> Antivirus: ...

    @property
    def scan_patience(self) -> ScanPatience: ...

    @property
    def documents(self) -> DocumentStore: ...

    @property
    def matrix(self) -> Poster: ...


class AntivirusUnavailable(OSError):
    """clamd did not answer for a file of the mail: the mail stays in the inbox and is tried again."""


@dataclass(frozen=True)
class File:
    name: str
    mime: str
    data: bytes
    type_code: str | None = None    # the XDS typeCode (LOINC) of a document that came in an IHE_XDM.ZIP


@dataclass(frozen=True)
class Looked:
    """One file of the mail, with the checks' verdict; `index` is its place among the mail's files."""
    index: int
    file: File
    checked: Checked

    @property
    def allowed(self) -> bool:
        return self.checked.decision.allowed


def files_of(mail: InboundMail, xdm: XdmPackage | None) -> list[File]:
    """The mail's attachments, the XDM archive replaced by the documents it carries."""
    out = []
    for a in mail.attachments:
        if xdm is not None and a.filename.upper() == "IHE_XDM.ZIP":
            continue
        out.append(File(a.filename, a.content_type or "application/octet-stream", a.data))
    for doc in xdm.documents if xdm else ():
        ext = extension(doc.mime_type)
        name = doc.title if not ext or doc.title.lower().endswith(f".{ext}") else f"{doc.title}.{ext}"
        out.append(File(safe_filename(name), doc.mime_type or "application/octet-stream", doc.data,
                        doc.type_code or None))
    return out


async def check_files(d: DocumentsInPorts, mail_id: str, files: list[File]) -> list[Looked]:
    """The verdict on every file; AntivirusUnavailable while clamd fails and the mail may still wait."""
    looked = [Looked(i, f, await check(f.data, filename=f.name, declared_mime=f.mime, knobs=d.knobs,
                                       antivirus=d.antivirus)) for i, f in enumerate(files)]
    if any(x.checked.decision.rule == "document.scan_failed" for x in looked) and d.scan_patience.may_wait(mail_id):
        raise AntivirusUnavailable(f"antivirus unavailable for mail {mail_id}")
    d.scan_patience.done(mail_id)
    return looked


def file_content(name: str, checked: Checked, file: dict) -> dict:
    """Shown as what its bytes are (sniffed), not what the mail declared."""
    return _file_content(name, checked.sniffed.mime, checked.size, file, image=checked.sniffed.kind == "image")


async def post_file(d: DocumentsInPorts, matrix: Poster, *, mail_id: str, mail: InboundMail, pathway_id: str,
                    room_id: str, root: str, x: Looked) -> Document:
    """Upload (once), post in the thread, index: the document with its number."""
    origin = f"{mail_id}/{x.index}"
    prepared = await d.documents.by_origin(origin)
    if prepared is None:
        upload = await matrix.upload_encrypted(x.file.data)
        prepared = await d.documents.prepare(origin, NewFile(
            event_id=None, pathway_id=pathway_id, room_id=room_id, source="mssante", author=mail.from_address,
            author_name=mail.from_name or None, title=x.file.name, file=upload, declared_mime=x.file.mime,
            thread_root=root))
    event_id = prepared.event_id or await matrix.send(   # posted by a pass that did not end: not twice
        room_id, with_relation(file_content(x.file.name, x.checked, prepared.file), root),
        txn_id("mss-in", mail_id, str(x.index)))
    doctype = guess_doctype(type_code=x.file.type_code, filename=x.file.name, sniffed_kind=x.checked.sniffed.kind)
    return await d.documents.posted(origin, event_id, Facts(
        doctype=doctype.key, mime=x.checked.sniffed.mime, size=x.checked.size, sha256=x.checked.sha256,
        rule=x.checked.decision.rule, type_code=x.file.type_code))



def notice_text(indexed: list[tuple[Looked, Document]], refused: list[Looked]) -> str:
    """What the room is told about the mail's files (French, one line each)."""
    lines = []
    for x, doc in indexed:
        lines.append(f"📄 Document n° {doc.number} « {x.file.name} » indexé : {_label(doc.doctype)} — "
                     f"!doc {doc.number}")
    for x in refused:
        reason = x.checked.decision.reason.rstrip()
        if x.checked.decision.rule == "document.scan_failed":   # the room cannot retry a mail: the sender can
            reason = (f"L'antivirus n'a pas répondu pendant {SCAN_PATIENCE_SECONDS // 60} minutes : le "
                      "fichier n'est pas déposé. Demandez à l'expéditeur de le renvoyer ; si cela se répète, "
                      "prévenez la coordination.")
        lines.append(f"⛔ « {x.file.name} » n'a pas été déposé dans le salon : {reason} "
                     f"(règle {x.checked.decision.rule})")
    return "\n".join(lines)


async def post_notice(d: DocumentsInPorts, *, mail_id: str, room_id: str, root: str, text: str) -> None:
    """One notice by the bridge's own account, in the mail's thread (same transaction id after a crash)."""
    await d.matrix.send(room_id, notice(text, thread_root=root), txn_id("mss-docs", mail_id))
