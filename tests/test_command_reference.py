"""The README's command reference is the declarations' own: generated, and checked here."""
from __future__ import annotations

from bot import reference
from bot.commands import build_registry


def test_the_readme_reference_is_generated_from_the_declarations():
    readme = reference.README.read_text(encoding="utf-8")
    assert reference.rewritten(readme, build_registry()) == readme, "run: python -m bot.reference"


def test_every_command_and_sub_command_is_in_the_reference_with_its_english_name():
    table = reference.markdown(build_registry())
    for cmd in build_registry().commands:
        assert f"`!{cmd.english}`" in table
        for sub in cmd.subs:
            assert f"`!{cmd.english} {sub.english}`" in table and f"!{cmd.name} {sub.name}" in table


def test_a_reference_out_of_date_is_found():
    stale = reference.README.read_text(encoding="utf-8").replace("`!pathway invite`", "`!pathway ask`")
    assert reference.rewritten(stale, build_registry()) != stale
