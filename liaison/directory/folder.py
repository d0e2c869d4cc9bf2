"""The folder of extracts read once a day by the bot (`directory.folder`): for each kind, the newest file (the ANS
dates its files in their names), imported unless a file of the same content was already; persons first, so that
the savoir-faire and the mailboxes find them. A refused file is logged (its import recorded `failed`) and the others
go on."""
from __future__ import annotations

import os
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from liaison.clock import Clock
from liaison.directory.columns import KINDS, fold_name
from liaison.directory.importer import ImportRefused, Report, import_path

log = structlog.get_logger(__name__)

DAY_SECONDS = 86400


def newest_files(folder: Path) -> list[Path]:
    """The newest file of each kind (by name, then by modification time), persons, savoir-faire, mailboxes."""
    found: dict[str, Path] = {}
    for path in folder.iterdir():
        if not path.is_file() or path.suffix.lower() not in (".txt", ".zip") or path.name.startswith("."):
            continue
        kind = next((k.key for k in KINDS if fold_name(k.file_prefix) in fold_name(path.name)), path.name)
        best = found.get(kind)
        if best is None or (path.name, os.path.getmtime(path)) > (best.name, os.path.getmtime(best)):
            found[kind] = path
    order = {k.key: i for i, k in enumerate(KINDS)}
    return [found[k] for k in sorted(found, key=lambda k: (order.get(k, len(order)), k))]


async def import_folder(engine: AsyncEngine, folder: Path, clock: Clock) -> list[Report]:
    reports: list[Report] = []
    if not folder.is_dir():
        log.warning("directory.folder_missing")
        return reports
    for path in newest_files(folder):
        try:
            reports += await import_path(engine, path, clock=clock, skip_known=True)
        except ImportRefused:
            log.warning("directory.folder_file_refused")
    log.info("directory.folder_read", imported=sum(not r.skipped for r in reports),
             skipped=sum(r.skipped for r in reports))
    return reports
