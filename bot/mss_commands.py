"""`!mss`: the mail relay seen from the rooms: the quarantine (list, route by hand, reject) and
`!mss ecrire`, a new mail thread with an external MSSanté address the policy allows."""
from __future__ import annotations

from bot.commands import MAIL_ADDRESS, Arg, Audience, Context, Reply, Words, command, fold, number as _number
from bot.reply import table
from liaison.mail_store import ROUTABLE, Request
from liaison.enforcement import decide_at
from policies.records import RECORDS

USAGE = ("!mss quarantaine · !mss router <n> <code du parcours> · !mss rejeter <n> · "
         "!mss ecrire <adresse MSSanté> <texte>")
NO_BRIDGE = "Le pont MSSanté n'est pas configuré pour cette structure."
COORDINATION_ONLY = "Cette action est réservée à la coordination de la structure."


@command("mss", patient_data=True, en="mail", who=Audience.STAFF,
         args=[Arg("action", "quarantaine, router, rejeter, ecrire", required=False),
               Arg("détails", "selon l'action", required=False, rest=True)],
         help="La messagerie MSSanté : quarantaine, router, rejeter, écrire à un correspondant.")
async def mss(ctx: Context) -> Reply:
    if ctx.services.mail is None:
        return Reply.plain(NO_BRIDGE)
    action = fold(ctx.args.get("action") or "quarantaine")
    handler = _ACTIONS.get(action)
    if handler is None:
        return Reply.plain(f"Action inconnue « {action} ». Utilisation : {USAGE}")
    return await handler(ctx, Words(ctx.args.get("détails") or ""))



async def _list(ctx: Context, words: list[str]) -> Reply:
    if not ctx.is_coordinator:
        return Reply.plain(COORDINATION_ONLY)
    waiting = await ctx.services.mail.quarantined()
    if not waiting:
        return Reply.plain("Aucun courriel en quarantaine.")
    rows = [(str(q.number), q.from_address or "illisible", q.reason) for q in waiting]
    text, html = table(["N°", "Expéditeur", "Raison"], rows)
    hint = "!mss router <n> <code du parcours> pour déposer, !mss rejeter <n> pour écarter."
    return Reply(f"Courriels en quarantaine ({len(rows)}) :\n{text}\n{hint}",
                 f"<p>Courriels en quarantaine ({len(rows)}) :</p>{html}<p>{hint}</p>")


async def _route(ctx: Context, words: list[str]) -> Reply:
    if not ctx.is_coordinator:
        return Reply.plain(COORDINATION_ONLY)
    s = ctx.services
    number = _number(words[0] if words else None)
    if number is None or len(words) != 2:
        return Reply.plain("Utilisation : !mss router <n> <code du parcours> (ex. !mss router 3 P-7K3Q9).")
    q = await s.mail.quarantined_one(number)
    if q is None or q.state != "waiting":
        return Reply.plain(f"Aucun courriel n° {number} en attente dans la quarantaine (!mss quarantaine).")
    pathway = await s.pathways.by_code(words[1])
    if pathway is None or pathway.status != "open":
        return Reply.plain(f"Aucun parcours ouvert de code « {words[1]} » (!parcours pour la liste).")
    if q.reason_code not in ROUTABLE and q.reason_code != "untrusted":
        return Reply.plain(f"Le courriel n° {number} ne peut pas être déposé ({q.reason}) : écartez-le avec "
                           f"!mss rejeter {number}.")
    decided = await decide_at(s, "mail.in.route", pathway=pathway, recipient=q.from_address, actor=ctx.sender,
                              trusted_domain=q.trusted)
    ref = decided.trace
    if not decided.allowed:
        return Reply.plain(f"Refusé : {decided.sentence()}. Écartez-le avec !mss rejeter {number}.")
    if not await s.mail.decide_quarantined(number, state="routing", actor=ctx.sender, pathway_id=pathway.id):
        return Reply.plain(f"Le courriel n° {number} vient d'être traité par quelqu'un d'autre.")
    return Reply.plain(f"Courriel n° {number} : dépôt dans le parcours {pathway.code} en cours (trace {ref}).")


async def _reject(ctx: Context, words: list[str]) -> Reply:
    if not ctx.is_coordinator:
        return Reply.plain(COORDINATION_ONLY)
    number = _number(words[0] if words else None)
    if number is None:
        return Reply.plain("Utilisation : !mss rejeter <n>.")
    if not await ctx.services.mail.decide_quarantined(number, state="rejected", actor=ctx.sender):
        return Reply.plain(f"Aucun courriel n° {number} en attente dans la quarantaine.")
    q, record = await ctx.services.mail.quarantined_one(number), RECORDS["quarantine.rejected"]
    ref = await ctx.services.trace.append(actor=ctx.sender, action=record.action,
                                          subject=q.from_address or f"courriel n° {number}", decision=record.decision)
    return Reply.plain(f"Courriel n° {number} écarté : il ne sera déposé dans aucun salon (trace {ref}).")


async def _write(ctx: Context, words: Words) -> Reply:
    s = ctx.services
    pathway = await s.pathways.by_room(ctx.room_id)
    if pathway is None or pathway.room_id != ctx.room_id or pathway.status != "open":
        return Reply.plain("Tapez !mss ecrire dans le salon (ouvert) du parcours concerné.")
    if len(words) < 2 or not MAIL_ADDRESS.match(words[0]):
        return Reply.plain("Utilisation : !mss ecrire <adresse MSSanté> <texte> "
                           "(ex. !mss ecrire dr.x@chu.mssante.fr Bonjour, …).")
    address = words[0].lower()
    decided = await decide_at(s, "mail.out.write", pathway=pathway, recipient=address, actor=ctx.sender)
    ref = decided.trace
    if not decided.allowed:
        return Reply.plain(f"Courriel non envoyé : {decided.sentence()}.")
    await s.mail.add_request(Request(ctx.event_id, pathway.id, ctx.room_id, ctx.sender, address, words.rest(1)))
    return Reply.plain(f"Courriel pour {address} confié au pont MSSanté (trace {ref}) : il part de la boîte de la "
                       "structure, et sa réponse arrivera dans le fil de ce message.")


_ACTIONS = {
    "quarantaine": _list, "quarantine": _list, "liste": _list, "list": _list,
    "router": _route, "route": _route, "deposer": _route,
    "rejeter": _reject, "reject": _reject, "ecarter": _reject,
    "ecrire": _write, "write": _write, "envoyer": _write,
}

ALL = [mss]
