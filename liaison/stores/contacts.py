"""External MSSanté professionals the coordination recorded: name, profession, structure (facts of the sharing
decisions about them). Read from the database each time: the bot writes, the bridge reads."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

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
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT address, name, profession, structure FROM external_contact "
                                           "WHERE address = :a AND active = 1"), {"a": address.lower()})).first()
        profession = find_profession(row.profession) if row else None
        if row is None or profession is None:
            return None
        return Contact(row.address, row.name, profession, row.structure)

    async def upsert(self, address: str, *, name: str, profession: Profession, structure: str, actor: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO external_contact (address, name, profession, structure, active, updated_by, updated_at) "
                "VALUES (:a, :n, :p, :s, 1, :by, :t) ON CONFLICT (address) DO UPDATE SET name = :n, profession = :p, "
                "structure = :s, active = 1, updated_by = :by, updated_at = :t"),
                {"a": address.lower(), "n": name, "p": profession.key, "s": structure, "by": actor, "t": self.clock.now_ms()})

    async def remove(self, address: str, *, actor: str) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(text("UPDATE external_contact SET active = 0, updated_by = :by, updated_at = :t "
                                           "WHERE address = :a AND active = 1"),
                                      {"a": address.lower(), "by": actor, "t": self.clock.now_ms()})
        return bool(done.rowcount)

    async def all(self) -> list[Contact]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT address, name, profession, structure FROM external_contact "
                                            "WHERE active = 1 ORDER BY address"))).all()
        known = [(r, find_profession(r.profession)) for r in rows]
        return [Contact(r.address, r.name, profession, r.structure) for r, profession in known if profession]
