"""`!annuaire`, and a professional named by RPPS or by name where a command expects an address (#27, items 2-4):
the real registry and stores on SQLite, Matrix faked (tests/fakes.py), the directory's rows written by SQL."""
from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from liaison.clock import MovableClock
from policies.professions import find_profession
from tests.fakes import COORD, GP, NURSE
from tests.support.directory_rows import Person, rpps, seed
from tests.test_subcommands import World, worlds  # noqa: F401 (the worlds fixture)

LEFEBVRE = Person("10001234565", "DR", "Camille", "Lefebvre", "medecin", "Lille", "59", "CHU de démonstration",
                  "Cardiologie et maladies vasculaires", "camille.lefebvre@chu.mssante.fr")
PAUL = Person("10002222221", "DR", "Paul", "Martin", "medecin", "Roubaix", "59", "Cabinet du Parc", None,
              "paul.martin@chu.mssante.fr")
JULIE = Person("10003333332", "MME", "Julie", "Martin", "infirmier", "Lille", "59", "", None,
               "julie.martin@chu.mssante.fr")
BENALI = Person("10009999995", "M", "Karim", "Benali", "masseur-kinesitherapeute", "Lille", "59", "Cabinet Vauban")
SOPHIE = Person("10004444443", "MME", "Sophie", "Bernard", "infirmier", "Lille", "59", "", None,
                "sophie.bernard@chu.mssante.fr")
NURSES = [Person(rpps(2000 + i), "MME", f"Anne{i:02d}", "Dupont", "infirmier", "Douai", "59") for i in range(12)]
LEFEBVRE_LINE = ("Dr Camille Lefebvre · Médecin (Cardiologie et maladies vasculaires) · CHU de démonstration · "
                 "Lille (59) · RPPS 10001234565 · camille.lefebvre@chu.mssante.fr")


@pytest.fixture
async def known(worlds) -> World:
    """A world whose directory knows the people above."""
    world = await worlds(clock=MovableClock())
    await seed(world.s.directory.engine, [LEFEBVRE, PAUL, JULIE, BENALI, SOPHIE, *NURSES])
    return world


async def test_a_search_answers_each_match_with_profession_structure_commune_and_address(known):
    reply = await known.say(GP, "!annuaire Lefebvre")
    assert reply.text.splitlines() == ["Annuaire santé : 1 résultat(s), 1 à 1 :", f"1. {LEFEBVRE_LINE}",
                                       "Fin des résultats."]
    assert "<ol start=\"1\"><li>Dr Camille Lefebvre" in reply.html
    assert LEFEBVRE_LINE in (await known.say(GP, "!annuaire LEFÈBRE")).text, "accents, case and a typo forgiven"
    by_rpps = await known.say(GP, "!directory 10001234565")
    assert LEFEBVRE_LINE in by_rpps.text
    no_box = await known.say(GP, "!annuaire Benali")
    assert "M. Karim Benali · Masseur-Kinésithérapeute · Cabinet Vauban · Lille (59) · RPPS 10009999995 · pas " \
           "d'adresse MSSanté" in no_box.text


async def test_the_next_page_is_the_same_persons_last_search_in_that_room_for_some_minutes(known):
    first = await known.say(GP, "!annuaire infirmier Douai")
    assert first.text.startswith("Annuaire santé : 12 résultat(s), 1 à 5 :") and first.text.endswith(
        "Suite : !annuaire suite.")
    assert (await known.say(GP, "!annuaire suite")).text.startswith("Annuaire santé : 12 résultat(s), 6 à 10 :")
    last = await known.say(GP, "!directory next")
    assert last.text.startswith("Annuaire santé : 12 résultat(s), 11 à 12 :") and "\n11. " in last.text
    assert last.text.endswith("Fin des résultats.")
    assert (await known.say(GP, "!annuaire plus")).text.startswith("Fin des résultats : les 12 ont été montrés.")

    nobody = "Aucune recherche récente de votre part dans ce salon."
    assert (await known.say(COORD, "!annuaire suite")).text.startswith(nobody), "someone else's search is not theirs"
    elsewhere = known.direct(GP)
    assert (await known.say(GP, "!annuaire suite", elsewhere)).text.startswith(nobody), "nor another room's"
    await known.say(GP, "!annuaire infirmier Douai")
    await known.s.clock.advance(11 * 60)
    assert (await known.say(GP, "!annuaire suite")).text.startswith(nobody), "forgotten after some minutes"


