"""The columns of the ANS's extracts, read by name (never by position): each field we keep, the header names it has
had from one release to the next, and which fields an extract cannot go without.

Names as the ANS writes them in its headers (PS_LibreAcces_Personne_activite, 56 columns in the current release;
PS_LibreAcces_SavoirFaire; Extraction_Correspondance_MSSante, 31 columns). A name is compared folded (case, accents,
punctuation and spaces ignored), so « Code Département (structure) » and « Code département (coord. structure) » are
the same column.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass


def fold_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


@dataclass(frozen=True)
class Kind:
    key: str                                  # personnes | savoirfaire | mssante (directory_import.kind)
    label: str                                # in French, for `liaison annuaire etat`
    file_prefix: str
    fields: dict[str, tuple[str, ...]]        # our field -> its header names, the current one first
    required: tuple[str, ...]

    def names(self, field: str) -> str:
        return self.fields[field][0]


PERSONNES = Kind("personnes", "personnes et activités", "PS_LibreAcces_Personne_activite", {
    "id_type": ("Type d'identifiant PP",),
    "rpps": ("Identifiant PP",),
    "national_id": ("Identification nationale PP",),
    "civility": ("Code civilité d'exercice",),
    "last_name": ("Nom d'exercice",),
    "first_name": ("Prénom d'exercice",),
    "profession_code": ("Code profession",),
    "profession_label": ("Libellé profession",),
    "specialty_code": ("Code savoir-faire",),
    "specialty_label": ("Libellé savoir-faire",),
    "mode": ("Code mode exercice",),
    "siret": ("Numéro SIRET site",),
    "finess": ("Numéro FINESS site",),
    "structure_id": ("Identifiant technique de la structure",),
    "structure": ("Raison sociale site",),
    "brand": ("Enseigne commerciale site",),
    "postcode": ("Code postal (coord. structure)",),
    "commune": ("Libellé commune (coord. structure)",),
    "cedex": ("Bureau cedex (coord. structure)",),
    "department": ("Code Département (structure)", "Code département (coord. structure)"),
    "role": ("Code rôle", "Code fonction"),
}, ("national_id", "last_name", "profession_code"))

SAVOIR_FAIRE = Kind("savoirfaire", "savoir-faire", "PS_LibreAcces_SavoirFaire", {
    "national_id": ("Identification nationale PP",),
    "specialty_code": ("Code savoir-faire",),
    "specialty_label": ("Libellé savoir-faire",),
}, ("national_id", "specialty_code", "specialty_label"))

MSSANTE = Kind("mssante", "boîtes aux lettres MSSanté", "Extraction_Correspondance_MSSante", {
    "box_kind": ("Type de BAL",),
    "address": ("Adresse BAL",),
    "national_id": ("Identification nationale PP",),
    "service": ("Service de rattachement",),
    "civility": ("Civilité d'exercice",),
    "last_name": ("Nom d'exercice",),
    "first_name": ("Prénom d'exercice",),
    "profession_code": ("Code Profession",),
    "profession_label": ("Libellé Profession",),
    "specialty_label": ("Libellé savoir-faire",),
    "structure": ("Raison Sociale structure BAL",),
    "brand": ("Enseigne commerciale structure BAL",),
    "delivery": ("L6LIGNEACHEMINEMENT",),
    "postcode": ("Code postal",),
    "department": ("Département",),
}, ("box_kind", "address"))

KINDS = (PERSONNES, SAVOIR_FAIRE, MSSANTE)

# The header lines of the current releases, as published (tests and the bench write them).
PERSONNES_HEADER = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|Code profession|"
    "Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|Code type savoir-faire|"
    "Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|Code mode exercice|Libellé mode exercice|"
    "Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|Numéro FINESS établissement juridique|"
    "Identifiant technique de la structure|Raison sociale site|Enseigne commerciale site|"
    "Complément destinataire (coord. structure)|Complément point géographique (coord. structure)|"
    "Numéro Voie (coord. structure)|Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|Mention distribution (coord. structure)|"
    "Bureau cedex (coord. structure)|Code postal (coord. structure)|Code commune (coord. structure)|"
    "Libellé commune (coord. structure)|Code pays (coord. structure)|Libellé pays (coord. structure)|"
    "Téléphone (coord. structure)|Téléphone 2 (coord. structure)|Télécopie (coord. structure)|"
    "Adresse e-mail (coord. structure)|Code Département (structure)|Libellé Département (structure)|"
    "Ancien identifiant de la structure|Autorité d'enregistrement|Code secteur d'activité|Libellé secteur d'activité|"
    "Code section tableau pharmaciens|Libellé section tableau pharmaciens|Code rôle|Libellé rôle|"
    "Code genre activité|Libellé genre activité|")
SAVOIR_FAIRE_HEADER = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Nom d'exercice|Prénom d'exercice|"
    "Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|"
    "Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|")
MSSANTE_HEADER = (
    "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|"
    "Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|"
    "Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|"
    "Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|"
    "Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION|L3COMPLEMENTDISTRIBUTION|L4NUMEROVOIE|"
    "L4COMPLEMENTNUMEROVOIE|NL4TYPEVOIE|L4LIBELLEVOIE|L5LIEUDITMENTION|L6LIGNEACHEMINEMENT|Code postal|"
    "Département|Pays|")


class HeaderRefused(ValueError):
    """Not an extract we read; `.message` in French, naming what is missing."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def kind_of(file_name: str, header: list[str]) -> Kind:
    """The extract's kind, from its name when it says it, else from its header."""
    for kind in KINDS:
        if kind.file_prefix.lower().replace("_", "") in fold_name(file_name):
            return kind
    folded = {fold_name(h) for h in header}
    if fold_name("Adresse BAL") in folded:
        return MSSANTE
    if fold_name("Raison sociale site") in folded:
        return PERSONNES
    if fold_name("Code savoir-faire") in folded:
        return SAVOIR_FAIRE
    return PERSONNES


def positions(kind: Kind, header: list[str]) -> dict[str, int]:
    """Each of our fields' position in this header; HeaderRefused naming the required columns it lacks."""
    where: dict[str, int] = {}
    for index, name in enumerate(header):
        where.setdefault(fold_name(name), index)
    found = {}
    for field, names in kind.fields.items():
        for name in names:
            if fold_name(name) in where:
                found[field] = where[fold_name(name)]
                break
    missing = [kind.names(f) for f in kind.required if f not in found]
    if missing:
        raise HeaderRefused(f"ce fichier n'est pas une extraction « {kind.label} » de l'Annuaire Santé : "
                            f"colonne{'s' if len(missing) > 1 else ''} absente{'s' if len(missing) > 1 else ''} "
                            f"de l'en-tête : {', '.join('« ' + m + ' »' for m in missing)}")
    return found
