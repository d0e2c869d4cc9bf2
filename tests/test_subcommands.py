"""Every command and sub-command of `build_registry()`, without Synapse: the real registry, the real `Bot._run`,
the real stores on SQLite, Matrix faked in memory (tests/fakes.py).

For each (command, sub-command): (a) its arguments — a good line reaches the handler, a bad one is refused in
French with the usage line; (b) its audience — whom it is not for is refused, and nothing moves; (c) the reply of
its main case. Each test declares what it covers (`covers`, `table`); the last test walks the registry and fails
for any (command, sub-command) one of the three is missing for.
"""
from __future__ import annotations

import inspect
import json
import re
from collections import defaultdict
from datetime import date

import pytest

from bot.commands import build_registry
from bot.registry import ROOMS, Audience
from bot.commands.documents import NO_ANTIVIRUS
from bot.commands.mss import NO_BRIDGE
from bot.rooms import CIRCLE_NO_CHANGE
from bridge.store import BridgeStore
from liaison.stores.documents import Facts, NewFile
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.matrix import Matrix, MatrixError
from policies.ins import nir_key
from policies.pathway import PATHWAY_TYPES
from policies.professions import luhn_check_digit
from policies.sharing import Knobs
from tests.support.directory_rows import Person, rpps, seed
from tests.fakes import (BOT, BRIDGE, COORD, GP, NURSE, OUTSIDER, SOCIAL, FakeMatrix, ask, close_services,
                         make_services)

REGISTRY = build_registry()
NIR = "1480575123456"                      # a man born in May 1948 (test INS, ins_test_mode)
INS = f"{NIR}{nir_key(NIR):02d}"
OPEN = f"!parcours ouvrir {INS} insuffisance-cardiaque 12/05/1948 M Durand Marcel"
CARDIO = "dr.lefebvre@chu.mssante.fr"      # on the trusted list of tests/fakes.py
ELSEWHERE = "dr.x@gmail.example"           # not on it
DENIS = "Denis Hors (hors de l'équipe de la structure)"   # OUTSIDER as a clinician reads them

# -- what this file covers, filled by the tests themselves ---------------------------------------------------------

ASPECTS = ("parse", "audience", "reply")
COVERED: dict[str, set[str]] = defaultdict(set)


def covers(pair: str, *aspects: str):
    """Declare that the decorated test covers `aspects` (default: the reply) of `pair` (« parcours ouvrir »)."""
    def mark(fn):
        COVERED[pair].update(aspects or ("reply",))
        return fn
    return mark


def table(aspect: str, names: str, rows: list[tuple]):
    """parametrize over rows whose first value is the pair; each row covers `aspect` of its pair."""
    for row in rows:
        COVERED[row[0]].add(aspect)
    return pytest.mark.parametrize(names, [pytest.param(*row, id=f"{row[0]}#{i}") for i, row in enumerate(rows)])


def pairs_of(registry) -> set[str]:
    return {name for cmd in registry.commands
            for name in ([f"{cmd.name} {s.name}" for s in cmd.subs] or [cmd.name])}


def usage(pair: str) -> str:
    name, _, sub = pair.partition(" ")
    cmd = REGISTRY.find(name)
    return cmd.sub(sub).usage() if sub else cmd.usage()


def room_of(text: str) -> str:
    found = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", text)
    assert found, text
    return found.group(1)


def trace_no(text: str) -> int:
    found = re.search(r"trace (\d+)\)?", text)
    assert found, text
    return int(found.group(1))


# -- the world: services on SQLite, a fake homeserver, a coordinator's desk ------------------------------------------

class World:
    def __init__(self, services) -> None:
        self.s, self.m = services, services.matrix
        self.desk = self.m.add_room(members=(COORD, GP, NURSE))   # an encrypted room of the structure

    async def say(self, sender: str, body: str, room: str | None = None, **kw):
        return await ask(self.s, REGISTRY, sender, room or self.desk, body, **kw)

    async def open(self, team: str = "medecin", line: str = OPEN) -> str:
        """A pathway opened by the coordination from the desk; the GP and the coordinator join its room."""
        reply = await self.say(COORD, f"{line} --equipe {team}")
        room = room_of(reply.text)
        self.m.accept(room, COORD)
        self.m.accept(room, GP)
        return room

    async def pathway(self, room: str):
        return await self.s.pathways.by_room(room)

    async def add_document(self, room: str, title: str = "cr-cardio.pdf",
                           doctype: str = "compte-rendu-consultation") -> int:
        """A PDF posted by the GP in the pathway room, checked and indexed; its number."""
        pathway, event_id = await self.pathway(room), self.m.new_event_id()
        await self.s.documents.record([NewFile(event_id, pathway.id, room, "element", GP, title,
                                               {"url": f"mxc://hs/{event_id[1:]}"}, "application/pdf")])
        doc = await self.s.documents.index(event_id, Facts(doctype, "application/pdf", 48_000, "ab" * 32, "document.ok"))
        return doc.number

    async def quarantine(self, sender: str, reason_code: str = "unknown_patient", trusted: bool = True) -> int:
        bridge = BridgeStore(self.s.pathways.engine)
        mail_id = await bridge.begin_mail("INBOX", 1, len(await self.s.mail.quarantined(("waiting", "rejected",
                                                                                          "routing"))) + 1)
        return await self.s.mail.quarantine(mail_id, reason_code=reason_code, reason=f"motif {reason_code}",
                                            from_address=sender, trusted=trusted, raw=b"From: x\r\n\r\ncorps")

    async def consent(self, room: str, who: str, how: str = "écrit") -> None:
        reply = await self.say(COORD, f"!consentement enregistrer {who} {how}", room)
        assert "enregistré" in reply.text, reply.text

    async def traced(self) -> int:
        """The trace entries so far, but the bot's decisions to show an answer in the room (`command.show`, made
        before any handler runs): what the commands did."""
        return len([e for e in await self.s.trace.entries() if e.action != "montrer"])

    async def coordination_room(self) -> str:
        """The coordination's room (the MSSanté quarantine room): the coordinator and the bot."""
        room = await self.s.mail.setting(QUARANTINE_ROOM)
        if room is None:
            room = self.m.add_room(members=(COORD,))
            await self.s.mail.set_setting(QUARANTINE_ROOM, room)
        return room

    def direct(self, who: str) -> str:
        """A direct conversation between `who` and the bot."""
        return self.m.add_room(members=(who,))

    def moves(self) -> tuple:
        """What the bot did on the homeserver so far (to check that a refusal did nothing)."""
        m = self.m
        return (len(m.sent), len(m.invited), len(m.kicked), len(m.state_set), len(m.created), len(m.files))


@pytest.fixture
async def worlds(tmp_path):
    made = []

    async def make(**kw) -> World:
        services = await make_services(tmp_path / f"world{len(made)}", **kw)
        made.append(services)
        return World(services)
    yield make
    for services in made:
        await close_services(services)


@pytest.fixture
async def world(worlds) -> World:
    return await worlds()


@pytest.fixture
async def room(world) -> str:
    """The clinical room of an open pathway (the GP in its team)."""
    return await world.open()


@pytest.fixture
async def busy_room(world, room) -> str:
    """The pathway room with a document n° 1, and a mail n° 1 waiting in the quarantine."""
    assert await world.add_document(room) == 1
    assert await world.quarantine(CARDIO) == 1
    return room


# -- (a) arguments: a bad one is refused in French, with the usage line, and nothing runs ----------------------------

