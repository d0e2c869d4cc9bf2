"""`!mss`: the mail relay seen from the rooms: the quarantine (list, route by hand, reject) and
`!mss ecrire`, a new mail thread with an external MSSanté address the policy allows."""
from __future__ import annotations

from typing import Protocol

from bot.arguments import count
from bot.directory_lookup import DirectoryPorts, address_or_named, mailbox
from bot.ports import MailPort, TracePort
from bot.registry import Arg, Audience, Context, Reply, group
from bot.reply import table
from liaison.stores.mail import ROUTABLE, Request
from liaison.stores.pathways import PathwayStore
from liaison.enforcement import decide_at
from liaison.sharing_facts import SharingStores
from policies.records import RECORDS

NO_BRIDGE = "Le pont MSSanté n'est pas configuré pour cette structure."
N = Arg("n", "le n° du courriel dans la quarantaine (!mss quarantaine)", parse=count)


class MssPorts(DirectoryPorts, Protocol):
    """What `!mss` reads and steers: the bridge's mail store, the pathways, the decisions and the trace; and the
    directory, for a correspondent named by RPPS or by name."""
    @property
    def mail(self) -> MailPort | None: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def trace(self) -> TracePort: ...


def _bridged(services: MssPorts) -> str | None:
    return NO_BRIDGE if services.mail is None else None


def _mail(ctx: Context[MssPorts]) -> MailPort:
    """The bridge's mail store: there whenever a `!mss` sub-command runs (the group `requires=_bridged`)."""
    if ctx.services.mail is None:
        raise ValueError(NO_BRIDGE)
    return ctx.services.mail


mss = group("mss", patient_data=True, en="mail", who=Audience.STAFF, default="quarantaine", requires=_bridged,
            room=("coordination", "direct"),
            help="La messagerie MSSanté : quarantaine, router, rejeter, écrire à un correspondant.")


@mss.sub("quarantaine", en="quarantine", aliases=["liste", "list"], who=Audience.COORDINATOR,
         help="Les courriels arrivés que le pont n'a pu déposer dans aucun salon.")
async def _list(ctx: Context[MssPorts]) -> Reply:
    waiting = await _mail(ctx).quarantined()
    if not waiting:
        return Reply.plain("Aucun courriel en quarantaine.")
    rows = [(str(q.number), q.from_address or "illisible", q.reason) for q in waiting]
    text, html = table(["N°", "Expéditeur", "Raison"], rows)
    hint = "!mss router <n> <code du parcours> pour déposer, !mss rejeter <n> pour écarter."
    return Reply(f"Courriels en quarantaine ({len(rows)}) :\n{text}\n{hint}",
                 f"<p>Courriels en quarantaine ({len(rows)}) :</p>{html}<p>{hint}</p>")


@mss.sub("router", en="route", aliases=["deposer"], who=Audience.COORDINATOR,
         args=[N, Arg("parcours", "le code du parcours (ex. P-7K3Q9)")],
         help="Dépose un courriel de la quarantaine dans un parcours, si la loi le permet.")
async def _route(ctx: Context[MssPorts]) -> Reply:
    s, mail, number, code = ctx.services, _mail(ctx), ctx.args["n"], ctx.args["parcours"]
    q = await mail.quarantined_one(number)
    if q is None or q.state != "waiting":
        return Reply.plain(f"Aucun courriel n° {number} en attente dans la quarantaine (!mss quarantaine).")
    pathway = await s.pathways.by_code(code)
    if pathway is None or pathway.status != "open":
        return Reply.plain(f"Aucun parcours ouvert de code « {code} » (!parcours pour la liste).")
    if q.reason_code not in ROUTABLE and q.reason_code != "untrusted":
        return Reply.plain(f"Le courriel n° {number} ne peut pas être déposé ({q.reason}) : écartez-le avec "
                           f"!mss rejeter {number}.")
    decided = await decide_at(s.sharing, "mail.in.route", pathway=pathway, recipient=q.from_address, actor=ctx.sender,
                              trusted_domain=q.trusted)
    ref = decided.trace
    if not decided.allowed:
        return Reply.plain(f"Refusé : {decided.sentence()}. Écartez-le avec !mss rejeter {number}.")
    if not await mail.decide_quarantined(number, state="routing", actor=ctx.sender, pathway_id=pathway.id):
        return Reply.plain(f"Le courriel n° {number} vient d'être traité par quelqu'un d'autre.")
    return Reply.plain(f"Courriel n° {number} : dépôt dans le parcours {pathway.code} en cours (trace {ref}).")


@mss.sub("rejeter", en="reject", aliases=["ecarter"], who=Audience.COORDINATOR, args=[N],
         help="Écarte un courriel de la quarantaine : il ne sera déposé nulle part (tracé).")
async def _reject(ctx: Context[MssPorts]) -> Reply:
    number, mail = ctx.args["n"], _mail(ctx)
    if not await mail.decide_quarantined(number, state="rejected", actor=ctx.sender):
        return Reply.plain(f"Aucun courriel n° {number} en attente dans la quarantaine.")
    q, record = await mail.quarantined_one(number), RECORDS["quarantine.rejected"]
    sender = q.from_address if q is not None else ""
    ref = await ctx.services.trace.append(actor=ctx.sender, action=record.action,
                                          subject=sender or f"courriel n° {number}", decision=record.decision)
    return Reply.plain(f"Courriel n° {number} écarté : il ne sera déposé dans aucun salon (trace {ref}).")


@mss.sub("ecrire", en="write", aliases=["envoyer"], room="pathway", open=True,
         args=[Arg("adresse", "l'adresse MSSanté du correspondant, ou son n° RPPS ou son nom dans l'annuaire santé "
                              "(entre guillemets s'il a plusieurs mots)", parse=address_or_named),
               Arg("texte", "le message, tel que vous l'écrivez", rest=True)],
         help="Écrit à un correspondant MSSanté depuis le salon du parcours ; sa réponse arrive dans le fil.")
async def _write(ctx: Context[MssPorts]) -> Reply:
    s, pathway = ctx.services, ctx.room_pathway
    resolved = await mailbox(ctx, ctx.args["adresse"], again="!mss ecrire {rpps} …")
    if isinstance(resolved, Reply):
        return resolved
    address = resolved.address
    decided = await decide_at(s.sharing, "mail.out.write", pathway=pathway, recipient=address, actor=ctx.sender)
    ref = decided.trace
    if not decided.allowed:
        return Reply.plain(f"{resolved.said}Courriel non envoyé : {decided.sentence()}.")
    await _mail(ctx).add_request(Request(ctx.event_id, pathway.id, ctx.room_id, ctx.sender, address, ctx.args["texte"]))
    return Reply.plain(f"{resolved.said}Courriel pour {address} confié au pont MSSanté (trace {ref}) : il part de la "
                       "boîte de la structure, et sa réponse arrivera dans le fil de ce message.")


ALL = [mss]
