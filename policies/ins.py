"""The patient's INS (Identifiant National de Santé): NIR or NIA, its key, its OID, its traits."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

OID_INS_NIR = "1.2.250.1.213.1.4.8"
OID_INS_NIA = "1.2.250.1.213.1.4.9"
OID_INS_NIR_TEST = "1.2.250.1.213.1.4.10"
OID_INS_NIA_TEST = "1.2.250.1.213.1.4.11"

_OIDS = {  # (kind, test) -> OID
    ("NIR", False): OID_INS_NIR, ("NIA", False): OID_INS_NIA,
    ("NIR", True): OID_INS_NIR_TEST, ("NIA", True): OID_INS_NIA_TEST,
}
_KIND_OF_OID = {oid: kind for (kind, _), oid in _OIDS.items()}
_TEST_OIDS = {OID_INS_NIR_TEST, OID_INS_NIA_TEST}

# First digit: 1/2 NIR (born in France or registered), 3/4 NIR of a person born abroad still being
# registered, 7/8 NIA (numéro d'immatriculation d'attente). Odd = male, even = female.
_KIND_OF_DIGIT = {"1": "NIR", "2": "NIR", "3": "NIR", "4": "NIR", "7": "NIA", "8": "NIA"}
_SEX_OF_DIGIT = {"1": "M", "3": "M", "7": "M", "2": "F", "4": "F", "8": "F"}
_SEPARATORS = re.compile(r"[\s.\-_/]+")
_SEX_LABEL = {"F": "féminin", "M": "masculin"}
_SEX_WORDS = {"f": "F", "femme": "F", "feminin": "F", "m": "M", "h": "M", "homme": "M", "masculin": "M"}


class InsError(ValueError):
    """An INS that cannot be used; `.message` says where, in French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TraitError(ValueError):
    """An identity trait (birth date, sex) that cannot be read; `.message` in French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Ins:
    value: str  # 15 characters, upper-case, 2A/2B kept as typed
    kind: str  # "NIR" | "NIA"
    oid: str

    @property
    def cx(self) -> str:
        """The patient id as an XDS CX value."""
        return f"{self.value}^^^&{self.oid}&ISO^NH"

    @property
    def is_test(self) -> bool:
        return self.oid in _TEST_OIDS


def nir_key(nir13: str) -> int:
    """97 − (NIR mod 97), Corsica's 2A/2B counted as 19/18."""
    digits = nir13[:5] + {"2A": "19", "2B": "18"}.get(nir13[5:7], nir13[5:7]) + nir13[7:]
    return 97 - int(digits) % 97


def parse_ins(text: str, *, test_mode: bool = False, oid: str | None = None) -> Ins:
    """Read an INS typed by a user ("1 48 05 75 123 456 78"); raise InsError with a French message."""
    value = _SEPARATORS.sub("", text or "").upper()
    if not value:
        raise InsError("Le numéro INS est vide : saisissez les 15 caractères du NIR (13 + clé de 2 chiffres).")
    if len(value) != 15:
        raise InsError(f"Le numéro INS doit compter 15 caractères (13 + clé de 2 chiffres) ; "
                       f"{len(value)} reçu{'s' if len(value) > 1 else ''} (espaces non comptés).")
    for position, char in enumerate(value, start=1):
        if char.isdigit() and char.isascii():
            continue
        if position == 7 and value[5:7] in ("2A", "2B"):
            continue
        if position in (6, 7):
            expected = "un chiffre ou 2A/2B (Corse)"
        else:
            expected = "un chiffre"
        raise InsError(f"Caractère « {char} » refusé en position {position} du numéro INS "
                       f"(espaces non comptés) : attendu {expected}.")
    kind = _KIND_OF_DIGIT.get(value[0])
    if kind is None:
        raise InsError(f"Le numéro INS commence par « {value[0]} » : le premier chiffre doit être 1 ou 2 "
                       "(NIR), 3 ou 4 (NIR provisoire), 7 ou 8 (NIA).")
    month = int(value[3:5])
    # Birth month: 01-12, or a conventional value for an incomplete civil record. Sources differ on the
    # exact ranges (20, 30-42, 50-99 vs 20-99): accept 20-99 rather than refuse a real INS.
    if not (1 <= month <= 12 or month >= 20):
        raise InsError(f"Le mois de naissance « {value[3:5]} » (positions 4-5) n'existe pas dans un NIR : "
                       "attendu 01 à 12, ou 20 à 99 pour un état civil incomplet.")
    expected_key = nir_key(value[:13])
    if int(value[13:]) != expected_key:
        # The key is there to catch a typo anywhere in the 15 characters: naming the key these 13 would need would
        # let a typo in the 13 through, with the identity of another patient. Say only that they do not match.
        raise InsError("La clé du numéro INS ne correspond pas à ses treize premiers caractères : une erreur de saisie "
                       "s'est glissée dans le numéro ou dans sa clé. Vérifiez le numéro complet sur la carte Vitale, "
                       "l'attestation ou le retour du téléservice INSi, et saisissez-le à nouveau.")
    return Ins(value, kind, _choose_oid(kind, test_mode, oid))


