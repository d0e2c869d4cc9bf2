"""The MSSanté trusted-domain list: the demo file, what is refused, and who is trusted."""
from __future__ import annotations

from pathlib import Path

import pytest

from liaison.trusted import TrustedDomains, TrustedListError, load_trusted_domains, parse_trusted_domains

DEMO = Path(__file__).resolve().parents[1] / "deploy" / "mssante" / "liste-blanche-demo.xml"
NS = "https://listeblanche.mssante.fr/schema"


def listing(*names: str, ns: str = NS, extra: str = "") -> bytes:
    domains = "".join(f"\n  <Domaine><Nom>{n}</Nom><Operateur>Démo</Operateur></Domaine>" for n in names)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{extra}<ListeBlanche xmlns="{ns}">{domains}\n</ListeBlanche>'.encode()


def test_demo_file():
    trusted = load_trusted_domains(DEMO)
    assert trusted.domains == {"msp-demo.mssante.test", "chu-demo.mssante.test", "labo-demo.mssante.test"}
    assert trusted.trusts("dr.lefebvre@chu-demo.mssante.test")
    assert not trusted.trusts("inconnu@messagerie-ordinaire.test")


def test_normalises_case_and_whitespace_and_tolerates_extra_elements():
    trusted = parse_trusted_domains(listing("  CHU-Demo.MSSante.test \n", "labo.example.fr"))
    assert trusted.domains == {"chu-demo.mssante.test", "labo.example.fr"}


def test_other_namespace_refused():
    with pytest.raises(TrustedListError, match="espace de noms"):
        parse_trusted_domains(listing("a.fr", ns="https://example.invalid/schema"))
    with pytest.raises(TrustedListError, match="espace de noms"):
        parse_trusted_domains(b"<ListeBlanche><Domaine><Nom>a.fr</Nom></Domaine></ListeBlanche>")


@pytest.mark.parametrize("dtd", ['<!DOCTYPE ListeBlanche [<!ENTITY x "chu.fr">]>\n',
                                 '<!DOCTYPE ListeBlanche SYSTEM "http://example.invalid/l.dtd">\n'])
def test_dtd_refused(dtd):
    with pytest.raises(TrustedListError, match="DTD"):
        parse_trusted_domains(listing("a.fr", extra=dtd))


def test_empty_list_refused():
    with pytest.raises(TrustedListError, match="aucun domaine"):
        parse_trusted_domains(listing())


@pytest.mark.parametrize("bad", ["", "localhost", "bad_domain.fr", "-a.fr", "a-.fr", "a..fr", "a b.fr",
                                 "x" * 64 + ".fr", "a@b.fr", "1.2.3.4"])
def test_bad_domain_refused_with_its_line(bad):
    with pytest.raises(TrustedListError) as caught:
        parse_trusted_domains(listing("ok.fr", bad))
    assert "ligne 4" in caught.value.reason


def test_domain_without_name_refused():
    data = f'<ListeBlanche xmlns="{NS}"><Domaine><Operateur>x</Operateur></Domaine></ListeBlanche>'.encode()
    with pytest.raises(TrustedListError, match="Nom"):
        parse_trusted_domains(data)


def test_not_xml_names_the_line():
    with pytest.raises(TrustedListError, match="ligne 2"):
        parse_trusted_domains(b"<?xml version='1.0'?>\n<ListeBlanche")


def test_unknown_encoding_refused():
    with pytest.raises(TrustedListError, match="XML valide"):
        parse_trusted_domains(b"<?xml version='1.0' encoding='TF-8'?>\n<ListeBlanche/>")


def test_unreadable_file(tmp_path):
    with pytest.raises(TrustedListError, match="Impossible de lire"):
        load_trusted_domains(tmp_path / "absente.xml")


@pytest.mark.parametrize("address, expected", [
    ("a@chu.fr", True), ("Dr.X@CHU.FR", True), ("a@sub.chu.fr", False), ("a@chu.fr.evil.test", False),
    ("a@evilchu.fr", False), ("chu.fr", False), ("a@b@chu.fr", False), ("a@chu.fr\r\nBcc: x@y.fr", False),
    ("a@chu.fr\n", False), ("@chu.fr", False), ("a@", False), (" a@chu.fr", False), ("a@chu.fr.", True),
])
def test_trusts_edge_cases(address, expected):
    assert TrustedDomains(frozenset({"chu.fr"})).trusts(address) is expected
