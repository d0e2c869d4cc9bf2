"""The policy knobs: the shipped file equals the defaults; a bad file is refused naming the line."""
from __future__ import annotations

from pathlib import Path

import pytest

from policies.knobs import KnobError, load_knobs
from policies.sharing import Knobs

SHIPPED = (Path(__file__).parent.parent / "policies" / "knobs.yaml").read_text(encoding="utf-8")


def test_shipped_file_is_the_defaults():
    assert load_knobs(SHIPPED) == Knobs()
    assert load_knobs("") == Knobs()


def test_a_knob_changes_the_policy():
    knobs = load_knobs("oral_consent_allowed: false\nnon_health_roles:\n  enseignant-apa: [soins, social]\n")
    assert knobs.oral_consent_allowed is False
    assert knobs.non_health_roles == {"enseignant-apa": frozenset({"soins", "social"})}


@pytest.mark.parametrize("text, line, words", [
    ("notice_required: true\nconsent_recorder: equipe\n", 2, "réglage inconnu"),
    ("oral_consent_allowed: oui\n", 1, "vrai ou faux"),
    ("consent_recorders: tout le monde\n", 1, "coordination ou equipe"),
    ("\n\nnon_health_roles:\n  medecin: [soins]\n", 3, "pas un rôle non soignant"),
    ("non_health_roles:\n  enseignant-apa: [loisirs]\n", 1, "catégories"),
    ("- a\n- b\n", 1, "nom: valeur"),
    ("notice_required: [\n", 2, "YAML illisible"),
])
def test_bad_files_name_the_line(text, line, words):
    with pytest.raises(KnobError) as err:
        load_knobs(text)
    assert err.value.line == line and words in err.value.message and f"ligne {line}" in err.value.message


def test_lists_and_numbers_are_checked():
    knobs = load_knobs("consent_expiry_days: 365\nhealth_professions: [medecin, infirmier]\n")
    assert knobs.consent_expiry_days == 365 and knobs.health_professions == frozenset({"medecin", "infirmier"})
    for text, words in (("consent_expiry_days: -1\n", "entre 0"), ("consent_expiry_days: true\n", "entier"),
                        ("health_professions: [medecin, sorcier]\n", "sorcier")):
        with pytest.raises(KnobError) as err:
            load_knobs(text)
        assert words in err.value.message and "ligne 1" in err.value.message


@pytest.mark.parametrize("text, words", [
    ("room_naming: nominatif\n", "une liste parmi initiales, annee, type"),
    ("room_naming: [initiales, adresse]\n", "adresse"),
    ("retention_days_after_closure: -5\n", "entre 0"),
])
def test_naming_and_retention_are_knobs(text, words):
    with pytest.raises(KnobError) as err:
        load_knobs(text)
    assert words in err.value.message
    assert load_knobs("room_naming: pseudonyme\nretention_days_after_closure: 0\n").room_naming == {"type"}
    assert load_knobs("room_naming: [initiales, annee]\n").room_naming == {"initiales", "annee"}
    assert load_knobs("room_naming: []\n").room_naming == frozenset()
