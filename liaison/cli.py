"""The `liaison` command: `liaison up` (local stack), `liaison bot`, `liaison bridge`, `liaison migrate`,
`liaison check`, `liaison trace verify`, `liaison export fhir`, `liaison annuaire importer|etat`.

The services are launched as their own programs (`python -m bot`, `python -m bridge`), in place of this process:
the shared core never imports a service."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from liaison.config import ConfigError, load_config
from liaison.private import restrict_umask

SERVICES = ("bot", "bridge")   # each a package with a __main__: `python -m bot`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison : coordination des soins sur Matrix.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="lance la pile locale (Synapse, bot, comptes de démonstration)")
    up.add_argument("--dir", default=".liaison", help="dossier des données de la pile (défaut : .liaison)")
    for name, text in (("bot", "lance le bot"), ("bridge", "lance le pont MSSanté"), ("migrate", "met la base de données à jour"),
                       ("check", "vérifie le fichier de configuration")):
        p = sub.add_parser(name, help=text)
        p.add_argument("-c", "--config", required=True)
    trace = sub.add_parser("trace", help="la trace des partages")
    trace.add_argument("what", choices=["verify"], help="verify : vérifie le chaînage et l'ancrage de la trace")
    trace.add_argument("-c", "--config", required=True)
    export = sub.add_parser("export", help="exporte un parcours (l'exploitant en est le destinataire, tracé)")
    export.add_argument("what", choices=["fhir"], help="fhir : le parcours en FHIR R4 (Bundle JSON)")
    export.add_argument("code", help="le code du parcours (ex. P-7K3Q9)")
    export.add_argument("-o", "--output", required=True, help="le fichier écrit (lisible par son seul propriétaire)")
    export.add_argument("-c", "--config", required=True)
    directory = sub.add_parser("annuaire", help="l'annuaire santé (extractions de l'ANS)")
    what = directory.add_subparsers(dest="what", required=True)
    load = what.add_parser("importer", help="importe des extractions de l'Annuaire Santé (.txt ou .zip)")
    load.add_argument("fichiers", nargs="+", metavar="FICHIER", help="un fichier .txt ou une archive .zip")
    load.add_argument("--accepter-reduction", action="store_true",
                      help="accepte qu'une extraction rende inactive plus de la moitié de l'annuaire")
    load.add_argument("-c", "--config", required=True)
    state = what.add_parser("etat", help="les derniers imports : date, fichier, comptes")
    state.add_argument("-c", "--config", required=True)
    args = parser.parse_args(argv)
    restrict_umask()   # `migrate` may create the database: it is the owner's only, like everything we write

    if args.cmd == "up":
        from liaison.stack.up import up as run_stack
        return run_stack(Path(args.dir))
    if args.cmd in SERVICES:
        os.execv(sys.executable, [sys.executable, "-m", args.cmd, "-c", args.config])   # never returns
    # Each command reads the secrets it uses only: verify the bot's (the anchors' key), migrate none, check them all.
    needs = {"trace": {"bot"}, "migrate": set(), "check": {"bot", "bridge"}, "export": set(),
             "annuaire": set()}[args.cmd]
    try:
        cfg = load_config(args.config, for_services=needs)
    except ConfigError as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2
    if args.cmd == "trace":
        return asyncio.run(_verify_trace(cfg))
    if args.cmd == "export":
        return asyncio.run(_export_fhir(cfg, args.code, args.output))
    if args.cmd == "annuaire":
        from liaison.directory.commands import directory_import, directory_state

        if args.what == "importer":
            return asyncio.run(directory_import(cfg, [Path(f) for f in args.fichiers], args.accepter_reduction))
        return asyncio.run(directory_state(cfg))
    if args.cmd == "migrate":
        from liaison.db import create_engine, migrate

        async def run() -> int:
            engine = create_engine(cfg.database.url)
            try:
                return await migrate(engine)
            finally:
                await engine.dispose()
        print(f"schéma à jour : version {asyncio.run(run())}")
    else:
        from liaison.private import exposure_report, shared_secrets_report

        warnings, shared = exposure_report(cfg, args.config), shared_secrets_report(cfg, args.config)
        for line in warnings + shared:
            print(line)
        print("configuration valide" + (f" ; {len(warnings)} avertissement(s) sur les droits des fichiers secrets"
                                        if warnings else "")
              + (" ; des secrets d'un seul service en clair dans le fichier commun" if shared else ""))
    return 0


async def _verify_trace(cfg) -> int:
    from liaison.db import open_database
    from liaison.stores.facts import altered_everywhere
    from liaison.stores.trace import Trace
    from liaison.trace_anchor import AnchorFile, check

    engine = await open_database(cfg.database.url)
    try:
        trace = Trace(engine)
        chain = await trace.verify()
        altered = await altered_everywhere(engine)
        anchored = await check(trace, AnchorFile(cfg.trace.anchor_file, cfg.trace.anchor_key)) if cfg.trace else None
    finally:
        await engine.dispose()
    if chain.ok:
        print(f"trace intègre : {chain.entries} entrées, chaînage vérifié")
    else:
        print(f"trace ALTÉRÉE : l'entrée {chain.first_bad} ne correspond plus au chaînage "
              f"({chain.entries} entrées valides avant elle)")
    for a in altered:
        print(f"fait ALTÉRÉ : table {a.table}, ligne {a.id} : {a.how} ; les décisions de partage qui le lisent "
              f"sont refusées (règle facts.tampered)")
    if not altered:
        print("faits vérifiés : consentements, oppositions, équipe de la structure, correspondants et équipes "
              "habituelles correspondent à la trace")
    intact = chain.ok and not altered
    if anchored is None:
        print("trace non ancrée (pas de section trace: dans la configuration) : la suppression des dernières "
              "entrées ne serait pas détectée")
        return 0 if intact else 1
    for line in _anchor_report(anchored, cfg.trace.anchor_file):
        print(line)
    return 0 if intact and anchored.ok else 1


async def _export_fhir(cfg, code: str, output: str) -> int:
    """The pathway `code` in FHIR R4, written 0600 to `output`; decided (pathway.export) for the operator and traced
    just before it is written. 2: no such pathway (nothing traced); 1: refused."""
    import json

    from liaison.bootstrap import shared_stores
    from liaison.enforcement import decide_at
    from liaison.fhir_export import bundle, counts, gather
    from liaison.private import write_private
    from policies.pathway import PATHWAY_TYPES
    from policies.sharing import OPERATOR

    shared = await shared_stores(cfg)
    try:
        pathway = await shared.pathways.by_code(code.strip().upper())
        if pathway is None:
            print(f"liaison: aucun parcours de code « {code} » : vérifiez le code (!parcours liste dans le salon de "
                  "la coordination)", file=sys.stderr)
            return 2
        labels = dict((t.key, t.label) for t in cfg.pathways.types) or dict(PATHWAY_TYPES)
        exported = bundle(await gather(shared, pathway, labels.get(pathway.type, pathway.type)), shared.clock.now())
        decided = await decide_at(shared.sharing, "pathway.export", pathway=pathway, recipient=OPERATOR,
                                  actor=OPERATOR)
        if not decided.allowed:
            print(f"liaison: export refusé : {decided.sentence()}", file=sys.stderr)
            return 1
        write_private(output, json.dumps(exported, ensure_ascii=False, indent=1))
    finally:
        await shared.close()
    shown = ", ".join(f"{kind} {n}" for kind, n in sorted(counts(exported).items()))
    print(f"parcours {pathway.code} exporté en FHIR R4 dans {output} ({shown}) ; {decided.sentence()}")
    return 0


def _anchor_report(a, anchor_file: str) -> list[str]:
    """What the anchor file says of the table, in French sentences."""
    from datetime import datetime

    def when(anchor) -> str:
        return datetime.fromtimestamp(anchor.at / 1000).strftime("%d/%m/%Y %H:%M:%S")

    lines = [f"ancre INVALIDE : ligne {n} du fichier {anchor_file}, illisible ou signature fausse (écrite sans "
             f"la clé) ; ligne ignorée" for n in a.bad_lines]
    lines += [f"fichier des ancres ALTÉRÉ : la ligne {n} ne suit plus celle d'avant (une ligne supprimée ou modifiée "
              f"avant elle)" for n in a.unlinked]
    for n, seq in a.missing:
        lines.append(f"fichier des ancres TRONQUÉ : la trace (entrée {seq}) nomme la ligne {n} du fichier, qui "
                     f"s'arrête à la ligne {a.file_lines}" if n > a.file_lines else
                     f"fichier des ancres ALTÉRÉ : la ligne {n} n'est plus celle que la trace a enregistrée "
                     f"(entrée {seq})")
    latest, last = a.latest, a.last_seq
    if a.broken and latest.seq > last:
        lines.append(f"trace TRONQUÉE : la dernière ancre ({when(latest)}) nomme l'entrée {latest.seq}, "
                     f"la table s'arrête à l'entrée {last} : {latest.seq - last} entrée(s) au moins supprimée(s)")
    elif a.broken:
        lines.append(f"trace TRONQUÉE : l'entrée {a.broken.seq} n'est plus celle ancrée le {when(a.broken)} "
                     f"(supprimée, ou supprimée puis réécrite ; dernière ancre : entrée {latest.seq})")
    elif a.unanchored:
        lines.append(f"trace NON ANCRÉE : aucune ancre valide dans {anchor_file} pour {last} entrées "
                     f"(fichier perdu, remplacé, ou bot jamais lancé avec cette configuration)")
    elif latest:
        newer = f" ; {a.newer} entrée(s) plus récente(s), ancrée(s) au prochain passage" if a.newer else ""
        lines.append(f"trace ancrée : {a.anchors} ancre(s) signée(s) vérifiée(s), la dernière à l'entrée "
                     f"{latest.seq} ({when(latest)}){newer}")
    else:
        lines.append("trace ancrée : vide, aucune ancre encore")
    return lines


if __name__ == "__main__":
    sys.exit(main())
