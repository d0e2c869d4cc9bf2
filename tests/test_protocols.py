"""Protocols as data (#25 item 6), on the fakes: the YAML files read at start (a bad one named by its file, line and
field), `!protocole liste`, `!protocole appliquer` choosing each step's owner from the team by profession (decided,
traced), once per pathway and all or nothing, and the protocol a pathway type offers at its opening."""
from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.protocols import Catalogue, ProtocolError, load_protocols, offer, read_protocol, type_offers
from bot.task_dates import shown
from liaison.clock import MovableClock
from liaison.config import ConfigError
from liaison.stores.tasks import TaskStore
from tests.fakes import COORD, GP, NURSE
from tests.test_subcommands import OPEN, World, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")
NURSE2, PHARMA = "@infirmier2:hs", "@pharma:hs"
WEIGHT = "Peser le patient (même balance, le matin à jeun) et noter le poids ; prévenir le médecin si +2 kg en 3 jours"
GOOD = """\
nom: sortie-hôpital
titre: Retour après l'hôpital
etapes:
  - texte: "Passage infirmier : « pansement », l’ordonnance de sortie"
    profession: infirmière
    délai: 15 jours
    récurrence: toutes les semaines
  - texte: Dossier APA
    profession: assistante sociale
    delai: 2 semaines
    categorie: Social
"""


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


