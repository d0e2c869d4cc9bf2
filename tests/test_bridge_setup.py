"""The bot's part of the MSSanté bridge at start: the « Quarantaine MSSanté » room is the coordination's only."""
from __future__ import annotations

from bot.bridge_setup import prepare_bridge
from liaison.stores.mail import QUARANTINE_ROOM
from tests.fakes import BRIDGE, COORD, GP, NURSE, ROSTER, SOCIAL, close_services, make_services


def _quarantine(services) -> dict:
    (made,) = [r for r in services.matrix.created if r["name"] == "Quarantaine MSSanté"]
    return made


async def test_the_quarantine_room_invites_the_coordination_and_the_bridge_only(tmp_path):
    services = await make_services(tmp_path)
    try:
        await prepare_bridge(services)
        made = _quarantine(services)
        assert sorted(made["invite"]) == sorted([COORD, BRIDGE])
        assert made["power_levels"]["invite"] == 100, "nobody but the bot invites into the quarantine room"
        room = services.matrix.room(made["room_id"])
        assert not {GP, NURSE, SOCIAL} & set(room.membership), "no clinician outside the coordination"
        assert await services.mail.setting(QUARANTINE_ROOM) == made["room_id"]

        await prepare_bridge(services)   # the next start: the same room, nobody else invited
        assert len([r for r in services.matrix.created if r["name"] == "Quarantaine MSSanté"]) == 1
        assert {u for r, u in services.matrix.invited if r == made["room_id"]} == {COORD, BRIDGE}
    finally:
        await close_services(services)


async def test_a_nurse_who_coordinates_is_invited_and_one_who_does_not_is_not(tmp_path):
    roster = [*ROSTER, {"user_id": "@ide2:hs", "name": "Inès Roux", "profession": "infirmière",
                        "coordinator": True}]
    services = await make_services(tmp_path, roster=roster)
    try:
        await prepare_bridge(services)
        invited = set(_quarantine(services)["invite"])
        assert invited == {COORD, "@ide2:hs", BRIDGE} and NURSE not in invited
    finally:
        await close_services(services)
