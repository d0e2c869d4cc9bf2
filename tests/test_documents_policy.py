"""policies.documents: document types, and whether a file entering a pathway room may be indexed."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.decision import Allow, Deny
from policies.documents import (DOCUMENT_KINDS, RULES, DocType, FileFacts, check_file, find_doctype, send_code,
                                guess_doctype)
from policies.knobs import KnobError, load_knobs
from policies.sharing import Knobs

MIB = 1024 * 1024
CLEAN_PDF = FileFacts(size=200_000, sniffed_kind="pdf", declared_ok=True, scan="clean")


def test_labels_are_french():
    assert [(d.value, d.label) for d in DocType] == [
        ("compte-rendu-consultation", "Compte rendu de consultation"),
        ("lettre-liaison", "Compte rendu d'hospitalisation / lettre de liaison"),
        ("biologie", "Résultat de biologie"), ("imagerie", "Imagerie"), ("ordonnance", "Ordonnance"),
        ("photo", "Photo"), ("courrier", "Courrier"), ("autre", "Autre")]


@pytest.mark.parametrize("typed, doctype", [
    ("resultat de biologie", DocType.BIOLOGIE), ("Résultat de biologie", DocType.BIOLOGIE),
    ("RÉSULTAT DE BIOLOGIE", DocType.BIOLOGIE), ("biologie", DocType.BIOLOGIE), ("bilan sanguin", DocType.BIOLOGIE),
    ("lettre", DocType.LETTRE_LIAISON), ("lettre de liaison", DocType.LETTRE_LIAISON),
    ("lettre-liaison", DocType.LETTRE_LIAISON), ("compte rendu d'hospitalisation", DocType.LETTRE_LIAISON),
    ("CRH", DocType.LETTRE_LIAISON),
    ("compte rendu de consultation", DocType.COMPTE_RENDU_CONSULTATION),
    ("compte-rendu", DocType.COMPTE_RENDU_CONSULTATION), ("CR", DocType.COMPTE_RENDU_CONSULTATION),
    ("imagerie", DocType.IMAGERIE), ("échographie", DocType.IMAGERIE), ("echo", DocType.IMAGERIE),
    ("IRM", DocType.IMAGERIE), ("ordonnance", DocType.ORDONNANCE), ("Ordonnance", DocType.ORDONNANCE),
    ("photo", DocType.PHOTO), ("courrier", DocType.COURRIER), ("autre", DocType.AUTRE), ("  Autre ", DocType.AUTRE),
])
def test_find_doctype_forgives_case_and_accents(typed, doctype):
    assert find_doctype(typed) is doctype


@pytest.mark.parametrize("typed", ["", "facture", "biolo", "x"])
def test_unknown_doctype(typed):
    assert find_doctype(typed) is None


@pytest.mark.parametrize("code, filename, kind, doctype", [
    ("11490-0", None, "pdf", DocType.LETTRE_LIAISON),
    ("34133-9", "x.pdf", "pdf", DocType.LETTRE_LIAISON),
    ("34106-3", None, "cda", DocType.LETTRE_LIAISON),
    ("11488-4", None, "pdf", DocType.COMPTE_RENDU_CONSULTATION),
    ("34101-4", None, "pdf", DocType.COMPTE_RENDU_CONSULTATION),
    ("11502-2", None, "cda", DocType.BIOLOGIE),
    ("18719-5", None, "pdf", DocType.BIOLOGIE),
    ("18748-4", None, "pdf", DocType.IMAGERIE),
    ("57833-6", None, "pdf", DocType.ORDONNANCE),
    (" 11502-2 ", None, "pdf", DocType.BIOLOGIE),
    ("11502-2", "ordonnance.pdf", "pdf", DocType.BIOLOGIE),                 # the code wins over the name
    ("99999-9", "ordonnance.pdf", "pdf", DocType.ORDONNANCE),               # unknown code: the name decides
    (None, "Ordonnance_Dr_Martin.pdf", "pdf", DocType.ORDONNANCE),
    (None, "bilan-sanguin-mars.pdf", "pdf", DocType.BIOLOGIE),
    (None, "Résultats d'analyses.pdf", "pdf", DocType.BIOLOGIE),
    (None, "biologie 2024-03.pdf", "pdf", DocType.BIOLOGIE),
    (None, "radio_thorax.jpg", "image", DocType.IMAGERIE),
    (None, "ÉCHO abdominale.pdf", "pdf", DocType.IMAGERIE),
    (None, "IRM-genou.pdf", "pdf", DocType.IMAGERIE),
    (None, "scanner.pdf", "pdf", DocType.IMAGERIE),
    (None, "compte-rendu consultation cardio.pdf", "pdf", DocType.COMPTE_RENDU_CONSULTATION),
    (None, "Compte Rendu.pdf", "pdf", DocType.COMPTE_RENDU_CONSULTATION),
    (None, "CR_cardio.pdf", "pdf", DocType.COMPTE_RENDU_CONSULTATION),
    (None, "CR hospitalisation.pdf", "pdf", DocType.LETTRE_LIAISON),
    (None, "lettre_de_liaison_sortie.pdf", "pdf", DocType.LETTRE_LIAISON),
    (None, "lettre Dr Martin.pdf", "pdf", DocType.COURRIER),
    (None, "courrier.txt", "text", DocType.COURRIER),
    (None, "IMG_2041.HEIC", "image", DocType.PHOTO),
    (None, "plaie talon.jpg", "image", DocType.PHOTO),
    (None, "scan0001.pdf", "pdf", DocType.AUTRE),
    (None, "ecriture.pdf", "pdf", DocType.AUTRE),       # "cr" inside a word is not "CR"
    (None, None, "text", DocType.AUTRE),
    ("", "", "image", DocType.PHOTO),
])
def test_guess_doctype(code, filename, kind, doctype):
    assert guess_doctype(type_code=code, filename=filename, sniffed_kind=kind) is doctype


# --- check_file: each rule ---

def test_a_clean_pdf_is_allowed():
    decision = check_file(CLEAN_PDF)
    assert isinstance(decision, Allow) and decision.allowed and decision.rule == "document.allowed"
    assert decision.basis == RULES["document.allowed"]


@pytest.mark.parametrize("kind", ["pdf", "image", "cda", "text"])
def test_default_kinds_are_allowed(kind):
    assert check_file(replace(CLEAN_PDF, sniffed_kind=kind)).rule == "document.allowed"


def test_not_scanned_is_allowed_and_says_so():
    decision = check_file(replace(CLEAN_PDF, scan="not_scanned"))
    assert decision.allowed and "aucun antivirus" in decision.reason


def test_too_big():
    decision = check_file(replace(CLEAN_PDF, size=30 * MIB + MIB // 2))
    assert isinstance(decision, Deny) and decision.rule == "document.too_big"
    assert decision.reason.startswith("Le fichier dépasse la taille maximale (25 Mio)")
    assert "30,5 Mio" in decision.reason
    assert check_file(replace(CLEAN_PDF, size=25 * MIB)).allowed
    small = Knobs(document_max_mib=1)
    assert check_file(replace(CLEAN_PDF, size=MIB + 1, knobs=small)).rule == "document.too_big"


@pytest.mark.parametrize("kind, words", [
    ("executable", "programme exécutable"), ("zip", "archive ZIP"), ("office", "PDF"),
    ("unknown", "pas pu être reconnu"), ("xml", "fichier XML"),
])
def test_type_not_allowed(kind, words):
    decision = check_file(replace(CLEAN_PDF, sniffed_kind=kind))
    assert decision.rule == "document.type_not_allowed" and not decision.allowed and words in decision.reason
    assert "Sont acceptés : PDF, images, documents CDA, textes." in decision.reason


def test_kinds_follow_the_policy_but_never_executables_or_archives():
    only_pdf = Knobs(document_kinds=frozenset({"pdf"}))
    assert check_file(replace(CLEAN_PDF, sniffed_kind="image", knobs=only_pdf)).rule == "document.type_not_allowed"
    with_xml = Knobs(document_kinds=frozenset({"pdf", "xml"}))
    assert check_file(replace(CLEAN_PDF, sniffed_kind="xml", knobs=with_xml)).allowed
    reckless = Knobs(document_kinds=frozenset({"pdf", "executable", "zip"}))   # not loadable from a file
    for kind in ("executable", "zip"):
        assert check_file(replace(CLEAN_PDF, sniffed_kind=kind, knobs=reckless)).rule == "document.type_not_allowed"


def test_type_spoofed():
    decision = check_file(replace(CLEAN_PDF, sniffed_kind="executable", declared_ok=False, presented_as="pdf"))
    assert decision.rule == "document.type_spoofed"
    assert decision.reason == ("Ce fichier se présente comme un PDF mais contient un programme exécutable : "
                               "il n'est pas indexé.")
    anonymous = check_file(replace(CLEAN_PDF, declared_ok=False))
    assert anonymous.rule == "document.type_spoofed" and "ne correspond pas à son contenu (un PDF)" in anonymous.reason


def test_infected_names_the_signature():
    decision = check_file(replace(CLEAN_PDF, scan="infected", virus_name="Win.Trojan.Agent-1234"))
    assert decision.rule == "document.infected" and "« Win.Trojan.Agent-1234 »" in decision.reason
    assert check_file(replace(CLEAN_PDF, scan="infected")).rule == "document.infected"
    # an infected file is named infected, whatever else is wrong with it
    worst = FileFacts(size=999 * MIB, sniffed_kind="executable", declared_ok=False, scan="infected", virus_name="X")
    assert check_file(worst).rule == "document.infected"


@pytest.mark.parametrize("scan", ["error", "garbage"])
def test_scan_failed_refuses_and_says_to_retry(scan):
    decision = check_file(replace(CLEAN_PDF, scan=scan))
    assert decision.rule == "document.scan_failed" and not decision.allowed
    assert "L'antivirus n'a pas répondu" in decision.reason and "Réessayez" in decision.reason


def test_a_definitive_refusal_comes_before_a_retry():
    assert check_file(replace(CLEAN_PDF, scan="error", sniffed_kind="executable")).rule == "document.type_not_allowed"
    assert check_file(replace(CLEAN_PDF, scan="error", size=100 * MIB)).rule == "document.too_big"


def test_every_rule_has_a_basis():
    for rule, basis in RULES.items():
        assert rule.startswith("document.") and basis


# --- the knobs ---

def test_document_knobs_load_and_are_checked():
    knobs = load_knobs("document_kinds: [pdf, xml]\ndocument_max_mib: 100\n")
    assert knobs.document_kinds == frozenset({"pdf", "xml"}) and knobs.document_max_mib == 100
    assert Knobs().document_kinds == frozenset({"pdf", "image", "cda", "text"}) and Knobs().document_max_mib == 25
    for text, words in (("document_kinds: [pdf, executable]\n", "executable"), ("document_kinds: [zip]\n", "zip"),
                        ("document_max_mib: 0\n", "entre 1 et 200"), ("document_max_mib: 201\n", "entre 1 et 200"),
                        ("document_max_mib: 2.5\n", "entier"), ("document_kinds: pdf\n", "liste")):
        with pytest.raises(KnobError) as err:
            load_knobs(text)
        assert words in err.value.message and "ligne 1" in err.value.message


# --- properties ---

facts = st.builds(
    FileFacts,
    size=st.integers(min_value=0, max_value=300 * MIB),
    sniffed_kind=st.sampled_from(["pdf", "image", "cda", "xml", "text", "zip", "executable", "office", "unknown",
                                  "bogus"]),
    declared_ok=st.booleans(),
    scan=st.sampled_from(["clean", "infected", "not_scanned", "error"]),
    virus_name=st.none() | st.text(max_size=30),
    knobs=st.builds(Knobs, document_kinds=st.frozensets(st.sampled_from(
                        [*DOCUMENT_KINDS, "zip", "executable", "office", "unknown"])),
                    document_max_mib=st.integers(min_value=1, max_value=200)),
    presented_as=st.none() | st.sampled_from(["pdf", "image", "text", "executable"]),
)


@given(facts)
def test_never_allows_an_executable_a_spoofed_type_or_a_virus(f):
    decision = check_file(f)
    assert decision.reason and decision.rule in RULES and decision.basis == RULES[decision.rule]
    if f.sniffed_kind in ("executable", "zip") or not f.declared_ok or f.scan in ("infected", "error"):
        assert isinstance(decision, Deny) and not decision.allowed
    if decision.allowed:
        assert f.size <= f.knobs.document_max_mib * MIB and f.sniffed_kind in f.knobs.document_kinds


def test_an_outgoing_xdm_keeps_the_type_code_it_came_with_when_it_agrees_with_the_type():
    assert send_code(DocType.LETTRE_LIAISON, "34133-9") == ("34133-9", DocType.LETTRE_LIAISON.label)
    assert send_code(DocType.BIOLOGIE, "34133-9") == ("11502-2", "CR d'examens biologiques"), \
        "retyped with !doc type: the code follows the new type"
    assert send_code(DocType.ORDONNANCE, None)[0] == "57833-6"
    for doctype in DocType:
        code, label = send_code(doctype, None)
        assert code and label