BAD_ARGUMENTS = [
    ("aide", "!aide un deux trois", ["!aide : trop d'arguments."]),
    ("equipe liste", "!equipe liste tous", ["!equipe liste : trop d'arguments."]),
    ("equipe historique", "!equipe historique 20", ["!equipe historique : trop d'arguments."]),
    ("equipe ajouter", "!equipe ajouter kine infirmier",
     ["!equipe ajouter : « kine » : indiquez le compte Matrix (@nom:serveur) ou l'adresse MSSanté."]),
    ("equipe ajouter", "!equipe ajouter @kine:hs", ["!equipe ajouter : il manque : profession."]),
    ("equipe ajouter", "!equipe ajouter @kine:hs plombier", ["Profession inconnue « plombier »"]),
    ("equipe retirer", "!equipe retirer Sophie", ["« Sophie » : indiquez le compte Matrix"]),
    ("parcours liste", "!parcours liste tous", ["!parcours liste : trop d'arguments."]),
    ("parcours ouvrir", OPEN.replace(INS, INS[:-2] + f"{(nir_key(NIR) + 1) % 97:02d}") + " --equipe medecin",
     ["INS refusé", "clé"]),
    ("parcours ouvrir", OPEN[:-len(" Marcel")] + " --equipe medecin", ["Il manque : prénoms.", "Par exemple :"]),
    ("parcours ouvrir", OPEN.replace("12/05/1948", "12/06/1948") + " --equipe medecin", ["mois"]),
    ("parcours ouvrir", OPEN.replace("insuffisance-cardiaque", "cardiologie") + " --equipe medecin",
     ["Type de parcours inconnu « cardiologie »"]),
    ("parcours info", "!parcours info P-7K3Q9", ["!parcours info : trop d'arguments."]),
    ("parcours resume", "!parcours resume allergies pénicilline",
     ["!parcours resume : champ « allergies » inconnu ; champs : problemes, traitements, entourage, contacts."]),
    ("parcours resume", "!parcours resume traitements", ["!parcours resume : il manque : texte."]),
    ("parcours clore", "!parcours clore", ["!parcours clore : il manque : motif."]),
    ("parcours rouvrir", "!parcours rouvrir maintenant", ["!parcours rouvrir : trop d'arguments."]),
    ("parcours inviter", "!parcours inviter dehors",
     ["!parcours inviter : « dehors » n'est pas un compte Matrix : écrivez-le @nom:serveur."]),
    ("parcours types", "!parcours types tous", ["!parcours types : trop d'arguments."]),
    ("parcours export", "!parcours export", ["!parcours export : il manque : parcours."]),
    ("parcours export", "!parcours export P-1 P-2", ["!parcours export : trop d'arguments."]),
    ("trace", "!trace tout", ["!trace : trop d'arguments."]),
    ("consentement enregistrer", "!consentement enregistrer quelqu'un écrit",
     ["« quelqu'un » : ni un compte (@nom:serveur), ni une adresse MSSanté, ni une profession connue."]),
    ("consentement enregistrer", f"!consentement enregistrer {OUTSIDER}", ["il manque : recueil."]),
    ("consentement retirer", "!consentement retirer", ["!consentement retirer : il manque : qui."]),
    ("opposition enregistrer", "!opposition plombier", ["!opposition enregistrer : « plombier » : ni un compte"]),
    ("opposition enregistrer", "!opposition", ["!opposition enregistrer : il manque : qui."]),
    ("opposition lever", "!opposition lever plombier", ["!opposition lever : « plombier » : ni un compte"]),
    ("consentements", "!consentements tous", ["!consentements : trop d'arguments."]),
    ("mss quarantaine", "!mss quarantaine tout", ["!mss quarantaine : trop d'arguments."]),
    ("mss router", "!mss router premier P-7K3Q9", ["!mss router : « premier » n'est pas un numéro (ex. 3)."]),
    ("mss router", "!mss router 1", ["!mss router : il manque : parcours."]),
    ("mss rejeter", "!mss rejeter tous", ["!mss rejeter : « tous » n'est pas un numéro (ex. 3)."]),
    ("mss ecrire", "!mss ecrire docteur bonjour",
     ["!mss ecrire : « docteur » n'est pas une adresse MSSanté (ex. dr.x@chu.mssante.fr)."]),
    ("mss ecrire", f"!mss ecrire {CARDIO}", ["!mss ecrire : il manque : texte."]),
    ("docs", "!docs 1", ["!docs : trop d'arguments."]),
    ("doc voir", "!doc voir premier", ["!doc voir : « premier » n'est pas un numéro (ex. 3)."]),
    ("doc voir", "!doc", ["!doc voir : il manque : n."]),
    ("doc type", "!doc type un biologie", ["!doc type : « un » n'est pas un numéro (ex. 3)."]),
    ("doc type", "!doc type 1", ["!doc type : il manque : type."]),
    ("doc envoyer", "!doc envoyer 1 docteur", ["!doc envoyer : « docteur » n'est pas une adresse MSSanté"]),
    ("tache nouvelle", "!tache", ["!tache nouvelle : il manque : texte."]),
    ("tache prendre", "!tache prendre premier", ["!tache prendre : « premier » n'est pas un numéro (ex. 3)."]),
    ("tache faite", "!tache faite", ["!tache faite : il manque : n."]),
    ("tache reporter", "!tache reporter 1", ["!tache reporter : il manque : echeance."]),
    ("tache confier", "!tache confier 1 docteur", ["« docteur » n'est pas un compte Matrix"]),
    ("tache annuler", "!tache annuler un", ["« un » n'est pas un numéro"]),
    ("tache historique", "!tache historique", ["!tache historique : il manque : n."]),
    ("taches", "!taches 1", ["!taches : trop d'arguments."]),
    ("ppcs voir", "!ppcs voir tout", ["!ppcs voir : trop d'arguments."]),
    ("ppcs objectif", "!ppcs objectif", ["!ppcs objectif : il manque : texte."]),
    ("ppcs atteint", "!ppcs atteint premier", ["!ppcs atteint : « premier » n'est pas un numéro (ex. 3)."]),
    ("ppcs abandonner", "!ppcs abandonner", ["!ppcs abandonner : il manque : n."]),
    ("ppcs referent", "!ppcs referent docteur", ["« docteur » n'est pas un compte Matrix"]),
    ("ppcs mots", "!ppcs mots", ["!ppcs mots : il manque : texte."]),
    ("protocole liste", "!protocole liste tous", ["!protocole liste : trop d'arguments."]),
    ("rcp planifier", "!rcp planifier", ["!rcp planifier : il manque : quand."]),
    ("rcp liste", "!rcp liste toutes", ["!rcp liste : trop d'arguments."]),
    ("rcp ordre", "!rcp ordre", ["!rcp ordre : il manque : code."]),
    ("rcp annuler", "!rcp annuler", ["!rcp annuler : il manque : code."]),
    ("rcp deplacer", "!rcp deplacer R-22222", ["!rcp deplacer : il manque : quand."]),
    ("rcp inscrire", "!rcp inscrire", ["!rcp inscrire : il manque : question."]),
    ("rcp participants", "!rcp participants", ["!rcp participants : il manque : code."]),
    ("rcp ouvrir", "!rcp ouvrir", ["!rcp ouvrir : il manque : code."]),
    ("rcp presents", "!rcp presents", ["!rcp presents : il manque : qui."]),
    ("rcp decision", "!rcp decision P-22222", ["!rcp decision : il manque : texte."]),
    ("rcp clore", "!rcp clore R-22222 R-33333", ["!rcp clore : trop d'arguments."]),
    ("protocole appliquer", "!protocole appliquer", ["!protocole appliquer : il manque : nom."]),
    ("annuaire chercher", "!annuaire", ["!annuaire chercher : il manque : recherche."]),
    ("annuaire suite", "!annuaire suite 2", ["!annuaire suite : trop d'arguments."]),
]


@table("parse", "pair, line, expected", BAD_ARGUMENTS)
async def test_a_bad_argument_is_refused_in_french_with_the_usage(world, busy_room, pair, line, expected):
    declared = REGISTRY.parse(line).room
    here = busy_room if {"pathway", "any"} & set(declared) else await world.coordination_room()
    before, traced = world.moves(), await world.traced()
    roster = await world.s.roster.members()
    reply = await world.say(COORD, line, here)
    for fragment in expected:
        assert fragment in reply.text, reply.text
    assert re.search(r"[Uu]tilisation : " + re.escape(usage(pair)), reply.text), reply.text
    assert world.moves() == before and await world.traced() == traced, "the handler did not act"
    assert await world.s.roster.members() == roster


def test_usage_lines_name_every_argument():
    assert usage("parcours resume") == "!parcours resume <champ> <texte…>"
    assert usage("doc envoyer") == "!doc envoyer <n> <adresse> [message…]"
    assert usage("mss router") == "!mss router <n> <parcours>"
    assert usage("aide") == "!aide [commande] [sous-commande]"


async def test_a_bad_argument_from_someone_it_is_not_for_is_refused_for_the_audience_first(world):
    reply = await world.say(GP, "!equipe ajouter kine")
    assert reply.text == "!equipe ajouter est réservée à la coordination de la structure."


# -- (b) audience: whom a sub-command is not for is refused, and nothing moves ---------------------------------------

