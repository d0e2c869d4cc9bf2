"""The MSSanté bridge's latencies against the gateway's IDLE floor, same Synapse, same gateway, same run.

    res = await bench_mail(synapse, work, samples=100, pdf_samples=5, sustained_s=0)
    lines = report_lines(res)

One local gateway (Dovecot IMAPS + mutual-TLS SMTP), the real bot and the real bridge processes,
a structure with an open pathway (an encrypted room: the coordinator, the GP, the bridge's puppets):
- IDLE floor: the cardiologist sends a mail straight to the laboratory's mailbox while an `ImapClient`
  on it waits in IDLE; from the SMTP acceptance (DATA's 250) to the IDLE wake-up and the fetch of the mail;
- inbound: the cardiologist sends a short mail to the pathway's sub-address `liaison+<code>@…`; from the
  SMTP acceptance to the GP's nio client decrypting the puppet's message (a few more with a 100 KiB PDF
  in an XDM: to the text, and to the file event);
- outbound: the GP replies in the room to the puppet's message (m.in_reply_to); from the send to the
  mail in the cardiologist's inbox, polled with NOOP + UID SEARCH every 20 ms (IDLE would add ~0.5 s);
- sustained (sustained_s > 0): 20 inbound mails/s for sustained_s seconds over one SMTP connection, then
  the drain: lost and duplicated mails (by a unique token in each subject), the bridge's RSS before/after.
Samples are interleaved (floor, inbound, outbound in each round) so that drift hits each alike; each
round starts after a short pause so that the previous round's delivery receipts (DSNs) are handled.
The bridge's own `mail.in` log (processing ms, from fetch to moved) is summarised per phase.
"""
from __future__ import annotations

import asyncio
import email
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from email import policy
from pathlib import Path

import structlog
import yaml
from nio import MegolmEvent, RoomMessage, RoomMessageText, RoomSendResponse

from liaison.stack.synapse import Synapse
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import percentiles, rss_mib
from tests.support.botproc import BotProcess
from tests.bench.mail_diag import PROFILE_DELAY_S, PROFILE_S, _bridge_batches, _CpuSampler, _py_spy, _synapse_requests
from tests.support.bridgeproc import BridgeProcess
from tests.support.clinician import Clinician
from tests.support.mailgw import GatewayProcess
from tests.support.mss import box, imap_for, is_puppet, letter, open_structure, smtp_for, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LABO = "resultats@labo-demo.mssante.test"
TOKEN = re.compile(r"BENCH-[0-9a-f]{12}")
FLOOR_TOKEN = re.compile(r"FLOOR-[0-9a-f]{12}")
TARGETS = {"inbound_p50_s": 0.65, "inbound_p95_s": 0.8, "outbound_p95_s": 1.0, "correction_p95_s": 2.0,
           "sustained_lost": 0, "sustained_duplicated": 0, "rss_growth_pct": 10.0}
SETTLE_S = 0.8          # pause before each round (> Dovecot's IDLE delay: the last DSN is handled)
SUSTAINED_RATE = 20     # mails per second
POLL_S = 0.02           # outbound: inbox poll period
STALL_S = 30            # sustained: the drain gives up after this long without a new mail in the room
FLOOR_MAX = 800         # posting floor: at most this many messages
FLOOR_CONCURRENCY = 8   # posting floor: room_send calls in flight
FLOOR_SEND_TIMEOUT = 120.0


def _token() -> str:
    return f"BENCH-{secrets.token_hex(6)}"


