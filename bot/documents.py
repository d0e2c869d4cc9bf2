"""Files posted by members in a pathway room: recorded when synced, then downloaded, decrypted, checked
and indexed (or refused, with the reason told in the room).

Recording happens before the sync position moves past the event, so a crash loses no file; a file
still pending at start-up is checked again. Files posted by the bridge's puppets were checked and
indexed by the bridge before they were posted. Logs carry event ids, sizes and rule names only.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from html import escape
from typing import Protocol

import structlog

from bot.ports import DocumentsPort, MatrixRooms
from bot.services import PathwaySettings
from liaison import memory
from liaison.doc_check import Antivirus, check, too_big
from liaison.stores.documents import Facts, NewFile
from liaison.stores.pathways import PathwayStore
from liaison.matrix import FileMessage, FileTooBig, MatrixError, TextMessage, reply_content, txn_id
from policies.documents import FileFacts, check_file, guess_doctype
from policies.sharing import Knobs

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
RETRY_SECONDS = 5.0
AT_ONCE = 2          # files checked at the same time (each may be 25 MiB in memory)
UNREADABLE = "document.unreadable"


class IndexerPorts(Protocol):
    """What recording, downloading, checking and indexing a posted file reads and does."""
    @property
    def settings(self) -> PathwaySettings: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def documents(self) -> DocumentsPort: ...
    @property
    def knobs(self) -> Knobs: ...
    @property
    def antivirus(self) -> Antivirus: ...
    @property
    def matrix(self) -> MatrixRooms: ...


class DocumentIndexer:
    def __init__(self, services: IndexerPorts) -> None:
        self.s = services
        self._running: dict[str, asyncio.Task] = {}
        self._at_once = asyncio.Semaphore(AT_ONCE)
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle(self, files: list[FileMessage]) -> None:
        """Record the files of one sync that belong to a pathway room, then check them in the background."""
        s = self.s
        rows: list[NewFile] = []
        declared: dict[str, int | None] = {}   # each file's size, as its event announces it
        for f in files:
            if f.sender == s.settings.bot_user_id or s.settings.is_bridged(f.sender):
                continue
            pathway = await s.pathways.by_room(f.room_id)
            if pathway is None or pathway.room_id != f.room_id:
                continue   # the circle room, a direct chat…: not the pathway's record
            row = NewFile(event_id=f.event_id, pathway_id=pathway.id, room_id=f.room_id, source="element",
                          author=f.sender, title=f.filename, file=f.file, declared_mime=f.mimetype,
                          thread_root=f.thread_root)
            rows.append(replace(row, created_at=f.timestamp) if f.timestamp else row)
            declared[f.event_id] = f.size
        await s.documents.record(rows)
        for event_id, size in declared.items():
            self._soon(event_id, size)

    async def resume(self) -> None:
        """Files left pending by a stop or a crash."""
        for doc in await self.s.documents.pending():
            if doc.event_id:   # a file of the bridge's has its event once posted, and the bridge checked it
                self._soon(doc.event_id, None)

    def _soon(self, event_id: str, declared_size: int | None) -> None:
        if event_id in self._running:
            return
        self.idle.clear()
        task = asyncio.create_task(self._check_guarded(event_id, declared_size))
        self._running[event_id] = task
        task.add_done_callback(lambda _t: self._done(event_id))

    def _done(self, event_id: str) -> None:
        self._running.pop(event_id, None)
        if not self._running:
            self.idle.set()
            memory.trim()

    async def _check_guarded(self, event_id: str, declared_size: int | None) -> None:
        """Tries are counted in the database: a file that keeps failing, even across restarts, is given up."""
        while (tries := await self.s.documents.attempt(event_id)) <= MAX_ATTEMPTS:
            try:
                async with self._at_once:
                    if await self._check(event_id, declared_size):
                        return
            except Exception:
                log.exception("documents.check_crashed", event_id=event_id)
            await asyncio.sleep(RETRY_SECONDS * tries)
        doc = await self.s.documents.by_event(event_id)
        if doc and doc.state == "pending":
            await self._refuse(doc, UNREADABLE, "Le fichier n'a pas pu être téléchargé depuis le serveur après "
                                                f"{MAX_ATTEMPTS} essais : il n'est pas indexé. Déposez-le à nouveau.")

    async def _check(self, event_id: str, declared_size: int | None) -> bool:
        """True when the file reached its final state; False to try again later."""
        s = self.s
        doc = await s.documents.by_event(event_id)
        if doc is None or doc.state != "pending":
            return True
        limit = s.knobs.document_max_mib * 1024 * 1024
        if declared_size is not None and too_big(declared_size, s.knobs):
            return await self._too_big(doc, declared_size)
        try:
            data = await s.matrix.download(doc.file, limit)
        except FileTooBig as err:
            return await self._too_big(doc, err.size)
        except (MatrixError, OSError, asyncio.TimeoutError) as err:
            log.warning("documents.download_failed", event_id=event_id, error=type(err).__name__)
            return False
        except Exception as err:   # nio: wrong key or hash, a malformed file object
            log.warning("documents.undecryptable", event_id=event_id, error=type(err).__name__)
            await self._refuse(doc, UNREADABLE, "Le fichier n'a pas pu être déchiffré (clé ou empreinte invalide) : "
                                                "il n'est pas indexé. Déposez-le à nouveau.")
            return True
        checked = await check(data, filename=doc.title, declared_mime=doc.declared_mime, knobs=s.knobs,
                              antivirus=s.antivirus)
        del data
        d = checked.decision
        if not d.allowed:
            await self._refuse(doc, d.rule, d.reason, infected=d.rule == "document.infected")
            return True
        doctype = guess_doctype(type_code=None, filename=doc.title, sniffed_kind=checked.sniffed.kind)
        indexed = await s.documents.index(event_id, Facts(doctype=doctype.key, mime=checked.sniffed.mime,
                                                          size=checked.size, sha256=checked.sha256, rule=d.rule))
        log.info("documents.indexed", event_id=event_id, number=indexed.number, size=checked.size,
                 kind=checked.sniffed.kind, scan=checked.scan)
        n = indexed.number
        await self._notice(doc, f"📄 Document n° {n} indexé : {doctype.label}. Détail : !doc {n} ; "
                                f"autre type : !doc type {n} <type>.")
        return True

    async def _too_big(self, doc, size: int) -> bool:
        d = check_file(FileFacts(size=size, sniffed_kind="unknown", declared_ok=True, scan="not_scanned",
                                 knobs=self.s.knobs))
        await self._refuse(doc, d.rule, d.reason)
        return True

    async def _refuse(self, doc, rule: str, reason: str, infected: bool = False) -> None:
        """Tell the room first (the notice's transaction id makes a resend harmless), then record the refusal."""
        if infected:
            try:
                await self.s.matrix.redact(doc.room_id, doc.event_id, "Fichier infecté retiré par Liaison",
                                           txn_id("doc-redact", doc.event_id))
                reason += " Le fichier a été retiré du salon."
            except MatrixError as err:
                log.warning("documents.redact_failed", event_id=doc.event_id, error=str(err)[:200])
        await self._notice(doc, f"⛔ Fichier « {doc.title} » non indexé. {reason}")
        await self.s.documents.refuse(doc.event_id, rule)
        log.info("documents.refused", event_id=doc.event_id, rule=rule)

    async def _notice(self, doc, text: str) -> None:
        about = TextMessage(doc.room_id, doc.event_id, doc.author, "", True, doc.thread_root)
        content = reply_content(about, text, escape(text))
        try:
            await self.s.matrix.send(doc.room_id, content, txn_id("doc-notice", doc.event_id))
        except MatrixError as err:
            log.warning("documents.notice_failed", event_id=doc.event_id, error=str(err)[:200])

    async def drain(self, timeout: float = 10.0) -> None:
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)

