"""For the bridge tests: a structure with a bot, the bridge, an open pathway, and the gateway's people."""
from __future__ import annotations

import asyncio
import random
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from nio import RoomMemberEvent

from bridge.imap import ImapClient, ImapSettings
from bridge.smtp import SmtpClient, SmtpSettings
from bridge.xdm import XdmAuthor, XdmOut, write_xdm
from liaison.puppet_names import puppet_id_key, puppet_localpart
from policies.ins import nir_key

NIR = "1480575123456"
INS = f"{NIR}{nir_key(NIR):02d}"
OPEN = f"!parcours ouvrir {INS} insuffisance-cardiaque 12/05/1948 M Durand Marcel"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + secrets.token_bytes(2048)


def box(mail: dict, address: str) -> dict:
    for b in [mail["bridge"], *mail["externals"], *mail["untrusted"]]:
        if b["address"] == address:
            return b
    raise KeyError(address)


def smtp_for(mail: dict, b: dict) -> SmtpClient:
    return SmtpClient(SmtpSettings(mail["smtp"]["host"], mail["smtp"]["port"], mail["ca"], b["cert"], b["key"]))


def imap_for(mail: dict, b: dict) -> ImapClient:
    return ImapClient(ImapSettings(mail["imap"]["host"], mail["imap"]["port"], mail["ca"], b["cert"], b["key"],
                                   b["imap_user"], b["imap_password"]))


async def drain(mail: dict, b: dict) -> None:
    """Empty a mailbox's inbox (mails left by an earlier test)."""
    imap = imap_for(mail, b)
    await imap.connect()
    try:
        for f in await imap.fetch_all(limit=10_000):
            await imap.move_to_done(f.uid)
    finally:
        await imap.close()


def _pdf_out(pdf: bytes, title: str = "Lettre de liaison de sortie") -> XdmOut:
    return XdmOut(data=pdf, mime_type="application/pdf", title=title, type_code="11490-0",
                  type_display="Lettre de liaison à la sortie d'un établissement de soins", filename_ext="pdf")


def _xdm(documents: list[XdmOut], ins: str = INS) -> bytes:
    return write_xdm(documents, patient_ins=ins, patient_oid="1.2.250.1.213.1.4.10",
                     author=XdmAuthor(name="Dr Camille Lefebvre", given="Camille", family="Lefebvre",
                                      institution="CHU de démonstration", profession="Cardiologue"),
                     source_id="1.2.250.1.999.1")


def xdm_letter(ins: str = INS, pdf: bytes = PDF) -> bytes:
    return _xdm([_pdf_out(pdf)], ins)


def xdm_one(data: bytes, mime_type: str = "application/pdf") -> bytes:
    """An IHE_XDM.ZIP of one document, `data` (a CDA when `mime_type` is text/xml)."""
    ext = "xml" if "xml" in mime_type else "pdf"
    return _xdm([XdmOut(data=data, mime_type=mime_type, title="Lettre de liaison de sortie", type_code="11490-0",
                        type_display="Lettre de liaison à la sortie d'un établissement de soins", filename_ext=ext)])


def xdm_full(documents: int = 47, size: int = 1_100_000) -> bytes:
    """An IHE_XDM.ZIP as big as an archive may be: 47 PDFs (with METADATA.XML, INDEX.HTM and README.TXT, the 50
    entries allowed) of 1.1 MB each (50 MB in all, the total allowed), which deflate compresses 4 times (under the
    ratio limit)."""
    letters = bytes(b"ACGT"[i % 4] for i in range(256))
    return _xdm([_pdf_out(b"%PDF-1.4\n" + random.Random(i).randbytes(size).translate(letters), f"Document {i}")
                 for i in range(documents)])


