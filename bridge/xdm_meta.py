"""XDS metadata vocabulary shared by the XDM reader and writer (ITI TF-3 §4.2), and HL7 v2 data types."""
from __future__ import annotations

import io
import re
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring, iterparse as _safe_iterparse

from policies.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST

RIM_NS = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM_NS = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = f"{{{RIM_NS}}}"
CDA_NS = "{urn:hl7-org:v3}"
INS_OIDS = frozenset({OID_INS_NIR, OID_INS_NIA, OID_INS_NIR_TEST, OID_INS_NIA_TEST})
CDA_HEADER_ELEMENTS = 10_000   # a CDA's header holds a few hundred elements: its authors, participants, encounter

STABLE_DOCUMENT = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SS_CLASSIFICATION_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
DOC_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DOC_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DOC_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DOC_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DOC_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DOC_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DOC_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DOC_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DOC_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
CLASSIFICATION_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
RPPS_OID = "1.2.250.1.71.4.2.1"  # national identifiers of health professionals (IdNat_PS)

_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


class XdmError(ValueError):
    """An XDM package refused: `.code` is a short id, `.reason` a French sentence for the clinicians."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def count_fr(n: int) -> str:
    """A count as French writes it: 50 000."""
    return f"{n:,}".replace(",", " ")


def escape(value: str) -> str:
    """HL7 v2 escaping of one component (\\E\\ \\F\\ \\S\\ \\T\\ \\R\\)."""
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return value


def unescape(value: str) -> str:
    out, i = [], 0
    table = {escaped: raw for raw, escaped in _ESCAPES}
    while i < len(value):
        piece = value[i:i + 3]
        if piece in table:
            out.append(table[piece])
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def make_cx(ins: str, oid: str, *, nh: bool = True) -> str:
    """The patient id as an XDS CX: `<INS>^^^&<OID>&ISO^NH`."""
    return f"{escape(ins)}^^^&{oid}&ISO" + ("^NH" if nh else "")


def parse_cx(value: str) -> tuple[str | None, str | None]:
    """(id, assigning authority OID) of a CX `<id>^^^&<OID>&ISO[^type]`; (None, None) if malformed."""
    parts = value.strip().split("^")
    if len(parts) < 4 or not parts[0]:
        return None, None
    authority = parts[3].split("&")
    oid = authority[1] if len(authority) >= 3 and authority[2] == "ISO" else None
    return unescape(parts[0]).strip(), oid


def make_xcn(*, rpps: str | None, family: str, given: str, prefix: str) -> str:
    """An authorPerson XCN `idNatPS^Family^Given^^^Prefix^^^&RPPS-OID&ISO^D^^^IDNPS` (id part with an RPPS).

    An 11-digit RPPS number becomes its national identifier "8" + RPPS.
    """
    parts = ["", escape(family), escape(given), "", "", escape(prefix)]
    if rpps:
        ident = f"8{rpps}" if re.fullmatch(r"[0-9]{11}", rpps) else rpps
        parts[0] = escape(ident)
        parts += ["", "", f"&{RPPS_OID}&ISO", "D", "", "", "IDNPS"]
    return "^".join(parts)


def render_xcn(value: str) -> str | None:
    """A readable name from an XCN: "Prefix Given Family" (e.g. "Dr Camille Lefebvre"), else its id."""
    parts = [unescape(p).strip() for p in value.split("^")]
    parts += [""] * (6 - len(parts))
    readable = " ".join(p for p in (parts[5], parts[2], parts[1]) if p)
    return readable or parts[0] or None


def make_xon(name: str) -> str:
    return escape(name)


def xon_name(value: str) -> str | None:
    """The organisation name of an XON (its first component)."""
    return unescape(value.split("^")[0]).strip() or None


def parse_xml(data: bytes, what: str, code: str) -> Element:
    """Parse with defusedxml, refusing DTDs and entities; XdmError(code) otherwise."""
    try:
        return _safe_fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise XdmError(code, f"{what} contient une DTD ou des entités : refusé par sécurité.") from None
    except (ParseError, ValueError, LookupError, UnicodeError):
        raise XdmError(code, f"{what} n'est pas un XML valide.") from None


def cda_info(data: bytes) -> tuple[str | None, list[tuple[str, str]]] | None:
    """(code, [(INS, OID)…]) when the document is a CDA, else None.

    Read as a stream up to its body (`component`, the root's last child by the schema): the code and the patient are
    in the header; the body, as big as a document may be (50 MB of elements: seconds and a gigabyte as a tree), is
    the room's to read, not the bridge's. A header past CDA_HEADER_ELEMENTS is refused (`cda_header_too_big`)."""
    head = data.lstrip()[:2048]
    if not head.startswith(b"<") or b"ClinicalDocument" not in data[:65536]:
        return None
    what = "Le document CDA de l'archive IHE_XDM"
    code: str | None = None
    code_seen, too_big, ids, depth, elements = False, False, [], 0, 0
    try:
        for event, element in _safe_iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth, elements = depth + 1, elements + 1
                if depth == 1 and element.tag != f"{CDA_NS}ClinicalDocument":
                    return None
                if depth == 2 and element.tag == f"{CDA_NS}component":
                    break
                if elements > CDA_HEADER_ELEMENTS:
                    too_big = True
                    break
                continue
            depth -= 1
            if depth != 1:
                continue
            if element.tag == f"{CDA_NS}code" and not code_seen:
                code_seen, code = True, element.get("code") or None
            elif element.tag == f"{CDA_NS}recordTarget":
                ids += [(i.get("extension", "").strip(), i.get("root", ""))
                        for i in element.iterfind(f"{CDA_NS}patientRole/{CDA_NS}id")
                        if i.get("root") in INS_OIDS and i.get("extension", "").strip()]
    except DefusedXmlException:
        raise XdmError("bad_document", f"{what} contient une DTD ou des entités : refusé par sécurité.") from None
    except (ParseError, ValueError, LookupError, UnicodeError):
        raise XdmError("bad_document", f"{what} n'est pas un XML valide.") from None
    if too_big:
        raise XdmError("cda_header_too_big", f"L'en-tête du document CDA de l'archive IHE_XDM compte plus de "
                                             f"{count_fr(CDA_HEADER_ELEMENTS)} éléments : refusé par sécurité.")
    return code, ids