REFUSED = [
    ("equipe liste", OUTSIDER, "!equipe", Audience.STAFF),
    ("equipe historique", OUTSIDER, "!equipe historique", Audience.STAFF),
    ("equipe ajouter", GP, "!equipe ajouter @kine:hs kiné", Audience.COORDINATOR),
    ("equipe ajouter", SOCIAL, "!equipe ajouter @kine:hs kiné", Audience.COORDINATOR),
    ("equipe retirer", GP, f"!equipe retirer {NURSE}", Audience.COORDINATOR),
    ("parcours liste", OUTSIDER, "!parcours", Audience.STAFF),
    ("parcours ouvrir", GP, f"{OPEN.replace('insuffisance-cardiaque', 'diabete')} --equipe medecin",
     Audience.COORDINATOR),
    ("parcours ouvrir", OUTSIDER, f"{OPEN.replace('insuffisance-cardiaque', 'diabete')} --equipe medecin",
     Audience.STAFF),   # someone outside the structure is told the command's audience, not the sub-command's
    ("parcours info", OUTSIDER, "!parcours info", Audience.STAFF),
    ("parcours resume", OUTSIDER, "!parcours resume problemes chute", Audience.STAFF),
    ("parcours clore", GP, "!parcours clore fin de prise en charge", Audience.COORDINATOR),
    ("parcours rouvrir", GP, "!parcours rouvrir", Audience.COORDINATOR),
    ("parcours inviter", OUTSIDER, f"!parcours inviter {OUTSIDER}", Audience.STAFF),
    ("parcours types", OUTSIDER, "!parcours types", Audience.STAFF),
    ("parcours export", OUTSIDER, "!parcours export P-7K3Q9", Audience.STAFF),
    ("trace", GP, "!trace", Audience.COORDINATOR),
    ("consentement enregistrer", OUTSIDER, f"!consentement enregistrer {OUTSIDER} écrit", Audience.STAFF),
    ("consentement retirer", OUTSIDER, f"!consentement retirer {OUTSIDER}", Audience.STAFF),
    ("opposition enregistrer", OUTSIDER, "!opposition infirmier", Audience.STAFF),
    ("opposition lever", OUTSIDER, "!opposition lever infirmier", Audience.STAFF),
    ("consentements", OUTSIDER, "!consentements", Audience.STAFF),
    ("mss quarantaine", GP, "!mss", Audience.COORDINATOR),
    ("mss router", GP, "!mss router 1 P-7K3Q9", Audience.COORDINATOR),
    ("mss rejeter", GP, "!mss rejeter 1", Audience.COORDINATOR),
    ("mss ecrire", OUTSIDER, f"!mss ecrire {CARDIO} bonjour", Audience.STAFF),
    ("doc type", OUTSIDER, "!doc type 1 biologie", Audience.STAFF),
    ("doc envoyer", OUTSIDER, f"!doc envoyer 1 {CARDIO}", Audience.STAFF),
    ("tache nouvelle", OUTSIDER, "!tache Appeler", Audience.STAFF),
    ("tache prendre", OUTSIDER, "!tache prendre 1", Audience.STAFF),
    ("tache faite", OUTSIDER, "!tache faite 1", Audience.STAFF),
    ("tache reporter", OUTSIDER, "!tache reporter 1 demain", Audience.STAFF),
    ("tache confier", OUTSIDER, f"!tache confier 1 {GP}", Audience.STAFF),
    ("tache annuler", OUTSIDER, "!tache annuler 1", Audience.STAFF),
    ("tache historique", OUTSIDER, "!tache historique 1", Audience.STAFF),
    ("taches", OUTSIDER, "!taches", Audience.STAFF),
    ("ppcs voir", OUTSIDER, "!ppcs", Audience.STAFF),
    ("ppcs objectif", OUTSIDER, "!ppcs objectif Rester à domicile", Audience.STAFF),
    ("ppcs atteint", OUTSIDER, "!ppcs atteint 1", Audience.STAFF),
    ("ppcs abandonner", OUTSIDER, "!ppcs abandonner 1", Audience.STAFF),
    ("ppcs referent", OUTSIDER, f"!ppcs referent {GP}", Audience.STAFF),
    ("ppcs mots", OUTSIDER, "!ppcs mots Rester chez moi", Audience.STAFF),
    ("protocole liste", OUTSIDER, "!protocoles", Audience.STAFF),
    ("rcp planifier", OUTSIDER, "!rcp planifier jeudi 12h", Audience.STAFF),
    ("rcp liste", OUTSIDER, "!rcp", Audience.STAFF),
    ("rcp ordre", OUTSIDER, "!rcp ordre R-22222", Audience.STAFF),
    ("rcp annuler", OUTSIDER, "!rcp annuler R-22222", Audience.STAFF),
    ("rcp deplacer", OUTSIDER, "!rcp deplacer R-22222 jeudi 12h", Audience.STAFF),
    ("rcp inscrire", OUTSIDER, "!rcp inscrire Adapter le traitement ?", Audience.STAFF),
    ("rcp participants", OUTSIDER, f"!rcp participants R-22222 {GP}", Audience.STAFF),
    ("rcp ouvrir", OUTSIDER, "!rcp ouvrir R-22222", Audience.STAFF),
    ("rcp presents", OUTSIDER, f"!rcp presents {GP}", Audience.STAFF),
    ("rcp decision", OUTSIDER, "!rcp decision P-22222 Bilan", Audience.STAFF),
    ("rcp clore", OUTSIDER, "!rcp clore", Audience.STAFF),
    ("protocole appliquer", OUTSIDER, "!protocole appliquer insuffisance-cardiaque", Audience.STAFF),
    ("annuaire chercher", OUTSIDER, "!annuaire kiné Lille", Audience.STAFF),
    ("annuaire suite", OUTSIDER, "!annuaire suite", Audience.STAFF),
]


@table("audience", "pair, sender, line, who", REFUSED)
async def test_whom_a_sub_command_is_not_for_is_refused_and_nothing_moves(world, busy_room, pair, sender, line, who):
    before, traced = world.moves(), await world.traced()
    reply = await world.say(sender, line, busy_room)
    assert reply.text == f"!{pair} est réservée à {who.value}."
    assert world.moves() == before and await world.traced() == traced
    assert (await world.s.mail.quarantined_one(1)).state == "waiting"


ADMITTED = [
    ("aide", OUTSIDER, "!aide", "Commandes de Liaison"),
    ("docs", OUTSIDER, "!docs", "Documents du parcours"),
    ("doc voir", OUTSIDER, "!doc 1", "Document n° 1 : cr-cardio.pdf"),
]


@table("audience", "pair, sender, line, expected", ADMITTED)
async def test_a_command_for_everyone_answers_someone_outside_the_structure(world, busy_room, pair, sender, line,
                                                                            expected):
    assert REGISTRY.parse(line).who is Audience.EVERYONE
    reply = await world.say(sender, line, busy_room)
    assert expected in reply.text and "réservée" not in reply.text, reply.text


async def test_staff_named_in_the_settings_is_staff_but_not_the_coordination(world):
    listing = await world.say(OUTSIDER, "!equipe", staff=(OUTSIDER,))
    assert listing.text.startswith("Équipe de la structure (4) :")
    refused = await world.say(OUTSIDER, "!equipe ajouter @kine:hs kiné", staff=(OUTSIDER,))
    assert refused.text == "!equipe ajouter est réservée à la coordination de la structure."


@pytest.mark.parametrize("cmd", [c for c in REGISTRY.commands], ids=lambda c: c.name)
async def test_patient_data_is_never_shown_or_taken_in_a_room_that_is_not_encrypted(world, cmd):
    line = f"!{cmd.name}" + (f" {cmd.subs[0].name}" if cmd.subs else "")
    clear = world.m.add_room(members=(COORD,), encrypted=False)
    reply = await world.say(COORD, line, clear, encrypted=False)
    refused = reply.text.startswith(f"!{cmd.name} n'est pas disponible dans ce salon : il n'est pas chiffré")
    assert refused is cmd.patient_data, reply.text


# -- (c) !aide ----------------------------------------------------------------------------------------------------

@covers("aide")
async def test_help_lists_what_each_person_may_use_and_details_a_sub_command(world):
    coordination = await world.say(COORD, "!aide")
    for name in ("!aide", "!equipe", "!parcours", "!trace", "!consentement", "!mss", "!docs", "!doc"):
        assert f"• {name}" in coordination.text, name
    assert "<code>!aide" in coordination.html
    gp = await world.say(GP, "!help")
    assert "• !parcours" in gp.text and "• !trace" not in gp.text
    outsider = await world.say(OUTSIDER, "!aide")
    assert "• !parcours" not in outsider.text and "• !equipe" not in outsider.text and "• !docs" in outsider.text

    detail = await world.say(COORD, "!aide parcours ouvrir")
    assert detail.text.startswith(usage("parcours ouvrir"))
    assert "Réservée à : la coordination de la structure." in detail.text and "<ins> : l'INS du patient" in detail.text
    hidden = await world.say(GP, "!aide pathway open")
    assert hidden.text == ("Pas de sous-commande « open » de !parcours. Possibles : liste, info, resume, inviter, "
                           "export, types.")
    assert (await world.say(GP, "!aide trace")).text == "Pas de commande « trace ». Tapez !aide pour la liste."


# -- (c) !equipe --------------------------------------------------------------------------------------------------

@covers("equipe liste")
async def test_team_list_shows_each_member_with_profession_and_category(world, worlds):
    reply = await world.say(GP, "!equipe")
    assert reply.text.startswith("Équipe de la structure (4) :")
    assert "Claire Morel · Coordinatrice de parcours · coordination · autre · @coord:hs" in reply.text
    assert "Nadia Haddad · Assistante de service social" in reply.text and "<table>" in reply.html
    empty = await worlds(roster=[])
    nobody = await empty.say(COORD, "!team list", staff=(COORD,))
    assert nobody.text == "L'équipe est vide. La coordination ajoute des membres avec !equipe ajouter."


@covers("equipe historique")
async def test_team_history_shows_the_latest_change_first_with_its_author(world):
    await world.say(COORD, "!equipe ajouter @kine:hs kiné")
    reply = await world.say(GP, "!equipe historique")
    lines = reply.text.splitlines()
    assert lines[0] == "Dernières modifications de l'équipe :"
    assert lines[1] == "@kine:hs : ajout (masseur-kinesitherapeute) par @coord:hs"
    assert f"{COORD} : ajout (coordinateur) par configuration" in lines


@covers("equipe ajouter")
async def test_team_add_takes_a_profession_of_several_words_an_id_and_the_coordination(world):
    reply = await world.say(COORD, "!equipe ajouter @x:hs assistante sociale")
    assert reply.text == "Xavier Social (@x:hs), Assistante de service social : ajouté(e) à l'équipe."
    member = await world.s.roster.get("@x:hs")
    assert member.profession.key == "assistant-service-social" and not member.coordinator
    again = await world.say(COORD, "!equipe ajouter @x:hs assistante sociale")
    assert again.text.endswith(": déjà dans l'équipe, sans changement.")

    rpps = "1000000000" + str(luhn_check_digit("1000000000"))
    nurse = await world.say(COORD, f"!equipe ajouter @kine:hs infirmier en pratique avancée {rpps} coordination")
    assert nurse.text == "Karim Kiné (@kine:hs), Infirmier, coordination : ajouté(e) à l'équipe."
    member = await world.s.roster.get("@kine:hs")
    assert member.coordinator and member.professional_id == rpps

    bad_id = await world.say(COORD, f"!equipe ajouter {OUTSIDER} kiné 12345")
    assert bad_id.text.startswith("Numéro RPPS/ADELI refusé : ") and await world.s.roster.get(OUTSIDER) is None
    unknown = await world.say(COORD, "!equipe ajouter @personne:hs infirmier")
    assert unknown.text == "Le compte @personne:hs n'existe pas sur le serveur : vérifiez l'identifiant."
    assert await world.s.roster.get("@personne:hs") is None

    external = await world.say(COORD, "!equipe ajouter Dr.Lefebvre@CHU.mssante.fr médecin structure:CHU de Lille")
    assert external.text.startswith(f"Correspondant MSSanté {CARDIO} : Médecin, CHU de Lille.")
    contact = await world.s.contacts.get(CARDIO)
    assert (contact.profession.key, contact.structure) == ("medecin", "CHU de Lille")