async def test_a_directory_never_imported_is_said_so(worlds):
    world = await worlds()
    reply = await world.say(GP, "!annuaire Lefebvre")
    assert reply.text.startswith("L'annuaire santé n'a encore jamais été importé pour cette structure")


async def test_no_match_is_said_in_french_with_examples(known):
    reply = await known.say(GP, "!annuaire Zzyzx")
    assert reply.text.startswith("Aucun professionnel trouvé dans l'annuaire santé. Essayez un nom "
                                 "(!annuaire Lefebvre), un n° RPPS (11 chiffres)")


async def test_the_search_terms_are_never_logged_only_counts(known):
    with capture_logs() as logs:
        await known.say(GP, "!annuaire Lefebvre Lille")
        await known.say(GP, "!annuaire suite")
        await known.say(GP, "!mss ecrire Lefebvre Bonjour", await known.open())
    assert "lefebvre" not in repr(logs).casefold() and "lille" not in repr(logs).casefold()
    searched = [e for e in logs if e["event"] == "directory.searched"]
    assert searched[0] | {"log_level": "info"} == {"event": "directory.searched", "shown": 1, "total": 1,
                                                   "offset": 0, "log_level": "info"}


# -- !equipe ajouter ----------------------------------------------------------------------------------------------

async def test_team_add_by_rpps_records_the_directorys_address_name_profession_and_structure(known):
    reply = await known.say(COORD, "!equipe ajouter 10001234565")
    assert reply.text.startswith("Correspondant MSSanté camille.lefebvre@chu.mssante.fr (annuaire santé, RPPS "
                                 "10001234565) : Dr Camille Lefebvre, Médecin, CHU de démonstration. Les consentements")
    contact = await known.s.contacts.get("camille.lefebvre@chu.mssante.fr")
    assert (contact.name, contact.profession.key, contact.structure) == ("Dr Camille Lefebvre", "medecin",
                                                                          "CHU de démonstration")
    typed = await known.say(COORD, "!equipe ajouter 10002222221 pharmacien structure:Officine du Parc")
    assert "Dr Paul Martin, Pharmacien, Officine du Parc." in typed.text, "what is typed stands before the directory"


async def test_team_add_by_name_one_match_or_the_list_to_choose_from(known):
    one = await known.say(COORD, '!equipe ajouter "camille lefebvre"')
    assert one.text.startswith("Correspondant MSSanté camille.lefebvre@chu.mssante.fr (annuaire santé")
    several = await known.say(COORD, "!equipe ajouter Martin")
    lines = several.text.splitlines()
    assert lines[0] == "« Martin » : 2 professionnels de ce nom dans l'annuaire santé :"
    assert {lines[1][:3], lines[2][:3]} == {"1. ", "2. "} and "RPPS 10002222221" in several.text
    assert lines[-1].startswith("Choisissez par le n° RPPS, par exemple : !equipe ajouter 1000")
    assert await known.s.contacts.get("paul.martin@chu.mssante.fr") is None, "nothing recorded before a choice"
    nobody = await known.say(COORD, "!equipe ajouter Lefebre")
    assert nobody.text.startswith("!equipe ajouter : « Lefebre » : indiquez le compte Matrix (@nom:serveur) ou "
                                  "l'adresse MSSanté. Personne de ce nom dans l'annuaire santé"), \
        "a near name is for !annuaire, never resolved"
    no_box = await known.say(COORD, "!equipe ajouter 10009999995")
    assert "ne lui connaît pas d'adresse MSSanté. Rien n'a été fait." in no_box.text


async def test_team_add_of_an_account_by_rpps_takes_profession_structure_and_rpps_from_the_directory(known):
    reply = await known.say(COORD, "!equipe ajouter @kine:hs 10009999995")
    assert reply.text.startswith("Karim Kiné (@kine:hs), Masseur-kinésithérapeute : ajouté(e) à l'équipe. "
                                 "Annuaire santé : M. Karim Benali"), reply.text
    member = await known.s.roster.get("@kine:hs")
    assert (member.profession.key, member.professional_id, member.structure) == (
        "masseur-kinesitherapeute", "10009999995", "Cabinet Vauban")
    unknown = await known.say(COORD, "!equipe ajouter @x:hs 19999999998")
    assert unknown.text == ("Aucun professionnel de RPPS 19999999998 dans l'annuaire santé : précisez la profession "
                            "(!equipe ajouter @x:hs <profession> 19999999998).")


