"""One C heap for every thread of a process that runs models on many threads (the app).

glibc gives each new thread an arena of its own (up to 8 per core) and hands a thread arena's
free memory back to the kernel as soon as it is freed, so the next call's activations fault
every page in again: about 2,900 page faults, 6 to 8 ms, per forward pass of the shipped
fashion model on a request thread of the app, against none on the main thread, whose heap
keeps what it grew to (2-core VM, 2.6 µs a fault). With one arena, every thread reuses the
memory of the calls before it.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def one_heap() -> bool:
    """Let every thread allocate from the main arena (glibc only; elsewhere nothing happens).
    Call it before the process starts threads: a thread that already has an arena keeps it.
    True when glibc took it."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        taken = bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        taken = False
    if not taken:
        log.debug("malloc arenas left as they are")
    return taken
