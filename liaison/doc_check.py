"""Look at a file's bytes before it is indexed: hash, real type, antivirus; the policy decides.

The same checks for a file posted in Element (the bot, after downloading and decrypting it) and a
mail attachment (the bridge, before uploading it). Nothing of the file's content or name is logged.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from liaison import clamd
from liaison.sniff import Sniffed, declared_kind, declared_matches, sniff
from policies.decision import Decision
from policies.documents import FileFacts, check_file
from policies.sharing import Knobs


@dataclass(frozen=True)
class Antivirus:
    socket: str = ""            # empty: no antivirus configured
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.socket)


@dataclass(frozen=True)
class Checked:
    decision: Decision
    sniffed: Sniffed
    sha256: str
    size: int
    scan: str                   # clean | infected | not_scanned | error


def _look(data: bytes) -> tuple[Sniffed, str]:
    return sniff(data), hashlib.sha256(data).hexdigest()


async def check(data: bytes, *, filename: str | None, declared_mime: str | None, knobs: Knobs,
                antivirus: Antivirus) -> Checked:
    """The decision on one file. A file too big is not sent to the antivirus; any other is, when one is set."""
    sniffed, digest = await asyncio.to_thread(_look, data) if len(data) > 256 * 1024 else _look(data)
    facts = FileFacts(size=len(data), sniffed_kind=sniffed.kind,
                      declared_ok=declared_matches(declared_mime, filename, sniffed), scan="not_scanned",
                      knobs=knobs, presented_as=declared_kind(declared_mime, filename))
    decision = check_file(facts)
    if antivirus.configured and decision.rule != "document.too_big":
        result = await clamd.scan(antivirus.socket, data, antivirus.timeout)
        facts = FileFacts(**{**facts.__dict__, "scan": result.status, "virus_name": result.signature})
        decision = check_file(facts)
    return Checked(decision, sniffed, digest, len(data), facts.scan)


def too_big(size: int | None, knobs: Knobs) -> bool:
    """What an event announces is enough to refuse before downloading."""
    return size is not None and size > knobs.document_max_mib * 1024 * 1024
