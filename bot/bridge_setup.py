"""When the MSSanté bridge is configured: its quarantine room exists, and it is in every open pathway room."""
from __future__ import annotations

import structlog

from bot.room_specs import power_levels, room_initial_state
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.matrix import MatrixError

log = structlog.get_logger(__name__)


async def prepare_bridge(services) -> None:
    """The quarantine room invites the roster's coordinators and the bridge, no one else: a stranger's mail waits
    there for the coordination's decision, and no clinician who does not coordinate gets it as an invitation."""
    s, bridge = services.settings, services.settings.bridge_user_id
    coordinators = sorted(m.user_id for m in await services.roster.members() if m.coordinator)
    try:
        if not await services.mail.setting(QUARANTINE_ROOM):
            room = await services.matrix.create_room(
                name="Quarantaine MSSanté", topic="Courriels en attente d'une décision de la coordination",
                initial_state=room_initial_state(), power_levels=power_levels(s.bot_user_id, coordinators),
                invite=[*coordinators, bridge])
            await services.mail.set_setting(QUARANTINE_ROOM, room)
            log.info("bridge.quarantine_room", room_id=room, coordinators=len(coordinators))
        invited = 0
        for room_id in await services.pathways.open_rooms():
            member = await services.matrix.state_event(room_id, "m.room.member", bridge)
            if not member or member.get("membership") not in ("join", "invite"):
                await services.matrix.invite(room_id, bridge)
                invited += 1
        log.info("bridge.rooms_checked", invited=invited)
    except MatrixError as err:
        log.warning("bridge.setup_failed", error=str(err)[:200])
