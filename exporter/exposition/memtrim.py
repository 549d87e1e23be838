"""Memory around large refreshes: the collector paused while one allocates, and freed memory
handed back to the system once a large part of the exposition was replaced.

CPython frees objects to its own allocator and to glibc's; glibc keeps freed pages of the main
arena until `malloc_trim` asks it to return them, so after a 100,000-agent refresh the process
would keep the previous fleet's peak as resident memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_trim: Callable[[int], int] | None = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
    _trim = None


def release() -> bool:
    """Trim glibc's heap; False where there is no malloc_trim. (No collection first: what a
    refresh replaces is freed by reference counting, and a full pass over a large fleet's
    objects would hold the GIL for tens of milliseconds.)"""
    if _trim is None:
        return False
    _trim(0)
    return True


class _Pauses:
    """Blocks running with the collector paused, and whether it was on before the first."""

    lock = threading.Lock()
    running = 0
    was_enabled = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic garbage collection while the block runs. A 100,000-agent refresh allocates
    about a million containers, none of them in a cycle; the collections they would trigger on
    the way each scan every young object while holding the GIL (one 160 ms pass measured), so
    a scrape arriving then waits. Nested and concurrent blocks (several tenants' refreshes)
    keep it paused until the last one ends; a collector that was off stays off."""
    with _Pauses.lock:
        if _Pauses.running == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.running += 1
    try:
        yield
    finally:
        with _Pauses.lock:
            _Pauses.running -= 1
            if _Pauses.running == 0 and _Pauses.was_enabled:
                gc.enable()
