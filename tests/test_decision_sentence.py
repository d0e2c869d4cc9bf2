"""One sentence for a policy decision, and its rule and trace shown as code (no client links them)."""
from __future__ import annotations

from bot.opening import _who_message
from liaison.enforcement import Decided, decision_sentence
from liaison.matrix.content import as_html
from policies.decision import Allow, Deny
from tests.fakes import GP, OUTSIDER, close_services, make_services


def test_a_decision_reads_as_one_sentence_with_rule_basis_and_trace():
    refused = Deny(rule="outside.no_consent", reason="Hors de l'équipe de soins, sans consentement",
                   basis="CSP L.1110-4 III")
    assert Decided(refused, 12).sentence() == \
        "Hors de l'équipe de soins, sans consentement (règle outside.no_consent, CSP L.1110-4 III ; trace 12)"
    assert decision_sentence(refused) == \
        "Hors de l'équipe de soins, sans consentement (règle outside.no_consent, CSP L.1110-4 III)"
    assert "<code>outside.no_consent</code>" in as_html(Decided(refused, 12).sentence())
    assert "trace <code>12</code>" in as_html(Decided(refused, 12).sentence())


async def test_the_opening_notice_names_people_and_uses_the_same_sentence_with_the_rule_as_code(tmp_path):
    services = await make_services(tmp_path)
    try:
        decisions = {GP: Allow(rule="team.member", reason="membre", basis="L.1110-12"),
                     OUTSIDER: Deny(rule="outside.no_consent", reason="sans consentement", basis="L.1110-4")}
        told = await _who_message(services, decisions)
    finally:
        await close_services(services)
    assert told["body"] == ("Invité(e)s : Dr Paul Martin (Médecin)\n"
                            "Non invité(e) : Denis Hors (hors de l'équipe de la structure) — sans consentement "
                            "(règle outside.no_consent, L.1110-4)")
    html = told["formatted_body"]
    assert "<code>outside.no_consent</code>" in html
    assert f'<a href="https://matrix.to/#/{OUTSIDER}">Denis Hors</a>' in html, "a pill to the profile"
    assert OUTSIDER not in told["body"], "a name, not a Matrix id"


async def test_the_opening_notice_says_when_no_one_was_invited(tmp_path):
    services = await make_services(tmp_path)
    try:
        told = await _who_message(services, {OUTSIDER: Deny(rule="outside.no_consent", reason="sans consentement",
                                                            basis="L.1110-4")})
    finally:
        await close_services(services)
    assert told["body"].startswith("Invité(e)s : personne\nNon invité(e) : Denis Hors ")
