"""The command registry: parsing, forgiving spelling, hints, usage, generated help."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import help as help_commands
from bot.parsing import Invocation, Problem, Registry
from bot.registry import Arg, ArgError, Audience, Context, Field, Reply, Words, command, fold, group
from tests.fakes import close_services, make_services


@command("parcours", en="pathway", args=[Arg("action", "ouvrir, fermer…"), Arg("détails", "le reste", required=False, rest=True)],
         who=Audience.STAFF, help="Gère les parcours.")
async def parcours(ctx: Context) -> Reply:
    return Reply.plain(repr(ctx.args))


def registry() -> Registry:
    return Registry.of([*help_commands.ALL, parcours])


@pytest.mark.parametrize("body", ["!aide", "/aide", "!Aide", "!AÏDE", "!aïde", "  !aide  ", "!help", "/HELP"])
def test_command_word_forgives_case_accents_and_prefix(body):
    parsed = registry().parse(body)
    assert isinstance(parsed, Invocation) and parsed.command.name == "aide"


@pytest.mark.parametrize("body", ["bonjour", "! aide", "!", "/", "//x", "!!!", "/ 2 comprimés", "", "aide !aide"])
def test_ordinary_text_is_not_a_command(body):
    assert registry().parse(body) is None


def test_reply_fallback_is_ignored():
    body = "> <@medecin:hs> Le patient va mieux\n> deuxième ligne\n\n!aide"
    parsed = registry().parse(body)
    assert isinstance(parsed, Invocation) and parsed.command.name == "aide"


def test_unknown_command_hints_the_closest():
    parsed = registry().parse("!parcour ouvrir")   # near words are hinted, never guessed
    assert isinstance(parsed, Problem) and "Vouliez-vous dire !parcours ?" in parsed.reply.text
    parsed = registry().parse("!parcous")
    assert isinstance(parsed, Problem) and "!parcours" in parsed.reply.text
    far = registry().parse("!zzzzzz")
    assert isinstance(far, Problem) and "Vouliez-vous" not in far.reply.text and "!aide" in far.reply.text


def test_arguments_bind_with_rest_and_quotes():
    parsed = registry().parse('!parcours "ouvrir" "Mme D" diabète type 2')
    assert parsed.args == {"action": "ouvrir", "détails": '"Mme D" diabète type 2'}, "the rest is what was typed"


def test_free_text_keeps_apostrophes_quotes_and_line_breaks():
    typed = "Bonjour, j'ai vu l'écho « vite », \"urgent\"\n\n  2e ligne"
    parsed = registry().parse(f"!parcours ecrire dr@chu.fr {typed}")
    words = Words(parsed.args["détails"])
    assert words[:2] == ["dr@chu.fr", "Bonjour,"] and words.rest(1) == typed


@given(st.text(st.characters(blacklist_categories=("Cs",))).map(str.strip).filter(bool))
def test_any_text_after_the_structured_arguments_arrives_unchanged(typed):
    parsed = registry().parse(f"!parcours ecrire dr@chu.fr {typed}")
    assert Words(parsed.args["détails"]).rest(1) == typed


def test_the_question_mark_asks_for_help():
    parsed = registry().parse("!?")
    assert not isinstance(parsed, Problem) and parsed.command.name == "aide"


def test_missing_and_extra_arguments_show_usage():
    missing = registry().parse("!parcours").problem
    assert "il manque : action" in missing.text
    assert "Utilisation : !parcours <action> [détails…]" in missing.text
    extra = registry().parse("!aide un deux trois").problem
    assert "trop d'arguments" in extra.text


def test_duplicate_words_are_refused():
    @command("aide", en="other", help="x")
    async def clash(ctx):  # pragma: no cover - never runs
        return Reply.plain("")
    with pytest.raises(ValueError):
        Registry.of([*help_commands.ALL, clash])


@pytest.fixture
async def services(tmp_path):
    made = await make_services(tmp_path)
    yield made
    await close_services(made)


async def test_help_is_generated_from_declarations_and_audience(services):
    reg = registry()
    for staff, expect_parcours in ((True, True), (False, False)):
        reply = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {}, reg, staff, services))
        assert ("!parcours" in reply.text) is expect_parcours
        assert "!aide" in reply.text and "<code>!aide" in reply.html
    detail = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "Pathway"}, reg, True, services))
    assert "!parcours <action>" in detail.text and "l'équipe de la structure" in detail.text


# -- sub-commands ------------------------------------------------------------------------------------------------

def _even(word: str) -> int:
    if not word.isdigit() or int(word) % 2:
        raise ArgError(f"« {word} » n'est pas un nombre pair.")
    return int(word)


boite = group("boite", en="box", who=Audience.STAFF, default="liste", help="Une boîte d'essai.")


@boite.sub("liste", en="list", help="La liste.")
async def _liste(ctx: Context) -> Reply:
    return Reply.plain("liste")


@boite.sub("poser", en="put", aliases=["deposer"], who=Audience.COORDINATOR,
           args=[Arg("n", "un nombre pair", parse=_even), Arg("mot", "le mot, tel quel", rest=True)],
           help="Pose un mot.")
async def _poser(ctx: Context) -> Reply:
    return Reply.plain(repr(ctx.args))


def boxes() -> Registry:
    return Registry.of([*help_commands.ALL, boite])


@pytest.mark.parametrize("body", ["!boite poser 4 l'été « chaud »", "!Box PUT 4 l'été « chaud »",
                                  "!boîte déposer 4 l'été « chaud »"])
def test_a_sub_command_is_found_by_its_french_english_or_other_name(body):
    inv = boxes().parse(body)
    assert inv.sub.name == "poser" and inv.problem is None
    assert inv.args == {"n": 4, "mot": "l'été « chaud »"}, "parsed value, then the raw rest"


def test_no_sub_command_runs_the_default_and_an_unknown_one_is_hinted():
    assert boxes().parse("!boite").sub.name == "liste"
    wrong = boxes().parse("!boite poserr 2 x")
    assert isinstance(wrong, Problem) and "sous-commande inconnue « poserr »" in wrong.reply.text
    assert "Vouliez-vous dire !boite poser ?" in wrong.reply.text and "liste, poser" in wrong.reply.text


def test_an_argument_parser_refuses_in_french_with_the_generated_usage():
    inv = boxes().parse("!boite poser 3 x")
    assert inv.problem.text == "!boite poser : « 3 » n'est pas un nombre pair. Utilisation : !boite poser <n> <mot…>"
    assert "il manque : mot" in boxes().parse("!boite poser 2").problem.text


def test_audience_is_declared_per_sub_command():
    sub = boite.command.sub("poser")
    assert sub.who is Audience.COORDINATOR and boite.command.sub("liste").who is Audience.STAFF
    assert [s.name for s in boite.command.visible_subs(True, False)] == ["liste"]
    assert [s.name for s in boite.command.visible_subs(True, True)] == ["liste", "poser"]


def test_a_sub_command_word_declared_twice_is_refused():
    twice = group("double", en="twice", help="x")
    twice.sub("un", en="one", help="x")(_liste)
    with pytest.raises(ValueError):
        twice.sub("autre", en="one", help="x")(_liste)


async def test_help_details_a_group_and_each_sub_command_with_english_names(services):
    reg = boxes()
    staff = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "boite"}, reg, True, services))
    assert "!boite liste (list) (par défaut) : La liste." in staff.text and "poser" not in staff.text
    coord = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "box"}, reg, True, services,
                                             is_coordinator=True))
    assert "!boite poser <n> <mot…> (put) : Pose un mot. — la coordination de la structure" in coord.text
    sub = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "boite", "sous-commande": "PUT"},
                                           reg, True, services, is_coordinator=True))
    assert sub.text.splitlines()[:2] == ["!boite poser <n> <mot…> — Pose un mot.",
                                         "En anglais : !box put (aussi : deposer). Réservée à : la coordination de la "
                                         "structure."]
    assert "<code>&lt;n&gt;</code> : un nombre pair" in sub.html
    hidden = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "boite", "sous-commande": "poser"},
                                              reg, True, services))
    assert "Pas de sous-commande" in hidden.text, "not shown to whom it is not for"


def test_the_real_help_lists_every_pathway_sub_command():
    from bot.commands import build_registry

    parcours = build_registry().find("parcours")
    assert {"liste", "ouvrir", "info", "resume", "inviter", "clore", "rouvrir", "types"} <= {
        s.name for s in parcours.subs}


def test_fold():
    assert fold("Consentement") == fold("consentément") == "consentement"


@pytest.mark.parametrize("typed, key, used", [
    ("assistante sociale 10003456789", "assistant-service-social", 2), ("infirmière coordination", "infirmier", 1),
    ("Infirmier en pratique avancée", "infirmier", 4), ("kiné", "masseur-kinesitherapeute", 1)])
def test_a_profession_of_several_words(typed, key, used):
    from bot.commands.team import profession_of

    profession, n = profession_of(typed.split())
    assert profession is not None and profession.key == key and n == used


# -- forms ---------------------------------------------------------------------------------------------------------

def _upper(word: str) -> str:
    if not word.isalpha():
        raise ArgError(f"« {word} » n'est pas un mot.")
    return word.upper()


fiche = group("fiche", en="card", help="x")


@fiche.sub("remplir", en="fill", help="x", form=(
        Field("code", "code", "un code", _upper, example="<code>", one_word=True),
        Field("titre", "titre", "le titre", several=True, example="<titre>"),
        Field("jour", "jour", "le jour", one_word=True, looks=str.isdigit, example="12"),
        Field("mots", "mots", "les mots", aliases=("words",), example="<mots>"),
        Field("avec", "avec", "qui", one_word=True, positional=False, required=False)))
async def _fill(ctx: Context) -> Reply:
    return Reply.plain(repr(ctx.args))


def test_a_form_binds_named_fields_in_any_order_and_positions_for_the_handler():
    cards = Registry.of([fiche])
    by_position = cards.parse("!fiche remplir abc grand titre 12 un deux trois --avec moi")
    assert by_position.problem is None and by_position.args == {
        "code": "ABC", "titre": "grand titre", "jour": "12", "mots": "un deux trois", "avec": "moi"}
    named = cards.parse("!fiche remplir --jour 3 --words a b --avec x --code q tout le titre")
    assert named.args == {"code": "Q", "titre": "tout le titre", "jour": "3", "mots": "a b", "avec": "x"}
    assert fiche.command.sub("remplir").usage() == ("!fiche remplir <code> <titre> <jour> <mots…> [avec] ; ou, dans "
                                                    "n'importe quel ordre : --code … --titre … --jour … --mots … "
                                                    "--avec …")


@pytest.mark.parametrize("line, said", [
    ("!fiche remplir abc titre", "Il manque : jour, mots. Par exemple : !fiche remplir abc titre 12 <mots>."),
    ("!fiche remplir a1 titre 4 m", "« a1 » n'est pas un mot. Par exemple : !fiche remplir <code> titre 4 m."),
    ("!fiche remplir --code a --code b", "Le champ --code est donné deux fois."),
    ("!fiche remplir x y 1 z --avec", "Le champ --avec est vide : indiquez sa valeur après lui."),
])
def test_a_form_says_which_field_is_wrong_with_an_example_and_the_usage(line, said):
    parsed = Registry.of([fiche]).parse(line)
    assert parsed.problem.text.startswith(said), parsed.problem.text
    assert parsed.problem.text.endswith(f"(utilisation : {fiche.command.sub('remplir').usage()})")


async def test_help_and_the_reference_say_where_a_command_runs(services):
    from bot.commands import build_registry
    from bot.reference import markdown

    real = build_registry()
    detail = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "parcours", "sous-commande": "resume"},
                                              real, True, services))
    assert "À taper dans le salon du parcours (parcours ouvert)." in detail.text.splitlines()[1]
    info = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "parcours", "sous-commande": "info"},
                                            real, True, services))
    assert "À taper dans le salon du parcours ou dans le cercle élargi du parcours." in info.text
    anywhere = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "parcours", "sous-commande":
                                                                          "types"}, real, True, services))
    assert "À taper" not in anywhere.text
    assert "Exporte la trace des partages concernant le patient de ce salon (résumé + fichier JSON chiffré).<br>À " \
           "taper dans le salon du parcours." in markdown(real)
