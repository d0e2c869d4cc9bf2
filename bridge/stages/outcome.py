"""How an inbound mail ends: what bridge/stages/acknowledge.py writes."""
from __future__ import annotations

from dataclasses import dataclass

from bridge.routing import Quarantine


@dataclass(frozen=True)
class Outcome:
    state: str                          # posted, quarantined, duplicate, ignored, receipt
    quarantine: Quarantine | None = None
    sender: str = ""                    # who the quarantine names ("" when the mail cannot say who)
    trusted: bool = False
    reason: str | None = None           # the reason recorded with a final state other than quarantined
    pathway_id: str | None = None       # posted: where, and as which event
    event_id: str | None = None
    receipt_to: str | None = None       # posted: the sender owed a read receipt once a member has read it

    @classmethod
    def quarantined(cls, q: Quarantine, sender: str = "", trusted: bool = False) -> "Outcome":
        return cls("quarantined", q, sender, trusted)
