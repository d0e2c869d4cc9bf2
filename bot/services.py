"""What command functions may use, built once in the wiring."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.ports import MatrixRooms
from bot.protocols import DEFAULT_OFFERS, Catalogue, load_protocols
from bot.searches import LastSearches
from policies.naming import DEFAULT_PARTS
from policies.pathway import PATHWAY_TYPES
from policies.sharing import Knobs

from liaison.bootstrap import Shared
from liaison.clock import Clock
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory
from liaison.doc_check import Antivirus
from liaison.stores.documents import DocumentStore
from liaison.stores.pathways import PathwayStore
from liaison.puppet_names import PuppetNames
from liaison.stores.roster import Roster
from liaison.sharing_facts import SharingStores
from liaison.stores.mail import MailStore
from liaison.trusted import TrustedDomains
from liaison.stores.rcp import RcpStore
from liaison.stores.tasks import TaskStore
from liaison.stores.care_plan import CarePlanStore
from liaison.stores.trace import Trace

if TYPE_CHECKING:   # the board reads people and rooms, whose modules read the settings below
    from bot.care_plan_post import CarePlanPost
    from bot.rcp_agenda import RcpAgenda
    from bot.task_board import TaskBoard


@dataclass(frozen=True)
class PathwaySettings:
    server_name: str
    bot_user_id: str
    naming: frozenset[str] = DEFAULT_PARTS   # what room names show besides the code (policies/naming.py)
    ins_test_mode: bool = False
    retention_days: int = 730
    types: tuple[tuple[str, str], ...] = PATHWAY_TYPES
    bridge_user_id: str | None = None   # the MSSanté bridge's account, invited into every pathway room
    protocols: Catalogue = field(default_factory=load_protocols)   # read at start (bot/protocols.py)
    offers: tuple[tuple[str, str], ...] = DEFAULT_OFFERS   # (pathway type, protocol offered at its opening)
    rcp_agenda_days: int = 2   # an RCP's agenda goes out this many days before it (bot/rcp_agenda.py)

    def is_bridged(self, user_id: str) -> bool:
        """The bridge or one of its puppets (@mss_…): what they post, the bridge indexed itself."""
        bridge = self.bridge_user_id
        if not bridge:
            return False
        return user_id == bridge or PuppetNames.of_bridge(bridge).is_bridged(user_id)

    def type_label(self, key: str) -> str:
        return dict(self.types).get(key, key)


@dataclass
class Services:
    """The bot's parts; built by `Services.of` from the one bootstrap (liaison/bootstrap.py)."""
    matrix: MatrixRooms
    roster: Roster
    pathways: PathwayStore
    settings: PathwaySettings
    trace: Trace
    consents: ConsentStore
    knobs: Knobs
    sharing: SharingStores                     # the narrow port every sharing decision takes (decide_at)
    clock: Clock
    documents: DocumentStore
    contacts: Contacts                         # external professionals recorded by the coordination
    tasks: TaskStore                           # the pathways' tasks (!tache)
    care_plans: CarePlanStore                  # the pathways' care plans (!ppcs)
    mail: MailStore | None = None              # None: no MSSanté bridge
    trusted: TrustedDomains | None = None
    antivirus: Antivirus = Antivirus()
    rcp: RcpStore | None = None                # the RCP meetings (!rcp), set by `of`
    directory: Directory | None = None         # the national directory (!annuaire), set by `of`
    boards: "TaskBoard" = field(init=False)   # the pinned task boards, edited at each change of a pathway's tasks
    plans: "CarePlanPost" = field(init=False)   # the pinned care plans, edited at each change of a plan
    agendas: "RcpAgenda" = field(init=False)  # the RCP agendas, sent N days before and again at each change
    searches: LastSearches = field(init=False)   # each person's last !annuaire in each room, for !annuaire suite

    def __post_init__(self) -> None:
        from bot.care_plan_post import CarePlanPost
        from bot.rcp_agenda import RcpAgenda
        from bot.task_board import TaskBoard
        self.boards = TaskBoard(self)
        self.plans = CarePlanPost(self)
        self.agendas = RcpAgenda(self, self.settings.rcp_agenda_days)
        self.searches = LastSearches(self.clock)

    @classmethod
    def of(cls, shared: Shared, matrix: MatrixRooms, settings: PathwaySettings,
           antivirus: Antivirus = Antivirus()) -> "Services":
        return cls(matrix, shared.roster, shared.pathways, settings, shared.trace, shared.consents, shared.knobs,
                   shared.sharing, shared.clock, shared.documents, shared.contacts, shared.tasks,
                   shared.care_plans, mail=shared.mail,
                   trusted=shared.trusted, antivirus=antivirus, rcp=shared.rcp,
                   directory=shared.directory)
