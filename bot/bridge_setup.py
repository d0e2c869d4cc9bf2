"""When the MSSanté bridge is configured: its quarantine room exists, and it is in every open pathway room."""
from __future__ import annotations

from typing import Protocol

import structlog

from bot.ports import MailPort, MatrixRooms, RosterPort
from bot.room_specs import BOT_ONLY, power_levels, room_initial_state
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


async def check_quarantine_members(services: BridgeSetupPorts) -> tuple[int, int]:
    """The quarantine room holds the coordination and the bridge, as the roster says now: a new coordinator is
    invited, anyone else is removed (an ex-coordinator, someone a member invited before the bot alone could). The
    numbers invited and removed."""
    s, mail = services.settings, services.mail
    room = await mail.setting(QUARANTINE_ROOM) if mail else None
    if not room or s.bridge_user_id is None:
        return 0, 0
    coordinators = {m.user_id for m in await services.roster.members() if m.coordinator}
    present = await services.matrix.members(room)
    invited = removed = 0
    for user_id in sorted(coordinators - present):
        await services.matrix.invite(room, user_id)
        invited += 1
    for user_id in sorted(present - coordinators - {s.bot_user_id, s.bridge_user_id}):
        await services.matrix.kick(room, user_id, "Salon réservé à la coordination de la structure")
        removed += 1
    if invited or removed:
        log.info("bridge.quarantine_members", invited=invited, removed=removed)
    return invited, removed


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
                initial_state=room_initial_state(),
                power_levels=power_levels(s.bot_user_id, coordinators, invite=BOT_ONLY),
                invite=[*coordinators, bridge])
            await mail.set_setting(QUARANTINE_ROOM, room)
            log.info("bridge.quarantine_room", room_id=room, coordinators=len(coordinators))
        else:
            await check_quarantine_members(services)
        invited = 0
        for room_id in await services.pathways.open_rooms():
            member = await services.matrix.state_event(room_id, "m.room.member", bridge)
            if not member or member.get("membership") not in ("join", "invite"):
                await services.matrix.invite(room_id, bridge)
                invited += 1
        log.info("bridge.rooms_checked", invited=invited)
    except MatrixError as err:
        log.warning("bridge.setup_failed", error=str(err)[:200])
