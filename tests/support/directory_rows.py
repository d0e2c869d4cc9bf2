"""Rows of the national directory written straight into `directory_person` / `directory_mailbox` (the schema of
liaison/migrations/0025_directory.sql), without the importer: for the fast tests of the commands and for the bench,
which writes 500,000 of them with one `executemany` per table."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import text

PERSON = ("INSERT INTO directory_person (national_id, activity, id_type, rpps, civility, last_name, first_name, "
          "profession_code, profession_label, profession, specialty_code, specialty_label, structure, postcode, "
          "commune, department, active, import_id, updated_at) VALUES (:national_id, :activity, '8', :rpps, "
          ":civility, :last_name, :first_name, :profession_code, :profession_label, :profession, NULL, :specialty, "
          ":structure, :postcode, :commune, :department, 1, 1, 0)")
MAILBOX = ("INSERT INTO directory_mailbox (address, kind, national_id, civility, last_name, first_name, "
           "profession_code, profession_label, profession, specialty_label, structure, postcode, commune, department, "
           "active, import_id, updated_at) VALUES (:mailbox, 'PER', :national_id, :civility, :last_name, :first_name, "
           ":profession_code, :profession_label, :profession, :specialty, :structure, :postcode, :commune, "
           ":department, 1, 1, 0)")
CODES = {"medecin": ("10", "Médecin"), "pharmacien": ("21", "Pharmacien"), "infirmier": ("60", "Infirmier"),
         "masseur-kinesitherapeute": ("70", "Masseur-Kinésithérapeute")}


@dataclass(frozen=True)
class Person:
    rpps: str
    civility: str
    first_name: str
    last_name: str
    profession: str                  # a key of CODES
    commune: str
    department: str
    structure: str = ""
    specialty: str | None = None
    mailbox: str | None = None
    activity: str = "a1"

    def values(self) -> dict[str, object]:
        code, label = CODES[self.profession]
        return {"national_id": "8" + self.rpps, "activity": self.activity, "rpps": self.rpps,
                "civility": self.civility, "last_name": self.last_name, "first_name": self.first_name,
                "profession_code": code, "profession_label": label, "profession": self.profession,
                "specialty": self.specialty, "structure": self.structure or None,
                "postcode": self.department + "000", "commune": self.commune, "department": self.department,
                "mailbox": self.mailbox}


async def seed(engine, people: Iterable[Person], chunk: int = 20_000) -> int:
    """Write `people` (and their mailboxes), `chunk` rows a transaction; how many were written."""
    written = 0
    rows: Iterator[Person] = iter(people)
    while True:
        batch = [p.values() for _, p in zip(range(chunk), rows)]
        if not batch:
            return written
        async with engine.begin() as conn:
            await conn.execute(text(PERSON), batch)
            boxes = {b["mailbox"]: b for b in batch if b["mailbox"]}   # one row per address
            if boxes:
                await conn.execute(text(MAILBOX), list(boxes.values()))
        written += len(batch)


def search_landed() -> bool:
    """Whether the directory's search (liaison/directory/search.py, branch dir-core) is there yet."""
    try:
        import liaison.directory.search  # noqa: F401
    except ImportError:
        return False
    return True


def stand_in_search(services) -> None:
    """Until the real search lands: every typed word in the person's fields, folded (no ranking, no typo forgiven)."""
    if search_landed():
        return
    from bot.words import fold
    from liaison.stores.directory import mailboxes_of, person_entry

    async def search(query: str, *, limit: int = 10, offset: int = 0):
        async with services.directory.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM directory_person WHERE active = 1 "
                                            "ORDER BY last_name, first_name, national_id"))).all()
            boxes = await mailboxes_of(conn, {r.national_id for r in rows})
        words = fold(query).split()
        fields = ("rpps", "first_name", "last_name", "profession_label", "profession", "specialty_label", "commune",
                  "department")
        found = [person_entry(r, boxes.get(r.national_id)) for r in rows
                 if all(w in fold(" ".join(str(getattr(r, f) or "") for f in fields)) for w in words)]
        return found[offset:offset + limit], len(found)
    services.directory.search = search
