"""One sentence for a policy decision, and its rule and trace shown as code (no client links them)."""
from __future__ import annotations

from bot.opening import _who_message
from liaison.enforcement import Decided, decision_sentence
from liaison.matrix.content import as_html
from policies.decision import Allow, Deny


def test_a_decision_reads_as_one_sentence_with_rule_basis_and_trace():
    refused = Deny(rule="outside.no_consent", reason="Hors de l'équipe de soins, sans consentement",
                   basis="CSP L.1110-4 III")
    assert Decided(refused, 12).sentence() == \
        "Hors de l'équipe de soins, sans consentement (règle outside.no_consent, CSP L.1110-4 III ; trace 12)"
    assert decision_sentence(refused) == \
        "Hors de l'équipe de soins, sans consentement (règle outside.no_consent, CSP L.1110-4 III)"
    assert "<code>outside.no_consent</code>" in as_html(Decided(refused, 12).sentence())
    assert "trace <code>12</code>" in as_html(Decided(refused, 12).sentence())


def test_the_opening_notice_uses_the_same_sentence_with_the_rule_as_code():
    decisions = {"@a:hs": Allow(rule="team.member", reason="membre", basis="L.1110-12"),
                 "@b:hs": Deny(rule="outside.no_consent", reason="sans consentement", basis="L.1110-4")}
    text, html = _who_message(decisions, {})
    assert text == ("Invité(e)s : @a:hs\n"
                    "Non invité(e) : @b:hs — sans consentement (règle outside.no_consent, L.1110-4)")
    assert "<code>outside.no_consent</code>" in html
