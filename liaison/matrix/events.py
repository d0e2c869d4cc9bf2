"""What the services see of Matrix events: small frozen records, and the pure reading of an event's content
(a file it points to, its thread). Nothing here talks to the homeserver or imports nio."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Session:
    user_id: str
    device_id: str
    access_token: str


@dataclass(frozen=True)
class Invite:
    room_id: str
    inviter: str | None   # None when the invite carries no usable member event


@dataclass(frozen=True)
class TextMessage:
    room_id: str
    event_id: str
    sender: str
    body: str
    encrypted: bool
    thread_root: str | None = None
    reply_to: str | None = None   # what the answer replies to, when not this event (a command read from a reaction)


@dataclass(frozen=True)
class Reaction:
    """An annotation (`m.reaction`) on an event: its key (an emoji) says only what the person did."""
    room_id: str
    event_id: str
    sender: str
    target: str
    key: str


@dataclass(frozen=True)
class FileMessage:
    """A file posted in a room (m.file, m.image, m.video, m.audio), still in the media repository."""
    room_id: str
    event_id: str
    sender: str
    msgtype: str
    filename: str
    file: dict                 # the encrypted file object (url, key, iv, hashes), or {"url": …} when clear
    mimetype: str | None
    size: int | None
    thread_root: str | None
    timestamp: int             # origin_server_ts, milliseconds


FILE_TYPES = frozenset({"m.file", "m.image", "m.video", "m.audio"})


@dataclass(frozen=True)
class Membership:
    room_id: str
    event_id: str
    sender: str
    user_id: str
    membership: str        # invite, join, leave, ban, knock
    prev_membership: str | None


@dataclass(frozen=True)
class ReadReceipt:
    room_id: str
    event_id: str   # read up to this event
    user_id: str


@dataclass
class SyncBatch:
    next_batch: str
    invites: list[Invite] = field(default_factory=list)
    messages: list[TextMessage] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    files: list[FileMessage] = field(default_factory=list)
    device_changes: list[str] = field(default_factory=list)   # users whose devices changed (or newly share a room)
    receipts: list[ReadReceipt] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    undecryptable: int = 0
    idle: bool = False   # nothing happened in any room: the long poll ran out


@dataclass(frozen=True)
class PushedMessage:
    """A room message pushed to the appservice, decrypted: text, notice or file."""
    room_id: str
    event_id: str
    sender: str
    msgtype: str
    body: str
    thread_root: str | None
    reply_to: str | None
    file: dict | None = None      # m.file / m.image: the encrypted file (url, key, iv, hashes) or {"url": …}
    mimetype: str | None = None
    size: int | None = None
    replaces: str | None = None   # an edit (m.replace): the event it corrects; body and msgtype are the new ones


@dataclass(frozen=True)
class Redaction:
    """A message deleted in a room (m.room.redaction): who deleted which event."""
    room_id: str
    event_id: str
    sender: str
    redacts: str


def file_message(room_id: str, event_id: str, sender: str, content: dict, timestamp: int) -> FileMessage | None:
    """The file an m.file/m.image/… event points to; None for anything else or a malformed event."""
    if content.get("msgtype") not in FILE_TYPES:
        return None
    relates = content.get("m.relates_to") or {}
    if relates.get("rel_type") == "m.replace":
        return None
    file, mimetype, size = attachment(content)
    if file is None:
        return None
    name = content.get("filename") or content.get("body") or "document"
    return FileMessage(room_id, event_id, sender, content["msgtype"], str(name)[:255], file, mimetype, size,
                       thread_root(relates), timestamp)


def attachment(content: dict) -> tuple[dict | None, str | None, int | None]:
    """(file object, declared MIME type, declared size) of a message; no file object unless it names an mxc URL.

    The file object is the encrypted one (url, key, iv, hashes) in an encrypted room, {"url": …} in a clear one.
    """
    file = content.get("file") if isinstance(content.get("file"), dict) else None
    if file is None and isinstance(content.get("url"), str):
        file = {"url": content["url"]}
    if not file or not isinstance(file.get("url"), str) or not file["url"].startswith("mxc://"):
        file = None
    info = content.get("info")
    info = info if isinstance(info, dict) else {}
    mimetype = info.get("mimetype") if isinstance(info.get("mimetype"), str) else None
    size = info.get("size") if isinstance(info.get("size"), int) and not isinstance(info.get("size"), bool) else None
    return file, mimetype, size


def thread_root(relates: dict) -> str | None:
    return relates.get("event_id") if relates.get("rel_type") == "m.thread" else None


def pushed_message(event: dict, content: dict) -> PushedMessage | None:
    """A room message pushed to the appservice, from its (decrypted) content; None for a non-message.

    An edit (`m.replace`) is read as its new content (`m.new_content`, not the « * … » fallback) with `replaces`
    naming the edited event; an edit without a usable new content is None."""
    relates = content.get("m.relates_to") or {}
    if not isinstance(relates, dict) or "msgtype" not in content:
        return None
    base = dict(room_id=event["room_id"], event_id=event["event_id"], sender=event["sender"])
    if relates.get("rel_type") == "m.replace":
        new, target = content.get("m.new_content"), relates.get("event_id")
        if not isinstance(new, dict) or "msgtype" not in new or not isinstance(target, str) or not target:
            return None
        return PushedMessage(**base, msgtype=str(new.get("msgtype")), body=str(new.get("body", "")),
                             thread_root=None, reply_to=None, replaces=target)
    file, mimetype, size = attachment(content)
    return PushedMessage(
        **base, msgtype=str(content.get("msgtype")), body=str(content.get("body", "")),
        thread_root=thread_root(relates), reply_to=(relates.get("m.in_reply_to") or {}).get("event_id"),
        file=file, mimetype=mimetype, size=size)


def redaction(event: dict) -> Redaction | None:
    """A pushed m.room.redaction: the event it removes (`redacts` at the top before room version 11, in the
    content from 11 on); None for anything else."""
    if not isinstance(event, dict) or event.get("type") != "m.room.redaction" or "state_key" in event:
        return None
    content = event.get("content")
    target = event.get("redacts") or (content.get("redacts") if isinstance(content, dict) else None)
    room_id, event_id, sender = event.get("room_id"), event.get("event_id"), event.get("sender")
    if not (isinstance(room_id, str) and isinstance(event_id, str) and isinstance(sender, str)
            and isinstance(target, str) and room_id and event_id and sender and target):
        return None
    return Redaction(room_id, event_id, sender, target)
