"""The config loader names the bad key, refuses placeholder secrets and reads secrets from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from liaison.config import ConfigError, inline_secrets, load_config, parse_config

STORE_KEY = "7f3a" * 16
GOOD = {
    "homeserver": {"url": "https://matrix.msp-exemple.fr", "server_name": "msp-exemple.fr"},
    "bot": {"user_id": "@liaison:msp-exemple.fr", "password": "${BOT_PW}", "staff": ["@coord:msp-exemple.fr"],
            "store_pickle_key": STORE_KEY},
}
BRIDGE = {"user_id": "@mss_relais:hs", "registration": "r.yaml", "trusted_domains_file": "t.xml",
          "store_pickle_key": STORE_KEY[::-1],
          "mailbox": {"address": "msp@msp.mssante.fr", "display_name": "MSP", "imap": {"host": "h", "port": 993},
                      "smtp": {"host": "h", "port": 465}, "imap_user": "u", "imap_password": "a-real-one",
                      "ca": "ca.pem", "cert": "c.pem", "key": "k.pem"}}
EXAMPLE_ENV = {"LIAISON_BOT_PASSWORD": "s3cr3t-from-env", "LIAISON_MAIL_PASSWORD": "m4il-from-env",
               "LIAISON_BOT_STORE_KEY": STORE_KEY, "LIAISON_BRIDGE_STORE_KEY": STORE_KEY[::-1]}


def _with(path: str, value) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return raw


def test_example_config_loads_with_its_secret_from_the_environment():
    example = Path(__file__).parent.parent / "deploy" / "liaison.example.yaml"
    cfg = load_config(example, environ=EXAMPLE_ENV)
    assert cfg.bot.password == "s3cr3t-from-env"
    assert cfg.bot.store_pickle_key == STORE_KEY and cfg.bridge.store_pickle_key == STORE_KEY[::-1]
    assert cfg.database.url.startswith("sqlite+aiosqlite:///")
    assert cfg.bridge.mailbox.imap_password == "m4il-from-env" and cfg.bridge.give_up_hours == 96
    assert cfg.bridge.quarantine_keep_days == 30, "a quarantined mail keeps its raw text 30 days by default"


@pytest.mark.parametrize("change, key", [
    ({"user_id": "mss_relais"}, "bridge.user_id"),
    ({"give_up_hours": 0}, "bridge.give_up_hours"),
    ({"quarantine_keep_days": 0}, "bridge.quarantine_keep_days"),
    ({"quarantine_keep_days": 4000}, "bridge.quarantine_keep_days"),
    ({"trusted_domains_file": ""}, "bridge.trusted_domains_file"),
    ({"mailbox": {"address": "pas-une-adresse"}}, "bridge.mailbox.address"),
    ({"mailbox": {"imap_password": "changeme"}}, "bridge.mailbox.imap_password"),
    ({"mailbox": {"cert": ""}}, "bridge.mailbox.cert"),
    ({"surprise": 1}, "bridge.surprise"),
    ({"store_pickle_key": ""}, "bridge.store_pickle_key"),
    ({"store_pickle_key": "trop-courte"}, "bridge.store_pickle_key"),
    ({"mailbox": {"imap_password": ""}}, "bridge.mailbox.imap_password"),
])
def test_bridge_section_refused_with_the_key_named(change, key):
    bridge = yaml.safe_load(yaml.safe_dump(BRIDGE))
    for k, v in change.items():
        bridge[k] = {**bridge[k], **v} if isinstance(v, dict) else v
    with pytest.raises(ConfigError) as err:
        parse_config({**GOOD, "bridge": bridge}, {"BOT_PW": "a-real-password"})
    assert err.value.key == key, str(err.value)


def test_secret_read_from_environment():
    cfg = parse_config(GOOD, {"BOT_PW": "a-real-password"})
    assert cfg.bot.password == "a-real-password"
    assert cfg.logging.format == "console" and cfg.database.url.startswith("sqlite")


@pytest.mark.parametrize("raw, key, words", [
    (_with("bot.pasword", "x"), "bot.pasword", "clé inconnue"),
    (_with("homeserver.url", "matrix.example.org"), "homeserver.url", "http"),
    (_with("bot.staff", "@a:b"), "bot.staff", "liste"),
    (_with("bot.staff", ["coordinatrice"]), "bot.staff[0]", "identifiant Matrix"),
    (_with("bot.password", "changeme"), "bot.password", "exemple"),
    (_with("bot.password", "<mot de passe>"), "bot.password", "exemple"),
    (_with("bot.password", "${NOT_SET}"), "bot.password", "NOT_SET"),
    (_with("logging.format", "xml"), "logging.format", "json"),
    (_with("database.url", "mysql://x"), "database.url", "postgresql"),
    ({"bot": GOOD["bot"]}, "homeserver", "obligatoire"),
])
def test_errors_name_the_key(raw, key, words):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, {"BOT_PW": "fine-password"})
    assert err.value.key == key
    assert words in str(err.value)


def test_unreadable_yaml_names_the_line(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("homeserver:\n  url: [\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad, environ={})
    assert "ligne" in str(err.value)


def test_relative_paths_are_relative_to_the_file(tmp_path):
    f = tmp_path / "etc" / "liaison.yaml"
    f.parent.mkdir()
    f.write_text(yaml.safe_dump(_with("database.url", "sqlite+aiosqlite:///data/l.db")))
    cfg = load_config(f, environ={"BOT_PW": "pw-ok-123"})
    assert cfg.database.url == f"sqlite+aiosqlite:///{tmp_path}/etc/data/l.db"
    assert cfg.bot.store_dir.startswith(str(tmp_path))


@pytest.mark.parametrize("entry, key, words", [
    ({"user_id": "@a:hs", "name": "A", "profession": "astronaute"}, "roster[0].profession", "inconnue"),
    ({"user_id": "@a:hs", "name": "A", "profession": "médecin", "professional_id": "10000000008"},
     "roster[0].professional_id", "clé"),
    ({"user_id": "a", "name": "A", "profession": "médecin"}, "roster[0].user_id", "identifiant Matrix"),
    ({"user_id": "@a:hs", "name": "A", "profession": "médecin", "sex": "femme"}, "roster[0].sex", "F ou M"),
])
def test_roster_entries_are_checked(entry, key, words):
    with pytest.raises(ConfigError) as err:
        parse_config({**GOOD, "roster": [entry]}, {"BOT_PW": "fine-password"})
    assert err.value.key == key and words in str(err.value)


@pytest.mark.parametrize("profession, sex, expected", [
    ("infirmière", "", "F"), ("coordinatrice", "", "F"), ("pharmacienne", "", "F"), ("assistante sociale", "", "F"),
    ("infirmier", "", ""), ("kinésithérapeute", "", ""), ("médecin", "", ""), ("Secrétaire médicale", "", ""),
    ("médecin", "F", "F"), ("infirmier", "f", "F"), ("infirmière", "M", "M"), ("kiné", " m ", "M"),
])
def test_a_roster_entry_knows_the_members_sex_given_or_written_in_the_profession(profession, sex, expected):
    entry = {"user_id": "@a:hs", "name": "A", "profession": profession, **({"sex": sex} if sex else {})}
    cfg = parse_config({**GOOD, "roster": [entry]}, {"BOT_PW": "fine-password"})
    assert cfg.roster[0].sex == expected


def test_pathway_settings_are_checked():
    with pytest.raises(ConfigError) as err:
        parse_config({**GOOD, "pathways": {"archive_interval_seconds": 0}}, {"BOT_PW": "fine-password"})
    assert err.value.key == "pathways.archive_interval_seconds"
    assert parse_config(GOOD, {"BOT_PW": "fine-password"}).pathways.task_reminder_hour == 9
    for hour in (24, -1, True):
        with pytest.raises(ConfigError) as err:
            parse_config({**GOOD, "pathways": {"task_reminder_hour": hour}}, {"BOT_PW": "fine-password"})
        assert err.value.key == "pathways.task_reminder_hour"


def test_bad_policy_file_stops_the_bot_naming_the_line(tmp_path):
    import subprocess
    import sys

    policy = tmp_path / "politique.yaml"
    policy.write_text("notice_required: true\noral_consent: false\n")
    cfg = tmp_path / "liaison.yaml"
    cfg.write_text(yaml.safe_dump({**GOOD, "bot": {**GOOD["bot"], "password": "a-real-password"},
                                   "policy_file": "politique.yaml"}))
    run = subprocess.run([sys.executable, "-m", "bot", "-c", str(cfg)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "ligne 2" in run.stderr and "oral_consent" in run.stderr
    for service in ("bot", "bridge"):   # the `liaison` command launches each service as its own program
        run = subprocess.run([sys.executable, "-m", "liaison.cli", service, "-c", str(cfg)], capture_output=True,
                             text=True, timeout=60)
        said = "ligne 2" if service == "bot" else "section absente"   # this config has no bridge section
        assert run.returncode == 2 and said in run.stderr, (service, run.stderr)


def test_the_bridge_needs_its_own_store_key():
    bridge = {k: v for k, v in BRIDGE.items() if k != "store_pickle_key"}
    with pytest.raises(ConfigError) as err:
        parse_config({**GOOD, "bridge": bridge}, {"BOT_PW": "a-real-password"})
    assert err.value.key == "bridge.store_pickle_key" and "32 caractères" in str(err.value)


@pytest.mark.parametrize("value, words", [
    (None, "obligatoire"), ("", "secret vide"), ("   ", "secret vide"), ("changeme", "exemple"),
    ("<phrase secrète>", "exemple"), ("court", "32 caractères"), ("${STORE_KEY}", "STORE_KEY est vide"),
])
def test_the_store_key_is_refused_when_missing_empty_short_or_left_as_example(value, words):
    bot = {k: v for k, v in GOOD["bot"].items() if k != "store_pickle_key"}
    if value is not None:
        bot["store_pickle_key"] = value
    with pytest.raises(ConfigError) as err:
        parse_config({**GOOD, "bot": bot}, {"BOT_PW": "a-real-password", "STORE_KEY": ""})
    assert err.value.key == "bot.store_pickle_key" and words in str(err.value), str(err.value)


def test_variables_are_expanded_inside_a_text():
    raw = _with("database.url", "postgresql+asyncpg://${DB_USER}:${DB_PW}@db.msp:5432/liaison")
    cfg = parse_config(raw, {"BOT_PW": "a-real-password", "DB_USER": "liaison", "DB_PW": "p@ss-w0rd"})
    assert cfg.database.url == "postgresql+asyncpg://liaison:p@ss-w0rd@db.msp:5432/liaison"
    assert cfg.bot.password == "a-real-password", "a whole value still works"


@pytest.mark.parametrize("environ, words", [
    ({"BOT_PW": "a-real-password"}, "DB_PW n'est pas définie"),
    ({"BOT_PW": "a-real-password", "DB_PW": ""}, "DB_PW est vide"),
])
def test_a_variable_inside_a_text_unset_or_empty_is_refused_naming_the_key(environ, words):
    raw = _with("database.url", "postgresql+asyncpg://liaison:${DB_PW}@db.msp/liaison")
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ)
    assert err.value.key == "database.url" and words in str(err.value)


@pytest.mark.parametrize("raw, key", [
    (_with("bot.password", ""), "bot.password"),
    (_with("bot.password", "${BOT_PW}"), "bot.password"),
])
def test_an_empty_secret_is_refused_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, {"BOT_PW": ""})
    assert err.value.key == key and "vide" in str(err.value)


def test_inline_secrets_are_listed_for_liaison_check():
    raw = yaml.safe_load(yaml.safe_dump({**GOOD, "bridge": BRIDGE,
                                         "database": {"url": "postgresql+asyncpg://liaison:en-clair@db/liaison"},
                                         "trace": {"anchor_file": "a.jsonl", "anchor_key": "${TRACE_KEY}"}}))
    assert sorted(inline_secrets(raw)) == ["bot.store_pickle_key", "bridge.mailbox.imap_password",
                                           "bridge.store_pickle_key", "database.url"]
    raw["database"]["url"] = "postgresql+asyncpg://liaison:${DB_PW}@db/liaison"
    assert "database.url" not in inline_secrets(raw) and "bot.password" not in inline_secrets(raw)


# -- each service its own secrets (issue 24, item 7) -------------------------------------------------------------------

BOT_SECRETS = {"LIAISON_BOT_PASSWORD": "bot-password-" + "b" * 8, "LIAISON_BOT_STORE_KEY": "b0" * 32,
               "LIAISON_TRACE_KEY": "7a" * 32}
BRIDGE_SECRETS = {"LIAISON_BRIDGE_STORE_KEY": "e1" * 32, "LIAISON_MAIL_PASSWORD": "mail-password-" + "m" * 8}
SHARED = {**GOOD, "bot": {**GOOD["bot"], "password": "${LIAISON_BOT_PASSWORD}",
                          "store_pickle_key": "${LIAISON_BOT_STORE_KEY}"},
          "trace": {"anchor_file": "ancres.jsonl", "anchor_key": "${LIAISON_TRACE_KEY}"},
          "bridge": {**BRIDGE, "store_pickle_key": "${LIAISON_BRIDGE_STORE_KEY}",
                     "mailbox": {**BRIDGE["mailbox"], "imap_password": "${LIAISON_MAIL_PASSWORD}"}}}


def _values(cfg) -> str:
    import dataclasses

    return repr(dataclasses.asdict(cfg))


def test_the_bridge_starts_on_its_own_secrets_and_never_reads_the_bots():
    cfg = parse_config(SHARED, BRIDGE_SECRETS, for_services={"bridge"})
    assert cfg.bridge.store_pickle_key == BRIDGE_SECRETS["LIAISON_BRIDGE_STORE_KEY"]
    assert cfg.bridge.mailbox.imap_password == BRIDGE_SECRETS["LIAISON_MAIL_PASSWORD"]
    assert (cfg.bot.password, cfg.bot.store_pickle_key, cfg.trace.anchor_key) == ("", "", "")
    given_everything = parse_config(SHARED, {**BOT_SECRETS, **BRIDGE_SECRETS}, for_services={"bridge"})
    assert not [k for k, v in BOT_SECRETS.items() if v in _values(given_everything)], "not read even when given"
    inline = {**SHARED, "bot": {**SHARED["bot"], "store_pickle_key": BOT_SECRETS["LIAISON_BOT_STORE_KEY"]},
              "trace": {**SHARED["trace"], "anchor_key": BOT_SECRETS["LIAISON_TRACE_KEY"]}}
    assert not [k for k, v in BOT_SECRETS.items() if v in _values(parse_config(inline, BRIDGE_SECRETS,
                                                                                for_services={"bridge"}))]


def test_the_bot_starts_on_its_own_secrets_and_never_reads_the_bridges():
    cfg = parse_config(SHARED, BOT_SECRETS, for_services={"bot"})
    assert cfg.trace.anchor_key == BOT_SECRETS["LIAISON_TRACE_KEY"] and cfg.bot.password
    assert (cfg.bridge.store_pickle_key, cfg.bridge.mailbox.imap_password) == ("", "")
    with pytest.raises(ConfigError) as err:   # its own are still required
        parse_config(SHARED, BRIDGE_SECRETS, for_services={"bot"})
    assert err.value.key == "bot.password" and "LIAISON_BOT_PASSWORD" in str(err.value)


def test_the_stack_gives_each_service_its_own_secrets_only(tmp_path):
    import os
    import stat

    from liaison.stack.up import Stack

    stack = Stack(tmp_path / ".liaison")
    stack.mail = {"imap": {"host": "127.0.0.1", "port": 1993}, "smtp": {"host": "127.0.0.1", "port": 1465},
                  "ca": "ca.pem", "bridge": {"address": "msp@msp-demo.mssante.test", "imap_user": "msp",
                                             "imap_password": "imap-" + "x" * 12, "cert": "c.pem", "key": "k.pem"}}
    config = stack.bot_config()
    bot_secrets = set(stack.secrets_env("bot").values())
    bridge_secrets = set(stack.secrets_env("bridge").values())
    assert {stack.trace_key, stack.bot_store_key, stack.passwords["liaison"]} == bot_secrets
    assert stack.bridge_store_key in bridge_secrets
    bridge_env, bot_env = stack.env("bridge"), stack.env("bot")
    assert not bot_secrets & set(bridge_env.values()), "the bridge is given none of the bot's secrets"
    assert not bridge_secrets & set(bot_env.values()), "nor the bot the bridge's"
    written = config.read_text()
    assert not [s for s in bot_secrets | bridge_secrets if s in written], "the shared file holds no secret"
    for key in ("trace-anchor.key", "bot-store.key", "bridge-store.key", "liaison.yaml"):
        assert stat.S_IMODE(os.stat(tmp_path / ".liaison" / key).st_mode) == 0o600, key
    as_bridge = load_config(config, environ=bridge_env, for_services={"bridge"})
    assert not [s for s in bot_secrets if s in _values(as_bridge)]
    assert load_config(config, environ=bot_env, for_services={"bot"}).trace.anchor_key == stack.trace_key


def test_a_set_by_hand_secret_of_the_bot_is_not_passed_on_to_the_bridge(tmp_path, monkeypatch):
    from liaison.stack.up import Stack

    monkeypatch.setenv("LIAISON_TRACE_KEY", "set-by-hand-" + "k" * 32)
    stack = Stack(tmp_path / ".liaison")
    stack.mail = {"bridge": {"imap_password": "imap-" + "x" * 12}}
    assert "LIAISON_TRACE_KEY" not in stack.env("bridge")
    assert stack.env("bot")["LIAISON_TRACE_KEY"] == stack.trace_key


def test_liaison_check_warns_of_a_services_secret_written_in_the_shared_file(tmp_path, capsys, monkeypatch):
    import os

    from liaison.cli import main as cli

    (tmp_path / "t.xml").write_text("<x/>")
    path = tmp_path / "liaison.yaml"
    raw = {**SHARED, "trace": {**SHARED["trace"], "anchor_key": BOT_SECRETS["LIAISON_TRACE_KEY"]}}
    path.write_text(yaml.safe_dump(raw))
    path.chmod(0o600)
    for k, v in {**BOT_SECRETS, **BRIDGE_SECRETS}.items():
        monkeypatch.setenv(k, v)
    umask = os.umask(0o022)   # `liaison check` sets the process's umask: put back for the tests that follow
    try:
        assert cli(["check", "-c", str(path)]) == 0
    finally:
        os.umask(umask)
    out = capsys.readouterr().out
    assert "lu par le bot et par le pont" in out and "(trace.anchor_key)" in out, out
