"""The configuration file: declared once as dataclasses, loaded with errors that name the key.

Any text may hold `${ENV_VAR}` (a whole value or inside one, as in a database URL's password): it is
read from the environment, and a variable unset or empty is refused. A secret left empty or still
holding a placeholder (`changeme`, `<...>`, `xxx`...) is refused.
"""
from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from liaison.config_build import ConfigError, build as _build, join as _join, secret

__all__ = ["Config", "ConfigError", "DirectoryConfig", "RosterEntry", "SERVICES", "inline_secret_owners", "inline_secrets", "load_config",
           "parse_config", "policy_text"]

SERVICES = frozenset({"bot", "bridge"})   # each reads its own secrets only (liaison/config_build.py)
_STORE_KEY_MIN = 32
_STORE_KEY_USE = "elle chiffre les clés de chiffrement de bout en bout gardées sur le disque"


_MXID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]+)?$")


def _check_mxid(key: str, value: str) -> None:
    if not _MXID.match(value):
        raise ConfigError(key, f"« {value} » n'est pas un identifiant Matrix (@nom:serveur)")


@dataclass
class HomeserverConfig:
    url: str
    server_name: str

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^\s/]+", self.url):
            raise ConfigError("url", f"« {self.url} » : adresse http(s):// attendue")


@dataclass
class BotConfig:
    user_id: str
    password: str = field(default="", metadata=secret("bot"))
    device_name: str = "Liaison"
    # Accounts whose invitations the bot accepts; every other invite is declined.
    staff: list[str] = field(default_factory=list)
    # Where the end-to-end encryption keys are kept. Keep it across restarts.
    store_dir: str = ".liaison/bot-store"
    # The passphrase those keys are encrypted with on disk (${VARIABLE}); never changed once used.
    store_pickle_key: str = field(default="", metadata=secret("bot", min_length=_STORE_KEY_MIN, use=_STORE_KEY_USE))

    def __post_init__(self) -> None:
        _check_mxid("user_id", self.user_id)
        for i, who in enumerate(self.staff):
            _check_mxid(f"staff[{i}]", who)


@dataclass
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///.liaison/liaison.db"

    def __post_init__(self) -> None:
        if not self.url.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
            raise ConfigError("url", "attendu sqlite+aiosqlite:///chemin ou postgresql+asyncpg://…")


@dataclass
class LoggingConfig:
    format: str = "console"   # console | json
    level: str = "info"
    file: str = ""

    def __post_init__(self) -> None:
        if self.format not in ("console", "json"):
            raise ConfigError("format", f"« {self.format} » : attendu console ou json")
        if self.level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError("level", f"« {self.level} » : attendu debug, info, warning ou error")


@dataclass
class RosterEntry:
    """One member of the structure's team (the roster is loaded into the database at start-up)."""
    user_id: str
    name: str
    profession: str
    professional_id: str = ""   # RPPS (11 chiffres) ou ADELI (9 caractères)
    structure: str = ""
    coordinator: bool = False
    sex: str = ""   # F ou M : accorde la profession (« Infirmière ») ; absent : lu dans la profession écrite

    def __post_init__(self) -> None:
        from policies.professions import ProfessionalIdError, check_professional_id, find_profession, written_sex

        _check_mxid("user_id", self.user_id)
        if find_profession(self.profession) is None:
            raise ConfigError("profession", f"« {self.profession} » : profession inconnue")
        if self.sex.strip().upper() not in ("", "F", "M"):
            raise ConfigError("sex", f"« {self.sex} » : F ou M attendu")
        self.sex = self.sex.strip().upper() or written_sex(self.profession) or ""
        if self.professional_id:
            try:
                check_professional_id(self.professional_id)
            except ProfessionalIdError as err:
                raise ConfigError("professional_id", err.message) from None


@dataclass
class PathwayType:
    key: str
    label: str
    # Le protocole proposé à l'ouverture d'un parcours de ce type (son nom : !protocole liste) ; vide : aucun.
    protocol: str = ""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9-]{2,40}$", self.key):
            raise ConfigError("key", f"« {self.key} » : lettres minuscules, chiffres et tirets")