def folder(tmp_path: Path, **files: str) -> str:
    made = tmp_path / "protocoles"
    made.mkdir(exist_ok=True)
    for name, text in files.items():
        (made / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return str(made)


# -- the files ---------------------------------------------------------------------------------------------------------

def test_the_shipped_protocols_are_read():
    catalogue = load_protocols()
    assert catalogue.names() == ["diabete-type-2", "insuffisance-cardiaque", "retour-a-domicile"]
    heart = catalogue.find("insuffisance-cardiaque")
    assert heart is not None and heart.title == "Insuffisance cardiaque — suivi à domicile"
    assert [(s.profession, s.days, s.recurrence) for s in heart.steps] == [
        ("infirmier", 7, "FREQ=WEEKLY"), ("pharmacien", 15, None), ("medecin", 30, None)]
    assert heart.steps[0].text == WEIGHT
    social = load_protocols().find("retour a domicile").steps[-1]
    assert (social.profession, social.category) == ("assistant-service-social", "social")


def test_a_good_file_read_forgiving_accents_in_its_keys_and_values():
    protocol = read_protocol(GOOD, "sortie.yaml")
    assert protocol.name == "sortie-hopital" and protocol.title == "Retour après l'hôpital"
    first, second = protocol.steps
    assert first.text == "Passage infirmier : « pansement », l’ordonnance de sortie"
    assert (first.profession, first.days, first.recurrence, first.category) == ("infirmier", 15, "FREQ=WEEKLY", "soins")
    assert (second.profession, second.days, second.category) == ("assistant-service-social", 14, "social")
    assert read_protocol(GOOD.replace("2 semaines", "J+0"), "s.yaml").steps[1].days == 0
    assert read_protocol(GOOD.replace("2 semaines", "3 mois"), "s.yaml").steps[1].months == 3


@pytest.mark.parametrize("change, line, field, words", [
    (("profession: infirmière", "profession: plombier"), 5, "etapes[1].profession", "profession « plombier » inconnue"),
    (("délai: 15 jours", "délai: bientôt"), 6, "etapes[1].delai", "« bientôt » n'est pas un délai"),
    (("délai: 15 jours", "délai: 9999 jours"), 6, "etapes[1].delai", "trois ans au plus"),
    (("récurrence: toutes les semaines", "récurrence: parfois"), 7, "etapes[1].recurrence",
     "« parfois » n'est pas une récurrence"),
    (("categorie: Social", "categorie: loisirs"), 11, "etapes[2].categorie", "catégorie « loisirs » inconnue"),
    (("  - texte: Dossier APA\n    profession", "  - profession"), 8, "etapes[2].texte", "champ obligatoire absent"),
    (("texte: Dossier APA", "texte:"), 8, "etapes[2].texte", "champ vide"),
    (("titre: Retour après l'hôpital\n", ""), 1, "titre", "champ obligatoire absent"),
    (("nom: sortie-hôpital", "nom: sortie hôpital !"), 1, "nom", "lettres, chiffres et tirets"),
    (("    delai: 2 semaines", "    delai: 2 semaines\n    duree: 3"), 11, "etapes[2].duree", "clé inconnue"),
    ((GOOD[GOOD.index("etapes:"):], "etapes: aucune\n"), 3, "etapes", "une liste d'étapes"),
    (("titre: Retour", "titre: [Retour"), 3, "(fichier)", "YAML illisible"),
])
def test_a_bad_file_is_refused_naming_its_file_line_and_field(tmp_path, change, line, field, words):
    old, new = change
    assert old in GOOD
    where = folder(tmp_path, sortie=GOOD.replace(old, new))
    with pytest.raises(ProtocolError) as refused:
        load_protocols(where)
    message = str(refused.value)
    assert (refused.value.line, refused.value.field) == (line, field), message
    assert message.startswith(f"protocole {where}/sortie.yaml, ligne {line}, champ « {field} » : "), message
    assert words in message, message


def test_two_protocols_of_the_same_name_in_the_folder_are_refused(tmp_path):
    where = folder(tmp_path, a=GOOD, b="# le même\n\n" + GOOD.replace("sortie-hôpital", "Sortie-Hopital"))
    with pytest.raises(ProtocolError) as refused:
        load_protocols(where)
    assert str(refused.value).startswith(f"protocole {where}/b.yaml, ligne 3, champ « nom » : « sortie-hopital » est "
                                         f"déjà le nom du protocole de {where}/a.yaml"), str(refused.value)


def test_the_structure_s_folder_adds_to_the_shipped_protocols_and_replaces_one_of_the_same_name(tmp_path):
    mine = GOOD.replace("sortie-hôpital", "insuffisance-cardiaque").replace("Retour après l'hôpital", "IC maison")
    catalogue = load_protocols(folder(tmp_path, sortie=GOOD, ic=mine))
    assert catalogue.names() == ["diabete-type-2", "insuffisance-cardiaque", "retour-a-domicile", "sortie-hopital"]
    assert catalogue.find("insuffisance-cardiaque").title == "IC maison"
    with pytest.raises(ProtocolError, match="dossier introuvable"):
        load_protocols(str(tmp_path / "absent"))


def test_a_pathway_type_offers_a_known_protocol_only():
    catalogue = load_protocols()
    assert type_offers([("ic", "Insuffisance cardiaque"), ("autre", "")], catalogue) == (
        ("ic", "insuffisance-cardiaque"),)
    with pytest.raises(ConfigError) as refused:
        type_offers([("ic", ""), ("plaie", "plaies")], catalogue)
    assert refused.value.key == "pathways.types[1].protocol" and "protocole « plaies » inconnu" in str(refused.value)
    assert offer((("ic", "insuffisance-cardiaque"),), catalogue, "autre") == ""


def test_the_bot_does_not_start_with_a_bad_protocol_file(tmp_path, monkeypatch, capsys):
    from bot.__main__ import main

    where = folder(tmp_path, sortie=GOOD.replace("profession: infirmière", "profession: plombier"))
    config = tmp_path / "liaison.yaml"
    config.write_text(textwrap.dedent(f"""\
        homeserver: {{url: "https://matrix.exemple.fr", server_name: exemple.fr}}
        bot: {{user_id: "@liaison:exemple.fr", password: "${{BOT_PW}}", store_pickle_key: "${{BOT_KEY}}"}}
        database: {{url: "sqlite+aiosqlite:///{tmp_path}/l.db"}}
        pathways: {{protocols_folder: {where}}}
        """), encoding="utf-8")
    monkeypatch.setenv("BOT_PW", "a-fine-password")
    monkeypatch.setenv("BOT_KEY", "7f3a" * 16)
    assert main(["-c", str(config)]) == 2
    assert f"protocole {where}/sortie.yaml, ligne 5, champ « etapes[1].profession »" in capsys.readouterr().err
    assert not (tmp_path / "l.db").exists(), "refused before anything is made"


# -- the commands --------------------------------------------------------------------------------------------------

@pytest.fixture
async def paris(worlds) -> World:
    return await worlds(clock=MovableClock(at(2027, 1, 8, 10, 0)))


async def test_the_protocols_are_listed_in_any_room(paris):
    listed = (await paris.say(GP, "!protocole liste")).text.splitlines()
    assert listed == ["Protocoles (3) :",
                      "diabete-type-2 — Diabète de type 2 — suivi pluriprofessionnel (5 étapes)",
                      "insuffisance-cardiaque — Insuffisance cardiaque — suivi à domicile (3 étapes)",
                      "retour-a-domicile — Sortie d'hospitalisation — retour à domicile (4 étapes)",
                      "Dans le salon d'un parcours : !protocole appliquer <nom>"]
    assert (await paris.say(GP, "!protocoles", paris.direct(GP))).text.splitlines()[1:] == listed[1:]


async def _tasks(world: World, room: str):
    return await world.s.tasks.of_pathway((await world.pathway(room)).id)


async def test_applied_with_one_nurse_and_no_pharmacist_each_step_has_its_owner_and_the_answer_says_who_is_missing(
        paris):
    room = await paris.open(team="medecin,infirmier")
    paris.m.accept(room, NURSE)
    before = len(await paris.s.trace.entries())
    applied = await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)
    lines = applied.text.splitlines()
    assert lines[0].startswith("Protocole « Insuffisance cardiaque — suivi à domicile » appliqué : 3 tâche(s) créée(s)")
    assert lines[1] == f"n° 1 · {WEIGHT} · Sophie Bernard (Infirmière) · échéance 15/01/2027, chaque semaine", lines[1]
    assert lines[2].startswith("n° 2 · Revue des traitements") and "demandée aux pharmaciens du parcours" in lines[2]
    assert lines[2].endswith("échéance 23/01/2027")
    assert lines[3].endswith("Dr Paul Martin (Médecin) · échéance 07/02/2027"), lines[3]
    assert lines[4].startswith("Personne dans l'équipe pour : n° 2 (pharmacien)."), lines[4]
    weight, review, visit = await _tasks(paris, room)
    assert (weight.text, weight.owner, weight.profession, weight.recurrence) == (WEIGHT, NURSE, None, "FREQ=WEEKLY")
    assert (review.owner, review.profession) == (None, "pharmacien")
    assert (visit.owner, visit.category, shown(visit.due_at)) == (GP, "soins", "07/02/2027")
    traced = (await paris.s.trace.entries())[before:]
    decided = [(e.action, e.subject, e.allowed) for e in traced if e.action == "confier une tâche"]
    assert sorted(decided) == sorted([("confier une tâche", GP, True), ("confier une tâche", NURSE, True)]), decided
    assert [e.rule for e in traced if e.action == "montrer"] == ["room.clinical"]
    history = (await paris.say(GP, "!tache historique 1", room)).text
    assert "créée à Sophie Bernard (Infirmière), échéance 15/01/2027 (protocole insuffisance-cardiaque)" in history


