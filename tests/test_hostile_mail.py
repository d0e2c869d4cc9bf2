"""The hostile-input catalogue on real servers (Synapse, the bot and the bridge, Dovecot and the mutual-TLS gateway):
each mail gets its expected outcome, nothing is half-stored, the appservice answers /ping within 1 s throughout, and
a normal letter sent right after lands in the room."""
from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest
from nio import RoomMessageText

from tests.support.hostile import catalogue
from tests.support.hostile_run import Outcomes, PingWatch, deliver, one_of_our_mails
from tests.support.mss import box, letter, open_structure, send_mail

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LAB = "resultats@labo-demo.mssante.test"


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


class _Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.hrefs += [v or "" for k, v in attrs if k in ("href", "src")]


async def test_the_hostile_catalogue_is_refused_as_stated_and_the_bridge_keeps_answering(structure, synapse,
                                                                                         mail_gateway):
    s = structure
    cardio = box(s.mail, CARDIO)
    local, domain = s.mail["bridge_address"].split("@")
    to = f"{local}+{s.code.lower()}@{domain}"
    cited = await one_of_our_mails(s, cardio, to)
    outcomes = Outcomes(s.bot.database_url)
    token = f"T{int(time.time())}"
    cases = catalogue(CARDIO, to, cited, s.mail["bridge_address"], token, other=LAB)
    async with PingWatch(synapse) as ping:
        for case in cases:
            await deliver(s.mail, mail_gateway.workdir, case, to)
            try:
                mail_id, state, reason = await outcomes.next(90)
            except TimeoutError:
                said = [e for n in ("mail.in_retry_later", "mail.in_failed", "imap.failed") for e in s.bridge.events(n)]
                pytest.fail(f"{case.name}: no outcome; the bridge's last words: {said[-4:]}")
            if case.expected == "quarantine":
                assert (state, reason) == ("quarantined", case.reason), case.name
            elif case.expected == "ignored":
                assert (state, reason) == ("ignored", case.reason), case.name
            else:
                assert state == "posted", (case.name, state, reason)
            if case.reason == "too_big":
                assert outcomes.quarantined_raw_bytes(mail_id) < 100_000, "kept from its header block alone"

        await send_mail(s.mail, cardio, letter(cardio, to, subject="Après", text="Le courriel d'après."), to)
        await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                            and "Le courriel d'après" in e.body, 60)
        # Its text is shown before the bridge records it done (the thread first, then its files and state): wait
        # for that record, or "half stored" below would see a mail that is merely not finished yet.
        _, state, reason = await outcomes.next(60)
        assert state == "posted", (state, reason)
    assert not ping.failures, ping.failures
    assert max(ping.latencies) < 1.0, max(ping.latencies)
    assert len(ping.latencies) > 50
    assert outcomes.half_stored() == []

    bypass = next(e for r, e in s.gp.events if r == s.room and isinstance(e, RoomMessageText) and token in e.body)
    html = bypass.source["content"]["formatted_body"]
    assert not [h for h in _Links(html).hrefs if not h.startswith(("https://", "mxc://liaison.localhost/"))], html
    assert "(https://phish.example/x)" in bypass.body, "a link whose text is another address shows its target"
    forged = [e for r, e in s.gp.events if r == s.room and "n'a pas pu être remis" in getattr(e, "body", "")]
    assert forged == [], "the forged failure reports posted nothing"
