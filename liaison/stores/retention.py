"""What a pathway's retention deletes, declared by the store that holds each table.

Every store says, for each of its tables, one of three things: a pathway's archive forgets its rows there (`Forget`:
deleted, or some columns blanked), the archive keeps them on purpose (`kept`: the trace, the patient's identity…),
or the table holds no patient data at all (`no_patient_data`). The archive (bot/archive.py) runs every store's
`Forget` in one transaction; tests/test_retention.py reads the migrated schema and fails on a table no store
declares, so a new table cannot hold patient data past its pathway by oversight.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Forget:
    """One table's rows of an archived pathway: deleted, or only the columns `blank` set to NULL."""
    table: str
    key: str = "pathway_id"          # the column that names the pathway
    blank: tuple[str, ...] = ()      # empty: the rows are deleted

    def statement(self) -> str:
        if self.blank:
            return f"UPDATE {self.table} SET {', '.join(f'{c} = NULL' for c in self.blank)} WHERE {self.key} = :p"
        return f"DELETE FROM {self.table} WHERE {self.key} = :p"


@dataclass(frozen=True)
class Retention:
    """A store's tables and what a pathway's archive does to each (tables named by no `Forget` need a reason)."""
    forget: tuple[Forget, ...] = ()
    kept: Mapping[str, str] = field(default_factory=dict)             # table -> why its patient data stays
    no_patient_data: Mapping[str, str] = field(default_factory=dict)  # table -> what it holds instead

    def __add__(self, other: Retention) -> Retention:
        return Retention(self.forget + other.forget, {**self.kept, **other.kept},
                         {**self.no_patient_data, **other.no_patient_data})

    def tables(self) -> set[str]:
        return {f.table for f in self.forget} | set(self.kept) | set(self.no_patient_data)


def shared() -> tuple[Retention, ...]:
    """The declarations of the stores both services share (liaison/): the archive asks them all, and the bot's own."""
    # Imported here: each of these modules imports this one for Forget and Retention.
    from liaison.stores.care_plan import CarePlanStore
    from liaison.stores.consents import ConsentStore
    from liaison.stores.contacts import Contacts
    from liaison.stores.directory import Directory
    from liaison.stores.documents import DocumentStore
    from liaison.stores.mail import MailStore
    from liaison.stores.pathways import PathwayStore
    from liaison.stores.roster import Roster
    from liaison.stores.rcp import RcpStore
    from liaison.stores.tasks import TaskStore
    from liaison.stores.trace import Trace
    return tuple(s.RETENTION for s in (PathwayStore, DocumentStore, MailStore, ConsentStore, Contacts, Roster, Trace,
                                       RcpStore, TaskStore, CarePlanStore, Directory))   # RCP decisions before their tasks


async def forget_pathway(engine: AsyncEngine, declared: Iterable[Retention], pathway_id: str) -> int:
    """Every declared `Forget` for one pathway, all in one transaction; the rows deleted or blanked."""
    done = 0
    async with engine.begin() as conn:
        for retention in declared:
            for f in retention.forget:
                done += (await conn.execute(text(f.statement()), {"p": pathway_id})).rowcount or 0
    return done
