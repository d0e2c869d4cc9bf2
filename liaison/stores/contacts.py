"""External MSSanté professionals the coordination recorded: name, profession, structure (facts of the sharing
decisions about them). Read from the database each time: the bot writes, the bridge reads.

Each change is written with its trace entry (liaison/stores/facts.py); a record the trace does not vouch for as it is
reads as no record: the address's profession and structure unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from liaison.stores import facts
from liaison.stores.facts import Altered
from liaison.stores.retention import Retention
from liaison.stores.base import Store
from policies.professions import Profession, find_profession


@dataclass(frozen=True)
class Contact:
    address: str
    name: str
    profession: Profession
    structure: str


class Contacts(Store):
    RETENTION = Retention(no_patient_data={"external_contact": "external professionals: address, profession"})

    async def get(self, address: str) -> Contact | None:
        return (await self.checked(address))[0]

    async def checked(self, address: str) -> tuple[Contact | None, list[Altered]]:
        """The address's record, unless the trace does not vouch for it as it is (then None, and named): what a
        sharing decision reads."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM external_contact WHERE address = :a"),
                                       {"a": address.lower()})).all()
            altered = await facts.check(conn, "external_contact", rows, ids=[address.lower()])
        row = rows[0] if rows and rows[0].active and not altered else None
        profession = find_profession(row.profession) if row else None
        if row is None or profession is None:
            return None, altered
        return Contact(row.address, row.name, profession, row.structure), altered

    async def upsert(self, address: str, *, name: str, profession: Profession, structure: str, actor: str) -> None:
        at = self.clock.now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO external_contact (address, name, profession, structure, active, updated_by, updated_at) "
                "VALUES (:a, :n, :p, :s, 1, :by, :t) ON CONFLICT (address) DO UPDATE SET name = :n, profession = :p, "
                "structure = :s, active = 1, updated_by = :by, updated_at = :t"),
                {"a": address.lower(), "n": name, "p": profession.key, "s": structure, "by": actor, "t": at})
            await facts.record(conn, "external_contact", [address.lower()], at=at, actor=actor,
                               rule="contact.recorded")

    async def remove(self, address: str, *, actor: str) -> bool:
        at = self.clock.now_ms()
        async with self.engine.begin() as conn:
            done = await conn.execute(text("UPDATE external_contact SET active = 0, updated_by = :by, updated_at = :t "
                                           "WHERE address = :a AND active = 1"),
                                      {"a": address.lower(), "by": actor, "t": at})
            if done.rowcount:
                await facts.record(conn, "external_contact", [address.lower()], at=at, actor=actor,
                                   rule="contact.removed")
        return bool(done.rowcount)

    async def all(self) -> list[Contact]:
        """The records the trace vouches for (one changed in the database is left out, and logged)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM external_contact ORDER BY address"))).all()
            altered = facts.altered_ids(await facts.check(conn, "external_contact", rows))
        known = [(r, find_profession(r.profession)) for r in rows if r.active and r.address not in altered]
        return [Contact(r.address, r.name, profession, r.structure) for r, profession in known if profession]
