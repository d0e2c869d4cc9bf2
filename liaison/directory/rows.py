"""A line of an extract into the row stored, or the reason it is malformed (in French, never quoting the line).

Each row carries its searchable text, folded (lower case, no accents, words only), and a digest of what it says, so
that an import tells a changed row from an unchanged one in SQL.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

from policies.professions import (
    PROFESSIONS,
    Profession,
    ProfessionalIdError,
    check_professional_id,
)

PERSON_COLUMNS = ("national_id", "activity", "id_type", "rpps", "civility", "last_name", "first_name",
                  "profession_code", "profession_label", "profession", "specialty_code", "specialty_label",
                  "structure", "siret", "finess", "postcode", "commune", "department", "search_text",
                  "specialty_search", "digest")
MAILBOX_COLUMNS = ("address", "kind", "national_id", "civility", "last_name", "first_name", "profession_code",
                   "profession_label", "profession", "specialty_label", "structure", "service", "postcode", "commune",
                   "department", "digest")
SPECIALTY_COLUMNS = ("national_id", "specialty_code", "specialty_label", "specialty_search")

_BY_CODE: dict[str, Profession] = {p.code: p for p in PROFESSIONS if p.code}
_ADDRESS = re.compile(r"[^@\s|]+@[^@\s|]+\.[^@\s|]+")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


class Malformed(ValueError):
    pass


def fold_words(text: str) -> str:
    """« Lefèbvre-Dupont, Kiné » -> « lefebvre dupont kine »: what both databases' searches compare."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", plain).strip()


_PROFESSION_WORDS = {code: fold_words(" ".join(p.names)) for code, p in _BY_CODE.items()}


def profession_of_code(code: str) -> Profession | None:
    return _BY_CODE.get(code.strip().lstrip("0") or code.strip()) if code else None


def _digest(values: tuple[str | None, ...]) -> str:
    return hashlib.blake2b("\x1f".join(v or "" for v in values).encode(), digest_size=12).hexdigest()


def cells_of(line: str, width: int) -> list[str]:
    cells = line.split("|")
    if len(cells) == width + 1 and cells[-1] == "":
        cells.pop()
    if len(cells) != width:
        raise Malformed(f"{len(cells) - line.endswith('|')} colonnes au lieu de {width}")
    return cells


def national_id(value: str, required: bool) -> tuple[str | None, str | None]:
    """(the national id as the directory writes it, the RPPS when it is one)."""
    value = value.strip()
    if not value:
        if required:
            raise Malformed("identifiant national vide")
        return None, None
    try:
        kind, number = check_professional_id(value)
    except ProfessionalIdError:
        raise Malformed("identifiant national invalide (longueur ou clé)") from None
    return ("8" + number, number) if kind == "RPPS" else ("0" + number, None)


def _department(department: str, postcode: str) -> str | None:
    if department:
        return department
    if len(postcode) == 5 and postcode.isdigit():
        return postcode[:3] if postcode.startswith("97") else postcode[:2]
    return None


def _commune(commune: str, delivery: str) -> str | None:
    """The commune, or the one a « Bureau cedex » / acheminement line names after its postcode."""
    if commune:
        return commune
    words = delivery.split()
    if words and words[0].isdigit():
        words = words[1:]
    if words and words[-1].isdigit() and len(words) > 1 and words[-2].upper() == "CEDEX":
        words = words[:-2]
    elif words and words[-1].upper() == "CEDEX":
        words = words[:-1]
    return " ".join(words) or None


def person(cells: list[str], at: dict[str, int]) -> tuple[str | None, ...]:
    def get(field: str) -> str:
        index = at.get(field)
        return cells[index].strip() if index is not None else ""

    nid, rpps = national_id(get("national_id"), required=True)
    last_name = get("last_name")
    if not last_name:
        raise Malformed("nom d'exercice vide")
    code = get("profession_code")
    ours = profession_of_code(code)
    structure = get("structure") or get("brand") or None
    postcode = get("postcode")
    commune = _commune(get("commune"), get("cedex"))
    department = _department(get("department"), postcode)
    activity = _digest((get("structure_id"), get("siret"), get("finess"), structure, get("mode"), get("role")))
    specialty = get("specialty_label") or None
    search = fold_words(" ".join(x for x in (last_name, get("first_name"), get("profession_label"), structure,
                                             get("brand"), commune or "", postcode, department or "") if x))
    if ours:
        search = " ".join(dict.fromkeys(f"{search} {_PROFESSION_WORDS[ours.code or '']}".split()))
    stored = (nid, activity, get("id_type") or None, rpps, get("civility") or None, last_name,
              get("first_name") or None, code or None, get("profession_label") or None, ours.key if ours else None,
              get("specialty_code") or None, specialty, structure, get("siret") or None, get("finess") or None,
              postcode or None, commune, department, search, fold_words(specialty or "") or None)
    return (*stored, _digest(stored[:10] + stored[12:19]))


def mailbox(cells: list[str], at: dict[str, int]) -> tuple[str | None, ...]:
    def get(field: str) -> str:
        index = at.get(field)
        return cells[index].strip() if index is not None else ""

    address = get("address").lower()
    if not _ADDRESS.fullmatch(address):
        raise Malformed("adresse BAL invalide")
    kind = get("box_kind").upper()
    if kind not in ("PER", "ORG"):
        raise Malformed("type de BAL inconnu (PER ou ORG attendu)")
    nid, _rpps = national_id(get("national_id"), required=False)
    code = get("profession_code")
    ours = profession_of_code(code)
    postcode = get("postcode")
    stored = (address, kind, nid, get("civility") or None, get("last_name") or None, get("first_name") or None,
              code or None, get("profession_label") or None, ours.key if ours else None,
              get("specialty_label") or None, get("structure") or get("brand") or None, get("service") or None,
              postcode or None, _commune("", get("delivery")), _department(get("department"), postcode))
    return (*stored, _digest(stored))


def specialty(cells: list[str], at: dict[str, int]) -> tuple[str | None, ...]:
    nid, _rpps = national_id(cells[at["national_id"]], required=True)
    code, label = cells[at["specialty_code"]].strip(), cells[at["specialty_label"]].strip()
    if not code and not label:
        raise Malformed("savoir-faire vide")
    return nid, code or None, label or None, fold_words(label) or None
