"""policies.professions: the roster's professions and RPPS / ADELI numbers."""
from __future__ import annotations

import pytest

from policies.professions import (PROFESSIONS, Category, ProfessionalIdError, check_professional_id,
                                  find_profession, fold, luhn_check_digit)


@pytest.mark.parametrize("typed, key", [
    ("médecin", "medecin"), ("medecin", "medecin"), ("MÉDECIN", "medecin"), ("MG", "medecin"),
    ("mg", "medecin"), ("médecin généraliste", "medecin"), ("medecin-traitant", "medecin"),
    ("infirmier", "infirmier"), ("infirmiere", "infirmier"), ("Infirmière", "infirmier"), ("IDE", "infirmier"),
    ("idel", "infirmier"), ("kine", "masseur-kinesitherapeute"), ("Kiné", "masseur-kinesitherapeute"),
    ("masseur kinésithérapeute", "masseur-kinesitherapeute"), ("MK", "masseur-kinesitherapeute"),
    ("sage femme", "sage-femme"), ("Sage-Femme", "sage-femme"), ("sagefemme", "sage-femme"),
    ("pharmacienne", "pharmacien"), ("dentiste", "chirurgien-dentiste"),
    ("chirurgien dentiste", "chirurgien-dentiste"), ("podologue", "pedicure-podologue"),
    ("orthophoniste", "orthophoniste"), ("orthoptiste", "orthoptiste"), ("ergo", "ergotherapeute"),
    ("dieteticienne", "dieteticien"), ("psychomotricienne", "psychomotricien"),
    ("psy", "psychologue"), ("Psychologue", "psychologue"),
    ("assistante sociale", "assistant-service-social"), ("assistant de service social", "assistant-service-social"),
    ("éducatrice spécialisée", "educateur-specialise"),
    ("APA", "enseignant-apa"), ("EAPA", "enseignant-apa"), ("enseignante APA", "enseignant-apa"),
    ("activité physique adaptée", "enseignant-apa"),
    ("auxiliaire de vie", "aide-domicile"), ("aide à domicile", "aide-domicile"), ("aide-domicile", "aide-domicile"),
    ("patiente experte", "patient-expert"), ("patient partenaire", "patient-expert"),
    ("secrétaire", "secretaire-medicale"), ("secretaire medicale", "secretaire-medicale"),
    ("coordinatrice de parcours", "coordinateur"), ("Coordinatrice", "coordinateur"), ("coordo", "coordinateur"),
    ("  Infirmière  ", "infirmier"),
])
def test_find_profession_forgives_spelling(typed, key):
    found = find_profession(typed)
    assert found is not None and found.key == key


@pytest.mark.parametrize("typed", ["", "plombier", "chirurgien", "a", "infirm"])
def test_unknown_profession(typed):
    assert find_profession(typed) is None


# TRE_G15-ProfessionSante codes (ANS); psychologue 93 lives in TRE_R95-UsagerTitre.
@pytest.mark.parametrize("key, code, category", [
    ("medecin", "10", Category.HEALTH), ("pharmacien", "21", Category.HEALTH),
    ("chirurgien-dentiste", "40", Category.HEALTH), ("sage-femme", "50", Category.HEALTH),
    ("infirmier", "60", Category.HEALTH), ("masseur-kinesitherapeute", "70", Category.HEALTH),
    ("pedicure-podologue", "80", Category.HEALTH), ("orthophoniste", "91", Category.HEALTH),
    ("orthoptiste", "92", Category.HEALTH), ("ergotherapeute", "94", Category.HEALTH),
    ("dieteticien", "95", Category.HEALTH), ("psychomotricien", "96", Category.HEALTH),
    ("psychologue", "93", Category.SOCIAL), ("assistant-service-social", None, Category.SOCIAL),
    ("educateur-specialise", None, Category.SOCIAL), ("enseignant-apa", None, Category.SOCIAL),
    ("aide-domicile", None, Category.SOCIAL), ("patient-expert", None, Category.OTHER),
    ("secretaire-medicale", None, Category.OTHER), ("coordinateur", None, Category.OTHER),
])
def test_catalogue_codes_and_categories(key, code, category):
    profession = find_profession(key)
    assert profession.code == code and profession.category is category


def test_catalogue_names_are_unambiguous():
    seen = {}
    for profession in PROFESSIONS:
        for name in profession.names:   # key, label, aliases, feminine and masculine names
            assert seen.setdefault(fold(name), profession.key) == profession.key, name
    assert Category.HEALTH.value == "professionnel de santé"


def luhn_ok(digits: str) -> bool:
    """Independent Luhn check over a whole number (check digit included)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        doubled = int(char) * (2 if index % 2 else 1)
        total += doubled // 10 + doubled % 10
    return total % 10 == 0


def complete(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


RPPS = complete("1000123456")  # synthetic numbers: no real practitioner in the tests
ADELI = complete("75910123")


def test_luhn_check_digit():
    assert luhn_check_digit("7992739871") == 3  # the textbook Luhn example 79927398713
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert luhn_check_digit(RPPS[:10]) == int(RPPS[10])


@pytest.mark.parametrize("typed, expected", [
    (RPPS, ("RPPS", RPPS)),
    (f"{RPPS[:3]} {RPPS[3:6]} {RPPS[6:9]} {RPPS[9:]}", ("RPPS", RPPS)),
    (f"{RPPS[:4]}-{RPPS[4:8]}-{RPPS[8:]}", ("RPPS", RPPS)),
    ("8" + RPPS, ("RPPS", RPPS)),  # IDNPS: "8" + RPPS
    (ADELI, ("ADELI", ADELI)),
    (f"{ADELI[:2]} {ADELI[2:4]} {ADELI[4:8]} {ADELI[8]}", ("ADELI", ADELI)),
    ("0" + ADELI, ("ADELI", ADELI)),  # IDNPS: "0" + ADELI
    ("2A9101234", ("ADELI", "2A9101234")),  # Corsica: shape only
    ("2b7012345", ("ADELI", "2B7012345")),
    ("9A6012345", ("ADELI", "9A6012345")),  # overseas: shape only
])
def test_professional_id_valid(typed, expected):
    assert check_professional_id(typed) == expected


def bump(number: str) -> str:
    """The same number with a wrong last digit."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.mark.parametrize("typed, fragments", [
    (bump(RPPS), ["RPPS", f"{RPPS[-1]} attendu", f"vaut {bump(RPPS)[-1]}"]),
    ("10000000001", ["RPPS", "clé"]),
    (RPPS[:10] + "A", ["RPPS", "« A »", "position 11"]),
    (bump(ADELI), ["ADELI", f"{ADELI[-1]} attendu"]),
    ("2C9101234", ["ADELI", "mal formé"]),
    (ADELI[:8] + "A", ["ADELI", "mal formé"]),
    (RPPS[:10], ["11 chiffres", "9 caractères", "10 reçus"]),
    ("12345", ["5 reçus"]),
    ("", ["0 reçu"]),
])
def test_professional_id_invalid(typed, fragments):
    with pytest.raises(ProfessionalIdError) as caught:
        check_professional_id(typed)
    for fragment in fragments:
        assert fragment in caught.value.message
