"""An extract into the directory: read as a stream, staged in a temporary table by batches, then merged into the
directory in one transaction (added, changed, unchanged; the rows of the same kind gone from it made inactive, never
deleted). The staging writes nothing the directory's readers see: a refused or broken file leaves the directory as
it was, and its import is recorded `failed` with the reason.

Logs carry counts and ids only.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaison.clock import Clock, SystemClock
from liaison.directory import rows
from liaison.directory.columns import (
    MSSANTE,
    PERSONNES,
    SAVOIR_FAIRE,
    HeaderRefused,
    Kind,
    kind_of,
    positions,
)
from liaison.directory.reading import Unreadable, lines, opened, sha256_of, sources
from liaison.directory.search import rebuild_index
from liaison.directory.staging import Stage, Table
from liaison.stores.directory import new_import

log = structlog.get_logger(__name__)

BATCH = 5000
PROBLEMS_KEPT = 20
SHRINK_LIMIT = 1000   # more rows than this gone at once, and more than half of them: the file looks cut short


class ImportRefused(Exception):
    """`.message`: in French; the directory is unchanged."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Report:
    file_name: str
    kind: str
    import_id: int | None = None
    read_rows: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    inactivated: int = 0
    malformed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    skipped: bool = False         # the same file was imported already (the daily folder's check)
    merge_seconds: float = 0.0    # how long the directory's tables were written (SQLite: locked)

    def problems_text(self) -> str | None:
        if not self.problems:
            return None
        shown = " ; ".join(f"ligne {n} : {why}" for n, why in self.problems)
        more = self.malformed - len(self.problems)
        return shown + (f" ; et {more} autre{'s' if more > 1 else ''}" if more > 0 else "")


TABLES = {
    PERSONNES.key: Table("directory_person", ("national_id", "activity"), rows.PERSON_COLUMNS, rows.person),
    MSSANTE.key: Table("directory_mailbox", ("address",), rows.MAILBOX_COLUMNS, rows.mailbox),
    SAVOIR_FAIRE.key: Table("directory_person", ("national_id",), rows.SPECIALTY_COLUMNS, rows.specialty),
}


async def import_path(engine: AsyncEngine, path: Path, *, clock: Clock | None = None, skip_known: bool = False,
                      shrink: bool = False) -> list[Report]:
    """Each extract of `path` (a .txt, or a .zip's .txt members), one import each. ImportRefused (the directory
    unchanged, the import recorded `failed`) for a file that cannot be read or is not an extract, or, unless
    `shrink`, that would make inactive more than half of its kind's rows (a file cut short)."""
    clock = clock or SystemClock()
    sha = await asyncio.to_thread(sha256_of, path) if path.is_file() else ""
    reports = []
    try:
        members = sources(path)
    except Unreadable as err:
        await _failed(engine, clock, "inconnu", path.name, sha, err.message)
        raise ImportRefused(err.message) from None
    for member in members:
        if skip_known and await _known(engine, member, sha):
            reports.append(Report(member, "", skipped=True))
            continue
        reports.append(await _import_member(engine, clock, path, member, sha, shrink))
    return reports


async def _import_member(engine: AsyncEngine, clock: Clock, path: Path, member: str, sha: str,
                         shrink: bool) -> Report:
    report = Report(member, "inconnu")
    try:
        async with engine.connect() as conn:
            stage = Stage(conn)
            try:
                with opened(path, member) as source:
                    kind, table, with_specialty = await _read(source, report, stage)
                if report.read_rows == 0:
                    raise Unreadable(f"{member} : aucune ligne après l'en-tête : l'annuaire est laissé tel quel")
                if report.read_rows == report.malformed:
                    raise Unreadable(f"{member} : aucune ligne valide ({report.malformed} mal formées) : "
                                     "l'annuaire est laissé tel quel")
                await stage.finish(table)
                started = time.monotonic()
                async with conn.begin():
                    report.import_id = await new_import(conn, kind.key, member, sha, clock.now_ms())
                    await _merge(conn, kind, table, with_specialty, report, clock.now_ms(), shrink)
                    await conn.execute(text(
                        "UPDATE directory_import SET state = 'done', finished_at = :at, read_rows = :r, added = :a, "
                        "changed = :c, unchanged = :u, inactivated = :i, malformed = :m, problems = :p WHERE id = :id"),
                        {"at": clock.now_ms(), "r": report.read_rows, "a": report.added, "c": report.changed,
                         "u": report.unchanged, "i": report.inactivated, "m": report.malformed,
                         "p": report.problems_text(), "id": report.import_id})
                report.merge_seconds = time.monotonic() - started
            finally:
                await stage.drop()
    except (Unreadable, HeaderRefused) as err:
        message = err.message if isinstance(err, Unreadable) else f"{member} : {err.message}"
        await _failed(engine, clock, report.kind, member, sha, message)
        raise ImportRefused(message) from None
    log.info("directory.imported", import_id=report.import_id, kind=report.kind, read=report.read_rows,
             added=report.added, changed=report.changed, unchanged=report.unchanged,
             inactivated=report.inactivated, malformed=report.malformed)
    return report


async def _read(source: Any, report: Report, stage: Stage) -> tuple[Kind, Table, bool]:
    numbered = lines(source)
    _number, header_line = next(numbered)
    if header_line is None:
        raise Unreadable(f"{source.name} : en-tête illisible")
    header = header_line.split("|")
    if header and header[-1] == "":
        header.pop()
    kind = kind_of(source.name, header)
    report.kind = kind.key
    at = positions(kind, header)
    table = TABLES[kind.key]
    with_specialty = kind is PERSONNES and "specialty_code" in at
    await stage.create(table)
    batch: list[tuple[Any, ...]] = []
    for number, line in numbered:
        if line is not None and not line.strip():
            continue
        report.read_rows += 1
        if line is None:
            _malformed(report, number, "encodage illisible")
            continue
        try:
            batch.append(table.build(rows.cells_of(line, len(header)), at))
        except rows.Malformed as why:
            _malformed(report, number, str(why))
        if len(batch) >= BATCH:
            await stage.write(table, batch)
            batch = []
    if batch:
        await stage.write(table, batch)
    return kind, table, with_specialty