class _Arrivals:
    """On the GP's client: each puppet text by token (arrival stamps, event ids), files by thread root."""

    def __init__(self, gp: Clinician, room: str) -> None:
        self.room = room
        self.texts: dict[str, list[tuple[float, str]]] = {}
        self.files: dict[str, float] = {}
        self.undecryptable = 0
        self._changed = asyncio.Event()
        gp.client.add_event_callback(self._on_event, (RoomMessage, MegolmEvent))

    async def _on_event(self, room, event) -> None:
        now = time.perf_counter()
        if room.room_id != self.room or not is_puppet(event.sender):
            return
        if isinstance(event, MegolmEvent):
            self.undecryptable += 1
            return
        content = event.source.get("content", {})
        if content.get("msgtype") == "m.text":
            match = TOKEN.search(content.get("body", ""))
            if match:
                seen = self.texts.setdefault(match.group(0), [])
                if event.event_id not in (e for _, e in seen):
                    seen.append((now, event.event_id))
        elif content.get("msgtype") == "m.file":
            root = (content.get("m.relates_to") or {}).get("event_id")
            if root:
                self.files.setdefault(root, now)
        self._changed.set()

    async def text(self, token: str, timeout: float) -> tuple[float, str]:
        """(arrival stamp, event id) of the first puppet text carrying `token`."""
        deadline = time.monotonic() + timeout
        while token not in self.texts:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no puppet message with {token} within {timeout} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.texts[token][0]

    async def file(self, root: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while root not in self.files:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no file in the thread of {root} within {timeout} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.files[root]


class _Inbox:
    """A mailbox's inbox polled tightly (NOOP + UID SEARCH of the new UIDs); what it read is moved away."""

    def __init__(self, mail: dict, b: dict) -> None:
        self.imap = imap_for(mail, b)
        self.last = 0

    async def connect(self) -> None:
        await self.imap.connect()
        for f in await self.imap.fetch_all(limit=10_000):   # start empty
            await self.imap.move_to_done(f.uid)
        self.last = self.imap._last_uid

    async def _new(self) -> list:
        await self.imap._client().noop()
        uids = [u for u in await self.imap._uids(f"UID {self.last + 1}:*") if u > self.last]
        if not uids:
            return []
        self.last = self.imap._last_uid = max(uids)
        fetched = await self.imap._fetch(uids)
        for f in fetched:
            await self.imap.move_to_done(f.uid)
        return fetched

    async def wait_token(self, token: str, timeout: float) -> float:
        """perf_counter() stamp at which a mail whose plain text carries `token` was fetched."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in await self._new():
                now = time.perf_counter()
                msg = email.message_from_bytes(f.raw, policy=policy.default)
                body = msg.get_body(("plain",))
                if token in str(msg.get("Subject", "")) or (body is not None and token in body.get_content()):
                    return now
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"no mail with {token} within {timeout} s")

    async def close(self) -> None:
        await self.imap.close()


async def _correction_sample(s, cardio_in: _Inbox, reply_id: str) -> float:
    """Seconds from the GP's edit of a reply already mailed (m.replace) to the correction in the cardiologist's
    inbox (« Correction du message du … », in the same thread): the reply's path, decided again (#24)."""
    token = _token()
    start = time.perf_counter()
    await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": f"* Merci, bien noté, corrigé {token}",
        "m.new_content": {"msgtype": "m.text", "body": f"Merci, bien noté, corrigé {token}"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": reply_id}}, ignore_unverified_devices=True)
    return await cardio_in.wait_token(token, 30) - start


async def _idle_sample(labo: _Inbox, smtp, mail: dict, cardio: dict, to: str) -> float:
    """Seconds from the SMTP acceptance of a mail to `to` to its fetch after the IDLE wake-up."""
    token = _token()
    msg = letter(cardio, to, subject=f"Floor {token}", text="IDLE floor.")
    imap = labo.imap
    waiting = asyncio.create_task(imap.wait_for_change(10.0))
    for _ in range(200):                         # until the IDLE command is pending on the server
        if imap._client().has_pending_idle():
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)                    # its continuation has come back
    await smtp.send(bytes(msg), sender=cardio["address"], recipients=[to], notify=False)
    accepted = time.perf_counter()
    if not await waiting:
        raise TimeoutError("IDLE did not wake up within 10 s")
    found = await labo.wait_token(token, 5.0)
    return found - accepted


def _mail_in_ms(bridge: BridgeProcess, start: int, end: int | None = None) -> dict:
    entries = bridge.events("mail.in")[start:end]
    posted = [e["ms"] / 1000 for e in entries if e.get("state") == "posted"]
    states: dict[str, int] = {}
    for e in entries:
        states[e.get("state", "?")] = states.get(e.get("state", "?"), 0) + 1
    return {"posted_ms": percentiles(posted), "states": states}


class _Local:
    """The fixture-like factories open_structure wants, made the way tests/conftest.py makes them."""

    def __init__(self, synapse: Synapse, work: Path) -> None:
        self.synapse, self.work = synapse, work
        self.clinicians: list[Clinician] = []
        self.bots: list[BotProcess] = []
        self.bridges: list[BridgeProcess] = []
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"mail{prefix}{self._n}"

    async def clinician(self, prefix: str = "clinicien") -> Clinician:
        local = self._name(prefix)
        user_id = await self.synapse.aregister(local, PASSWORD)
        c = Clinician(self.synapse.url, user_id, PASSWORD, self.work / f"store-{local}")
        self.clinicians.append(await c.start())
        return c

    def bot(self, staff: list[str], database_url: str = "", **extra) -> BotProcess:
        local = self._name("liaison")
        user_id = self.synapse.register(local, PASSWORD)
        bot = BotProcess(self.work / local, self.synapse.url, self.synapse.server_name, user_id, PASSWORD,
                         staff, database_url, extra)
        self.bots.append(bot)
        return bot.start()

    def bridge(self, bot: BotProcess) -> BridgeProcess:
        log_file = yaml.safe_load(bot.config_path.read_text())["bridge"]["log_file"]
        bridge = BridgeProcess(bot.config_path, Path(log_file))   # none of the bot's secrets: it reads its own only
        self.bridges.append(bridge)
        return bridge.start()

    async def close(self) -> None:
        for c in self.clinicians:
            await c.stop()
        for b in self.bridges:
            b.stop()
        for b in self.bots:
            b.stop()


async def _warm_up(s, arrivals: _Arrivals, cardio_in: _Inbox, smtp, cardio: dict, to: str) -> dict:
    """Mails in and replies out until two of each went through (the first ones wait on key sharing)."""
    started = time.monotonic()
    ins, outs, tries = [], 0, 0
    while len(ins) < 2:
        tries += 1
        if tries > 10:
            raise TimeoutError("warm-up: no inbound mail reached the room")
        token = _token()
        await smtp.send(bytes(letter(cardio, to, subject=f"Échauffement {token}", text="Échauffement.",
                                     xdm=xdm_letter())),   # her INS: she treats the patient, replies may go to her
                        sender=cardio["address"], recipients=[to], notify=False)
        try:
            ins.append((await arrivals.text(token, 20))[1])
        except TimeoutError:
            pass
    for event_id in ins:
        for attempt in range(5):
            token = _token()
            await s.gp.client.room_send(s.room, "m.room.message", {
                "msgtype": "m.text", "body": f"Bien reçu {token}",
                "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}, ignore_unverified_devices=True)
            try:
                await cardio_in.wait_token(token, 15)
                outs += 1
                break
            except TimeoutError:
                s.gp.client.invalidate_outbound_session(s.room)   # reshare the room key at the next send
        else:
            raise TimeoutError("warm-up: no reply left the room as a mail")
    return {"seconds": time.monotonic() - started, "inbound_tries": tries, "outbound": outs}


class _FloorSeen:
    """On the GP's client: the floor sender's texts by token (first arrival stamp)."""

    def __init__(self, gp: Clinician, room: str, sender: str) -> None:
        self.room, self.sender = room, sender
        self.seen: dict[str, float] = {}
        self.undecryptable = 0
        self._changed = asyncio.Event()
        gp.client.add_event_callback(self._on_event, (RoomMessageText, MegolmEvent))

    async def _on_event(self, room, event) -> None:
        now = time.perf_counter()
        if room.room_id != self.room or event.sender != self.sender:
            return
        if isinstance(event, MegolmEvent):
            self.undecryptable += 1
            return
        match = FLOOR_TOKEN.search(event.body or "")
        if match:
            self.seen.setdefault(match.group(0), now)
            self._changed.set()

    async def wait(self, tokens, timeout: float, stall: float) -> str:
        """Until every token is seen, or nothing new for `stall` s, or `timeout`; how it ended."""
        deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
        while True:
            n = sum(1 for t in tokens if t in self.seen)
            if n == len(tokens):
                return "all seen"
            if n != last:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > stall:
                return f"stalled {stall:.0f} s"
            if time.monotonic() > deadline:
                return "deadline"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass


def _floor_token() -> str:
    return f"FLOOR-{secrets.token_hex(6)}"


async def _posting_floor(s, n: int, cpu: "_CpuSampler") -> dict:
    """The coordinator's plain nio client (already a member of the pathway room) sends `n` short encrypted
    m.text as fast as it can, FLOOR_CONCURRENCY room_send in flight; the GP's client must see them all."""
    sender = s.coord
    seen = _FloorSeen(s.gp, s.room, sender.user_id)
    # warm-up: the room key shared with every device in the room (GP, bot, bridge, puppet)
    warm_started = time.monotonic()
    for attempt in range(4):
        token = _floor_token()
        await sender.send(s.room, f"Plancher, échauffement {token}")
        if await seen.wait([token], timeout=15, stall=15) == "all seen":
            break
        sender.client.invalidate_outbound_session(s.room)
    else:
        raise TimeoutError("posting floor: the GP never saw the sender's warm-up message")
    warm_s = time.monotonic() - warm_started
    await asyncio.sleep(1)

    tokens = [_floor_token() for _ in range(n)]
    sent: dict[str, float] = {}
    errors: list[str] = []
    sem = asyncio.Semaphore(FLOOR_CONCURRENCY)

    async def one(i: int, token: str) -> None:
        async with sem:
            resp = await sender.client.room_send(s.room, "m.room.message",
                                                 {"msgtype": "m.text", "body": f"Plancher {i} {token}"},
                                                 tx_id=f"floor-{uuid.uuid4().hex}", ignore_unverified_devices=True)
            if isinstance(resp, RoomSendResponse):
                sent[token] = time.perf_counter()
            else:
                errors.append(str(resp)[:200])

    mark = cpu.mark("floor")
    t0 = time.perf_counter()
    sending = asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)), return_exceptions=True)
    try:
        results = await asyncio.wait_for(sending, FLOOR_SEND_TIMEOUT)
        errors += [repr(r)[:200] for r in results if isinstance(r, BaseException)]
        send_end = "done"
    except asyncio.TimeoutError:
        send_end = f"timeout {FLOOR_SEND_TIMEOUT:.0f} s"
    send_s = (max(sent.values()) if sent else time.perf_counter()) - t0
    end = await seen.wait(list(sent), timeout=60, stall=20)
    cpu.close(mark)
    got = [seen.seen[t] for t in sent if t in seen.seen]
    seen_s = (max(got) if got else time.perf_counter()) - t0
    lat = [seen.seen[t] - sent[t] for t in sent if t in seen.seen]
    return {"n": n, "concurrency": FLOOR_CONCURRENCY, "sender": sender.user_id, "warm_up_seconds": warm_s,
            "sent": len(sent), "errors": len(errors), "first_errors": errors[:3], "send_end": send_end,
            "send_seconds": send_s, "sent_per_s": len(sent) / max(send_s, 1e-9),
            "seen": len(got), "seen_end": end, "seen_seconds": seen_s,
            "seen_per_s": len(got) / max(seen_s, 1e-9), "send_to_seen_ms": percentiles(lat),
            "undecryptable": seen.undecryptable}


