"""What Liaison posts, in the shapes Element writes: one relation builder for notices, replies and threads."""
from __future__ import annotations

from liaison.matrix import TextMessage, as_html, file_content, notice, relation, reply_content


def test_a_message_in_a_thread_falls_back_to_its_root():
    assert relation("$root") == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
                                 "m.in_reply_to": {"event_id": "$root"}}


def test_a_reply_inside_a_thread_is_a_real_reply():
    assert relation("$root", "$msg") == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": False,
                                         "m.in_reply_to": {"event_id": "$msg"}}


def test_a_reply_outside_a_thread_and_a_plain_notice():
    assert relation(reply_to="$msg") == {"m.in_reply_to": {"event_id": "$msg"}}
    assert relation() is None
    assert notice("Bonjour") == {"msgtype": "m.notice", "body": "Bonjour", "format": "org.matrix.custom.html",
                                 "formatted_body": "Bonjour"}
    assert notice("a", "<b>a</b>")["formatted_body"] == "<b>a</b>"


def test_rule_ids_and_references_are_code_so_no_client_makes_them_links():
    shown = as_html("Refusé (règle outside.no_consent, art. L1110-4 ; trace 12). réf. ab12cd34\n<b>")
    assert shown == ("Refusé (règle <code>outside.no_consent</code>, art. L1110-4 ; trace <code>12</code>). "
                     "réf. <code>ab12cd34</code><br>&lt;b&gt;")


def test_a_command_s_answer_replies_to_it_in_its_thread():
    asked = TextMessage("!r", "$cmd", "@gp:hs", "!aide", encrypted=True, thread_root="$root")
    content = reply_content(asked, "texte", "<p>texte</p>")
    assert content["m.relates_to"] == relation("$root", "$cmd") and content["msgtype"] == "m.notice"
    assert reply_content(asked, "t", "t", notice=False)["msgtype"] == "m.text"


def test_a_file_message_names_the_file_only_inside_the_event():
    content = file_content("bilan.pdf", "application/pdf", 12, {"url": "mxc://hs/x"})
    assert content == {"msgtype": "m.file", "body": "bilan.pdf", "filename": "bilan.pdf",
                       "info": {"mimetype": "application/pdf", "size": 12}, "file": {"url": "mxc://hs/x"}}
    assert file_content("a.png", "image/png", 1, {}, image=True)["msgtype"] == "m.image"


def test_matrix_to_links_are_short_links_that_fit_a_phone():
    html = as_html("Parcours ouvert (P-7K3Q9) : https://matrix.to/#/!AbCdEf:liaison.localhost — 3 invitation(s).\n"
                   "Lien : https://matrix.to/#/!AbCdEf:liaison.localhost/$ev_1. Voir https://matrix.to/#/@dr:hs")
    assert ('<a href="https://matrix.to/#/!AbCdEf:liaison.localhost">ouvrir le salon</a> — 3' in html
            and '<a href="https://matrix.to/#/!AbCdEf:liaison.localhost/$ev_1">ouvrir le message</a>.' in html
            and '<a href="https://matrix.to/#/@dr:hs">voir le profil</a>' in html)
    assert as_html("https://example.org/#/!x:hs") == "https://example.org/#/!x:hs", "only matrix.to links"
