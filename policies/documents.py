"""Documents entering a pathway room: what type of document it is, and whether it may be indexed.

Pure: facts about a file (its real kind, whether its label tells the truth, the antivirus verdict)
in, a decision with its rule and a French sentence out. The bytes are looked at elsewhere
(liaison/sniff.py, liaison/clamd.py).
"""
from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field

from policies.decision import Allow, Decision, Deny
from policies.professions import fold
from policies.sharing import Knobs


class DocType(enum.Enum):
    COMPTE_RENDU_CONSULTATION = "compte-rendu-consultation"
    LETTRE_LIAISON = "lettre-liaison"
    BIOLOGIE = "biologie"
    IMAGERIE = "imagerie"
    ORDONNANCE = "ordonnance"
    PHOTO = "photo"
    COURRIER = "courrier"
    AUTRE = "autre"

    @property
    def key(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    DocType.COMPTE_RENDU_CONSULTATION: "Compte rendu de consultation",
    DocType.LETTRE_LIAISON: "Compte rendu d'hospitalisation / lettre de liaison",
    DocType.BIOLOGIE: "Résultat de biologie",
    DocType.IMAGERIE: "Imagerie",
    DocType.ORDONNANCE: "Ordonnance",
    DocType.PHOTO: "Photo",
    DocType.COURRIER: "Courrier",
    DocType.AUTRE: "Autre",
}
_ALIASES = {
    DocType.COMPTE_RENDU_CONSULTATION: ("compte rendu", "CR", "CR de consultation", "consultation",
                                        "fiche de consultation", "CR de visite", "téléconsultation"),
    DocType.LETTRE_LIAISON: ("lettre de liaison", "lettre", "lettre de sortie", "compte rendu d'hospitalisation",
                             "CR d'hospitalisation", "CRH", "hospitalisation", "sortie", "LDL"),
    DocType.BIOLOGIE: ("résultats de biologie", "résultat biologique", "bilan biologique", "bilan sanguin",
                       "analyse", "analyses", "prise de sang", "laboratoire", "labo", "bio"),
    DocType.IMAGERIE: ("radio", "radiographie", "radiologie", "échographie", "écho", "IRM", "scanner",
                       "CR d'imagerie"),
    DocType.ORDONNANCE: ("prescription", "ordo"),
    DocType.PHOTO: ("photographie", "image"),
    DocType.COURRIER: ("correspondance", "mail"),
    DocType.AUTRE: ("divers",),
}
_INDEX: dict[str, DocType] = {}
for _doctype in DocType:
    for _name in (_doctype.value, _LABELS[_doctype], *_ALIASES[_doctype]):
        _INDEX.setdefault(fold(_name), _doctype)


def doctype_of(key: str | None) -> DocType:
    """The type of a stored key; an unknown or missing key is « Autre »."""
    try:
        return DocType(key)
    except ValueError:
        return DocType.AUTRE


def doctype_label(key: str | None) -> str:
    return doctype_of(key).label


def find_doctype(text: str) -> DocType | None:
    """The document type named by `text`, forgiving case, accents, hyphens and spaces; None if unknown."""
    return _INDEX.get(fold(text))


# XDS typeCode (LOINC) → type. Codes of the ANS nomenclature TRE_A04-Loinc used by the CI-SIS
# (value set JDV_J07-XdsTypeCode-CISIS), labels as published there.
TYPE_CODES: dict[str, DocType] = {
    "11490-0": DocType.LETTRE_LIAISON,             # Lettre de liaison à la sortie d'un établissement de soins
    "34133-9": DocType.LETTRE_LIAISON,             # Synthèse d'épisode de soins
    "34106-3": DocType.LETTRE_LIAISON,             # CR d'hospitalisation
    "11493-4": DocType.LETTRE_LIAISON,             # CR hospitalier (séjour)
    "18761-7": DocType.LETTRE_LIAISON,             # Note de transfert (dont lettre de liaison à l'entrée)
    "15507-7": DocType.LETTRE_LIAISON,             # CR de passage aux urgences
    "11488-4": DocType.COMPTE_RENDU_CONSULTATION,  # CR ou fiche de consultation ou de visite
    "34101-4": DocType.COMPTE_RENDU_CONSULTATION,  # CR de consultation (soins externes)
    "24611-6": DocType.COMPTE_RENDU_CONSULTATION,  # CR de télé-médecine (télé-consultation)
    "11502-2": DocType.BIOLOGIE,                   # CR d'examens biologiques
    "18719-5": DocType.BIOLOGIE,                   # Résultats de biochimie
    "11526-1": DocType.BIOLOGIE,                   # CR d'anatomie et de cytologie pathologiques
    "18748-4": DocType.IMAGERIE,                   # CR d'imagerie médicale
    "11528-7": DocType.IMAGERIE,                   # CR d'imagerie médicale (ancien code)
    "57833-6": DocType.ORDONNANCE,                 # Prescription de produits de santé
    "29551-9": DocType.ORDONNANCE,                 # Prescription de médicaments (non codée)
}

