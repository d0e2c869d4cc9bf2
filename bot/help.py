"""`!aide`: generated from the commands' own declarations."""
from __future__ import annotations

from html import escape

from bot.commands import Arg, Context, Reply, command


@command("aide", en="help", aliases=["?"], args=[Arg("commande", "une commande à détailler", required=False)],
         help="Liste les commandes, ou détaille l'une d'elles (!aide parcours).")
async def aide(ctx: Context) -> Reply:
    registry = ctx.registry
    wanted = ctx.args.get("commande")
    if wanted:
        cmd = registry.find(wanted.lstrip("!/"))
        if cmd is None or cmd not in registry.visible_to(ctx.is_staff, ctx.is_coordinator):
            return Reply.plain(f"Pas de commande « {wanted} ». Tapez !aide pour la liste.")
        return _detail(cmd)
    cmds = registry.visible_to(ctx.is_staff, ctx.is_coordinator)
    text = ["Commandes de Liaison (préfixe ! ou /, majuscules et accents indifférents) :"]
    rows = []
    for cmd in cmds:
        text.append(f"• {cmd.usage()} (!{cmd.english}) : {cmd.summary}")
        rows.append(f"<li><code>{escape(cmd.usage())}</code> (<code>!{escape(cmd.english)}</code>) : "
                    f"{escape(cmd.summary)}</li>")
    text.append("Détail d'une commande : !aide <commande>.")
    html = (f"<p>{escape(text[0])}</p><ul>{''.join(rows)}</ul>"
            f"<p>Détail d'une commande : <code>!aide &lt;commande&gt;</code>.</p>")
    return Reply("\n".join(text), html)


def _detail(cmd) -> Reply:
    lines = [f"{cmd.usage()} — {cmd.summary}",
             f"En anglais : !{cmd.english}. Réservée à : {cmd.who.value}."]
    lines += [f"  {a.usage()} : {a.help}" for a in cmd.args]
    html = (f"<p><code>{escape(cmd.usage())}</code> — {escape(cmd.summary)}</p>"
            f"<p>En anglais : <code>!{escape(cmd.english)}</code>. Réservée à : {escape(cmd.who.value)}.</p>")
    if cmd.args:
        html += "<ul>" + "".join(f"<li><code>{escape(a.usage())}</code> : {escape(a.help)}</li>"
                                 for a in cmd.args) + "</ul>"
    return Reply("\n".join(lines), html)


ALL = [aide]
