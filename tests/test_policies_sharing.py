"""The sharing decision point, rule by rule (ids from policies.sharing.RULES)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from policies.professions import Category
from policies.sharing import OPERATOR, RULES, Action, Consent, Facts, Knobs, Objection, Recipient, decide

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
GP = Recipient("member", "@gp:hs", Category.HEALTH, True)
NURSE_OUT = Recipient("member", "@nurse2:hs", Category.HEALTH, True)
SOCIAL = Recipient("member", "@ass:hs", Category.SOCIAL, True)
SECRETARY = Recipient("member", "@sec:hs", Category.OTHER, True)
COORD = Recipient("member", "@coord:hs", Category.OTHER, True, frozenset({"coordinator", "member"}))
KINE_OUT = Recipient("member", "@kine:other", None, False)
CARDIO = Recipient("external", "dr.x@chu-demo.mssante.test", None, False, trusted_domain=True)
CORRESPONDENT = Recipient("external", "dr.x@chu-demo.mssante.test", None, False, correspondent=True,
                          trusted_domain=True)
STRANGER = Recipient("external", "someone@mail.example", None, False, correspondent=True)
SOCIAL_OUT = Recipient("external", "as@ccas-demo.mssante.test", Category.SOCIAL, False, correspondent=True,
                       trusted_domain=True)   # a social worker of another structure, recorded by the coordination
PROFESSION = {"@gp:hs": "medecin", "@nurse2:hs": "infirmier", "@ass:hs": "assistant-service-social",
              "@sec:hs": "secretaire-medicale", "@coord:hs": "coordinateur"}


def consent(scope, kind="person", means="écrit", expires=None, withdrawn=None, categories=(), notice=True):
    return Consent(kind, scope, means, "@coord:hs", NOW - timedelta(days=1), expires, withdrawn,
                   frozenset(categories), notice)


def objection(scope, kind="person", lifted=None):
    return Objection(kind, scope, NOW - timedelta(hours=1), lifted)


def facts(recipient, *, consents=(), objections=(), category="soins", action=Action.INVITE, knobs=Knobs(),
          actor_roles=frozenset(), structure=None, profession=None, room="clinical", circle=frozenset(), tampered=()):
    return Facts(action=action, actor="@coord:hs", recipient=recipient, team=frozenset({"@gp:hs"}), now=NOW,
                 actor_roles=actor_roles,
                 recipient_profession=profession or PROFESSION.get(recipient.user_or_address),
                 recipient_structure=structure, consents=tuple(consents), objections=tuple(objections),
                 data_category=category, knobs=knobs, room_kind=room, circle_categories=frozenset(circle),
                 tampered=tuple(tampered))


CASES = [
    # (name, facts, allowed, rule)
    ("team health professional", facts(GP), True, "team.health"),
    ("team, any action", facts(GP, action=Action.SEND_DOCUMENT), True, "team.health"),
    ("coordination", facts(COORD), True, "team.coordination"),
    ("health pro outside the team", facts(NURSE_OUT), False, "outside.no_consent"),
    ("outsider without consent", facts(KINE_OUT), False, "outside.no_consent"),
    ("outsider with consent", facts(KINE_OUT, consents=[consent("@kine:other")]), True, "outside.consent"),
    ("external mailbox with consent", facts(CARDIO, consents=[consent("DR.X@chu-demo.mssante.test")],
                                            action=Action.RELAY_OUT), True, "outside.consent"),
    ("relay in from a stranger", facts(STRANGER, action=Action.RELAY_IN), False, "mail.untrusted_domain"),
    ("relay out to a stranger, even with consent", facts(STRANGER, consents=[consent("someone@mail.example")],
                                                         action=Action.RELAY_OUT), False, "mail.untrusted_domain"),
    ("relay in from an MSSanté professional", facts(CARDIO, action=Action.RELAY_IN), True, "mail.trusted_sender"),
    ("reply to an MSSanté correspondent", facts(CORRESPONDENT, action=Action.RELAY_OUT), True, "team.correspondent"),
    ("correspondents need consent by policy", facts(CORRESPONDENT, action=Action.RELAY_OUT,
                                                    knobs=Knobs(mail_correspondents_in_team=False)), False,
     "outside.no_consent"),
    ("new MSSanté address without consent", facts(CARDIO, action=Action.RELAY_OUT), False, "outside.no_consent"),
    ("objection beats a correspondent", facts(CORRESPONDENT, action=Action.RELAY_OUT,
                                              objections=[objection("dr.x@chu-demo.mssante.test")]), False,
     "objection.person"),
    ("consent expired", facts(KINE_OUT, consents=[consent("@kine:other", expires=NOW - timedelta(days=1))]),
     False, "outside.no_consent"),
    ("consent withdrawn", facts(KINE_OUT, consents=[consent("@kine:other", withdrawn=NOW)]), False,
     "outside.no_consent"),
    ("oral consent refused by policy", facts(KINE_OUT, consents=[consent("@kine:other", means="oral")],
                                             knobs=Knobs(oral_consent_allowed=False)), False, "outside.no_consent"),
    ("consent for another category", facts(KINE_OUT, consents=[consent("@kine:other", categories=["social"])]),
     False, "outside.no_consent"),
    ("profession-scoped consent", facts(NURSE_OUT, consents=[consent("infirmier", kind="profession")]), True,
     "outside.consent"),
    ("structure-scoped consent", facts(CARDIO, consents=[consent("CHU Demo", kind="structure")],
                                       structure="CHU demo"), True, "outside.consent"),
    ("objection beats consent", facts(KINE_OUT, consents=[consent("@kine:other")],
                                      objections=[objection("@kine:other")]), False, "objection.person"),
    ("objection beats the team", facts(GP, objections=[objection("@gp:hs")]), False, "objection.person"),
    ("objection to a profession", facts(GP, objections=[objection("medecin", kind="profession")]), False,
     "objection.profession"),
    ("objection lifted", facts(GP, objections=[objection("@gp:hs", lifted=NOW)]), True, "team.health"),
    ("objection to non-health sharing", facts(SOCIAL, consents=[consent("@ass:hs", categories=["social"])],
                                              category="social", objections=[objection("non-sante", "category")]),
     False, "objection.category"),
    ("an objection to non-health sharing spares the coordination",
     facts(COORD, objections=[objection("non-sante", "category")]), True, "team.coordination"),
    ("an objection to a profession spares the coordination (who must be able to lift it)",
     facts(COORD, profession="coordinateur", objections=[objection("coordinateur", "profession")]),
     True, "team.coordination"),
    ("an objection to the structure spares its coordination",
     facts(COORD, structure="MSP Demo", objections=[objection("MSP Demo", "structure")]), True, "team.coordination"),
    ("an objection naming the coordinator reaches them",
     facts(COORD, objections=[objection("@coord:hs")]), False, "objection.person"),
    ("social worker, social data, consent", facts(SOCIAL, consents=[consent("@ass:hs")], category="social"), True,
     "non_health.allowed"),
    ("social worker without consent", facts(SOCIAL, category="social"), False, "non_health.no_consent"),
    ("social worker, care data", facts(SOCIAL, consents=[consent("@ass:hs")], category="soins"), False,
     "non_health.category_not_allowed"),
    ("social worker, no notice given", facts(SOCIAL, consents=[consent("@ass:hs", notice=False)], category="social"),
     False, "non_health.no_notice"),
    ("social worker, consent not required", facts(SOCIAL, category="social",
                                                  knobs=Knobs(non_health_needs_consent=False)), True,
     "non_health.allowed"),
    ("secretary: role not in the policy", facts(SECRETARY, consents=[consent("@sec:hs")]), False,
     "non_health.role_not_allowed"),
    ("trace export by the coordination", facts(GP, action=Action.EXPORT_TRACE,
                                               actor_roles=frozenset({"coordinator"})), True, "trace.export"),
    ("trace export by anyone else", facts(GP, action=Action.EXPORT_TRACE), False, "trace.export"),
    # Objections hold both ways: nothing posted from an objected sender either.
    ("relay in from an objected address", facts(CARDIO, action=Action.RELAY_IN,
                                                objections=[objection("DR.X@chu-demo.mssante.test")]), False,
     "objection.person"),
    ("relay in, objection to the sender's recorded profession",
     facts(CARDIO, action=Action.RELAY_IN, profession="cardiologue",
           objections=[objection("cardiologue", kind="profession")]), False, "objection.profession"),
    ("reply out, consent to the sender's recorded structure",
     facts(CARDIO, action=Action.RELAY_OUT, structure="CHU Demo", consents=[consent("chu demo", kind="structure")]),
     True, "outside.consent"),
    ("read receipt to the sender", facts(CARDIO, action=Action.RECEIPT), True, "mail.receipt"),
    ("no read receipt to an objected sender", facts(CARDIO, action=Action.RECEIPT,
                                                    objections=[objection("dr.x@chu-demo.mssante.test")]), False,
     "objection.person"),
    ("archive handed to the coordination", facts(COORD, action=Action.ARCHIVE), True, "archive.coordination"),
    ("archive to anyone else", facts(GP, action=Action.ARCHIVE), False, "archive.coordination"),
    ("clinical data in the clinical room", facts(GP, action=Action.SHOW), True, "room.clinical"),
    ("clinical data in the circle room", facts(SOCIAL, action=Action.SHOW, room="circle",
                                               circle={"social", "soins"}), False, "room.circle_category"),
    ("social data in the circle room", facts(SOCIAL, action=Action.SHOW, room="circle", category="social",
                                             circle={"social"}), True, "room.circle"),
    ("pathway data elsewhere", facts(GP, action=Action.SHOW, room="other"), False, "room.not_pathway"),
    ("a direct conversation shows what its one reader may see", facts(GP, action=Action.SHOW, room="direct"), True,
     "room.direct"),
    ("a direct conversation with one outside the team", facts(NURSE_OUT, action=Action.SHOW, room="direct"), False,
     "outside.no_consent"),
    ("the coordination's room, asked by the coordination", facts(COORD, action=Action.SHOW, room="coordination",
                                                                 actor_roles=frozenset({"coordinator"})),
     True, "room.coordination"),
    ("the coordination's room, asked by someone else", facts(GP, action=Action.SHOW, room="coordination"), False,
     "room.coordination"),
    ("reply out to a correspondent of unknown profession, a profession objected to",
     facts(CORRESPONDENT, action=Action.RELAY_OUT, objections=[objection("pharmacien", kind="profession")]),
     False, "objection.unknown_profession"),
    # The pathway's FHIR export: to the coordination, asked by it; or to the operator at the command line.
    ("FHIR export to the coordination, asked by it", facts(COORD, action=Action.EXPORT_PATHWAY,
                                                           actor_roles=frozenset({"coordinator"})),
     True, "export.coordination"),
    ("FHIR export to a team member", facts(GP, action=Action.EXPORT_PATHWAY), False, "export.coordination"),
    ("FHIR export to the operator", facts(Recipient("operator", OPERATOR, None, False),
                                          action=Action.EXPORT_PATHWAY), True, "export.operator"),
    ("FHIR export, the patient's objections altered", facts(COORD, action=Action.EXPORT_PATHWAY,
                                                            actor_roles=frozenset({"coordinator"}),
                                                            tampered=["oppositions"]), False, "facts.tampered"),
    # A fact changed behind Liaison's back moves nothing, even what the rest of the facts would allow.
    ("team member, an objection of the patient altered", facts(GP, tampered=["oppositions"]), False,
     "facts.tampered"),
    ("relay in, the sender's recorded profession altered", facts(CARDIO, action=Action.RELAY_IN,
                                                                 tampered=["correspondants enregistrés"]), False,
     "facts.tampered"),
    ("coordination, its roster row altered", facts(COORD, tampered=["équipe de la structure"]), False,
     "facts.tampered"),
]


@pytest.mark.parametrize("name, f, allowed, rule", CASES, ids=[c[0] for c in CASES])
def test_rule(name, f, allowed, rule):
    d = decide(f)
    assert (d.allowed, d.rule) == (allowed, rule)
    assert d.basis == RULES[rule][0] and d.reason
    if not d.allowed and rule.endswith("no_consent"):
        assert "!consentement" in d.reason, "a refusal says what to do"


def test_every_rule_is_exercised():
    exercised = {decide(c[1]).rule for c in CASES}
    assert exercised == set(RULES)


def test_a_name_says_who_the_reason_is_about_and_never_who_is_in_the_team():
    """The name (roster, recorded correspondent) is for the sentence; the team is matched on the account."""
    decided = decide(facts(replace(GP, name="Dr Paul Martin")))
    assert decided.allowed and decided.rule == "team.health"
    assert decided.reason.startswith("Dr Paul Martin est un professionnel de santé")
    assert not decide(facts(replace(NURSE_OUT, name="@gp:hs"))).allowed, "a name matching a member's id grants nothing"



@pytest.mark.parametrize("category, consented, allowed, rule", [
    ("soins", True, False, "non_health.category_not_allowed"),
    ("social", False, False, "non_health.no_consent"),
    ("social", True, True, "non_health.allowed"),
])
def test_an_external_recorded_as_non_health_is_under_the_non_health_rules_even_as_a_correspondent(
        category, consented, allowed, rule):
    """Writing to the team made a correspondent part of the team of care (team.correspondent); one the coordination
    recorded as a social worker is not a health professional for that (issue 24, item 6)."""
    consents = [consent(SOCIAL_OUT.user_or_address, categories=("social",))] if consented else []
    d = decide(facts(SOCIAL_OUT, category=category, consents=consents, action=Action.RELAY_OUT,
                     profession="assistant-service-social"))
    assert (d.allowed, d.rule) == (allowed, rule), d


CARDIO_RECORDED = replace(CORRESPONDENT, category=Category.HEALTH)


@pytest.mark.parametrize("action", [Action.RELAY_OUT, Action.RELAY_IN, Action.SEND_DOCUMENT])
@pytest.mark.parametrize("scope, kind", [("pharmacien", "profession"), ("non-sante", "category")])
def test_an_external_of_unknown_profession_gets_the_cautious_reading_of_a_profession_objection(action, scope, kind):
    """Issue 24, item 6: the patient objects to a profession (or to the non-health professionals) and no one
    recorded what the correspondent is: the objection may be about them. Refused, the rule named, the way out
    said; once recorded as a cardiologist, the team-of-care rule applies again."""
    d = decide(facts(CORRESPONDENT, action=action, objections=[objection(scope, kind)],
                     knobs=Knobs(mail_correspondents_in_team=True)))
    assert (d.allowed, d.rule) == (False, "objection.unknown_profession"), d
    assert "!equipe ajouter dr.x@chu-demo.mssante.test <profession>" in d.reason
    assert d.basis == RULES["objection.unknown_profession"][0]
    known = decide(facts(CARDIO_RECORDED, action=action, objections=[objection(scope, kind)], profession="medecin",
                         knobs=Knobs(mail_correspondents_in_team=True)))
    assert known.allowed and known.rule in ("team.correspondent", "mail.trusted_sender"), known


@pytest.mark.parametrize("objections", [[], [objection("dr.x@chu-demo.mssante.test", "person", lifted=NOW)],
                                        [objection("pharmacien", "profession", lifted=NOW)]])
def test_without_a_profession_objection_in_force_an_unknown_correspondent_is_of_the_team(objections):
    d = decide(facts(CORRESPONDENT, action=Action.RELAY_OUT, objections=objections,
                     knobs=Knobs(mail_correspondents_in_team=True)))
    assert (d.allowed, d.rule) == (True, "team.correspondent"), d