@dataclass
class PathwaysConfig:
    # Accepte les OID de test de l'INS (.10, .11) : données fictives uniquement (pile de démonstration).
    ins_test_mode: bool = False
    # Intervalle entre deux passages de l'archivage, en secondes (un jour par défaut).
    archive_interval_seconds: int = 86400
    # Heure (Europe/Paris) du rappel d'une tâche due un jour sans heure, et de la liste quotidienne des tâches en
    # retard dans le salon de la coordination ; une tâche due à une heure est rappelée à cette heure-là.
    task_reminder_hour: int = 9
    # Combien de jours avant une RCP son ordre du jour part (salon de la coordination, salons des patients, invitation
    # .ics à chaque participant) ; il repart à chaque changement ensuite.
    rcp_agenda_days: int = 2
    # Types de parcours proposés (vide : la liste par défaut de Liaison).
    types: list[PathwayType] = field(default_factory=list)
    # Le dossier des protocoles de la structure (fichiers YAML, voir le README) : ils s'ajoutent à ceux livrés avec
    # Liaison et remplacent celui du même nom. Vide : les protocoles livrés seulement.
    protocols_folder: str = ""

    def __post_init__(self) -> None:
        if len({t.key for t in self.types}) != len(self.types):
            raise ConfigError("types", "deux types de parcours ont la même clé")
        if not 1 <= self.archive_interval_seconds <= 7 * 86400:
            raise ConfigError("archive_interval_seconds", "entre 1 et 604800 secondes")
        if isinstance(self.task_reminder_hour, bool) or not 0 <= self.task_reminder_hour <= 23:
            raise ConfigError("task_reminder_hour", "une heure entre 0 et 23 (Europe/Paris)")
        if isinstance(self.rcp_agenda_days, bool) or not 0 <= self.rcp_agenda_days <= 30:
            raise ConfigError("rcp_agenda_days", "un nombre de jours entre 0 et 30")


@dataclass
class MailServer:
    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError("port", f"« {self.port} » : port entre 1 et 65535 attendu")


@dataclass
class MailboxConfig:
    """The structure's applicative MSSanté mailbox: IMAP and SMTP submission, both with mutual TLS."""
    address: str
    display_name: str
    imap: MailServer
    smtp: MailServer
    imap_user: str
    imap_password: str = field(default="", metadata=secret("bridge"))
    # Le certificat de l'autorité (IGC-Santé) et celui de la boîte applicative, avec sa clé.
    ca: str = ""
    cert: str = ""
    key: str = ""
    # La messagerie dit quel expéditeur elle a authentifié (Return-Path, Authentication-Results) ; un courriel qui
    # n'en porte aucun est mis en quarantaine. false seulement pour une passerelle qui n'écrit ni l'un ni l'autre.
    require_authenticated_sender: bool = True

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9._%-]+@[a-z0-9.-]+\.[a-z]{2,}$", self.address):
            raise ConfigError("address", f"« {self.address} » : adresse de messagerie attendue (nom@domaine)")
        for key in ("ca", "cert", "key"):
            if not getattr(self, key):
                raise ConfigError(key, "chemin de fichier PEM obligatoire (TLS mutuel)")


