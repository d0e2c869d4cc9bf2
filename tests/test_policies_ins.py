"""policies.ins: reading the patient's INS, its OID, and checking it against the identity traits."""
from __future__ import annotations

from datetime import date

import pytest

from policies.ins import (OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST, Ins, InsError,
                          TraitError, check_traits, parse_birth_date, parse_ins, parse_sex)


def key_of(nir13: str) -> str:
    """Independent key computation: Corsica's 2A/2B → 19/18, then 97 − (n mod 97)."""
    digits = nir13.replace("2A", "19").replace("2B", "18")
    return "%02d" % (97 - int(digits) % 97)


def with_key(nir13: str) -> str:
    return nir13 + key_of(nir13)


PARIS = with_key("1480575123456")  # man born in May 1948 in Paris
AJACCIO = with_key("252062A004012")  # woman, Corse-du-Sud
BASTIA = with_key("1771 12B033 005".replace(" ", ""))
NIA = with_key("7480599123456")


def test_key_helper_matches_a_published_example():
    # 2 62 08 75 032 039 → key 77 (worked example of the NIR key, public pages on the NIR)
    assert key_of("2620875032039") == "77"
    assert parse_ins("2 62 08 75 032 039 77").value == "262087503203977"


@pytest.mark.parametrize("typed, value, kind, oid", [
    (PARIS, PARIS, "NIR", OID_INS_NIR),
    ("1 48 05 75 123 456 " + PARIS[13:], PARIS, "NIR", OID_INS_NIR),
    ("1.48.05.75.123.456." + PARIS[13:], PARIS, "NIR", OID_INS_NIR),
    ("1-48-05-75-123-456-" + PARIS[13:], PARIS, "NIR", OID_INS_NIR),
    (AJACCIO, AJACCIO, "NIR", OID_INS_NIR),
    (AJACCIO.lower(), AJACCIO, "NIR", OID_INS_NIR),  # 2a typed in lower case
    (BASTIA, BASTIA, "NIR", OID_INS_NIR),
    (NIA, NIA, "NIA", OID_INS_NIA),
    (with_key("8900199000001"), with_key("8900199000001"), "NIA", OID_INS_NIA),
    (with_key("3850199123001"), with_key("3850199123001"), "NIR", OID_INS_NIR),  # foreign-born, temporary
    (with_key("4850199123001"), with_key("4850199123001"), "NIR", OID_INS_NIR),
    (with_key("1482075123456"), with_key("1482075123456"), "NIR", OID_INS_NIR),  # month 20: incomplete record
    (with_key("1485075123456"), with_key("1485075123456"), "NIR", OID_INS_NIR),  # month 50
])
def test_valid_ins(typed, value, kind, oid):
    ins = parse_ins(typed)
    assert ins == Ins(value, kind, oid)
    assert not ins.is_test


def test_corsica_keys_are_computed_with_19_and_18():
    assert AJACCIO[13:] == "%02d" % (97 - 2520619004012 % 97)
    assert BASTIA[13:] == "%02d" % (97 - 1771118033005 % 97)
    assert parse_ins(AJACCIO).value[5:7] == "2A" and parse_ins(BASTIA).value[5:7] == "2B"


def wrong_key(value: str) -> str:
    return value[:13] + "%02d" % ((int(value[13:]) % 97) + 1)


@pytest.mark.parametrize("typed, fragments", [
    (wrong_key(PARIS), ["clé", "ne correspond pas", "INSi"]),
    (wrong_key(AJACCIO), ["clé", "carte Vitale"]),
    (PARIS[:-1], ["15 caractères", "14 reçus"]),
    ("148", ["15 caractères", "3 reçus"]),
    (PARIS + "0", ["15 caractères", "16 reçus"]),
    ("", ["vide"]),
    ("1480575X23456" + "00", ["« X »", "position 8"]),
    ("X480575123456" + "00", ["« X »", "position 1"]),
    ("1480575123456" + "4O", ["« O »", "position 15"]),
    ("14805" + "2C" + "123456" + "00", ["« C »", "position 7", "2A/2B"]),
    ("14805" + "A2" + "123456" + "00", ["« A »", "position 6"]),
    (with_key("5480575123456"), ["« 5 »", "1 ou 2", "7 ou 8"]),
    (with_key("1481375123456"), ["« 13 »", "mois"]),
    (with_key("1480075123456"), ["« 00 »", "mois"]),
])
def test_invalid_ins_says_where(typed, fragments):
    with pytest.raises(InsError) as caught:
        parse_ins(typed)
    for fragment in fragments:
        assert fragment in caught.value.message
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize("typed, test_mode, oid, expected", [
    (PARIS, True, None, OID_INS_NIR_TEST),
    (NIA, True, None, OID_INS_NIA_TEST),
    (PARIS, True, OID_INS_NIR_TEST, OID_INS_NIR_TEST),
    (NIA, True, OID_INS_NIA_TEST, OID_INS_NIA_TEST),
    (PARIS, False, OID_INS_NIR, OID_INS_NIR),
    (PARIS, False, "urn:oid:" + OID_INS_NIR, OID_INS_NIR),
    (PARIS, True, OID_INS_NIR, OID_INS_NIR),
    (NIA, False, OID_INS_NIA, OID_INS_NIA),
])
def test_oid_choice(typed, test_mode, oid, expected):
    ins = parse_ins(typed, test_mode=test_mode, oid=oid)
    assert ins.oid == expected
    assert ins.is_test is (expected in (OID_INS_NIR_TEST, OID_INS_NIA_TEST))


