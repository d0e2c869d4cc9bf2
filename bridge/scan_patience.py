"""How long a mail waits for an antivirus that does not answer (clamd away): it stays in the inbox and is tried
again; past the patience its files are refused (bridge/documents_in.py says so in the room)."""
from __future__ import annotations

import time

import structlog

log = structlog.get_logger(__name__)

SCAN_PATIENCE_SECONDS = 600   # then the mail's files are refused
_WAITS_KEPT = 1000            # mails whose wait is remembered (the oldest are forgotten first)


class ScanPatience:
    """Since when each mail waits for an antivirus that does not answer (in memory: a restart waits anew)."""

    def __init__(self, seconds: float = SCAN_PATIENCE_SECONDS, kept: int = _WAITS_KEPT) -> None:
        self.seconds, self.kept = seconds, kept
        self.since: dict[str, float] = {}   # mail id -> since when (the oldest forgotten first)

    def may_wait(self, mail_id: str) -> bool:
        """The mail found the antivirus away: True while it may still wait for it."""
        first = self.since.setdefault(mail_id, time.monotonic())
        while len(self.since) > self.kept:
            self.since.pop(next(iter(self.since)))
        if time.monotonic() - first < self.seconds:
            return True
        log.warning("mail.in_antivirus_gave_up", mail_id=mail_id, waited_s=round(time.monotonic() - first))
        return False

    def done(self, mail_id: str) -> None:
        self.since.pop(mail_id, None)