@covers("equipe retirer")
async def test_team_remove_takes_a_member_or_a_correspondent_out(world):
    reply = await world.say(COORD, f"!equipe retirer {NURSE}")
    assert reply.text == f"{NURSE} ne fait plus partie de l'équipe (modification tracée)."
    assert await world.s.roster.get(NURSE) is None
    assert (await world.say(COORD, f"!equipe retirer {NURSE}")).text == f"{NURSE} ne fait pas partie de l'équipe."
    await world.say(COORD, f"!equipe ajouter {CARDIO} médecin")
    gone = await world.say(COORD, f"!equipe retirer {CARDIO.upper()}")
    assert gone.text == f"{CARDIO} n'est plus un correspondant connu de la structure."
    assert await world.s.contacts.get(CARDIO) is None


# -- (c) !parcours ------------------------------------------------------------------------------------------------

@covers("parcours ouvrir")
async def test_opening_creates_the_encrypted_room_and_the_space_and_invites_the_team(world):
    reply = await world.say(COORD, f"{OPEN} --equipe medecin,{OUTSIDER}")
    found = re.fullmatch(r"Parcours Insuffisance cardiaque ouvert \((P-[A-Z0-9]+)\) : https://matrix\.to/#/(\S+) — "
                         r"2 invitation\(s\), 1 refusée\(s\) : raisons dans le salon\.\n"
                         r"Protocole proposé pour ce type de parcours : Insuffisance cardiaque — suivi à domicile — "
                         r"!protocole appliquer insuffisance-cardiaque \(dans le salon du parcours\)\.", reply.text)
    assert found, reply.text
    code, room_id = found.groups()
    room, space = world.m.room(room_id), world.m.room(world.m.created[1]["room_id"])
    assert room.encrypted and room.state[("m.room.encryption", "")] == {"algorithm": "m.megolm.v1.aes-sha2"}
    assert room.state[("m.room.history_visibility", "")] == {"history_visibility": "invited"}
    assert room.name == f"M. D. · {code}", "the code and the initials: no year, no type (a diagnosis) in clear"
    for secret in ("Durand", "DURAND", "Marcel", INS, "1948", "nsuffisance"):
        assert secret not in room.name and secret not in room.topic and secret not in space.name
    assert room.membership == {BOT: "join", COORD: "invite", GP: "invite", BRIDGE: "invite"}, "the outsider is not"
    assert room.state[("m.room.power_levels", "")]["users"] == {COORD: 50, BRIDGE: 10}
    assert room.state[("m.room.power_levels", "")]["invite"] == 10, "the coordination and the bridge invite"
    assert space.space and ("m.space.child", room_id) in space.state
    assert room.state[("m.space.parent", space.room_id)]["canonical"] is True
    assert space.membership == {BOT: "join"}, "one invitation per pathway: the room's, not the space's as well"
    assert space.state[("m.room.join_rules", "")] == {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": room_id}]}, "joined from the room"
    pinned = room.state[("m.room.pinned_events", "")]["pinned"]
    summary = next(s for s in world.m.sent if s.event_id == pinned[0])
    assert "Patient : DURAND Marcel, né le 12/05/1948, sexe masculin" in summary.body and INS in summary.body
    who = next(b for b in world.m.bodies(room_id) if b.startswith("Invité(e)s"))
    assert f"Non invité(e) : {DENIS} — " in who and "outside.no_consent" in who
    pathway = await world.pathway(room_id)
    assert (pathway.code, pathway.status, pathway.opened_by) == (code, "open", COORD)

    again = await world.say(COORD, OPEN)
    assert "déjà ouvert" in again.text and room_of(again.text) == room_id and len(world.m.created) == 2
    conflict = await world.say(COORD, OPEN.replace("Marcel", "Michel"))
    assert "les prénoms" in conflict.text and "rien n'a été créé" in conflict.text


async def test_opening_by_named_fields_in_any_order(world):
    reply = await world.say(COORD, f"!parcours ouvrir --sexe M --type insuffisance cardiaque --ins {INS} "
                                   "--naissance 1948-05-12 --nom Durand --prenom Marcel Louis --equipe medecin")
    assert "Parcours Insuffisance cardiaque ouvert" in reply.text, reply.text
    patient = await world.s.pathways.patient_by_ins(INS)
    assert (patient.first_names, patient.birth_date) == ("Marcel Louis", date(1948, 5, 12))


async def test_each_pathway_of_a_patient_invites_each_person_once_and_its_space_admits_their_rooms(world):
    first = await world.open()
    second = room_of((await world.say(COORD, f"{OPEN.replace('insuffisance-cardiaque', 'diabete')} "
                                             "--equipe medecin")).text)
    (space,) = [c["room_id"] for c in world.m.created if c["space"]]
    assert len(world.m.created) == 3, "one space for the patient, one room per pathway"
    assert sorted(r for r, u in world.m.invited if u == COORD) == sorted([first, second]), "one per pathway"
    assert [a["room_id"] for a in world.m.state_now(space, "m.room.join_rules")["allow"]] == [first, second]


async def test_an_opening_the_homeserver_interrupts_resumes_without_a_duplicate(world):
    world.m.fail_next("create_room", "M_LIMIT_EXCEEDED")
    failed = await world.say(COORD, f"{OPEN} --equipe medecin")
    assert failed.text.startswith("Le serveur Matrix n'a pas répondu comme prévu (réf. ")
    assert [c["space"] for c in world.m.created] == [True], "the space, made while the room was, is kept"
    done = await world.say(COORD, f"{OPEN} --equipe medecin")
    assert "ouvert" in done.text and [c["space"] for c in world.m.created] == [True, False], "no second space"
    space, room = (c["room_id"] for c in world.m.created)
    assert ("m.space.child", room) in world.m.rooms[space].state and ("m.space.parent", space) in world.m.rooms[room].state
    assert len(await world.s.pathways.visible_to(COORD, everything=True)) == 1


@covers("parcours liste")
async def test_pathway_list_shows_the_pathways_of_the_person(world, room):
    """Issue 24, item 3: the list names patients' pathways (a type is often a diagnosis): it answers where only who
    asked reads it (a direct conversation) or only the coordination does, each pathway decided for that room."""
    pathway = await world.pathway(room)
    mine = await world.say(GP, "!parcours", world.direct(GP))
    assert mine.text == f"Parcours (1) :\n{pathway.code} · Insuffisance cardiaque · ouvert · https://matrix.to/#/{room}"
    assert "<table>" in mine.html
    shown = [e for e in await world.s.trace.entries() if e.action == "montrer"]
    assert [(e.subject, e.pathway_id, e.rule) for e in shown[-1:]] == [(GP, pathway.id, "room.direct")]
    assert (await world.say(NURSE, "!parcours liste", world.direct(NURSE))).text == \
        "Aucun parcours ouvert vous concernant."
    assert (await world.say(COORD, "!pathway list", await world.coordination_room())).text.startswith("Parcours (1) :")
    for elsewhere in (room, world.desk):   # the patient's own room, a room of three: the list is not for them
        assert (await world.say(COORD, "!parcours liste", elsewhere)).text == ROOMS["direct"]


async def test_pathway_list_hides_a_pathway_the_policy_no_longer_shows_its_reader(world, room):
    await world.say(COORD, f"!opposition enregistrer {GP}", room)
    reply = await world.say(GP, "!parcours liste", world.direct(GP))
    assert reply.text.startswith("Aucun parcours ouvert vous concernant."), reply.text
    assert (await world.s.trace.entries())[-1].rule == "objection.person"


@covers("parcours info")
async def test_pathway_info_shows_patient_team_and_summary_in_its_room_only(world, room):
    pathway = await world.pathway(room)
    reply = await world.say(GP, "!parcours info", room)
    lines = reply.text.splitlines()
    assert lines[0] == f"Parcours Insuffisance cardiaque ({pathway.code}) — ouvert"
    assert lines[1] == "Patient : DURAND Marcel, né le 12/05/1948"
    assert "• Dr Paul Martin (Médecin) — invité(e)" in lines and "Traitements : —" in lines
    assert (await world.say(GP, "!parcours info")).text == "Tapez cette commande dans le salon du parcours concerné."


@covers("parcours resume")
async def test_summary_keeps_the_text_byte_for_byte_and_pins_the_new_summary(world, room):
    pathway = await world.pathway(room)
    typed = "« Kardégic » 75 mg le matin, l'aspirine \"si douleur\"\nFurosémide 40 mg — pas d'AINS !"
    reply = await world.say(GP, f"!parcours resume Traitements {typed}", room)
    assert reply.text == "Résumé mis à jour : Traitements (version 1), nouveau résumé épinglé."
    assert (await world.s.pathways.summary(pathway.id))["traitements"] == (typed, 1)
    pinned = world.m.state_now(room, "m.room.pinned_events")["pinned"]
    posted = next(s for s in world.m.sent if s.event_id == pinned[0])
    assert f"Traitements : {typed}\n" in posted.body
    second = await world.say(GP, "!parcours summary traitements Furosémide 20 mg", room)
    assert "(version 2)" in second.text
    assert world.m.state_now(room, "m.room.pinned_events")["pinned"] != pinned, "the new summary is pinned"
    elsewhere = await world.say(GP, "!parcours resume problemes chute", world.desk)
    assert elsewhere.text == "Tapez cette commande dans le salon du parcours concerné."


@covers("parcours clore")
async def test_closing_makes_the_room_read_only_and_keeps_it_for_the_retention(world, room):
    reply = await world.say(COORD, "!parcours clore décès à domicile", room)
    assert reply.text.startswith("Parcours clos. Le salon passe en lecture seule pour les membres ; il est conservé "
                                 "jusqu'au ")
    assert world.m.state_now(room, "m.room.power_levels")["events_default"] == 50
    pathway = await world.pathway(room)
    assert (pathway.status, pathway.closed_by, pathway.close_reason) == ("closed", COORD, "décès à domicile")
    assert 729 < (pathway.retention_until - pathway.closed_at) / 86_400_000 <= 730
    assert (await world.say(COORD, "!parcours fermer encore", room)).text == "Ce parcours est déjà clos."
    summary = await world.say(GP, "!parcours resume problemes chute", room)
    assert summary.text == "Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir)."
    desk = await world.say(COORD, "!parcours clore fin", world.desk)
    assert desk.text == "Tapez cette commande dans le salon du parcours concerné."


async def test_a_closing_the_homeserver_refuses_leaves_the_pathway_open(world, room):
    world.m.fail_next("set_state")
    reply = await world.say(COORD, "!parcours clore fin de prise en charge", room)
    assert "Le serveur Matrix n'a pas répondu comme prévu" in reply.text
    assert (await world.pathway(room)).status == "open"


@covers("parcours rouvrir")
async def test_reopening_gives_the_members_their_voice_back(world, room):
    assert (await world.say(COORD, "!parcours rouvrir", room)).text == "Ce parcours n'est pas clos."
    await world.say(COORD, "!parcours clore fin", room)
    reply = await world.say(COORD, "!parcours rouvrir", room)
    assert reply.text == "Parcours rouvert : chacun peut de nouveau écrire dans le salon."
    assert world.m.state_now(room, "m.room.power_levels")["events_default"] == 0
    pathway = await world.pathway(room)
    assert (pathway.status, pathway.closed_at, pathway.retention_until) == ("open", None, None)
    await world.say(COORD, "!parcours clore fin", room)
    await world.s.pathways.update(pathway.id, retention_until=1)
    late = await world.say(COORD, "!parcours reopen", room)
    assert late.text == "Le délai de conservation est dépassé : ce parcours ne peut plus être rouvert."


@covers("parcours inviter")
async def test_inviting_needs_the_team_or_a_consent_and_a_non_health_role_goes_to_the_circle(world, room):
    refused = await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    assert refused.text.startswith(f"Invitation refusée : {OUTSIDER} est hors de l'équipe de soins")
    assert "(règle outside.no_consent, CSP L.1110-4 III ; trace " in refused.text
    assert (room, OUTSIDER) not in world.m.invited
    await world.consent(room, OUTSIDER)
    invited = await world.say(GP, f"!parcours inviter {OUTSIDER}", room)
    assert invited.text.startswith("Denis Hors (hors de l'équipe de la structure) est invité(e) au salon clinique — ")
    assert "règle outside.consent" in invited.text and world.m.invited[-1] == (room, OUTSIDER)
    assert (OUTSIDER, "invited", "outside.consent") in await world.s.pathways.members((await world.pathway(room)).id)

    await world.consent(room, SOCIAL, "écrit catégories:social")
    circle = await world.say(COORD, f"!parcours inviter {SOCIAL}", room)
    assert "est invité(e) au cercle élargi (administratif, social)" in circle.text and "non_health.allowed" in circle.text
    circle_room = room_of(circle.text)
    assert circle_room != room and world.m.room(circle_room).membership[SOCIAL] == "invite"
    assert SOCIAL not in world.m.room(room).membership, "the clinical room stays health professionals only"
    made = next(c for c in world.m.created if c["room_id"] == circle_room)
    pathway = await world.pathway(room)
    assert made["name"] == f"M. D. · {pathway.code} · cercle élargi", "no pathway type, a diagnosis, in clear"
    hello = next(b for b in world.m.bodies(circle_room) if "CERCLE ÉLARGI" in b)
    assert "nsuffisance" not in hello and pathway.code in hello

    await world.consent(room, "@fantome:hs")
    ghost = await world.say(COORD, "!parcours inviter @fantome:hs", room)
    assert ghost.text == "Le compte @fantome:hs n'existe pas : vérifiez l'identifiant."
    assert (room, "@fantome:hs") not in world.m.invited


@covers("parcours types")
async def test_pathway_types_lists_every_configured_type(world):
    reply = await world.say(NURSE, "!parcours types")
    assert reply.text == "Types de parcours : " + ", ".join(f"{label} ({key})" for key, label in PATHWAY_TYPES)
    assert "Insuffisance cardiaque (insuffisance-cardiaque)" in reply.text


@covers("parcours export")
async def test_pathway_export_posts_the_fhir_bundle_in_the_coordination_room(world):
    room = await world.open()
    code = (await world.pathway(room)).code
    coordination = await world.coordination_room()
    reply = await world.say(COORD, f"!parcours export {code}", coordination)
    assert reply.text.startswith(f"Parcours {code} exporté en FHIR R4"), reply.text
    (where, name, mime, data), = world.m.files
    assert (where, name, mime) == (coordination, f"parcours-{code}.fhir.json", "application/fhir+json")
    assert json.loads(data)["resourceType"] == "Bundle"
    assert (await world.say(COORD, f"!parcours export {code}", room)).text == ROOMS["coordination"]


# -- (c) !trace ---------------------------------------------------------------------------------------------------

@covers("trace")
async def test_trace_lists_every_decision_with_its_basis_and_joins_the_json(world):
    room = await world.open(team=f"medecin,{OUTSIDER}")
    pathway = await world.pathway(room)
    reply = await world.say(COORD, "!trace", room)
    assert reply.text.startswith("Trace des partages pour ce patient (")
    assert "team.health, CSP L.1110-4 II, L.1110-12" in reply.text and "outside.no_consent" in reply.text
    assert reply.text.endswith(f"Chaînage vérifié ({len(await world.s.trace.entries())} entrées).")
    (where, name, mime, data), = world.m.files
    assert (where, name, mime) == (room, f"trace-{pathway.code}.json", "application/json")
    export = json.loads(data)
    assert export["integrity_ok"] and export["patient_id"] == pathway.patient_id
    assert {e["rule"] for e in export["entries"]} >= {"team.health", "outside.no_consent", "trace.export"}
    assert (await world.say(COORD, "!trace")).text == "Tapez cette commande dans le salon du parcours concerné."


# -- (c) !consentement, !opposition, !consentements -----------------------------------------------------------------

@covers("consentement enregistrer")
async def test_recording_a_consent_notes_the_means_and_the_information_given(world, room):
    reply = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit jusqu'au 31/12/2099", room)
    assert reply.text.startswith(f"Consentement écrit enregistré pour {DENIS} jusqu'au 31/12/2099 ; information "
                                 "du patient notée (R.1110-3 ; trace ")
    consents, _ = await world.s.consents.facts((await world.pathway(room)).patient_id)
    assert [(c.scope_kind, c.scope, c.means) for c in consents] == [("person", OUTSIDER, "écrit")]
    gp = await world.say(GP, f"!consentement enregistrer {OUTSIDER} oral", room)
    assert gp.text == "Enregistrer un consentement est réservé à la coordination (réglage consent_recorders)."
    past = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit jusqu'au 01/01/2020", room)
    assert "déjà passée" in past.text
    useless = await world.say(COORD, f"!consentement enregistrer {GP} oral", room)
    assert "aucun consentement n'est nécessaire" in useless.text and "team.health" in useless.text
    means = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} téléphone", room)
    assert means.text.startswith("Précisez le moyen du recueil : oral, écrit ou électronique.")
    category = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit catégories:soins,loisirs", room)
    assert category.text == "Catégorie inconnue : loisirs (possibles : soins, social, administratif)."
    assert len((await world.s.consents.facts((await world.pathway(room)).patient_id))[0]) == 1, "nothing more"
    desk = await world.say(COORD, f"!consentement enregistrer {OUTSIDER} écrit")
    assert desk.text == "Tapez cette commande dans le salon du parcours concerné."


