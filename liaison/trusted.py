"""The MSSanté trusted-domain list (liste blanche) published by the ANS, read safely."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

NAMESPACE = "https://listeblanche.mssante.fr/schema"
_DOMAIN = f"{{{NAMESPACE}}}Domaine"
_NAME = f"{{{NAMESPACE}}}Nom"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_BYTES = 16 * 1024 * 1024


class TrustedListError(ValueError):
    """A trusted list that cannot be used; `.reason` says what is wrong, in French."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TrustedDomains:
    domains: frozenset[str]

    def trusts(self, address: str) -> bool:
        """True when the address's domain is exactly one of the list (case-insensitive)."""
        if not isinstance(address, str) or any(c in address for c in "\r\n\x00"):
            return False
        if address.count("@") != 1:
            return False
        local, domain = address.split("@")
        if not local or not domain or domain != domain.strip() or any(c.isspace() for c in address):
            return False
        try:
            return _normalise(domain) in self.domains
        except ValueError:
            return False


class _LineBuilder(TreeBuilder):
    """A tree builder that remembers the source line of each element."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, int] = {}
        self.expat = None

    def start(self, tag, attrs):  # noqa: D102 - TreeBuilder protocol
        element = super().start(tag, attrs)
        if self.expat is not None:
            self.lines[id(element)] = self.expat.CurrentLineNumber
        return element


def _normalise(name: str) -> str:
    """Lower-case ASCII (IDNA) form of a domain name; ValueError if it is not a valid name."""
    name = name.strip().rstrip(".").lower()
    if not name.isascii():
        name = name.encode("idna").decode("ascii")  # raises UnicodeError (a ValueError)
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(name)
    if labels[-1].isdigit():
        raise ValueError(name)
    return name


def parse_trusted_domains(xml: bytes) -> TrustedDomains:
    """Read the ANS list: every `Domaine/Nom` of the namespace; refuses DTDs and invalid names."""
    if len(xml) > _MAX_BYTES:
        raise TrustedListError("La liste blanche MSSanté est trop volumineuse pour être lue.")
    builder = _LineBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    builder.expat = parser.parser
    try:
        parser.feed(xml)
        root = parser.close()
    except DefusedXmlException:
        raise TrustedListError("La liste blanche MSSanté contient une DTD ou des entités : "
                               "elle est refusée par sécurité.") from None
    except (ParseError, LookupError, ValueError) as exc:  # LookupError: unknown declared encoding
        position = getattr(exc, "position", None)
        line = position[0] if position else "?"
        raise TrustedListError(f"La liste blanche MSSanté n'est pas un XML valide (ligne {line}).") from None
    if not root.tag.startswith(f"{{{NAMESPACE}}}"):
        raise TrustedListError(f"La liste blanche MSSanté n'est pas dans l'espace de noms attendu "
                               f"({NAMESPACE}) : ce document n'est pas une liste blanche.")
    domains: set[str] = set()
    for domaine in root.iter(_DOMAIN):
        line = builder.lines.get(id(domaine), "?")
        names = domaine.findall(_NAME)
        if len(names) != 1:
            raise TrustedListError(f"Liste blanche MSSanté, ligne {line} : un élément Domaine doit "
                                   f"avoir exactement un Nom.")
        text = (names[0].text or "").strip()
        try:
            domains.add(_normalise(text))
        except ValueError:
            shown = text[:80].encode("unicode_escape").decode("ascii")
            raise TrustedListError(f"Liste blanche MSSanté, ligne {builder.lines.get(id(names[0]), line)} : "
                                   f"« {shown} » n'est pas un nom de domaine valide.") from None
    if not domains:
        raise TrustedListError("La liste blanche MSSanté ne contient aucun domaine : "
                               "elle est refusée (aucun correspondant ne serait accepté).")
    return TrustedDomains(frozenset(domains))


def load_trusted_domains(path: str | Path) -> TrustedDomains:
    """Read and parse the list file at `path`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustedListError(f"Impossible de lire la liste blanche MSSanté « {path} » "
                               f"({exc.strerror or 'erreur de lecture'}).") from None
    return parse_trusted_domains(data)
