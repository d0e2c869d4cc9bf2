"""The roster's professions, and the RPPS / ADELI identifiers of health professionals."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class Category(Enum):
    HEALTH = "professionnel de santé"
    SOCIAL = "professionnel du social ou du médico-social"
    OTHER = "autre"


@dataclass(frozen=True)
class Profession:
    key: str
    label: str   # shown when the person's sex is unknown
    category: Category
    code: str | None  # profession code of the ANS nomenclature TRE_G15-ProfessionSante, see below
    aliases: tuple[str, ...] = ()   # names that say nothing of the person's sex (or say it only by habit)
    feminine: tuple[str, ...] = ()  # names of a woman in this profession, the label first; (): the label
    masculine: tuple[str, ...] = ()  # names of a man, the label first; (): the label

    def label_for(self, sex: str | None) -> str:
        """The label in the person's gender: « F », « M », or unknown (today's label)."""
        forms = {"F": self.feminine, "M": self.masculine}.get(sex or "", ())
        return forms[0] if forms else self.label

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, self.label, *self.aliases, *self.feminine, *self.masculine)


# Codes: ANS nomenclature TRE_G15-ProfessionSante (OID 1.2.250.1.71.1.2.7, version 20250328,
# https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/), as published in the ANS FHIR terminology
# IG (ansforge/IG-terminologie-de-sante) and the value set JDV_J54-Profession-ROR.
# Psychologue: TRE_G15 code 93 exists but is deprecated there (created for the CPS cryptolib only);
# the live code 93 "Psychologue" is in TRE_R95-UsagerTitre. The psychologist is not a health
# profession under the CSP (usage de titre), hence SOCIAL here (takes part under R.1110-2).
# Social workers have codes in TRE_R94-ProfessionSocial (41 assistant de service social, 51 éducateur
# spécialisé, 42 auxiliaire de vie sociale), not in TRE_G15: code None here.
# Epicene titles (médecin, sage-femme, orthophoniste, psychologue…) have no feminine or masculine form.
H, S, O = Category.HEALTH, Category.SOCIAL, Category.OTHER
PROFESSIONS: tuple[Profession, ...] = (
    Profession("medecin", "Médecin", H, "10",
               ("médecin généraliste", "médecin traitant", "MG", "docteur", "Dr", "généraliste")),
    Profession("pharmacien", "Pharmacien", H, "21", ("pharma", "officine"), feminine=("Pharmacienne",)),
    Profession("chirurgien-dentiste", "Chirurgien-dentiste", H, "40", ("dentiste", "odontologiste"),
               feminine=("Chirurgienne-dentiste",)),
    Profession("sage-femme", "Sage-femme", H, "50", ("SF",), feminine=("Sage-femme", "maïeuticienne"),
               masculine=("Sage-femme", "maïeuticien")),
    Profession("infirmier", "Infirmier", H, "60",
               ("IDE", "IDEL", "IPA", "infirmier libéral", "infirmier en pratique avancée", "infirmier asalée"),
               feminine=("Infirmière", "infirmière libérale", "infirmière en pratique avancée", "infirmière asalée")),
    Profession("masseur-kinesitherapeute", "Masseur-kinésithérapeute", H, "70",
               ("kinésithérapeute", "kiné", "MK", "kinésiste", "physiothérapeute"),
               feminine=("Masseuse-kinésithérapeute",)),
    Profession("pedicure-podologue", "Pédicure-podologue", H, "80", ("podologue", "pédicure")),
    Profession("orthophoniste", "Orthophoniste", H, "91", ("ortho",)),
    Profession("orthoptiste", "Orthoptiste", H, "92", ()),
    Profession("ergotherapeute", "Ergothérapeute", H, "94", ("ergo",)),
    Profession("dieteticien", "Diététicien", H, "95", ("diététicien nutritionniste", "diet"),
               feminine=("Diététicienne", "diététicienne nutritionniste")),
    Profession("psychomotricien", "Psychomotricien", H, "96", ("psychomot",), feminine=("Psychomotricienne",)),
    Profession("psychologue", "Psychologue", S, "93", ("psy", "neuropsychologue")),
    Profession("assistant-service-social", "Assistant de service social", S, None,
               ("assistant social", "ASS", "travailleur social"),
               feminine=("Assistante de service social", "assistante sociale", "travailleuse sociale")),
    Profession("educateur-specialise", "Éducateur spécialisé", S, None, ("éducateur",),
               feminine=("Éducatrice spécialisée", "éducatrice")),
    Profession("enseignant-apa", "Enseignant en activité physique adaptée", S, None,
               ("enseignant APA", "APA", "EAPA", "activité physique adaptée"),
               feminine=("Enseignante en activité physique adaptée", "enseignante APA")),
    Profession("aide-domicile", "Auxiliaire de vie / aide à domicile", S, None,
               ("auxiliaire de vie", "auxiliaire de vie sociale", "AVS", "aide à domicile",
                "aide ménagère", "aide-ménagère")),
    Profession("patient-expert", "Patient expert", O, None, ("patient partenaire", "patient ressource"),
               feminine=("Patiente experte", "patiente partenaire")),
    Profession("secretaire-medicale", "Secrétaire médicale", O, None, ("secrétaire",),
               feminine=("Secrétaire médicale", "assistante médicale"),
               masculine=("Secrétaire médical", "assistant médical")),
    Profession("coordinateur", "Coordinateur de parcours", O, None,
               ("coordinateur de parcours", "coordonnateur", "coordo"),
               feminine=("Coordinatrice de parcours", "coordinatrice", "coordonnatrice")),
)


def fold(text: str) -> str:
    """Lower-case, without accents, hyphens, spaces, dots or apostrophes."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