@dataclass
class BridgeConfig:
    """The MSSanté bridge (an appservice); the bot reads user_id to invite it into pathway rooms."""
    user_id: str
    # The appservice registration file given to the homeserver (its as_token and hs_token are read there).
    registration: str
    mailbox: MailboxConfig
    listen_host: str = "127.0.0.1"
    listen_port: int = 29330
    store_dir: str = ".liaison/bridge-store"
    # La phrase secrète qui chiffre sur le disque les clés du pont et de ses marionnettes (${VARIABLE}).
    store_pickle_key: str = field(default="", metadata=secret("bridge", min_length=_STORE_KEY_MIN,
                                                              use=_STORE_KEY_USE))
    # La liste blanche des domaines MSSanté, au format publié par l'ANS.
    trusted_domains_file: str = ""
    max_mail_bytes: int = 25 * 1024 * 1024
    max_attachments: int = 20
    # Abandon d'un envoi qui échoue encore après ce délai (heures ; 96 = 4 jours).
    give_up_hours: int = 96
    # Premier délai avant un nouvel essai (secondes), doublé à chaque échec jusqu'au plafond.
    retry_first_seconds: int = 60
    retry_max_seconds: int = 3600
    # Intervalle de relève IMAP quand IDLE n'est pas disponible, en secondes.
    poll_seconds: int = 30
    # Journal du pont (vide : la sortie standard).
    log_file: str = ""
    # Le texte d'un courriel en quarantaine est effacé après ce délai (jours) ; sa fiche et sa trace restent.
    quarantine_keep_days: int = 30

    def __post_init__(self) -> None:
        _check_mxid("user_id", self.user_id)
        if not self.trusted_domains_file:
            raise ConfigError("trusted_domains_file", "la liste blanche MSSanté est obligatoire")
        if not 1 <= self.give_up_hours <= 24 * 30:
            raise ConfigError("give_up_hours", "entre 1 et 720 heures")
        if not 1024 <= self.max_mail_bytes <= 200 * 1024 * 1024:
            raise ConfigError("max_mail_bytes", "entre 1 Kio et 200 Mio")
        if not 1 <= self.quarantine_keep_days <= 3650:
            raise ConfigError("quarantine_keep_days", "entre 1 et 3650 jours")


@dataclass
class DocumentsConfig:
    """How files entering a pathway room are checked (the types and the size limit are policy knobs)."""
    # Socket unix du démon ClamAV (clamd) ; vide : pas d'analyse antivirus (!docs le signale).
    clamd_socket: str = ""
    clamd_timeout_seconds: int = 30
    # OID de la structure émettrice, source des lots IHE XDM envoyés par !doc envoyer.
    source_oid: str = "1.2.250.1.999.1.1"

    def __post_init__(self) -> None:
        if not 1 <= self.clamd_timeout_seconds <= 600:
            raise ConfigError("clamd_timeout_seconds", "entre 1 et 600 secondes")
        if not re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", self.source_oid):
            raise ConfigError("source_oid", f"« {self.source_oid} » : un OID est attendu (ex. 1.2.250.1.71.4.2.2)")


@dataclass
class TraceConfig:
    """The trace's head, anchored outside the database (liaison/trace_anchor.py), so that a cut trace is seen."""
    # Le fichier des ancres (une ligne JSON signée par ancre), hors de la base : de préférence sur un autre disque.
    anchor_file: str
    # La clé HMAC-SHA256 qui signe les ancres, gardée hors de la base (${VARIABLE}) ; le bot seul la lit.
    anchor_key: str = field(default="", metadata=secret("bot", min_length=32, use="elle signe les ancres"))
    # Une ancre au plus toutes les N secondes, quand la trace a avancé (et une à l'arrêt du bot).
    anchor_interval_seconds: int = 60

    def __post_init__(self) -> None:
        if not self.anchor_file:
            raise ConfigError("anchor_file", "le chemin du fichier des ancres est obligatoire")
        if not 1 <= self.anchor_interval_seconds <= 86400:
            raise ConfigError("anchor_interval_seconds", "entre 1 et 86400 secondes")


@dataclass
class DirectoryConfig:
    """The national directory (Annuaire Santé extracts, liaison/directory/)."""
    # Le dossier où déposer les extractions de l'Annuaire Santé ; le bot y importe les nouvelles une fois par jour.
    # Vide : pas d'import automatique (`liaison annuaire importer` reste possible).
    folder: str = ""

    def __post_init__(self) -> None:
        if self.folder and ("\n" in self.folder or self.folder.strip() != self.folder):
            raise ConfigError("folder", f"« {self.folder} » : un chemin de dossier est attendu")


@dataclass
class Config:
    homeserver: HomeserverConfig
    bot: BotConfig
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    structure: str = ""
    roster: list[RosterEntry] = field(default_factory=list)
    pathways: PathwaysConfig = field(default_factory=PathwaysConfig)
    # La politique de partage (réglages) ; vide : celle livrée avec Liaison (policies/knobs.yaml).
    policy_file: str = ""
    # Le pont MSSanté ; absent : pas de pont.
    bridge: BridgeConfig | None = None
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    # L'ancrage de la trace ; absent : trace chaînée mais non ancrée (une troncature ne serait pas vue).
    trace: TraceConfig | None = None
    # L'annuaire santé : le dossier des extractions importées chaque jour.
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)


