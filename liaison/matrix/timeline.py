"""A room's timeline read back (/messages): the whole history for an archive, or the last events for a catch-up."""
from __future__ import annotations

from nio import AsyncClient, MegolmEvent, RoomMessage, RoomMessagesResponse
from nio.api import Api

from liaison.matrix.errors import MatrixError


async def history(client: AsyncClient, room_id: str, max_events: int) -> list[dict]:
    """Messages oldest first, decrypted where the device holds the keys (body None where it does not)."""
    out: list[dict] = []
    token = None
    while len(out) < max_events:
        resp = await client.room_messages(room_id, start=token, limit=500)
        if not isinstance(resp, RoomMessagesResponse):
            raise MatrixError("messages", resp)
        for ev in resp.chunk:
            if isinstance(ev, RoomMessage):
                out.append({"sender": ev.sender, "ts": ev.server_timestamp, "body": getattr(ev, "body", "")})
            elif isinstance(ev, MegolmEvent):
                out.append({"sender": ev.sender, "ts": ev.server_timestamp, "body": None})
        if not resp.chunk or not resp.end or resp.end == token:
            break
        token = resp.end
    return list(reversed(out))


async def recent(client: AsyncClient, room_id: str, since_ms: int, limit: int) -> list[dict]:
    """The raw events sent since `since_ms`, oldest first, at most `limit` (the newest kept), as the homeserver
    pushes them to an appservice: read without nio's parsing, which would decrypt them in place (what is stored
    of an event waiting to be relayed stays encrypted)."""
    out: list[dict] = []
    token = None
    while len(out) < limit:
        method, path = Api.room_messages(client.access_token, room_id, start=token, limit=min(100, limit - len(out)))
        resp = await client.send(method, path)
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
        if resp.status != 200 or not isinstance(body, dict):
            error = body if isinstance(body, dict) else {}
            raise MatrixError("messages", _Refused(str(error.get("errcode") or f"HTTP {resp.status}"),
                                                   str(error.get("error") or "")))
        chunk = [e for e in body.get("chunk") or [] if isinstance(e, dict)]
        for event in chunk:
            if int(event.get("origin_server_ts") or 0) < since_ms:
                return list(reversed(out))
            out.append({**event, "room_id": room_id})
        if not chunk or not body.get("end") or body.get("end") == token:
            break
        token = body["end"]
    return list(reversed(out))


class _Refused:
    """What MatrixError reads of a refusal (nio's ErrorResponse has the same two fields)."""

    def __init__(self, errcode: str, message: str) -> None:
        self.status_code, self.message = errcode, message
