"""The hostile-input catalogue: mails built to cost the bridge, each with the outcome expected of it.

Generated rather than stored (the big ones are megabytes): `catalogue(sender, to, cited)` gives the cases the
end-to-end test (tests/test_hostile_mail.py) and `make bench` (tests/bench/hostile.py) send to the real bridge.
"""
from __future__ import annotations

import base64
import io
import random
import struct
import zipfile
from dataclasses import dataclass
from email.utils import make_msgid

from tests.support.mss import xdm_one

W = b"=?utf-8?q?Dr_Camille?="   # one encoded word


def _head(sender: str, to: str, subject: str, extra: bytes = b"") -> bytes:
    domain = sender.rpartition("@")[2]
    return (f"From: <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {make_msgid(domain=domain)}\r\n"
            "MIME-Version: 1.0\r\n").encode() + extra


def folded_encoded_from(words: int, sender: str = "c.lefebvre@chu-demo.mssante.test",
                        to: str = "liaison@msp-demo.mssante.test") -> bytes:
    """A From of `words` encoded words, one per folded line (15,000: ~240 KB, under the 256 KB header cap)."""
    name = b"\r\n ".join([b"=?utf-8?q?a?="] * words)
    return (b"From: " + name + f" <{sender}>\r\nTo: {to}\r\nSubject: Nom\r\n".encode()
            + f"Message-ID: {make_msgid(domain='chu-demo.mssante.test')}\r\n\r\nBonjour.\r\n".encode())


def empty_parts(parts: int, sender: str = "c.lefebvre@chu-demo.mssante.test",
                to: str = "liaison@msp-demo.mssante.test") -> bytes:
    """A multipart of `parts` empty parts (40,000: ~1.4 MB)."""
    boundary = b"=_limite-0123456789abcdef"
    one = b"--" + boundary + b"\r\n\r\n\r\n"
    return (_head(sender, to, "Parties", b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n')
            + one * parts + b"--" + boundary + b"--\r\n")


def references(ids: int, sender: str = "c.lefebvre@chu-demo.mssante.test",
               to: str = "liaison@msp-demo.mssante.test") -> bytes:
    """A reply whose References holds `ids` Message-IDs (60,000: ~1.9 MB of header)."""
    refs = b"\r\n ".join(b"<%d.fil@chu-demo.mssante.test>" % i for i in range(ids))
    return _head(sender, to, "Re: suivi", b"References: " + refs + b"\r\n\r\n") + b"Suite.\r\n"


def nested(depth: int) -> bytes:
    """A multipart nested `depth` levels deep, one text part at the bottom."""
    raw = b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, depth):
        raw += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
    raw += b"--b%d\r\nContent-Type: text/plain\r\n\r\nx\r\n" % (depth - 1)
    for i in range(depth - 1, -1, -1):
        raw += b"--b%d--\r\n" % i
    return raw


def zip_of_entries(entries: int) -> bytes:
    """A ZIP that is only a central directory of `entries` empty files (300,000: ~15 MB), as zipfile reads it."""
    records = b"".join(struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0)
                       + b"%05x" % i for i in range(entries))
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, min(entries, 0xFFFF), min(entries, 0xFFFF), len(records), 0, 0)
    return records + end


