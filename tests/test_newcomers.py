"""A summary posted again for a new device: the whole team reads it, so it opens on the pathway, not on a phone; the
note that it was posted again comes last."""
from __future__ import annotations

import re

from bot.commands import build_registry
from bot.newcomers import Newcomers
from policies.ins import nir_key
from tests.fakes import COORD, NURSE, ask, close_services, make_services

NIR = "1480575123456"
OPEN = f"!parcours ouvrir {NIR}{nir_key(NIR):02d} insuffisance-cardiaque 12/05/1948 M Durand Marcel --equipe infirmière"


async def test_the_reposted_summary_names_no_one_s_device(tmp_path):
    services = await make_services(tmp_path)
    try:
        desk = services.matrix.add_room(members=(COORD,))
        opened = await ask(services, build_registry(), COORD, desk, OPEN)
        room = re.search(r"!r\d+:hs", opened.text + (opened.html or "")).group(0)
        services.matrix.accept(room, NURSE)
        services.matrix.devices[NURSE].add("PHONE2")   # Sophie Bernard logs in on a new phone

        assert await Newcomers(services, settle=0).check(room)
        summary = services.matrix.bodies(room)[-1]
        assert "Résumé republié" in summary and "DURAND Marcel" in summary, "the same summary, posted again"
        note = next(line for line in summary.splitlines() if "Résumé republié" in line)
        assert "Sophie Bernard" not in note and "nouvel appareil de" not in summary, \
            "the team's summary says nothing of one person's new phone"
        lines = summary.splitlines()
        assert lines[0].startswith("Parcours ") and lines[-1] == note, "the summary first, the note last"
        html = next(s.content for s in reversed(services.matrix.sent) if s.room_id == room)["formatted_body"]
        assert html.startswith("<h4>Parcours ") and html.endswith(f"<p><small>{note}</small></p>"), \
            "in HTML too: the summary first, the note as a last small line"
    finally:
        await close_services(services)
