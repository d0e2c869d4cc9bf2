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
import re
import secrets
import shutil
import tempfile
import time
from email import policy
from pathlib import Path

import structlog
import yaml
from nio import MegolmEvent, RoomMessage

from liaison.stack.synapse import Synapse
from tests.bench.demo_peers import PASSWORD
from tests.bench.measure import percentiles, rss_mib
from tests.support.botproc import BotProcess
from tests.support.bridgeproc import BridgeProcess
from tests.support.clinician import Clinician
from tests.support.mailgw import GatewayProcess
from tests.support.mss import box, imap_for, letter, open_structure, smtp_for, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LABO = "resultats@labo-demo.mssante.test"
PUPPET = "@mss_c.lefebvre"
TOKEN = re.compile(r"BENCH-[0-9a-f]{12}")
TARGETS = {"inbound_p50_s": 0.65, "inbound_p95_s": 0.8, "outbound_p95_s": 1.0,
           "sustained_lost": 0, "sustained_duplicated": 0, "rss_growth_pct": 10.0}
SETTLE_S = 0.8          # pause before each round (> Dovecot's IDLE delay: the last DSN is handled)
SUSTAINED_RATE = 20     # mails per second
POLL_S = 0.02           # outbound: inbox poll period
STALL_S = 30            # sustained: the drain gives up after this long without a new mail in the room


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
        if room.room_id != self.room or not event.sender.startswith(PUPPET):
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
        bridge = BridgeProcess(bot.config_path, Path(log_file), {"LIAISON_BOT_PASSWORD": bot.password})
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
        await smtp.send(bytes(letter(cardio, to, subject=f"Échauffement {token}", text="Échauffement.")),
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


async def _sustained(s, arrivals: _Arrivals, mail: dict, cardio: dict, to: str, seconds: float,
                     bridge: BridgeProcess, drain_timeout: float) -> dict:
    pid = bridge.process.pid
    await asyncio.sleep(2)
    rss_start = rss_mib(pid)
    log_start = len(bridge.events("mail.in"))
    smtp = smtp_for(mail, cardio)
    expected = int(seconds * SUSTAINED_RATE)
    sent: dict[str, float] = {}
    send_errors = 0
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
            "bridge_mail_in": _mail_in_ms(bridge, log_start)}


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
        times: dict[str, list[float]] = {"idle": [], "inbound": [], "outbound": []}
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
            await s.gp.client.room_send(s.room, "m.room.message", {
                "msgtype": "m.text", "body": f"Merci, bien noté {token}",
                "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}, ignore_unverified_devices=True)
            times["outbound"].append(await cardio_in.wait_token(token, 30) - start)
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
                 for name in ("inbound", "inbound_pdf_text", "outbound") if latency[name]["n"]}
        res = {"samples": samples, "pdf_samples": pdf_samples, "pdf_kib": pdf_kib, "settle_s": SETTLE_S,
               "latency_ms": latency, "ratio_to_idle": ratio, "warm_up": warm,
               "bridge_mail_in": {"plain": bridge_plain, "pdf": bridge_pdf},
               "undecryptable": arrivals.undecryptable, "bridge_rss_mib": rss_mib(bridge.process.pid)}
        if sustained_s:
            res["sustained"] = await _sustained(s, arrivals, mail, cardio, to, sustained_s, bridge,
                                                drain_timeout=max(120.0, 10 * sustained_s))
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
             "outbound": "outbound (send→INBOX)"}
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
    }

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"
    lines.append(f"{'inbound':<30} p50 {lat['inbound']['p50'] / 1000:5.2f} s (≤ {t['inbound_p50_s']} "
                 f"{mark(verdicts['inbound_p50'])})  p95 {lat['inbound']['p95'] / 1000:5.2f} s "
                 f"(≤ {t['inbound_p95_s']} {mark(verdicts['inbound_p95'])})")
    lines.append(f"{'outbound':<30} p95 {lat['outbound']['p95'] / 1000:5.2f} s (≤ {t['outbound_p95_s']} "
                 f"{mark(verdicts['outbound_p95'])})")
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
        lines += ["",
                  f"sustained {su['rate_per_s']}/s × {su['seconds']:.0f} s: sent {su['sent']}/{su['expected']} "
                  f"in {su['send_seconds']:.1f} s (errors {su['send_errors']}), seen {su['seen']}, "
                  f"drain end ({su['drain_end']}) at {su['drain_seconds']:.1f} s, bridge "
                  f"{su['posted_per_s']:.1f} posted/s (keeps up {mark(verdicts['sustained_keeps_up'])})",
                  f"  lost {su['lost']} {mark(verdicts['sustained_lost'])}  duplicated {su['duplicated']} "
                  f"{mark(verdicts['sustained_duplicated'])}  latency p50 {p['p50']:.0f} ms p95 {p['p95']:.0f} ms",
                  f"  bridge RSS {su['rss_start_mib']:.1f} → {su['rss_end_mib']:.1f} MiB "
                  f"({su['rss_growth_pct']:+.1f} %, < {t['rss_growth_pct']:.0f} % {mark(verdicts['rss_growth'])})",
                  f"  bridge mail.in ms p50 {su['bridge_mail_in']['posted_ms']['p50']:.1f} "
                  f"p95 {su['bridge_mail_in']['posted_ms']['p95']:.1f}  states {su['bridge_mail_in']['states']}"]
    return lines
