"""The bot's command families, one file each: `!aide` (help), `!equipe` (team), `!parcours` (pathways), `!trace`,
`!consentement` and its kin (consents), `!mss`, `!doc` / `!docs` (documents), `!tache` / `!taches` (tasks),
`!protocole` (protocols), `!ppcs` (the care plan), `!rcp` (RCP meetings), `!annuaire` (the directory).

A family is a module whose `ALL` lists its declared commands and groups (bot/registry.py: `@command`, `group`,
`@group.sub`, with where each runs: `room=`, `open=`). The registry is built here, from this explicit list: adding a
family is one file in this folder and one name below (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from bot.commands import consents, directory, documents, help, mss, pathways, ppcs, protocols, rcp, tasks, team, trace
from bot.parsing import Registry

FAMILIES = (help, team, pathways, tasks, ppcs, protocols, rcp, trace, consents, mss, documents, directory)


def build_registry() -> Registry:
    return Registry.of([declared for family in FAMILIES for declared in family.ALL])
