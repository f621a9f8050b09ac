"""The CPU kernels read nothing past an input array's end.

The input is placed so that its last byte is the last one before a page that may not be read
(``mprotect``): a kernel that reads one element too far (a vector load of a pixel and the next
element, at the image's last pixel) stops the process with a segmentation fault. The warps run in a
subprocess, so that a fault fails this test and nothing else.
"""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through libc: Linux only")

CODE = textwrap.dedent("""
    import ctypes, mmap
    import numpy as np, stntool

    PAGE = mmap.PAGESIZE

    def at_page_end(shape, dtype, keep):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pages = -(-nbytes // PAGE) + 1
        m = mmap.mmap(-1, pages * PAGE)
        keep.append(m)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        assert ctypes.CDLL(None).mprotect(ctypes.c_void_p(addr + (pages - 1) * PAGE), PAGE, 0) == 0
        raw = np.frombuffer(m, dtype=np.uint8, count=nbytes, offset=(pages - 1) * PAGE - nbytes)
        return raw.view(dtype).reshape(shape)

    keep, rng, count = [], np.random.default_rng(0), 0
    for dtype in (np.uint8, np.uint16, np.float32):
        for c in (1, 3, 4):
            img = at_page_end((40, 50, c), dtype, keep)
            img[...] = rng.integers(0, 200, img.shape)
            for deg in (179.0, 181.0, 0.5, 90.3, 269.7):
                a = np.deg2rad(deg)
                for s in (1.0, 1.05, 0.97):
                    theta = [[np.cos(a) * s, -np.sin(a) * s, 0.0], [np.sin(a) * s, np.cos(a) * s, 0.0]]
                    for mode in ("nearest", "bilinear", "bicubic"):
                        for padding in ("zeros", "border"):
                            stntool.warp(img, theta, mode=mode, padding=padding, backend="cpu")
                            # points rows: a projective warp, a grid
                            stntool.warp(img, theta + [[0.01, -0.02, 1.0]], mode=mode, padding=padding, backend="cpu")
                            stntool.grid_sample(img, stntool.affine_grid(np.array(theta), img.shape[:2]), mode,
                                                padding=padding, backend="cpu")
                            count += 1
    # tiny inputs zoomed into: every output pixel of the wide output reads interior taps (points rows in blocks)
    for dtype in (np.uint8, np.uint16, np.float32):
        for c in (1, 3, 4):
            for shape in ((2, 2), (2, 3), (3, 2), (2, 9)):
                img = at_page_end(shape + (c,), dtype, keep)
                img[...] = rng.integers(0, 200, img.shape)
                for s in (0.2, 0.45):
                    theta = [[s, 0.01, 0.0], [-0.01, s, 0.0], [0.01, -0.02, 1.0]]
                    stntool.warp(img, theta, out_hw=(6, 40), backend="cpu")
                    grid = stntool.affine_grid(np.array(theta[:2]), (6, 40))
                    stntool.grid_sample(img, grid, backend="cpu")
                    count += 1
    print(count)
""")


def test_warps_read_nothing_past_the_input_array():
    """Turns near 180 and 270 degrees start rows at the image's last pixel: affine and projective warps and
    grids, every mode, two paddings, uint8, uint16 and float32 with 1, 3 and 4 channels, on an input that
    ends at a page that may not be read; and inputs of 2 and 3 pixels a side zoomed into, whose wide
    output reads only interior taps (the points rows' blocks read a few elements past a pixel's taps)."""
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"exit status {r.returncode}: {r.stderr[-2000:]}"
    assert r.stdout.split()[-1] == str(3 * 3 * 5 * 3 * 3 * 2 + 3 * 3 * 4 * 2)
