"""One bootstrap: the shared stores, the law's port and the clock, built once from the config.

`python -m bot`, `python -m bridge` and the tests' fakes (`tests/fakes.py`) all go through `shared_stores`: the
fakes replace adapters (the Matrix client, SMTP, IMAP), never this wiring. Each service then builds its own narrow
parts from `Shared` (`bot.services.Services.of`, `bridge.deps.Deps.of`). A new store of patient data is added
here once, with its retention declaration, and both services and the tests have it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from liaison.clock import Clock, SystemClock
from liaison.config import Config, policy_text
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory
from liaison.db import open_database
from liaison.doc_check import Antivirus
from liaison.stores.documents import DocumentStore
from liaison.stores.mail import MailStore
from liaison.stores.pathways import PathwayStore
from liaison.stores.roster import Roster
from liaison.sharing_facts import SharingStores
from liaison.stores.rcp import RcpStore
from liaison.stores.tasks import TaskStore
from liaison.stores.care_plan import CarePlanStore
from liaison.stores.trace import Trace
from liaison.trusted import TrustedDomains, load_trusted_domains
from policies.knobs import load_knobs
from policies.sharing import Knobs


@dataclass(frozen=True)
class Shared:
    """What the bot and the bridge both hold: one database, its stores, the policy knobs and the clock."""
    engine: AsyncEngine
    knobs: Knobs
    clock: Clock
    roster: Roster
    pathways: PathwayStore
    trace: Trace
    consents: ConsentStore
    documents: DocumentStore
    contacts: Contacts
    mail: MailStore | None            # None: no MSSanté bridge configured
    trusted: TrustedDomains | None    # the trusted-domain list of the bridge, when there is one
    tasks: TaskStore
    care_plans: CarePlanStore         # the pathways' care plans (PPCS)
    sharing: SharingStores = field(init=False)   # the one port every sharing decision takes
    rcp: RcpStore = field(init=False)            # the RCP meetings (the bot plans them, the bridge mails them)
    directory: Directory = field(init=False)     # the national directory (Annuaire Santé extracts, #27)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rcp", RcpStore(self.engine, self.clock))
        object.__setattr__(self, "directory", Directory(self.engine, self.clock))
        object.__setattr__(self, "sharing", SharingStores(
            self.roster, self.consents, self.pathways, self.knobs, self.trace, self.contacts, self.trusted,
            self.mail, self.clock, self.directory))

    async def close(self) -> None:
        await self.engine.dispose()


def shared_on(engine: AsyncEngine, knobs: Knobs, *, bridge: bool, trusted: TrustedDomains | None = None,
              clock: Clock | None = None) -> Shared:
    """The stores on an open, migrated database (`liaison.db.open_database`)."""
    clock = clock or SystemClock()
    return Shared(engine, knobs, clock, Roster(engine, clock), PathwayStore(engine, clock), Trace(engine, clock),
                  ConsentStore(engine, clock), DocumentStore(engine, clock), Contacts(engine, clock),
                  MailStore(engine, clock) if bridge else None, trusted if bridge else None, TaskStore(engine, clock),
                  CarePlanStore(engine, clock))


async def shared_stores(cfg: Config, clock: Clock | None = None, *, load_roster: bool = False) -> Shared:
    """From the config: the policy knobs (a bad policy file stops the start, naming its line), the trusted-domain
    list, the database migrated; with `load_roster` (the bot, which owns it), the roster written from the config."""
    knobs = load_knobs(policy_text(cfg.policy_file))
    trusted = load_trusted_domains(cfg.bridge.trusted_domains_file) if cfg.bridge else None
    engine = await open_database(cfg.database.url)
    shared = shared_on(engine, knobs, bridge=cfg.bridge is not None, trusted=trusted, clock=clock)
    if load_roster:
        await shared.roster.load(cfg.roster)
    return shared


def antivirus_of(cfg: Config) -> Antivirus:
    return Antivirus(cfg.documents.clamd_socket, float(cfg.documents.clamd_timeout_seconds))
