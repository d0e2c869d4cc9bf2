"""Everything Liaison does with Matrix; the only package that imports matrix-nio.

- `client`: the Matrix client (nio's calls, errors as `MatrixError` with its `errcode`, a sync as a batch);
- `events`: what the services see of events, and the pure reading of an event's content;
- `content`: what Liaison posts (notices, replies, thread messages) in Element's current shapes;
- `keys`: operations on nio's live key store; `crypto_store`: the key stores on disk, under the configured key.
"""
from liaison.matrix.client import Matrix
from liaison.matrix.content import as_html, file_content, message, notice, relation, reply_content, reply_txn_id, txn_id, with_relation
from liaison.matrix.errors import FileTooBig, KeysMissing, MatrixError
from liaison.matrix.sync import MEMBERSHIP_FILTER, SYNC_FILTER
from liaison.matrix.events import (FILE_TYPES, FileMessage, Invite, Membership, PushedMessage, Reaction, ReadReceipt,
                                   Redaction, Session, SyncBatch, TextMessage, redaction)

__all__ = ["FILE_TYPES", "MEMBERSHIP_FILTER", "SYNC_FILTER", "FileMessage", "FileTooBig", "Invite", "KeysMissing",
           "Matrix", "MatrixError", "Membership", "PushedMessage", "Reaction", "ReadReceipt", "Redaction", "Session", "SyncBatch", "TextMessage",
           "as_html", "file_content", "message", "notice", "relation", "reply_content", "redaction", "reply_txn_id", "txn_id", "with_relation"]
