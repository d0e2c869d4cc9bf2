"""Message-IDs: what the bridge accepts coming in it can always write going out (#14)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import msgids
from bridge.mail_headers import MAX_REFERENCES
from bridge.mail_in import parse_mail
from bridge.mail_out import compose


def _mail(message_id: str, in_reply_to: str = "", references: str = "") -> bytes:
    head = [f"Message-ID: {message_id}", "From: Dr Test <dr@chu.mssante.test>", "To: liaison@msp.mssante.test",
            "Subject: Lettre", "Date: Tue, 01 Dec 2026 10:00:00 +0100"]
    if in_reply_to:
        head.append(f"In-Reply-To: {in_reply_to}")
    if references:
        head.append(f"References: {references}")
    return ("\r\n".join(head) + "\r\n\r\nBonjour.\r\n").encode()


def _reply(in_reply_to: str, references: tuple[str, ...] = ()) -> str:
    """The reply's headers, unfolded."""
    msg = compose(from_address="liaison@msp.mssante.test", from_display="Liaison", to="dr@chu.mssante.test",
                  subject="Lettre", text="Réponse", event_id="$e", in_reply_to=in_reply_to, references=references)
    return "\n".join(f"{k}: {' '.join(str(v).split())}" for k, v in msg.items())


def test_an_id_too_long_to_write_back_is_not_kept_coming_in():
    long_id = "a" * 245 + "@chu.fr"
    mail = parse_mail(_mail(f"<{long_id}>", in_reply_to=f"<{long_id}>"))
    assert mail.message_id is None and mail.in_reply_to is None
    ok = "a" * 243 + "@chu.fr"
    assert parse_mail(_mail(f"<{ok}>")).message_id == ok
    assert f"In-Reply-To: <{ok}>" in _reply(ok)


def test_a_mail_without_a_usable_id_gets_a_local_thread_key_never_written():
    key = msgids.local_id(42)
    assert msgids.is_local(key) and msgids.usable(key) is None
    written = _reply(key, references=(key, "root@chu.fr"))
    assert "In-Reply-To" not in written and "sans-message-id" not in written
    assert "Subject: Re: Lettre" in written and "References: <root@chu.fr>" in written


def test_references_keep_the_root_and_the_latest_usable_ids():
    ids = [f"<m{i}@chu.fr>" for i in range(1_000)]
    ids[3] = "<" + "x" * 300 + "@chu.fr>"
    refs = parse_mail(_mail("<n@chu.fr>", references=" ".join(ids))).references
    assert len(refs) == MAX_REFERENCES and refs[0] == "m0@chu.fr" and refs[-1] == "m999@chu.fr"


_ID = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(_ID, st.lists(_ID, max_size=5))
def test_whatever_comes_in_can_be_answered(message_id, references):
    mail = parse_mail(_mail(f"<{message_id}>", references=" ".join(f"<{r}>" for r in references)))
    if mail.message_id is not None:
        assert f"<{mail.message_id}>" in _reply(mail.message_id, mail.references)
