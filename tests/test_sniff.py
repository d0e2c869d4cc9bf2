"""liaison.sniff: what a file really is, from its bytes; and whether its declared type tells the truth."""
from __future__ import annotations

import codecs

import pytest

from liaison.sniff import HEAD, Sniffed, declared_kind, declared_matches, sniff

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(13)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(20)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(48) + b"PE\x00\x00"
CDA = (b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="cda.xsl"?>\n'
       b'<!-- CR de sortie -->\n<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/'
       b'XMLSchema-instance">\n  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>\n'
       b"</ClinicalDocument>\n")


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + bytes(32)


@pytest.mark.parametrize("data, mime, kind", [
    (PDF, "application/pdf", "pdf"),
    (PNG, "image/png", "image"),
    (JPEG, "image/jpeg", "image"),
    (b"GIF89a\x01\x00\x01\x00" + bytes(10), "image/gif", "image"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif", "image"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20), "image/webp", "image"),
    (b"II*\x00\x08\x00\x00\x00" + bytes(8), "image/tiff", "image"),
    (b"MM\x00*\x00\x00\x00\x08" + bytes(8), "image/tiff", "image"),
    (ftyp(b"heic", b"mif1", b"heic"), "image/heic", "image"),
    (ftyp(b"mif1", b"heic"), "image/heif", "image"),
    (ftyp(b"avif", b"mif1"), "image/avif", "image"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"IHE_XDM/SUBSET01/DOC0001.PDF" + bytes(20), "application/zip", "zip"),
    (b"PK\x05\x06" + bytes(18), "application/zip", "zip"),
    (b"PK\x03\x04\x14\x00" + bytes(24) + b"[Content_Types].xml" + bytes(40) + b"word/document.xml",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "office"),
    (b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/vnd.oasis.opendocument.text" + bytes(10),
     "application/vnd.oasis.opendocument.text", "office"),
    (EXE, "application/vnd.microsoft.portable-executable", "executable"),
    (b"\x7fELF\x02\x01\x01" + bytes(20), "application/x-elf", "executable"),
    (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(20), "application/x-mach-binary", "executable"),
    (b"\xfe\xed\xfa\xce" + bytes(20), "application/x-mach-binary", "executable"),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + bytes(20), "application/x-mach-binary", "executable"),
    (b"#!/bin/sh\nrm -rf ~\n", "text/x-shellscript", "executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(40), "application/x-ole-storage", "office"),
    (CDA, "text/xml", "cda"),
    (b'<?xml version="1.0"?><note><to>Dr X</to></note>', "text/xml", "xml"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml", "xml"),
    (b"<!DOCTYPE html><html><body>x</body></html>", "text/html", "unknown"),
    (b"<html><script>x</script></html>", "text/html", "unknown"),
    ("Bonjour, voici le bilan de Mme D. : HbA1c 7,2 %.\n".encode(), "text/plain", "text"),
    (b"", "application/x-empty", "unknown"),
    (bytes(range(256)) * 4, "application/octet-stream", "unknown"),
])
def test_each_magic(data, mime, kind):
    assert sniff(data) == Sniffed(mime, kind)


def test_an_exe_renamed_pdf_is_still_an_exe():
    found = sniff(EXE)
    assert found.kind == "executable"
    assert declared_matches("application/pdf", "lettre.pdf", found) is False
    assert declared_matches(None, "lettre.pdf", found) is False
    assert declared_matches("application/pdf", None, found) is False
    assert declared_kind("application/octet-stream", "lettre.pdf") == "pdf"


def test_a_pdf_named_exe_is_a_pdf_but_its_name_lies():
    assert sniff(PDF).kind == "pdf"
    assert declared_matches(None, "lettre.exe", sniff(PDF)) is False


@pytest.mark.parametrize("data, kind", [
    (CDA, "cda"),
    (codecs.BOM_UTF8 + b"\r\n  \t" + CDA, "cda"),                                   # BOM and whitespace first
    (codecs.BOM_UTF16_LE + CDA.decode().encode("utf-16-le"), "cda"),                 # UTF-16 with its BOM
    (b'<hl7:ClinicalDocument xmlns:hl7="urn:hl7-org:v3"><hl7:id/></hl7:ClinicalDocument>', "cda"),
    (b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "cda"),
    (b'<!DOCTYPE ClinicalDocument>\n<ClinicalDocument xmlns="urn:hl7-org:v3"/>', "cda"),
    (b'<ClinicalDocument xmlns="urn:other"/>', "xml"),                               # wrong namespace
    (b"<ClinicalDocument/>", "xml"),                                                  # no namespace
    (b'<hl7:ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:hl7="urn:x"/>', "xml"),    # prefix bound elsewhere
    (b'<?xml version="1.0"?>\n<Document xmlns="urn:hl7-org:v3"><ClinicalDocument/></Document>', "xml"),  # not root
    (b'<submitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"/>', "xml"),   # METADATA.XML
])
def test_cda_is_told_from_plain_xml(data, kind):
    assert sniff(data).kind == kind


def test_a_big_cda_is_judged_on_its_head():
    body = CDA.replace(b"</ClinicalDocument>", b"<text>" + b"x" * (2 * HEAD) + b"</text></ClinicalDocument>")
    assert sniff(body).kind == "cda"


@pytest.mark.parametrize("data, kind", [
    ("Compte rendu\r\n\tTA 13/8, pouls 72.\n".encode(), "text"),
    (("x" + "é" * (HEAD // 2)).encode(), "text"),       # a 2-byte character cut at the end of the head
    (codecs.BOM_UTF8 + "Lettre de liaison".encode(), "text"),
    ("Courrier".encode("utf-16"), "text"),
    (b"text with a NUL\x00 inside", "unknown"),
    ("Lettre à Mme Dupré".encode("latin-1"), "unknown"),   # not UTF-8
    (b"abc\x01\x02\x03\x04\x05def" * 10, "unknown"),      # too many control characters
    (b"a stray control character \x01 in plenty of text" + b", plenty of text" * 20, "text"),
])
def test_text_vs_binary(data, kind):
    assert sniff(data).kind == kind


@pytest.mark.parametrize("mime, filename, data, ok", [
    ("application/pdf", "lettre.pdf", PDF, True),
    ("application/pdf", None, PDF, True),
    (None, "lettre.pdf", PDF, True),
    (None, "LETTRE.PDF", PDF, True),
    ("application/octet-stream", "lettre.pdf", PDF, True),
    ("application/octet-stream", None, PDF, True),
    (None, None, PDF, True),
    ("application/PDF; name=x.pdf", "x", PDF, True),
    ("application/pdf", "lettre.pdf", EXE, False),
    ("application/octet-stream", "lettre.pdf", EXE, False),
    (None, "lettre.pdf", EXE, False),
    ("application/pdf", None, EXE, False),
    ("application/octet-stream", "lettre.pdf.", EXE, False),            # Windows drops the trailing dot
    ("application/octet-stream", "C:\\Users\\x\\lettre.pdf", EXE, False),
    ("application/octet-stream", None, EXE, True),     # nothing claimed: the kind rule refuses it instead
    ("application/x-msdownload", "setup.exe", EXE, True),
    ("image/png", "photo.png", JPEG, True),            # same kind: an image
    ("image/png", "photo.jpg", JPEG, True),
    ("image/jpeg", None, PNG, True),
    ("image/png", "photo.png", PDF, False),
    ("application/pdf", "scan.pdf", JPEG, False),
    ("text/xml", "cr.xml", CDA, True),                 # a CDA is XML
    ("text/plain", None, CDA, True),
    ("application/xml", "cr.txt", CDA, True),
    ("text/plain", "note.txt", b"Bonjour", True),
    ("text/plain", "note.txt", EXE, False),
    ("application/pdf", "note.txt", b"Bonjour", False),
    (None, "consignes.bat", b"del C:\\*.*", False),    # a name Windows runs, whatever the content
    (None, "lettre.pdf.exe", PDF, False),
    (None, "IHE_XDM.ZIP", b"PK\x03\x04" + bytes(30), True),
    ("application/zip", None, b"PK\x03\x04" + bytes(30), True),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "cr.docx",
     b"PK\x03\x04" + bytes(30), True),
    (None, "document", PDF, True),                     # no extension: no opinion
    (None, "document.dat", PDF, True),                 # unknown extension: no opinion
    ("application/x-unknown-thing", None, PDF, True),  # unknown MIME type: no opinion
])
def test_declared_matches(mime, filename, data, ok):
    assert declared_matches(mime, filename, sniff(data)) is ok
