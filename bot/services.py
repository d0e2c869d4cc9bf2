"""What command functions may use, built once in the wiring."""
from __future__ import annotations

from dataclasses import dataclass

from policies.pathway import PATHWAY_TYPES
from policies.sharing import Knobs

from liaison.consents import ConsentStore
from liaison.pathway_store import PathwayStore
from liaison.roster import Roster
from liaison.mail_store import MailStore
from liaison.matrix import Matrix
from liaison.trusted import TrustedDomains
from liaison.trace import Trace


@dataclass(frozen=True)
class PathwaySettings:
    server_name: str
    bot_user_id: str
    naming: str = "initiales"
    ins_test_mode: bool = False
    retention_days: int = 730
    types: tuple[tuple[str, str], ...] = PATHWAY_TYPES
    bridge_user_id: str | None = None   # the MSSanté bridge's account, invited into every pathway room

    def type_label(self, key: str) -> str:
        return dict(self.types).get(key, key)


@dataclass
class Services:
    matrix: Matrix
    roster: Roster
    pathways: PathwayStore
    settings: PathwaySettings
    trace: Trace
    consents: ConsentStore
    knobs: Knobs
    mail: MailStore | None = None              # None: no MSSanté bridge
    trusted: TrustedDomains | None = None