# The type code written in an XDM sent by Liaison when the document came without one (CI-SIS labels;
# photo, courrier and autre have no code of their own in that value set: to check against the current JDV).
SEND_CODES: dict[DocType, tuple[str, str]] = {
    DocType.COMPTE_RENDU_CONSULTATION: ("11488-4", "CR ou fiche de consultation ou de visite"),
    DocType.LETTRE_LIAISON: ("11490-0", "Lettre de liaison à la sortie d'un établissement de soins"),
    DocType.BIOLOGIE: ("11502-2", "CR d'examens biologiques"),
    DocType.IMAGERIE: ("18748-4", "CR d'imagerie médicale"),
    DocType.ORDONNANCE: ("57833-6", "Prescription de produits de santé"),
    DocType.PHOTO: ("72170-4", "Photographie"),
    DocType.COURRIER: ("11488-4", "CR ou fiche de consultation ou de visite"),
    DocType.AUTRE: ("11488-4", "CR ou fiche de consultation ou de visite"),
}


def send_code(doctype: DocType, type_code: str | None) -> tuple[str, str]:
    """(LOINC code, label) for an outgoing XDM: the code the document came with when it agrees with its type."""
    if type_code and TYPE_CODES.get(type_code) is doctype:
        return type_code, doctype.label
    return SEND_CODES[doctype]


# Words of a file name, most specific first.
_NAME_WORDS: tuple[tuple[DocType, frozenset[str]], ...] = (
    (DocType.ORDONNANCE, frozenset({"ordonnance", "ordonnances", "ordo", "prescription"})),
    (DocType.BIOLOGIE, frozenset({"bilan", "biologie", "biologique", "bio", "analyse", "analyses", "labo",
                                  "laboratoire", "sanguin"})),
    (DocType.IMAGERIE, frozenset({"radio", "radiographie", "radiologie", "echo", "echographie", "irm",
                                  "scanner", "tdm", "imagerie", "mammographie", "scintigraphie", "doppler"})),
    (DocType.LETTRE_LIAISON, frozenset({"liaison", "sortie", "hospitalisation", "crh", "ldl"})),
    (DocType.COMPTE_RENDU_CONSULTATION, frozenset({"compterendu", "cr", "consultation", "consult"})),
    (DocType.COURRIER, frozenset({"lettre", "courrier", "correspondance"})),
    (DocType.PHOTO, frozenset({"photo", "photographie"})),
)


def _words(filename: str) -> set[str]:
    decomposed = unicodedata.normalize("NFKD", filename.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"compte[\W_]*rendu", "compterendu", plain)
    return set(re.findall(r"[a-z0-9]+", plain))


def guess_doctype(*, type_code: str | None, filename: str | None, sniffed_kind: str) -> DocType:
    """The document's type: from its XDS/LOINC type code, else words of its name, else its kind."""
    by_code = TYPE_CODES.get((type_code or "").strip())
    if by_code:
        return by_code
    words = _words(filename or "")
    for doctype, names in _NAME_WORDS:
        if words & names:
            return doctype
    return DocType.PHOTO if sniffed_kind == "image" else DocType.AUTRE


# --- may the file be indexed? --------------------------------------------------------------------------

DOCUMENT_KINDS = ("pdf", "image", "cda", "xml", "text")   # the sniffed kinds that can be documents
NEVER = frozenset({"executable", "zip", "office", "unknown"})  # whatever the policy file says
SCANS = ("clean", "infected", "not_scanned", "error")

KIND_LABELS = {
    "pdf": "un PDF", "image": "une image", "cda": "un document médical structuré (CDA)", "xml": "un fichier XML",
    "text": "un texte", "zip": "une archive ZIP", "executable": "un programme exécutable",
    "office": "un document bureautique (Word, Excel…)", "unknown": "un fichier de type inconnu",
}
_ACCEPTED_LABELS = {"pdf": "PDF", "image": "images", "cda": "documents CDA", "xml": "XML", "text": "textes"}

