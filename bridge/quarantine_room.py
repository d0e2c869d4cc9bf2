"""The quarantine room: where the coordination is told, in an encrypted notice, of the mails kept aside and of what
became of them (routed by hand or not, raw text erased by retention), and where it decides."""
from __future__ import annotations

from typing import Protocol

import structlog

from bridge.ports import Poster
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.matrix import MatrixError, notice, txn_id

log = structlog.get_logger(__name__)

PURGED_LISTED = 50   # numbers named in one retention notice; the others are counted


class Settings(Protocol):
    async def setting(self, name: str) -> str | None: ...


async def tell(settings: Settings, matrix: Poster, text: str, txn: str) -> str | None:
    """A notice in the quarantine room; its event id, or None when there is no such room yet or the homeserver
    refused (logged: the mail's state in the database says the rest). `txn`: the same notice is never posted twice."""
    room = await settings.setting(QUARANTINE_ROOM)
    if not room:
        log.warning("quarantine.no_room")
        return None
    try:
        return await matrix.send(room, notice(text), txn)
    except MatrixError as err:
        log.warning("quarantine.notice_failed", errcode=err.errcode)
        return None


async def tell_purged(settings: Settings, matrix: Poster, numbers: list[int], keep_days: int) -> str | None:
    """The quarantined mails whose raw text retention just erased (bridge.quarantine_keep_days)."""
    listed = ", ".join(f"n° {n}" for n in numbers[:PURGED_LISTED])
    listed += f" et {len(numbers) - PURGED_LISTED} autres" if len(numbers) > PURGED_LISTED else ""
    text = (f"Conservation : le texte des courriels en quarantaine depuis plus de {keep_days} jours est effacé "
            f"({listed}). Leur fiche (date, expéditeur, raison, décision) reste ; ceux qui attendaient une décision "
            "ne peuvent plus être déposés dans un parcours : demandez à l'expéditeur de les renvoyer si besoin.")
    return await tell(settings, matrix, text, txn_id("mss-purge", *map(str, numbers[:PURGED_LISTED])))
