"""Shared test helpers (importable because tests/conftest.py puts tests/ on sys.path)."""

import numpy as np

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def random_image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return rng.random(shape).astype(dtype)


def disk_full_write(real_write, folder):
    """An ``os.write`` whose writes to files in ``folder`` (named or unnamed) take a few bytes and then fail with
    ENOSPC (a full disk in the middle of a write); other descriptors are written as usual."""
    import errno
    import os

    inside = os.path.realpath(folder) + os.sep

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.startswith(inside):
            real_write(fd, bytes(data[:3]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    return write


def disk_full_fdopen(real_fdopen):
    """An ``os.fdopen`` whose writable files take a few bytes and then fail with ENOSPC (a full disk in the
    middle of a write); readable files are the real ones."""
    import errno
    import os

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        return Full(f) if "w" in mode else f

    return fdopen
