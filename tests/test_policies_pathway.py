"""policies.pathway: who may be invited into a pathway room, and the pathway types."""
from __future__ import annotations

import pytest

from policies.decision import Allow, Deny
from policies.pathway import PATHWAY_TYPES, Member, find_pathway_type, may_join_pathway
from policies.professions import find_profession


def member(user_id, profession, *roles):
    return Member(user_id, find_profession(profession) if profession else None,
                  frozenset(roles or {"member"}))


GP = member("@gp:hs", "médecin")
NURSE = member("@ide:hs", "infirmière")
KINE = member("@kine:hs", "kiné")
SOCIAL = member("@as:hs", "assistante sociale")
PSY = member("@psy:hs", "psychologue")
EXPERT = member("@pe:hs", "patient expert")
COORD = member("@coord:hs", "coordinatrice", "coordinator", "member")
COORD_NURSE = member("@ide-coord:hs", "infirmière", "coordinator")
NO_PROFESSION = member("@x:hs", None)
TEAM = frozenset({"@gp:hs", "@ide:hs", "@as:hs"})


@pytest.mark.parametrize("who, user_id, team, rule", [
    # pathway.team.health: a health professional of the roster in the patient's team of care
    (GP, "@gp:hs", TEAM, "pathway.team.health"),
    (NURSE, "@ide:hs", TEAM, "pathway.team.health"),
    (KINE, "@kine:hs", None, "pathway.team.health"),  # no team named: the roster's health professionals
    # pathway.team.coordination: the coordinator, whatever the team and their profession
    (COORD, "@coord:hs", TEAM, "pathway.team.coordination"),
    (COORD, "@coord:hs", None, "pathway.team.coordination"),
    (COORD_NURSE, "@ide-coord:hs", frozenset(), "pathway.team.coordination"),
    # pathway.not_in_team: a health professional of the roster not named in this patient's team
    (KINE, "@kine:hs", TEAM, "pathway.not_in_team"),
    (GP, "@gp:hs", frozenset(), "pathway.not_in_team"),
    # pathway.non_health: social and other professionals, even when named in the team
    (SOCIAL, "@as:hs", TEAM, "pathway.non_health"),
    (SOCIAL, "@as:hs", None, "pathway.non_health"),
    (PSY, "@psy:hs", None, "pathway.non_health"),
    (EXPERT, "@pe:hs", None, "pathway.non_health"),
    (NO_PROFESSION, "@x:hs", None, "pathway.non_health"),
    # pathway.outsider: not on the roster
    (None, "@stranger:hs", None, "pathway.outsider"),
    (None, "@stranger:hs", frozenset({"@stranger:hs"}), "pathway.outsider"),
])
def test_may_join_pathway(who, user_id, team, rule):
    decision = may_join_pathway(who, user_id, team)
    assert decision.rule == rule
    assert isinstance(decision, Allow if rule.startswith("pathway.team.") else Deny)
    assert decision.allowed is rule.startswith("pathway.team.")
    assert decision.reason.endswith(".") and decision.basis.startswith("CSP ")


@pytest.mark.parametrize("who, user_id, team, basis, fragments", [
    (GP, "@gp:hs", TEAM, "CSP L.1110-4 II et III, L.1110-12", ["Médecin", "équipe de soins"]),
    (COORD, "@coord:hs", TEAM, "CSP L.1110-12", ["coordonne"]),
    (KINE, "@kine:hs", TEAM, "CSP L.1110-4 III", ["Masseur-kinésithérapeute", "!consentement"]),
    (SOCIAL, "@as:hs", TEAM, "CSP L.1110-4 II, R.1110-2",
     ["Assistant de service social n'est pas une profession de santé", "mission", "!consentement"]),
    (NO_PROFESSION, "@x:hs", None, "CSP L.1110-4 II, R.1110-2", ["pas renseignée", "!consentement"]),
    (None, "@stranger:hs", None, "CSP L.1110-4 III", ["annuaire", "consentement", "!consentement"]),
])
def test_reasons_say_why_and_what_to_do(who, user_id, team, basis, fragments):
    decision = may_join_pathway(who, user_id, team)
    assert decision.basis == basis
    for fragment in fragments:
        assert fragment in decision.reason


def test_member_must_be_the_user():
    with pytest.raises(ValueError):
        may_join_pathway(GP, "@ide:hs", TEAM)


def test_member_default_role():
    assert Member("@a:hs", None).roles == frozenset({"member"})


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
