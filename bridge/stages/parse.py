"""Stage 1: the raw bytes read, in a worker process with a deadline (bridge/parse_pool.py)."""
from __future__ import annotations

from bridge.mail_in import InboundMail, MailRejected
from bridge.parse_pool import MailParser
from bridge.routing import Quarantine
from bridge.stages.outcome import Outcome


async def parse(parser: MailParser, raw: bytes) -> InboundMail | Outcome:
    try:
        return await parser.parse(raw)
    except MailRejected as err:   # unreadable or beyond the limits: nothing of it is trusted, not even its sender
        return Outcome.quarantined(Quarantine(err.code, err.reason))
