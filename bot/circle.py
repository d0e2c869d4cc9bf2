"""The circle room (CSP R.1110-2): the team of care plus the non-health professionals the policy
admits, limited to the data categories their role needs; the clinical room stays health-only."""
from __future__ import annotations

from typing import Protocol

from bot.ports import MatrixRooms, RosterPort
from bot.services import PathwaySettings
from liaison.stores.pathways import Pathway, PathwayStore
from bot.reply import room_link
from bot.room_specs import power_levels, room_initial_state, space_link
from liaison.matrix import txn_id
from policies.naming import circle_room_name
from policies.sharing import Knobs

CIRCLE_STATE = "circle"


class RolesPorts(Protocol):
    """The policy's knobs: which data categories each non-health role may receive."""
    @property
    def knobs(self) -> Knobs: ...


class CirclePorts(Protocol):
    """What making the circle room reads and does."""
    @property
    def settings(self) -> PathwaySettings: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def roster(self) -> RosterPort: ...
    @property
    def matrix(self) -> MatrixRooms: ...


def role_categories(services: RolesPorts, profession_key: str | None) -> list[str]:
    return sorted(services.knobs.non_health_roles.get(profession_key or "", ()))


async def ensure_circle(services: CirclePorts, pathway: Pathway, newcomer: str) -> str:
    """The pathway's circle room with `newcomer` invited; made once, with the clinical room's members in it
    (invited before the room's first words, which they could not read otherwise: history is from invitation)."""
    if pathway.circle_room_id:
        await services.matrix.invite(pathway.circle_room_id, newcomer)
        return pathway.circle_room_id
    s, store, matrix = services.settings, services.pathways, services.matrix
    patient = await store.patient(pathway.patient_id)
    mode = s.naming
    name = circle_room_name(mode, first_names=patient.first_names, birth_name=patient.birth_name,
                            birth_year=patient.birth_date.year, code=pathway.code)
    members = [u for u, state, _ in await store.members(pathway.id) if state in ("invited", "joined")]
    coordinators = [m.user_id for m in await services.roster.members() if m.coordinator]
    parent = [space_link("m.space.parent", patient.space_id, s.server_name)] if patient.space_id else []
    room = await matrix.create_room(
        name=name, topic=f"Cercle élargi du parcours {pathway.code} (chiffré).",
        initial_state=room_initial_state() + parent,
        power_levels=power_levels(s.bot_user_id, [c for c in coordinators if c in members]),
        invite=[u for u in [*members, newcomer] if u != s.bot_user_id])
    await store.update(pathway.id, circle_room_id=room)
    if patient.space_id:
        await matrix.set_state(patient.space_id, "m.space.child", {"via": [s.server_name]}, state_key=room)
    await matrix.send(room, _notice(
        f"Ce salon est le CERCLE ÉLARGI du parcours {pathway.code} : l'équipe de soins et les "
        "professionnels non soignants admis par la politique de partage (CSP R.1110-2). N'y partagez que les "
        "informations utiles à leur mission ; les informations de soins restent dans le salon clinique."),
        txn_id(pathway.id, "circle-hello"))
    if pathway.room_id:   # always, for a pathway someone is invited to: its clinical room exists
        await matrix.send(pathway.room_id, _notice(
            f"Ce salon est le CERCLE CLINIQUE (professionnels de santé de l'équipe de soins). Un cercle élargi, "
            f"avec des professionnels non soignants, est ouvert : {room_link(room)}"),
            txn_id(pathway.id, "circle-link"))
    return room


def _notice(text: str) -> dict[str, str]:
    return {"msgtype": "m.notice", "body": text}
