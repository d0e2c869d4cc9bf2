"""Minimal matrix-nio echo bot: the floor a Matrix bot's round trip is measured against.

Plain idiomatic nio: E2EE through vodozemac, one initial sync whose history is skipped,
then `sync_forever` with callbacks. Joins on invite; answers every m.text message not
its own with a rich reply (`m.in_reply_to`, plain body and HTML formatted_body), so
two echoing bots in one room answer each other forever: give each peer its own room.

    python tests/bench/echo_bot.py --homeserver URL --user @echo:server --password PW --store DIR
"""
from __future__ import annotations

import argparse
import asyncio
import html
import os

from nio import (AsyncClient, AsyncClientConfig, InviteMemberEvent, LoginResponse,
                 MatrixRoom, RoomMessageText)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--homeserver", "--user", "--password", "--store"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    os.makedirs(args.store, exist_ok=True)

    client = AsyncClient(args.homeserver, args.user, store_path=args.store,
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True))
    login = await client.login(args.password, device_name="bench-echo")
    if not isinstance(login, LoginResponse):
        raise SystemExit(f"login failed: {login}")

    async def on_invite(room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == client.user_id and event.membership == "invite":
            await client.join(room.room_id)

    async def on_text(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == client.user_id:
            return
        content = {
            "msgtype": "m.text",
            "body": f"echo: {event.body}",
            "format": "org.matrix.custom.html",
            "formatted_body": f"<p>echo: {html.escape(event.body)}</p>",
            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
        }
        await client.room_send(room.room_id, "m.room.message", content,
                               ignore_unverified_devices=True)

    await client.sync(timeout=0, full_state=True)  # the history, not answered
    client.add_event_callback(on_invite, InviteMemberEvent)
    client.add_event_callback(on_text, RoomMessageText)
    try:
        await client.sync_forever(timeout=30_000)
    finally:
        await client.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
