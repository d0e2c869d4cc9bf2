"""Synthetic Annuaire Santé extracts, with the real header lines: persons and activities, savoir-faire, MSSanté
mailboxes; UTF-8 or Windows-1252, plain or zipped. Rows are made fast (a few seconds for 500,000): a template line
per profession, the varying cells joined in."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from liaison.directory.columns import (
    MSSANTE_HEADER,
    PERSONNES_HEADER,
    SAVOIR_FAIRE_HEADER,
)
from policies.professions import luhn_check_digit

LAST = ("MARTIN", "BERNARD", "LEFÈBVRE", "PETIT", "DURAND", "LEROY", "MOREAU", "SIMON", "LAURENT", "MICHEL",
        "GARCIA", "DAVID", "BERTRAND", "ROUX", "VINCENT", "FOURNIER", "MOREL", "GIRARD", "ANDRÉ", "MERCIER")
FIRST = ("Camille", "Léa", "Hélène", "Jérôme", "Chloé", "Noël", "Agnès", "François", "Inès", "Loïc")
PROFESSIONS = (("10", "Médecin"), ("60", "Infirmier"), ("70", "Masseur-Kinésithérapeute"), ("21", "Pharmacien"),
               ("26", "Audioprothésiste"))
COMMUNES = (("69003", "LYON", "69"), ("75015", "PARIS", "75"), ("13005", "MARSEILLE", "13"),
            ("33000", "BORDEAUX", "33"), ("59000", "LILLE", "59"), ("97400", "SAINT-DENIS", "974"))
WIDTH = {"personnes": 56, "savoirfaire": 13, "mssante": 31}
SYLLABLES = ("BA", "BER", "BON", "CHA", "COU", "DA", "DE", "DU", "FA", "FOU", "GAR", "GI", "GUE", "LA", "LE", "LOU",
             "MA", "MAR", "MO", "NA", "NI", "PE", "PI", "POU", "RA", "RI", "RO", "ROU", "SA", "SI", "TA", "TI", "VA",
             "VER", "VI", "ZE", "LIN", "MEL", "NOT", "QUIN")


def last_name(n: int) -> str:
    """The n-th person's name: the 20 common ones first, then names of three syllables (64,000 of them, none with a
    digit: a vocabulary of the size and kind of the real one's)."""
    if n < len(LAST):
        return LAST[n]
    k = len(SYLLABLES)
    return SYLLABLES[n % k] + SYLLABLES[(n // k) % k] + SYLLABLES[(n // k // k) % k] + ("D" if n % 3 == 0 else "")


def rpps(n: int) -> str:
    body = f"1{n:09d}"
    return body + str(luhn_check_digit(body))


def person_line(n: int, *, last: str | None = None, first: str | None = None, profession: int | None = None,
                commune: int | None = None, specialty: str = "", structure: str | None = None) -> str:
    number = rpps(n)
    code, label = PROFESSIONS[n % len(PROFESSIONS) if profession is None else profession]
    postcode, city, dep = COMMUNES[(n // 7) % len(COMMUNES) if commune is None else commune]
    cells = [""] * 56
    cells[0], cells[1], cells[2], cells[3] = "8", number, "8" + number, "DR" if code == "10" else ""
    cells[7] = last or last_name(n)
    cells[8] = first or FIRST[(n // 3) % len(FIRST)]
    cells[9], cells[10], cells[15], cells[16] = code, label, "", specialty
    cells[17], cells[19] = "L", f"{n:014d}"
    cells[24] = structure or f"CABINET {cells[7]}"
    cells[35], cells[37], cells[44] = postcode, city, dep
    return "|".join(cells) + "|"


def mailbox_line(n: int, *, address: str | None = None, kind: str = "PER") -> str:
    number = rpps(n)
    code, label = PROFESSIONS[n % len(PROFESSIONS)]
    postcode, city, dep = COMMUNES[(n // 7) % len(COMMUNES)]
    cells = [""] * 31
    cells[0], cells[1] = kind, address or f"pro{n}@exemple.mssante.fr"
    if kind == "PER":
        cells[2], cells[3], cells[4] = "8", number, "8" + number
        cells[9], cells[10] = last_name(n), FIRST[(n // 3) % 10]
    cells[13], cells[14], cells[18] = code, label, f"CABINET {n}"
    cells[27], cells[28], cells[29], cells[30] = f"{postcode} {city}", postcode, dep, "France"
    return "|".join(cells) + "|"


def specialty_line(n: int, label: str, code: str = "SM01") -> str:
    number = rpps(n)
    cells = ["8", number, "8" + number, "X", "Y", "70", "Masseur-Kinésithérapeute", "C", "Civil", "CEX",
             "Capacité", code, label]
    return "|".join(cells) + "|"


HEADERS = {"personnes": PERSONNES_HEADER, "savoirfaire": SAVOIR_FAIRE_HEADER, "mssante": MSSANTE_HEADER}
NAMES = {"personnes": "PS_LibreAcces_Personne_activite_202612060000.txt",
         "savoirfaire": "PS_LibreAcces_SavoirFaire_202612060000.txt",
         "mssante": "Extraction_Correspondance_MSSante_202612060000.txt"}


def persons(count: int, start: int = 0) -> list[str]:
    return [person_line(n) for n in range(start, start + count)]


def write(folder: Path, kind: str, lines: list[str], *, encoding: str = "utf-8", zipped: bool = False,
          name: str | None = None) -> Path:
    """The extract `kind` with `lines` after its real header; zipped: a .zip holding it, as the ANS serves it."""
    name = name or NAMES[kind]
    data = "\n".join([HEADERS[kind], *lines]).encode(encoding, errors="replace") + b"\n"
    if not zipped:
        path = folder / name
        path.write_bytes(data)
        return path
    path = folder / (name[:-4] + ".zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path
