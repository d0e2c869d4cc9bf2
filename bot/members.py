"""People as a clinician reads them: a name and a profession (a pill to their profile in HTML), never a bare
Matrix id; their state in the pathway in French."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Protocol

from bot.ports import ContactsPort, MailPort, MatrixRooms, RosterPort
from bot.reply import room_link
from bot.services import PathwaySettings
from liaison.matrix import MatrixError, as_html, notice

STATES = {"invited": "invité(e)", "joined": "présent(e)", "left": "parti(e)", "refused": "non invité(e)",
          "revoked": "retiré(e)", "circle": "au cercle élargi"}


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: str   # profession, structure, « coordination », « par MSSanté »: what tells who they are

    def text(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name

    def html(self) -> str:
        pill = (f'<a href="{escape(room_link(self.user_id))}">{escape(self.name)}</a>' if self.user_id.startswith("@")
                else escape(self.name))
        return f"{pill} ({escape(self.role)})" if self.role else pill


class PeoplePorts(Protocol):
    """What naming a person reads: the team, the contacts, the bridge's puppets, the homeserver's display names."""
    @property
    def roster(self) -> RosterPort: ...
    @property
    def settings(self) -> PathwaySettings: ...
    @property
    def mail(self) -> MailPort | None: ...
    @property
    def contacts(self) -> ContactsPort: ...
    @property
    def matrix(self) -> MatrixRooms: ...


async def person(services: PeoplePorts, user_id: str) -> Person:
    """`user_id`: a Matrix account, or the MSSanté address of an external professional."""
    if not user_id.startswith("@"):
        return await _correspondent(services, user_id, user_id)
    member = await services.roster.get(user_id)
    if member is not None:
        role = member.profession_label + (", coordination" if member.coordinator else "")
        return Person(user_id, member.display_name, role)
    settings = services.settings
    if user_id == settings.bot_user_id:
        return Person(user_id, "Liaison", "assistant de coordination")
    if user_id == settings.bridge_user_id:
        return Person(user_id, "Pont MSSanté", "messagerie sécurisée de santé")
    if settings.is_bridged(user_id) and services.mail is not None:
        address = await services.mail.puppet_address(user_id)
        if address:
            return await _correspondent(services, user_id, address)
    try:
        name = await services.matrix.display_name(user_id)
    except MatrixError:   # a name is a courtesy: the homeserver failing to give one never fails the answer
        name = None
    return Person(user_id, name or user_id, "hors de l'équipe de la structure")


async def _correspondent(services: PeoplePorts, user_id: str, address: str) -> Person:
    contact = await services.contacts.get(address)
    if contact is not None:
        role = ", ".join(filter(None, [contact.profession.label, contact.structure, "par MSSanté"]))
        return Person(user_id, contact.name or address, role)
    return Person(user_id, address, "correspondant MSSanté")


async def names(services: PeoplePorts, user_ids: list[str]) -> list[str]:
    return [(await person(services, u)).text() for u in user_ids]


async def member_lines(services: PeoplePorts, members: list[tuple[str, str, str]]) -> tuple[list[str], str]:
    """One line per member, « Nom (profession) — état », as text lines and as HTML list items."""
    text, html = [], []
    for user_id, state, _rule in members:
        who, what = await person(services, user_id), STATES.get(state, state)
        text.append(f"• {who.text()} — {what}")
        html.append(f"<li>{who.html()} — {escape(what)}</li>")
    return text, "".join(html)


def naming(*parts: "str | Person") -> dict:
    """A notice that names people: each Person as « Nom (profession) » in the text, a pill to their profile in HTML;
    the strings between them as any notice (rule ids and references as code)."""
    text = "".join(p.text() if isinstance(p, Person) else p for p in parts)
    html = "".join(p.html() if isinstance(p, Person) else as_html(p) for p in parts)
    return notice(text, html)


def kick_reason(why: str, decision) -> str:
    """The reason a removal carries: the rule only. A membership event is never encrypted, so it names no one (a
    reason may name a correspondent's address) and says nothing of the patient's will beyond the rule's id."""
    return f"{why} (règle {decision.rule})"