RULES = {
    "document.allowed": "contenu vérifié, type admis par la politique documentaire",
    "document.too_big": "politique documentaire de la structure (document_max_mib)",
    "document.type_not_allowed": "politique documentaire de la structure (document_kinds)",
    "document.type_spoofed": "contrôle du contenu réel du fichier (signature binaire)",
    "document.infected": "analyse antivirus (ClamAV)",
    "document.scan_failed": "analyse antivirus (ClamAV)",
}


@dataclass(frozen=True)
class FileFacts:
    size: int                          # bytes
    sniffed_kind: str                  # liaison.sniff.Sniffed.kind
    declared_ok: bool                  # liaison.sniff.declared_matches(...)
    scan: str                          # clean | infected | not_scanned | error
    virus_name: str | None = None
    knobs: Knobs = field(default_factory=Knobs)
    presented_as: str | None = None    # liaison.sniff.declared_kind(...): what the file claimed to be


def _allow(rule: str, reason: str) -> Allow:
    return Allow(rule, reason, RULES[rule])


def _deny(rule: str, reason: str) -> Deny:
    return Deny(rule, reason, RULES[rule])


def _mib(size: float) -> str:
    return f"{size:.1f}".rstrip("0").rstrip(".").replace(".", ",")


def check_file(f: FileFacts) -> Decision:
    """Whether a file entering a pathway room may be indexed; rules in order, the first that applies decides."""
    kind = f.sniffed_kind if f.sniffed_kind in KIND_LABELS else "unknown"
    what = KIND_LABELS[kind]
    if f.scan == "infected":
        name = f" « {f.virus_name} »" if f.virus_name else ""
        return _deny("document.infected", f"L'antivirus a détecté un virus{name} dans ce fichier : il n'est pas "
                                          "indexé. Prévenez l'expéditeur, et n'ouvrez pas ce fichier s'il vous "
                                          "parvient par un autre moyen.")
    limit = f.knobs.document_max_mib
    if f.size > limit * 1024 * 1024:
        return _deny("document.too_big", f"Le fichier dépasse la taille maximale ({limit} Mio) : il fait "
                                         f"{_mib(f.size / 1024 / 1024)} Mio et n'est pas indexé.")
    if not f.declared_ok:
        presented = KIND_LABELS.get(f.presented_as or "")
        if presented and f.presented_as != kind:
            reason = f"Ce fichier se présente comme {presented} mais contient {what} : il n'est pas indexé."
        else:
            reason = f"Le type annoncé de ce fichier ne correspond pas à son contenu ({what}) : il n'est pas indexé."
        return _deny("document.type_spoofed", reason)
    if kind in NEVER or kind not in f.knobs.document_kinds:
        return _deny("document.type_not_allowed", _not_allowed(kind, f.knobs))
    if f.scan == "error" or f.scan not in SCANS:
        return _deny("document.scan_failed", "L'antivirus n'a pas répondu : le fichier n'est pas indexé pour "
                                             "l'instant. Réessayez dans quelques minutes ; si cela se répète, "
                                             "prévenez la coordination.")
    if f.scan == "not_scanned":
        return _allow("document.allowed", f"Fichier vérifié ({what}, contenu conforme à son type) ; aucun antivirus "
                                          "n'est configuré pour la structure.")
    return _allow("document.allowed", f"Fichier vérifié ({what}, contenu conforme à son type, "
                                      "aucun virus détecté).")


def _not_allowed(kind: str, knobs: Knobs) -> str:
    accepted = ", ".join(_ACCEPTED_LABELS[k] for k in DOCUMENT_KINDS if k in knobs.document_kinds and k not in NEVER)
    accepted = f" Sont acceptés : {accepted}." if accepted else ""
    if kind == "executable":
        return f"Ce fichier est un programme exécutable, pas un document : il n'est pas indexé.{accepted}"
    if kind == "zip":
        return ("Ce fichier est une archive ZIP : une archive n'est pas un document et n'est pas indexée ; "
                f"envoyez les documents qu'elle contient un par un.{accepted}")
    if kind == "office":
        return ("Ce fichier est un document bureautique (Word, Excel…) : il n'est pas indexé ; enregistrez-le en "
                f"PDF puis renvoyez-le.{accepted}")
    if kind == "unknown":
        return f"Le type de ce fichier n'a pas pu être reconnu : il n'est pas indexé.{accepted}"
    return f"La politique de la structure n'accepte pas ce type de fichier ({KIND_LABELS[kind]}).{accepted}"
