"""An extract read as a stream: a `.txt`, or each `.txt` member of a `.zip` read from the archive without unpacking
it; its encoding found on its first bytes (UTF-8, else Windows-1252); its lines cut at MAX_LINE bytes, so that a
line without end never fills the memory.

Every failure is an `Unreadable` with a French sentence that names the file and, for a line, its number only (never
what it holds).
"""
from __future__ import annotations

import codecs
import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 64 * 1024        # bytes: a longer line stops the import (a 2 GB line is never read whole)
SNIFF = 64 * 1024           # bytes read to decide the encoding


class Unreadable(Exception):
    """`.message`: in French, for the operator."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Source:
    """One extract inside a file: its name, its bytes as a stream, the encoding found."""
    name: str
    stream: BinaryIO
    encoding: str = "utf-8"


def sources(path: Path) -> list[str]:
    """The extracts a path holds: itself, or its zip's `.txt` members (names only: each is opened by `opened`)."""
    if not path.is_file():
        raise Unreadable(f"{path} : fichier introuvable")
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise Unreadable(f"{path.name} : archive zip illisible (tronquée ou abîmée)")
        return [path.name]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if i.filename.lower().endswith(".txt") and not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise Unreadable(f"{path.name} : archive zip illisible (tronquée ou abîmée) : {type(err).__name__}") from err
    if not names:
        raise Unreadable(f"{path.name} : l'archive ne contient aucun fichier .txt")
    return names


@contextmanager
def opened(path: Path, member: str) -> Iterator[Source]:
    if not zipfile.is_zipfile(path):
        with path.open("rb") as stream:
            yield Source(path.name, stream)
        return
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            yield Source(member, stream)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise Unreadable(f"{path.name} : archive zip illisible (tronquée ou abîmée) dans {member} : "
                         f"{type(err).__name__}") from err


def lines(source: Source) -> Iterator[tuple[int, str | None]]:
    """(line number, its text without the end of line), the header being line 1; None for a line that does not
    decode in the file's encoding. Unreadable when a line passes MAX_LINE or the file is empty."""
    read = source.stream.readline
    first = read(MAX_LINE + 1)
    if not first.strip():
        raise Unreadable(f"{source.name} : fichier vide (pas même une ligne d'en-tête)")
    head = first + (source.stream.read(SNIFF) if len(first) < SNIFF else b"")
    source.encoding = _encoding(head)
    pieces = head.split(b"\n")   # as readline cuts (a lone \r stays inside its line)
    pending = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    number = 0

    def decoded(raw: bytes) -> str | None:
        try:
            return raw.decode(source.encoding).rstrip("\r\n")
        except UnicodeDecodeError:
            return None

    for index, raw in enumerate(pending):
        last = index == len(pending) - 1
        if last and not raw.endswith(b"\n"):   # the sniffed block cut a line: complete it
            raw += read(MAX_LINE + 1)
        number += 1
        _check(source, raw, number)
        text_ = decoded(raw)
        yield number, text_.lstrip("\ufeff") if number == 1 and text_ is not None else text_
    while raw := read(MAX_LINE + 1):
        number += 1
        _check(source, raw, number)
        yield number, decoded(raw)


def _check(source: Source, raw: bytes, number: int) -> None:
    if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
        raise Unreadable(f"{source.name} : la ligne {number} dépasse {MAX_LINE // 1024} Kio : ce n'est pas une "
                         "extraction de l'Annuaire Santé (ou elle est abîmée)")


def _encoding(head: bytes) -> str:
    """UTF-8 when the first bytes decode as UTF-8 (a character cut at the end of the block is not an error), else
    Windows-1252 (the ANS's older extracts)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def sha256_of(path: Path) -> str:
    """The file's sha256, read by blocks (a file already imported is known by it)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
