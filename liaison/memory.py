"""Keep a long-running service's memory small on glibc (no-ops elsewhere).

Each thread that allocates gets its own malloc arena by default (aiosqlite and the
executor run threads), and freed memory is not handed back to the system until
trimmed: a service that idles most of the day pays for its busiest minute.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc

_M_ARENA_MAX = -8


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(count: int = 2) -> None:
    """Call before any thread starts."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, count)


def trim() -> None:
    """Collect garbage and give freed heap pages back to the system."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