async def test_with_two_nurses_the_step_is_a_request_to_the_nurses(paris):
    paris.m.add_account(NURSE2, "Luc Petit")
    paris.m.add_account(PHARMA, "Inès Roy")
    await paris.say(COORD, f"!equipe ajouter {NURSE2} infirmier")
    await paris.say(COORD, f"!equipe ajouter {PHARMA} pharmacienne")
    room = await paris.open(team="medecin,infirmier,pharmacien")
    applied = (await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)).text
    assert "demandée aux infirmiers du parcours" in applied and "Inès Roy (Pharmacienne)" in applied, applied
    assert "Personne dans l'équipe" not in applied
    weight, review, _visit = await _tasks(paris, room)
    assert (weight.owner, weight.profession, review.owner) == (None, "infirmier", PHARMA)
    taken = await paris.say(NURSE2, "!tache prendre 1", room)
    assert "prise en charge par Luc Petit" in taken.text, taken.text


async def test_applied_twice_is_refused_and_changes_nothing(paris):
    room = await paris.open()
    await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)
    again = await paris.say(COORD, "!protocole appliquer Insuffisance Cardiaque", room)
    assert again.text == ("Le protocole « Insuffisance cardiaque — suivi à domicile » a déjà été appliqué à ce parcours "
                          "le 08/01/2027 par Dr Paul Martin (Médecin) : rien n'a été créé (!taches pour ses tâches).")
    assert len(await _tasks(paris, room)) == 3
    other = await paris.say(GP, "!protocole appliquer diabète type 2", room)
    assert other.text.startswith("Protocole « Diabète de type 2 — suivi pluriprofessionnel » appliqué : 5 tâche(s)")
    assert [t.number for t in await _tasks(paris, room)] == list(range(1, 9))


