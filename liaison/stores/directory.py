"""The national directory (Annuaire Santé extracts): who a professional is, by RPPS, by name, by MSSanté address.

Public data, no patient's: what a team searched is not (searches are never logged with their terms). The import is
liaison/directory/ (`liaison annuaire importer`); this store reads what it wrote, for `!annuaire`, for the commands
that name a professional, for the bridge's puppets and for the sharing decision's facts about an external address.
"""
from __future__ import annotations

from dataclasses import dataclass

from liaison.stores.base import Store
from liaison.stores.retention import Retention
from policies.professions import Profession

CIVILITIES = {"DR": "Dr", "PR": "Pr", "MME": "Mme", "M": "M.", "MLLE": "Mme"}


@dataclass(frozen=True)
class Entry:
    """A professional (or a service's mailbox) as the directory says it."""
    national_id: str | None         # 8 + RPPS, 0 + ADELI; None for an ORG mailbox
    rpps: str | None
    civility: str | None            # the extract's code: DR, PR, MME, M…
    last_name: str
    first_name: str | None
    profession: Profession | None   # one of policies/professions.py, when its code is one of ours
    profession_label: str | None    # the extract's label, always
    specialty: str | None           # savoir-faire (« Cardiologie et maladies vasculaires »)
    structure: str | None
    commune: str | None
    postcode: str | None
    department: str | None
    mailbox: str | None             # an MSSanté address
    active: bool = True

    @property
    def name(self) -> str:
        """« Dr Camille Lefebvre »."""
        title = CIVILITIES.get((self.civility or "").upper().strip("."), "")
        return " ".join(w for w in (title, self.first_name or "", self.last_name) if w)


@dataclass(frozen=True)
class ImportState:
    """One import, as `liaison annuaire etat` shows it."""
    id: int
    kind: str
    file_name: str
    started_at: int
    finished_at: int | None
    state: str
    read_rows: int
    added: int
    changed: int
    unchanged: int
    inactivated: int
    malformed: int
    problems: str | None


class Directory(Store):
    RETENTION = Retention(no_patient_data={
        "directory_person": "the national directory's professionals (public data)",
        "directory_mailbox": "the national directory's MSSanté mailboxes (public data)",
        "directory_import": "each directory import: file, date, counts, malformed line numbers"})

    async def by_address(self, address: str) -> Entry | None:
        """The active mailbox `address` (any case), with its owner's profession, specialty and structure."""
        raise NotImplementedError

    async def by_id(self, rpps_or_national_id: str) -> list[Entry]:
        """The active activities of one professional, by RPPS (11 digits) or national id (8 + RPPS, 0 + ADELI),
        each with the person's MSSanté address when the directory has one."""
        raise NotImplementedError

    async def search(self, query: str, *, limit: int = 10, offset: int = 0) -> tuple[list[Entry], int]:
        """The best matches of `query` (a name, an RPPS, a profession with a commune or a department, a
        savoir-faire), accent- and case-insensitive, a typo or two forgiven; and how many there are in all."""
        raise NotImplementedError

    async def imports(self, limit: int = 10) -> list[ImportState]:
        """The last imports, the newest first."""
        raise NotImplementedError