def policy_text(path: str) -> str:
    """The sharing policy's YAML: the structure's own file, else the one shipped with Liaison."""
    if path:
        return Path(path).read_text(encoding="utf-8")
    from importlib import resources

    return resources.files("policies").joinpath("knobs.yaml").read_text(encoding="utf-8")


def load_config(path: str | Path, environ: typing.Mapping[str, str] | None = None, *,
                for_services: typing.AbstractSet[str] = SERVICES) -> Config:
    """The file's configuration, with the secrets of `for_services` only: the bot loads it for {"bot"}, the bridge
    for {"bridge"} (the other's secrets are then "", never looked for), `liaison check` for both."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"ligne {mark.line + 1}" if mark else "fichier"
        raise ConfigError(where, f"YAML illisible ({getattr(err, 'problem', err)})") from None
    cfg = parse_config(raw or {}, os.environ if environ is None else environ, for_services=for_services)
    return _resolve_paths(cfg, path.parent)


def parse_config(raw: dict, environ: typing.Mapping[str, str], *,
                 for_services: typing.AbstractSet[str] = SERVICES) -> Config:
    return _build(Config, raw, "", environ, frozenset(for_services))


def inline_secrets(raw) -> list[str]:
    """The dotted keys of secrets written in the file itself rather than as ${VARIABLE} (the file must then
    be readable by its owner only), a database URL's password included."""
    return list(inline_secret_owners(raw))


def inline_secret_owners(raw, cls=None, prefix: str = "") -> dict[str, str]:
    """`inline_secrets`, each with the service it belongs to (bot, bridge; a database URL's: both)."""
    cls = cls or Config
    found: dict[str, str] = {}
    if not isinstance(raw, dict):
        return found
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value, key = raw.get(f.name), _join(prefix, f.name)
        inner = [t for t in (typing.get_args(hints[f.name]) or (hints[f.name],)) if dataclasses.is_dataclass(t)]
        if isinstance(value, str) and f.metadata.get("secret") and value.strip() and "${" not in value:
            found[key] = f.metadata["secret"]
        elif isinstance(value, str) and key == "database.url" and re.search(r"://[^/@:]*:(?![^@]*\$\{)[^@]+@", value):
            found[key] = "both"
        elif inner and isinstance(value, dict):
            found |= inline_secret_owners(value, inner[0], key)
    return found


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative paths in the file are relative to the file itself."""
    def absolute(p: str) -> str:
        return p if not p or Path(p).is_absolute() else str((base / p).resolve())

    cfg.bot.store_dir = absolute(cfg.bot.store_dir)
    cfg.logging.file = absolute(cfg.logging.file)
    cfg.policy_file = absolute(cfg.policy_file)
    cfg.pathways.protocols_folder = absolute(cfg.pathways.protocols_folder)
    cfg.documents.clamd_socket = absolute(cfg.documents.clamd_socket)
    cfg.directory.folder = absolute(cfg.directory.folder)
    if cfg.directory.folder and not Path(cfg.directory.folder).is_dir():
        raise ConfigError("directory.folder", f"« {cfg.directory.folder} » : dossier introuvable")
    if cfg.trace:
        cfg.trace.anchor_file = absolute(cfg.trace.anchor_file)
    if cfg.bridge:
        b = cfg.bridge
        b.registration, b.store_dir, b.trusted_domains_file, b.log_file = map(
            absolute, (b.registration, b.store_dir, b.trusted_domains_file, b.log_file))
        m = b.mailbox
        m.ca, m.cert, m.key = map(absolute, (m.ca, m.cert, m.key))
    prefix = "sqlite+aiosqlite:///"
    if cfg.database.url.startswith(prefix) and not cfg.database.url.startswith(prefix + "/"):
        cfg.database.url = prefix + absolute(cfg.database.url[len(prefix):])
    return cfg
