"""What the trace records when a fact of the sharing decisions changes (the patient's will, the roster, a
correspondent, a usual team), when the quarantine sets a mail aside, when a task of a pathway or its care plan changes, and when its
head is anchored: the rule, its legal basis, the label.

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
    Record("membre ajouté à l'équipe de la structure", Allow(
        "roster.added", "un professionnel rejoint l'équipe de la structure", "CSP L.1110-12")),
    Record("membre de l'équipe de la structure modifié", Allow(
        "roster.changed", "profession, structure ou rôle d'un membre changé", "CSP L.1110-12")),
    Record("membre retiré de l'équipe de la structure", Allow(
        "roster.removed", "un professionnel quitte l'équipe de la structure", "CSP L.1110-12")),
    Record("correspondant enregistré", Allow(
        "contact.recorded", "profession et structure d'un correspondant MSSanté notées par la coordination",
        "CSP L.1110-12, R.1110-2")),
    Record("correspondant retiré", Allow(
        "contact.removed", "la coordination a retiré ce qu'elle savait d'un correspondant", "CSP L.1110-12")),
    Record("équipe habituelle : ajout", Allow(
        "usual_team.added", "un professionnel rejoint l'équipe de soins habituelle du patient", "CSP L.1110-12")),
    Record("équipe habituelle : retrait", Allow(
        "usual_team.removed", "un professionnel quitte l'équipe de soins habituelle du patient", "CSP L.1110-12")),
    Record("correspondant du parcours", Allow(
        "correspondent.recorded", "un professionnel a écrit au sujet du patient par MSSanté", "CSP L.1110-4 II")),
    Record("fait repris à la mise à jour", Allow(
        "facts.recorded", "fait enregistré avant le chaînage des faits, repris tel quel", "RGPD art. 5-1-f")),
    Record("tâche créée", Allow(
        "task.created", "une tâche du parcours, confiée à un membre de l'équipe ou demandée à une profession",
        "CSP L.1110-12")),
    Record("tâche prise en charge", Allow(
        "task.taken", "un membre de l'équipe de soins prend la tâche en charge", "CSP L.1110-12")),
    Record("tâche faite", Allow("task.done", "la tâche est faite", "CSP L.1110-12")),
    Record("tâche reportée", Allow("task.postponed", "nouvelle échéance de la tâche", "CSP L.1110-12")),
    Record("tâche confiée", Allow(
        "task.assigned", "la tâche est confiée à un autre membre de l'équipe de soins", "CSP L.1110-12")),
    Record("tâche annulée", Allow("task.cancelled", "la tâche est annulée", "CSP L.1110-12")),
    Record("tâche rendue à la coordination", Allow(
        "task.handed_back", "son responsable n'est plus admis dans le parcours : la coordination la confie",
        "CSP L.1110-4, L.1110-12")),
    Record("RCP planifiée", Allow("rcp.planned", "réunion de concertation pluriprofessionnelle planifiée",
                                  "CSP L.1110-12")),
    Record("RCP modifiée", Allow("rcp.changed", "date, lieu ou participants de la réunion changés",
                                 "CSP L.1110-12")),
    Record("RCP annulée", Allow("rcp.cancelled", "la réunion est annulée", "CSP L.1110-12")),
    Record("cas inscrit en RCP", Allow(
        "rcp.enrolled", "le cas du patient est inscrit à l'ordre du jour de la réunion de l'équipe de soins",
        "CSP L.1110-4 III, L.1110-12")),
    Record("RCP ouverte", Allow("rcp.opened", "la réunion commence", "CSP L.1110-12")),
    Record("décision de RCP", Allow(
        "rcp.decided", "décision de la réunion pour le patient, suivie par une tâche", "CSP L.1110-12")),
    Record("RCP close", Allow("rcp.closed", "la réunion est close, compte rendu diffusé", "CSP L.1110-12")),
    Record("plan : objectif ajouté", Allow(
        "plan.goal_added", "un objectif du plan personnalisé de coordination en santé (PPCS) du patient",
        "CSP L.1110-12")),
    Record("plan : objectif atteint", Allow(
        "plan.goal_reached", "un objectif du plan personnalisé est atteint", "CSP L.1110-12")),
    Record("plan : objectif abandonné", Allow(
        "plan.goal_abandoned", "un objectif du plan personnalisé est abandonné", "CSP L.1110-12")),
    Record("plan : référent", Allow(
        "plan.referent", "le référent du plan personnalisé, membre de l'équipe de soins du patient",
        "CSP L.1110-12")),
    Record("plan : ce qui compte pour le patient", Allow(
        "plan.words", "les mots du patient, « ce qui compte pour moi », notés dans son plan personnalisé",
        "CSP L.1110-12")),
    Record("plan clos", Allow(
        "plan.closed", "le parcours est clos : son plan personnalisé aussi, ses objectifs en cours clos",
        "CSP L.1110-12")),
    Record("ancre écrite", Allow(
        "trace.anchored", "tête de la trace ancrée hors de la base", "RGPD art. 5-1-f, art. 32")),
)}