async def _sustained(s, arrivals: _Arrivals, mail: dict, cardio: dict, to: str, seconds: float,
                     bridge: BridgeProcess, drain_timeout: float, cpu: "_CpuSampler", profile: bool = True,
                     synapse_log: Path | None = None) -> dict:
    pid = bridge.process.pid
    await asyncio.sleep(2)
    log_offset = synapse_log.stat().st_size if synapse_log and synapse_log.exists() else 0
    epoch0 = time.time()
    rss_start = rss_mib(pid)
    log_start = len(bridge.events("mail.in"))
    smtp = smtp_for(mail, cardio)
    expected = int(seconds * SUSTAINED_RATE)
    sent: dict[str, float] = {}
    send_errors = 0
    profiling = (asyncio.create_task(_py_spy(pid, PROFILE_DELAY_S, min(PROFILE_S, max(1, int(seconds) - 5))))
                 if profile else None)
    cpu.mark("sustained_send")
    t0 = time.perf_counter()
    try:
        for i in range(expected):
            delay = t0 + i / SUSTAINED_RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            token = _token()
            msg = letter(cardio, to, subject=f"Charge {i} {token}", text=f"Courriel de charge numéro {i}.")
            try:
                await smtp.send(bytes(msg), sender=cardio["address"], recipients=[to], notify=False)
                sent[token] = time.perf_counter()
            except Exception:   # noqa: BLE001 - counted, the load goes on
                send_errors += 1
    finally:
        await smtp.close()
    send_s = time.perf_counter() - t0
    cpu.close("sustained_send")
    cpu.mark("sustained_drain")
    # drain: until every mail is seen, or nothing new for STALL_S (lost), or drain_timeout (still draining)
    deadline, last_seen, last_change = time.monotonic() + drain_timeout, -1, time.monotonic()
    drain_end = "deadline"
    while time.monotonic() < deadline:
        seen = sum(1 for t in sent if t in arrivals.texts)
        if seen == len(sent):
            drain_end = "all seen"
            break
        if seen != last_seen:
            last_seen, last_change = seen, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            drain_end = f"stalled {STALL_S} s"
            break
        await asyncio.sleep(0.5)
    drained_s = time.perf_counter() - t0
    cpu.close("sustained_drain")
    epoch1 = time.time()
    requests = (_synapse_requests(synapse_log, log_offset, synapse_log.stat().st_size)
                if synapse_log and synapse_log.exists() else {})
    batches = _bridge_batches(bridge, epoch0, epoch1)
    prof = None
    if profiling is not None:
        try:
            prof = await profiling
        except Exception as err:   # noqa: BLE001 - the profile is a bonus
            prof = {"error": repr(err)}
    await asyncio.sleep(3)   # late duplicates, and the memory after the work
    rss_end = rss_mib(pid)
    seen = {t: arrivals.texts[t] for t in sent if t in arrivals.texts}
    latencies = [v[0][0] - sent[t] for t, v in seen.items()]
    last = max((v[0][0] for v in seen.values()), default=t0)
    return {"seconds": seconds, "rate_per_s": SUSTAINED_RATE, "expected": expected, "sent": len(sent),
            "send_errors": send_errors, "send_seconds": send_s, "drain_seconds": drained_s,
            "seen": len(seen), "lost": len(sent) - len(seen), "drain_end": drain_end,
            "duplicated": sum(1 for v in seen.values() if len(v) > 1),
            "latency_ms": percentiles(latencies),
            "posted_per_s": len(seen) / max(last - t0, 1e-9),
            "rss_start_mib": rss_start, "rss_end_mib": rss_end,
            "rss_growth_pct": (rss_end - rss_start) / rss_start * 100,
            "bridge_mail_in": _mail_in_ms(bridge, log_start), "profile": prof,
            "synapse_requests": requests, "imap_batches": batches}


