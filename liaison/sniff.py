"""What a file really is, from its first bytes, never from its name; and whether its label tells the truth.

`sniff(data)` looks at magic numbers only (a PDF named `.exe` is a PDF, an EXE named `.pdf` is an EXE).
`declared_matches(mime, filename, sniffed)` says whether what the sender declared (a MIME type, a file
name's extension) agrees with the content. Pure functions over bytes; no I/O, no XML parser.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

KINDS = ("pdf", "image", "cda", "xml", "text", "zip", "executable", "office", "unknown")
HEAD = 64 * 1024   # how much of a file the XML / text checks look at


@dataclass(frozen=True)
class Sniffed:
    mime: str
    kind: str   # one of KINDS


_UNKNOWN = Sniffed("application/octet-stream", "unknown")

# (prefix at offset 0, mime, kind); executables first.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"MZ", "application/vnd.microsoft.portable-executable", "executable"),
    (b"\x7fELF", "application/x-elf", "executable"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary", "executable"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary", "executable"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary", "executable"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary", "executable"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary", "executable"),   # Mach-O universal (or Java class)
    (b"#!", "text/x-shellscript", "executable"),
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "image"),
    (b"\xff\xd8\xff", "image/jpeg", "image"),
    (b"GIF87a", "image/gif", "image"),
    (b"GIF89a", "image/gif", "image"),
    (b"II*\x00", "image/tiff", "image"),
    (b"MM\x00*", "image/tiff", "image"),
    (b"PK\x03\x04", "application/zip", "zip"),
    (b"PK\x05\x06", "application/zip", "zip"),   # empty archive
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage", "office"),   # .doc, .xls, .ppt, .msg
)
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
                b"hevc": "image/heic-sequence", b"hevx": "image/heic-sequence",
                b"mif1": "image/heif", b"msf1": "image/heif-sequence", b"avif": "image/avif"}
_OOXML = ((b"word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
          (b"xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
          (b"ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"))
_ODF = re.compile(rb"mimetypeapplication/vnd\.oasis\.opendocument\.[a-z.-]+")

# The root element of an XML head: skip the declaration, comments, processing instructions and a DOCTYPE.
_ROOT = re.compile(r"\A\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*"
                   r"<(?:(?P<prefix>[A-Za-z_][\w.-]*):)?(?P<name>[A-Za-z_][\w.-]*)(?P<attrs>[^>]*)>", re.S)
_HTML = re.compile(r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.S | re.I)
_HL7 = "urn:hl7-org:v3"


def sniff(data: bytes) -> Sniffed:
    """The MIME type and kind of `data`, from its content only."""
    if not data:
        return Sniffed("application/x-empty", "unknown")
    for prefix, mime, kind in _MAGIC:
        if data.startswith(prefix):
            return _zip(data) if kind == "zip" else Sniffed(mime, kind)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("image/webp", "image")
    if data[4:8] == b"ftyp":
        heif = _heif(data)
        if heif:
            return heif
    head = _decode_head(data[:HEAD])
    if head is None:
        return _UNKNOWN
    markup = _markup(head)
    if markup:
        return markup
    return Sniffed("text/plain", "text") if _is_text(head) else _UNKNOWN


def _zip(data: bytes) -> Sniffed:
    head = data[:HEAD]
    odf = _ODF.search(head[:200])
    if odf:
        return Sniffed(odf.group()[len(b"mimetype"):].decode("ascii"), "office")
    if b"[Content_Types].xml" in head:
        for marker, mime in _OOXML:
            if marker in head:
                return Sniffed(mime, "office")
    return Sniffed("application/zip", "zip")


def _heif(data: bytes) -> Sniffed | None:
    size = int.from_bytes(data[:4], "big")
    box = data[8:min(max(size, 16), 256)]
    brands = [box[i:i + 4] for i in range(0, len(box) - 3, 4)]   # major brand, minor version, compatible brands
    for brand in [brands[0], *brands[2:]] if brands else []:
        if brand in _HEIF_BRANDS:
            return Sniffed(_HEIF_BRANDS[brand], "image")
    return None


def _decode_head(head: bytes) -> str | None:
    """The head as text (UTF-8, or UTF-16 with a BOM); None when it is not text in those encodings."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return codecs.getincrementaldecoder("utf-16")().decode(head, final=False)
        except UnicodeDecodeError:
            return None
    if b"\x00" in head:
        return None
    try:   # final=False: a multi-byte character cut at the end of the head is not an error
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        return None


def _markup(head: str) -> Sniffed | None:
    if not head.lstrip().startswith("<"):
        return None
    if _HTML.match(head):
        return Sniffed("text/html", "unknown")   # may carry scripts: not a document here
    root = _ROOT.match(head)
    if root is None:
        return None
    prefix, name, attrs = root.group("prefix"), root.group("name"), root.group("attrs")
    if name == "ClinicalDocument":
        xmlns = re.compile(r"\bxmlns" + (f":{re.escape(prefix)}" if prefix else "") + r"""\s*=\s*["']([^"']*)["']""")
        declared = xmlns.search(attrs)
        if declared and declared.group(1) == _HL7:
            return Sniffed("text/xml", "cda")
    if name == "svg":
        return Sniffed("image/svg+xml", "xml")   # an SVG may carry scripts: XML, never an image
    if name.lower() == "html":
        return Sniffed("text/html", "unknown")
    return Sniffed("text/xml", "xml")


