"""The command registry: parsing, forgiving spelling, hints, usage, generated help."""
from __future__ import annotations

import pytest

from bot import help as help_commands
from bot.commands import Arg, Audience, Context, Invocation, Problem, Registry, Reply, command, fold


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
    parsed = registry().parse('!parcours ouvrir "Mme D" diabète type 2')
    assert parsed.args == {"action": "ouvrir", "détails": "Mme D diabète type 2"}


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
