"""Reading a sync (liaison/matrix/sync.py): a limited sync, whose timeline skipped events, still reports the
membership changes of the gap, which come in its state section (issue 24, item 10)."""
from __future__ import annotations

from nio import SyncResponse

from liaison.matrix.sync import Waiting, read_sync

OWN = "@liaison:hs"


def _member(event_id: str, user_id: str, membership: str, sender: str = "@coord:hs") -> dict:
    return {"type": "m.room.member", "event_id": event_id, "sender": sender, "state_key": user_id,
            "origin_server_ts": 1, "content": {"membership": membership}}


def _sync(limited: bool, state: list[dict], timeline: list[dict]) -> SyncResponse:
    return SyncResponse.from_dict({
        "next_batch": "s2",
        "rooms": {"join": {"!r:hs": {"timeline": {"events": timeline, "limited": limited, "prev_batch": "p"},
                                     "state": {"events": state}, "ephemeral": {"events": []},
                                     "account_data": {"events": []}, "summary": {}}},
                  "invite": {}, "leave": {}},
        "to_device": {"events": []}, "device_lists": {"changed": [], "left": []}, "presence": {"events": []},
        "account_data": {"events": []}, "device_one_time_keys_count": {},
    })


def test_a_limited_sync_reports_the_memberships_of_its_gap():
    gap = _member("$invite", "@dehors:hs", "invite", sender="@medecin:hs")
    seen = _member("$join", "@infirmiere:hs", "join", sender="@infirmiere:hs")
    batch = read_sync(_sync(True, [gap], [seen]), OWN, Waiting(), lambda e: e)
    assert [(m.event_id, m.user_id, m.membership, m.sender) for m in batch.memberships] == [
        ("$invite", "@dehors:hs", "invite", "@medecin:hs"), ("$join", "@infirmiere:hs", "join", "@infirmiere:hs")]


def test_an_event_in_both_the_state_and_the_timeline_is_reported_once():
    both = _member("$both", "@dehors:hs", "invite")
    batch = read_sync(_sync(True, [both], [both]), OWN, Waiting(), lambda e: e)
    assert [m.event_id for m in batch.memberships] == ["$both"]


def test_a_sync_without_a_gap_reads_the_timeline_only():
    old_state = _member("$old", "@dehors:hs", "join")
    batch = read_sync(_sync(False, [old_state], []), OWN, Waiting(), lambda e: e)
    assert batch.memberships == []
