"""`!docs` and `!doc`: the pathway's documents, one document's details, its type, and sending it to an
external professional as IHE XDM through the MSSanté bridge (J6)."""
from __future__ import annotations

from html import escape
from typing import Protocol

from bot.arguments import count
from bot.directory_lookup import DirectoryPorts, address_or_named, mailbox
from bot.ports import DocumentsPort, MailPort, RosterPort
from bot.registry import Arg, Audience, Context, Reply, command, group
from bot.reply import when as _when
from bot.rooms import ShowPorts, may_show
from liaison.doc_check import Antivirus
from liaison.stores.documents import Document, Versioned, line_of, versions
from liaison.stores.pathways import Pathway
from liaison.stores.mail import Request
from liaison.enforcement import decide_at
from policies.documents import DocType, doctype_label as _label, find_doctype

NO_ANTIVIRUS = ("ℹ️ Aucun antivirus n'est configuré pour la structure : les fichiers sont contrôlés (type réel, "
                "taille, cohérence avec leur nom) mais pas analysés par ClamAV. Parlez-en à l'administrateur.")
_KINDS = {"application/pdf": "PDF", "image/jpeg": "image JPEG", "image/png": "image PNG", "image/gif": "image GIF",
          "image/tiff": "image TIFF", "image/heic": "image HEIC", "text/plain": "texte", "text/xml": "XML",
          "application/xml": "XML", "application/hl7-v3+xml": "CDA"}


class ListingPorts(Protocol):
    """What the list of a pathway's documents reads: the index, and the team for its authors' names."""
    @property
    def documents(self) -> DocumentsPort: ...
    @property
    def roster(self) -> RosterPort: ...


class DocumentPorts(ListingPorts, ShowPorts, DirectoryPorts, Protocol):
    """What `!docs` and `!doc` read and do: the list, whether the room may see it, the antivirus, the bridge; and the
    directory, for a recipient named by RPPS or by name."""
    @property
    def antivirus(self) -> Antivirus: ...
    @property
    def mail(self) -> MailPort | None: ...


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} Kio"
    return f"{n / 1024 / 1024:.1f} Mio".replace(".", ",")



def _link(doc: Document) -> str:
    return f"https://matrix.to/#/{doc.room_id}/{doc.event_id}"


async def _author(services: ListingPorts, doc: Document) -> str:
    if doc.source == "mssante":
        return f"{doc.author_name} <{doc.author}>" if doc.author_name else doc.author
    member = await services.roster.get(doc.author)
    return member.display_name if member else doc.author


async def _not_shown(ctx: Context[DocumentPorts]) -> Reply | None:
    """Why the pathway's documents are not shown to this reader in its clinical room (decided, traced); None when
    they are. (Where documents are shown at all is declared: the clinical room, never the circle room.)"""
    shown = await may_show(ctx, ctx.room_pathway)
    return None if shown.allowed else Reply.plain(f"Documents non montrés : {shown.sentence()}.")


@command("docs", patient_data=True, en="documents", room="pathway",
         help="Les documents du parcours, les plus récents d'abord, par type, avec leurs versions.")
async def docs(ctx: Context[DocumentPorts]) -> Reply:
    s, pathway = ctx.services, ctx.room_pathway
    if refusal := await _not_shown(ctx):
        return refusal
    told = ""
    if not s.antivirus.configured and await s.documents.first_time(pathway.id, "no_antivirus"):
        told = NO_ANTIVIRUS
    return await listing(s, pathway, told)


async def listing(services: ListingPorts, pathway: Pathway, told: str = "") -> Reply:
    """The pathway's documents, newest first, grouped by type (the answer to !docs): a list, one item per document
    (number, name, who, when, how, versions), that reads at a phone's width and beside a side panel."""
    lines = versions(await services.documents.of_pathway(pathway.id))
    if not lines:
        text = ("Aucun document dans ce parcours pour l'instant. Déposez un fichier dans ce salon (ou faites-le "
                "envoyer par MSSanté) : il sera vérifié puis indexé.")
        return Reply.plain("\n".join(filter(None, [text, told])))
    groups: dict[str, list[Versioned]] = {}
    for line in lines:   # newest first: the groups come in the order of their newest document
        groups.setdefault(line.current.doctype or DocType.AUTRE.key, []).append(line)
    text_parts, html_parts = [f"Documents du parcours {pathway.code} ({len(lines)}) :"], []
    for doctype, same_type in groups.items():
        items = [await _item(services, line) for line in same_type]
        text_parts.append(f"{_label(doctype)} :")
        text_parts += [f"  {text}" for text, _html in items]
        html_parts.append(f"<p><b>{escape(_label(doctype))}</b> ({len(same_type)})</p>"
                          f"<ul>{''.join(f'<li>{html}</li>' for _text, html in items)}</ul>")
    hint = "Détail : !doc <n> ; envoyer : !doc envoyer <n> <adresse MSSanté>."
    text_parts += [hint, told]
    html = (f"<p>Documents du parcours <code>{escape(pathway.code)}</code> ({len(lines)}) :</p>"
            + "".join(html_parts) + f"<p>{escape(hint)}</p>" + (f"<p>{escape(told)}</p>" if told else ""))
    return Reply("\n".join(filter(None, text_parts)), html)


async def _item(services: ListingPorts, line: Versioned) -> tuple[str, str]:
    """One document of the list, as text and as HTML: n° 2 · bilan.pdf · who · when · how [· versions]."""
    d = line.current
    older = ", ".join(f"n° {o.number}" for o in line.older)
    count = f"versions : {line.count} (précédentes : {older})" if line.older else ""
    who, when = await _author(services, d), _when(d.created_at)
    text = " · ".join(filter(None, [f"n° {d.number}", d.title, who, when, d.source_label, count]))
    html = (f"<b>n° {d.number}</b> · {escape(d.title)}<br>{escape(who)}, {escape(when)}, via "
            f"{escape(d.source_label)}" + (f"<br><i>{escape(count)}</i>" if count else ""))
    return text, html