async def test_the_policy_decides_who_records_and_whether_oral_consent_counts(worlds):
    world = await worlds(knobs=Knobs(consent_recorders="equipe", oral_consent_allowed=False))
    room = await world.open()
    oral = await world.say(GP, f"!consentement enregistrer {OUTSIDER} oral", room)
    assert oral.text.startswith("Le consentement oral n'est pas accepté par la politique de la structure")
    written = await world.say(GP, f"!consentement enregistrer {OUTSIDER} électronique", room)
    assert written.text.startswith(f"Consentement électronique enregistré pour {DENIS}")


@covers("consentement retirer")
async def test_withdrawing_a_consent_removes_its_holder_at_once(world, room):
    nothing = await world.say(COORD, f"!consentement retirer {OUTSIDER}", room)
    assert nothing.text == f"Aucun consentement en vigueur pour {DENIS} : rien à retirer."
    await world.consent(room, OUTSIDER)
    await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    world.m.accept(room, OUTSIDER)
    reply = await world.say(COORD, f"!consentement withdraw {OUTSIDER}", room)
    assert re.fullmatch(rf"Consentement retiré pour {re.escape(DENIS)} \(trace \d+\)\. Retiré\(s\) du salon : Denis Hors \(hors de l.équipe de la structure\)\.",
                        reply.text), reply.text
    assert world.m.kicked[-1][:2] == (room, OUTSIDER) and world.m.room(room).membership[OUTSIDER] == "leave"
    assert world.m.kicked[-1][2] == "Consentement retiré (règle outside.no_consent)", "a membership is in clear"
    told = next(t for t in world.m.sent if t.room_id == room and "a été retiré(e) du salon" in t.body)
    assert told.body.startswith(f"{DENIS} a été retiré(e) du salon : ")
    assert f'<a href="https://matrix.to/#/{OUTSIDER}">Denis Hors</a>' in told.content["formatted_body"]


