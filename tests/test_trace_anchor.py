"""The trace's head, anchored outside the table: a cut trace is seen, as is an altered one and a forged anchor; the
anchor file's lines are chained and recorded in the trace, so a line removed from it, or its end cut, is seen too."""
from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from liaison.config import ConfigError, load_config, parse_config
from liaison.stores.trace import Trace
from liaison.trace_anchor import Anchor, AnchorFile, Anchorer, _signature, check, line_hash
from policies.decision import Allow

KEY = "k" * 16 + "0123456789abcdef0123456789abcdef"
ALLOW = Allow("team.health", "membre de l'équipe de soins", "CSP L.1110-4 II")
BASE = {"homeserver": {"url": "http://127.0.0.1:1", "server_name": "hs"},
        "bot": {"user_id": "@bot:hs", "password": "a-real-password", "store_pickle_key": "s" * 32}}
STORE_KEYS = {"LIAISON_BOT_STORE_KEY": "b" * 64, "LIAISON_BRIDGE_STORE_KEY": "p" * 64}


@pytest.fixture
def trace(engine) -> Trace:
    return Trace(engine)


async def _fill(trace: Trace, n: int) -> None:
    for i in range(n):
        await trace.append(actor="@coord:hs", action="inviter", subject=f"@p{i}:hs", decision=ALLOW,
                           patient_id="patient-1", pathway_id="pw-1")


async def _sql(trace: Trace, sql: str) -> None:
    async with trace.engine.begin() as conn:
        await conn.execute(text(sql))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_the_head_is_anchored_when_it_moved_only(trace, tmp_path):
    anchors = AnchorFile(tmp_path / "a" / "ancres.jsonl", KEY)
    anchorer = Anchorer(trace, anchors)
    assert await anchorer.anchor_once() is None, "an empty trace has no head"
    await _fill(trace, 3)
    assert await anchorer.anchor_once() == 3
    assert await anchorer.anchor_once() is None, "the head did not move (but for the record of its anchor)"
    await _fill(trace, 2)
    assert await anchorer.anchor_once() == 6, "entries 5 and 6, after the record (4) of the first line"
    assert await Anchorer(trace, anchors).anchor_once() is None, "a restarted bot reads the last anchor"
    lines = _lines(anchors.path)
    assert [x["seq"] for x in lines] == [3, 6] and set(lines[0]) == {"seq", "hash", "at", "prev", "sig"}
    assert lines[1]["hash"] == (await trace.hash_at(6))
    assert stat.S_IMODE(os.stat(anchors.path).st_mode) == 0o600


async def test_each_line_follows_the_one_before_and_is_recorded_in_the_trace(trace, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    anchorer = Anchorer(trace, anchors)
    for _ in range(3):
        await _fill(trace, 1)
        await anchorer.anchor_once()
    raw = anchors.path.read_text().splitlines()
    assert [json.loads(x)["prev"] for x in raw] == ["0" * 64, line_hash(raw[0]), line_hash(raw[1])]
    records = [e for e in await trace.entries() if e.rule == "trace.anchored"]
    assert [(e.fact_kind, e.fact_id, e.fact_digest, e.subject) for e in records] == [
        ("anchor", str(n), line_hash(raw[n - 1]), f"ligne {n}") for n in (1, 2, 3)]
    assert records[0].seq == json.loads(raw[0])["seq"] + 1, "recorded right after the entry it anchors"
    assert (await trace.verify()).ok and (await check(trace, anchors)).ok


async def test_a_cut_trace_is_never_anchored_over(trace, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 5)
    assert await Anchorer(trace, anchors).anchor_once() == 5
    await _sql(trace, "DELETE FROM trace_entry WHERE seq >= 4")
    anchorer = Anchorer(trace, anchors)
    assert await anchorer.anchor_once() is None, "cut: the shorter head would hide the cut"
    await _fill(trace, 3)   # written again, past the anchored seq
    assert await anchorer.anchor_once() is None
    assert [x["seq"] for x in _lines(anchors.path)] == [5]


@pytest.fixture
def verify(engine, db_url, tmp_path):
    """Run `liaison trace verify` on this database, with or without a trace: section."""
    def write(trace_section: dict | None) -> Path:
        cfg = tmp_path / "liaison.yaml"
        cfg.write_text(yaml.safe_dump({**BASE, "database": {"url": db_url},
                                       **({"trace": trace_section} if trace_section else {})}))
        return cfg

    async def run(trace_section: dict | None = None) -> subprocess.CompletedProcess:
        cfg = write(trace_section)
        return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "liaison.cli", "trace", "verify",
                                                        "-c", str(cfg)], capture_output=True, text=True)
    return run


def _section(path: Path) -> dict:
    return {"anchor_file": str(path), "anchor_key": KEY}