_INDEX: dict[str, Profession] = {}
for _profession in PROFESSIONS:
    for _name in _profession.names:
        _INDEX.setdefault(fold(_name), _profession)


def find_profession(text: str) -> Profession | None:
    """The profession named by `text`, forgiving case, accents, hyphens and spaces; None if unknown."""
    return _INDEX.get(fold(text))


def profession_of(text: str) -> Profession:
    """The profession named by `text`, which must be known (checked where it was written: the config, the database)."""
    profession = find_profession(text)
    if profession is None:
        raise ValueError(f"profession inconnue : {text!r}")
    return profession


@dataclass(frozen=True)
class Specialty:
    """A physician's specialty (the directory's savoir-faire), which a patient may object to or consent to by name:
    « !opposition cardiologue ». A specialty is within a profession: an objection to the profession reaches it too."""
    key: str
    label: str                      # « Cardiologue »
    field: str                      # « cardiologie »
    within: str                     # the profession's key
    names: tuple[str, ...] = ()     # the directory's savoir-faire labels, and other names


# Savoir-faire labels of the ANS nomenclature TRE_R38-SpecialiteOrdinale, as the directory's extracts write them.
SPECIALTIES: tuple[Specialty, ...] = (
    Specialty("cardiologue", "Cardiologue", "cardiologie", "medecin",
              ("cardiologie", "cardiologie et maladies vasculaires", "pathologie cardio-vasculaire")),
    Specialty("pneumologue", "Pneumologue", "pneumologie", "medecin", ("pneumologie",)),
    Specialty("nephrologue", "Néphrologue", "néphrologie", "medecin", ("néphrologie",)),
    Specialty("neurologue", "Neurologue", "neurologie", "medecin", ("neurologie",)),
    Specialty("geriatre", "Gériatre", "gériatrie", "medecin", ("gériatrie", "gériatrie / gérontologie")),
    Specialty("psychiatre", "Psychiatre", "psychiatrie", "medecin", ("psychiatrie",)),
    Specialty("oncologue", "Oncologue", "oncologie", "medecin",
              ("oncologie", "oncologie médicale", "oncologie option médicale")),
    Specialty("endocrinologue", "Endocrinologue", "endocrinologie", "medecin",
              ("endocrinologie", "endocrinologie et métabolismes", "endocrinologie, diabétologie, nutrition",
               "endocrinologie-diabétologie-nutrition")),
)
_SPECIALTIES = {fold(name): s for s in SPECIALTIES for name in (s.key, s.label, s.field, *s.names)}