def _choose_oid(kind: str, test_mode: bool, oid: str | None) -> str:
    if oid is None:
        return _OIDS[(kind, test_mode)]
    oid = oid.strip()
    if oid.startswith("urn:oid:"):
        oid = oid[len("urn:oid:"):]
    if oid not in _KIND_OF_OID:
        raise InsError(f"OID « {oid} » inconnu pour un INS : attendu {OID_INS_NIR} (INS-NIR) "
                       f"ou {OID_INS_NIA} (INS-NIA).")
    if oid in _TEST_OIDS and not test_mode:
        raise InsError(f"L'OID {oid} est un OID de test ({OID_INS_NIR_TEST}, {OID_INS_NIA_TEST}) : "
                       "il est réservé aux données de test, jamais à un vrai patient.")
    if _KIND_OF_OID[oid] != kind:
        raise InsError(f"L'OID {oid} désigne un INS-{_KIND_OF_OID[oid]}, mais ce numéro est un {kind} : "
                       f"utilisez {_OIDS[(kind, oid in _TEST_OIDS)]}.")
    return oid


def check_traits(ins: Ins, birth_date: date, sex: str) -> list[str]:
    """French sentences for each disagreement between the NIR and the traits; [] if consistent.

    `sex` is read with parse_sex (TraitError if unreadable)."""
    problems = []
    sex = parse_sex(sex)
    nir_sex = _SEX_OF_DIGIT.get(ins.value[0])
    if nir_sex and nir_sex != sex:
        problems.append(f"Le sexe saisi ({_SEX_LABEL[sex]}) ne correspond pas au premier chiffre du NIR "
                        f"« {ins.value[0]} » ({_SEX_LABEL[nir_sex]}).")
    year = f"{birth_date.year % 100:02d}"
    if ins.value[1:3] != year:
        problems.append(f"L'année de naissance {birth_date.year} ne correspond pas au NIR, "
                        f"qui indique « {ins.value[1:3]} » (positions 2-3).")
    month = int(ins.value[3:5])
    if 1 <= month <= 12 and month != birth_date.month:
        problems.append(f"Le mois de naissance {birth_date.month:02d} ne correspond pas au NIR, "
                        f"qui indique « {ins.value[3:5]} » (positions 4-5).")
    return problems



def parse_birth_date(text: str, *, today: date | None = None) -> date:
    """JJ/MM/AAAA or AAAA-MM-JJ; refuses future dates and years before 1890 (TraitError)."""
    raw = (text or "").strip()
    match = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", raw)
    if match:
        day, month, year = (int(g) for g in match.groups())
    else:
        match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", raw)
        if not match:
            raise TraitError(f"Date de naissance « {raw} » illisible : écrivez JJ/MM/AAAA (ex. 03/05/1948).")
        year, month, day = (int(g) for g in match.groups())
    try:
        born = date(year, month, day)
    except ValueError:
        raise TraitError(f"La date de naissance « {raw} » n'existe pas (jour {day}, mois {month}, "
                         f"année {year}).") from None
    if year < 1890:
        raise TraitError(f"Année de naissance {year} improbable : vérifiez la saisie (JJ/MM/AAAA).")
    if born > (today or date.today()):
        raise TraitError(f"La date de naissance {born:%d/%m/%Y} est dans le futur.")
    return born


def parse_sex(text: str) -> str:
    """F, M, H, femme, homme… (case and accents ignored) → "F" or "M"; TraitError otherwise."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", (text or "").strip().lower())
                     if not unicodedata.combining(c))
    if folded in _SEX_WORDS:
        return _SEX_WORDS[folded]
    raise TraitError(f"Sexe « {text} » non reconnu : écrivez F (femme) ou M / H (homme).")
