"""What the trace records when the patient's will or the quarantine changes: the rule, its legal basis, the label.

These are not sharing decisions: a coordinator wrote down what the patient said, or set a mail aside for good.
Each is still an `Allow` value, so the trace holds every entry in one shape (rule, basis, allowed).
"""
from __future__ import annotations

from dataclasses import dataclass

from policies.decision import Allow


@dataclass(frozen=True)
class Record:
    action: str        # the trace's action (French, as `!trace` shows it)
    decision: Allow

    @property
    def rule(self) -> str:
        return self.decision.rule


RECORDS = {r.rule: r for r in (
    Record("consentement enregistré", Allow(
        "consent.recorded", "consentement du patient recueilli, patient informé du partage",
        "CSP L.1110-4 III, R.1110-3")),
    Record("consentement retiré", Allow(
        "consent.withdrawn", "le patient a retiré son consentement au partage", "CSP L.1110-4 III")),
    Record("opposition enregistrée", Allow(
        "objection.recorded", "le patient s'oppose au partage : effet immédiat", "CSP L.1110-4 III")),
    Record("opposition levée", Allow(
        "objection.lifted", "le patient a levé son opposition au partage", "CSP L.1110-4 III")),
    Record("courriel écarté de la quarantaine", Allow(
        "quarantine.rejected", "courriel déposé dans aucun salon, son contenu effacé", "RGPD art. 5-1-c, art. 30")),
)}
