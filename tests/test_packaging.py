"""The package metadata a fresh `make install` builds from: no deprecated form setuptools will refuse."""

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_the_license_is_an_spdx_expression_not_a_table():
    # PEP 639: setuptools warns on `license = { text = ... }` and refuses it from 2027-02-18.
    assert _pyproject()["project"]["license"] == "AGPL-3.0-or-later"


def test_the_build_asks_for_a_setuptools_that_reads_the_spdx_license():
    # setuptools reads a license expression from 77.0 on; an older one fails on the string form.
    requires = _pyproject()["build-system"]["requires"]
    floors = [re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", r) for r in requires]
    (floor,) = [int(m.group(1)) for m in floors if m]
    assert floor >= 77
