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
_M_MMAP_THRESHOLD = -3


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


def map_big_blocks(threshold: int = 1024 * 1024) -> None:
    """Blocks of `threshold` bytes or more get their own mapping, handed back the moment they are freed. glibc
    otherwise raises its threshold to the size of the last big block freed (up to 32 MB): after one 20 MB mail,
    the copies of the next (fetch, parse, quarantine) stay resident until trimmed, and add up."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold)


def trim(collect: bool = True) -> None:
    """Collect garbage (unless `collect` is False: only what is already freed) and give freed heap pages back."""
    if collect:
        gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