def find_specialty(text: str) -> Specialty | None:
    """The specialty named by `text` (« cardiologue », or the directory's « Cardiologie et maladies vasculaires »),
    forgiving case, accents, hyphens and spaces; None if it is none of ours."""
    return _SPECIALTIES.get(fold(text))


def written_sex(text: str) -> str | None:
    """« F » when `text` names a profession in a feminine form (« infirmière », « coordinatrice », « assistante
    sociale »), else None: a masculine or epicene form (« infirmier », « kinésithérapeute », « médecin ») says
    nothing, since the masculine is still commonly written for everyone. The label shown when the sex is unknown
    says nothing either (« Secrétaire médicale » is written for everyone)."""
    profession = find_profession(text)
    if profession is None or fold(text) == fold(profession.label):
        return None
    return "F" if fold(text) in {fold(name) for name in profession.feminine} else None


class ProfessionalIdError(ValueError):
    """An RPPS / ADELI number that cannot be right; `.message` in French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def luhn_check_digit(body: str) -> int:
    """The Luhn digit that completes `body` (digits only)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


# RPPS: 11 digits, the last one a Luhn check digit; checked against 6 real published RPPS numbers.
# ADELI: 9 characters = department (2: digits, 2A/2B for Corsica, 9A…9F overseas), profession (2 digits,
# e.g. 91 orthophoniste, 70 kiné), order number (4 digits), key (1). No official text on the key was
# found; every real ADELI number we could check (4, published by their holders) satisfies Luhn over
# its 9 digits, so the key is checked that way when the number is all digits. A number with letters
# (Corsica, overseas) is checked for shape only: we know no example to establish how its key is computed.
# IDNPS (identifiant national, Annuaire Santé): "8" + RPPS or "0" + ADELI; accepted and unwrapped.
_ADELI = re.compile(r"(?:\d{2}|2[AB]|9[A-F])\d{7}")


def check_professional_id(text: str) -> tuple[str, str]:
    """("RPPS", 11 digits) or ("ADELI", 9 characters); ProfessionalIdError with a French message."""
    value = re.sub(r"[\s.\-_/]+", "", text or "").upper()
    if len(value) == 12 and value.startswith("8") and value.isdigit():
        value = value[1:]
    elif len(value) == 10 and value.startswith("0"):
        value = value[1:]
    if len(value) == 11:
        if not (value.isdigit() and value.isascii()):
            bad = next(c for c in value if not c.isdigit())
            raise ProfessionalIdError(f"Un numéro RPPS ne contient que des chiffres : « {bad} » refusé en "
                                      f"position {value.index(bad) + 1}.")
        expected = luhn_check_digit(value[:10])
        if int(value[10]) != expected:
            raise ProfessionalIdError(f"Numéro RPPS {value} incorrect : le dernier chiffre (clé) vaut "
                                      f"{value[10]}, {expected} attendu ; vérifiez la saisie.")
        return "RPPS", value
    if len(value) == 9:
        if not _ADELI.fullmatch(value):
            raise ProfessionalIdError(f"Numéro ADELI {value} mal formé : 2 caractères de département (chiffres, "
                                      "2A/2B ou 9A à 9F) puis 7 chiffres.")
        if value.isdigit():
            expected = luhn_check_digit(value[:8])
            if int(value[8]) != expected:
                raise ProfessionalIdError(f"Numéro ADELI {value} incorrect : le dernier chiffre (clé) vaut "
                                          f"{value[8]}, {expected} attendu ; vérifiez la saisie.")
        return "ADELI", value
    raise ProfessionalIdError(f"Un numéro RPPS compte 11 chiffres et un numéro ADELI 9 caractères ; "
                              f"{len(value)} reçu{'s' if len(value) > 1 else ''} (espaces non comptés).")