async def test_a_name_is_read_without_accents_nor_case_and_an_unknown_one_changes_nothing(paris, tmp_path):
    paris.s.settings = replace(paris.s.settings, protocols=load_protocols(folder(tmp_path, sortie=GOOD)))
    room = await paris.open(team="medecin,infirmier")
    unknown = await paris.say(GP, "!protocole appliquer cardio", room)
    assert unknown.text.startswith("Protocole inconnu « cardio » : rien n'a été créé. Protocoles : diabete-type-2, ")
    applied = await paris.say(GP, "!protocole appliquer SORTIE-HOPITAL", room)
    assert applied.text.startswith("Protocole « Retour après l'hôpital » appliqué : 2 tâche(s)"), applied.text
    first, second = await _tasks(paris, room)
    assert first.text == "Passage infirmier : « pansement », l’ordonnance de sortie", "the text as written"
    assert (second.category, second.profession) == ("social", "assistant-service-social")
    assert "Personne dans l'équipe pour : n° 2 (assistant de service social)" in applied.text, applied.text
    again = await paris.say(GP, "!protocole appliquer sortie hôpital", room)
    assert "a déjà été appliqué" in again.text


async def test_nothing_is_stored_when_a_step_fails_midway(paris, monkeypatch):
    room = await paris.open()
    real, calls = TaskStore._event, []

    async def failing(self, conn, task, *args, **kw):
        calls.append(task.number)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return await real(self, conn, task, *args, **kw)

    monkeypatch.setattr(TaskStore, "_event", failing)
    broken = await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)
    assert broken.text.startswith("Erreur interne en traitant !protocole appliquer"), broken.text
    pathway = await paris.pathway(room)
    assert await paris.s.tasks.of_pathway(pathway.id) == [] and calls == [1, 2]
    assert await paris.s.tasks.applied(pathway.id, "insuffisance-cardiaque") is None
    assert not [e for e in await paris.s.trace.entries() if e.action == "créer une tâche"]
    monkeypatch.setattr(TaskStore, "_event", real)
    applied = await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)
    assert "appliqué : 3 tâche(s)" in applied.text and len(await paris.s.tasks.of_pathway(pathway.id)) == 3


async def test_the_opening_offers_the_type_s_protocol_and_applies_nothing(paris):
    room = await paris.open()
    offered = ("Protocole proposé pour ce type de parcours : Insuffisance cardiaque — suivi à domicile — "
               "!protocole appliquer insuffisance-cardiaque")
    assert any(offered in b for b in paris.m.bodies(room)), paris.m.bodies(room)
    assert await _tasks(paris, room) == []
    paris.s.settings = replace(paris.s.settings, offers=())
    plain = await paris.say(COORD, OPEN.replace("insuffisance-cardiaque", "diabete") + " --equipe medecin")
    assert plain.text.startswith("Parcours Diabète ouvert") and "Protocole proposé" not in plain.text, plain.text


def test_an_empty_catalogue_finds_nothing():
    assert Catalogue().find("insuffisance-cardiaque") is None


async def test_a_step_whose_only_member_is_refused_by_the_law_stays_with_the_profession_and_says_the_rule(
        paris, monkeypatch):
    import bot.commands.protocols as commands
    from liaison.enforcement import Decided
    from policies.decision import Deny

    real = commands.decide_at

    async def refusing(sharing, path, **kw):
        if kw["recipient"] == NURSE:
            return Decided(Deny("objection.person", "le patient s'y oppose", "CSP L.1110-4"), 99)
        return await real(sharing, path, **kw)

    monkeypatch.setattr(commands, "decide_at", refusing)
    room = await paris.open(team="medecin,infirmier")
    applied = (await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)).text
    assert ("Personne dans l'équipe pour : n° 1 (infirmier : le patient s'y oppose (règle objection.person, "
            "CSP L.1110-4 ; trace 99)), n° 2 (pharmacien).") in applied, applied
    weight = (await _tasks(paris, room))[0]
    assert (weight.owner, weight.profession) == (None, "infirmier")
