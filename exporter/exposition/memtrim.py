"""Hand freed memory back to the system after a large part of the exposition was replaced.

CPython frees objects to its own allocator and to glibc's; glibc keeps freed pages of the main
arena until `malloc_trim` asks it to return them, so after a 100,000-agent refresh the process
would keep the previous fleet's peak as resident memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
    _trim = None


def release() -> bool:
    """Collect cycles, then trim glibc's heap; False where there is no malloc_trim."""
    gc.collect()
    if _trim is None:
        return False
    _trim(0)
    return True
