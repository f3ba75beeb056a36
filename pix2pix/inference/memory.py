"""One C heap, kept, for a process that runs models on many threads (the app).

glibc gives each new thread an arena of its own (up to 8 per core) and hands freed memory
back to the kernel once its free top passes a threshold that glibc keeps adjusting, so a
request's activations often fault every page in again: about 1,000 to 2,900 page faults,
6 to 8 ms, per forward pass of the shipped fashion model on a request thread of the app
(2-core VM, 2.6 µs a fault). One arena alone still faulted on some passes and on every pass
of some runs; with blocks up to 32 MB taken from the heap (not mapped one by one) and up to
128 MB of free memory kept on it, the passes after the first two fault in nothing.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and the values set here
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
SETTINGS = {M_ARENA_MAX: 1, M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 128 << 20}  # 32 MB: glibc's most


def one_heap() -> bool:
    """Let every thread allocate from the main arena and keep what it frees there (glibc only;
    elsewhere nothing happens). Call it before the process starts threads: a thread that
    already has an arena keeps it. True when glibc took every setting."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
        taken = all([bool(mallopt(param, value)) for param, value in SETTINGS.items()])
    except (OSError, AttributeError):
        taken = False
    if not taken:
        log.debug("malloc left as it is")
    return taken
