"""Reading `!parcours ouvrir` (its form, bound by the registry, then the request) and comparing identities: no
server."""
from __future__ import annotations

from datetime import date

from bot.commands import build_registry
from bot.registry import Words
from bot.opening import OpenRequest, identity_conflict, request
from liaison.stores.pathways import Patient
from liaison.config import parse_config
from policies.ins import nir_key

NIR = "2480575123456"
INS = f"{NIR}{nir_key(NIR):02d}"
TYPES = (("plaie-chronique", "Plaie chronique"), ("autre", "Autre"))
REGISTRY = build_registry()


def parse_open(words: list[str], test_mode: bool, types: tuple[tuple[str, str], ...]) -> OpenRequest | str:
    """The line as the registry binds it, then as the handler makes it a request: the request, or what is wrong."""
    line = words.text if isinstance(words, Words) else " ".join(f'"{w}"' if " " in w else w for w in words)
    parsed = REGISTRY.parse(f"!parcours ouvrir {line}")
    if parsed.problem is not None:
        return parsed.problem.text
    return request(parsed.args, test_mode, types)


def test_configured_types_and_team_option():
    req = parse_open([INS, "plaie", "01/05/1948", "F", "Petit", "Anne", "Marie", "--équipe", "@a:hs,infirmier"],
                     True, TYPES)
    assert isinstance(req, OpenRequest)
    assert (req.type_key, req.first_names, req.team) == ("plaie-chronique", "Anne Marie", ("@a:hs", "infirmier"))
    assert "inconnu" in parse_open([INS, "diabete", "01/05/1948", "F", "Petit", "Anne"], True, TYPES)


def test_test_oid_needs_test_mode_and_traits_must_match():
    words = [INS, "autre", "01/05/1948", "F", "Petit", "Anne"]
    assert isinstance(parse_open(words, True, TYPES), OpenRequest)
    assert isinstance(parse_open(words, False, TYPES), OpenRequest)   # production OID by default
    wrong_sex = parse_open([INS, "autre", "01/05/1948", "M", "Petit", "Anne"], True, TYPES)
    assert "sexe" in wrong_sex.lower()


def test_identity_conflict_names_the_trait():
    known = Patient("p", INS, "oid", "Petit", "Anne", date(1948, 5, 1), "F", None)
    same = parse_open([INS, "autre", "01/05/1948", "F", "PETIT", "anne"], True, TYPES)
    assert identity_conflict(known, same) is None, "case and accents are not a difference"
    other = parse_open([INS, "autre", "01/05/1948", "F", "Petit-Martin", "Anne"], True, TYPES)
    assert "le nom de naissance" in identity_conflict(known, other)


def test_pathway_types_from_the_config():
    raw = {"homeserver": {"url": "http://x", "server_name": "hs"}, "bot": {"user_id": "@b:hs", "store_pickle_key": "k" * 32},
           "pathways": {"types": [{"key": "plaie-chronique", "label": "Plaie chronique"}]}}
    assert parse_config(raw, {}).pathways.types[0].label == "Plaie chronique"


def test_named_fields_in_any_order_and_a_type_of_several_words():
    typed = Words(f'{INS} "plaie chronique" --nom Petit --prenom Anne Marie --naissance 1948-05-01 --sexe F')
    req = parse_open(typed, True, TYPES)
    assert isinstance(req, OpenRequest), req
    assert (req.type_key, req.birth_name, req.first_names, req.birth_date) == \
        ("plaie-chronique", "Petit", "Anne Marie", date(1948, 5, 1))
    shuffled = parse_open(Words(f"--sexe F --type plaie chronique --ins {INS} --naissance 01/05/1948 --nom Petit "
                                "--prénoms Anne"), True, TYPES)
    assert isinstance(shuffled, OpenRequest) and shuffled.type_key == "plaie-chronique"


def test_a_type_of_several_words_by_position():
    req = parse_open(Words(f"{INS} plaie chronique 01/05/1948 F Petit Anne Marie --equipe @a:hs"), True, TYPES)
    assert isinstance(req, OpenRequest), req
    assert (req.type_key, req.sex, req.birth_name, req.first_names, req.team) == \
        ("plaie-chronique", "F", "Petit", "Anne Marie", ("@a:hs",))


def test_an_error_names_the_field_and_shows_an_example_from_what_was_typed():
    missing = parse_open(Words(f'{INS} "plaie chronique" --nom Petit --prenom Anne'), True, TYPES)
    assert "Il manque : date de naissance, sexe" in missing
    assert f"!parcours ouvrir {INS} « plaie chronique » 03/05/1948 F Petit Anne" in missing
    unreadable = parse_open(Words(f"{INS} plaie --naissance cardiaque --sexe F --nom Petit --prenom Anne"), True, TYPES)
    assert "« cardiaque » illisible" in unreadable and f"!parcours ouvrir {INS} plaie 03/05/1948" in unreadable
    assert "deux fois" in parse_open(Words(f"{INS} --nom A --nom B"), True, TYPES)


def test_the_pinned_summary_says_nee_for_a_woman_and_ne_for_a_man():
    from bot.room_specs import summary_message

    for sex, word in (("F", "née"), ("M", "né")):
        identity = {"birth_name": "Petit", "first_names": "Anne", "birth_date": date(1948, 5, 1), "sex": sex,
                    "ins": INS, "ins_kind": "NIR", "oid": "1.2.250.1.213.1.4.8"}
        text, html = summary_message(identity=identity, pathway_label="Autre", code="P-AAAAA", opened_by="Claire Morel",
                                     opened_on=date(2025, 1, 2), fields={}, team=[])
        assert f"Patient : PETIT Anne, {word} le 01/05/1948" in text and f", {word} le " in html
        assert "né(e)" not in text, "the patient's sex is known"
