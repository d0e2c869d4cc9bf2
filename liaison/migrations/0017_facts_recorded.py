"""The facts written before they were chained (consents, objections, roster, correspondents, usual teams) get their
trace entry, as they are, once: without it an upgraded database would read every one of them as tampered with
(liaison/stores/facts.py). Rows added outside Liaison after this migration get none: they are reported."""
from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.clock import system_now_ms
from liaison.stores.facts import record_unrecorded

log = structlog.get_logger(__name__)


async def upgrade(conn: AsyncConnection) -> None:
    count = await record_unrecorded(conn, system_now_ms())
    log.info("facts.recorded", count=count)