def element_bomb(size: int) -> bytes:
    """An XML document of `size` bytes that is only empty elements: `<a/>`, one in 16 a `<b/>` at random, so that
    deflate compresses it about 40 times, under an IHE_XDM archive's ratio limit (100); 50 MB: 13 million elements."""
    rng = random.Random(7)
    block = b"".join(b"<b/>" if rng.random() < 1 / 16 else b"<a/>" for _ in range(16384))   # beyond deflate's window
    head, tail = b'<?xml version="1.0" encoding="UTF-8"?><r>', b"</r>"
    count = size - len(head) - len(tail)
    elements = (block * (count // len(block) + 1))[:count - count % 4]   # whole elements: 4 bytes each
    return head + elements + b" " * (count % 4) + tail


def metadata_bomb(size: int) -> bytes:
    """An IHE_XDM.ZIP whose IHE_XDM/SUBSET01/METADATA.XML is an element bomb of `size` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", element_bomb(size))
    return out.getvalue()


def cda_bomb(size: int) -> bytes:
    """An IHE_XDM.ZIP whose one document is a CDA (text/xml, `<ClinicalDocument>`) of `size` bytes that is only empty
    elements: written as a PDF, then its METADATA.XML made to say text/xml (the writer reads a CDA's header: it would
    refuse to write this one)."""
    root, end = b'<ClinicalDocument xmlns="urn:hl7-org:v3">', b"</ClinicalDocument>"
    bomb = element_bomb(size - len(root + end) + len(b"<r></r>")).replace(b"<r>", root, 1).replace(b"</r>", end)
    with zipfile.ZipFile(io.BytesIO(xdm_one(bomb))) as archive:
        files = {i.filename: archive.read(i) for i in archive.infolist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            if name.upper().endswith("METADATA.XML"):
                data = data.replace(b'mimeType="application/pdf"', b'mimeType="text/xml"')
            archive.writestr(name, data)
    return out.getvalue()


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def xdm_mail(archive: bytes, sender: str, to: str) -> bytes:
    """A letter carrying `archive` as its IHE_XDM.ZIP."""
    boundary = b"=_xdm-0123456789"
    mixed = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
    return (_head(sender, to, "Lettre de liaison", mixed)
            + b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoici la lettre.\r\n"
            + b"--" + boundary + b"\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=IHE_XDM.ZIP\r\n\r\n" + _b64(archive)
            + b"--" + boundary + b"--\r\n")


def xdm_entries_mail(entries: int, sender: str, to: str) -> bytes:
    return xdm_mail(zip_of_entries(entries), sender, to)


def big_mail(size: int, sender: str, to: str) -> bytes:
    """A mail of about `size` bytes: a text and one large attachment."""
    boundary = b"=_gros-0123456789"
    chunk = _b64(bytes(range(256)) * 3)   # 768 bytes as base64 lines
    body = chunk * (size // len(chunk) + 1)
    return (_head(sender, to, "Imagerie", b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n')
            + b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLes images.\r\n"
            + b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=images.bin\r\n\r\n" + body[:size] + b"\r\n--" + boundary
            + b"--\r\n")


def forged_dsn(cited: str, to: str, sender: str = "mailer-daemon@relais-inconnu.example") -> bytes:
    """A failure report citing one of our outgoing Message-IDs, from a domain that has no say about it."""
    recipient = "c.lefebvre@chu-demo.mssante.test"
    return (f"From: Mail Delivery System <{sender}>\r\nTo: {to}\r\nSubject: Undelivered Mail\r\n"
            f"Message-ID: {make_msgid(domain='relais-inconnu.example')}\r\nAuto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=dsn\r\n\r\n"
            "--dsn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLe patient est décédé, appelez le 08 99 00 00 00."
            "\r\n--dsn\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relais-inconnu.example\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.3.0\r\n"
            "Diagnostic-Code: smtp; 554 Le patient est décédé, appelez le 08 99 00 00 00\r\n\r\n"
            f"--dsn\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{cited}>\r\n\r\n--dsn--\r\n").encode()


NH3_BYPASS = '<img alt="><a href=javascript:alert(1)>clic</a>">'


def nh3_bypass(sender: str, to: str, token: str) -> bytes:
    """An HTML-only letter carrying the known nh3 bypass; `token` marks its text in the room."""
    html = f"<p>Lettre {token}</p>{NH3_BYPASS}<p><a href=\"https://phish.example/x\">https://www.chu-demo.fr</a></p>"
    return (_head(sender, to, f"Lettre HTML {token}", b"Content-Type: text/html; charset=utf-8\r\n\r\n")
            + html.encode() + b"\r\n")


@dataclass(frozen=True)
class Case:
    """One catalogue mail and what is expected of it: `quarantine` with a reason code, `ignored` (a receipt not
    listened to) or `posted` (sanitised, in the room). Sent through the gateway's SMTP by `sender`'s box, or, with
    `envelope` (MAIL FROM, "" for the null sender of a DSN), delivered straight into the mailbox by LMTP as a lax
    operator would (and the only way for a mail over the gateway's own size limit)."""
    name: str
    raw: bytes
    expected: str
    reason: str = ""
    envelope: str | None = None
    sender: str = ""


def catalogue(sender: str, to: str, cited: str, bridge_address: str, token: str, other: str,
              big: int = 60 * 1024 * 1024) -> list[Case]:
    """`sender`: a trusted correspondent writing to `to` (the pathway's sub-address); `cited`: the Message-ID of one
    of our mails to `sender`, which a DSN from `other` (another trusted correspondent's box) has no say about."""
    return [
        Case("From de 15 000 mots encodés", folded_encoded_from(15_000, sender, to), "quarantine",
             "too_many_header_lines", sender=sender),
        Case("40 000 parties MIME vides", empty_parts(40_000, sender, to), "quarantine", "too_many_parts",
             sender=sender),
        Case("courriel de 60 Mo", big_mail(big, sender, to), "quarantine", "too_big", envelope=sender),
        Case("XDM de 300 000 entrées", xdm_entries_mail(300_000, sender, to), "quarantine", "too_many_entries",
             sender=sender),
        Case("METADATA.XML de 50 Mo d'éléments", xdm_mail(metadata_bomb(50 * 1024 * 1024), sender, to), "quarantine",
             "metadata_too_big", sender=sender),
        Case("CDA de 49 Mo d'éléments", xdm_mail(cda_bomb(49 * 1024 * 1024), sender, to), "quarantine",
             "cda_header_too_big", sender=sender),
        Case("accusé de non-remise forgé (mailer-daemon@ d'un autre domaine)", forged_dsn(cited, bridge_address),
             "ignored", "receipt.foreign_sender", envelope=""),
        Case("accusé de non-remise forgé par un autre correspondant", forged_dsn(cited, bridge_address, other),
             "ignored", "receipt.foreign_sender", sender=other),
        Case("contournement de nh3", nh3_bypass(sender, to, token), "posted", sender=sender),
        Case("References de 60 000 identifiants", references(60_000, sender, to), "quarantine", "headers_too_big",
             sender=sender),
    ]