@covers("opposition enregistrer")
async def test_an_objection_takes_effect_at_once(world, room):
    await world.consent(room, OUTSIDER)
    await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    world.m.accept(room, OUTSIDER)
    reply = await world.say(COORD, f"!opposition {OUTSIDER}", room)
    assert reply.text.startswith(f"Opposition enregistrée pour {DENIS} : elle prend effet immédiatement (trace ")
    assert reply.text.endswith("Retiré(s) du salon : Denis Hors (hors de l'équipe de la structure).")
    assert world.m.kicked[-1] == (room, OUTSIDER, "Opposition du patient (règle objection.person)")
    assert any("objection.person" in b for b in world.m.bodies(room) if "retiré(e) du salon" in b)
    again = await world.say(COORD, f"!objection record {OUTSIDER}", room)
    assert again.text == f"Une opposition est déjà en vigueur pour {DENIS} : rien de plus n'a été enregistré."
    still = await world.say(COORD, f"!parcours inviter {OUTSIDER}", room)
    assert "objection.person" in still.text, "an objection wins over the consent"

    category = await world.say(COORD, "!opposition non-santé", room)
    assert category.text.startswith("Opposition enregistrée pour les professionnels hors santé")


@covers("opposition lever")
async def test_lifting_an_objection(world, room):
    await world.say(COORD, "!opposition infirmier", room)
    reply = await world.say(COORD, "!opposition lever infirmière", room)
    assert re.fullmatch(r"Opposition levée pour la profession infirmier \(trace \d+\)\.", reply.text), reply.text
    _, objections = await world.s.consents.facts((await world.pathway(room)).patient_id)
    assert all(o.lifted_at is not None for o in objections)
    nothing = await world.say(COORD, "!opposition lift infirmier", room)
    assert nothing.text == "Aucune opposition en vigueur pour la profession infirmier."


@covers("consentements")
async def test_consents_lists_what_is_in_force_in_the_clinical_room_only(world, room):
    assert (await world.say(GP, "!consentements", room)).text == ("En vigueur pour ce patient :\naucun consentement "
                                                                  "ni opposition")
    await world.consent(room, OUTSIDER)
    await world.say(COORD, "!opposition kiné", room)
    await world.say(COORD, "!opposition lever kiné", room)
    await world.say(COORD, "!opposition infirmier", room)
    lines = (await world.say(GP, "!consents", room)).text.splitlines()
    assert lines[1].startswith("Consentement écrit : Denis Hors (hors de l'équipe de la structure), recueilli par "
                               "Claire Morel (Coordinatrice de parcours, coordination) le "), lines
    assert OUTSIDER not in lines[1] and COORD not in lines[1], "people by name, never a bare Matrix id"
    assert lines[2].startswith("Opposition : la profession infirmier, depuis le ") and len(lines) == 3, "lifted: gone"
    await world.consent(room, SOCIAL, "écrit catégories:social")
    circle = room_of((await world.say(COORD, f"!parcours inviter {SOCIAL}", room)).text)
    assert (await world.say(SOCIAL, "!consentements", circle)).text == CIRCLE_NO_CHANGE


# -- (c) !mss -----------------------------------------------------------------------------------------------------

@covers("mss quarantaine")
async def test_quarantine_lists_the_waiting_mails(world):
    assert (await world.say(COORD, "!mss", await world.coordination_room())).text == "Aucun courriel en quarantaine."
    await world.quarantine(CARDIO)
    await world.quarantine("", "unreadable", trusted=False)
    reply = await world.say(COORD, "!mail quarantine", await world.coordination_room())
    assert reply.text.splitlines()[:3] == ["Courriels en quarantaine (2) :", f"1 · {CARDIO} · motif unknown_patient",
                                           "2 · illisible · motif unreadable"]
    assert "!mss router <n> <code du parcours>" in reply.text and "<table>" in reply.html


async def test_without_the_bridge_the_mail_commands_say_so(worlds):
    world = await worlds(bridge=False)
    assert (await world.say(COORD, "!mss")).text == NO_BRIDGE
    assert (await world.say(GP, f"!mss ecrire {CARDIO} bonjour")).text == NO_BRIDGE


@covers("mss router")
async def test_routing_a_quarantined_mail_is_decided_and_traced(world, room):
    code = (await world.pathway(room)).code
    await world.quarantine(CARDIO)
    await world.quarantine("spam@gmail.example", "untrusted", trusted=False)
    await world.quarantine("", "unreadable", trusted=False)
    reply = await world.say(COORD, f"!mss router 1 {code.lower()}", await world.coordination_room())
    assert re.fullmatch(rf"Courriel n° 1 : dépôt dans le parcours {code} en cours \(trace \d+\)\.", reply.text)
    routed = await world.s.mail.quarantined_one(1)
    assert (routed.state, routed.pathway_id, routed.decided_by) == ("routing", (await world.pathway(room)).id, COORD)
    untrusted = await world.say(COORD, f"!mss route 2 {code}", await world.coordination_room())
    assert untrusted.text.startswith("Refusé : spam@gmail.example n'appartient pas à l'espace de confiance MSSanté")
    assert "règle mail.untrusted_domain" in untrusted.text and (await world.s.mail.quarantined_one(2)).state == "waiting"
    unreadable = await world.say(COORD, f"!mss router 3 {code}", await world.coordination_room())
    assert unreadable.text == ("Le courriel n° 3 ne peut pas être déposé (motif unreadable) : écartez-le avec "
                               "!mss rejeter 3.")
    assert (await world.say(COORD, f"!mss router 1 {code}", await world.coordination_room())).text.startswith("Aucun courriel n° 1 en attente")
    assert (await world.say(COORD, "!mss router 2 P-NOPE", await world.coordination_room())).text.startswith("Aucun parcours ouvert de code « P-NOPE »")


@covers("mss rejeter")
async def test_rejecting_a_quarantined_mail_is_traced_once(world):
    await world.quarantine("spam@gmail.example", "untrusted", trusted=False)
    traced = await world.traced()
    reply = await world.say(COORD, "!mss rejeter n°1", await world.coordination_room())
    assert re.fullmatch(r"Courriel n° 1 écarté : il ne sera déposé dans aucun salon \(trace \d+\)\.", reply.text)
    assert (await world.s.mail.quarantined_one(1)).state == "rejected" and await world.traced() == traced + 1
    entry = (await world.s.trace.entries())[-1]
    assert (entry.seq, entry.rule, entry.subject, entry.actor) == (trace_no(reply.text), "quarantine.rejected",
                                                                    "spam@gmail.example", COORD)
    again = await world.say(COORD, "!mss ecarter 1", await world.coordination_room())
    assert again.text == "Aucun courriel n° 1 en attente dans la quarantaine." and await world.traced() == traced + 1


@covers("mss ecrire")
async def test_writing_to_a_correspondent_queues_the_text_verbatim(world, room):
    pathway = await world.pathway(room)
    typed = "Bonjour Dr Lefebvre,\nl'écho « de contrôle » montre une FEVG à 35 % : \"urgent\" ?\n\n  Merci"
    refused = await world.say(GP, f"!mss ecrire {CARDIO} {typed}", room)
    assert refused.text.startswith(f"Courriel non envoyé : {CARDIO} est hors de l'équipe de soins")
    assert "règle outside.no_consent" in refused.text and await world.s.mail.waiting_requests() == []
    await world.consent(room, CARDIO)
    reply = await world.say(GP, f"!mss ecrire Dr.Lefebvre@CHU.mssante.fr {typed}", room)
    assert re.fullmatch(rf"Courriel pour {CARDIO} confié au pont MSSanté \(trace \d+\) : il part de la boîte de la "
                        r"structure, et sa réponse arrivera dans le fil de ce message\.", reply.text), reply.text
    (request,) = await world.s.mail.waiting_requests()
    assert request.body == typed, "the text, byte for byte"
    assert (request.address, request.sender, request.room_id, request.pathway_id, request.document_id) == (
        CARDIO, GP, room, pathway.id, None)
    assert request.event_id == world.m.room(room).timeline[-1]["event_id"], "keyed on the command's event"
    untrusted = await world.say(GP, f"!mss ecrire {ELSEWHERE} bonjour", room)
    assert untrusted.text.startswith(f"Courriel non envoyé : {ELSEWHERE} n'appartient pas à l'espace de confiance")
    assert "(règle mail.untrusted_domain, Référentiel MSSanté (liste blanche) ; trace " in untrusted.text
    desk = await world.say(GP, f"!mss ecrire {CARDIO} bonjour")
    assert desk.text == "Tapez cette commande dans le salon du parcours concerné."
    assert len(await world.s.mail.waiting_requests()) == 1


# -- (c) !docs, !doc ----------------------------------------------------------------------------------------------

