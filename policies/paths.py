"""Every path by which information about a patient moves, with the action the policy core decides for it.

Each path is decided at the moment the information moves (not when it was asked for), by
`liaison.enforcement.decide_at(stores, "<path>", …)`, and traced. A test checks that every path
below is enforced somewhere in the code and that no code decides outside this table.
"""
from __future__ import annotations

from dataclasses import dataclass

from policies.sharing import Action


@dataclass(frozen=True)
class Path:
    name: str
    action: Action
    label: str     # the trace's action (French)
    moves: str     # what moves, to whom (French, for the README)


PATHS = {p.name: p for p in (
    Path("room.invite", Action.INVITE, "inviter", "une invitation au salon clinique ou au cercle élargi"),
    Path("room.keep", Action.JOIN, "maintenir dans le salon",
         "rester membre d'un salon du patient, réévalué à chaque changement de consentement ou d'opposition"),
    Path("puppet.keep", Action.RELAY_IN, "maintenir la marionnette dans le salon",
         "la marionnette d'un correspondant MSSanté, qui reste dans les salons du patient (réévaluée aussi)"),
    Path("summary.repost", Action.JOIN, "republier le résumé (nouvel appareil)",
         "le résumé épinglé, republié pour les appareils arrivés ensuite"),
    Path("task.assign", Action.JOIN, "confier une tâche",
         "une tâche du parcours confiée à un membre (créée pour lui, demandée à sa profession, prise en charge ou "
         "confiée) : il doit pouvoir lire le salon clinique du patient"),
    Path("task.remind", Action.JOIN, "rappeler une tâche",
         "le rappel d'une tâche à son échéance, qui mentionne dans le salon clinique son responsable (ou chaque "
         "membre de la profession à qui elle est demandée) : il doit toujours pouvoir lire ce salon"),
    Path("task.overdue", Action.SHOW, "lister les tâches en retard",
         "la liste quotidienne des tâches en retard (code du parcours et profession, ni nom ni texte), dans le salon "
         "de la coordination"),
    Path("task.board", Action.SHOW, "afficher le tableau des tâches",
         "le tableau des tâches du parcours, épinglé dans le salon clinique et modifié sur place à chaque changement "
         "(à nouveau publié pour les appareils arrivés ensuite)"),
    Path("rcp.agenda", Action.SHOW, "montrer l'ordre du jour d'une RCP",
         "un cas inscrit à une RCP (code du parcours, question) : annoncé dans le salon clinique du patient, listé "
         "dans le salon de la coordination, à l'envoi de l'ordre du jour"),
    Path("rcp.invite", Action.JOIN, "inviter à une RCP",
         "un cas de l'ordre du jour dans l'invitation (.ics) d'un participant de la structure : hors de l'équipe de "
         "soins du patient et sans consentement, il n'en lit que le code du parcours"),
    Path("rcp.mail", Action.RELAY_OUT, "écrire à un participant extérieur de la RCP",
         "un cas de l'ordre du jour ou son compte rendu, par courriel à un participant MSSanté : décidé quand Liaison "
         "le confie au pont, puis quand le pont le met en file (la boîte d'envoi décide encore à l'envoi)"),
    Path("rcp.decision", Action.SHOW, "annoncer une décision de RCP",
         "une décision de la RCP et la tâche qui la suit, annoncées dans le salon clinique du patient"),
    Path("rcp.minutes", Action.SHOW, "diffuser le compte rendu de RCP",
         "le compte rendu d'un cas dans le salon clinique du patient, et la ligne de ce cas dans le compte rendu "
         "pseudonyme (codes, sans identité) remis au salon de la coordination"),
    Path("ppcs.show", Action.SHOW, "montrer le plan personnalisé",
         "le plan personnalisé de coordination du patient (!ppcs) : ses objectifs, leurs tâches, son référent et ce "
         "qui compte pour le patient ; au cercle élargi, seulement les objectifs et tâches des catégories qu'il "
         "partage"),
    Path("ppcs.board", Action.SHOW, "afficher le plan personnalisé",
         "le plan personnalisé de coordination, épinglé dans le salon clinique et modifié sur place à chaque "
         "changement (à nouveau publié pour les appareils arrivés ensuite)"),
    Path("ppcs.referent", Action.JOIN, "désigner le référent du plan",
         "le référent du plan personnalisé, nommé dans le plan épinglé : il doit pouvoir lire le salon clinique du "
         "patient"),
    Path("command.show", Action.SHOW, "montrer", "la réponse d'une commande qui montre des données du patient"),
    Path("mail.in.post", Action.RELAY_IN, "relayer vers le salon",
         "un courriel MSSanté, déposé dans le salon par la marionnette de l'expéditeur"),
    Path("mail.in.route", Action.RELAY_IN, "router depuis la quarantaine",
         "un courriel de la quarantaine, déposé à la main dans un parcours"),
    Path("mail.out.reply", Action.RELAY_OUT, "relayer vers l'extérieur",
         "une réponse du salon, mise en file pour un correspondant MSSanté"),
    Path("mail.out.write", Action.RELAY_OUT, "écrire à l'extérieur",
         "un nouveau courriel (!mss ecrire), mis en file"),
    Path("mail.out.send", Action.RELAY_OUT, "envoyer un courriel en attente",
         "un courriel de la boîte d'envoi, au moment où il part (jusqu'à 4 jours après)"),
    Path("mail.out.correct", Action.RELAY_OUT, "corriger à l'extérieur",
         "le nouveau texte d'une réponse modifiée dans le salon : il remplace le courriel en file, ou part en "
         "correction dans le même fil s'il était déjà envoyé"),
    Path("mail.out.retract", Action.RELAY_OUT, "signaler un message retiré",
         "l'avis « message retiré par son auteur » (sans l'ancien texte) d'une réponse déjà envoyée puis "
         "supprimée dans le salon"),
    Path("doc.send", Action.SEND_DOCUMENT, "envoyer un document",
         "un document du parcours en IHE_XDM (!doc envoyer), demandé puis préparé par le pont"),
    Path("mail.receipt", Action.RECEIPT, "accuser lecture",
         "un accusé de lecture (MDN) à l'expéditeur d'un courriel, quand un membre l'a lu"),
    Path("trace.export", Action.EXPORT_TRACE, "exporter", "l'export de la trace (!trace)"),
    Path("pathway.export", Action.EXPORT_PATHWAY, "exporter le parcours (FHIR)",
         "le parcours en FHIR R4 (patient, équipe, tâches, consentements, index des documents sans leur contenu) : "
         "un fichier chiffré dans le salon de la coordination (!parcours export), ou écrit par l'exploitant "
         "(liaison export fhir)"),
    Path("archive.export", Action.ARCHIVE, "archiver", "l'archive d'un parcours à l'échéance de conservation"),
)}
