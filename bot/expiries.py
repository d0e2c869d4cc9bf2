"""A consent's end date, applied when it comes: the patient's rooms evaluated again, and whoever that consent alone
let in is removed (the room told the rule), as a withdrawal does at once.

A job of the bot's lifecycle, on the bot's clock: each pass applies every expiry whose date has come and was not
applied yet, then marks it applied, so it fires once, and also at the first pass after a restart past its time.
"""
from __future__ import annotations

from typing import Protocol

import structlog

from bot.enforce import EnforcePorts
from bot.facts_changed import patient_changed
from liaison.clock import Clock
from liaison.stores.consents import ConsentStore

log = structlog.get_logger(__name__)

WHY = "Consentement arrivé à échéance"


class ExpiryPorts(EnforcePorts, Protocol):
    @property
    def consents(self) -> ConsentStore: ...
    @property
    def clock(self) -> Clock: ...


class ConsentExpiries:
    def __init__(self, services: ExpiryPorts) -> None:
        self.s = services

    async def run_once(self) -> int:
        """Apply the expiries that have come; the number of consents applied."""
        due = await self.s.consents.expired_unapplied(self.s.clock.now_ms())
        applied = 0
        for patient_id, consent_ids in due.items():
            pathways = await self.s.pathways.of_patient(patient_id)
            removed = await patient_changed(self.s, pathways[0], self.s.settings.bot_user_id, WHY) if pathways else []
            await self.s.consents.mark_expiry_applied(consent_ids)
            applied += len(consent_ids)
            log.info("consent.expiry_applied", patient_id=patient_id, consents=len(consent_ids), removed=len(removed))
        return applied