@covers("docs")
async def test_documents_are_listed_by_type_and_the_missing_antivirus_said_once(world, room):
    empty = await world.say(GP, "!docs", room)
    assert empty.text.startswith("Aucun document dans ce parcours pour l'instant.") and NO_ANTIVIRUS in empty.text
    await world.add_document(room)
    await world.add_document(room, "bilan.pdf", "biologie")
    code = (await world.pathway(room)).code
    reply = await world.say(GP, "!documents", room)
    lines = reply.text.splitlines()
    assert lines[0] == f"Documents du parcours {code} (2) :" and NO_ANTIVIRUS not in reply.text, "said once"
    assert lines[1] == "Résultat de biologie :" and lines[2].startswith("  n° 2 · bilan.pdf · Dr Paul Martin · ")
    assert "Compte rendu de consultation :" in lines and "<table>" not in reply.html, "a list reads at any width"
    assert reply.html.count("<li>") == 2 and "<li><b>n° 2</b> · bilan.pdf<br>Dr Paul Martin, " in reply.html
    assert (await world.say(GP, "!docs")).text == "Tapez cette commande dans le salon du parcours concerné."


@covers("doc voir")
async def test_a_document_is_detailed_by_its_number(world, room):
    await world.add_document(room)
    reply = await world.say(GP, "!doc 1", room)
    lines = reply.text.splitlines()
    assert lines[0] == "Document n° 1 : cr-cardio.pdf"
    assert {"Type : Compte rendu de consultation", "Auteur : Dr Paul Martin", "Fichier : PDF, 47 Kio",
            f"SHA-256 : {'ab' * 32}", "Version : version unique"} <= set(lines)
    assert (await world.say(GP, "!doc voir n°1", room)).text == reply.text
    assert (await world.say(GP, "!doc 9", room)).text == "Aucun document n° 9 dans ce parcours (!docs pour la liste)."


@covers("doc type")
async def test_a_document_type_is_changed_by_name_of_one_or_several_words(world, room):
    await world.add_document(room)
    reply = await world.say(GP, "!doc type 1 biologie", room)
    assert reply.text == "Document n° 1 : type « Résultat de biologie » (il était « Compte rendu de consultation »)."
    assert (await world.s.documents.by_number((await world.pathway(room)).id, 1)).doctype == "biologie"
    again = await world.say(GP, "!doc retype 1 compte rendu", room)
    assert again.text.startswith("Document n° 1 : type « Compte rendu de consultation »")
    unknown = await world.say(GP, "!doc type 1 astrologie", room)
    assert unknown.text.startswith("Type inconnu « astrologie ». Types : Compte rendu de consultation")


@covers("doc envoyer")
async def test_sending_a_document_is_refused_where_the_policy_forbids_it(world, room):
    await world.add_document(room)
    refused = await world.say(GP, f"!doc envoyer 1 {ELSEWHERE}", room)
    assert refused.text.startswith(f"Document non envoyé : {ELSEWHERE} n'appartient pas à l'espace de confiance "
                                   "MSSanté (liste blanche)")
    assert "(règle mail.untrusted_domain, Référentiel MSSanté (liste blanche) ; trace " in refused.text
    no_consent = await world.say(GP, f"!doc envoyer 1 {CARDIO}", room)
    assert "(règle outside.no_consent, CSP L.1110-4 III ; trace " in no_consent.text
    assert await world.s.mail.waiting_requests() == []

    await world.consent(room, CARDIO)
    note = "Merci d'avance, « cher » confrère\n\"Pr\" X"
    reply = await world.say(GP, f"!doc envoi 1 {CARDIO} {note}", room)
    assert re.fullmatch(rf"Document n° 1 \(Compte rendu de consultation\) confié au pont MSSanté pour {CARDIO}, en "
                        r"pièce jointe IHE XDM \(trace \d+\)\. La réponse arrivera dans le fil de ce message\.",
                        reply.text), reply.text
    (request,) = await world.s.mail.waiting_requests()
    document = await world.s.documents.by_number((await world.pathway(room)).id, 1)
    assert (request.body, request.document_id, request.address) == (note, document.id, CARDIO)

    await world.say(COORD, "!parcours clore fin", room)
    closed = await world.say(GP, f"!doc envoyer 1 {CARDIO}", room)
    assert closed.text == "Ce parcours est clos : rouvrez-le d'abord (!parcours rouvrir)."
    assert len(await world.s.mail.waiting_requests()) == 1, "nothing more sent"


async def test_without_the_bridge_no_document_is_sent(worlds):
    world = await worlds(bridge=False)
    room = await world.open()
    await world.add_document(room)
    reply = await world.say(GP, f"!doc envoyer 1 {CARDIO}", room)
    assert reply.text == "Le pont MSSanté n'est pas configuré pour cette structure : aucun envoi possible."


# -- the fake itself -----------------------------------------------------------------------------------------------

def test_the_fake_has_every_call_of_the_real_client_with_the_same_signature():
    for name, real in inspect.getmembers(Matrix):
        if name.startswith("_"):
            continue
        fake = getattr(FakeMatrix, name, None)
        assert fake is not None, f"FakeMatrix lacks {name}"
        if isinstance(real, property):
            assert isinstance(fake, property), name
            continue
        assert inspect.signature(fake) == inspect.signature(real), name
        assert inspect.iscoroutinefunction(fake) == inspect.iscoroutinefunction(real), name


async def test_the_fake_homeserver_behaves_as_the_bot_relies_on():
    m = FakeMatrix()
    m.add_account("@a:hs", None)
    assert await m.display_name("@a:hs") == "@a:hs" and await m.display_name("@nobody:hs") is None
    room = await m.create_room(name="n", topic="t", initial_state=[], power_levels=None, invite=["@a:hs"])
    assert room == "!r1:hs" and await m.members(room) == {BOT, "@a:hs"} and await m.joined(room) == {BOT}
    first = await m.send(room, {"body": "x"}, "txn")
    assert await m.send(room, {"body": "x"}, "txn") == first and m.bodies(room) == ["x"], "a txn id posts once"
    await m.kick(room, "@a:hs", "parti")
    assert await m.members(room) == {BOT} and m.rooms_with("@a:hs") == []
    with pytest.raises(MatrixError) as refused:
        await m.send("!elsewhere:hs", {"body": "x"}, "t2")
    assert refused.value.errcode == "M_FORBIDDEN", "the bot is not in that room"


# -- every (command, sub-command) of the registry is covered above --------------------------------------------------

# -- what the first users ran into ------------------------------------------------------------------------------

@covers("opposition enregistrer")
async def test_an_objection_by_profession_never_removes_the_coordination_who_typed_it(world, room):
    reply = await world.say(COORD, "!opposition coordinatrice", room)
    assert "prend effet immédiatement" in reply.text and "Retiré(s)" not in reply.text
    assert COORD not in [u for _, u, _ in world.m.kicked], "the coordination can still lift it"
    assert "Opposition levée" in (await world.say(COORD, "!opposition lever coordinatrice", room)).text


@covers("opposition enregistrer")
@covers("consentement enregistrer")
async def test_a_profession_of_several_words_for_an_objection_and_a_consent(world, room):
    objected = await world.say(COORD, "!opposition assistante sociale", room)
    assert objected.text.startswith("Opposition enregistrée pour la profession assistant de service social"), \
        objected.text
    consented = await world.say(COORD, "!consentement enregistrer masseur kinésithérapeute écrit", room)
    assert consented.text.startswith("Consentement écrit enregistré pour la profession masseur-kinésithérapeute")
    assert "!parcours inviter" not in consented.text, "one invites a person, not a profession"
    structure = await world.say(COORD, "!consentement enregistrer structure:Hôpital de Jour oral", room)
    assert "pour la structure Hôpital de Jour" in structure.text, structure.text


@covers("parcours inviter")
async def test_inviting_an_account_that_does_not_exist_decides_and_traces_nothing(world, room):
    await world.consent(room, "@fantome:hs")
    before = await world.traced()
    reply = await world.say(COORD, "!parcours inviter @fantome:hs", room)
    assert "n'existe pas" in reply.text and await world.traced() == before


def test_a_mistyped_sub_command_is_hinted_even_where_the_default_takes_arguments():
    for line, hint in (("!doc envoier 1 dr@chu.mssante.fr", "Vouliez-vous dire !doc envoyer ?"),
                       ("!opposition leve @gp:hs", "Vouliez-vous dire !opposition lever ?")):
        parsed = REGISTRY.parse(line)
        assert hint in parsed.reply.text, line
    assert REGISTRY.parse("!doc 3").sub.name == "voir", "a number is the default's argument"


async def test_help_shows_each_reader_only_the_sub_commands_they_may_run(world):
    gp = (await world.say(GP, "!aide")).text
    assert "!parcours <liste | info | resume | inviter | export | types> …" in gp and "!equipe <liste | historique> …" in gp
    coord = (await world.say(COORD, "!aide")).text
    assert "!parcours <liste | ouvrir | info | resume | clore | rouvrir | inviter | export | types> …" in coord


async def test_without_the_bridge_mss_says_so_before_reading_the_arguments(worlds):
    world = await worlds(bridge=False)
    assert (await world.say(COORD, "!mss router x y")).text == NO_BRIDGE


async def test_a_coordinator_profession_without_the_role_is_told_how_to_give_it(world):
    reply = await world.say(COORD, "!equipe ajouter @x:hs coordinatrice")
    assert "Sans le rôle de coordination" in reply.text and "« coordination »" in reply.text
    given = await world.say(COORD, "!equipe ajouter @kine:hs coordinatrice coordination")
    assert "Coordinatrice de parcours, coordination" in given.text and "Sans le rôle" not in given.text


