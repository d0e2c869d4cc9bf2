"""A label follows the person: the profession in the member's gender, « né » / « née » for the patient."""
from __future__ import annotations

import pytest

from policies.gender import born
from policies.professions import PROFESSIONS, find_profession, fold, written_sex


@pytest.mark.parametrize("key, woman, man", [
    ("infirmier", "Infirmière", "Infirmier"), ("coordinateur", "Coordinatrice de parcours", "Coordinateur de parcours"),
    ("medecin", "Médecin", "Médecin"), ("pharmacien", "Pharmacienne", "Pharmacien"),
    ("masseur-kinesitherapeute", "Masseuse-kinésithérapeute", "Masseur-kinésithérapeute"),
    ("assistant-service-social", "Assistante de service social", "Assistant de service social"),
    ("sage-femme", "Sage-femme", "Sage-femme"), ("chirurgien-dentiste", "Chirurgienne-dentiste", "Chirurgien-dentiste"),
    ("dieteticien", "Diététicienne", "Diététicien"), ("psychomotricien", "Psychomotricienne", "Psychomotricien"),
    ("educateur-specialise", "Éducatrice spécialisée", "Éducateur spécialisé"),
    ("enseignant-apa", "Enseignante en activité physique adaptée", "Enseignant en activité physique adaptée"),
    ("patient-expert", "Patiente experte", "Patient expert"),
    ("secretaire-medicale", "Secrétaire médicale", "Secrétaire médical"),
    ("orthophoniste", "Orthophoniste", "Orthophoniste"), ("psychologue", "Psychologue", "Psychologue"),
])
def test_the_label_agrees_with_the_persons_sex(key, woman, man):
    profession = find_profession(key)
    assert profession.label_for("F") == woman and profession.label_for("M") == man


@pytest.mark.parametrize("unknown", [None, "", "X"])
def test_an_unknown_sex_keeps_todays_label(unknown):
    for profession in PROFESSIONS:
        assert profession.label_for(unknown) == profession.label


def test_every_label_names_its_own_profession():
    for profession in PROFESSIONS:
        for sex in ("F", "M", None):
            assert find_profession(profession.label_for(sex)) is profession, (profession.key, sex)


@pytest.mark.parametrize("written, sex", [
    ("infirmière", "F"), ("Infirmière libérale", "F"), ("coordinatrice", "F"), ("coordinatrice de parcours", "F"),
    ("pharmacienne", "F"), ("assistante sociale", "F"), ("masseuse-kinésithérapeute", "F"), ("patiente experte", "F"),
    ("maïeuticienne", "F"), ("assistante médicale", "F"),
    ("infirmier", None), ("IDE", None), ("coordinateur", None), ("kinésithérapeute", None), ("kiné", None),
    ("médecin", None), ("sage-femme", None), ("Secrétaire médicale", None), ("psychologue", None),
    ("maïeuticien", None), ("astronaute", None), ("", None),
])
def test_a_feminine_form_written_says_she_is_a_woman_and_nothing_else_says_anything(written, sex):
    assert written_sex(written) == sex


def test_each_feminine_or_masculine_form_is_a_name_of_its_profession_only():
    for profession in PROFESSIONS:
        for name in (*profession.feminine, *profession.masculine):
            assert find_profession(name) is profession, name
        assert not {fold(n) for n in profession.feminine} & {fold(n) for n in profession.aliases}, profession.key


@pytest.mark.parametrize("sex, word", [("F", "née"), ("M", "né"), (None, "né(e)"), ("", "né(e)")])
def test_born_agrees_with_the_patients_sex(sex, word):
    assert born(sex) == word
