"""The command registry: parsing, forgiving spelling, hints, usage, generated help."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import help as help_commands
from bot.commands import Arg, Audience, Context, Invocation, Problem, Registry, Reply, Words, command, fold


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
    missing = registry().parse("!parcours")
    assert isinstance(missing, Problem) and "il manque : action" in missing.reply.text
    assert "Utilisation : !parcours <action> [détails…]" in missing.reply.text
    extra = registry().parse("!aide un deux")
    assert isinstance(extra, Problem) and "trop d'arguments" in extra.reply.text


def test_duplicate_words_are_refused():
    @command("aide", en="other", help="x")
    async def clash(ctx):  # pragma: no cover - never runs
        return Reply.plain("")
    with pytest.raises(ValueError):
        Registry.of([*help_commands.ALL, clash])


async def test_help_is_generated_from_declarations_and_audience():
    reg = registry()
    for staff, expect_parcours in ((True, True), (False, False)):
        reply = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {}, reg, staff))
        assert ("!parcours" in reply.text) is expect_parcours
        assert "!aide" in reply.text and "<code>!aide" in reply.html
    detail = await help_commands.aide(Context("@a:hs", "!r:hs", "$e", {"commande": "Pathway"}, reg, True))
    assert "!parcours <action>" in detail.text and "l'équipe de la structure" in detail.text


def test_fold():
    assert fold("Consentement") == fold("consentément") == "consentement"


@pytest.mark.parametrize("typed, key, used", [
    ("assistante sociale 10003456789", "assistant-service-social", 2), ("infirmière coordination", "infirmier", 1),
    ("Infirmier en pratique avancée", "infirmier", 4), ("kiné", "masseur-kinesitherapeute", 1)])
def test_a_profession_of_several_words(typed, key, used):
    from bot.team import profession_of

    profession, n = profession_of(typed.split())
    assert profession is not None and profession.key == key and n == used