doc = group("doc", patient_data=True, en="document", default="voir", room="pathway",
            help="Un document : son détail (!doc 3), son type (!doc type 3 biologie), l'envoyer par MSSanté "
                 "(!doc envoyer 3 dr.x@chu.mssante.fr).")
N = Arg("n", "le n° du document (!docs)", parse=count)


@doc.sub("voir", en="show", aliases=["detail"], args=[N], help="Le détail d'un document : type, auteur, fichier, versions.")
async def _show(ctx: Context[DocumentPorts]) -> Reply:
    return await _detail(ctx, ctx.args["n"])


async def _find(ctx: Context[DocumentPorts], number: int) -> Document | Reply:
    """The document n° `number` of the room's pathway, or why there is none to show."""
    if refusal := await _not_shown(ctx):
        return refusal
    found = await ctx.services.documents.by_number(ctx.room_pathway.id, number)
    if found is None:
        return Reply.plain(f"Aucun document n° {number} dans ce parcours (!docs pour la liste).")
    return found


async def _detail(ctx: Context[DocumentPorts], number: int) -> Reply:
    d = await _find(ctx, number)
    if isinstance(d, Reply):
        return d
    line = line_of(await ctx.services.documents.of_pathway(ctx.room_pathway.id), d)
    if line is not None and line.current.id != d.id:
        version = f"ancienne version, remplacée par le n° {line.current.number}"
    elif line is not None and line.older:
        version = f"version la plus récente ({line.count} versions : " \
                  + ", ".join(f"n° {o.number}" for o in line.older) + " avant elle)"
    else:
        version = "version unique"
    kind = _KINDS.get(d.mime or "", d.mime or "—")
    facts = [("Type", _label(d.doctype) + (f" (code {d.type_code})" if d.type_code else "")),
             ("Auteur", await _author(ctx.services, d)), ("Déposé le", f"{_when(d.created_at)}, via {d.source_label}"),
             ("Fichier", f"{kind}, {_size(d.size)}"), ("SHA-256", d.sha256 or "—"), ("Version", version),
             ("Lien", _link(d))]
    head = f"Document n° {d.number} : {d.title}"
    text = "\n".join([head, *(f"{k} : {v}" for k, v in facts)])
    html = (f"<p><b>{escape(head)}</b></p><ul>"
            + "".join(f"<li>{escape(k)} : {_html_value(k, v)}</li>" for k, v in facts) + "</ul>")
    return Reply(text, html)


def _html_value(key: str, value: str) -> str:
    if key == "Lien":
        return f'<a href="{escape(value)}">ouvrir le message</a>'
    if key == "SHA-256":
        return f"<code>{escape(value)}</code>"
    return escape(value)


@doc.sub("type", en="retype", aliases=["retyper"], who=Audience.STAFF,
         args=[N, Arg("type", "le type du document, en un ou plusieurs mots (ex. biologie, compte rendu)", rest=True)],
         help="Change le type d'un document.")
async def _set_type(ctx: Context[DocumentPorts]) -> Reply:
    d = await _find(ctx, ctx.args["n"])
    if isinstance(d, Reply):
        return d
    doctype = find_doctype(ctx.args["type"])
    if doctype is None:
        return Reply.plain(f"Type inconnu « {ctx.args['type']} ». Types : {_types()}")
    await ctx.services.documents.set_type(d.id, doctype.key, ctx.sender)
    return Reply.plain(f"Document n° {d.number} : type « {doctype.label} » (il était « {_label(d.doctype)} »).")


def _types() -> str:
    return ", ".join(f"{t.label} ({t.key})" for t in DocType)


@doc.sub("envoyer", en="send", aliases=["envoi", "transmettre"], who=Audience.STAFF, open=True,
         args=[N, Arg("adresse", "l'adresse MSSanté du destinataire, ou son n° RPPS ou son nom dans l'annuaire santé "
                                 "(entre guillemets s'il a plusieurs mots)", parse=address_or_named),
               Arg("message", "un mot d'accompagnement, tel que vous l'écrivez", required=False, rest=True)],
         help="Envoie un document par MSSanté (IHE XDM), si la loi le permet ; la réponse arrive dans le fil.")
async def _send(ctx: Context[DocumentPorts]) -> Reply:
    s = ctx.services
    if s.mail is None:
        return Reply.plain("Le pont MSSanté n'est pas configuré pour cette structure : aucun envoi possible.")
    d, pathway = await _find(ctx, ctx.args["n"]), ctx.room_pathway
    if isinstance(d, Reply):
        return d
    resolved = await mailbox(ctx, ctx.args["adresse"], again=f"!doc envoyer {d.number} {{rpps}}")
    if isinstance(resolved, Reply):
        return resolved
    address = resolved.address
    decided = await decide_at(s.sharing, "doc.send", pathway=pathway, recipient=address, actor=ctx.sender)
    ref = decided.trace
    if not decided.allowed:
        return Reply.plain(f"{resolved.said}Document non envoyé : {decided.sentence()}.")
    await s.mail.add_request(Request(ctx.event_id, pathway.id, ctx.room_id, ctx.sender, address,
                                     ctx.args.get("message", ""), document_id=d.id))
    return Reply.plain(f"{resolved.said}Document n° {d.number} ({_label(d.doctype)}) confié au pont MSSanté pour "
                       f"{address}, en pièce jointe IHE XDM (trace {ref}). La réponse arrivera dans le fil de ce message.")


ALL = [docs, doc]