@pytest.mark.parametrize("typed, oid, fragments", [
    (PARIS, OID_INS_NIR_TEST, ["test", "réservé aux données de test"]),
    (NIA, OID_INS_NIA_TEST, ["réservé aux données de test"]),
    (PARIS, OID_INS_NIA, ["INS-NIA", "NIR", OID_INS_NIR]),
    (NIA, OID_INS_NIR, ["INS-NIR", "NIA", OID_INS_NIA]),
    (PARIS, "1.2.250.1.213.1.4.2", ["inconnu"]),
])
def test_oid_refused(typed, oid, fragments):
    with pytest.raises(InsError) as caught:
        parse_ins(typed, oid=oid)
    for fragment in fragments:
        assert fragment in caught.value.message


def test_test_oid_of_the_wrong_kind_in_test_mode():
    with pytest.raises(InsError) as caught:
        parse_ins(PARIS, test_mode=True, oid=OID_INS_NIA_TEST)
    assert OID_INS_NIR_TEST in caught.value.message


def test_cx():
    assert parse_ins(PARIS).cx == f"{PARIS}^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert parse_ins(NIA, test_mode=True).cx == f"{NIA}^^^&1.2.250.1.213.1.4.11&ISO^NH"


@pytest.mark.parametrize("value, born, sex, fragments", [
    (PARIS, date(1948, 5, 3), "M", []),
    (PARIS, date(1948, 5, 3), "homme", []),
    (AJACCIO, date(1952, 6, 1), "F", []),
    (NIA, date(1948, 5, 3), "H", []),
    (PARIS, date(1948, 5, 3), "F", ["sexe", "« 1 »", "masculin"]),
    (AJACCIO, date(1952, 6, 1), "M", ["sexe", "« 2 »", "féminin"]),
    (PARIS, date(1949, 5, 3), "M", ["1949", "« 48 »"]),
    (PARIS, date(1948, 6, 3), "M", ["mois", "06", "« 05 »"]),
    (with_key("1482075123456"), date(1948, 6, 3), "M", []),  # month 20: not compared
])
def test_check_traits(value, born, sex, fragments):
    problems = check_traits(parse_ins(value), born, sex)
    assert len(problems) == (1 if fragments else 0)
    for fragment in fragments:
        assert fragment in problems[0]


def test_check_traits_reports_every_disagreement():
    assert len(check_traits(parse_ins(PARIS), date(1950, 7, 1), "F")) == 3


TODAY = date(2025, 6, 1)


@pytest.mark.parametrize("text, expected", [
    ("03/05/1948", date(1948, 5, 3)),
    ("3/5/1948", date(1948, 5, 3)),
    ("03.05.1948", date(1948, 5, 3)),
    ("1948-05-03", date(1948, 5, 3)),
    (" 01/06/2025 ", date(2025, 6, 1)),
    ("01/01/1890", date(1890, 1, 1)),
])
def test_parse_birth_date(text, expected):
    assert parse_birth_date(text, today=TODAY) == expected


@pytest.mark.parametrize("text, fragment", [
    ("02/06/2025", "futur"),
    ("31/12/1889", "1889"),
    ("31/02/1950", "n'existe pas"),
    ("1948/05/03", "JJ/MM/AAAA"),
    ("hier", "JJ/MM/AAAA"),
    ("", "JJ/MM/AAAA"),
])
def test_parse_birth_date_refuses(text, fragment):
    with pytest.raises(TraitError) as caught:
        parse_birth_date(text, today=TODAY)
    assert fragment in caught.value.message


@pytest.mark.parametrize("text, expected", [
    ("F", "F"), ("f", "F"), ("femme", "F"), ("Femme", "F"), ("féminin", "F"),
    ("M", "M"), ("m", "M"), ("H", "M"), ("h", "M"), ("homme", "M"), ("HOMME", "M"), ("masculin", "M"),
])
def test_parse_sex(text, expected):
    assert parse_sex(text) == expected


@pytest.mark.parametrize("text", ["", "X", "fm", "inconnu"])
def test_parse_sex_refuses(text):
    with pytest.raises(TraitError) as caught:
        parse_sex(text)
    assert "F" in caught.value.message


@pytest.mark.parametrize("ins", [PARIS, AJACCIO, BASTIA])
def test_a_wrong_key_is_refused_without_the_key_that_would_pass(ins):
    """Giving the expected key would let a typo in the 13 digits through as another patient's identity."""
    typed = wrong_key(ins)
    with pytest.raises(InsError) as err:
        parse_ins(typed)
    assert ins[13:] not in str(err.value) and typed[13:] not in str(err.value)