async def test_cli_says_intact_and_anchored_then_sees_the_last_entries_deleted(trace, verify, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 6)
    await Anchorer(trace, anchors).anchor_once()
    await _fill(trace, 1)   # not anchored yet: normal
    ok = await verify(_section(anchors.path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "8 entrées, chaînage vérifié" in ok.stdout and "la dernière à l'entrée 6" in ok.stdout
    assert "1 entrée(s) plus récente(s)" in ok.stdout, "the anchor's own record is not waiting for an anchor"

    await _sql(trace, "DELETE FROM trace_entry WHERE seq >= 5")
    cut = await verify(_section(anchors.path))
    assert cut.returncode == 1, cut.stdout
    assert "chaînage vérifié" in cut.stdout, "what is left still chains: only the anchor sees the cut"
    assert "TRONQUÉE" in cut.stdout and "nomme l'entrée 6" in cut.stdout and "à l'entrée 4" in cut.stdout


async def test_cli_sees_a_trace_cut_then_written_again(trace, verify, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 6)
    await Anchorer(trace, anchors).anchor_once()
    await _sql(trace, "DELETE FROM trace_entry WHERE seq >= 3")
    await _fill(trace, 5)   # a longer, well-chained trace: entry 6 is no longer the one anchored
    out = await verify(_section(anchors.path))
    assert out.returncode == 1 and "TRONQUÉE" in out.stdout and "l'entrée 6 n'est plus celle ancrée" in out.stdout


async def test_cli_still_names_an_altered_entry_when_anchored(trace, verify, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 6)
    await Anchorer(trace, anchors).anchor_once()
    await _sql(trace, "UPDATE trace_entry SET actor = '@intrus:hs' WHERE seq = 2")
    out = await verify(_section(anchors.path))
    assert out.returncode == 1 and "ALTÉRÉE" in out.stdout and "entrée 2" in out.stdout


async def test_cli_reports_a_forged_anchor_line_and_ignores_it(trace, verify, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 4)
    await Anchorer(trace, anchors).anchor_once()
    AnchorFile(anchors.path, "another-key-" + "x" * 32).write(99, "f" * 64)   # no key: no valid signature
    with anchors.path.open("a") as fh:
        fh.write("pas du json\n")
    out = await verify(_section(anchors.path))
    assert out.returncode == 1, out.stdout
    assert "ancre INVALIDE : ligne 2" in out.stdout and "ancre INVALIDE : ligne 3" in out.stdout
    assert "TRONQUÉE" not in out.stdout and "la dernière à l'entrée 4" in out.stdout, "a forged line proves nothing"


async def test_cli_without_anchors(trace, verify, tmp_path):
    await _fill(trace, 2)
    plain = await verify(None)
    assert plain.returncode == 0 and "non ancrée" in plain.stdout, "no trace: section: as before, and said"
    lost = await verify(_section(tmp_path / "absent.jsonl"))
    assert lost.returncode == 1 and "NON ANCRÉE" in lost.stdout, "anchored by the config, yet no anchor"


@pytest.mark.parametrize("section, key, words", [
    ({"anchor_file": "a.jsonl"}, "trace.anchor_key", "obligatoire"),
    ({"anchor_file": "a.jsonl", "anchor_key": "changeme"}, "trace.anchor_key", "exemple"),
    ({"anchor_file": "a.jsonl", "anchor_key": "trop-courte"}, "trace.anchor_key", "32 caractères"),
    ({"anchor_file": "a.jsonl", "anchor_key": "${NOT_SET}"}, "trace.anchor_key", "NOT_SET"),
    ({"anchor_key": KEY}, "trace.anchor_file", "obligatoire"),
    ({"anchor_file": "a.jsonl", "anchor_key": KEY, "anchor_interval_seconds": 0},
     "trace.anchor_interval_seconds", "secondes"),
    ({"anchor_file": "a.jsonl", "anchor_key": KEY, "surprise": 1}, "trace.surprise", "clé inconnue"),
])
def test_trace_section_refused_with_the_key_named(section, key, words):
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "trace": section}, {})
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_the_examples_trace_section_loads_when_uncommented(tmp_path):
    example = (Path(__file__).parent.parent / "deploy" / "liaison.example.yaml").read_text(encoding="utf-8")
    start = example.index("#trace:")
    block = example[start:example.index("\n\n", start)]
    uncommented = example.replace(block, "\n".join(line[1:] for line in block.splitlines()))
    path = tmp_path / "liaison.yaml"
    path.write_text(uncommented, encoding="utf-8")
    cfg = load_config(path, environ={"LIAISON_BOT_PASSWORD": "s3cr3t-from-env", "LIAISON_MAIL_PASSWORD": "m4il",
                                     "LIAISON_TRACE_KEY": KEY, **STORE_KEYS})
    assert cfg.trace.anchor_key == KEY and cfg.trace.anchor_interval_seconds == 60
    assert Path(cfg.trace.anchor_file).is_absolute()
    shipped = load_config(Path(__file__).parent.parent / "deploy" / "liaison.example.yaml",
                          environ={"LIAISON_BOT_PASSWORD": "s3cr3t-from-env", "LIAISON_MAIL_PASSWORD": "m4il",
                                   **STORE_KEYS})
    assert shipped.trace is None, "commented out: the example loads without LIAISON_TRACE_KEY"


