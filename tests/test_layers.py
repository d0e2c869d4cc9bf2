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


# -- the walls of issue 23: the clock, the command families, the stores ----------------------------------------------

WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"), ("date", "today")}
CLOCK = ROOT / "liaison" / "clock.py"
STACK = ROOT / "liaison" / "stack"   # the local development stack (certificates' validity), not the services
# An input check, not a decision in time: a birth date typed in the future of today's calendar is refused.
WALL_CLOCK_ALLOWED = {"policies/ins.py": 1}


def wall_clock_reads(path: Path) -> int:
    """Calls such as datetime.now(), time.time(), date.today(), dt.datetime.now()."""
    count = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            count += (name, node.func.attr) in WALL_CLOCK
    return count


@pytest.mark.parametrize("path", CODE, ids=_id)
def test_time_is_read_from_the_clock_port_only(path):
    """Retention, purges, expiries and reminders must follow a clock the tests can move (liaison/clock.py)."""
    if path == CLOCK or STACK in path.parents:
        return
    assert wall_clock_reads(path) <= WALL_CLOCK_ALLOWED.get(_id(path), 0), \
        f"{_id(path)} reads the wall clock: take a Clock (services.clock, d.clock, a store's clock)"


def declares_commands(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("command", "group"):
            return True
    return False


@pytest.mark.parametrize("path", CODE, ids=_id)
def test_commands_are_declared_in_their_family_file_only(path):
    """One file per family in bot/commands/, listed in bot/commands/__init__.py: nowhere else declares a command."""
    families = ROOT / "bot" / "commands"
    if declares_commands(path):
        assert families in path.parents, f"{_id(path)} declares a command outside bot/commands/"


def test_every_family_file_is_in_the_registry():
    from bot.commands import FAMILIES

    files = {p.stem for p in (ROOT / "bot" / "commands").glob("*.py") if p.stem != "__init__"}
    assert files == {f.__name__.rsplit(".", 1)[1] for f in FAMILIES}, "a family file is missing from FAMILIES"


def declares_retention(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(isinstance(s, (ast.Assign, ast.AnnAssign)) and "RETENTION" in ast.unparse(s).split("=")[0]
                    for s in node.body)]


@pytest.mark.parametrize("path", CODE, ids=_id)
def test_stores_live_in_the_stores_folder_or_a_service_s_own_store(path):
    """A class that keeps patient facts declares its RETENTION, and lives in liaison/stores/ (shared) or in the bot's
    or the bridge's own store module."""
    homes = {ROOT / "bot" / "store.py", ROOT / "bridge" / "store.py"}
    if declares_retention(path):
        assert path in homes or ROOT / "liaison" / "stores" in path.parents, \
            f"{_id(path)} declares a store outside liaison/stores/"


def test_the_new_walls_see_what_they_look_for():
    assert wall_clock_reads(CLOCK) >= 1, "the clock itself reads the wall clock"
    assert declares_commands(ROOT / "bot" / "commands" / "pathways.py")
    assert declares_retention(ROOT / "liaison" / "stores" / "pathways.py") == ["PathwayStore"]
