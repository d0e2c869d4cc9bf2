"""The sharing decision knows an external address by the national directory (#27) when the coordination recorded
nothing of it: its profession, specialty and structure, so that `!opposition cardiologue` or a consent for
`structure:CHU Démo` applies to it, both ways. On the fakes; the directory's rows seeded by SQL."""
from __future__ import annotations

from sqlalchemy import text

from liaison.enforcement import decide_at
from liaison.sharing_facts import facts_for
from policies.sharing import Action
from tests.fakes import COORD, GP
from tests.test_subcommands import CARDIO, World, room_of, worlds  # noqa: F401 (the worlds fixture)
from tests.test_subcommands import OPEN

MAILBOX = ("INSERT INTO directory_mailbox (address, kind, national_id, civility, last_name, first_name, "
           "profession_code, profession_label, profession, specialty_label, structure, commune, postcode, department, "
           "active, import_id, updated_at) VALUES (:a, 'PER', :n, 'DR', 'Lefebvre', 'Camille', '10', 'Médecin', "
           "'medecin', :sp, 'CHU Démo', 'Lyon', '69003', '69', :active, 1, 0)")


async def listed(world: World, address: str = CARDIO, specialty: str = "Cardiologie et maladies vasculaires",
                 active: int = 1) -> None:
    """`address` in the directory: a cardiologist of the CHU Démo (as the importer writes it)."""
    async with world.s.pathways.engine.begin() as conn:
        await conn.execute(text(MAILBOX), {"a": address.lower(), "n": "810101234567", "sp": specialty,
                                           "active": active})


async def opened(world: World) -> str:
    reply = await world.say(COORD, f"{OPEN} --equipe medecin")
    room = room_of(reply.text)
    world.m.accept(room, COORD)
    world.m.accept(room, GP)
    return room


async def test_a_structure_consent_lets_a_mail_out_to_a_directory_known_address(worlds):
    world = await worlds()
    await listed(world)
    room = await opened(world)
    refused = await world.say(GP, f"!mss ecrire {CARDIO} Bonjour", room)
    assert "règle outside.no_consent" in refused.text, refused.text
    await world.consent(room, "structure:CHU Démo")
    allowed = await world.say(GP, f"!mss ecrire {CARDIO} Bonjour", room)
    assert "confié au pont MSSanté" in allowed.text, allowed.text
    assert len(await world.s.mail.waiting_requests()) == 1


async def test_a_specialty_objection_stops_mail_to_and_from_a_directory_known_cardiologist(worlds):
    world = await worlds()
    await listed(world)
    room = await opened(world)
    await world.consent(room, "structure:CHU Démo")
    objected = await world.say(COORD, "!opposition cardiologue", room)
    assert "Opposition enregistrée pour la spécialité cardiologie" in objected.text, objected.text
    assert world.m.room(room).membership[GP] == "join", "the team's GP (a médecin, no specialty known) stays"
    refused = await world.say(GP, f"!mss ecrire {CARDIO} Bonjour", room)
    assert refused.text.startswith("Courriel non envoyé : Le patient s'est opposé au partage avec Dr Camille "
                                   "Lefebvre"), refused.text
    assert "règle objection.profession" in refused.text and await world.s.mail.waiting_requests() == []
    pathway = await world.pathway(room)
    inbound = await decide_at(world.s.sharing, "mail.in.post", pathway=pathway, recipient=CARDIO, actor=CARDIO)
    assert inbound.decision.rule == "objection.profession", "nothing of his is posted either"
    listing = await world.say(COORD, "!consentements", room)
    assert "Opposition : la spécialité cardiologie" in listing.text, listing.text


async def test_an_objection_to_the_profession_reaches_its_specialists(worlds):
    world = await worlds()
    await listed(world)
    room = await opened(world)
    await world.consent(room, "structure:CHU Démo")
    await world.say(COORD, f"!opposition {GP}", room)   # the GP out of the way: the objection below is the question
    await world.say(COORD, "!opposition medecin", room)
    refused = await world.say(COORD, f"!mss ecrire {CARDIO} Bonjour", room)
    assert "règle objection.profession" in refused.text, refused.text


async def test_what_the_coordination_recorded_comes_before_the_directory(worlds):
    world = await worlds()
    await listed(world)
    room = await opened(world)
    pathway = await world.pathway(room)
    facts = await facts_for(world.s.sharing, pathway=pathway, user_id=CARDIO, actor=GP, action=Action.RELAY_OUT)
    assert (facts.recipient_profession, facts.recipient_specialty, facts.recipient_structure) == (
        "medecin", "cardiologue", "CHU Démo")
    assert facts.recipient.name == "Dr Camille Lefebvre"
    await world.say(COORD, f"!equipe ajouter {CARDIO} pharmacien structure:Officine", room)
    facts = await facts_for(world.s.sharing, pathway=pathway, user_id=CARDIO, actor=GP, action=Action.RELAY_OUT)
    assert (facts.recipient_profession, facts.recipient_specialty, facts.recipient_structure) == (
        "pharmacien", None, "Officine")


async def test_an_address_the_directory_does_not_list_or_no_longer_lists_stays_unknown(worlds):
    world = await worlds()
    await listed(world, active=0)
    room = await opened(world)
    await world.consent(room, "structure:CHU Démo")
    await world.say(COORD, "!opposition cardiologue", room)
    refused = await world.say(GP, f"!mss ecrire {CARDIO} Bonjour", room)
    assert "règle objection.unknown_profession" in refused.text, "the cautious reading, as before the directory"


async def test_a_savoir_faire_that_is_none_of_ours_names_no_specialty(worlds):
    world = await worlds()
    await listed(world, specialty="Qualifié en médecine générale")
    room = await opened(world)
    facts = await facts_for(world.s.sharing, pathway=await world.pathway(room), user_id=CARDIO, actor=GP,
                            action=Action.RELAY_OUT)
    assert (facts.recipient_profession, facts.recipient_specialty) == ("medecin", None)
