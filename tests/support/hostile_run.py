"""Sending the hostile catalogue (tests/support/hostile.py) to the real bridge, for the test and the bench:
deliver one case, wait for the state the bridge gives it, and /ping the appservice meanwhile."""
from __future__ import annotations

import asyncio
import smtplib
import sqlite3
import time
from pathlib import Path

import aiohttp
import yaml

from nio import RoomMessageText

from tests.support.hostile import Case
from tests.support.mss import box, letter, send_mail, smtp_for, wait_mail, xdm_letter


async def one_of_our_mails(s, cardio: dict, to: str, timeout: float = 30) -> str:
    """A letter from the cardiologist, the GP's answer relayed to her: that answer's Message-ID, for the cases that
    cite one of our own mails (the pathway's code is in it: her box may hold the answers of other runs)."""
    await send_mail(s.mail, cardio, letter(cardio, to, subject="Lettre", text="Lettre de liaison.", xdm=xdm_letter()),
                    to)
    posted = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                 and "Lettre de liaison" in e.body, timeout)
    await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": f"Bien reçu, merci ({s.code}).",
        "m.relates_to": {"m.in_reply_to": {"event_id": posted.event_id}}}, ignore_unverified_devices=True)
    answer = await wait_mail(s.mail, cardio, lambda m: f"Bien reçu, merci ({s.code})" in m.get_body(("plain",))
                             .get_content(), timeout)
    return str(answer["Message-ID"]).strip("<>")


async def deliver(mail: dict, gateway_dir: Path, case: Case, to: str) -> None:
    """Through the sender's box and the gateway's SMTP, or straight into the bridge's mailbox by LMTP."""
    if case.envelope is None:
        sender = box(mail, case.sender)
        smtp = smtp_for(mail, sender)
        try:
            await smtp.send(case.raw, sender=sender["address"], recipients=[to], notify=False)
        finally:
            await smtp.close()
        return

    def lmtp() -> None:
        with smtplib.LMTP(str(gateway_dir / "dovecot" / "run" / "lmtp")) as client:
            client.sendmail(case.envelope, [mail["bridge_address"]], case.raw)
    await asyncio.to_thread(lmtp)


def _final_rows(db_path: str) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(db_path, timeout=10)
    try:
        return db.execute("SELECT id, state, reason FROM mail_in WHERE state != 'received' "
                          "ORDER BY received_at").fetchall()
    finally:
        db.close()


def db_path(database_url: str) -> str:
    return database_url.split("///", 1)[1]


class Outcomes:
    """The bridge's verdicts, read from mail_in as they come (our outgoing mails' own delivery receipts skipped)."""

    def __init__(self, database_url: str) -> None:
        self.path = db_path(database_url)
        db = sqlite3.connect(self.path, timeout=10)
        try:   # every mail already there, finished or not, is no case of ours
            self.seen = {row[0] for row in db.execute("SELECT id FROM mail_in")}
        finally:
            db.close()

    async def next(self, timeout: float) -> tuple[str, str, str | None]:
        """(mail id, state, reason) of the next mail to reach its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail_id, state, reason in await asyncio.to_thread(_final_rows, self.path):
                if mail_id in self.seen:
                    continue
                self.seen.add(mail_id)
                if state != "receipt":
                    return mail_id, state, reason
            await asyncio.sleep(0.1)
        raise TimeoutError(f"aucun courriel traité par le pont en {timeout:.0f} s")

    def half_stored(self) -> list[tuple[str, str]]:
        """Mails without their final state, and quarantine rows whose mail does not say quarantined."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            waiting = db.execute("SELECT id, state FROM mail_in WHERE state = 'received'").fetchall()
            odd = db.execute("SELECT q.mail_in_id, m.state FROM mss_quarantine q JOIN mail_in m ON m.id = q.mail_in_id "
                             "WHERE m.state != 'quarantined' AND q.state = 'waiting'").fetchall()
            return waiting + odd
        finally:
            db.close()

    def quarantined_raw_bytes(self, mail_id: str) -> int:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            row = db.execute("SELECT LENGTH(raw) FROM mss_quarantine WHERE mail_in_id = ?", (mail_id,)).fetchone()
            return row[0] if row and row[0] else 0
        finally:
            db.close()


class PingWatch:
    """POST /_matrix/app/v1/ping to the bridge's appservice every `every` s, as the homeserver would."""

    def __init__(self, synapse, every: float = 0.05) -> None:
        self.url = f"http://127.0.0.1:{synapse.appservice_port}/_matrix/app/v1/ping"
        self.token = yaml.safe_load(Path(synapse.appservice_path).read_text())["hs_token"]
        self.every = every
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "PingWatch":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def mark(self) -> int:
        return len(self.latencies)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                started = time.perf_counter()
                try:
                    async with http.post(self.url, json={"transaction_id": "ping"}, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            self.failures.append(f"HTTP {resp.status}")
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    self.failures.append(type(err).__name__)
                self.latencies.append(time.perf_counter() - started)
                await asyncio.sleep(self.every)
