"""Keep glibc's malloc from giving image-sized buffers back to the operating system after every use.

glibc serves a request above its *mmap threshold* (128 KiB at start) with a fresh mapping of its own,
which it unmaps when the block is freed; touching the pages of the next one costs a page fault each.
Freeing such a block raises the threshold to its size (up to 32 MiB), and the heap then keeps freed
memory until more than twice the threshold lies unused at its top. A process that warps images
allocates and frees blocks of a few hundred KiB to a few MiB per image (outputs, decoded pictures, an
elastic field's lattices): with the threshold at its starting value they keep being mapped, faulted
in and unmapped, which made an elastic record's plan take 1.3-1.5 ms instead of 0.78 ms on the
development box. :func:`prime` allocates and frees one untouched block of :data:`PRIME_BYTES` once,
which sets the threshold to that size (the heap may then keep up to twice that much freed memory).
It does nothing on other C libraries, when ``MALLOC_MMAP_THRESHOLD_`` fixes the threshold (glibc then
keeps it), or with ``STNTOOL_PRIME_MALLOC=0``.
"""

from __future__ import annotations

import os

#: The block :func:`prime` allocates and frees: just under 32 MiB, where glibc's dynamic threshold stops
#: (a freed mapping of more than 32 MiB, its header page included, leaves the threshold as it was). A
#: batch of 32 512x512x3 uint8 images is 25 MB: with a 16 MiB threshold each batch's output was mapped
#: anew and its pages faulted in and zeroed on every call.
PRIME_BYTES = (32 << 20) - (64 << 10)

_primed = False


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def prime() -> bool:
    """Raise glibc's mmap threshold to :data:`PRIME_BYTES`, once per process; True when it was done now."""
    global _primed
    if _primed:
        return False
    _primed = True
    if os.environ.get("STNTOOL_PRIME_MALLOC", "1").strip() == "0" or not _glibc():
        return False
    import numpy as np

    block = np.empty(PRIME_BYTES, np.uint8)  # mapped, never touched: no page is faulted in
    del block
    return True
