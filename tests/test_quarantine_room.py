"""The one « tell the quarantine room » (bridge/quarantine_room.py): a notice with a transaction id, posted once,
nowhere when there is no quarantine room yet, and a refusal of the homeserver logged, never raised."""
from __future__ import annotations

from bridge.quarantine_room import tell, tell_purged
from liaison.stores.mail import QUARANTINE_ROOM
from tests.fakes import FakeMatrix


class _Settings:
    def __init__(self, room: str | None) -> None:
        self.values = {QUARANTINE_ROOM: room} if room else {}

    async def setting(self, name: str) -> str | None:
        return self.values.get(name)


async def test_a_notice_goes_to_the_quarantine_room_once_per_transaction():
    matrix = FakeMatrix()
    room = matrix.add_room()
    first = await tell(_Settings(room), matrix, "Courriel n° 3 mis en quarantaine.", "txn-3")
    again = await tell(_Settings(room), matrix, "Courriel n° 3 mis en quarantaine.", "txn-3")
    assert first == again and matrix.bodies(room) == ["Courriel n° 3 mis en quarantaine."]
    assert matrix.sent[0].content["msgtype"] == "m.notice"


async def test_no_quarantine_room_or_a_refusal_posts_nothing_and_raises_nothing():
    matrix = FakeMatrix()
    assert await tell(_Settings(None), matrix, "texte", "txn") is None
    room = matrix.add_room()
    matrix.fail_next("send", "M_FORBIDDEN")
    assert await tell(_Settings(room), matrix, "texte", "txn") is None
    assert matrix.sent == []


async def test_purged_mails_are_listed_up_to_fifty_then_counted():
    matrix = FakeMatrix()
    room = matrix.add_room()
    assert await tell_purged(_Settings(room), matrix, [4, 9], 30)
    assert await tell_purged(_Settings(room), matrix, list(range(1, 61)), 30)
    few, many = matrix.bodies(room)
    assert "plus de 30 jours" in few and "(n° 4, n° 9)" in few
    assert "n° 50 et 10 autres)" in many and "n° 51" not in many
    assert await tell_purged(_Settings(room), matrix, [4, 9], 30) and len(matrix.sent) == 2, "told once"
