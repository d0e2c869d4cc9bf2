"""The `liaison` command: `liaison up` (local stack), `liaison bot`, `liaison migrate`, `liaison check`."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from liaison.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison : coordination des soins sur Matrix.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="lance la pile locale (Synapse, bot, comptes de démonstration)")
    up.add_argument("--dir", default=".liaison", help="dossier des données de la pile (défaut : .liaison)")
    for name, text in (("bot", "lance le bot"), ("migrate", "met la base de données à jour"),
                       ("check", "vérifie le fichier de configuration")):
        p = sub.add_parser(name, help=text)
        p.add_argument("-c", "--config", required=True)
    trace = sub.add_parser("trace", help="la trace des partages")
    trace.add_argument("what", choices=["verify"], help="verify : vérifie le chaînage de la trace")
    trace.add_argument("-c", "--config", required=True)
    args = parser.parse_args(argv)

    if args.cmd == "up":
        from liaison.stack.up import up as run_stack
        return run_stack(Path(args.dir))
    if args.cmd == "bot":
        from bot.__main__ import main as bot_main
        return bot_main(["-c", args.config])
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2
    if args.cmd == "trace":
        return asyncio.run(_verify_trace(cfg.database.url))
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
        print("configuration valide")
    return 0


async def _verify_trace(url: str) -> int:
    from liaison.db import open_database
    from liaison.trace import Trace

    engine = await open_database(url)
    try:
        check = await Trace(engine).verify()
    finally:
        await engine.dispose()
    if check.ok:
        print(f"trace intègre : {check.entries} entrées, chaînage vérifié")
        return 0
    print(f"trace ALTÉRÉE : l'entrée {check.first_bad} ne correspond plus au chaînage "
          f"({check.entries} entrées valides avant elle)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
