"""`!aide`, `!aide <commande>`, `!aide <commande> <sous-commande>`: generated from the declarations, showing
only what the reader may run."""
from __future__ import annotations

from html import escape

from bot.registry import Arg, Command, Context, Reply, Sub, command, place


@command("aide", en="help", aliases=["?"],
         args=[Arg("commande", "une commande à détailler", required=False),
               Arg("sous-commande", "une de ses sous-commandes", required=False)],
         help="Liste les commandes, ou détaille l'une d'elles (!aide parcours, !aide parcours ouvrir).")
async def aide(ctx: Context[object]) -> Reply:   # reads the registry, nothing of the services
    registry, wanted = ctx.registry, ctx.args.get("commande")
    if not wanted:
        return _overview(registry.visible_to(ctx.is_staff, ctx.is_coordinator), ctx.is_staff, ctx.is_coordinator)
    cmd = registry.find(wanted.lstrip("!/"))
    if cmd is None or cmd not in registry.visible_to(ctx.is_staff, ctx.is_coordinator):
        return Reply.plain(f"Pas de commande « {wanted} ». Tapez !aide pour la liste.")
    subs = cmd.visible_subs(ctx.is_staff, ctx.is_coordinator)
    named = ctx.args.get("sous-commande")
    if named:
        sub = cmd.sub(named)
        if sub is None or sub not in subs:
            return Reply.plain(f"Pas de sous-commande « {named} » de !{cmd.name}. Possibles : "
                               f"{', '.join(s.name for s in subs) or 'aucune'}.")
        return _sub_detail(cmd, sub)
    return _detail(cmd, subs)


def _overview(cmds: list[Command], is_staff: bool, is_coordinator: bool) -> Reply:
    head = "Commandes de Liaison (préfixe ! ou /, majuscules et accents indifférents) :"
    text, rows = [head], []
    for cmd in cmds:
        usage = cmd.usage(subs=cmd.visible_subs(is_staff, is_coordinator))
        text.append(f"• {usage} (!{cmd.english}) : {cmd.summary}")
        rows.append(f"<li><code>{escape(usage)}</code> (<code>!{escape(cmd.english)}</code>) : "
                    f"{escape(cmd.summary)}</li>")
    tail = "Détail : !aide <commande> [<sous-commande>]."
    text.append(tail)
    return Reply("\n".join(text), f"<p>{escape(head)}</p><ul>{''.join(rows)}</ul><p>{_code_words(tail)}</p>")


def _detail(cmd: Command, subs: list[Sub]) -> Reply:
    where = f" À taper {place(cmd.room, cmd.open)}." if place(cmd.room, cmd.open) else ""
    lines = [f"!{cmd.name} — {cmd.summary}", f"En anglais : !{cmd.english}. Réservée à : {cmd.who.value}.{where}"]
    html = [f"<p><code>!{escape(cmd.name)}</code> — {escape(cmd.summary)}</p>",
            f"<p>En anglais : <code>!{escape(cmd.english)}</code>. Réservée à : {escape(cmd.who.value)}."
            f"{escape(where)}</p>"]
    if subs:
        default = cmd.sub(cmd.default) if cmd.default else None
        lines.append("Sous-commandes :")
        items = []
        for sub in subs:
            note = " (par défaut)" if sub is default else ""
            who = "" if sub.who is cmd.who else f" — {sub.who.value}"
            lines.append(f"• {sub.usage(full=False)} ({sub.english}){note} : {sub.summary}{who}")
            items.append(f"<li><code>{escape(sub.usage(full=False))}</code> (<code>{escape(sub.english)}</code>){note} : "
                         f"{escape(sub.summary)}{escape(who)}</li>")
        lines.append(f"Détail : !aide {cmd.name} <sous-commande>.")
        html += ["<p>Sous-commandes :</p><ul>", *items, "</ul>",
                 f"<p>Détail : <code>!aide {escape(cmd.name)} &lt;sous-commande&gt;</code>.</p>"]
    else:
        lines[0] = f"{cmd.usage()} — {cmd.summary}"
        html[0] = f"<p><code>{escape(cmd.usage())}</code> — {escape(cmd.summary)}</p>"
        lines += _args_text(cmd.args)
        html.append(_args_html(cmd.args))
    return Reply("\n".join(lines), "".join(html))


def _sub_detail(cmd: Command, sub: Sub) -> Reply:
    other = f" (aussi : {', '.join(sub.aliases)})" if sub.aliases else ""
    where = f" À taper {sub.place(cmd)}." if sub.place(cmd) else ""
    lines = [f"{sub.usage()} — {sub.summary}",
             f"En anglais : !{cmd.english} {sub.english}{other}. Réservée à : {sub.who.value}.{where}",
             *_args_text(sub.args)]
    html = (f"<p><code>{escape(sub.usage())}</code> — {escape(sub.summary)}</p>"
            f"<p>En anglais : <code>!{escape(cmd.english)} {escape(sub.english)}</code>{escape(other)}. "
            f"Réservée à : {escape(sub.who.value)}.{escape(where)}</p>" + _args_html(sub.args))
    return Reply("\n".join(lines), html)


def _args_text(args: tuple[Arg, ...]) -> list[str]:
    return [f"  {a.usage()} : {a.help}" for a in args]


def _args_html(args: tuple[Arg, ...]) -> str:
    if not args:
        return ""
    return "<ul>" + "".join(f"<li><code>{escape(a.usage())}</code> : {escape(a.help)}</li>" for a in args) + "</ul>"


def _code_words(text: str) -> str:
    return escape(text).replace("!aide &lt;commande&gt; [&lt;sous-commande&gt;]",
                                "<code>!aide &lt;commande&gt; [&lt;sous-commande&gt;]</code>")


ALL = [aide]