def _malformed(report: Report, number: int, why: str) -> None:
    report.malformed += 1
    if len(report.problems) < PROBLEMS_KEPT:
        report.problems.append((number, why))


async def _merge(conn: AsyncConnection, kind: Kind, table: Table, with_specialty: bool, report: Report,
                 at: int, shrink: bool) -> None:
    if kind is SAVOIR_FAIRE:
        await _merge_specialties(conn, report, at)
    else:
        await _merge_rows(conn, table, with_specialty, report, at, shrink)
    if kind is not MSSANTE and (report.added or report.changed or report.inactivated):
        await rebuild_index(conn)


async def _merge_rows(conn: AsyncConnection, table: Table, with_specialty: bool, report: Report, at: int,
                      shrink: bool) -> None:
    t = table.name
    same = " AND ".join(f"{t}.{k} = s.{k}" for k in table.keys)
    counted = (await conn.execute(text(
        f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM directory_stage s WHERE {same}) "
        f"THEN 1 ELSE 0 END), 0) FROM {t} WHERE active = 1"))).one()
    active, gone = int(counted[0]), int(counted[1])
    if not shrink and gone > SHRINK_LIMIT and gone * 2 > active:
        raise Unreadable(f"{report.file_name} : {gone} des {active} lignes actives de l'annuaire en sont absentes : "
                         "le fichier semble incomplet ; l'annuaire est laissé tel quel (si l'extraction est bien "
                         "complète : liaison annuaire importer --accepter-reduction)")
    kept = [c for c in table.columns if with_specialty or c not in ("specialty_code", "specialty_label",
                                                                     "specialty_search")]
    differs = f"({t}.digest IS NULL OR {t}.digest <> s.digest OR {t}.active = 0"
    if with_specialty:
        differs += "".join(f" OR COALESCE({t}.{c}, '') <> COALESCE(s.{c}, '')"
                           for c in ("specialty_code", "specialty_label"))
    differs += ")"
    staged: int = (await conn.execute(text("SELECT COUNT(*) FROM directory_stage"))).scalar_one()
    report.added = (await conn.execute(text(
        f"SELECT COUNT(*) FROM directory_stage s WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {same})"))).scalar_one()
    report.changed = (await conn.execute(text(
        f"SELECT COUNT(*) FROM directory_stage s JOIN {t} ON {same} WHERE {differs}"))).scalar_one()
    report.unchanged = staged - report.added - report.changed
    values = {"id": report.import_id, "at": at}
    sets = ", ".join(f"{c} = s.{c}" for c in kept if c not in table.keys)
    await conn.execute(text(
        f"UPDATE {t} SET {sets}, active = 1, import_id = :id, updated_at = :at FROM directory_stage s "
        f"WHERE {same} AND {differs}"), values)
    names = ", ".join(kept)
    await conn.execute(text(
        f"INSERT INTO {t} ({names}, active, import_id, updated_at) SELECT {', '.join('s.' + c for c in kept)}, 1, "
        f":id, :at FROM directory_stage s WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {same})"), values)
    made_inactive = await conn.execute(text(
        f"UPDATE {t} SET active = 0, import_id = :id, updated_at = :at WHERE active = 1 AND NOT EXISTS "
        f"(SELECT 1 FROM directory_stage s WHERE {same})"), values)
    report.inactivated = made_inactive.rowcount or 0


async def _merge_specialties(conn: AsyncConnection, report: Report, at: int) -> None:
    """The savoir-faire of the professionals already imported (one per person: the file's first); a person the
    directory does not know yet is counted unchanged (the next import of the persons brings them)."""
    t = "directory_person"
    differs = " OR ".join(f"COALESCE({t}.{c}, '') <> COALESCE(s.{c}, '')" for c in ("specialty_code",
                                                                                     "specialty_label"))
    staged: int = (await conn.execute(text("SELECT COUNT(*) FROM directory_stage"))).scalar_one()
    report.changed = (await conn.execute(text(
        f"SELECT COUNT(*) FROM directory_stage s WHERE EXISTS (SELECT 1 FROM {t} WHERE {t}.national_id = "
        f"s.national_id AND ({differs}))"))).scalar_one()
    report.unchanged = staged - report.changed
    await conn.execute(text(
        f"UPDATE {t} SET specialty_code = s.specialty_code, specialty_label = s.specialty_label, "
        f"specialty_search = s.specialty_search, updated_at = :at FROM directory_stage s "
        f"WHERE {t}.national_id = s.national_id AND ({differs})"), {"at": at})


async def _known(engine: AsyncEngine, member: str, sha: str) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT 1 FROM directory_import WHERE sha256 = :h AND file_name = :f AND state = 'done'"),
            {"h": sha, "f": member})).first() is not None


async def _failed(engine: AsyncEngine, clock: Clock, kind: str, member: str, sha: str, message: str) -> None:
    async with engine.begin() as conn:
        import_id = await new_import(conn, kind, member, sha, clock.now_ms())
        await conn.execute(text(
            "UPDATE directory_import SET state = 'failed', finished_at = :at, problems = :p WHERE id = :id"),
            {"at": clock.now_ms(), "p": message, "id": import_id})
    log.warning("directory.import_failed", import_id=import_id, kind=kind)