# -- an address expected: an RPPS or a name resolved to the MSSanté address ----------------------------------------

async def test_writing_by_rpps_or_name_resolves_the_address_and_says_to_whom(known):
    room = await known.open()
    consent = await known.say(COORD, "!consentement enregistrer Camille Lefebvre écrit", room)
    assert consent.text.startswith(f"« Camille Lefebvre » : {LEFEBVRE_LINE} (annuaire santé).\nConsentement écrit "
                                   "enregistré pour"), consent.text
    reply = await known.say(GP, "!mss ecrire 10001234565 Bonjour, l'écho est faite.", room)
    assert reply.text.startswith(f"« 10001234565 » : {LEFEBVRE_LINE} (annuaire santé).\nCourriel pour "
                                 "camille.lefebvre@chu.mssante.fr confié au pont MSSanté (trace ")
    (request,) = await known.s.mail.waiting_requests()
    assert (request.address, request.body) == ("camille.lefebvre@chu.mssante.fr", "Bonjour, l'écho est faite.")

    number = await known.add_document(room)
    sent = await known.say(GP, f"!doc envoyer {number} Lefebvre", room)
    assert "Document n° 1 (Compte rendu de consultation) confié au pont MSSanté pour camille.lefebvre@" in sent.text


async def test_several_people_none_or_no_mailbox_is_refused_and_nothing_is_sent(known):
    room = await known.open()
    traced = await known.traced()
    several = await known.say(GP, "!mss ecrire Martin Bonjour", room)
    assert "2 professionnels de ce nom" in several.text and "par exemple : !mss ecrire 1000" in several.text
    commune = await known.say(GP, '!mss ecrire "Martin Roubaix" Bonjour', room)
    assert commune.text.startswith("« Martin Roubaix » : Dr Paul Martin · Médecin · Cabinet du Parc · Roubaix (59)")
    assert "\nCourriel non envoyé : " in commune.text, "resolved, then decided: no consent covers him"
    traced += 1   # that one was decided (no consent): refused, and traced
    unknown = await known.say(GP, "!mss ecrire 19999999998 Bonjour", room)
    assert unknown.text == ("!mss ecrire : « 19999999998 » n'est pas une adresse MSSanté (ex. dr.x@chu.mssante.fr). "
                            "Aucun professionnel de RPPS 19999999998 dans l'annuaire santé. Utilisation : "
                            "!mss ecrire <adresse> <texte…>")
    no_box = await known.say(GP, "!mss ecrire Benali Bonjour", room)
    assert no_box.text.endswith("l'annuaire santé ne lui connaît pas d'adresse MSSanté. Rien n'a été fait.")
    assert await known.s.mail.waiting_requests() == []
    assert await known.traced() == traced, "nothing decided"


async def test_inviting_by_rpps_invites_the_team_member_the_roster_knows_by_it(known):
    room = await known.open()
    await known.s.roster.upsert(NURSE, "Sophie Bernard", find_profession("infirmière"), actor=COORD,
                                professional_id="10004444443")
    await known.consent(room, NURSE)   # outside the pathway's team of care: the law asks for the patient's consent
    reply = await known.say(COORD, "!parcours inviter 10004444443", room)
    assert reply.text.startswith(f"« 10004444443 » (annuaire santé) : {NURSE}.\nSophie Bernard"), reply.text
    assert "est invité(e) au salon clinique" in reply.text
    outside = await known.say(COORD, "!parcours inviter Lefebvre", room)
    assert outside.text.startswith(f"{LEFEBVRE_LINE} : pas de compte Matrix dans l'équipe de la structure")


async def test_a_broad_search_says_more_than_it_counts_and_asks_to_narrow_it(worlds):
    from liaison.stores.directory import COUNTED
    world = await worlds(clock=MovableClock())
    many = [Person(rpps(5000 + i), "MME", f"Anne{i:04d}", "Durand", "infirmier", "Arras", "62")
            for i in range(COUNTED + 5)]
    await seed(world.s.directory.engine, many)
    reply = await world.say(GP, "!annuaire infirmier 62")
    assert reply.text.startswith("Annuaire santé : plus de 1\u202f000 résultats, 1 à 5 (précisez : une commune, un "
                                 "département) :"), reply.text.splitlines()[0]
    assert reply.text.endswith("Suite : !annuaire suite.")
