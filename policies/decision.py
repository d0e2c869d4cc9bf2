"""Decisions are values: they carry the rule that decided and a sentence a coordinator understands."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Allow:
    rule: str
    reason: str
    basis: str = ""
    allowed = True


@dataclass(frozen=True)
class Deny:
    rule: str
    reason: str
    basis: str = ""
    allowed = False


Decision = Allow | Deny
