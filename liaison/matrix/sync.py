"""A sync response read into a SyncBatch: invitations, messages, files, memberships, read receipts; and the
encrypted events still waiting for their room key, tried again at each sync (keys often come a sync later)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from nio import (Event, InviteMemberEvent, MegolmEvent, ReactionEvent, RoomMemberEvent, RoomMessage, RoomMessageText,
                 SyncResponse)
from nio.exceptions import EncryptionError

from liaison.matrix.events import (Invite, Membership, Reaction, ReadReceipt, SyncBatch, TextMessage, file_message,
                                   thread_root)

# Presence and typing are of no use to a bot: do not ask for them.
SYNC_FILTER = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": 100}, "ephemeral": {"types": []}},
}
# An account that reads room events elsewhere (the bridge: its appservice gets them pushed) syncs
# only for what sync alone brings: invitations, room keys (to-device), memberships, read receipts.
MEMBERSHIP_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {"timeline": {"types": ["m.room.member"], "limit": 50}, "ephemeral": {"types": ["m.receipt"]},
             "account_data": {"types": []}},
}
WAITING_MAX = 500


class Waiting:
    """Encrypted events whose room key has not come yet (the oldest dropped past WAITING_MAX)."""

    def __init__(self) -> None:
        self._events: OrderedDict[str, tuple[str, MegolmEvent]] = OrderedDict()

    def add(self, room_id: str, event: MegolmEvent) -> None:
        self._events[event.event_id] = (room_id, event)
        while len(self._events) > WAITING_MAX:
            self._events.popitem(last=False)

    def as_sources(self) -> dict[str, tuple[str, dict]]:
        return {event_id: (room_id, event.source) for event_id, (room_id, event) in self._events.items()}

    def restore(self, events: list[tuple[str, dict]]) -> None:
        for room_id, source in events:
            event = Event.parse_event(source)
            if isinstance(event, MegolmEvent):
                event.room_id = room_id
                self._events[event.event_id] = (room_id, event)

    def opened(self, decrypt: Callable) -> list[tuple[str, object]]:
        """Those whose key has come since, decrypted (and no longer waiting)."""
        out = []
        for event_id, (room_id, event) in list(self._events.items()):
            try:
                decrypted = decrypt(event)
            except EncryptionError:
                continue
            del self._events[event_id]
            if not isinstance(decrypted, MegolmEvent):
                out.append((room_id, decrypted))
        return out


def read_sync(resp: SyncResponse, own: str, waiting: Waiting, decrypt: Callable) -> SyncBatch:
    batch = SyncBatch(next_batch=resp.next_batch,
                      idle=not (resp.rooms.join or resp.rooms.invite or resp.rooms.leave or resp.to_device_events))
    batch.device_changes = sorted(set(resp.device_list.changed))
    for room_id, info in resp.rooms.invite.items():
        batch.invites.append(Invite(room_id, _inviter(info.invite_state, own)))
    for room_id, info in resp.rooms.join.items():
        if info.timeline.limited:   # a gap: the membership changes it hides come in the state section
            in_timeline = {getattr(e, "event_id", None) for e in info.timeline.events}
            for event in info.state:
                if isinstance(event, RoomMemberEvent) and event.event_id not in in_timeline:
                    _collect(room_id, event, own, batch, waiting)
        for event in info.timeline.events:
            _collect(room_id, event, own, batch, waiting)
        for event in info.ephemeral:
            for r in getattr(event, "receipts", ()):
                if r.receipt_type in ("m.read", "m.read.private"):
                    batch.receipts.append(ReadReceipt(room_id, r.event_id, r.user_id))
    for room_id, event in waiting.opened(decrypt):
        _collect(room_id, event, own, batch, waiting)
    return batch


def _inviter(invite_state, own: str) -> str | None:
    for ev in invite_state:
        if isinstance(ev, InviteMemberEvent) and ev.state_key == own and ev.membership == "invite":
            return ev.sender
    return None


def _collect(room_id: str, event, own: str, batch: SyncBatch, waiting: Waiting) -> None:
    if isinstance(event, MegolmEvent):
        batch.undecryptable += 1
        waiting.add(room_id, event)
        return
    if isinstance(event, RoomMemberEvent):
        batch.memberships.append(Membership(room_id, event.event_id, event.sender, event.state_key,
                                            event.membership, event.prev_membership))
        return
    if isinstance(event, ReactionEvent):
        if event.sender != own:
            batch.reactions.append(Reaction(room_id, event.event_id, event.sender, event.reacts_to, event.key))
        return
    if not isinstance(event, RoomMessage) or event.sender == own:
        return
    content = (event.source or {}).get("content") or {}
    found = file_message(room_id, event.event_id, event.sender, content, int(getattr(event, "server_timestamp", 0) or 0))
    if found:
        batch.files.append(found)
        return
    if not isinstance(event, RoomMessageText):
        return
    relates = content.get("m.relates_to") or {}
    if relates.get("rel_type") == "m.replace":
        return   # an edit: the command was read when first sent
    batch.messages.append(TextMessage(room_id, event.event_id, event.sender, event.body,
                                      encrypted=event.decrypted, thread_root=thread_root(relates)))
