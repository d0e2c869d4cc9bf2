"""policies.pathway: who may be invited into a pathway room, and the pathway types."""
from __future__ import annotations

import pytest

from policies.pathway import PATHWAY_TYPES, find_pathway_type


@pytest.mark.parametrize("typed, key", [
    ("insuffisance-cardiaque", "insuffisance-cardiaque"),
    ("Insuffisance cardiaque", "insuffisance-cardiaque"),
    ("INSUFFISANCE CARDIAQUE", "insuffisance-cardiaque"),
    ("insuf", "insuffisance-cardiaque"),
    ("cardiaque", "insuffisance-cardiaque"),
    ("diabete", "diabete"), ("Diabète", "diabete"), ("diab", "diabete"),
    ("sortie", "sortie-hospitalisation"), ("Sortie d'hospitalisation", "sortie-hospitalisation"),
    ("sortie hospitalisation", "sortie-hospitalisation"), ("hospit", "sortie-hospitalisation"),
    ("palliatif", "soins-palliatifs"), ("Soins palliatifs", "soins-palliatifs"), ("soins", "soins-palliatifs"),
    ("grossesse", "grossesse"), ("gross", "grossesse"),
    ("personne âgée", "personne-agee-fragile"), ("Personne âgée fragile", "personne-agee-fragile"),
    ("fragile", "personne-agee-fragile"),
    ("BPCO", "bpco"), ("bpco", "bpco"), ("autre", "autre"),
])
def test_find_pathway_type(typed, key):
    assert find_pathway_type(typed) == (key, dict(PATHWAY_TYPES)[key])


@pytest.mark.parametrize("typed", ["", "ins", "dia", "xyz", "cancer", "insuffisance renale", "bpc"])
def test_find_pathway_type_none(typed):
    assert find_pathway_type(typed) is None


def test_ambiguous_prefix_is_refused():
    types = (("insuffisance-cardiaque", "Insuffisance cardiaque"), ("insuffisance-renale", "Insuffisance rénale"))
    assert find_pathway_type("insuf", types) is None
    assert find_pathway_type("insuffisance ren", types) == types[1]
    assert find_pathway_type("renal", types) == types[1]


def test_pathway_types_catalogue():
    assert [key for key, _ in PATHWAY_TYPES] == [
        "insuffisance-cardiaque", "diabete", "sortie-hospitalisation", "soins-palliatifs", "grossesse",
        "personne-agee-fragile", "bpco", "autre"]
    assert dict(PATHWAY_TYPES)["sortie-hospitalisation"] == "Sortie d'hospitalisation"
