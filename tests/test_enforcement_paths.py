"""Every path that moves patient information is declared (policies/paths.py) and decided at the moment it moves,
through `liaison.enforcement.decide_at` (or `decide_many`, a batch of them): a path never enforced, a decision taken
outside the table, or a path the README does not list, fails here."""
from __future__ import annotations

import ast
from pathlib import Path

from policies.paths import PATHS

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("bot", "bridge", "liaison")
DECIDERS = {"decide_for", "decide", "facts_for", "facts_for_many"}
ALLOWED_DECIDERS = {"liaison/enforcement.py", "liaison/sharing_facts.py"}


def _calls():
    for package in SERVICES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    yield rel, name, node


def test_no_decision_is_taken_outside_the_enforcement_point():
    outside = [f"{rel}:{node.lineno} {name}()" for rel, name, node in _calls()
               if name in DECIDERS and rel not in ALLOWED_DECIDERS]
    assert not outside, f"decide through liaison.enforcement.decide_at with a declared path: {outside}"


def test_every_declared_path_is_enforced_somewhere_and_only_declared_paths_are():
    used: dict[str, list[str]] = {}
    for rel, name, node in _calls():
        if name not in ("decide_at", "decide_many"):   # one decision, or a batch of them
            continue
        first = node.args[1] if len(node.args) > 1 else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            used.setdefault(first.value, []).append(f"{rel}:{node.lineno}")
        elif isinstance(first, ast.IfExp):   # "a" if … else "b"
            for branch in (first.body, first.orelse):
                assert isinstance(branch, ast.Constant), f"{rel}:{node.lineno}: the path must be written out"
                used.setdefault(branch.value, []).append(f"{rel}:{node.lineno}")
        elif rel != "liaison/enforcement.py":
            raise AssertionError(f"{rel}:{node.lineno}: decide_at's path must be a literal name from PATHS")
    assert set(used) - set(PATHS) == set(), f"undeclared paths: {set(used) - set(PATHS)}"
    assert set(PATHS) - set(used) == set(), f"declared but never enforced: {set(PATHS) - set(used)}"


def test_the_readme_lists_every_path_with_its_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in PATHS if f"`{name}`" not in readme]
    assert not missing, f"README's consent section must list: {missing}"
