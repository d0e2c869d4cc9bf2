"""What the bridge's parts share, built once in the wiring (bridge/__main__.py) from the one bootstrap
(liaison/bootstrap.py): `Deps.of`."""
from __future__ import annotations

from dataclasses import dataclass, field

from bridge.metrics import Metrics
from bridge.ports import BridgeMatrix
from bridge.puppets import Puppets
from bridge.scan_patience import ScanPatience
from bridge.smtp import SmtpClient
from bridge.store import BridgeStore
from liaison.bootstrap import Shared
from liaison.clock import Clock
from liaison.trusted import TrustedDomains
from liaison.stores.consents import ConsentStore
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory
from liaison.doc_check import Antivirus
from liaison.stores.documents import DocumentStore
from liaison.stores.mail import MailStore
from liaison.stores.pathways import PathwayStore
from liaison.stores.rcp import RcpStore
from liaison.stores.roster import Roster
from liaison.sharing_facts import SharingStores
from liaison.stores.trace import Trace
from policies.sharing import Knobs


@dataclass(frozen=True)
class BridgeSettings:
    address: str               # the structure's applicative mailbox
    display_name: str          # the structure's name, in From
    server_name: str
    bot_user_id: str
    structure: str = ""
    max_mail_bytes: int = 25 * 1024 * 1024
    max_attachments: int = 20
    give_up_seconds: int = 96 * 3600
    retry_first_seconds: int = 60
    retry_max_seconds: int = 3600
    source_oid: str = "1.2.250.1.999.1.1"   # the structure's OID: sourceId of the IHE XDM it sends
    gateway_host: str = ""   # the SMTP host we send through: its delivery reports (DSN) are listened to
    ins_test_mode: bool = False   # test INS (test OIDs) accepted: a demonstration or test deployment only
    sender_authentication_required: bool = True   # a mail whose sender no header authenticates is set aside

    @property
    def domain(self) -> str:
        return self.address.split("@", 1)[1]

    def subaddress(self, code: str) -> str:
        local, domain = self.address.split("@", 1)
        return f"{local}+{code.lower()}@{domain}"


@dataclass
class Deps:
    settings: BridgeSettings
    store: BridgeStore
    mail: MailStore
    pathways: PathwayStore
    roster: Roster
    consents: ConsentStore
    knobs: Knobs
    trace: Trace
    trusted: TrustedDomains
    matrix: BridgeMatrix    # the bridge's own account (reads the rooms, invites puppets, posts notices)
    puppets: Puppets
    smtp: SmtpClient
    metrics: Metrics
    documents: DocumentStore  # the pathways' document index, shared with the bot
    sharing: SharingStores    # the one port every sharing decision takes (liaison.enforcement.decide_at)
    clock: Clock
    antivirus: Antivirus = field(default_factory=Antivirus)   # clamd for the files of incoming mails
    contacts: Contacts | None = None   # external professionals the coordination recorded (profession, structure)
    scan_patience: ScanPatience = field(default_factory=ScanPatience)   # how long a mail waits for clamd
    rcp: RcpStore | None = None   # the RCP meetings: mail for their external participants (bridge/rcp_mail.py)
    directory: Directory | None = None   # the national directory: puppets' names, external addresses' facts

    @classmethod
    def of(cls, shared: Shared, settings: BridgeSettings, store: BridgeStore, matrix: BridgeMatrix, puppets: Puppets,
           smtp: SmtpClient, metrics: Metrics, antivirus: Antivirus) -> "Deps":
        if shared.mail is None or shared.trusted is None:
            raise ValueError("the bridge's stores need the bridge's configuration (mail store, trusted domains)")
        return cls(settings, store, shared.mail, shared.pathways, shared.roster, shared.consents, shared.knobs,
                   shared.trace, shared.trusted, matrix, puppets, smtp, metrics, shared.documents, shared.sharing,
                   shared.clock, antivirus, contacts=shared.contacts, rcp=shared.rcp,
                   directory=shared.directory)