async def bench_mail(synapse: Synapse, work: Path, samples: int, pdf_samples: int = 5,
                     sustained_s: float = 0, pdf_kib: int = 100) -> dict:
    """Interleaved samples of the IDLE floor, inbound and outbound; the optional sustained load."""
    # the bench's own IMAP/SMTP clients log through structlog: keep the table readable
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    gw_dir = Path(tempfile.mkdtemp(prefix="liaison-mailgw-"))   # Dovecot must walk down to it: not under work
    gateway = GatewayProcess(gw_dir)
    local = _Local(synapse, work / "mail")
    smtp = labo_in = cardio_in = None
    try:
        mail = await asyncio.to_thread(gateway.start)
        s = await open_structure(local.clinician, local.bot, local.bridge, synapse, gateway, work / "mail" / "bridge")
        bridge = s.bridge
        cardio, labo = box(mail, CARDIO), box(mail, LABO)
        local_part, domain = mail["bridge_address"].split("@")
        to = f"{local_part}+{s.code.lower()}@{domain}"
        arrivals = _Arrivals(s.gp, s.room)
        smtp = smtp_for(mail, cardio)   # one connection, reused: the sender's handshake is not measured
        cardio_in, labo_in = _Inbox(mail, cardio), _Inbox(mail, labo)
        await cardio_in.connect()
        await labo_in.connect()
        warm = await _warm_up(s, arrivals, cardio_in, smtp, cardio, to)
        await _idle_sample(labo_in, smtp, mail, cardio, LABO)   # the floor's own warm-up

        log_start = len(bridge.events("mail.in"))
        times: dict[str, list[float]] = {"idle": [], "inbound": [], "outbound": [], "correction": []}
        for i in range(samples):
            await asyncio.sleep(SETTLE_S)
            times["idle"].append(await _idle_sample(labo_in, smtp, mail, cardio, LABO))
            await asyncio.sleep(SETTLE_S)
            token = _token()
            msg = letter(cardio, to, subject=f"Suivi {i} {token}", text=f"Bonjour, nouvelles du patient ({i}).")
            await smtp.send(bytes(msg), sender=cardio["address"], recipients=[to], notify=False)
            accepted = time.perf_counter()
            arrived, event_id = await arrivals.text(token, 30)
            times["inbound"].append(arrived - accepted)
            await asyncio.sleep(SETTLE_S)
            token = _token()
            start = time.perf_counter()
            sent = await s.gp.client.room_send(s.room, "m.room.message", {
                "msgtype": "m.text", "body": f"Merci, bien noté {token}",
                "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}, ignore_unverified_devices=True)
            times["outbound"].append(await cardio_in.wait_token(token, 30) - start)
            await asyncio.sleep(SETTLE_S)
            times["correction"].append(await _correction_sample(s, cardio_in, sent.event_id))
        await asyncio.sleep(SETTLE_S)
        bridge_plain = _mail_in_ms(bridge, log_start)

        log_start = len(bridge.events("mail.in"))
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + secrets.token_bytes(pdf_kib * 1024)
        times["inbound_pdf_text"], times["inbound_pdf_file"] = [], []
        for i in range(pdf_samples):
            await asyncio.sleep(SETTLE_S)
            token = _token()
            msg = letter(cardio, to, subject=f"Lettre de liaison {i} {token}", text="Voici la lettre de liaison.",
                         xdm=xdm_letter(pdf=pdf))
            await smtp.send(bytes(msg), sender=cardio["address"], recipients=[to], notify=False)
            accepted = time.perf_counter()
            arrived, event_id = await arrivals.text(token, 30)
            times["inbound_pdf_text"].append(arrived - accepted)
            times["inbound_pdf_file"].append(await arrivals.file(event_id, 30) - accepted)
        await asyncio.sleep(SETTLE_S)
        bridge_pdf = _mail_in_ms(bridge, log_start)

        latency = {name: percentiles(t) for name, t in times.items()}
        floor = latency["idle"]
        ratio = {name: {q: latency[name][q] / floor[q] for q in ("p50", "p95")}
                 for name in ("inbound", "inbound_pdf_text", "outbound", "correction") if latency[name]["n"]}
        res = {"samples": samples, "pdf_samples": pdf_samples, "pdf_kib": pdf_kib, "settle_s": SETTLE_S,
               "latency_ms": latency, "ratio_to_idle": ratio, "warm_up": warm,
               "bridge_mail_in": {"plain": bridge_plain, "pdf": bridge_pdf},
               "undecryptable": arrivals.undecryptable, "bridge_rss_mib": rss_mib(bridge.process.pid)}
        if sustained_s:
            cpu = _CpuSampler({"synapse": synapse.process.pid, "bridge": bridge.process.pid, "bench": os.getpid(),
                               "bot": s.bot.process.pid, "gateway": gateway.process.pid}, own_only=("bench",)).start()
            try:
                n_floor = min(int(sustained_s * SUSTAINED_RATE), FLOOR_MAX)
                res["posting_floor"] = await _posting_floor(s, n_floor, cpu)
                await asyncio.sleep(3)   # the bridge and the bot read the floor's events (and ignore them)
                res["sustained"] = await _sustained(s, arrivals, mail, cardio, to, sustained_s, bridge,
                                                    drain_timeout=max(120.0, 10 * sustained_s), cpu=cpu,
                                                    synapse_log=synapse.log_dir / "synapse.log")
            finally:
                await cpu.stop()
            res["cpu_percent"] = cpu.means()
            res["undecryptable"] = arrivals.undecryptable
        res["bridge_log_tail"] = [e for e in bridge.events("imap.broken")][-5:]
        return res
    finally:
        for closing in (smtp, labo_in, cardio_in):
            if closing is not None:
                try:
                    await closing.close()
                except Exception:   # noqa: BLE001 - cleaning up
                    pass
        await local.close()
        await asyncio.to_thread(gateway.stop)
        shutil.rmtree(gw_dir, ignore_errors=True)


def report_lines(res: dict) -> list[str]:
    """The mail part of the report, in run.py's style; adds the verdicts to `res`."""
    lat, ratio = res["latency_ms"], res["ratio_to_idle"]
    names = {"idle": "IDLE floor (SMTP→fetch)", "inbound": "inbound (SMTP→decrypted)",
             "inbound_pdf_text": f"inbound +{res['pdf_kib']} KiB PDF text", "inbound_pdf_file": "  … to the file",
             "outbound": "outbound (send→INBOX)", "correction": "correction (edit→INBOX)"}
    lines = [f"{'MSSanté bridge':<30} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'÷ IDLE p50':>10} {'p95':>5}"]
    for key, p in lat.items():
        r = ratio.get(key)
        extra = f" {r['p50']:>10.2f} {r['p95']:>5.2f}" if r else ""
        lines.append(f"{names.get(key, key):<30} {p['n']:>4} {p['p50']:>8.1f} {p['p95']:>8.1f}{extra}")
    t = TARGETS
    verdicts = res["verdicts"] = {
        "inbound_p50": lat["inbound"]["p50"] <= t["inbound_p50_s"] * 1000,
        "inbound_p95": lat["inbound"]["p95"] <= t["inbound_p95_s"] * 1000,
        "outbound_p95": lat["outbound"]["p95"] <= t["outbound_p95_s"] * 1000,
        "correction_p95": lat["correction"]["p95"] <= t["correction_p95_s"] * 1000,
    }

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"
    lines.append(f"{'inbound':<30} p50 {lat['inbound']['p50'] / 1000:5.2f} s (≤ {t['inbound_p50_s']} "
                 f"{mark(verdicts['inbound_p50'])})  p95 {lat['inbound']['p95'] / 1000:5.2f} s "
                 f"(≤ {t['inbound_p95_s']} {mark(verdicts['inbound_p95'])})")
    lines.append(f"{'outbound':<30} p95 {lat['outbound']['p95'] / 1000:5.2f} s (≤ {t['outbound_p95_s']} "
                 f"{mark(verdicts['outbound_p95'])})")
    lines.append(f"{'correction (edit of a mailed reply)':<30} p95 {lat['correction']['p95'] / 1000:5.2f} s "
                 f"(≤ {t['correction_p95_s']} {mark(verdicts['correction_p95'])}), "
                 f"{lat['correction']['p95'] / max(lat['outbound']['p95'], 1e-9):.2f} × the reply's p95")
    for key, b in res["bridge_mail_in"].items():
        p = b["posted_ms"]
        lines.append(f"bridge mail.in ms, {key:<11} n {p['n']:>3} p50 {p['p50']:7.1f} p95 {p['p95']:7.1f}  "
                     f"states {b['states']}")
    if res.get("undecryptable"):
        lines.append(f"undecryptable puppet events seen by the GP: {res['undecryptable']}")
    su = res.get("sustained")
    if su:
        verdicts["sustained_lost"] = su["lost"] == 0 and su["send_errors"] == 0   # at "deadline": a backlog
        verdicts["sustained_duplicated"] = su["duplicated"] == 0
        verdicts["rss_growth"] = su["rss_growth_pct"] < t["rss_growth_pct"]
        verdicts["sustained_keeps_up"] = su["posted_per_s"] >= 0.95 * su["rate_per_s"]
        p = su["latency_ms"]
        fl = res.get("posting_floor")
        if fl:
            q = fl["send_to_seen_ms"]
            lines += ["",
                      f"posting floor: {fl['sender']} → same room, {fl['n']} encrypted m.text, "
                      f"{fl['concurrency']} room_send in flight: sent {fl['sent']} ({fl['send_end']}, errors "
                      f"{fl['errors']}) {fl['sent_per_s']:.1f} msgs/s; seen by the GP {fl['seen']} ({fl['seen_end']}) "
                      f"{fl['seen_per_s']:.1f} msgs/s; send→seen p50 {q['p50']:.0f} ms p95 {q['p95']:.0f} ms"]
        ratio_floor = (f" = {su['posted_per_s'] / fl['seen_per_s']:.2f} × floor ({fl['seen_per_s']:.1f} msgs/s seen)"
                       if fl and fl["seen_per_s"] else "")
        lines += ["",
                  f"sustained {su['rate_per_s']}/s × {su['seconds']:.0f} s: sent {su['sent']}/{su['expected']} "
                  f"in {su['send_seconds']:.1f} s (errors {su['send_errors']}), seen {su['seen']}, "
                  f"drain end ({su['drain_end']}) at {su['drain_seconds']:.1f} s, bridge "
                  f"{su['posted_per_s']:.1f} posted/s{ratio_floor} (keeps up {mark(verdicts['sustained_keeps_up'])})",
                  f"  lost {su['lost']} {mark(verdicts['sustained_lost'])}  duplicated {su['duplicated']} "
                  f"{mark(verdicts['sustained_duplicated'])}  latency p50 {p['p50']:.0f} ms p95 {p['p95']:.0f} ms",
                  f"  bridge RSS {su['rss_start_mib']:.1f} → {su['rss_end_mib']:.1f} MiB "
                  f"({su['rss_growth_pct']:+.1f} %, < {t['rss_growth_pct']:.0f} % {mark(verdicts['rss_growth'])})",
                  f"  bridge mail.in ms p50 {su['bridge_mail_in']['posted_ms']['p50']:.1f} "
                  f"p95 {su['bridge_mail_in']['posted_ms']['p95']:.1f}  states {su['bridge_mail_in']['states']}"]
        for phase, m in (res.get("cpu_percent") or {}).items():
            lines.append(f"  CPU % mean, {phase:<16} ({m['n']:>3} s): " + "  ".join(
                f"{k} {v:5.1f}" for k, v in m.items() if k != "n"))
        prof = su.get("profile")
        if prof and "error" in prof:
            lines.append(f"  py-spy: {prof['error']}")
        elif prof:
            wall = prof["seconds"] * prof["rate_hz"]
            kinds = "  ".join(f"{k} {v} ({prof['idle'].get(k, 0)} idle)" for k, v in prof["kinds"].items())
            lines.append(f"  py-spy bridge, {prof['seconds']} s at {prof['rate_hz']} Hz ({wall} samples a thread, wall "
                         f"clock), {prof['thread_count']} threads: {kinds}")
            lines.append("  top self time, all threads (last frame; % of one thread's wall time):")
            for func, n in prof["self"]:
                lines.append(f"    {n / wall * 100:5.1f} %  {n:>5}  {func[:110]}")
            lines.append("  top self time, event-loop thread without its idle wait:")
            for func, n in prof["main_busy_self"][:10]:
                lines.append(f"    {n / wall * 100:5.1f} %  {n:>5}  {func[:110]}")
            lines.append("  event-loop thread busy, inclusive, bridge/liaison functions:")
            for func, n in [(f, n) for f, n in prof["main_busy_inclusive"] if "bridge/" in f or "liaison/" in f][:12]:
                lines.append(f"    {n / wall * 100:5.1f} %  {n:>5}  {func[:110]}")
        b = su.get("imap_batches")
        if b and b["batches"]:
            lines.append(f"  IMAP batches: {b['batches']} for {b['mails']} mails, size mean {b['size_mean']:.1f} max "
                         f"{b['size_max']}; batch fetch→moved p50 {b['batch_s']['p50'] / 1000:.2f} s "
                         f"p95 {b['batch_s']['p95'] / 1000:.2f} s, total {b['batch_total_s']:.1f} s; gap moved→next fetch "
                         f"p50 {b['gap_s']['p50'] / 1000:.2f} s, total {b['gap_total_s']:.1f} s")
        req = su.get("synapse_requests")
        if req:
            lines.append("  Synapse requests during the sustained run (by total time):")
            for key, r in list(req.items())[:14]:
                lines.append(f"    {r['n']:>5} × {r['mean_ms']:7.1f} ms = {r['total_s']:6.1f} s  {key[:100]}")
    return lines