def _is_text(head: str) -> bool:
    controls = sum(1 for c in head if (c < " " and c not in "\t\n\r\f\x1b") or c == "\x7f")
    return controls * 100 <= len(head)


# --- what the sender declared ---------------------------------------------------------------------------

_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/binary", "application/unknown",
            "application/x-download", "application/force-download", "application/download"}
_MIME_KINDS = {
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    "text/xml": "xml", "application/xml": "xml", "application/hl7-v3+xml": "xml", "application/hl7-cda+xml": "xml",
    "image/svg+xml": "xml",
    "text/plain": "text", "text/csv": "text", "text/markdown": "text",
    "application/zip": "zip", "application/x-zip-compressed": "zip", "application/x-zip": "zip",
    "application/msword": "office", "application/vnd.ms-excel": "office", "application/vnd.ms-powerpoint": "office",
    "application/vnd.ms-outlook": "office", "application/rtf": "office",
    "application/x-msdownload": "executable", "application/x-msdos-program": "executable",
    "application/x-executable": "executable", "application/x-elf": "executable",
    "application/x-mach-binary": "executable", "application/x-sh": "executable", "text/x-shellscript": "executable",
    "application/vnd.microsoft.portable-executable": "executable", "application/java-archive": "executable",
    "application/x-msi": "executable", "application/hta": "executable", "application/javascript": "executable",
    "text/javascript": "executable", "application/x-bat": "executable", "text/vbscript": "executable",
}
_MIME_PREFIX_KINDS = (("image/", "image"), ("application/vnd.openxmlformats-officedocument.", "office"),
                      ("application/vnd.oasis.opendocument.", "office"))
_EXT_KINDS = {
    "pdf": "pdf",
    **dict.fromkeys(("png", "jpg", "jpeg", "jpe", "jfif", "gif", "webp", "tif", "tiff", "heic", "heif", "avif"),
                    "image"),
    **dict.fromkeys(("xml", "cda", "svg"), "xml"),
    **dict.fromkeys(("txt", "text", "csv", "md", "log"), "text"),
    "zip": "zip",
    **dict.fromkeys(("doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "msg"), "office"),
    # Names Windows or macOS would run: whatever they contain, the name itself is a lie for a document.
    **dict.fromkeys(("exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "bat", "cmd", "ps1", "psm1", "vbs",
                     "vbe", "js", "jse", "wsf", "wsh", "hta", "jar", "lnk", "reg", "sh", "bash", "app", "elf",
                     "bin", "run", "apk", "dmg", "pkg"), "executable"),
}
# Sniffed kinds a declared kind accepts beyond itself: a CDA is XML; XML is often sent as text/plain;
# an Office file we could not tell from a plain archive is still an Office file.
_ALSO = {"xml": {"cda"}, "text": {"xml", "cda"}, "office": {"zip"}}


# The file name extension a MIME type is usually saved with (to name a file that came without one).
EXTENSIONS = {
    "application/pdf": "pdf", "text/xml": "xml", "application/xml": "xml", "application/hl7-v3+xml": "xml",
    "text/plain": "txt", "text/html": "html", "text/calendar": "ics", "application/zip": "zip",
    "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/tiff": "tif", "image/webp": "webp",
    "image/heic": "heic", "image/heif": "heif", "image/avif": "avif",
}


def extension(mime: str | None) -> str | None:
    """`pdf` for application/pdf…; None for a type without a usual extension."""
    return EXTENSIONS.get((mime or "").split(";")[0].strip().lower())


def declared_kind(declared_mime: str | None, filename: str | None) -> str | None:
    """The kind the declaration announces: the MIME type if specific, else the file name's extension."""
    return _mime_kind(declared_mime) or _ext_kind(filename)


def declared_matches(declared_mime: str | None, filename: str | None, sniffed: Sniffed) -> bool:
    """Whether the declared MIME type and the file name's extension both agree with the content.

    A generic or absent MIME type (application/octet-stream) and an unknown extension have no opinion;
    with no opinion at all, nothing contradicts the content.
    """
    return all(_accepts(kind, sniffed.kind)
               for kind in (_mime_kind(declared_mime), _ext_kind(filename)) if kind is not None)


def _accepts(declared: str, sniffed: str) -> bool:
    return declared == sniffed or sniffed in _ALSO.get(declared, ())


def _mime_kind(mime: str | None) -> str | None:
    base = (mime or "").split(";")[0].strip().lower()
    if base in _GENERIC:
        return None
    if base in _MIME_KINDS:
        return _MIME_KINDS[base]
    for prefix, kind in _MIME_PREFIX_KINDS:
        if base.startswith(prefix):
            return kind
    return None


def _ext_kind(filename: str | None) -> str | None:
    if not filename:
        return None
    name = PureWindowsPath(PurePosixPath(filename.strip().rstrip(". ")).name).name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _EXT_KINDS.get(suffix)
