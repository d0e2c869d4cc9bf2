"""The house's walls, checked on the source: only liaison/matrix/ imports nio, bot/ and bridge/ never import each
other, and policies/ imports no I/O (tests/test_policies_pure.py). Pure reading of the files: no import is run."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = sorted(p for top in ("bot", "bridge", "liaison", "policies") for p in (ROOT / top).rglob("*.py"))
MATRIX = ROOT / "liaison" / "matrix"


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append(node.module or "")
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CODE, ids=_id)
def test_only_the_matrix_package_imports_nio(path):
    if MATRIX in path.parents:
        return
    assert not [name for name in imports(path) if name.split(".")[0] == "nio"], f"{_id(path)} imports nio"


@pytest.mark.parametrize("path", CODE, ids=_id)
def test_the_bot_and_the_bridge_do_not_import_each_other(path):
    top = path.relative_to(ROOT).parts[0]
    other = {"bot": "bridge", "bridge": "bot"}.get(top)
    if other is None:
        assert top in ("liaison", "policies")
        assert not [n for n in imports(path) if n.split(".")[0] in ("bot", "bridge")], \
            f"{_id(path)}: the shared pieces import neither the bot nor the bridge"
        return
    assert not [n for n in imports(path) if n.split(".")[0] == other], f"{_id(path)} imports {other}/"


def test_the_walls_are_checked_on_every_file():
    assert len(CODE) > 100 and any(MATRIX in p.parents for p in CODE)
    assert "nio" in {n.split(".")[0] for n in imports(MATRIX / "client.py")}, "the check sees nio where it is"
