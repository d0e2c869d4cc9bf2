"""The directory's search on SQLite (FTS5) and PostgreSQL (pg_trgm): by name, RPPS, profession with a commune or a
department, savoir-faire; with and without accents, with a typo; paged; each entry with its MSSanté address."""
from __future__ import annotations

import pytest

from liaison.directory.importer import import_path
from liaison.directory.search import distance
from liaison.stores.directory import Directory
from policies.professions import luhn_check_digit
from tests.support import extracts as x

KINE, NURSE, DOCTOR = 2, 1, 0
LYON, PARIS = 0, 1


@pytest.fixture
async def directory(engine, tmp_path) -> Directory:
    people = [
        x.person_line(1, last="LEFÈBVRE", first="Camille", profession=DOCTOR, commune=PARIS,
                      structure="CHU DE DÉMONSTRATION"),
        x.person_line(2, last="LEFEBVRE", first="Hélène", profession=KINE, commune=LYON),
        x.person_line(3, last="DUPONT", first="Jérôme", profession=KINE, commune=LYON),
        x.person_line(4, last="MARTIN", first="Agnès", profession=NURSE, commune=LYON),
        x.person_line(5, last="BERNARD", first="Loïc", profession=NURSE, commune=PARIS),
        x.person_line(6, last="GIRAUD", first="Inès", profession=KINE, commune=PARIS),
        *(x.person_line(100 + n, last=f"ROUSSEAU{chr(65 + n)}", first="Léa", profession=NURSE, commune=LYON)
          for n in range(25)),
    ]
    await import_path(engine, x.write(tmp_path, "personnes", people, encoding="cp1252"))
    await import_path(engine, x.write(tmp_path, "savoirfaire", [x.specialty_line(3, "Rééducation vestibulaire")]))
    await import_path(engine, x.write(tmp_path, "mssante", [x.mailbox_line(1, address="camille.lefebvre@chu.mssante.fr")],
                                      zipped=True))
    return Directory(engine)


async def _names(d: Directory, query: str) -> list[str]:
    entries, _total = await d.search(query, limit=50)
    return [e.last_name for e in entries]


@pytest.mark.parametrize("query", ["lefebvre", "Lefèbvre", "LEFEBVRE", "lefebre", "lefevbre", "Lefèvre"])
async def test_a_name_with_or_without_accents_and_with_a_typo(directory, query):
    assert set(await _names(directory, query)) == {"LEFÈBVRE", "LEFEBVRE"}


async def test_a_first_and_last_name(directory):
    entries, total = await directory.search("helene lefebvre")
    assert total == 1 and entries[0].first_name == "Hélène"


async def test_an_rpps_is_an_exact_search_with_the_mssante_address(directory):
    entries, total = await directory.search(x.rpps(1))
    assert total == 1
    [e] = entries
    assert (e.name, e.mailbox, e.structure, e.commune) == ("Dr Camille LEFÈBVRE", "camille.lefebvre@chu.mssante.fr",
                                                          "CHU DE DÉMONSTRATION", "PARIS")
    assert (await directory.search("8" + x.rpps(1)))[1] == 1 and (await directory.search("10000000000"))[1] == 0


@pytest.mark.parametrize("query", ["kiné Lyon", "kine lyon", "KINÉSITHÉRAPEUTE lyon", "kinésithérapeute 69",
                                   "masseur kinesitherapeute lyom"])
async def test_a_profession_with_a_commune_or_a_department(directory, query):
    assert set(await _names(directory, query)) == {"LEFEBVRE", "DUPONT"}


@pytest.mark.parametrize("query", ["infirmier 75", "infirmière paris", "IDE Paris"])
async def test_a_profession_in_the_forms_we_know(directory, query):
    assert await _names(directory, query) == ["BERNARD"]


@pytest.mark.parametrize("query", ["vestibulaire", "rééducation vestibulaire", "vestibullaire", "kiné vestibulaire"])
async def test_a_savoir_faire(directory, query):
    entries, total = await directory.search(query)
    assert total == 1 and entries[0].specialty == "Rééducation vestibulaire"


async def test_pages_and_total(directory):
    first, total = await directory.search("infirmier lyon", limit=10)
    second, again = await directory.search("infirmier lyon", limit=10, offset=10)
    last, _ = await directory.search("infirmier lyon", limit=10, offset=20)
    assert total == again == 26 and (len(first), len(second), len(last)) == (10, 10, 6)
    assert len({e.last_name for e in first + second + last}) == 26


async def test_nothing_found(directory):
    assert await directory.search("zzzzzz") == ([], 0)
    assert await directory.search("de la") == ([], 0)
    assert await directory.search("") == ([], 0)


async def test_an_inactive_professional_is_not_found(directory, engine, tmp_path):
    await import_path(engine, x.write(tmp_path, "personnes", [x.person_line(3, last="DUPONT", first="Jérôme",
                                                                            profession=KINE, commune=LYON)],
                                      name="PS_LibreAcces_Personne_activite_999.txt"))
    assert await _names(directory, "lefebvre") == [] and await _names(directory, "dupont") == ["DUPONT"]


def test_distance_counts_a_swap_as_one_edit():
    assert distance("lefebvre", "lefebre", 2) == 1 and distance("lefevbre", "lefebvre", 2) == 1
    assert distance("martin", "bernard", 2) == 3


async def test_an_adeli_number_is_an_exact_search(engine, tmp_path):
    adeli = "69123456" + str(luhn_check_digit("69123456"))   # department, profession, order number, key
    line = x.person_line(1).split("|")
    line[0], line[1], line[2] = "0", adeli, "0" + adeli
    await import_path(engine, x.write(tmp_path, "personnes", ["|".join(line)]))
    entries, total = await Directory(engine).search(adeli)
    assert total == 1 and entries[0].national_id == "0" + adeli and entries[0].rpps is None
