"""The README's command reference, generated from the declarations (`python -m bot.reference` rewrites it,
`--check` says whether it is current; tests/test_command_reference.py runs the check)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.parsing import Registry
from bot.registry import Arg, place

BEGIN = "<!-- commandes : début (généré par `python -m bot.reference`, ne pas modifier à la main) -->"
END = "<!-- commandes : fin -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def markdown(registry: Registry) -> str:
    rows = ["| commande | en anglais (autres noms) | pour | ce qu'elle fait |", "|---|---|---|---|"]
    for cmd in registry.commands:
        rows.append(f"| `{_code(cmd.usage())}` | `!{cmd.english}`{_aliases(cmd.aliases)} | {cmd.who.value} | "
                    f"{_cell(cmd.summary)}{_where(place(cmd.room, cmd.open))}{_args(cmd.args)} |")
        default = cmd.sub(cmd.default) if cmd.default else None
        for sub in cmd.subs:
            note = " (sans sous-commande)" if sub is default else ""
            rows.append(f"| `{_code(sub.usage())}` | `!{cmd.english} {sub.english}`{_aliases(sub.aliases)} | "
                        f"{sub.who.value} | {_cell(sub.summary)}{note}{_where(sub.place(cmd))}{_args(sub.args)} |")
    return "\n".join(rows)


def _where(place: str) -> str:
    return f"<br>À taper {place}." if place else ""


def _aliases(aliases: tuple[str, ...]) -> str:
    return "".join(f", `{a}`" for a in aliases)


def _args(args: tuple[Arg, ...]) -> str:
    return "".join(f"<br>`{_code(a.usage())}` : {_cell(a.help)}" for a in args)


def _code(text: str) -> str:
    """Inside a code span of a table cell: only the column bar needs escaping."""
    return text.replace("|", "\\|")


def _cell(text: str) -> str:
    return _code(text).replace("<", "&lt;").replace(">", "&gt;")


def rewritten(readme: str, registry: Registry) -> str:
    head, found, rest = readme.partition(BEGIN)
    _, ended, tail = rest.partition(END)
    if not found or not ended:
        raise ValueError(f"README: the markers {BEGIN!r} … {END!r} are missing")
    return f"{head}{BEGIN}\n{markdown(registry)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    from bot.commands import build_registry

    parser = argparse.ArgumentParser(prog="python -m bot.reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="ne rien écrire : dire si le README est à jour")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = rewritten(current, build_registry())
    if args.check:
        if wanted != current:
            print("README.md : la référence des commandes n'est pas à jour (python -m bot.reference)", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
