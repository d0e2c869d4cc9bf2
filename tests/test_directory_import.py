"""The directory's import (liaison/directory/) on SQLite and PostgreSQL: synthetic extracts with the real header
lines, UTF-8 and Windows-1252, plain and zipped; 200,000 rows; malformed lines reported by number; rows gone made
inactive; the same file twice changes nothing; a file that is not an extract, a truncated zip, an empty file and
an endless line refused with the directory as it was."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from liaison.cli import main
from liaison.clock import SystemClock
from liaison.directory.folder import import_folder
from liaison.directory.importer import ImportRefused, import_path
from liaison.directory.reading import MAX_LINE
from liaison.stores.directory import Directory
from tests.support import extracts as x


async def _count(engine, table: str, active: int = 1) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE active = :a"), {"a": active})).scalar()


async def test_200000_rows_are_imported_in_a_few_seconds(engine, tmp_path):
    path = x.write(tmp_path, "personnes", x.persons(200_000))
    started = time.monotonic()
    [report] = await import_path(engine, path)
    elapsed = time.monotonic() - started
    assert (report.read_rows, report.added, report.malformed) == (200_000, 200_000, 0)
    assert await _count(engine, "directory_person") == 200_000
    assert elapsed < 40, f"{elapsed:.1f} s"
    [entry] = await Directory(engine).by_id(x.rpps(123_456))
    assert entry.rpps == x.rpps(123_456) and entry.profession is not None


@pytest.mark.parametrize("encoding,zipped", [("utf-8", False), ("cp1252", True), ("cp1252", False), ("utf-8", True)])
async def test_both_encodings_plain_and_zipped(engine, tmp_path, encoding, zipped):
    lines = [x.person_line(1, last="LEFÈBVRE", first="Hélène", profession=2, commune=0)]
    path = x.write(tmp_path, "personnes", lines + x.persons(50, start=10), encoding=encoding, zipped=zipped)
    [report] = await import_path(engine, path)
    assert (report.added, report.malformed) == (51, 0)
    [entry] = await Directory(engine).by_id(x.rpps(1))
    assert (entry.last_name, entry.first_name, entry.profession_label) == ("LEFÈBVRE", "Hélène",
                                                                          "Masseur-Kinésithérapeute")
    assert entry.profession is not None and entry.profession.key == "masseur-kinesitherapeute"
    assert (entry.commune, entry.postcode, entry.department) == ("LYON", "69003", "69")


async def test_malformed_lines_are_counted_and_reported_by_number_only(engine, tmp_path):
    bad_key = x.person_line(7).replace(x.rpps(7), x.rpps(7)[:-1] + str((int(x.rpps(7)[-1]) + 1) % 10))
    lines = [*x.persons(5), "trop|peu|de|colonnes|", bad_key, x.person_line(8, last=" "), *x.persons(600, start=20)]
    path = x.write(tmp_path, "personnes", lines)
    with path.open("ab") as f:   # a line that is not UTF-8 in a UTF-8 file (past the first 64 KiB, where it is found)
        f.write(x.person_line(30).encode("utf-8").replace(b"CABINET", b"CABINET \xe9\xe8") + b"\n")
    [report] = await import_path(engine, path)
    assert (report.read_rows, report.added, report.malformed) == (609, 605, 4)
    assert [n for n, _why in report.problems] == [7, 8, 9, 610]   # the header is line 1
    text_ = report.problems_text() or ""
    assert "4 colonnes au lieu de 56" in text_ and "clé" in text_ and "nom d'exercice vide" in text_ and "encodage illisible" in text_
    assert "trop" not in text_ and "CABINET" not in text_
    [state] = await Directory(engine).imports(1)
    assert (state.state, state.malformed, state.problems) == ("done", 4, text_)


async def test_rows_gone_from_a_newer_extract_are_made_inactive_never_deleted(engine, tmp_path):
    d = Directory(engine)
    first = x.write(tmp_path, "personnes", x.persons(100), name="PS_LibreAcces_Personne_activite_202612050000.txt")
    await import_path(engine, first)
    newer = x.persons(90) + [x.person_line(200)]
    [report] = await import_path(engine, x.write(tmp_path, "personnes", newer))
    assert (report.added, report.changed, report.unchanged, report.inactivated) == (1, 0, 90, 10)
    assert await d.by_id(x.rpps(95)) == [] and await _count(engine, "directory_person", active=0) == 10
    assert len(await d.by_id(x.rpps(200))) == 1
    moved = [x.person_line(n, commune=1) if n == 3 else x.person_line(n) for n in range(100)]
    [report] = await import_path(engine, x.write(tmp_path, "personnes", moved, name="later.txt"))
    # the person 3's site moved (the same activity, changed); 90 to 99 came back (changed: active again); 200 gone
    assert (report.added, report.changed, report.unchanged, report.inactivated) == (0, 11, 89, 1)
    assert [e.commune for e in await d.by_id(x.rpps(3))] == ["PARIS"]


async def test_the_same_file_twice_changes_nothing(engine, tmp_path):
    path = x.write(tmp_path, "personnes", x.persons(300), encoding="cp1252", zipped=True)
    [first] = await import_path(engine, path)
    async with engine.connect() as conn:
        before = (await conn.execute(text("SELECT * FROM directory_person ORDER BY national_id, activity"))).all()
    [second] = await import_path(engine, path)
    assert (second.added, second.changed, second.unchanged, second.inactivated) == (0, 0, 300, 0)
    async with engine.connect() as conn:
        after = (await conn.execute(text("SELECT * FROM directory_person ORDER BY national_id, activity"))).all()
    assert before == after and first.added == 300


async def test_mailboxes_and_savoir_faire(engine, tmp_path):
    d = Directory(engine)
    await import_path(engine, x.write(tmp_path, "personnes", [x.person_line(4, profession=2)]))
    boxes = [x.mailbox_line(4, address="Camille.Petit@Exemple.MSSante.fr"), x.mailbox_line(4, address="camille.petit@exemple.mssante.fr"),
             x.mailbox_line(9, address="secretariat@chu.mssante.fr", kind="ORG"), "PER|pas-une-adresse|" + "|" * 29]
    [report] = await import_path(engine, x.write(tmp_path, "mssante", boxes, zipped=True))
    assert (report.read_rows, report.added, report.malformed) == (4, 2, 1)   # the address repeated, kept once
    entry = await d.by_address("CAMILLE.PETIT@exemple.mssante.fr")
    assert entry and entry.rpps == x.rpps(4) and entry.profession and entry.profession.key == "masseur-kinesitherapeute"
    service = await d.by_address("secretariat@chu.mssante.fr")
    assert service and service.national_id is None and service.structure == "CABINET 9"
    [person] = await d.by_id("8" + x.rpps(4))
    assert person.mailbox == "camille.petit@exemple.mssante.fr"
    [report] = await import_path(engine, x.write(tmp_path, "savoirfaire", [x.specialty_line(4, "Rééducation vestibulaire")]))
    assert report.changed == 1
    [person] = await d.by_id(x.rpps(4))
    assert person.specialty == "Rééducation vestibulaire"


def _over_long(tmp_path: Path) -> Path:
    path = x.write(tmp_path, "personnes", x.persons(3), name="PS_LibreAcces_Personne_activite_long.txt")
    with path.open("ab") as f:
        f.write(b"8|" + b"A" * (MAX_LINE * 3))   # no end of line: never read whole
    return path


def _truncated_zip(tmp_path: Path) -> Path:
    whole = x.write(tmp_path, "personnes", x.persons(2000), zipped=True, name="PS_LibreAcces_Personne_activite_t.txt")
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    return whole


def _wrong_header(tmp_path: Path) -> Path:
    path = tmp_path / "PS_LibreAcces_Personne_activite_faux.txt"
    path.write_text("Identifiant PP|Nom|Prénom|\n1|2|3|\n", encoding="utf-8")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "vide.txt"
    path.write_bytes(b"")
    return path


def _header_only(tmp_path: Path) -> Path:
    return x.write(tmp_path, "personnes", [], name="PS_LibreAcces_Personne_activite_entete.txt")


@pytest.mark.parametrize("bad,says", [
    (_wrong_header, ("colonnes absentes de l'en-tête : « Identification nationale PP », « Nom d'exercice », "
                     "« Code profession »")),
    (_truncated_zip, "archive zip illisible"),
    (_empty, "fichier vide"),
    (_header_only, "aucune ligne après l'en-tête"),
    (_over_long, f"la ligne 5 dépasse {MAX_LINE // 1024} Kio"),
])
async def test_a_bad_file_is_refused_and_the_directory_stays_as_it_was(engine, tmp_path, bad, says):
    d = Directory(engine)
    await import_path(engine, x.write(tmp_path, "personnes", x.persons(40)))
    with pytest.raises(ImportRefused) as refused:
        await import_path(engine, bad(tmp_path))
    assert says in refused.value.message
    assert await _count(engine, "directory_person") == 40 and await _count(engine, "directory_person", 0) == 0
    assert len(await d.by_id(x.rpps(39))) == 1 and (await d.search("martin"))[1] > 0
    failed, done = await d.imports(2)
    assert (failed.state, done.state) == ("failed", "done") and says in (failed.problems or "")


async def test_the_command_says_what_it_did_and_fails_on_a_refused_file(db_url, tmp_path, capsys):
    config = tmp_path / "liaison.yaml"
    config.write_text(f'homeserver: {{url: "http://localhost:8008", server_name: localhost}}\n'
                      f'bot: {{user_id: "@liaison:localhost"}}\ndatabase: {{url: "{db_url}"}}\n', encoding="utf-8")
    good = x.write(tmp_path, "personnes", x.persons(20) + ["mal|formée|"])
    assert await asyncio.to_thread(main, ["annuaire", "importer", str(good), "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "21 lignes lues : 20 ajoutées" in out and "ligne 22 : 2 colonnes au lieu de 56" in out
    assert await asyncio.to_thread(main, ["annuaire", "importer", str(_empty(tmp_path)), "-c", str(config)]) == 1
    assert "refusé : vide.txt : fichier vide" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["annuaire", "etat", "-c", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "REFUSÉ : vide.txt : fichier vide" in shown and "20 ajoutées" in shown


async def test_the_daily_folder_imports_the_newest_file_of_each_kind_once(engine, tmp_path):
    x.write(tmp_path, "personnes", x.persons(10), name="PS_LibreAcces_Personne_activite_202612040000.txt")
    x.write(tmp_path, "personnes", x.persons(12), name="PS_LibreAcces_Personne_activite_202612050000.txt")
    x.write(tmp_path, "mssante", [x.mailbox_line(3)], zipped=True)
    reports = await import_folder(engine, tmp_path, SystemClock())
    assert [(r.kind, r.added) for r in reports] == [("personnes", 12), ("mssante", 1)]
    again = await import_folder(engine, tmp_path, SystemClock())
    assert [r.skipped for r in again] == [True, True]
    assert (await Directory(engine).by_id(x.rpps(3)))[0].mailbox == "pro3@exemple.mssante.fr"


async def test_a_file_cut_short_is_refused_unless_the_operator_accepts_it(engine, tmp_path):
    await import_path(engine, x.write(tmp_path, "personnes", x.persons(3000)))
    cut = x.write(tmp_path, "personnes", x.persons(1200), name="PS_LibreAcces_Personne_activite_cut.txt")
    with pytest.raises(ImportRefused) as refused:
        await import_path(engine, cut)
    assert "1800 des 3000 lignes actives" in refused.value.message and "--accepter-reduction" in refused.value.message
    assert await _count(engine, "directory_person") == 3000
    [report] = await import_path(engine, cut, shrink=True)
    assert report.inactivated == 1800 and await _count(engine, "directory_person") == 1200
