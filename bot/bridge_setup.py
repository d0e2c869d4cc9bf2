"""When the MSSanté bridge is configured: its quarantine room exists, and it is in every open pathway room."""
from __future__ import annotations

from typing import Protocol

import structlog

from bot.ports import MailPort, MatrixRooms, RosterPort
from bot.room_specs import power_levels, room_initial_state
from bot.services import PathwaySettings
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import PathwayStore
from liaison.matrix import MatrixError

log = structlog.get_logger(__name__)


class BridgeSetupPorts(Protocol):
    """What preparing the bridge's rooms reads and does."""
    @property
    def settings(self) -> PathwaySettings: ...
    @property
    def roster(self) -> RosterPort: ...
    @property
    def mail(self) -> MailPort | None: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def matrix(self) -> MatrixRooms: ...


async def prepare_bridge(services: BridgeSetupPorts) -> None:
    """The quarantine room invites the roster's coordinators and the bridge, no one else: a stranger's mail waits
    there for the coordination's decision, and no clinician who does not coordinate gets it as an invitation."""
    s, bridge, mail = services.settings, services.settings.bridge_user_id, services.mail
    if mail is None or bridge is None:
        return   # no MSSanté bridge configured: no quarantine room, no bridge to invite (the wiring never calls it)
    coordinators = sorted(m.user_id for m in await services.roster.members() if m.coordinator)
    try:
        if not await mail.setting(QUARANTINE_ROOM):
            room = await services.matrix.create_room(
                name="Quarantaine MSSanté", topic="Courriels en attente d'une décision de la coordination",
                initial_state=room_initial_state(), power_levels=power_levels(s.bot_user_id, coordinators),
                invite=[*coordinators, bridge])
            await mail.set_setting(QUARANTINE_ROOM, room)
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
