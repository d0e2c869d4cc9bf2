"""A pathway exported in FHIR R4 (`!parcours export`, `liaison export fhir`), on the fakes at a fixed moment in Paris.

Every resource of the Bundle is validated by `fhir.resources` (its R4B model for its resourceType), not by checks
written here; what is checked here is what the law and the mapping say: the INS, the statuses, the references that
stay inside the Bundle, no document's content, the export decided and traced with its recipient.
"""
from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class

from liaison.cli import main
from liaison.clock import MovableClock
from liaison.enforcement import decide_at
from liaison.fhir_export import IDNPS_SYSTEM, PROFESSION_SYSTEM
from policies.ins import OID_INS_NIR_TEST
from policies.professions import luhn_check_digit
from tests.fakes import COORD, GP, NURSE, OUTSIDER, ROSTER
from tests.test_subcommands import INS, World, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")
RPPS = "1000000000" + str(luhn_check_digit("1000000000"))
EXPORTED = "exporter le parcours (FHIR)"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
async def paris(worlds) -> World:
    roster = [dict(e, professional_id=RPPS, structure="MSP des Tilleuls") if e["user_id"] == GP else e for e in ROSTER]
    return await worlds(clock=MovableClock(at(2027, 1, 8, 10, 0)), roster=roster)


async def full_pathway(world: World) -> tuple[str, str]:
    """A pathway with its team (GP, nurse), four tasks (one done, one cancelled, a profession's request, one
    taken), a consent, an objection and a document; its room and its code."""
    room = await world.open(team="medecin,infirmier")
    world.m.accept(room, NURSE)
    pathway = await world.pathway(room)
    tasks = world.s.tasks
    due = ms(at(2027, 1, 12, 9, 0))
    done, _ = await tasks.create(pathway.id, text_="Bilan sanguin", actor=COORD, owner=GP, due_at=due)
    await tasks.done(done, GP, None, None)
    await tasks.create(pathway.id, text_="Pansement", actor=COORD, profession="infirmier", due_at=due)
    cancelled, _ = await tasks.create(pathway.id, text_="Appeler l'officine", actor=COORD, owner=COORD)
    await tasks.cancel(cancelled, COORD)
    taken, _ = await tasks.create(pathway.id, text_="Visite à domicile", actor=COORD, profession="medecin")
    await tasks.take(taken, GP)
    await world.consent(room, OUTSIDER)
    objected = await world.say(COORD, "!opposition pharmacien", room)
    assert "opposition" in objected.text.lower(), objected.text
    await world.add_document(room)
    return room, pathway.code