def letter(sender: dict, to: str, *, subject: str, text: str, xdm: bytes | None = None,
           in_reply_to: str | None = None, extra: dict | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f'"{sender["display_name"]}" <{sender["address"]}>'
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender["address"].split("@")[1])
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for k, v in (extra or {}).items():
        msg[k] = v
    msg.set_content(text)
    if xdm is not None:
        msg.add_attachment(xdm, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    return msg


async def send_mail(mail: dict, sender: dict, msg: EmailMessage, to: str) -> str:
    smtp = smtp_for(mail, sender)
    try:
        await smtp.send(bytes(msg), sender=sender["address"], recipients=[to], notify=False)
    finally:
        await smtp.close()
    return str(msg["Message-ID"]).strip("<>")


async def wait_mail(mail: dict, b: dict, predicate, timeout: float = 20.0):
    """The first mail in a box (inbox) for which predicate(EmailMessage) holds."""
    import email
    from email import policy

    imap = imap_for(mail, b)
    await imap.connect()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for f in await imap.fetch_all(limit=10_000):
                msg = email.message_from_bytes(f.raw, policy=policy.default)
                if predicate(msg):
                    return msg
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("aucun courriel attendu dans la boîte")
            await imap.wait_for_change(1.0)
    finally:
        await imap.close()


async def bridge_outcome(bot, event_id: str, timeout: float = 30.0) -> str:
    """What the bridge made of a room event pushed to it (done, ignored, refused…), once it has decided."""
    from sqlalchemy import text

    from liaison.db import create_engine

    engine = create_engine(bot.database_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with engine.connect() as conn:
                state = (await conn.execute(text("SELECT state FROM as_event WHERE event_id = :e"),
                                            {"e": event_id})).scalar()
            if state not in (None, "pending"):
                return state
            if asyncio.get_running_loop().time() > deadline:
                return state or "never received"
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


@dataclass
class Structure:
    coord: object
    gp: object
    bot: object
    bridge: object
    desk: str
    room: str
    code: str
    mail: dict
    puppet_key: str = ""
    server_name: str = ""

    def puppet(self, address: str) -> str:
        """The user id of `address`'s puppet (opaque: keyed with the bridge's secret, see bridge/puppets.py)."""
        return f"@{puppet_localpart('mss_', address, puppet_id_key(self.puppet_key))}:{self.server_name}"


def is_puppet(sender: str) -> bool:
    """Any puppet's user id, not the bridge's own account."""
    return sender.startswith("@mss_") and not sender.startswith("@mss_relais")


def room_of(body: str) -> str:
    match = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", body)
    assert match, body
    return match.group(1)


async def open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, workdir,
                         extra_members: tuple[dict, ...] = (), **bridge_overrides) -> Structure:
    """`extra_members`: more roster entries ({user_id, name, profession}), in the pathway's team too."""
    from tests.support.bridgeproc import bridge_section

    mail = mail_gateway.info
    await drain(mail, mail["bridge"])
    coord, gp = await clinician("coordination"), await clinician("medecin")
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
              {"user_id": gp.user_id, "name": "Dr Paul Martin", "profession": "médecin"}, *extra_members]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True}, structure="MSP de test",
                      bridge=(section := bridge_section(synapse, mail, workdir, **bridge_overrides)))
    bridge = bridge_process(bot)
    desk = await coord.create_room([bot.user_id])
    await coord.wait_joined(desk, bot.user_id)
    team = ",".join([gp.user_id, *(m["user_id"] for m in extra_members)])
    reply, _ = await coord.ask(desk, f"{OPEN} --equipe {team}", timeout=60)
    assert "ouvert" in reply.body, reply.body
    room = room_of(reply.body)
    code = re.search(r"\((P-[A-Z0-9]+)\)", reply.body).group(1)
    bridge_user = f"@mss_relais:{synapse.server_name}"
    await gp.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent) and e.state_key == gp.user_id
                      and e.membership == "join", 30)
    await gp.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent) and e.state_key == bridge_user
                      and e.membership == "join", 30)
    return Structure(coord, gp, bot, bridge, desk, room, code, mail, section["store_pickle_key"], synapse.server_name)


class Switch:
    """A TCP relay in front of the gateway's SMTP port, which the test turns off and on."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def on(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def off(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def open_structure_smtp_down(clinician, bot_process, bridge_process, synapse, mail_gateway, workdir):
    """A structure whose bridge sends through a `Switch` that is off: its mails wait in the outbox until
    `switch.on()`. Returns the structure, the switch, the gateway's info and the cardiologist's box (drained)."""
    switch = Switch(mail_gateway.info["smtp"]["port"])
    await switch.on()
    await switch.off()   # down: what the bridge sends waits in the outbox
    mail = dict(mail_gateway.info)
    behind = type("G", (), {"info": {**mail, "smtp": {"host": "127.0.0.1", "port": switch.port}}})()
    s = await open_structure(clinician, bot_process, bridge_process, synapse, behind, workdir)
    cardio = box(mail, "c.lefebvre@chu-demo.mssante.test")
    await drain(mail, cardio)
    return s, switch, mail, cardio