async def test_a_label_follows_the_person_and_a_masculine_form_typed_later_keeps_her_sex(world):
    from bot.members import person

    assert (await person(world.s, NURSE)).text() == "Sophie Bernard (Infirmière)", "« infirmière » in the roster"
    assert (await person(world.s, SOCIAL)).text() == "Nadia Haddad (Assistante de service social)"
    coordinator = await world.say(COORD, f"!equipe ajouter {NURSE} infirmier coordination")
    assert coordinator.text == f"Sophie Bernard ({NURSE}), Infirmière, coordination : ajouté(e) à l'équipe."
    assert (await person(world.s, NURSE)).text() == "Sophie Bernard (Infirmière, coordination)"
    listed = (await world.say(GP, "!equipe")).text
    assert "Sophie Bernard · Infirmière · coordination" in listed and "Dr Paul Martin · Médecin" in listed


async def test_people_are_named_whatever_they_are_and_a_name_never_fails_an_answer(world):
    from bot.members import person

    assert (await person(world.s, GP)).text() == "Dr Paul Martin (Médecin)"
    assert (await person(world.s, COORD)).text() == "Claire Morel (Coordinatrice de parcours, coordination)"
    assert (await person(world.s, CARDIO)).text() == f"{CARDIO} (correspondant MSSanté)", "an address, not an id"
    assert "<a " not in (await person(world.s, CARDIO)).html(), "no matrix.to link for a mail address"
    await world.say(COORD, f"!equipe ajouter {CARDIO} médecin structure:CHU")
    assert (await person(world.s, CARDIO)).text() == f"{CARDIO} (Médecin, CHU, par MSSanté)"
    world.m.fail_next("display_name")
    assert (await person(world.s, OUTSIDER)).text() == f"{OUTSIDER} (hors de l'équipe de la structure)"


# -- !tache, !taches (the details: tests/test_tasks.py) ------------------------------------------------------------

@covers("tache nouvelle")
@covers("tache prendre")
@covers("tache faite")
@covers("tache reporter")
@covers("tache confier")
@covers("tache annuler")
@covers("tache historique")
@covers("taches")
async def test_a_task_is_created_taken_postponed_handed_over_done_and_listed(world, room):
    text = "Renouveler l'ordonnance « Kardégic »\net appeler l’officine"
    made = await world.say(GP, f"!tache {text} pour {GP} échéance dans 3 jours", room)
    assert made.text.startswith("Tâche n° 1 créée, Dr Paul Martin (Médecin) — échéance "), made.text
    assert made.text.endswith(f":\n{text}") and (await world.s.tasks.by_number((await world.pathway(room)).id, 1)).text == text
    assert "prise en charge par Dr Paul Martin" in (await world.say(GP, "!tache prendre 1", room)).text
    assert "reportée : échéance le" in (await world.say(GP, "!tâche reporter 1 le 12/01", room)).text
    assert "confiée à Claire Morel" in (await world.say(GP, f"!task assign 1 {COORD}", room)).text
    assert (await world.say(COORD, "!tache faite 1 RAS", room)).text.startswith("Tâche n° 1 faite (trace ")
    await world.say(GP, "!tache Peser le patient", room)
    assert (await world.say(GP, "!tache annuler 2", room)).text.startswith("Tâche n° 2 annulée (trace ")
    listed = (await world.say(GP, "!tâches", room)).text
    assert "Faites récemment :\nn° 1 · Renouveler l'ordonnance « Kardégic »…" in listed and "n° 2" not in listed
    history = (await world.say(GP, "!task history 1", room)).text
    assert history.startswith("Tâche n° 1 (faite) : Renouveler") and "confiée à Claire Morel" in history


# -- !ppcs (the details: tests/test_ppcs.py) -----------------------------------------------------------------------

@covers("ppcs voir")
@covers("ppcs objectif")
@covers("ppcs atteint")
@covers("ppcs abandonner")
@covers("ppcs referent")
@covers("ppcs mots")
async def test_the_care_plan_is_written_then_shown(world, room):
    added = (await world.say(GP, "!ppcs objectif Rester à domicile", room)).text
    assert added.startswith("Objectif n° 1 ajouté au plan (trace ") and added.endswith(":\nRester à domicile")
    await world.say(GP, "!careplan goal Marcher", room)
    assert (await world.say(GP, "!ppcs atteint 1", room)).text.startswith("Objectif n° 1 atteint (trace ")
    assert (await world.say(GP, "!ppcs abandonner 2", room)).text.startswith("Objectif n° 2 abandonné (trace ")
    assert (await world.say(GP, f"!ppcs referent {GP}", room)).text.startswith("Référent du plan : Dr Paul Martin")
    assert (await world.say(GP, "!ppcs mots Rester chez moi", room)).text.endswith(":\nRester chez moi")
    shown = (await world.say(GP, "!ppcs", room)).text
    assert shown.startswith("Plan personnalisé de coordination (PPCS) du parcours ") and "Version 6" in shown, shown


# -- !rcp (the details: tests/test_rcp.py) ---------------------------------------------------------------------------

@covers("rcp planifier")
@covers("rcp liste")
@covers("rcp ordre")
@covers("rcp annuler")
@covers("rcp deplacer")
@covers("rcp inscrire")
@covers("rcp participants")
@covers("rcp ouvrir")
@covers("rcp presents")
@covers("rcp decision")
@covers("rcp clore")
async def test_a_meeting_is_planned_a_case_enrolled_decided_and_the_meeting_closed(world, room):
    desk, code = await world.coordination_room(), (await world.pathway(room)).code
    planned = (await world.say(COORD, "!rcp planifier le 10/01/2099 12h30 salle 2", desk)).text
    rcp = planned.split()[1]
    assert planned.endswith(f"!rcp participants {rcp} @compte adresse@mssante…") and "planifiée" in planned
    assert rcp in (await world.say(COORD, "!rcp", desk)).text
    assert (await world.say(GP, "!rcp inscrire Adapter le traitement ?", room)).text.endswith(
        "Question : Adapter le traitement ?")
    assert f"1. {code} : Adapter le traitement ?" in (await world.say(COORD, f"!rcp ordre {rcp}", desk)).text
    assert "déplacée" in (await world.say(COORD, f"!rcp deplacer {rcp} le 11/01/2099 12h30", desk)).text
    assert "1 participant(s) ajouté(s)" in (await world.say(COORD, f"!rcp participants {rcp} {GP}", desk)).text
    assert "ouverte" in (await world.say(COORD, f"!rcp ouvrir {rcp}", desk)).text
    assert "1 présent(s)" in (await world.say(COORD, f"!rcp presents {GP}", desk)).text
    assert (await world.say(COORD, f"!rcp decision {code} Bilan pour {GP}", desk)).text.startswith("Décision n° 1")
    assert "close" in (await world.say(COORD, "!rcp clore", desk)).text
    other = (await world.say(COORD, "!rcp planifier le 12/01/2099 12h30", desk)).text.split()[1]
    assert (await world.say(COORD, f"!rcp annuler {other}", desk)).text.endswith(": annulée.")


# -- !protocole (the details: tests/test_protocols.py) ----------------------------------------------------------------

@covers("protocole liste")
@covers("protocole appliquer")
async def test_a_protocol_is_listed_then_applied_to_the_pathway(world, room):
    listed = (await world.say(GP, "!protocoles", room)).text
    assert "insuffisance-cardiaque — Insuffisance cardiaque — suivi à domicile (3 étapes)" in listed, listed
    applied = (await world.say(GP, "!protocol apply insuffisance-cardiaque", room)).text
    assert applied.startswith("Protocole « Insuffisance cardiaque — suivi à domicile » appliqué : 3 tâche(s)"), applied
    assert "n° 3 · Consultation de suivi chez le médecin généraliste" in applied and "Dr Paul Martin" in applied


# -- (c) !annuaire ------------------------------------------------------------------------------------------------

@covers("annuaire chercher")
@covers("annuaire suite")
async def test_the_directory_answers_five_matches_a_page_then_the_next(world):
    kines = [Person(rpps(3000 + i), "M", f"Paul{i:02d}", "Kiné", "masseur-kinesitherapeute", "Lille", "59",
                    "Cabinet", None, f"kine{i}@chu.mssante.fr") for i in range(7)]
    await seed(world.s.directory.engine, kines)
    first = (await world.say(NURSE, "!annuaire kiné Lille")).text.splitlines()
    assert first[0] == "Annuaire santé : 7 résultat(s), 1 à 5 :" and len(first) == 7
    assert first[1].startswith("1. M. Paul00 Kiné · Masseur-Kinésithérapeute · Cabinet · Lille (59) · RPPS ")
    assert first[-1] == "Suite : !annuaire suite."
    more = (await world.say(NURSE, "!annuaire suite")).text.splitlines()
    assert more[0] == "Annuaire santé : 7 résultat(s), 6 à 7 :" and more[-1] == "Fin des résultats."


def test_every_command_and_sub_command_has_its_arguments_audience_and_reply_tested():
    declared = pairs_of(build_registry())
    missing = {pair: sorted(set(ASPECTS) - COVERED.get(pair, set())) for pair in sorted(declared)}
    missing = {pair: aspects for pair, aspects in missing.items() if aspects}
    assert not missing, f"(command, sub-command) without a unit test in tests/test_subcommands.py: {missing}"
    assert set(COVERED) <= declared, f"covered names that are not commands: {set(COVERED) - declared}"
    assert {"aide", "parcours ouvrir", "equipe ajouter", "mss router", "doc envoyer"} <= declared