def test_liaison_up_makes_a_private_key_once_and_anchors_under_its_dir(tmp_path):
    from liaison.stack.up import Stack

    root = tmp_path / ".liaison"
    stack = Stack(root)
    stack.mail = {"imap": {"host": "127.0.0.1", "port": 1993}, "smtp": {"host": "127.0.0.1", "port": 1465},
                  "ca": "ca.pem", "bridge": {"address": "msp@msp-demo.mssante.test", "imap_user": "msp",
                                             "imap_password": "x", "cert": "c.pem", "key": "k.pem"}}
    cfg = load_config(stack.bot_config(), environ=stack.secrets_env("bot"), for_services={"bot"})
    key_file = root / "trace-anchor.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and len(stack.trace_key) == 64
    assert cfg.trace.anchor_key == stack.trace_key and stack.trace_key not in (root / "liaison.yaml").read_text()
    assert Path(cfg.trace.anchor_file) == root.resolve() / "trace-anchors.jsonl"
    assert Stack(root).trace_key == stack.trace_key, "the key is kept from one run to the next"


async def test_the_bot_anchors_its_head_and_at_a_clean_stop(bot_process, db_url, engine, tmp_path):
    anchors = tmp_path / "ancres" / "trace.jsonl"
    trace = Trace(engine)
    await _fill(trace, 3)
    bot = bot_process(staff=[], database_url=db_url,
                      trace={"anchor_file": str(anchors), "anchor_key": KEY, "anchor_interval_seconds": 3600})
    for _ in range(100):   # the first pass, at start-up
        if _lines(anchors):
            break
        await asyncio.sleep(0.1)
    assert [x["seq"] for x in _lines(anchors)] == [3]
    await _fill(trace, 2)
    assert await asyncio.to_thread(bot.stop) == 0
    assert [x["seq"] for x in _lines(anchors)] == [3, 6], "the head at the stop, long before the next pass"
    env = dict(os.environ, LIAISON_BOT_PASSWORD=bot.password)
    run = lambda: subprocess.run([sys.executable, "-m", "liaison.cli", "trace", "verify", "-c", str(bot.config_path)],
                                 capture_output=True, text=True, env=env)
    ok = await asyncio.to_thread(run)
    assert ok.returncode == 0 and "la dernière à l'entrée 6" in ok.stdout, ok.stdout + ok.stderr
    await _sql(trace, "DELETE FROM trace_entry WHERE seq >= 5")
    cut = await asyncio.to_thread(run)
    assert cut.returncode == 1 and "TRONQUÉE" in cut.stdout and "à l'entrée 4" in cut.stdout


async def _three_anchors(trace: Trace, anchors: AnchorFile) -> list[str]:
    anchorer = Anchorer(trace, anchors)
    for _ in range(3):
        await _fill(trace, 2)
        await anchorer.anchor_once()
    return anchors.path.read_text().splitlines()


async def test_cli_sees_the_anchor_file_cut_at_its_end(trace, verify, tmp_path):
    """Before, the lines left still held and the entries after them read as « waiting for the next anchor »."""
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    raw = await _three_anchors(trace, anchors)
    anchors.path.write_text(raw[0] + "\n")
    out = await verify(_section(anchors.path))
    assert out.returncode == 1, out.stdout
    assert "trace TRONQUÉE" not in out.stdout, "the trace itself is whole: only the file was cut"
    assert "fichier des ancres TRONQUÉ : la trace (entrée" in out.stdout and "nomme la ligne 2" in out.stdout \
        and "nomme la ligne 3" in out.stdout and "s'arrête à la ligne 1" in out.stdout, out.stdout


async def test_cli_sees_a_line_removed_from_the_middle_of_the_anchor_file(trace, verify, tmp_path):
    """Each line was signed on its own: one removed in the middle left the others valid."""
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    raw = await _three_anchors(trace, anchors)
    anchors.path.write_text(raw[0] + "\n" + raw[2] + "\n")
    out = await verify(_section(anchors.path))
    assert out.returncode == 1 and "la ligne 2 ne suit plus celle d'avant" in out.stdout, out.stdout


async def test_an_anchor_file_written_before_the_lines_were_chained_is_read_and_continued(trace, verify, tmp_path):
    anchors = AnchorFile(tmp_path / "ancres.jsonl", KEY)
    await _fill(trace, 2)
    head = await trace.head()
    old = Anchor(head[0], head[1], 1_700_000_000_000)
    anchors.path.write_text(json.dumps({"seq": old.seq, "hash": old.hash, "at": old.at,
                                        "sig": _signature(KEY, old, None)}) + "\n")   # as the bot wrote it before
    await _fill(trace, 1)
    assert await Anchorer(trace, anchors).anchor_once() == 3
    raw = anchors.path.read_text().splitlines()
    assert json.loads(raw[1])["prev"] == line_hash(raw[0]), "the first chained line follows the old last one"
    out = await verify(_section(anchors.path))
    assert out.returncode == 0 and "2 ancre(s) signée(s)" in out.stdout, out.stdout + out.stderr
