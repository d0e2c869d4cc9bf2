"""`liaison annuaire importer FICHIER…` and `liaison annuaire etat`: what the operator reads, in French."""
from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from liaison.config import Config
from liaison.db import open_database
from liaison.directory.importer import ImportRefused, Report, import_path
from liaison.stores.directory import Directory, ImportState

PARIS = ZoneInfo("Europe/Paris")
KIND_LABELS = {"personnes": "personnes et activités", "savoirfaire": "savoir-faire",
               "mssante": "boîtes MSSanté", "inconnu": "inconnu"}


async def directory_import(cfg: Config, paths: list[Path], shrink: bool = False) -> int:
    """Each file in turn; 0 when all were imported, 1 when one was refused (the directory unchanged by it)."""
    engine = await open_database(cfg.database.url)
    code = 0
    try:
        for path in paths:
            started = time.monotonic()
            try:
                reports = await import_path(engine, path, shrink=shrink)
            except ImportRefused as refused:
                print(f"refusé : {refused.message} ; l'annuaire est inchangé.", file=sys.stderr)
                code = 1
                continue
            for report in reports:
                print(report_lines(report, time.monotonic() - started))
    finally:
        await engine.dispose()
    return code


def report_lines(r: Report, seconds: float) -> str:
    lines = [f"{r.file_name} ({KIND_LABELS.get(r.kind, r.kind)}) : import n° {r.import_id} en {seconds:.1f} s",
             (f"  {r.read_rows} lignes lues : {r.added} ajoutées, {r.changed} modifiées, {r.unchanged} inchangées, "
              f"{r.inactivated} devenues inactives, {r.malformed} mal formées")]
    if r.problems:
        lines.append(f"  lignes mal formées (ignorées) : {r.problems_text()}")
    return "\n".join(lines)


async def directory_state(cfg: Config) -> int:
    engine = await open_database(cfg.database.url)
    try:
        imports = await Directory(engine).imports(limit=10)
    finally:
        await engine.dispose()
    if not imports:
        print("annuaire vide : aucun import (liaison annuaire importer FICHIER -c CONFIG)")
        return 0
    for i in imports:
        print(state_line(i))
    return 0


def state_line(i: ImportState) -> str:
    when = datetime.fromtimestamp(i.started_at / 1000, PARIS).strftime("%d/%m/%Y %H:%M")
    head = f"n° {i.id} · {when} · {KIND_LABELS.get(i.kind, i.kind)} · {i.file_name} · "
    if i.state == "failed":
        return head + f"REFUSÉ : {i.problems}"
    if i.state == "running":
        return head + "en cours (ou interrompu)"
    line = (head + f"{i.read_rows} lignes : {i.added} ajoutées, {i.changed} modifiées, {i.unchanged} inchangées, "
            f"{i.inactivated} inactives, {i.malformed} mal formées")
    return line + (f"\n    {i.problems}" if i.problems else "")
