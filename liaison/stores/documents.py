"""The pathway's document index, shared by the bot (files posted in Element) and the bridge (files
that came by mail). A file is recorded when seen, before anything is downloaded (so a crash loses
none), then indexed with a number or refused with the rule that refused it.

Versions are not stored: a document with the same title and type from the same author as an older
one supersedes it (`versions`), so changing a type with `!doc type` regroups without rewriting.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from liaison.stores.retention import Forget, Retention
from liaison.clock import system_now_ms
from liaison.stores.base import Store
from policies.professions import fold

SOURCES = {"element": "Element", "mssante": "MSSanté"}


@dataclass(frozen=True)
class NewFile:
    """A file event seen in a pathway room."""
    event_id: str | None        # None for a file prepared by the bridge before it is posted
    pathway_id: str
    room_id: str
    source: str                 # element | mssante
    author: str                 # Matrix user id, or the mail sender's address
    title: str
    file: dict                  # the event's encrypted file object (url, key, iv, hashes) or {"url": …}
    declared_mime: str | None = None
    author_name: str | None = None
    thread_root: str | None = None
    created_at: int = field(default_factory=system_now_ms)   # the indexer passes its clock's


@dataclass(frozen=True)
class Facts:
    """What the checks found, kept in the index."""
    doctype: str
    mime: str
    size: int
    sha256: str
    rule: str
    type_code: str | None = None


@dataclass(frozen=True)
class Document:
    id: str
    event_id: str | None
    pathway_id: str
    room_id: str
    number: int | None
    state: str
    source: str
    author: str
    author_name: str | None
    title: str
    declared_mime: str | None
    file: dict
    doctype: str | None
    type_code: str | None
    mime: str | None
    size: int | None
    sha256: str | None
    thread_root: str | None
    rule: str | None
    created_at: int

    @property
    def source_label(self) -> str:
        return SOURCES.get(self.source, self.source)


_COLUMNS = ("id, event_id, pathway_id, room_id, number, state, source, author, author_name, title, declared_mime, "
            "file, doctype, type_code, mime, size, sha256, thread_root, rule, created_at")


def _document(r) -> Document:
    return Document(r.id, r.event_id, r.pathway_id, r.room_id, r.number, r.state, r.source, r.author, r.author_name,
                    r.title, r.declared_mime, json.loads(r.file), r.doctype, r.type_code, r.mime, r.size, r.sha256,
                    r.thread_root, r.rule, r.created_at)


class DocumentStore(Store):
    RETENTION = Retention(forget=(Forget("document_notice"), Forget("document")))

    async def record(self, files: list[NewFile]) -> None:
        """Remember files just seen (idempotent on the event): checked and indexed afterwards."""
        if not files:
            return
        async with self.engine.begin() as conn:
            for f in files:
                await self._insert(conn, f, "pending")

    async def _insert(self, conn, f: NewFile, state: str, origin: str | None = None) -> None:
        await conn.execute(text(
            "INSERT INTO document (id, event_id, origin, pathway_id, room_id, state, source, author, author_name, "
            "title, declared_mime, file, thread_root, created_at) VALUES (:id, :e, :o, :p, :r, :st, :src, :a, :an, "
            f":t, :dm, :f, :th, :at) ON CONFLICT ({'origin' if origin else 'event_id'}) DO NOTHING"),
            {"id": str(uuid.uuid4()), "e": f.event_id, "o": origin, "p": f.pathway_id, "r": f.room_id, "st": state,
             "src": f.source, "a": f.author, "an": f.author_name, "t": f.title, "dm": f.declared_mime,
             "f": json.dumps(f.file, sort_keys=True), "th": f.thread_root, "at": f.created_at})

    async def pending(self) -> list[Document]:
        """Files posted in Element, seen but not checked yet (the bridge checks its own before posting)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE state = 'pending' AND "
                                           "event_id IS NOT NULL AND origin IS NULL ORDER BY created_at"))
            return [_document(r) for r in rows]

    async def attempt(self, event_id: str) -> int:
        """Count one more try at checking a pending file; returns the count."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE document SET attempts = attempts + 1 WHERE event_id = :e"),
                               {"e": event_id})
            return (await conn.execute(text("SELECT attempts FROM document WHERE event_id = :e"),
                                       {"e": event_id})).scalar() or 0

    async def index(self, event_id: str, facts: Facts) -> Document:
        """pending -> indexed with the pathway's next number (idempotent: an indexed file keeps its number).

        Two writers (bot and bridge) may read the same maximum: the UNIQUE (pathway, number) decides.
        """
        for _attempt in range(20):
            try:
                return await self._index(event_id, facts)
            except IntegrityError:
                continue
        raise RuntimeError("document: no free number after 20 attempts")

    async def _index(self, event_id: str, facts: Facts) -> Document:
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE event_id = :e"),
                                      {"e": event_id})).one()
            if row.state != "pending":
                return _document(row)
            number = (await conn.execute(text("SELECT COALESCE(MAX(number), 0) + 1 FROM document WHERE "
                                              "pathway_id = :p"), {"p": row.pathway_id})).scalar()
            await conn.execute(text(
                "UPDATE document SET state = 'indexed', number = :n, doctype = :d, type_code = :tc, mime = :m, "
                "size = :s, sha256 = :h, rule = :rule, indexed_at = :at WHERE event_id = :e AND state = 'pending'"),
                {"n": number, "d": facts.doctype, "tc": facts.type_code, "m": facts.mime, "s": facts.size,
                 "h": facts.sha256, "rule": facts.rule, "at": self.clock.now_ms(), "e": event_id})
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE event_id = :e"),
                                      {"e": event_id})).one()
        return _document(row)

    async def prepare(self, origin: str, f: NewFile) -> Document:
        """A file checked and uploaded before it is posted (the bridge's), kept under `origin` (idempotent).

        After a crash, the row found again carries the same upload (and its event, once posted): it is
        posted once, and the index keeps the key that opens it.
        """
        async with self.engine.begin() as conn:
            await self._insert(conn, f, "pending", origin)
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE origin = :o"),
                                      {"o": origin})).one()
        return _document(row)

    async def by_origin(self, origin: str) -> Document | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE origin = :o"),
                                      {"o": origin})).first()
        return _document(row) if row else None

    async def posted(self, origin: str, event_id: str, facts: Facts) -> Document:
        """The prepared file is in the room as `event_id`: indexed now."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE document SET event_id = :e WHERE origin = :o AND event_id IS NULL"),
                               {"e": event_id, "o": origin})
        return await self.index(event_id, facts)

    async def refuse(self, event_id: str, rule: str) -> bool:
        """pending -> refused; False when it was not pending (already decided)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text("UPDATE document SET state = 'refused', rule = :r WHERE event_id = :e "
                                             "AND state = 'pending'"), {"r": rule, "e": event_id})
        return bool(result.rowcount)

    async def of_pathway(self, pathway_id: str) -> list[Document]:
        """The pathway's indexed documents, newest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE pathway_id = :p AND "
                                           "state = 'indexed' ORDER BY created_at DESC, number DESC"),
                                      {"p": pathway_id})
            return [_document(r) for r in rows]

    async def by_number(self, pathway_id: str, number: int) -> Document | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE pathway_id = :p AND "
                                           "number = :n AND state = 'indexed'"),
                                      {"p": pathway_id, "n": number})).first()
        return _document(row) if row else None

    async def get(self, document_id: str) -> Document | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE id = :i"),
                                      {"i": document_id})).first()
        return _document(row) if row else None

    async def by_event(self, event_id: str) -> Document | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM document WHERE event_id = :e"),
                                      {"e": event_id})).first()
        return _document(row) if row else None

    async def first_time(self, pathway_id: str, what: str) -> bool:
        """True once per pathway and `what`: for things the room is told only once."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text(
                "INSERT INTO document_notice (pathway_id, what, at) VALUES (:p, :w, :t) "
                "ON CONFLICT (pathway_id, what) DO NOTHING"), {"p": pathway_id, "w": what, "t": self.clock.now_ms()})
        return bool(result.rowcount)

    async def set_type(self, document_id: str, doctype: str, actor: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE document SET doctype = :d, typed_by = :a WHERE id = :i"),
                               {"d": doctype, "a": actor, "i": document_id})


# --- versions (pure) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Versioned:
    """A document as listed: the newest of its line, with the older versions it supersedes."""
    current: Document
    older: tuple[Document, ...] = ()

    @property
    def count(self) -> int:
        return 1 + len(self.older)


def version_key(d: Document) -> tuple[str, str, str]:
    """Same title (ignoring case, accents and the extension), same type, same author: one line of versions."""
    stem = d.title.rsplit(".", 1)[0] if "." in d.title[1:] else d.title
    return fold(stem), d.doctype or "", d.author.lower()


def versions(documents: list[Document]) -> list[Versioned]:
    """Lines of versions, newest line first; in each, the newest document is the current one."""
    lines: dict[tuple[str, str, str], list[Document]] = {}
    for d in sorted(documents, key=lambda d: (d.created_at, d.number or 0), reverse=True):
        lines.setdefault(version_key(d), []).append(d)
    return [Versioned(docs[0], tuple(docs[1:])) for docs in lines.values()]


def line_of(documents: list[Document], doc: Document) -> Versioned | None:
    """The line of versions `doc` belongs to among `documents`."""
    for line in versions(documents):
        if doc.id == line.current.id or doc.id in {o.id for o in line.older}:
            return line
    return None


def superseded_by(documents: list[Document], doc: Document) -> Document | None:
    """The current version that replaced `doc`, or None when `doc` is the current one."""
    line = line_of(documents, doc)
    return line.current if line and line.current.id != doc.id else None
