"""J8: the bridge killed (SIGKILL) at random points while relaying mails in and replies out,
and the homeserver restarted in the middle: nothing lost, nothing posted twice."""
from __future__ import annotations

import asyncio
import email
import random
import re
import signal
import time
from email import policy

import pytest
from nio import RoomMessageText

from tests.support.mss import box, imap_for, is_puppet, letter, open_structure, send_mail, smtp_for, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
IN_COUNT = 200
OUT_COUNT = 200


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


async def _send_in(s, cardio, to: str, run: str) -> None:
    smtp = smtp_for(s.mail, cardio)
    try:
        for i in range(IN_COUNT):
            msg = letter(cardio, to, subject=f"crash {run} in-{i:03d}", text=f"Message {i}")
            await smtp.send(bytes(msg), sender=cardio["address"], recipients=[to], notify=False)
            await asyncio.sleep(0.01)
    finally:
        await smtp.close()


async def _send_out(s, root_event: str, run: str) -> None:
    for i in range(OUT_COUNT):
        for _attempt in range(50):   # the homeserver may be restarting
            resp = await s.gp.client.room_send(s.room, "m.room.message", {
                "msgtype": "m.text", "body": f"crash {run} out-{i:03d}",
                "m.relates_to": {"m.in_reply_to": {"event_id": root_event}}}, ignore_unverified_devices=True,
                tx_id=f"crash-{run}-{i}")
            if hasattr(resp, "event_id"):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.02)


def _room_tokens(s, run: str) -> list[str]:
    return [m.group(0) for r, e in s.gp.events if r == s.room and isinstance(e, RoomMessageText)
            and is_puppet(e.sender) for m in [re.search(r"in-\d{3}", e.body)]
            if m and f"crash {run}" in e.body]


async def _mailbox_tokens(s, cardio, run: str) -> tuple[dict[str, set[str]], int]:
    """token -> the Message-IDs it arrived with; and the number of mails carrying a token."""
    imap = imap_for(s.mail, cardio)
    await imap.connect()
    try:
        found: dict[str, set[str]] = {}
        count = 0
        for f in await imap.fetch_all(limit=10_000):
            msg = email.message_from_bytes(f.raw, policy=policy.default)
            part = msg.get_body(("plain",))
            match = re.search(rf"crash {run} (out-\d{{3}})", part.get_content() if part else "")
            if match:
                found.setdefault(match.group(1), set()).add(str(msg["Message-ID"]))
                count += 1
        return found, count
    finally:
        await imap.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("attempt", [1, 2])   # two runs, each with its own random kill points
async def test_kill_the_bridge_while_relaying(structure, synapse, attempt):
    s = structure
    run = f"{random.randrange(10**6):06d}"
    rng = random.Random(run)
    cardio = box(s.mail, CARDIO)
    from tests.support.mss import drain
    await drain(s.mail, cardio)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    await send_mail(s.mail, cardio, letter(cardio, to, subject=f"crash {run} root", text="Début", xdm=xdm_letter()),
                    to)
    root = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                               and f"crash {run} root" in e.body, 30)

    senders = asyncio.gather(_send_in(s, cardio, to, run), _send_out(s, root.event_id, run))
    kills, restarted_synapse = 0, False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        s.bridge.stop(signal.SIGKILL)
        kills += 1
        if kills == 3 and not restarted_synapse:   # the homeserver goes away too, once
            await asyncio.to_thread(synapse.stop)
            await asyncio.to_thread(synapse.start)
            restarted_synapse = True
        await asyncio.to_thread(s.bridge.start)
        if senders.done() and kills >= 5:
            break
    await senders

    # Let everything drain, then count.
    for _ in range(90):
        found, _count = await _mailbox_tokens(s, cardio, run)
        if len(set(_room_tokens(s, run))) == IN_COUNT and len(found) == OUT_COUNT:
            break
        await asyncio.sleep(1)
    tokens = _room_tokens(s, run)
    found, count = await _mailbox_tokens(s, cardio, run)
    assert kills >= 5 and restarted_synapse
    assert len(set(tokens)) == IN_COUNT, f"lost in: {IN_COUNT - len(set(tokens))}"
    assert len(tokens) == IN_COUNT, f"posted twice: {len(tokens) - len(set(tokens))}"
    if len(found) != OUT_COUNT:
        print("bridge events:", [e for e in s.bridge.events("outbound.pass_failed")][:3])
    assert len(found) == OUT_COUNT, f"lost out: {sorted(set(f'out-{i:03d}' for i in range(OUT_COUNT)) - set(found))[:5]}"
    assert all(len(ids) == 1 for ids in found.values()), "each reply leaves under one Message-ID"
    # SMTP gives no way to ask whether the last mail was taken before a SIGKILL: at most the mail in flight at
    # each kill may arrive twice, under the same Message-ID (the recipient's client folds it).
    assert count - OUT_COUNT <= kills, f"{count - OUT_COUNT} re-sent for {kills} kills"
    print(f"crash run {run}: {kills} kills, homeserver restarted, {IN_COUNT} in / {OUT_COUNT} out, "
          f"re-sent under the same Message-ID: {count - OUT_COUNT}")


async def _reply(s, root_event: str, text: str) -> str:
    for _attempt in range(60):   # the homeserver may still be starting
        resp = await s.gp.client.room_send(s.room, "m.room.message", {
            "msgtype": "m.text", "body": text, "m.relates_to": {"m.in_reply_to": {"event_id": root_event}}},
            ignore_unverified_devices=True)
        if hasattr(resp, "event_id"):
            return resp.event_id
        await asyncio.sleep(0.5)
    raise AssertionError("the homeserver did not come back")


def _forget_delivered_pushes(synapse) -> None:
    """As after a stop with every push delivered (make run's Ctrl-C): Synapse then numbers from 1 again. Other
    tests' stopped bridges leave pushes pending in this session's homeserver, which would hide the case."""
    import sqlite3

    with sqlite3.connect(synapse.data_dir / "homeserver.db") as db:
        db.execute("DELETE FROM application_services_txns")


@pytest.mark.timeout(300)
async def test_transaction_ids_reused_after_homeserver_restarts_lose_no_reply(structure, synapse):
    """Synapse (SQLite) numbers its pushes from 1 again after each restart: the bridge keeps the new events."""
    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    run = f"{random.randrange(10**6):06d}"
    await send_mail(s.mail, cardio, letter(cardio, to, subject=f"restart {run}", text="Début", xdm=xdm_letter()),
                    to)
    root = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                               and f"restart {run}" in e.body, 30)

    async def mailed(text: str) -> None:
        await wait_mail(s.mail, cardio, lambda m: text in (m.get_body(("plain",)).get_content()
                                                           if m.get_body(("plain",)) else ""), 30)

    for restart in range(2):
        await asyncio.to_thread(synapse.stop)
        _forget_delivered_pushes(synapse)
        await asyncio.to_thread(synapse.start)
        for i in range(4):   # several pushes after each restart: the second restart's ids were seen after the first
            text = f"restart {run} r{restart} n{i}"
            await _reply(s, root.event_id, text)
            await mailed(text)
    assert s.bridge.events("as.transaction_reused"), "the homeserver reused transaction ids (the case under test)"
