"""What a Matrix call that failed says: `MatrixError`, with the homeserver's `errcode` (M_FORBIDDEN…) to test,
never its message."""
from __future__ import annotations


class MatrixError(RuntimeError):
    """A call the homeserver refused or could not answer; `errcode` is its code (None when it gave none)."""

    def __init__(self, what: str, response: object) -> None:
        code = getattr(response, "status_code", None) or getattr(response, "errcode", "")
        super().__init__(f"{what} failed: {code} {getattr(response, 'message', response)}")
        self.errcode: str | None = getattr(response, "status_code", None)


class FileTooBig(MatrixError):
    """A room file over the size the caller accepts (the bytes were not kept)."""

    def __init__(self, size: int) -> None:
        super().__init__("download", f"file over the size limit ({size} bytes)")
        self.size = size


class KeysMissing(Exception):
    """The room key of an encrypted event has not reached this device yet: try again after a sync."""