async def export(world: World, code: str, sender: str = COORD):
    coordination = await world.coordination_room()
    return await world.say(sender, f"!parcours export {code}", coordination), coordination


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def by_type(bundle: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for e in bundle["entry"]:
        found.setdefault(e["resource"]["resourceType"], []).append(e["resource"])
    return found


async def test_the_bundle_validates_resource_by_resource_and_its_references_stay_inside(paris):
    room, code = await full_pathway(paris)
    reply, coordination = await export(paris, code)
    (where, name, mime, data), = paris.m.files
    assert (where, name, mime) == (coordination, f"parcours-{code}.fhir.json", "application/fhir+json")
    bundle = json.loads(data)
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
    assert bundle["type"] == "collection" and bundle["timestamp"] == "2027-01-08T09:00:00Z"
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert len(urls) == len(bundle["entry"])
    assert set(references(bundle)) <= urls, set(references(bundle)) - urls
    kinds = by_type(bundle)
    assert {k: len(v) for k, v in kinds.items()} == {
        "Patient": 1, "EpisodeOfCare": 1, "CareTeam": 1, "CarePlan": 1, "Task": 4, "Consent": 2,
        "DocumentReference": 1, "Practitioner": 3, "PractitionerRole": 3}
    assert reply.text.startswith(f"Parcours {code} exporté en FHIR R4"), reply.text
    assert "Task 4" in reply.text and "Consent 2" in reply.text and "DocumentReference 1" in reply.text


async def test_the_mapping_the_ins_the_statuses_the_team_and_the_will(paris):
    room, code = await full_pathway(paris)
    await export(paris, code)
    bundle = json.loads(paris.m.files[0][3])
    kinds = by_type(bundle)
    (patient,) = kinds["Patient"]
    assert patient["identifier"] == [{"use": "official", "system": f"urn:oid:{OID_INS_NIR_TEST}", "value": INS}]
    assert patient["name"][0]["family"] == "Durand" and patient["birthDate"] == "1948-05-12"
    assert patient["gender"] == "male"
    (episode,) = kinds["EpisodeOfCare"]
    assert episode["status"] == "active" and episode["type"][0]["text"] == "Insuffisance cardiaque"
    (plan,) = kinds["CarePlan"]
    assert plan["status"] == "active" and "goal" not in plan and len(plan["activity"]) == 4
    tasks = {t["description"]: t for t in kinds["Task"]}
    assert {d: t["status"] for d, t in tasks.items()} == {
        "Bilan sanguin": "completed", "Pansement": "requested", "Appeler l'officine": "cancelled",
        "Visite à domicile": "in-progress"}
    request = tasks["Pansement"]
    assert "owner" not in request
    assert request["performerType"][0]["coding"] == [{"system": PROFESSION_SYSTEM, "code": "60", "display": "Infirmier"}]
    assert request["restriction"]["period"]["end"] == "2027-01-12T08:00:00Z"
    assert all(t["intent"] == "order" and t["basedOn"] == [{"reference": plan_url(bundle)}] for t in tasks.values())
    assert "start" in tasks["Visite à domicile"]["executionPeriod"] and "end" in tasks["Bilan sanguin"]["executionPeriod"]
    roles = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    gp_role = roles[tasks["Visite à domicile"]["owner"]["reference"]]
    assert gp_role["code"][0]["coding"][0]["code"] == "10" and gp_role["organization"]["display"] == "MSP des Tilleuls"
    gp = roles[gp_role["practitioner"]["reference"]]
    assert gp["identifier"] == [{"use": "official", "system": IDNPS_SYSTEM, "value": "8" + RPPS}]
    (team,) = kinds["CareTeam"]
    assert team["identifier"] == [{"value": code}] and team["period"]["start"]
    members = {p["member"]["display"] for p in team["participant"]}
    assert members == {"Claire Morel", "Dr Paul Martin", "Sophie Bernard"}
    coordination = next(p for p in team["participant"] if p["member"]["display"] == "Claire Morel")
    assert {"text": "Coordination du parcours"} in coordination["role"]
    consents = {c["provision"]["type"]: c for c in kinds["Consent"]}
    assert set(consents) == {"permit", "deny"} and all(c["status"] == "active" for c in consents.values())
    assert consents["permit"]["provision"]["actor"][0]["reference"]["display"] == OUTSIDER
    assert "pharmacien" in consents["deny"]["provision"]["actor"][0]["reference"]["display"].lower()
    assert {c["policyRule"]["coding"][0]["code"] for c in consents.values()} == {"OPTIN", "OPTOUT"}


def plan_url(bundle: dict) -> str:
    return next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan")


async def test_a_document_is_its_index_never_its_content(paris):
    room, code = await full_pathway(paris)
    await export(paris, code)
    raw = paris.m.files[0][3].decode()
    (doc,) = by_type(json.loads(raw))["DocumentReference"]
    attachment = doc["content"][0]["attachment"]
    assert set(attachment) <= {"contentType", "size", "creation"}, attachment
    assert doc["type"]["text"] == "Compte rendu de consultation" and doc["description"] == "cr-cardio.pdf"
    assert doc["identifier"][0]["value"].startswith("ni:///sha-256;")
    assert "mxc://" not in raw and '"data"' not in raw and '"url":' not in raw


async def test_the_export_is_decided_when_sent_and_traced_with_its_recipient(paris):
    room, code = await full_pathway(paris)
    reply, _ = await export(paris, code)
    (entry,) = [e for e in await paris.s.trace.entries() if e.action == EXPORTED]
    assert (entry.subject, entry.actor, entry.rule, entry.allowed) == (COORD, COORD, "export.coordination", True)
    assert f"trace {entry.seq})" in reply.text and "règle export.coordination" in reply.text


async def test_a_refusal_names_its_rule_and_sends_nothing(paris):
    room, code = await full_pathway(paris)
    coordination = await paris.coordination_room()
    reply = await paris.say(NURSE, f"!parcours export {code}", coordination)
    assert "room.coordination" in reply.text and not paris.m.files
    pathway = await paris.pathway(room)
    decided = await decide_at(paris.s.sharing, "pathway.export", pathway=pathway, recipient=GP, actor=GP)
    assert not decided.allowed and decided.decision.rule == "export.coordination"
    assert "n'est remis qu'à la coordination" in decided.sentence()


async def test_an_unknown_code_is_answered_in_french_and_nothing_is_traced(paris):
    await full_pathway(paris)
    traced = await paris.traced()
    reply, _ = await export(paris, "P-NOPE1")
    assert reply.text == "Aucun parcours de code « P-NOPE1 » (!parcours liste pour la liste)."
    assert await paris.traced() == traced and not paris.m.files


async def test_a_closed_pathway_exports_as_finished(paris):
    room, code = await full_pathway(paris)
    await paris.say(COORD, "!parcours clore fin de prise en charge", room)
    await export(paris, code)
    kinds = by_type(json.loads(paris.m.files[-1][3]))
    assert kinds["EpisodeOfCare"][0]["status"] == "finished" and "end" in kinds["EpisodeOfCare"][0]["period"]
    assert kinds["CarePlan"][0]["status"] == "completed" and kinds["CareTeam"][0]["status"] == "inactive"


BASE = {"homeserver": {"url": "http://127.0.0.1:1", "server_name": "hs"},
        "bot": {"user_id": "@bot:hs", "password": "a-real-password", "store_pickle_key": "s" * 32}}


async def test_the_operator_exports_to_a_private_file_traced_for_the_operator(paris, tmp_path, capsys):
    room, code = await full_pathway(paris)
    cfg = tmp_path / "liaison.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "database": {"url": str(paris.s.pathways.engine.url)}}))
    out = tmp_path / "export" / "bundle.json"
    out.parent.mkdir()
    assert await asyncio.to_thread(main, ["export", "fhir", code.lower(), "-o", str(out), "-c", str(cfg)]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    bundle = json.loads(out.read_text())
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    (entry,) = [e for e in await paris.s.trace.entries() if e.action == EXPORTED]
    assert (entry.subject, entry.rule, entry.allowed) == ("exploitant", "export.operator", True)
    assert f"trace {entry.seq})" in capsys.readouterr().out

    traced = len(await paris.s.trace.entries())
    assert await asyncio.to_thread(main, ["export", "fhir", "P-NOPE1", "-o", str(tmp_path / "x.json"),
                                          "-c", str(cfg)]) == 2
    assert "aucun parcours de code « P-NOPE1 »" in capsys.readouterr().err
    assert len(await paris.s.trace.entries()) == traced and not (tmp_path / "x.json").exists()
