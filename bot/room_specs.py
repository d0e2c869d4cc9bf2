"""What a patient space and a pathway room look like when created: state, power levels, summary.

Pure functions over plain values; the Matrix calls are made by bot/commands/pathways.py.
"""
from __future__ import annotations

from datetime import date
from html import escape

from liaison.stores.pathways import SUMMARY_FIELDS
from policies.gender import born

MEGOLM = "m.megolm.v1.aes-sha2"
COORDINATOR_LEVEL = 50
RELAY_LEVEL = 10   # the MSSanté bridge: it invites its puppets (the correspondents) into a patient's rooms
BOT_ONLY = 100   # a power only the bot (the room's creator) has
CLOSED_EVENTS_DEFAULT = COORDINATOR_LEVEL   # a closed pathway: members read, the coordination may still write


def _state(event_type: str, content: dict, state_key: str = "") -> dict:
    return {"type": event_type, "state_key": state_key, "content": content}


def room_initial_state() -> list[dict]:
    """Encrypted, invite-only (the private preset's join rule), no guests, history from one's invitation."""
    return [
        _state("m.room.encryption", {"algorithm": MEGOLM}),
        _state("m.room.guest_access", {"guest_access": "forbidden"}),
        _state("m.room.history_visibility", {"history_visibility": "invited"}),
    ]


def space_link(event_type: str, room_id: str, server_name: str) -> dict:
    """m.space.child (in the space) or m.space.parent (in the room) pointing at room_id."""
    content = {"via": [server_name]} | ({"canonical": True} if event_type == "m.space.parent" else {})
    return _state(event_type, content, room_id)


def space_initial_state() -> list[dict]:
    return [
        _state("m.room.guest_access", {"guest_access": "forbidden"}),
        _state("m.room.history_visibility", {"history_visibility": "invited"}),
    ]


def power_levels(bot: str, coordinators: list[str], *, closed: bool = False, invite: int = RELAY_LEVEL,
                 bridge: str | None = None) -> dict:
    """The bot above all, the coordination at 50, the MSSanté bridge (`bridge`) at 10, everyone else at 0; a closed
    room is read-only for members. `invite`: who may invite (10, a patient's rooms: the coordination, whose
    invitations the bot still decides after the fact, and the bridge, for its puppets, which it decides before; the
    others ask the bot, `!parcours inviter`, which decides first; 100: the bot alone, for the rooms whose members the
    bot alone chooses: the quarantine, the archives).

    The bot creates the rooms: in room version 12 (Synapse's default) a creator's power is
    implicit and unlimited, and naming it in `users` is refused.
    """
    users = {c: COORDINATOR_LEVEL for c in coordinators if c != bot} | ({bridge: RELAY_LEVEL} if bridge else {})
    return {
        "users": users,
        "users_default": 0,
        "events_default": CLOSED_EVENTS_DEFAULT if closed else 0,
        "state_default": COORDINATOR_LEVEL,
        "invite": invite,
        "kick": COORDINATOR_LEVEL,
        "ban": COORDINATOR_LEVEL,
        "redact": COORDINATOR_LEVEL,
        "events": {
            "m.room.name": COORDINATOR_LEVEL,
            "m.room.topic": COORDINATOR_LEVEL,
            "m.room.pinned_events": COORDINATOR_LEVEL,
            "m.room.power_levels": 100,
            "m.room.encryption": 100,
            "m.room.history_visibility": 100,
            "m.room.join_rules": 100,
            "m.room.guest_access": 100,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.space.parent": 100,
            "m.space.child": 100,
        },
    }


def summary_message(*, identity: dict, pathway_label: str, code: str, opened_by: str, opened_on: date,
                    fields: dict[str, tuple[str, int]], team: list[str]) -> tuple[str, str]:
    """The pinned summary (sent encrypted): identity, pathway, team, and the summary fields."""
    sex = {"F": "féminin", "M": "masculin"}[identity["sex"]]
    lines = [
        f"Parcours {pathway_label} ({code}) — résumé",
        f"Patient : {identity['birth_name'].upper()} {identity['first_names']}, {born(identity['sex'])} le "
        f"{identity['birth_date']:%d/%m/%Y}, sexe {sex}",
        f"INS : {identity['ins']} ({identity['ins_kind']}, OID {identity['oid']})",
        f"Ouvert le {opened_on:%d/%m/%Y} par {opened_by}",
        "Équipe : " + (", ".join(team) or "—"),
    ]
    for key, label in SUMMARY_FIELDS.items():
        value, version = fields.get(key, ("—", 0))
        lines.append(f"{label} : {value}" + (f" (v{version})" if version > 1 else ""))
    html = [f"<h4>Parcours {escape(pathway_label)} ({escape(code)}) — résumé</h4><ul>"]
    html += [f"<li>{escape(line)}</li>" for line in lines[1:]]
    html.append("</ul>")
    return "\n".join(lines), "".join(html)
