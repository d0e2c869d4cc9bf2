"""Which professions count as health professions is the policy's word (knob health_professions)."""
from __future__ import annotations

from liaison.sharing_facts import category_of
from policies.knobs import load_knobs
from policies.professions import Category, find_profession


def test_category_follows_the_policy():
    default = load_knobs("")
    assert category_of(default, find_profession("diététicien")) is Category.HEALTH
    assert category_of(default, find_profession("assistante sociale")) is Category.SOCIAL
    narrow = load_knobs("health_professions: [medecin, infirmier]\n")
    assert category_of(narrow, find_profession("diététicien")) is Category.OTHER
    assert category_of(narrow, find_profession("infirmière")) is Category.HEALTH
