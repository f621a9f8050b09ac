"""Numba CPU kernels: fused grid + sample, one pass over the output, no materialised grid.

Every kernel here has a NumPy twin in :mod:`stntool.sampling._reference` (the spec) and is
tested against it. Kernels are pure: the caller validates and allocates ``out``.

Images are C-contiguous ``(N, H, W, C)``; kernels work on flat views so a tap is one offset.
Coordinates are float64; integer outputs are rounded half up and saturated.

The public functions are the kernel table of :mod:`stntool.sampling` (same names and signatures
as ``_reference`` and ``_cuda``). The scalar maths (padding, reflection, rounding, cubic and
Catmull-Rom weights, the padding rule's derivative, saturation) is
:mod:`stntool.sampling._scalar`, compiled here with ``numba.njit``; the CUDA backend compiles
the same source. Kernels are cached on disk keyed on this file and that shared source.

A call compiles only what it can run. Each table entry is a Python function that picks one small compiled
entry per (family, mode) from :data:`ENTRIES` (``warp_affine_bilinear``, ``sample_grid_bicubic``, ...);
the entry passes its mode as a constant to row functions (``affine_rows``, ``points_row``, ...:
``numba.extending.overload`` with ``prefer_literal``) that compile the paths of that mode only, and the
image dtype picks the arithmetic of the interior loops (``span_bilinear``, ``run_bilinear``) when the
entry is compiled. Rows sampled at their own input coordinates first work out every point's cell in one
vectorized loop (:func:`_row_cells`, :func:`_nearest_cells`), then sample. Padding, ``align_corners`` and
the channel count stay run-time values, but border and reflection padding have entries of their own
(:data:`PADDED_ENTRIES`, :func:`entry`: the mode plus :data:`PADDED`), which alone compile the loops that
write the pixels those paddings read from inside the image (:data:`_PADDED`). The leaves (careful
per-mode paths, span loops) are cached helpers without Python wrappers, so a later kernel family loads
them from the cache instead of compiling them again. Entries are serial and release the GIL;
:func:`_run_blocks` has the caller's thread and helper threads claim small chunks of rows from a shared
atomic counter (inline when ``numba.get_num_threads()`` is 1 or the call is small), so a helper that
wakes late costs at most a chunk, where a ``prange`` loop would cost seconds of compilation per entry.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import queue
import threading
import time

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload
from numba.np.ufunc import parallel as _numba_parallel

from .._jit import (ALLOCATING_OVERLOAD_OPTIONS, OVERLOAD_OPTIONS, jit_device, jit_inline, jit_scalar, jit_scalar_inline,
                    jit_serial)
from . import OWN_KERNEL_PADDINGS, PADDINGS, _copies, _scalar

# The scalar maths shared with the CUDA backend (stntool.sampling._scalar), compiled for the CPU.
# numpy's floor / fmod keep float64 results for coordinates of any magnitude.
_s = _scalar.compile_for(jit_scalar, jit_scalar_inline, floor=np.floor, fmod=np.fmod)
_unnormalize = _s.unnormalize
_pad_coord = _s.pad_coord
_pad_coord_grad = _s.pad_coord_grad
_rint = _s.rint
_cubic_weights = _s.cubic_weights
_cr_weights = _s.cr_weights
_tps_radial = _s.tps_radial
_saturate = _s.saturate

NEAREST, BILINEAR, BICUBIC = _s.NEAREST, _s.BILINEAR, _s.BICUBIC
ZEROS, BORDER, REFLECTION, CONSTANT = _s.ZEROS, _s.BORDER, _s.REFLECTION, _s.CONSTANT


# --------------------------------------------------------------------------- per-pixel helpers

@jit_inline
def _store(dst, k, v, is_int, maxv):
    """``dst[k] = v``; integer outputs round half up and saturate (:func:`_scalar.saturate`)."""
    if is_int:
        v = _saturate(v, maxv)
    dst[k] = v


@jit_device
def _store_fill(dst, dbase, fill, c_count, is_int, maxv):
    for c in range(c_count):
        _store(dst, dbase + c, fill[c], is_int, maxv)


@jit_device
def _fill_range(dst, dbase, j_start, j_stop, fill, c_count, is_int, maxv):
    """Pixels ``j_start <= j < j_stop`` of the row at ``dst[dbase]`` take the fill value: the first as
    :func:`_store_fill` writes it, the others copy it (one store loop the compiler vectorizes when every
    channel has the same value, as with zeros padding). A cached helper of its own (affine rows' fill,
    per-point rows' runs), like :func:`_interval` and :func:`_row_interval`: typed once, not inlined into
    each caller's numba IR, which took about 0.8 s off the first compile of an affine kernel."""
    if j_stop <= j_start:
        return
    d = dbase + j_start * c_count
    _store_fill(dst, d, fill, c_count, is_int, maxv)
    v = dst[np.uint64(d)]
    same = True
    for c in range(1, c_count):
        same = same and dst[np.uint64(d + c)] == v
    if same:
        for e in range(d + c_count, dbase + j_stop * c_count):
            dst[np.uint64(e)] = v
    else:
        for e in range(d + c_count, dbase + j_stop * c_count):
            dst[np.uint64(e)] = dst[np.uint64(e - c_count)]



# --------------------------------------------------------------------------- careful paths, one per mode

@jit_inline
def _beyond(mode, x, y, h, w):
    """True when no tap of ``mode`` at the input point ``(x, y)`` lies inside the image: with zeros or
    constant padding the careful path writes the fill value there, without sampling."""
    if mode == NEAREST:
        return not (x > -1.0 and x < w and y > -1.0 and y < h)
    if mode == BILINEAR:
        return x < -1.0 or x > w or y < -1.0 or y > h
    return x < -3.0 or x > w + 2.0 or y < -3.0 or y > h + 2.0


@jit_device
def _general_nearest(src, sbase, h, w, c_count, x, y, dst, dbase, pad, align_corners, fill, is_int, maxv):
    """Nearest at input pixel ``(x, y)``, any padding: the slow, careful path (edges, NaN, far away)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    row = w * c_count
    x = _pad_coord(x, w, pad, align_corners)
    y = _pad_coord(y, h, pad, align_corners)
    if _beyond(NEAREST, x, y, h, w):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    xr = _rint(x)
    yr = _rint(y)
    if xr < 0.0 or xr > w - 1.0 or yr < 0.0 or yr > h - 1.0:
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    off = sbase + int(yr) * row + int(xr) * c_count
    for c in range(c_count):
        _store(dst, dbase + c, src[off + c], is_int, maxv)


@jit_device
def _general_bilinear(src, sbase, h, w, c_count, x, y, dst, dbase, pad, align_corners, fill, is_int, maxv):
    """Bilinear at input pixel ``(x, y)``, any padding: the careful path."""
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    row = w * c_count
    x = _pad_coord(x, w, pad, align_corners)
    y = _pad_coord(y, h, pad, align_corners)
    if _beyond(BILINEAR, x, y, h, w):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    x0 = np.floor(x)
    y0 = np.floor(y)
    tx = x - x0
    ty = y - y0
    ix = int(x0)
    iy = int(y0)
    in_x0 = ix >= 0 and ix <= w - 1
    in_x1 = ix + 1 >= 0 and ix + 1 <= w - 1
    in_y0 = iy >= 0 and iy <= h - 1
    in_y1 = iy + 1 >= 0 and iy + 1 <= h - 1
    w00 = (1.0 - tx) * (1.0 - ty)
    w01 = tx * (1.0 - ty)
    w10 = (1.0 - tx) * ty
    w11 = tx * ty
    off = sbase + iy * row + ix * c_count
    for c in range(c_count):
        f = fill[c]
        v00 = src[off + c] if (in_y0 and in_x0) else f
        v01 = src[off + c_count + c] if (in_y0 and in_x1) else f
        v10 = src[off + row + c] if (in_y1 and in_x0) else f
        v11 = src[off + row + c_count + c] if (in_y1 and in_x1) else f
        _store(dst, dbase + c, v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11, is_int, maxv)


#: :func:`_scalar.pad_coord` inlined at the IR level with :func:`_scalar.reflect`, for the padded loops alone
#: (their kernels are compiled only for border and reflection padding): no call per coordinate.
_pad_coord_inline = _scalar.compile_for(jit_scalar_inline, jit_scalar_inline, floor=np.floor, fmod=np.fmod).pad_coord


@jit_inline
def _padded_bilinear_pixel(src, sbase, h, w, cc, row, x, y, dst, d, pad, align_corners, fill, is_int, maxv):
    """The pixel :func:`_general_bilinear` writes at the finite input point ``(x, y)`` with border or reflection
    padding (``row``: ``w cc``): the same arithmetic, without what those paddings make certain (the point padded
    into the image, so its top-left tap inside and nothing beyond)."""
    x = _pad_coord_inline(x, w, pad, align_corners)
    y = _pad_coord_inline(y, h, pad, align_corners)
    x0 = np.floor(x)
    y0 = np.floor(y)
    tx = x - x0
    ty = y - y0
    ix = int(x0)
    iy = int(y0)
    in_x1 = ix + 1 <= w - 1
    in_y1 = iy + 1 <= h - 1
    w00 = (1.0 - tx) * (1.0 - ty)
    w01 = tx * (1.0 - ty)
    w10 = (1.0 - tx) * ty
    w11 = tx * ty
    off = sbase + iy * row + ix * cc
    if cc == 3:  # the channels unrolled
        _padded_channel(src, off, row, 3, 0, in_x1, in_y1, w00, w01, w10, w11, fill, dst, d, is_int, maxv)
        _padded_channel(src, off, row, 3, 1, in_x1, in_y1, w00, w01, w10, w11, fill, dst, d, is_int, maxv)
        _padded_channel(src, off, row, 3, 2, in_x1, in_y1, w00, w01, w10, w11, fill, dst, d, is_int, maxv)
    else:
        for c in range(cc):
            _padded_channel(src, off, row, cc, c, in_x1, in_y1, w00, w01, w10, w11, fill, dst, d, is_int, maxv)


@jit_inline
def _padded_nearest_pixel(src, sbase, h, w, cc, row, x, y, dst, d, pad, align_corners, fill, is_int, maxv):
    """The pixel :func:`_general_nearest` writes at the finite input point ``(x, y)`` with border or reflection
    padding: the padded point rounded, its pixel copied (padding puts it inside the image)."""
    xr = _rint(_pad_coord_inline(x, w, pad, align_corners))
    yr = _rint(_pad_coord_inline(y, h, pad, align_corners))
    _copy_pixel(src, sbase + int(yr) * row + int(xr) * cc, dst, d, cc)  # (the store of a source value: a copy)


@jit_inline
def _padded_bicubic_pixel(src, sbase, h, w, cc, row, x, y, dst, d, pad, align_corners, fill, is_int, maxv):
    """The pixel :func:`_general_bicubic` writes at the finite input point ``(x, y)`` with border or reflection
    padding: the same sums in the same order, each tap's padded column and row found once for every channel
    rather than once per channel and tap."""
    x0 = np.floor(x)
    y0 = np.floor(y)
    wx0, wx1, wx2, wx3 = _cubic_weights(x - x0)
    wy0, wy1, wy2, wy3 = _cubic_weights(y - y0)
    xm = x0 - 1.0  # the taps at (x0 - 1) + b, as the careful path adds them
    ym = y0 - 1.0
    c0, i0 = _padded_tap(xm + 0.0, w, cc, pad, align_corners)
    c1, i1 = _padded_tap(xm + 1.0, w, cc, pad, align_corners)
    c2, i2 = _padded_tap(xm + 2.0, w, cc, pad, align_corners)
    c3, i3 = _padded_tap(xm + 3.0, w, cc, pad, align_corners)
    r0, j0 = _padded_tap(ym + 0.0, h, row, pad, align_corners)
    r1, j1 = _padded_tap(ym + 1.0, h, row, pad, align_corners)
    r2, j2 = _padded_tap(ym + 2.0, h, row, pad, align_corners)
    r3, j3 = _padded_tap(ym + 3.0, h, row, pad, align_corners)
    for c in range(cc):
        f = fill[c]
        acc = 0.0
        acc += _padded_cubic_row(src, sbase + r0 + c, j0, c0, c1, c2, c3, i0, i1, i2, i3, wx0, wx1, wx2, wx3, f) * wy0
        acc += _padded_cubic_row(src, sbase + r1 + c, j1, c0, c1, c2, c3, i0, i1, i2, i3, wx0, wx1, wx2, wx3, f) * wy1
        acc += _padded_cubic_row(src, sbase + r2 + c, j2, c0, c1, c2, c3, i0, i1, i2, i3, wx0, wx1, wx2, wx3, f) * wy2
        acc += _padded_cubic_row(src, sbase + r3 + c, j3, c0, c1, c2, c3, i0, i1, i2, i3, wx0, wx1, wx2, wx3, f) * wy3
        _store(dst, d + c, acc, is_int, maxv)


@jit_inline
def _padded_tap(t, size, stride, pad, align_corners):
    """``(offset, inside)`` of a bicubic tap at the whole coordinate ``t``, padded as :func:`_general_bicubic`
    pads it: ``stride`` times the padded coordinate (0 where it lies outside), and whether it lies inside."""
    p = _pad_coord(t, size, pad, align_corners)  # a call: eight inlined paddings took seconds to compile
    inside = p >= 0.0 and p <= size - 1.0
    return (int(p) * stride if inside else 0), inside


@jit_inline
def _padded_cubic_row(src, base, row_in, c0, c1, c2, c3, i0, i1, i2, i3, wx0, wx1, wx2, wx3, f):
    """One tap row's sum of :func:`_padded_bicubic_pixel`, in :func:`_general_bicubic`'s order (0 + v0 wx0 +
    ... + v3 wx3; the fill value for a tap outside)."""
    racc = 0.0
    racc += (src[base + c0] if (row_in and i0) else f) * wx0
    racc += (src[base + c1] if (row_in and i1) else f) * wx1
    racc += (src[base + c2] if (row_in and i2) else f) * wx2
    racc += (src[base + c3] if (row_in and i3) else f) * wx3
    return racc


@jit_inline
def _padded_affine_loop(pixel, exact, src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst,
                        dbase, pad, align_corners, fill, is_int, maxv):
    """The careful pixels ``c_lo <= j < a_stop`` and ``b_start <= j <= c_hi`` of an affine row with border or
    reflection padding, each written by ``pixel`` (:func:`_padded_nearest_pixel` and its twins) at the
    coordinates :func:`edge_pixels` hands the careful path (``exact``: nearest's float ones)."""
    ax, bx, dx, ay, by, dy = coef
    row = w * cc
    n_a = max(0, a_stop - c_lo)
    for k in range(n_a + max(0, c_hi + 1 - b_start)):
        j = c_lo + k if k < n_a else b_start + (k - n_a)
        if exact:
            x, y = (dx * j + ax) + bx, (dy * j + ay) + by
        else:
            x, y = (xq + j * dxq) * Q_INV, (yq + j * dyq) * Q_INV
        pixel(src, sbase, h, w, cc, row, x, y, dst, dbase + j * cc, pad, align_corners, fill, is_int, maxv)


@jit_inline
def _padded_points_loop(pixel, exact, src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners,
                        fill, is_int, maxv):
    """The careful pixels of a points row with border or reflection padding from ``j`` on (its cells below 0),
    each written by ``pixel`` at :func:`_careful_point`'s coordinates, the fill value where one is not finite;
    returns the index of the next interior pixel (or ``wo``)."""
    row = w * cc
    while j < wo and cells[j] < 0:
        x, y = _careful_point(xs[j], ys[j], exact)
        if math.isfinite(x) and math.isfinite(y):
            pixel(src, sbase, h, w, cc, row, x, y, dst, dbase + j * cc, pad, align_corners, fill, is_int, maxv)
        else:
            _store_fill(dst, dbase + j * cc, fill, cc, is_int, maxv)
        j += 1
    return j


# One compiled function per (mode, row kind), each loading from the disk cache once compiled for a dtype: the
# padded pixels' code is compiled once per dtype, not again inside every kernel family that reaches it.

@jit_device
def _padded_affine_nearest(src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst, dbase, pad,
                           align_corners, fill, is_int, maxv):
    if pad == BORDER:
        # border padding clamps the coordinate, and rint(clamp(x)) == clamp(rint(x)): each pixel rounds its
        # 32.32 coordinate as the interior spans do (:func:`_nearest_q`, the float coordinate near one half),
        # then clamps the pixel, in integers (the float careful path took about 7x OpenCV's time)
        margin = _nearest_slack(c_hi + 1)
        row = w * cc
        n_a = max(0, a_stop - c_lo)
        for k in range(n_a + max(0, c_hi + 1 - b_start)):
            j = c_lo + k if k < n_a else b_start + (k - n_a)
            rx, ry = _nearest_q(xq + j * dxq, yq + j * dyq, j, margin, coef)
            rx = min(max(rx, 0), w - 1)
            ry = min(max(ry, 0), h - 1)
            _copy_pixel(src, sbase + ry * row + rx * cc, dst, dbase + j * cc, cc)
        return
    _padded_affine_loop(_padded_nearest_pixel, True, src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop,
                        b_start, c_hi, dst, dbase, pad, align_corners, fill, is_int, maxv)


@jit_device
def _padded_affine_bilinear(src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst, dbase,
                            pad, align_corners, fill, is_int, maxv):
    _padded_affine_loop(_padded_bilinear_pixel, False, src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop,
                        b_start, c_hi, dst, dbase, pad, align_corners, fill, is_int, maxv)


@jit_device
def _padded_affine_bicubic(src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst, dbase,
                           pad, align_corners, fill, is_int, maxv):
    _padded_affine_loop(_padded_bicubic_pixel, False, src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop,
                        b_start, c_hi, dst, dbase, pad, align_corners, fill, is_int, maxv)


@jit_device
def _padded_points_nearest(src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners, fill, is_int,
                           maxv):
    return _padded_points_loop(_padded_nearest_pixel, True, src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase,
                               pad, align_corners, fill, is_int, maxv)


@jit_device
def _padded_points_bilinear(src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners, fill, is_int,
                            maxv):
    return _padded_points_loop(_padded_bilinear_pixel, False, src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase,
                               pad, align_corners, fill, is_int, maxv)


@jit_device
def _padded_points_bicubic(src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners, fill, is_int,
                           maxv):
    return _padded_points_loop(_padded_bicubic_pixel, False, src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase,
                               pad, align_corners, fill, is_int, maxv)


@jit_inline
def _no_padded_affine(src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst, dbase, pad,
                      align_corners, fill, is_int, maxv):
    """Stands in for :data:`_PADDED`'s affine loops in kernels without them (never reached)."""
    return


@jit_inline
def _no_padded_points(src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners, fill, is_int, maxv):
    """Stands in for :data:`_PADDED`'s points loops in kernels without them (never reached)."""
    return wo


#: mode -> the careful pixels of border and reflection padding, in one loop: (affine row's, points row's)
#: (:func:`edge_pixels`, :func:`points_row`)
_PADDED = {NEAREST: (_padded_affine_nearest, _padded_points_nearest),
           BILINEAR: (_padded_affine_bilinear, _padded_points_bilinear),
           BICUBIC: (_padded_affine_bicubic, _padded_points_bicubic)}


@jit_inline
def _padded_channel(src, off, row, cc, c, in_x1, in_y1, w00, w01, w10, w11, fill, dst, d, is_int, maxv):
    """Channel ``c`` of a pixel of :func:`_padded_bilinear_pixel`: :func:`_general_bilinear`'s sum, in its order."""
    f = fill[c]
    v00 = src[off + c] * w00
    v01 = src[off + cc + c] if in_x1 else f
    v10 = src[off + row + c] if in_y1 else f
    v11 = src[off + row + cc + c] if (in_y1 and in_x1) else f
    _store(dst, d + c, v00 + v01 * w01 + v10 * w10 + v11 * w11, is_int, maxv)


@jit_device
def _general_bicubic(src, sbase, h, w, c_count, x, y, dst, dbase, pad, align_corners, fill, is_int, maxv):
    """Bicubic at input pixel ``(x, y)``, any padding: taps are padded one by one, on the unpadded coordinate."""
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    row = w * c_count
    if (pad == ZEROS or pad == CONSTANT) and _beyond(BICUBIC, x, y, h, w):
        _store_fill(dst, dbase, fill, c_count, is_int, maxv)
        return
    x0 = np.floor(x)
    y0 = np.floor(y)
    tx = x - x0
    ty = y - y0
    wx0, wx1, wx2, wx3 = _cubic_weights(tx)
    wy0, wy1, wy2, wy3 = _cubic_weights(ty)
    for c in range(c_count):
        acc = 0.0
        for a in range(4):
            ya = _pad_coord(y0 - 1.0 + a, h, pad, align_corners)
            wy = wy0 if a == 0 else (wy1 if a == 1 else (wy2 if a == 2 else wy3))
            racc = 0.0
            for b in range(4):
                xb = _pad_coord(x0 - 1.0 + b, w, pad, align_corners)
                wxb = wx0 if b == 0 else (wx1 if b == 1 else (wx2 if b == 2 else wx3))
                if xb >= 0.0 and xb <= w - 1.0 and ya >= 0.0 and ya <= h - 1.0:
                    v = src[sbase + int(ya) * row + int(xb) * c_count + c]
                else:
                    v = fill[c]
                racc += v * wxb
            acc += racc * wy
        _store(dst, dbase + c, acc, is_int, maxv)


# Interior pixels use 32.32 fixed-point coordinates: the integer part indexes the image, the
# fraction gives the weights. For uint8 images the weights are the fraction rounded to 15 bits
# (0 ..= 2**15) and the arithmetic is exact integer arithmetic with round-half-up, so the result is
# the exact bilinear value at a coordinate moved by at most 2**-16 pixel along each axis, rounded:
# it is within 255 * 2**-15 (< 0.008) of the exact value before rounding, so it equals the exact
# value rounded unless that value lies within 0.008 of a half level, and is never more than one
# level from it. (float32 rounding is coarser.) Nearest rounds the float64 coordinate instead.
FRAC_BITS = 32
Q_ONE = 4294967296.0
Q_INV = 1.0 / 4294967296.0
Q_MASK = 4294967295
Q_HALF = 2147483648
Q_LIMIT = 1073741824.0  # |coordinate| beyond this takes the float path


@jit_inline
def _frac32(q):
    """``float32((q & Q_MASK) * Q_INV)``, a 32.32 coordinate's fraction rounded to float32, computed as
    ``float32(q & Q_MASK) * 2**-32``: the same value (scaling by a power of two is exact and commutes with
    rounding), one conversion and one float32 product instead of a float64 product and two conversions."""
    return np.float32(q & Q_MASK) * np.float32(Q_INV)


@jit_inline
def _w15(q):
    """The 15-bit weight of a 32.32 coordinate's fraction, rounded to nearest: ``0 ..= 32768``."""
    return ((q & Q_MASK) + 65536) >> 17


@jit_inline
def _bil_int_c(src, off, o2, cc, c, fx, fy):
    a = np.int64(src[np.uint64(off + c)])
    b = np.int64(src[np.uint64(off + cc + c)])
    t = (a << 15) + (b - a) * fx
    a = np.int64(src[np.uint64(o2 + c)])
    b = np.int64(src[np.uint64(o2 + cc + c)])
    u = (a << 15) + (b - a) * fx
    return ((t << 15) + (u - t) * fy + 536870912) >> 30


@jit_inline
def _bil_float_c(src, off, o2, cc, c, fx, fy):
    w00 = (1.0 - fx) * (1.0 - fy)
    w01 = fx * (1.0 - fy)
    w10 = (1.0 - fx) * fy
    w11 = fx * fy
    return (src[np.uint64(off + c)] * w00 + src[np.uint64(off + cc + c)] * w01
            + src[np.uint64(o2 + c)] * w10 + src[np.uint64(o2 + cc + c)] * w11)


@jit_inline
def _bil_f32_c(src, off, o2, cc, c, fx, fy):
    """float32 bilinear as lerps, ``t + (u - t) fy`` with ``t = a + (b - a) fx`` (``u`` likewise below); where
    that is not finite, the weights' form (:func:`_f32_weights_form`)."""
    a = np.float32(src[np.uint64(off + c)])
    b = np.float32(src[np.uint64(off + cc + c)])
    t = a + (b - a) * fx
    a2 = np.float32(src[np.uint64(o2 + c)])
    b2 = np.float32(src[np.uint64(o2 + cc + c)])
    u = a2 + (b2 - a2) * fx
    r = t + (u - t) * fy
    if abs(r) < np.float32(np.inf):
        return r
    return _f32_weights_form(a, b, a2, b2, fx, fy)


@jit_inline
def _f32_weights_form(a, b, c, d, fx, fy):
    """``(a (1 - fx) + b fx) (1 - fy) + (c (1 - fx) + d fx) fy`` in float32: the bilinear value of taps ``a b``
    (top) and ``c d`` (bottom) where the lerps of :func:`_bil_f32_c` are not finite. Those subtract taps: an
    infinite tap gave ``inf - inf`` (NaN where the reference, PyTorch and this give infinity) and taps of
    opposite sign beyond half of float32's range overflowed (infinity for a finite value). Only then, so every
    finite result keeps the lerps' bits."""
    one = np.float32(1.0)
    return (a * (one - fx) + b * fx) * (one - fy) + (c * (one - fx) + d * fx) * fy


@jit_inline
def _copy_pixel(src, off, dst, d, cc):
    if cc == 3:
        _copy3(src, off, dst, d)
    elif cc == 1:
        dst[np.uint64(d)] = src[np.uint64(off)]
    elif cc == 4:
        _copy4(src, off, dst, d)
    else:
        for c in range(cc):
            dst[np.uint64(d + c)] = src[np.uint64(off + c)]


@jit_inline
def _bicubic_c(src, o, row, cc, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3):
    """One channel of an interior bicubic pixel (``o``: that channel's top-left tap, ``cc`` the channel
    stride): ``((r0 wy0 + r1 wy1) + r2 wy2) + r3 wy3`` with ``r_a = ((t_a0 wx0 + t_a1 wx1) + t_a2 wx2) +
    t_a3 wx3``, in that order, in the arithmetic of the weights' type (float64, or float32 for float32
    images)."""
    r0 = (src[np.uint64(o)] * wx0 + src[np.uint64(o + cc)] * wx1 + src[np.uint64(o + 2 * cc)] * wx2
          + src[np.uint64(o + 3 * cc)] * wx3)
    o += row
    r1 = (src[np.uint64(o)] * wx0 + src[np.uint64(o + cc)] * wx1 + src[np.uint64(o + 2 * cc)] * wx2
          + src[np.uint64(o + 3 * cc)] * wx3)
    o += row
    r2 = (src[np.uint64(o)] * wx0 + src[np.uint64(o + cc)] * wx1 + src[np.uint64(o + 2 * cc)] * wx2
          + src[np.uint64(o + 3 * cc)] * wx3)
    o += row
    r3 = (src[np.uint64(o)] * wx0 + src[np.uint64(o + cc)] * wx1 + src[np.uint64(o + 2 * cc)] * wx2
          + src[np.uint64(o + 3 * cc)] * wx3)
    return ((r0 * wy0 + r1 * wy1) + r2 * wy2) + r3 * wy3


@jit_inline
def _bicubic_interior_f64(src, off, row, cc, fx, fy, dst, d, is_int, maxv):
    """One interior bicubic pixel in float64 arithmetic (uint8, uint16 and float64 images): ``off`` is the
    flat index of the tap at the coordinate's integer part, ``fx``, ``fy`` its fractions."""
    if cc == 3:
        v0, v1, v2 = _bicubic_taps3(src, off - row - 3, row, fx, fy)
        _store(dst, d, v0, is_int, maxv)
        _store(dst, d + 1, v1, is_int, maxv)
        _store(dst, d + 2, v2, is_int, maxv)
        return
    _bicubic_channels_f64(src, off, row, cc, fx, fy, dst, d, is_int, maxv)


@jit_inline
def _bicubic_channels_f64(src, off, row, cc, fx, fy, dst, d, is_int, maxv):
    """:func:`_bicubic_interior_f64` for any channel count but through the 3-channel vector path (what spans
    of images of other than 3 channels run): 4 channels in the lanes of one vector (:func:`_bicubic_put_rgba`),
    others channel by channel."""
    if cc == 4:
        _bicubic_put_rgba(src, off - row - 4, row, fx, fy, dst, d, is_int, maxv)
        return
    wx0, wx1, wx2, wx3 = _cubic_weights(fx)
    wy0, wy1, wy2, wy3 = _cubic_weights(fy)
    base = off - row - cc
    for c in range(cc):
        _store(dst, d + c, _bicubic_c(src, base + c, row, cc, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3), is_int,
               maxv)


@jit_inline
def _bicubic_interior_f32(src, off, row, cc, fx, fy, dst, d):
    """One interior bicubic pixel of a float32 image: float32 arithmetic, as PyTorch does, with the
    float64 weights of :func:`_scalar.cubic_weights` rounded to float32 (the exact fraction's weights)."""
    if cc == 3:
        v0, v1, v2 = _bicubic_f32_taps3(src, off - row - 3, row, fx, fy)
        dst[np.uint64(d)] = v0
        dst[np.uint64(d + 1)] = v1
        dst[np.uint64(d + 2)] = v2
        return
    _bicubic_channels_f32(src, off, row, cc, fx, fy, dst, d)


@jit_inline
def _bicubic_channels_f32(src, off, row, cc, fx, fy, dst, d):
    """:func:`_bicubic_interior_f32` without its 3-channel path (as :func:`_bicubic_channels_f64`)."""
    if cc == 4:
        _bicubic_put_rgba(src, off - row - 4, row, fx, fy, dst, d, False, 0.0)
        return
    wx0, wx1, wx2, wx3 = _cubic_weights(fx)
    wy0, wy1, wy2, wy3 = _cubic_weights(fy)
    wx0, wx1, wx2, wx3 = np.float32(wx0), np.float32(wx1), np.float32(wx2), np.float32(wx3)
    wy0, wy1, wy2, wy3 = np.float32(wy0), np.float32(wy1), np.float32(wy2), np.float32(wy3)
    base = off - row - cc
    for c in range(cc):
        dst[np.uint64(d + c)] = _bicubic_c(src, base + c, row, cc, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3)


#: float32's exponent bits: a value is infinite or NaN when all of them are set.
F32_EXPONENT = 0x7F800000


@jit_device
def _f32_overflow_again(dst, d0, d1):
    """Whether ``dst[d0:d1]`` (float32 outputs) holds an infinity or NaN: a float32 bicubic sum can overflow
    where the float64 reference's value is finite (a tap near float32's largest value times a weight above
    1), and taps of opposite sign then give NaN. The caller computes such pixels again in float64
    (:func:`_bicubic_f64_again`); an all-finite row (every row of an image without such values) costs one
    vectorised pass over its outputs, just written (the largest magnitude's bits: all exponent bits set is
    infinity or NaN)."""
    bits = dst.view(np.uint32)
    top = np.uint32(0)
    for k in range(np.uint64(d0), np.uint64(d1)):  # unsigned: no wraparound, one vector loop
        top = max(top, bits[k] & np.uint32(0x7FFFFFFF))
    return top >= np.uint32(F32_EXPONENT)


@jit_device
def _bicubic_f64_again(src, off, row, cc, fx, fy, dst, d):
    """The values of the interior bicubic pixel of a float32 image at ``off``, ``fx``, ``fy`` (as
    :func:`_bicubic_interior_f32`) that are not finite, computed again in float64 and rounded to float32: the
    reference's sums, in its order (:func:`_bicubic_c`). Its finite values keep their bits."""
    for c in range(cc):
        if not math.isfinite(dst[np.uint64(d + c)]):
            wx0, wx1, wx2, wx3 = _cubic_weights(fx)
            wy0, wy1, wy2, wy3 = _cubic_weights(fy)
            dst[np.uint64(d + c)] = _bicubic_c(src, off - row - cc + c, row, cc, wx0, wx1, wx2, wx3, wy0, wy1, wy2,
                                               wy3)


@jit_inline
def _to_q(x):
    return np.int64(np.floor(x * Q_ONE + 0.5))


@intrinsic
def _f64_bits(typingctx, x):
    """The bits of a float64 as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@jit_inline
def _small_int(v):
    """``np.int64(v)`` for an integer-valued float64 ``0 <= v < 2**52`` (any other ``v`` gives some int64):
    the bits of ``v + 2**52``, whose mantissa is ``v``. Row loops convert with it because x86 has no vector
    float64 -> int64 conversion before AVX-512: LLVM converts lane by lane, which made a points row's cells
    take 4.5 ns a pixel on an AVX2 machine."""
    return _f64_bits(v + 4503599627370496.0) - 0x4330000000000000


@jit_device
def _interval(q0, dq, lo_q, hi_q, j_lo, j_hi):
    """Narrow ``[j_lo, j_hi]`` to the ``j`` with ``lo_q <= q0 + j dq < hi_q`` (exact integer arithmetic)."""
    if dq > 0:
        j_lo = max(j_lo, -((q0 - lo_q) // dq))
        j_hi = min(j_hi, (hi_q - 1 - q0) // dq)
    elif dq < 0:
        j_lo = max(j_lo, -((hi_q - 1 - q0) // (-dq)))
        j_hi = min(j_hi, (q0 - lo_q) // (-dq))
    elif not (lo_q <= q0 and q0 < hi_q):
        j_hi = j_lo - 1
    return j_lo, j_hi


@jit_device
def _row_interval(xq, yq, dxq, dyq, lo_q, x_stop, y_stop, wo):
    """The pixels ``j`` of a row of ``wo`` whose 32.32 coordinates ``xq + j dxq``, ``yq + j dyq`` lie in
    ``lo_q <= q < x_stop`` and ``lo_q <= q < y_stop``: one interval ``(j_lo, j_hi)`` (the coordinates are
    linear in ``j``), ``(wo, wo - 1)`` when there are none."""
    j_lo, j_hi = _interval(xq, dxq, lo_q, x_stop, np.int64(0), wo - 1)
    j_lo, j_hi = _interval(yq, dyq, lo_q, y_stop, j_lo, j_hi)
    if j_hi < j_lo:
        return wo, wo - 1
    return j_lo, j_hi


# --------------------------------------------------------------------------- vector and memory intrinsics
# LLVM does not vectorize the per-channel scalar loops (numba leaves its SLP vectorizer off), so the
# hottest 3-channel taps are written as vector IR: the channels are the lanes of one operation, in
# the scalar order of operations, so the bits are those of the scalar code.

def _splat(builder, vec, x):
    v = ir.Constant(vec, ir.Undefined)
    for k in range(vec.count):
        v = builder.insert_element(v, x, ir.Constant(ir.IntType(32), k))
    return v


def _load_taps(builder, data, off, vec, last):
    """Elements ``off .. off+2`` of ``data`` in the first lanes of a 4-element vector: one 4-element load
    (the fourth element, the next pixel's first channel, is unused), or, for ``last`` (the image's last
    tap may be the array's last element), three scalar loads so nothing past it is read."""
    ptr = builder.gep(data, [off])
    if not last:
        return builder.load(builder.bitcast(ptr, vec.as_pointer()), align=1)
    v = ir.Constant(vec, None)
    for k in range(3):
        v = builder.insert_element(v, builder.load(builder.gep(ptr, [ir.Constant(off.type, k)]), align=1),
                                   ir.Constant(ir.IntType(32), k))
    return v


def _cubic_weight_vector(builder, t):
    """:func:`_scalar.cubic_weights` of the float64 value ``t`` as one 4-lane vector: Keys' far polynomial
    ``((A x - 5A) x + 8A) x - 4A`` on the outer lanes ``t + 1``, ``2 - t`` and the near one
    ``((A + 2) x - (A + 3)) x x + 1`` on the inner lanes ``t``, ``1 - t``, as one sequence of vector
    operations with per-lane constants: the near lanes add 0 where the far ones add 8A (exact: it can
    only turn -0 into +0, which the final ``+ 1`` erases), so every lane has the scalar function's bits."""
    vec = ir.VectorType(ir.DoubleType(), 4)
    a = _scalar.CUBIC_A

    def const(*values):
        return ir.Constant(vec, [ir.Constant(ir.DoubleType(), v) for v in (values * 4)[:4]])

    def per_lane(far, near):  # lanes (t + 1, t, 1 - t, 2 - t)
        return const(far, near, near, far)

    x = builder.fadd(builder.fmul(_splat(builder, vec, t), const(1.0, 1.0, -1.0, -1.0)), const(1.0, 0.0, 1.0, 2.0))
    v = builder.fsub(builder.fmul(per_lane(a, a + 2.0), x), per_lane(5.0 * a, a + 3.0))
    v = builder.fadd(builder.fmul(v, x), per_lane(8.0 * a, 0.0))
    return builder.fadd(builder.fmul(v, x), per_lane(-4.0 * a, 1.0))  # x - 4A == x + (-4A) exactly


def _broadcast_lane(builder, v, k):
    lane = ir.IntType(32)
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(lane, 4), [ir.Constant(lane, k)] * 4))


#: Whether the float64 bicubic pixels pair their tap rows in 8-lane vectors where the target has AVX-512
#: (:func:`_bicubic_pairs`).
BICUBIC_PAIRS_ALLOWED = True


def _bicubic_pairs() -> bool:
    """Whether :func:`_bicubic_acc_ir` puts two tap rows in the halves of one 8-lane float64 vector: where the
    CPU target has AVX-512 (one 512-bit operation where the 4-lane form takes two 256-bit ones; on AVX2
    the 8-lane form would be split in two again, plus the shuffles). On a 2-core AMD EPYC (Zen 5), 512x512x3
    uint8 rotated 10 degrees on two threads: 1.14-1.17 ms against 1.43-1.47 (alternated builds, best of
    300); the same bits."""
    return BICUBIC_PAIRS_ALLOWED and "avx512f" in _target_features()


def _bicubic_acc_ir(builder, data, dt, o0, row, fx, fy, last, stride=3):
    """IR of the three channels of an interior bicubic pixel of a 3-channel image in the lanes of one
    4-lane float64 vector (lane 3 is computed from the next pixel's first channel and is unused): see
    :func:`_bicubic_taps3`. ``last``: the bottom-right tap may be the array's last element, so it is
    loaded with three scalar loads (:func:`_load_taps`). ``stride`` 4: the four channels of a 4-channel
    pixel, every lane used (each tap's load is exactly its pixel: ``last`` must be False). With AVX-512
    (:func:`_bicubic_pairs`) tap rows 0 and 1, then 2 and 3, share the halves of 8-lane vectors: each lane
    sees the same operations in the same order, so the bits are the same."""
    index = o0.type
    taps = ir.VectorType(data.type.pointee, 4)

    def widen(v):
        wide = ir.VectorType(ir.DoubleType(), v.type.count)
        if isinstance(dt, types.Float):
            return v if dt.bitwidth == 64 else builder.fpext(v, wide)
        return builder.sitofp(v, wide) if dt.signed else builder.uitofp(v, wide)

    wx = _cubic_weight_vector(builder, fx)
    wy = _cubic_weight_vector(builder, fy)
    if _bicubic_pairs():
        return _bicubic_row_pairs_ir(builder, data, taps, o0, row, wx, wy, last, stride, widen)
    acc = None
    for a in range(4):
        base = builder.add(o0, builder.mul(row, ir.Constant(index, a)))
        r = None
        for b in range(4):
            tap = _load_taps(builder, data, builder.add(base, ir.Constant(index, stride * b)), taps,
                             last and a == 3 and b == 3)
            t = builder.fmul(widen(tap), _broadcast_lane(builder, wx, b))
            r = t if r is None else builder.fadd(r, t)
        t = builder.fmul(r, _broadcast_lane(builder, wy, a))
        acc = t if acc is None else builder.fadd(acc, t)
    return acc


@intrinsic
def _bicubic_taps3(typingctx, src, o0, row, fx, fy):
    """The three channel values of an interior bicubic pixel of a 3-channel image: ``o0`` is the flat
    index of the top-left tap, ``row`` the row stride, ``fx``, ``fy`` the coordinate's fractions. Per
    channel ``((r0 wy0 + r1 wy1) + r2 wy2) + r3 wy3`` with
    ``r_a = ((t_a0 wx0 + t_a1 wx1) + t_a2 wx2) + t_a3 wx3`` and the weights of
    :func:`_scalar.cubic_weights`, in float64, in exactly that order (the same bits as the scalar loop,
    :func:`_bicubic_c`), with the three channels in the lanes of one vector operation. Each tap
    is one 4-element load (:func:`_load_taps`) but the bottom-right one, which reads nothing past the
    pixel's last tap (it may be the array's last element)."""
    if not isinstance(src, types.Array):
        return None
    sig = types.UniTuple(types.float64, 3)(src, types.intp, types.intp, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        acc = _bicubic_acc_ir(builder, data, sig.args[0].dtype, args[1], args[2], args[3], args[4], True)
        return context.make_tuple(builder, sig.return_type,
                                  [builder.extract_element(acc, ir.Constant(ir.IntType(32), k)) for k in range(3)])
    return sig, codegen


def _bicubic_pixel_ir(builder, data, dt, o0, row, fx, fy, last, stride=3):
    """The interior bicubic pixel of a 3-channel (``stride`` 4: 4-channel) image in the lanes of one 4-lane
    vector, in its dtype's arithmetic: float32 for float32 images (:func:`_bicubic_f32_acc_ir`), float64
    for the others (:func:`_bicubic_acc_ir`)."""
    if dt == types.float32:
        return _bicubic_f32_acc_ir(builder, data, o0, row, fx, fy, last, stride)
    return _bicubic_acc_ir(builder, data, dt, o0, row, fx, fy, last, stride)


def _bicubic_store_ir(context, builder, sig, args, last, stride=3):
    """Codegen of :func:`_bicubic_put4` (``last`` False), :func:`_bicubic_put3` (``last`` True) and
    :func:`_bicubic_put_rgba` (``stride`` 4): the pixel's lanes as :func:`_store` writes them (float32
    images: as computed), stored at ``dst[d]``."""
    data = context.make_array(sig.args[0])(context, builder, args[0]).data
    out = context.make_array(sig.args[5])(context, builder, args[5]).data
    dt = sig.args[0].dtype
    v = _bicubic_pixel_ir(builder, data, dt, args[1], args[2], args[3], args[4], last, stride)
    if dt != types.float32:
        v = _saturate_convert_ir(builder, v, dt, out.type.pointee, args[7], args[8])
    if last:
        _store_lanes(builder, out, args[6], v, 3)
    else:
        _store_vector(builder, out, args[6], v)
    return context.get_dummy_value()


def _bicubic_store_sig(src, dst):
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and dst.dtype == src.dtype
            and isinstance(dst.dtype, (types.Integer, types.Float))):
        return None
    return types.void(src, types.intp, types.intp, types.float64, types.float64, dst, types.intp, types.boolean,
                      types.float64)


@intrinsic
def _bicubic_put4(typingctx, src, o0, row, fx, fy, dst, d, is_int, maxv):
    """The interior bicubic pixel at top-left tap ``o0`` stored at ``dst[d : d + 3]`` as :func:`_bicubic_put3`
    stores it, with 4-element loads for every tap and one 4-element store: ``dst[d + 3]`` (the next pixel's
    first channel) takes an unused value, so the caller must write that pixel after this one, and call this
    only where ``dst[d + 3]`` and ``src[o0 + 3 row + 12]`` exist. The same bits as :func:`_bicubic_put3`."""
    sig = _bicubic_store_sig(src, dst)
    return None if sig is None else (sig, lambda context, builder, sig, args:
                                     _bicubic_store_ir(context, builder, sig, args, False))


@intrinsic
def _bicubic_put_rgba(typingctx, src, o0, row, fx, fy, dst, d, is_int, maxv):
    """The interior bicubic pixel of a 4-channel image at top-left tap ``o0`` stored at ``dst[d : d + 4]``,
    the four channels in the lanes of one vector (each tap one 4-element load, exactly its pixel), in the
    arithmetic and order of :func:`_bicubic_channels_f64` (float32 images: :func:`_bicubic_channels_f32`),
    so the bits are theirs."""
    sig = _bicubic_store_sig(src, dst)
    return None if sig is None else (sig, lambda context, builder, sig, args:
                                     _bicubic_store_ir(context, builder, sig, args, False, 4))


@intrinsic
def _bicubic_put3(typingctx, src, o0, row, fx, fy, dst, d, is_int, maxv):
    """The interior bicubic pixel at top-left tap ``o0`` stored at ``dst[d : d + 3]``: float64 arithmetic
    (:func:`_bicubic_taps3`), stored as :func:`_store` stores it, or for float32 images float32
    arithmetic (:func:`_bicubic_f32_taps3`; ``is_int`` and ``maxv`` unused). Reads and writes nothing
    past the pixel (its last tap may be the array's last element)."""
    sig = _bicubic_store_sig(src, dst)
    return None if sig is None else (sig, lambda context, builder, sig, args:
                                     _bicubic_store_ir(context, builder, sig, args, True))


def _bicubic_f32_acc_ir(builder, data, o0, row, fx, fy, last, stride=3):
    """IR of :func:`_bicubic_f32_taps3`'s three channels in the lanes of one 4-lane float32 vector (lane 3
    is computed from the next pixel's first channel and is unused); ``last`` and ``stride`` as in
    :func:`_bicubic_acc_ir`."""
    vec4 = ir.VectorType(ir.FloatType(), 4)
    wx = builder.fptrunc(_cubic_weight_vector(builder, fx), vec4)
    wy = builder.fptrunc(_cubic_weight_vector(builder, fy), vec4)
    return _bicubic_row_pairs_ir(builder, data, vec4, o0, row, wx, wy, last, stride, lambda v: v)


def _bicubic_row_pairs_ir(builder, data, taps, o0, row, wx, wy, last, stride, widen):
    """The bicubic sum :func:`_bicubic_c` computes, for each channel in a lane, with tap rows 0 and 1, then 2
    and 3, in the halves of 8-lane vectors: ``taps`` the 4-element load type, ``widen`` an 8-lane vector of
    taps to the arithmetic's type (that of the 4-lane weight vectors ``wx``, ``wy``); ``last`` and ``stride``
    as in :func:`_bicubic_acc_ir`. Each lane sees the operations of the scalar sum in its order."""
    index = o0.type
    lane = ir.IntType(32)

    def lanes(*ks):
        return ir.Constant(ir.VectorType(lane, len(ks)), [ir.Constant(lane, k) for k in ks])

    halves = []
    for a in (0, 2):
        top = builder.add(o0, builder.mul(row, ir.Constant(index, a)))
        below = builder.add(top, row)
        r = None
        for b in range(4):
            step = ir.Constant(index, stride * b)
            t0 = _load_taps(builder, data, builder.add(top, step), taps, False)
            t1 = _load_taps(builder, data, builder.add(below, step), taps, last and a == 2 and b == 3)
            t = builder.fmul(widen(builder.shuffle_vector(t0, t1, lanes(*range(8)))),
                             builder.shuffle_vector(wx, wx, lanes(*[b] * 8)))
            r = t if r is None else builder.fadd(r, t)
        halves.append(builder.fmul(r, builder.shuffle_vector(wy, wy, lanes(*[a] * 4, *[a + 1] * 4))))
    low, high = lanes(0, 1, 2, 3), lanes(4, 5, 6, 7)
    acc = builder.fadd(builder.shuffle_vector(halves[0], halves[0], low),
                       builder.shuffle_vector(halves[0], halves[0], high))
    acc = builder.fadd(acc, builder.shuffle_vector(halves[1], halves[1], low))
    return builder.fadd(acc, builder.shuffle_vector(halves[1], halves[1], high))


@intrinsic
def _bicubic_f32_taps3(typingctx, src, o0, row, fx, fy):
    """:func:`_bicubic_taps3` for float32 images in float32 arithmetic (the float64 weights rounded to
    float32), in the same order of operations as :func:`_bicubic_c`, so the bits are its bits. Two tap
    rows share one 8-lane vector: rows 0 and 1, then rows 2 and 3, three channels in each half."""
    if not (isinstance(src, types.Array) and src.dtype == types.float32):
        return None
    sig = types.UniTuple(types.float32, 3)(src, types.intp, types.intp, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        acc = _bicubic_f32_acc_ir(builder, data, args[1], args[2], args[3], args[4], True)
        lane = ir.IntType(32)
        return context.make_tuple(builder, sig.return_type,
                                  [builder.extract_element(acc, ir.Constant(lane, k)) for k in range(3)])
    return sig, codegen


def _store_vector(builder, data, index, v):
    """``data[index : index + len(v)] = v`` as one unaligned vector store."""
    builder.store(v, builder.bitcast(builder.gep(data, [index]), v.type.as_pointer()), align=1)


def _store_lanes(builder, data, index, v, n):
    """``data[index + k] = v[k]`` for the first ``n`` lanes of ``v``, one element at a time."""
    for k in range(n):
        builder.store(builder.extract_element(v, ir.Constant(ir.IntType(32), k)),
                      builder.gep(data, [builder.add(index, ir.Constant(index.type, k))]))


def _saturate_convert_ir(builder, v, dt, elt, is_int, maxv):
    """IR of :func:`_store`'s value for each lane of the float64 vector ``v``: when ``is_int`` (an i1 value,
    or True), :func:`_scalar.saturate` (``v + 0.5``, NaN and negatives to 0, above ``maxv`` to ``maxv``),
    then the conversion to ``dst``'s dtype ``dt`` (LLVM element type ``elt``), which truncates."""
    dbl = ir.DoubleType()
    vec = v.type
    lanes = vec.count
    if is_int is True:
        is_int = ir.Constant(ir.IntType(1), 1)
    if not isinstance(maxv, ir.Value):
        maxv = ir.Constant(dbl, float(maxv))
    zero = ir.Constant(vec, [ir.Constant(dbl, 0.0)] * lanes)
    s = builder.fadd(v, ir.Constant(vec, [ir.Constant(dbl, 0.5)] * lanes))
    s = builder.select(builder.fcmp_ordered(">=", s, zero), s, zero)
    top = _splat(builder, vec, maxv)
    s = builder.select(builder.fcmp_ordered(">", s, top), top, s)
    v = builder.select(is_int, s, v)
    if isinstance(dt, types.Float):
        return v if dt.bitwidth == 64 else builder.fptrunc(v, ir.VectorType(elt, lanes))
    return (builder.fptosi if dt.signed else builder.fptoui)(v, ir.VectorType(elt, lanes))


def _f32_bilinear_lanes_ir(builder, a, b, c, d, fx, fy):
    """:func:`_bil_f32_c` lane by lane: the lerps of the top taps ``a b`` and bottom taps ``c d`` (float32
    vectors) at fractions ``fx``, ``fy`` (vectors of the same lanes), and where a lane's result is not finite,
    :func:`_f32_weights_form`'s value in it, on a branch that finite blocks skip."""
    t = builder.fadd(a, builder.fmul(builder.fsub(b, a), fx))
    u = builder.fadd(c, builder.fmul(builder.fsub(d, c), fx))
    r = builder.fadd(t, builder.fmul(builder.fsub(u, t), fy))
    vec = r.type
    fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]), f"llvm.fabs.v{vec.count}f32")
    finite = builder.fcmp_ordered("<", builder.call(fabs, [r]), ir.Constant(vec, [float("inf")] * vec.count))
    bits = builder.bitcast(finite, ir.IntType(vec.count))
    all_finite = builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(vec.count), (1 << vec.count) - 1))
    before = builder.block
    with builder.if_then(builder.not_(all_finite), likely=False):
        one = ir.Constant(vec, [1.0] * vec.count)
        gx, gy = builder.fsub(one, fx), builder.fsub(one, fy)
        top = builder.fadd(builder.fmul(a, gx), builder.fmul(b, fx))
        bottom = builder.fadd(builder.fmul(c, gx), builder.fmul(d, fx))
        weights = builder.fadd(builder.fmul(top, gy), builder.fmul(bottom, fy))
        fixed = builder.select(finite, r, weights)
        fixing = builder.block
    out = builder.phi(vec)
    out.add_incoming(r, before)
    out.add_incoming(fixed, fixing)
    return out


def _bilinear_f32_ir(builder, data, off, row, fx, fy, last, stride=3):
    """IR of :func:`_bil_f32_c` for the three channels of an interior 3-channel float32 pixel, in the lanes of
    one 4-lane float32 vector (lane 3, the next pixel's first channel, is computed and unused): per channel
    ``t + (u - t) fy`` with ``t = a + (b - a) fx`` on the top row and ``u`` likewise on the bottom one, in the
    scalar code's order of operations. The bottom-right taps are loaded one by one when ``last`` (see
    :func:`_load_taps`). ``stride`` 4: the four channels of a 4-channel pixel, every lane used."""
    vec = ir.VectorType(ir.FloatType(), 4)
    fx = _splat(builder, vec, fx)
    fy = _splat(builder, vec, fy)
    right = ir.Constant(off.type, stride)
    below = builder.add(off, row)
    a = _load_taps(builder, data, off, vec, False)
    b = _load_taps(builder, data, builder.add(off, right), vec, False)
    c = _load_taps(builder, data, below, vec, False)
    d = _load_taps(builder, data, builder.add(below, right), vec, last)
    return _f32_bilinear_lanes_ir(builder, a, b, c, d, fx, fy)


def _put_codegen(stride):
    """Codegen of the bilinear pixel stores ``(src, off, row, fx, fy, dst, d)`` of uint8 and float32 images
    (:func:`_bilinear_u8_put4`, :func:`_bilinear_f32_put4` with ``stride`` 3; the ``_put_rgba`` ones with 4):
    the pixel's channels as one 4-lane vector (:func:`_bilinear_u8_ir`, :func:`_bilinear_f32_ir`), one store."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[5])(context, builder, args[5]).data
        if sig.args[0].dtype == types.uint8:
            r = _bilinear_u8_ir(builder, data, *args[1:5], False, _has_ifma(context), stride=stride)
            r = builder.trunc(r, ir.VectorType(ir.IntType(8), 4))
        else:
            r = _bilinear_f32_ir(builder, data, *args[1:5], False, stride=stride)
        _store_vector(builder, out, args[6], r)
        return context.get_dummy_value()
    return codegen


@intrinsic
def _bilinear_f32_taps3(typingctx, src, off, row, fx, fy):
    """The three channel values of an interior bilinear pixel of a 3-channel float32 image (top-left
    tap at flat index ``off``, row stride ``row``), as :func:`_bilinear_f32_ir` computes them. Reads
    nothing past the pixel's last tap (it may be the array's last element)."""
    if not (isinstance(src, types.Array) and src.dtype == types.float32):
        return None
    sig = types.UniTuple(types.float32, 3)(src, types.intp, types.intp, types.float32, types.float32)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        r = _bilinear_f32_ir(builder, data, args[1], args[2], args[3], args[4], True)
        return context.make_tuple(builder, sig.return_type,
                                  [builder.extract_element(r, ir.Constant(ir.IntType(32), k)) for k in range(3)])
    return sig, codegen


@intrinsic
def _bilinear_f32_put4(typingctx, src, off, row, fx, fy, dst, d):
    """:func:`_bilinear_f32_taps3`'s pixel written to ``dst[d : d + 3]`` with one 4-element store: ``dst[d + 3]``
    (the next pixel's first channel) takes an unused value, so the caller must write that pixel after
    this one, and call this only where ``dst[d + 3]`` and ``src[off + row + 6]`` exist."""
    if not (isinstance(src, types.Array) and src.dtype == types.float32 and isinstance(dst, types.Array)
            and dst.dtype == types.float32):
        return None
    return types.void(src, types.intp, types.intp, types.float32, types.float32, dst, types.intp), _put_codegen(3)


#: Whether :func:`_bilinear_u8_ir` may use AVX-512 IFMA where the compile target has it (tests turn it off
#: to compare the two forms; kernels compiled before a change keep the form they were compiled with).
IFMA_ALLOWED = True


def _target_features(context=None, features=None) -> set:
    """The features a compile target has on: parsed from ``features`` (an LLVM feature string such as
    ``"+avx2,-avx512f"``), else from ``context``'s target machine (the CPU target's by default: the host's,
    or ``NUMBA_CPU_FEATURES``; empty for ``NUMBA_CPU_NAME=generic``)."""
    if features is None:
        if context is None:
            from numba.core.registry import cpu_target

            context = cpu_target.target_context
        features = getattr(context.codegen(), "_tm_features", None) or ""
    return {f[1:] for f in features.split(",") if f.startswith("+")}


def _has_ifma(context) -> bool:
    """Whether ``context``'s target has 52-bit integer multiply-add on 256-bit vectors (AVX-512 IFMA and VL):
    read from the target machine's feature string (the host's, or ``NUMBA_CPU_FEATURES``), so a kernel
    compiled for a generic target never contains it."""
    return IFMA_ALLOWED and {"avx512ifma", "avx512vl"} <= _target_features(context)


def _madd52(builder, acc, b, c):
    """``acc + (b * c mod 2**52)`` in each 64-bit lane (``vpmadd52luq``): the low 52 bits of ``b`` and ``c``
    as unsigned numbers, the low 52 bits of their product added to ``acc``."""
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(acc.type, [acc.type] * 3),
                                        "llvm.x86.avx512.vpmadd52l.uq.256")
    return builder.call(fn, [acc, b, c])


def _bilinear_u8_ir(builder, data, off, row, fx, fy, last, ifma=False, stride=3):
    """IR of :func:`_bil_int_c` for the three channels of an interior 3-channel uint8 pixel, in the lanes
    of 64-bit vector operations (lane 3, the next pixel's first channel, is computed and unused); the
    bottom-right taps are loaded one by one when ``last`` (see :func:`_load_taps`). The low 8 bits of
    each lane are the result. ``stride`` 4: the four channels of a 4-channel pixel, every lane used.

    ``ifma``: each product and the sum after it is one :func:`_madd52`, which computes modulo 2**52: a
    difference ``b - a < 0`` is taken as ``2**52 + (b - a)``, so a sum may come out ``2**52`` too large.
    Every exact value stays below 2**38 and the result is bits 30-37 of the last sum, so those bits are
    the same: ``t << 15`` drops the excess of ``t`` (2**67 wraps to 0 in 64 bits), ``u - t`` enters the
    next product through its low 52 bits only, and the last sum's excess lies above bit 51. One
    instruction instead of a multiply and an add: about 7% less time per pixel on the development box
    (AMD Zen 4)."""
    taps = ir.VectorType(ir.IntType(8), 4)
    vec = ir.VectorType(ir.IntType(64), 4)
    # without IFMA the row sums (below 2**24) take 32-bit lanes, and the column sum's product is of two
    # sign-extended 32-bit values, one vpmuldq on AVX2 (a 64-bit lane product is three multiplies there)
    lane = vec if ifma else ir.VectorType(ir.IntType(32), 4)

    def const(x, v=vec):
        return ir.Constant(v, [ir.Constant(v.element, x)] * 4)

    def madd(acc, b, c):  # acc + b c
        return _madd52(builder, acc, b, c) if ifma else builder.add(acc, builder.mul(b, c))

    fx = _splat(builder, lane, builder.trunc(fx, lane.element) if lane is not vec else fx)
    fy = _splat(builder, lane, builder.trunc(fy, lane.element) if lane is not vec else fy)
    right = ir.Constant(off.type, stride)
    below = builder.add(off, row)

    def lerp_x(at, last):  # (a << 15) + (b - a) fx
        a = builder.zext(_load_taps(builder, data, at, taps, False), lane)
        b = builder.zext(_load_taps(builder, data, builder.add(at, right), taps, last), lane)
        return madd(builder.shl(a, const(15, lane)), builder.sub(b, a), fx)

    t = lerp_x(off, False)
    u = lerp_x(below, last)
    diff = builder.sub(u, t)
    if lane is not vec:
        t, diff, fy = builder.sext(t, vec), builder.sext(diff, vec), builder.sext(fy, vec)
    # ((t << 15) + (u - t) fy + 2**29) >> 30
    return builder.lshr(madd(builder.add(builder.shl(t, const(15)), const(536870912)), diff, fy), const(30))


@intrinsic
def _bilinear_u8_taps3(typingctx, src, off, row, fx, fy):
    """The three channel values of an interior bilinear pixel of a 3-channel uint8 image (top-left tap
    at flat index ``off``, row stride ``row``, 15-bit weights ``fx``, ``fy``): per channel the exact
    integer arithmetic of :func:`_bil_int_c`, the channels in the lanes of 64-bit vector operations.
    Reads nothing past the pixel's last tap (it may be the array's last element)."""
    if not (isinstance(src, types.Array) and src.dtype == types.uint8):
        return None
    sig = types.UniTuple(types.int64, 3)(src, types.intp, types.intp, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        r = _bilinear_u8_ir(builder, data, args[1], args[2], args[3], args[4], True, _has_ifma(context))
        r = builder.and_(r, ir.Constant(r.type, [ir.Constant(ir.IntType(64), 255)] * 4))
        return context.make_tuple(builder, sig.return_type,
                                  [builder.extract_element(r, ir.Constant(ir.IntType(32), k)) for k in range(3)])
    return sig, codegen


@intrinsic
def _bilinear_u8_put4(typingctx, src, off, row, fx, fy, dst, d):
    """:func:`_bilinear_u8_taps3`'s pixel written to ``dst[d : d + 3]`` with one 4-byte store: ``dst[d + 3]``
    (the next pixel's first channel) takes an unused value, so the caller must write that pixel after
    this one, and call this only where ``dst[d + 3]`` and ``src[off + row + 6]`` exist."""
    if not (isinstance(src, types.Array) and src.dtype == types.uint8 and isinstance(dst, types.Array)
            and dst.dtype == types.uint8):
        return None
    return types.void(src, types.intp, types.intp, types.int64, types.int64, dst, types.intp), _put_codegen(3)


def _bilinear_u8_pair_ir(builder, data, off0, off1, row, fx0, fy0, fx1, fy1, stride=3):
    """Two interior 3-channel uint8 pixels (top-left taps at ``off0``, ``off1``; 15-bit weights) in the lanes
    of one vector of eight 32-bit values (lanes 0-2 the first pixel's channels, 4-6 the second's; 3 and 7
    unused; ``stride`` 4: two 4-channel pixels, every lane used): the integer arithmetic of :func:`_bil_int_c` with every product in 32 bits, so two pixels
    take one vector operation where one pixel took one (:func:`_bilinear_u8_ir`'s column sum needs 64-bit
    lanes). The row sums ``t``, ``u`` are below 2**23; the column sum is split at bit 15: with
    ``D = u - t = 2**15 Dh + Dl`` (``Dh = D >> 15``, ``0 <= Dl < 2**15``),
    ``((t << 15) + D fy + 2**29) >> 30 == (t + Dh fy + ((Dl fy + 2**29) >> 15)) >> 15``, because
    ``floor((2**15 A + B) / 2**30) == floor((A + floor(B / 2**15)) / 2**15)`` for integers ``A`` and
    ``B >= 0``; ``|Dh fy| <= 2**23`` and ``Dl fy + 2**29 < 2**31``."""
    i8, i32 = ir.IntType(8), ir.IntType(32)
    vec = ir.VectorType(i32, 8)
    four = ir.VectorType(i8, 4)

    def const(x):
        return ir.Constant(vec, [ir.Constant(i32, x)] * 8)

    def taps(at0, at1):  # the 4 bytes at each offset, as one vector of eight 32-bit values
        a = builder.load(builder.bitcast(builder.gep(data, [at0]), four.as_pointer()), align=1)
        b = builder.load(builder.bitcast(builder.gep(data, [at1]), four.as_pointer()), align=1)
        both = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, 8), [ir.Constant(i32, k) for k in range(8)]))
        return builder.zext(both, vec)

    def halves(x0, x1):
        v = ir.Constant(vec, ir.Undefined)
        for k in range(8):
            v = builder.insert_element(v, builder.trunc(x0 if k < 4 else x1, i32), ir.Constant(i32, k))
        return v

    fx = halves(fx0, fx1)
    fy = halves(fy0, fy1)
    right = ir.Constant(off0.type, stride)

    def lerp_x(at0, at1):  # (a << 15) + (b - a) fx
        a = taps(at0, at1)
        b = taps(builder.add(at0, right), builder.add(at1, right))
        return builder.add(builder.shl(a, const(15)), builder.mul(builder.sub(b, a), fx))

    t = lerp_x(off0, off1)
    u = lerp_x(builder.add(off0, row), builder.add(off1, row))
    return _column_sum32_ir(builder, t, u, fy)


def _column_sum32_ir(builder, t, u, fy):
    """``((t << 15) + (u - t) fy + 2**29) >> 30`` in int32 lanes (row sums ``t``, ``u`` below 2**23, weights
    ``fy`` up to 2**15), the sum split at bit 15 as :func:`_bilinear_u8_pair_ir` derives it."""
    i32 = ir.IntType(32)

    def const(x):
        return ir.Constant(t.type, [ir.Constant(i32, x)] * t.type.count)

    diff = builder.sub(u, t)
    dh = builder.ashr(diff, const(15))
    dl = builder.and_(diff, const(32767))
    low = builder.lshr(builder.add(builder.mul(dl, fy), const(536870912)), const(15))
    return builder.ashr(builder.add(builder.add(t, builder.mul(dh, fy)), low), const(15))


@intrinsic
def _bilinear_u8_put_pair(typingctx, src, off0, off1, row, fx0, fy0, fx1, fy1, dst, d, cc):
    """Two interior pixels of a uint8 image of ``cc`` (a constant 3 or 4) channels (top-left taps at ``off0``,
    ``off1``, row stride ``row``, 15-bit weights) written to ``dst[d : d + 2 cc]``: the bits of
    :func:`_bilinear_u8_put4` (:func:`_bilinear_u8_put_rgba`) for each, in one 8-byte store
    (:func:`_bilinear_u8_pair_ir`; where the target has AVX-512 IFMA, one store per pixel as those do).
    3 channels: ``dst[d + 6]`` and ``dst[d + 7]`` (the next pixel's first two channels) take unused values,
    so the caller writes that pixel after these, and calls this only where ``dst[d + 7]`` and
    ``src[off + row + 6]`` exist for both offsets."""
    if not (isinstance(src, types.Array) and src.dtype == types.uint8 and isinstance(dst, types.Array)
            and dst.dtype == types.uint8 and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (3, 4)):
        return None
    channels = cc.literal_value
    sig = types.void(src, types.intp, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64,
                     dst, types.intp, cc)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[8])(context, builder, args[8]).data
        off0, off1, row, fx0, fy0, fx1, fy1 = args[1:8]
        d = args[9]
        bytes4, bytes8 = ir.VectorType(ir.IntType(8), 4), ir.VectorType(ir.IntType(8), 8)
        if _has_ifma(context):  # one pixel at a time in 52-bit multiply-adds
            for off, fx, fy, at in ((off0, fx0, fy0, d), (off1, fx1, fy1, builder.add(d, ir.Constant(d.type,
                                                                                                     channels)))):
                r = _bilinear_u8_ir(builder, data, off, row, fx, fy, False, True, stride=channels)
                _store_vector(builder, out, at, builder.trunc(r, bytes4))
            return context.get_dummy_value()
        r = builder.trunc(_bilinear_u8_pair_ir(builder, data, off0, off1, row, fx0, fy0, fx1, fy1, channels), bytes8)
        if channels == 3:  # the two pixels' channels first
            i32 = ir.IntType(32)
            r = builder.shuffle_vector(r, r, ir.Constant(ir.VectorType(i32, 8),
                                                         [ir.Constant(i32, k) for k in (0, 1, 2, 4, 5, 6, 7, 3)]))
        _store_vector(builder, out, d, r)
        return context.get_dummy_value()
    return sig, codegen


#: Pixels of a block of :func:`_bilinear_u8_run8`.
BLOCK8 = 8
#: Whether 3- and 4-channel uint8 bilinear spans go in blocks of :data:`BLOCK8` pixels where the target has AVX2.
BLOCKS8_ALLOWED = True


def _blocks8(context) -> bool:
    """Whether :func:`_bilinear_u8_run8` writes blocks for ``context``'s target: where it has AVX2. Against the
    pixel pairs of :func:`_bilinear_u8_put_pair`: on an AMD EPYC (Zen 3, AVX2) 8-12% less time for a 512x512
    or 2048x2048 warp; on an Intel Xeon with AVX-512 IFMA and AMX, where the pairs take 52-bit
    multiply-adds, 512x512x3 on two threads 0.32-0.33 ms against 0.38-0.39 and 2048x2048x3 5.2-5.3 against
    5.7-5.9 (alternated runs)."""
    return BLOCKS8_ALLOWED and "avx2" in _target_features(context)


#: Whether uint8 bilinear blocks take four pixels to a multiply-add where the target has AVX-512BW (:func:`_wide_u8`).
WIDE_U8_ALLOWED = True


def _wide_u8(context) -> bool:
    """Whether :func:`_u8_block_ir` takes four pixels' taps to one 512-bit ``vpmaddwd`` (32 16-bit lanes) for
    ``context``'s target, where it has AVX-512BW, instead of two to a 256-bit one: the same lanes' arithmetic,
    so the same bits, in half the vector operations. On an Intel Xeon with AVX-512, 512x512x3 rotated 10°,
    alternated builds: one thread 0.59 ms against 0.65-0.67, two threads 0.32-0.33 against 0.35-0.36."""
    return WIDE_U8_ALLOWED and "avx512bw" in _target_features(context)


def _vconst(t, values):
    """A constant vector of ``t`` elements."""
    return ir.Constant(ir.VectorType(t, len(values)), [ir.Constant(t, v) for v in values])


def _span_blocks_sig(src, dst, cc, dtype):
    """The signature of a span-block intrinsic ``(src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d, cc) ->
    pixels written`` for ``dtype`` arrays and a constant ``cc`` of 3 or 4; None for other types."""
    if not (isinstance(src, types.Array) and src.dtype == dtype and isinstance(dst, types.Array)
            and dst.dtype == dtype and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (3, 4)):
        return None
    return types.int64(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, types.int64,
                       dst, types.intp, cc)


def _span_blocks_ir(context, builder, sig, args, block):
    """The loop of a span's blocks of :data:`BLOCK8` pixels (:func:`_bilinear_u8_run8`,
    :func:`_bilinear_f32_run8`; arguments ``(src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d, cc)``): pixel
    ``k`` at the 32.32 coordinate ``(xq + k dxq, yq + k dyq)``, ``nblocks`` blocks written from ``dst[d]`` on,
    ``cc`` elements a pixel. Each block's offsets (of its pixels' top-left taps from ``src``'s start) are
    scalars, its coordinates' low 32 bits (the fractions) an 8-lane int32 vector per axis: the offsets from
    vector lanes would take an extract each, which costs more than the scalar arithmetic.
    ``block(data, out, offs, low_x, low_y, d)`` emits one block's IR; returns ``8 nblocks`` (0 if negative)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    data = context.make_array(sig.args[0])(context, builder, args[0]).data
    out = context.make_array(sig.args[8])(context, builder, args[8]).data
    sbase, row, xq, yq, dxq, dyq, nblocks, _, d0 = args[1:10]
    cc = sig.args[10].literal_value
    n = BLOCK8
    v32 = ir.VectorType(i32, n)
    # the low 32 bits of pixel k's coordinate: those of the block's first plus those of k steps (mod 2**32)
    steps = _vconst(i32, range(n))
    xsteps = builder.mul(_splat(builder, v32, builder.trunc(dxq, i32)), steps)
    ysteps = builder.mul(_splat(builder, v32, builder.trunc(dyq, i32)), steps)
    shift, stride = ir.Constant(i64, 32), ir.Constant(i64, cc)

    entry = builder.basic_block
    loop = builder.append_basic_block("blocks.loop")
    done = builder.append_basic_block("blocks.done")
    builder.cbranch(builder.icmp_signed(">", nblocks, ir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    x = builder.phi(i64)
    y = builder.phi(i64)
    k = builder.phi(i64)
    d = builder.phi(i64)
    low_x = builder.add(_splat(builder, v32, builder.trunc(x, i32)), xsteps)
    low_y = builder.add(_splat(builder, v32, builder.trunc(y, i32)), ysteps)
    offs = []
    xs, ys = x, y
    for _ in range(n):
        offs.append(builder.add(sbase, builder.add(builder.mul(builder.ashr(ys, shift), row),
                                                   builder.mul(builder.ashr(xs, shift), stride))))
        xs, ys = builder.add(xs, dxq), builder.add(ys, dyq)
    block(data, out, offs, low_x, low_y, d)

    k_next = builder.add(k, ir.Constant(i64, 1))
    d_next = builder.add(d, ir.Constant(i64, cc * n))
    end = builder.basic_block
    for phi, first, nxt in ((x, xq, xs), (y, yq, ys), (k, ir.Constant(i64, 0), k_next), (d, d0, d_next)):
        phi.add_incoming(first, entry)
        phi.add_incoming(nxt, end)
    builder.cbranch(builder.icmp_signed("<", k_next, nblocks), loop, done)
    builder.position_at_end(done)
    return builder.mul(builder.select(builder.icmp_signed(">", nblocks, ir.Constant(i64, 0)), nblocks,
                                      ir.Constant(i64, 0)), ir.Constant(i64, n))


def _run8_codegen(context, builder, sig, args):
    """IR of :func:`_bilinear_u8_run8` (see there), in :func:`_span_blocks_ir`'s loop."""
    if not _blocks8(context):
        return ir.Constant(ir.IntType(64), 0)
    block = _u8_block_ir(builder, args[2], sig.args[10].literal_value, _wide_u8(context))
    return _span_blocks_ir(context, builder, sig, args, block)


def _u8_block_ir(builder, row, cc, wide=False):
    """The emitter ``block(data, out, offs, low_x, low_y, d)`` of one block of :data:`BLOCK8` uint8 bilinear
    pixels (:func:`_bilinear_u8_run8`'s arithmetic) for ``cc`` (3 or 4) channels and row stride ``row``; with
    ``wide`` (:func:`_wide_u8`), four pixels to a vector operation, else two."""
    i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
    n = BLOCK8
    group = 4 if wide else 2  # pixels a multiply-add takes: four in AVX-512BW's 32 16-bit lanes, else two
    madd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VectorType(i32, 4 * group), [ir.VectorType(i16, 8 * group)] * 2),
        "llvm.x86.avx512.pmaddw.d.512" if wide else "llvm.x86.avx2.pmadd.wd")
    ones = _vconst(i16, [1] * 8 * group)
    words = i64.as_pointer()
    # each pixel's 8-byte load: (a, b) per channel side by side (3 channels: the last pair unused)
    pair_order = _vconst(i32, [m + o for m in range(0, 8 * group, 8)
                              for o in ((0, 3, 1, 4, 2, 5, 6, 7) if cc == 3 else (0, 4, 1, 5, 2, 6, 3, 7))])

    def weight(f):  # _w15 of each pixel's fraction f: ((f >> 16) + 1) >> 1 == (f + 2**16) >> 17, in 32 bits
        return builder.lshr(builder.add(builder.lshr(f, _vconst(i32, [16] * n)), _vconst(i32, [1] * n)),
                            _vconst(i32, [1] * n))

    def block(data, out, offs, low_x, low_y, d):
        wx, wy = weight(low_x), weight(low_y)
        # per pixel (2**15 - 1 - fx, fx - 1) as two 16-bit halves of one 32-bit lane
        wa = builder.and_(builder.sub(_vconst(i32, [32767] * n), wx), _vconst(i32, [0xFFFF] * n))
        packed = builder.or_(wa, builder.shl(builder.sub(wx, _vconst(i32, [1] * n)), _vconst(i32, [16] * n)))

        def taps(j, below):  # pixels j .. j + group - 1 of one row: (a, b) per channel in 16-bit lanes
            both = ir.Constant(ir.VectorType(i64, group), ir.Undefined)
            for m in range(group):
                at = offs[j + m] if not below else builder.add(offs[j + m], row)
                word = builder.load(builder.bitcast(builder.gep(data, [at]), words), align=1)
                both = builder.insert_element(both, word, ir.Constant(i32, m))
            both = builder.bitcast(both, ir.VectorType(i8, 8 * group))
            return builder.zext(builder.shuffle_vector(both, both, pair_order), ir.VectorType(i16, 8 * group))

        results = []
        for j in range(0, n, group):
            spread = _vconst(i32, [j + m for m in range(group) for _ in range(4)])
            w = builder.bitcast(builder.shuffle_vector(packed, packed, spread), ir.VectorType(i16, 8 * group))
            sums = []
            for below in (False, True):
                tp = taps(j, below)
                sums.append(builder.add(builder.call(madd, [tp, w]), builder.call(madd, [tp, ones])))
            fy = builder.shuffle_vector(wy, wy, spread)
            results.append(_column_sum32_ir(builder, sums[0], sums[1], fy))
        while len(results) > 1:
            results = [builder.shuffle_vector(results[m], results[m + 1],
                                              _vconst(i32, range(2 * results[m].type.count)))
                       for m in range(0, len(results), 2)]
        r = builder.trunc(results[0], ir.VectorType(i8, 4 * n))
        if cc == 3:  # each pixel's three channels
            r = builder.shuffle_vector(r, r, _vconst(i32, [4 * m + c for m in range(n) for c in range(3)]))
        _store_vector(builder, out, d, r)

    return block


@intrinsic
def _bilinear_u8_run8(typingctx, src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d, cc):
    """``nblocks`` blocks of :data:`BLOCK8` interior pixels of a ``cc``-channel (a constant 3 or 4) uint8 affine
    span (pixel ``k`` at the 32.32 coordinate ``(xq + k dxq, yq + k dyq)``) written to
    ``dst[d : d + 8 cc nblocks]``; returns the pixels written: ``8 nblocks``, or 0 where the target has no AVX2
    (:func:`_blocks8`; the caller goes on pixel pair by pair).

    :func:`_bil_int_c`'s exact integer arithmetic with :func:`_w15` weights. A block's weights are vector
    lanes (from the low 32 bits of its coordinates), its offsets scalars (an extract from a vector lane
    costs more than the arithmetic: on an Intel Xeon with AVX-512, one thread, 512x512x3 0.60-0.61 ms
    against 0.80-0.82 with offsets in lanes); each row's two taps come from one 8-byte load, their
    channels paired ``(a, b)`` in 16-bit lanes, so one ``vpmaddwd`` gives ``a (2**15 - 1 - fx) + b (fx - 1)``
    and a second adds ``a + b``: the row sum ``(a << 15) + (b - a) fx`` with weights that fit 16-bit lanes
    (``fx`` runs up to 2**15); the column sum is :func:`_column_sum32_ir`'s. The caller makes sure every
    pixel's taps lie in the image and (3 channels) that ``src[off + row + 7]`` exists for each top-left
    offset ``off``."""
    sig = _span_blocks_sig(src, dst, cc, types.uint8)
    return None if sig is None else (sig, _run8_codegen)


def _cells_blocks_ir(context, builder, sig, args, block, cc, n=BLOCK8, spare=0, vector=False):
    """The loop of a points row's blocks of ``n`` pixels (:func:`_bilinear_u8_cells8`; arguments
    ``(src, cells, j, wo, row, lim, dst, d, cc)``): from pixel ``j`` on, while a whole block fits in the row's
    ``wo`` pixels and each of its cells (:func:`_row_cells`) is an offset ``0 <= cells[k] < lim``, one block
    from the offsets ``cells[k]`` and the fractions ``cells[wo + k]``, ``cells[2 wo + k]`` (their low 32 bits),
    written from ``dst[d]`` on, ``cc`` elements a pixel. A block's cells are checked in one vector comparison;
    its offsets are scalar loads (with ``vector``, the int64 vector of them). ``block(data, out, offs, low_x,
    low_y, d)`` emits one block's IR; with ``spare``, a block is written only where ``spare`` more pixels of
    the row follow it. Returns the pixels written (a multiple of ``n``)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    data = context.make_array(sig.args[0])(context, builder, args[0]).data
    cells = context.make_array(sig.args[1])(context, builder, args[1]).data
    out = context.make_array(sig.args[6])(context, builder, args[6]).data
    j0, wo, lim, d0 = args[2], args[3], args[5], args[7]
    v64 = ir.VectorType(i64, n)
    zero = ir.Constant(i64, 0)
    lim = builder.select(builder.icmp_signed("<", lim, zero), zero, lim)  # a negative limit: no offset is below
    limits = _splat(builder, v64, lim)
    lanes = ir.Constant(i64, n)
    room = builder.sub(wo, ir.Constant(i64, spare))  # a block ends at most here

    def vector_at(k):  # cells[k : k + n]
        return builder.load(builder.bitcast(builder.gep(cells, [k]), v64.as_pointer()), align=1)

    entry = builder.basic_block
    check = builder.append_basic_block("cells.check")
    body = builder.append_basic_block("cells.body")
    done = builder.append_basic_block("cells.done")
    builder.cbranch(builder.icmp_signed("<=", builder.add(j0, lanes), room), check, done)
    builder.position_at_end(check)
    k = builder.phi(i64)
    jj = builder.add(j0, k)
    here = vector_at(jj)
    inside = builder.icmp_unsigned("<", here, limits)  # negative cells are large unsigned numbers
    mask = ir.IntType(n)
    every = builder.icmp_unsigned("==", builder.bitcast(inside, mask), ir.Constant(mask, (1 << n) - 1))
    builder.cbranch(every, body, done)
    builder.position_at_end(body)
    if vector:
        offs = here
    else:
        offs = [builder.load(builder.gep(cells, [builder.add(jj, ir.Constant(i64, m))])) for m in range(n)]
    low_x = builder.trunc(vector_at(builder.add(jj, wo)), ir.VectorType(i32, n))
    low_y = builder.trunc(vector_at(builder.add(jj, builder.add(wo, wo))), ir.VectorType(i32, n))
    block(data, out, offs, low_x, low_y, builder.add(d0, builder.mul(k, ir.Constant(i64, cc))))
    k_next = builder.add(k, lanes)
    end = builder.basic_block
    builder.cbranch(builder.icmp_signed("<=", builder.add(builder.add(j0, k_next), lanes), room), check, done)
    k.add_incoming(zero, entry)
    k.add_incoming(k_next, end)
    builder.position_at_end(done)
    written = builder.phi(i64)
    written.add_incoming(zero, entry)
    written.add_incoming(k, check)
    written.add_incoming(k_next, end)
    return written


def _cells_blocks_sig(src, cells, dst, cc, dtype):
    """The signature of a points-block intrinsic ``(src, cells, j, wo, row, lim, dst, d, cc) -> pixels written``
    for ``dtype`` arrays, int64 cells and a constant ``cc`` of 3 or 4; None for other types."""
    if not (isinstance(src, types.Array) and src.dtype == dtype and isinstance(dst, types.Array)
            and dst.dtype == dtype and isinstance(cells, types.Array) and cells.dtype == types.int64
            and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (3, 4)):
        return None
    return types.int64(src, cells, types.int64, types.int64, types.int64, types.int64, dst, types.int64, cc)


@intrinsic
def _bilinear_u8_cells8(typingctx, src, cells, j, wo, row, lim, dst, d, cc):
    """Blocks of :data:`BLOCK8` interior pixels of a ``cc``-channel (a constant 3 or 4) uint8 points row, from
    pixel ``j`` on while each pixel's cell (:func:`_row_cells`: top-left tap offset, then the fractions) is an
    offset below ``lim``, written to ``dst[d:]``; returns the pixels written (a multiple of 8; 0 where the
    target has no AVX2). :func:`_bilinear_u8_run8`'s arithmetic, so the bits of :func:`_bil_int_c` with
    :func:`_w15` weights. The caller passes a ``lim`` for which ``src[off + row + 7]`` exists (3 channels)."""
    sig = _cells_blocks_sig(src, cells, dst, cc, types.uint8)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        if not _blocks8(context):
            return ir.Constant(ir.IntType(64), 0)
        channels = sig.args[8].literal_value
        block = _u8_block_ir(builder, args[4], channels, _wide_u8(context))
        return _cells_blocks_ir(context, builder, sig, args, block, channels)
    return sig, codegen


#: Whether 3- and 4-channel float32 bilinear spans go in blocks of :data:`BLOCK8` pixels (:func:`_bilinear_f32_run8`).
F32_BLOCKS_ALLOWED = True


def _f32_blocks(context) -> bool:
    """Whether :func:`_bilinear_f32_run8` writes blocks for ``context``'s target: where it has AVX-512 (four
    pixels' taps in one 16-lane vector). On an Intel Xeon with AVX-512, one thread, a 3-channel span in
    cache took 1.0-1.1 ns a pixel in blocks against 1.8-1.9 pixel by pixel (1.5 with the offsets in vector
    lanes; two pixels to an 8-lane AVX2 vector, 1.8-1.9: no gain, so AVX2 targets go pixel by pixel)."""
    return F32_BLOCKS_ALLOWED and "avx512f" in _target_features(context)


def _run_f32_codegen(context, builder, sig, args):
    """IR of :func:`_bilinear_f32_run8` (see there), in :func:`_span_blocks_ir`'s loop."""
    if not _f32_blocks(context):
        return ir.Constant(ir.IntType(64), 0)
    return _span_blocks_ir(context, builder, sig, args, _f32_block_ir(builder, args[2], sig.args[10].literal_value))


def _f32_block_ir(builder, row, cc):
    """The emitter ``block(data, out, offs, low_x, low_y, d)`` of one block of :data:`BLOCK8` float32 bilinear
    pixels (:func:`_bilinear_f32_run8`'s arithmetic) for ``cc`` (3 or 4) channels and row stride ``row``."""
    f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
    n, group = BLOCK8, 4
    vf = ir.VectorType(f32, n)
    quad = ir.VectorType(f32, 4)
    right = ir.Constant(i64, cc)
    below_right = builder.add(row, right)
    # 3 channels: each pixel's three first, then four unused lanes; 4: as they are
    keep = _vconst(i32, [4 * m + c for m in range(group) for c in range(cc)] + [3] * (group * (4 - cc)))

    def fractions(low):  # _frac32 of each pixel: float32(q & Q_MASK) * 2**-32
        return builder.fmul(builder.uitofp(low, vf), _splat(builder, vf, ir.Constant(f32, Q_INV)))

    def joined(parts):  # 4-lane vectors side by side
        while len(parts) > 1:
            parts = [builder.shuffle_vector(parts[m], parts[m + 1], _vconst(i32, range(2 * parts[m].type.count)))
                     for m in range(0, len(parts), 2)]
        return parts[0]

    def block(data, out, offs, low_x, low_y, d):
        gx, gy = fractions(low_x), fractions(low_y)

        def taps(first, at):  # each pixel's four elements from its offset plus ``at``
            return joined([builder.load(builder.bitcast(builder.gep(data, [builder.add(offs[j], at)]),
                                                        quad.as_pointer()), align=1)
                           for j in range(first, first + group)])

        for first in range(0, n, group):
            spread = _vconst(i32, [first + m for m in range(group) for _ in range(4)])
            fx = builder.shuffle_vector(gx, gx, spread)
            fy = builder.shuffle_vector(gy, gy, spread)
            a, b = taps(first, ir.Constant(i64, 0)), taps(first, right)
            c, e = taps(first, row), taps(first, below_right)
            r = _f32_bilinear_lanes_ir(builder, a, b, c, e, fx, fy)
            _store_vector(builder, out, builder.add(d, ir.Constant(i64, cc * first)), builder.shuffle_vector(r, r, keep))

    return block


@intrinsic
def _bilinear_f32_run8(typingctx, src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d, cc):
    """``nblocks`` blocks of :data:`BLOCK8` interior pixels of a ``cc``-channel (a constant 3 or 4) float32
    affine span (pixel ``k`` at the 32.32 coordinate ``(xq + k dxq, yq + k dyq)``) written to
    ``dst[d : d + 8 cc nblocks]``; returns the pixels written: ``8 nblocks``, or 0 where the target has no
    AVX-512 (:func:`_f32_blocks`; the caller goes on pixel by pixel).

    :func:`_bil_f32_c`'s arithmetic in its order, lane by lane (the bits of :func:`_bilinear_f32_put4`):
    the fractions of a block's pixels (:func:`_frac32`) are vector lanes, their offsets scalars (an extract
    from a vector lane costs more than the arithmetic), and four pixels share one 16-lane vector of taps,
    each pixel's four elements one 4-element load, so one subtraction, product and sum serve them all.
    3 channels: the pixels' channels are stored compacted, followed by four unused lanes that the next four
    pixels or the caller write again; the caller makes sure every pixel's taps lie in the image, that
    ``src[off + row + 6]`` exists for each top-left offset ``off``, and that it writes at least the two span
    pixels after the blocks afterwards. 4 channels: every pixel's taps in the image is all it needs."""
    sig = _span_blocks_sig(src, dst, cc, types.float32)
    return None if sig is None else (sig, _run_f32_codegen)


@intrinsic
def _bilinear_f32_cells8(typingctx, src, cells, j, wo, row, lim, dst, d, cc):
    """:func:`_bilinear_u8_cells8` for float32 (:func:`_bilinear_f32_run8`'s arithmetic, so the bits of
    :func:`_bil_f32_c`), where the target has AVX-512 (else 0). 3 channels: a block writes four elements past
    its pixels, so blocks are written only where two more pixels of the row follow (written afterwards),
    and the caller passes a ``lim`` for which ``src[off + row + 6]`` exists."""
    sig = _cells_blocks_sig(src, cells, dst, cc, types.float32)
    if sig is None:
        return None

    def codegen(context, builder, sig, args):
        if not _f32_blocks(context):
            return ir.Constant(ir.IntType(64), 0)
        channels = sig.args[8].literal_value
        block = _f32_block_ir(builder, args[4], channels)
        return _cells_blocks_ir(context, builder, sig, args, block, channels, spare=2 if channels == 3 else 0)
    return sig, codegen


@intrinsic
def _bilinear_grey_cells(typingctx, src, cells, j, wo, row, lim, dst, d):
    """Blocks of :data:`GATHER` interior pixels of a 1-channel uint8, uint16 or float32 points row, from pixel
    ``j`` on while each pixel's cell (:func:`_row_cells`) is an offset below ``lim``, written to ``dst[d:]``;
    returns the pixels written (a multiple of :data:`GATHER`; 0 where the target has no AVX2). The gathers
    and arithmetic of :func:`_bilinear_grey_block` (:func:`_grey_lanes_ir`), so the bits of the pixel-by-pixel
    loops. The caller passes a ``lim`` below which every offset's gathered words lie inside ``src`` and
    ``off + row`` fits 31 bits (:func:`grey_cells`)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.uint8, types.uint16, types.float32) and isinstance(cells, types.Array)
            and cells.dtype == types.int64):
        return None
    sig = types.int64(src, cells, types.int64, types.int64, types.int64, types.int64, dst, types.int64)

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        if "avx2" not in _target_features(context):
            return ir.Constant(ir.IntType(64), 0)
        dt = sig.args[0].dtype
        row32 = builder.trunc(args[4], i32)

        def block(data, out, offs, low_x, low_y, d):
            base = builder.bitcast(data, ir.IntType(8).as_pointer())
            _grey_lanes_ir(builder, dt, base, builder.trunc(offs, ir.VectorType(i32, GATHER)), row32, low_x, low_y,
                           out, d, _wide_f32_gathers(context))
        return _cells_blocks_ir(context, builder, sig, args, block, 1, n=GATHER, vector=True)
    return sig, codegen


def grey_cells(src, cells, j, wo, row, dst, dbase):
    """The whole blocks of :data:`GATHER` pixels of a 1-channel points row from ``j`` on whose cells are
    interior (:func:`_bilinear_grey_cells`: uint8, uint16 and float32; none for other dtypes); returns the
    first pixel left. Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(grey_cells, jit_options=OVERLOAD_OPTIONS)
def _ov_grey_cells(src, cells, j, wo, row, dst, dbase):
    if src.dtype in (types.uint8, types.uint16, types.float32):
        reads = 4 if src.dtype == types.uint8 else 2  # elements each gathered word holds from a left tap on

        def impl(src, cells, j, wo, row, dst, dbase):
            lim = min(src.size - row - reads + 1, (1 << 31) - row)
            return j + _bilinear_grey_cells(src, cells, j, wo, row, lim, dst, dbase + j)
    else:
        def impl(src, cells, j, wo, row, dst, dbase):
            return j
    return impl


@intrinsic
def _bilinear_u8_put_rgba(typingctx, src, off, row, fx, fy, dst, d):
    """The interior bilinear pixel of a 4-channel uint8 image (top-left tap at flat index ``off``, row
    stride ``row``, 15-bit weights ``fx``, ``fy``) written to ``dst[d : d + 4]``: the exact integer
    arithmetic of :func:`_bil_int_c`, the four channels in the lanes of 64-bit vector operations, each
    tap pair one 4-byte load (nothing outside the pixel's taps is read)."""
    if not (isinstance(src, types.Array) and src.dtype == types.uint8 and isinstance(dst, types.Array)
            and dst.dtype == types.uint8):
        return None
    return types.void(src, types.intp, types.intp, types.int64, types.int64, dst, types.intp), _put_codegen(4)


@intrinsic
def _bilinear_u16_put(typingctx, src, off, row, fx, fy, dst, d, cc):
    """The interior bilinear pixel of a uint16 image of ``cc`` (a constant 3 or 4) channels (top-left tap at
    flat index ``off``, row stride ``row``, fractions ``fx``, ``fy``) written to ``dst[d : d + cc]``: the
    arithmetic of :func:`_bil_float_c` and :func:`_store` (float64, rounded half up and saturated), the
    channels in the lanes of 4-lane float64 vector operations in the scalar code's order. 4 channels: each
    tap one 4-element load, one store; 3 channels: element by element (nothing past the taps is read or
    written)."""
    if not (isinstance(src, types.Array) and src.dtype == types.uint16 and isinstance(dst, types.Array)
            and dst.dtype == types.uint16 and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (3, 4)):
        return None
    channels = cc.literal_value
    sig = types.void(src, types.intp, types.intp, types.float64, types.float64, dst, types.intp, cc)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[5])(context, builder, args[5]).data
        off, row, fx, fy, _, d = args[1:7]
        f64 = ir.DoubleType()
        vec = ir.VectorType(f64, 4)
        taps = ir.VectorType(ir.IntType(16), 4)
        exact = channels == 3
        one = ir.Constant(f64, 1.0)

        def weight(a, b):
            return _splat(builder, vec, builder.fmul(a, b))

        w00 = weight(builder.fsub(one, fx), builder.fsub(one, fy))
        w01 = weight(fx, builder.fsub(one, fy))
        w10 = weight(builder.fsub(one, fx), fy)
        w11 = weight(fx, fy)
        right = ir.Constant(off.type, channels)
        below = builder.add(off, row)

        def tap(at):
            return builder.uitofp(_load_taps(builder, data, at, taps, exact), vec)

        v = builder.fadd(builder.fmul(tap(off), w00), builder.fmul(tap(builder.add(off, right)), w01))
        v = builder.fadd(v, builder.fmul(tap(below), w10))
        v = builder.fadd(v, builder.fmul(tap(builder.add(below, right)), w11))

        r = _saturate_convert_ir(builder, v, types.uint16, ir.IntType(16), True, 65535.0)
        if exact:
            _store_lanes(builder, out, d, r, 3)
        else:
            _store_vector(builder, out, d, r)
        return context.get_dummy_value()
    return sig, codegen


def bilinear_pixel_lanes(src, off, row, cc, fx, fy, dst, d):
    """Write the interior bilinear pixel at top-left tap ``off`` (fractions ``fx``, ``fy``) to
    ``dst[d : d + cc]`` with its channels in vector lanes (:func:`_bilinear_u16_put`) and return True, for a
    uint16 image of 3 or 4 channels; return False (nothing written) for other channel counts and dtypes.
    Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(bilinear_pixel_lanes, jit_options=OVERLOAD_OPTIONS)
def _ov_bilinear_pixel_lanes(src, off, row, cc, fx, fy, dst, d):
    if src.dtype == types.uint16:
        def impl(src, off, row, cc, fx, fy, dst, d):
            if cc == 3:
                _bilinear_u16_put(src, off, row, fx, fy, dst, d, 3)
                return True
            if cc == 4:
                _bilinear_u16_put(src, off, row, fx, fy, dst, d, 4)
                return True
            return False
    else:
        def impl(src, off, row, cc, fx, fy, dst, d):
            return False
    return impl


def bilinear_channel_lanes(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """The pixels ``j_lo <= j < j_stop`` of an interior bilinear span of a 3- or 4-channel uint16 image, each
    pixel's channels in vector lanes (:func:`_bilinear_u16_put`); returns the first pixel left (``j_lo``
    for other channel counts and dtypes). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(bilinear_channel_lanes, jit_options=OVERLOAD_OPTIONS)
def _ov_bilinear_channel_lanes(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    if src.dtype == types.uint16:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
            if cc != 3 and cc != 4:
                return j_lo
            for j in range(j_lo, j_stop):
                bilinear_pixel_lanes(src, sbase + (yq >> 32) * row + (xq >> 32) * cc, row, cc, (xq & Q_MASK) * Q_INV,
                                     (yq & Q_MASK) * Q_INV, dst, dbase + j * cc)
                xq += dxq
                yq += dyq
            return j_stop
    else:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
            return j_lo
    return impl


@intrinsic
def _bilinear_f32_put_rgba(typingctx, src, off, row, fx, fy, dst, d):
    """The interior bilinear pixel of a 4-channel float32 image (top-left tap at flat index ``off``, row
    stride ``row``, float32 fractions ``fx``, ``fy``) written to ``dst[d : d + 4]``: :func:`_bil_f32_c`'s
    arithmetic, the four channels in the lanes of one float32 vector, each tap one 4-element load (nothing
    outside the pixel's taps is read)."""
    if not (isinstance(src, types.Array) and src.dtype == types.float32 and isinstance(dst, types.Array)
            and dst.dtype == types.float32):
        return None
    return types.void(src, types.intp, types.intp, types.float32, types.float32, dst, types.intp), _put_codegen(4)


@intrinsic
def _prefetch(typingctx, ary, index):
    """Hint the CPU to fetch the cache line of ``ary``'s flat element ``index`` (no effect on results)."""
    if not isinstance(ary, types.Array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])  # read, keep, data
        return context.get_dummy_value()
    return types.void(ary, types.intp), codegen


@intrinsic
def _copy3(typingctx, src, off, dst, d):
    """``dst[d : d + 3] = src[off : off + 3]`` as a two-element and a one-element copy."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[2])(context, builder, args[2]).data
        elt = data.type.pointee
        pair = ir.IntType(16 * elt.get_abi_size(context.target_data))  # two elements as one integer
        p_in = builder.gep(data, [args[1]])
        p_out = builder.gep(out, [args[3]])
        v = builder.load(builder.bitcast(p_in, pair.as_pointer()), align=1)
        builder.store(v, builder.bitcast(p_out, pair.as_pointer()), align=1)
        two = ir.Constant(args[1].type, 2)
        builder.store(builder.load(builder.gep(data, [builder.add(args[1], two)])),
                      builder.gep(out, [builder.add(args[3], two)]))
        return context.get_dummy_value()
    return types.void(src, types.intp, dst, types.intp), codegen


@intrinsic
def _copy4(typingctx, src, off, dst, d):
    """``dst[d : d + 4] = src[off : off + 4]`` as one vector load and one vector store (a 3-channel pixel
    and the next element: the caller makes sure both ends are inside, and writes that element again)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[2])(context, builder, args[2]).data
        vec = ir.VectorType(data.type.pointee, 4)
        _store_vector(builder, out, args[3],
                      builder.load(builder.bitcast(builder.gep(data, [args[1]]), vec.as_pointer()), align=1))
        return context.get_dummy_value()
    return types.void(src, types.intp, dst, types.intp), codegen


#: Pixels per gather of the nearest spans (:func:`_nearest_gather`).
GATHER = 16


#: Row strides (elements) up to which the block intrinsics take row index times stride as a product of
#: 32-bit values (:func:`_times_row`); their callers read wider rows pixel by pixel.
ROW32 = (1 << 31) - 1


def _times_row(builder, r, row):
    """``r * row`` in int64 lanes for row indices ``r`` (lanes within 32 bits: coordinates stay below
    Q_LIMIT) and a stride ``row <= ROW32``: the product of two sign-extended 32-bit values, which AVX2
    computes with one multiply per four lanes (a full 64-bit lane product takes three); the same value."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    narrow = ir.VectorType(i32, r.type.count)
    return builder.mul(builder.sext(builder.trunc(r, narrow), r.type),
                       _splat(builder, r.type, builder.sext(builder.trunc(row, i32), i64)))


def _nearest_block_ir(builder, sbase, row, xq, yq, dxq, dyq, margin, cc=3):
    """IR shared by the nearest block intrinsics: the flat offsets (``sbase + ry row + cc rx``, a vector of
    :data:`GATHER` int64) of pixels ``k = 0 .. GATHER-1`` at the 32.32 coordinates ``(xq + k dxq, yq + k dyq)``
    rounded with integer arithmetic, and the bit mask (int64) of those whose fraction lies within
    ``margin`` of one half (:func:`_nearest_q` rounds those with the float coordinate)."""
    i64, n = ir.IntType(64), GATHER
    vec = ir.VectorType(i64, n)

    def splat(x):
        return _splat(builder, vec, x)

    def const(x):
        return ir.Constant(vec, [ir.Constant(i64, x)] * n)

    steps = ir.Constant(vec, [ir.Constant(i64, k) for k in range(n)])
    xs = builder.add(splat(xq), builder.mul(splat(dxq), steps))
    ys = builder.add(splat(yq), builder.mul(splat(dyq), steps))
    twice = splat(builder.add(margin, margin))

    def near_half(q):  # as _nearest_q: unsigned((q & Q_MASK) - Q_HALF + margin) <= 2 margin
        return builder.icmp_unsigned("<=", builder.add(builder.sub(builder.and_(q, const(Q_MASK)), const(Q_HALF)),
                                                       splat(margin)), twice)

    rx = builder.ashr(builder.add(xs, const(Q_HALF)), const(32))
    ry = builder.ashr(builder.add(ys, const(Q_HALF)), const(32))
    off = builder.add(splat(sbase), builder.add(_times_row(builder, ry, row), builder.mul(rx, const(cc))))
    near = builder.zext(builder.bitcast(builder.or_(near_half(xs), near_half(ys)), ir.IntType(n)), i64)
    return off, near


def _gather_ir(builder, base, byte_offs, elt, align):
    """One ``llvm.masked.gather`` of ``elt`` values at the byte offsets ``byte_offs`` (a vector of int64)
    from the address ``base`` (int64), every lane on."""
    i1, i32, n = ir.IntType(1), ir.IntType(32), byte_offs.type.count
    vec = ir.VectorType(elt, n)
    ptrs = builder.inttoptr(builder.add(_splat(builder, byte_offs.type, base), byte_offs),
                            ir.VectorType(elt.as_pointer(), n))
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [ptrs.type, i32, ir.VectorType(i1, n), vec]),
        f"llvm.masked.gather.v{n}i{elt.width}.v{n}p0i{elt.width}")
    every = ir.Constant(ir.VectorType(i1, n), [ir.Constant(i1, 1)] * n)
    return builder.call(fn, [ptrs, ir.Constant(i32, align), every, ir.Constant(vec, ir.Undefined)])


@intrinsic
def _nearest_gather(typingctx, src, sbase, row, xq, yq, dxq, dyq, margin, dst, d, cc):
    """:data:`GATHER` consecutive pixels of a ``cc``-channel nearest span (``cc`` a constant 1, 3 or 4;
    pixel ``k`` at the 32.32 coordinate ``(xq + k dxq, yq + k dyq)``, rounded as :func:`_nearest_q` rounds
    it) gathered and written to ``dst[d : d + cc GATHER]`` as one vector. Returns the bit mask of the
    pixels whose fraction lies within ``margin`` of one half (written with integer rounding here; the
    caller must round their float coordinates and write them again), or -1 when nothing was written.

    Each pixel is read as whole words of at least 32 bits: one per pixel (uint8 with 1, 3 or 4 channels,
    uint16 with 1 or 4, float32 with 1), the first two channels as one word and the third as another
    (uint16 and float32 with 3), or two 64-bit words (float32 with 4). Where a word holds more than the
    pixel (uint8 with 1 or 3 channels, uint16 with 1), nothing is written when one would read past
    ``src``'s end. Other dtypes are not accepted (:func:`span_nearest` copies their pixels one by one)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.uint8, types.uint16, types.float32)
            and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (1, 3, 4)):
        return None
    channels = cc.literal_value
    sig = types.int64(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, types.int64,
                      dst, types.intp, cc)
    width = 8 * np.dtype(str(src.dtype)).itemsize

    def codegen(context, builder, sig, args):
        source = context.make_array(sig.args[0])(context, builder, args[0])
        out = context.make_array(sig.args[8])(context, builder, args[8]).data
        d = args[9]
        i64, i32, n = ir.IntType(64), ir.IntType(32), GATHER
        off, near = _nearest_block_ir(builder, *args[1:8], cc=channels)
        base = builder.ptrtoint(source.data, i64)
        elt = ir.IntType(width)
        nbytes = ir.Constant(off.type, [ir.Constant(i64, width // 8)] * n)
        at = builder.mul(off, nbytes)  # byte offsets

        def picked(v, lanes):  # the lanes of v in this order, as one vector
            return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, len(lanes)), lanes))

        # one word per pixel: (word bits, elements of the word that are the pixel's)
        word = {(8, 1): 32, (8, 3): 32, (8, 4): 32, (16, 1): 32, (16, 4): 64, (32, 1): 32}.get((width, channels))
        reads = (word or 0) // width  # elements a word reads from the pixel's first
        if reads > channels:  # the word reads past the pixel: only where it stays inside src
            size = builder.extract_value(source.shape, 0)
            past = builder.icmp_signed(">", off, _splat(builder, off.type,
                                                        builder.sub(size, ir.Constant(i64, reads))))
            ok = builder.icmp_unsigned("==", builder.bitcast(past, ir.IntType(n)), ir.Constant(ir.IntType(n), 0))
        else:
            ok = ir.Constant(ir.IntType(1), 1)
        with builder.if_then(ok, likely=True):
            if word:
                got = builder.bitcast(_gather_ir(builder, base, at, ir.IntType(word), width // 8),
                                      ir.VectorType(elt, reads * n))
                pixels = picked(got, [reads * k + c for k in range(n) for c in range(channels)])
            elif channels == 3:  # the first two channels as one word, the third as another
                pairs = builder.bitcast(_gather_ir(builder, base, at, ir.IntType(2 * width), width // 8),
                                        ir.VectorType(elt, 2 * n))
                thirds = picked(_gather_ir(builder, base, builder.add(at, builder.add(nbytes, nbytes)), elt,
                                           width // 8), list(range(n)) * 2)
                pixels = builder.shuffle_vector(pairs, thirds, ir.Constant(
                    ir.VectorType(i32, 3 * n), [v for k in range(n) for v in (2 * k, 2 * k + 1, 2 * n + k)]))
            else:  # float32, 4 channels: two 64-bit words
                half = builder.add(at, ir.Constant(off.type, [ir.Constant(i64, 8)] * n))
                lo = builder.bitcast(_gather_ir(builder, base, at, i64, 4), ir.VectorType(elt, 2 * n))
                hi = builder.bitcast(_gather_ir(builder, base, half, i64, 4), ir.VectorType(elt, 2 * n))
                pixels = builder.shuffle_vector(lo, hi, ir.Constant(
                    ir.VectorType(i32, 4 * n),
                    [v for k in range(n) for v in (2 * k, 2 * k + 1, 2 * n + 2 * k, 2 * n + 2 * k + 1)]))
            builder.store(pixels, builder.bitcast(builder.gep(out, [d]), pixels.type.as_pointer()), align=1)
        return builder.select(ok, near, ir.Constant(i64, -1))
    return sig, codegen


def _to16_ir(builder, q):
    """A 32.32 value (int64) rounded to 16.16, as int32."""
    i64 = ir.IntType(64)
    return builder.trunc(builder.ashr(builder.add(q, ir.Constant(i64, 1 << 15)), ir.Constant(i64, 16)), ir.IntType(32))


def _coords32_ir(builder, q, dq, n):
    """The 32.32 coordinates ``q + k dq`` (``k = 0 .. n-1``) as two vectors of ``n`` int32: their integer parts
    and the low 32 bits of their fractions, both exact. The fractions are the low halves of ``q`` and ``dq``
    in 32-bit arithmetic. The integer part comes from the 16.16 value (start and step rounded to 16.16,
    within ``(k + 1) / 2`` units of ``2**-16`` of the exact value) less the fraction's top 16 bits: that is
    within ``(k + 3) / 2`` units of the integer part times 2**16, which rounding to 16 bits gives exactly.
    The caller keeps the coordinates within :data:`Q16_PIXELS` px."""
    i32 = ir.IntType(32)
    vec = ir.VectorType(i32, n)
    steps = ir.Constant(vec, [ir.Constant(i32, k) for k in range(n)])

    def const(x):
        return ir.Constant(vec, [ir.Constant(i32, x)] * n)

    def ramp(start, step):  # start + k step in each lane, modulo 2**32
        return builder.add(_splat(builder, vec, start), builder.mul(_splat(builder, vec, step), steps))

    frac = ramp(builder.trunc(q, i32), builder.trunc(dq, i32))
    approx = ramp(_to16_ir(builder, q), _to16_ir(builder, dq))
    whole = builder.ashr(builder.add(builder.sub(approx, builder.lshr(frac, const(16))), const(1 << 15)), const(16))
    return whole, frac


def _avx2_gather_ir(builder, base, idx, elt, scale):
    """``base[idx[k] scale]``: words of ``elt`` (int32 or int64) at the byte offsets ``idx[k] scale`` (``idx``
    a vector of 8 int32 for int32 words, 4 for int64) with the AVX2 gather instruction
    (``llvm.masked.gather`` is split into scalar loads on some AVX2 targets)."""
    i8 = ir.IntType(8)
    n = idx.type.count
    words = ir.VectorType(elt, n)
    name = "llvm.x86.avx2.gather.d.d.256" if elt.width == 32 else "llvm.x86.avx2.gather.d.q.256"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(words, [words, i8.as_pointer(), idx.type,
                                                                                words, i8]), name)
    every = ir.Constant(words, [ir.Constant(elt, -1)] * n)
    return builder.call(fn, [ir.Constant(words, [ir.Constant(elt, 0)] * n), base, idx, every, ir.Constant(i8, scale)])


#: Whether float32 one-channel bilinear blocks gather their taps with AVX-512 (:func:`_wide_f32_gathers`).
WIDE_F32_GATHERS_ALLOWED = True


def _wide_f32_gathers(context) -> bool:
    """Whether :func:`_grey_lanes_ir` gathers a float32 block's tap pairs (64-bit words) as two 512-bit gathers
    of eight, where the target has AVX-512F, instead of four AVX2 gathers of four: the same words, so the same
    bits. On an Intel Xeon with AVX-512, one thread, 1280x907 rotated 0.3°: 1.17-1.19 ns a pixel against
    1.29-1.34 (alternated builds). The 32-bit words of uint8 and uint16 blocks were slower that way (1.35
    against 1.17-1.19, 1.76-1.78 against 1.69-1.70) and stay with AVX2 gathers."""
    return WIDE_F32_GATHERS_ALLOWED and "avx512f" in _target_features(context)


def _grey32_ir(builder, dt, data, size, sbase, row, xq, yq, dxq, dyq, out, d, wide=False):
    """:func:`_bilinear_grey_block` on AVX2 targets: the coordinates exact in 32-bit lanes
    (:func:`_coords32_ir`), each row's two taps gathered as one word per pixel by the AVX2 gather
    instruction (float32 with ``wide``: AVX-512's, :func:`_wide_f32_gathers`), and the block's arithmetic
    as :func:`_bilinear_grey_block` describes it, except uint8's, which is :func:`_bil_int_c`'s in 32-bit
    integer lanes (the column sum split at bit 15, as :func:`_bilinear_u8_pair_ir`). ``dt``: the dtype
    (uint8, uint16 or float32). Returns the i1 "written": false, having written nothing, where the block's
    coordinates lie beyond :data:`Q16_PIXELS` px, a row has more than 2**16 pixels, or a read would pass
    ``src``'s end."""
    i1, i8, i32, i64, n = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64), GATHER
    vec = ir.VectorType(i32, n)
    width = {types.uint8: 1, types.uint16: 2, types.float32: 4}[dt]

    def small(q):  # |q| below Q16_PIXELS px
        neg = builder.icmp_signed("<", q, ir.Constant(i64, 0))
        mag = builder.select(neg, builder.neg(q), q)
        return builder.icmp_signed("<", mag, ir.Constant(i64, Q16_PIXELS << 32))

    last = ir.Constant(i64, n - 1)
    ok = builder.and_(builder.and_(small(xq), small(builder.add(xq, builder.mul(dxq, last)))),
                      builder.and_(small(yq), small(builder.add(yq, builder.mul(dyq, last)))))
    ok = builder.and_(ok, builder.icmp_signed("<", row, ir.Constant(i64, 1 << 16)))
    written = cgutils.alloca_once_value(builder, ir.Constant(i1, 0))
    with builder.if_then(ok, likely=True):
        ix, fx = _coords32_ir(builder, xq, dxq, n)
        iy, fy = _coords32_ir(builder, yq, dyq, n)
        row32 = builder.trunc(row, i32)
        off = builder.add(builder.mul(iy, _splat(builder, vec, row32)), ix)
        # each row's read stays inside src: off <= size - sbase - row - reads (clamped to int32)
        reads = 4 if width == 1 else 2
        room = builder.sub(builder.sub(builder.sub(size, sbase), row), ir.Constant(i64, reads))
        room = builder.select(builder.icmp_signed(">", room, ir.Constant(i64, (1 << 29) - 1)),
                              ir.Constant(i64, (1 << 29) - 1), room)
        room = builder.select(builder.icmp_signed("<", room, ir.Constant(i64, -1)), ir.Constant(i64, -1), room)
        past = builder.icmp_signed(">", off, _splat(builder, vec, builder.trunc(room, i32)))
        inside = builder.icmp_unsigned("==", builder.bitcast(past, ir.IntType(n)), ir.Constant(ir.IntType(n), 0))
        with builder.if_then(inside, likely=True):
            base = builder.bitcast(builder.gep(data, [sbase]), i8.as_pointer())
            _grey_lanes_ir(builder, dt, base, off, row32, fx, fy, out, d, wide)
            builder.store(ir.Constant(i1, 1), written)
    return builder.load(written)


def _grey_lanes_ir(builder, dt, base, off, row32, fx, fy, out, d, wide=False):
    """The gathers and arithmetic of :func:`_grey32_ir` for :data:`GATHER` pixels whose top-left taps lie at
    the element offsets ``off`` (int32 lanes) from ``base`` (a byte pointer), with the fractions' 32 bits
    ``fx``, ``fy`` (int32 lanes) and row stride ``row32`` (int32), written to ``out[d : d + GATHER]``; the
    caller makes sure every read stays inside the array. ``wide``: float32's taps by AVX-512 gathers."""
    i8, i32, i64, n = ir.IntType(8), ir.IntType(32), ir.IntType(64), GATHER
    f32, f64 = ir.FloatType(), ir.DoubleType()
    vec = ir.VectorType(i32, n)
    vf32, vf64 = ir.VectorType(f32, n), ir.VectorType(f64, n)
    width = {types.uint8: 1, types.uint16: 2, types.float32: 4}[dt]

    def const(x, v=vec, elt=i32):
        return ir.Constant(v, [ir.Constant(elt, x)] * n)

    below = builder.add(off, _splat(builder, vec, row32))

    def lanes(v, first, count):
        return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, count),
                                                        [ir.Constant(i32, first + k) for k in range(count)]))

    def joined(parts):  # vectors of equal length, end to end
        while len(parts) > 1:
            m = parts[0].type.count
            parts = [builder.shuffle_vector(parts[k], parts[k + 1], ir.Constant(
                ir.VectorType(i32, 2 * m), [ir.Constant(i32, e) for e in range(2 * m)]))
                for k in range(0, len(parts), 2)]
        return parts[0]

    def words32(at):  # the 32-bit word at each offset (times the element size), as 16 int32
        return joined([_avx2_gather_ir(builder, base, lanes(at, h, 8), i32, width) for h in (0, 8)])

    if width == 1:
        def w15(f):  # ((f + 2**16) >> 17) of the unsigned fraction, in 32 bits: ((f >> 1) + 2**15) >> 16
            return builder.lshr(builder.add(builder.lshr(f, const(1)), const(1 << 15)), const(16))

        wx, wy = w15(fx), w15(fy)

        def lerp_x(w):  # (a << 15) + (b - a) wx of the word's first two bytes a, b
            a = builder.and_(w, const(255))
            b = builder.and_(builder.lshr(w, const(8)), const(255))
            return builder.add(builder.shl(a, const(15)), builder.mul(builder.sub(b, a), wx))

        r = _column_sum32_ir(builder, lerp_x(words32(off)), lerp_x(words32(below)), wy)
        pixels = builder.trunc(r, ir.VectorType(i8, n))
    else:
        def fraction(f):  # (q & Q_MASK) * Q_INV, from the fraction's 32 bits
            return builder.fmul(builder.uitofp(f, vf64), const(Q_INV, vf64, f64))

        if width == 2:  # uint16: float64, as _bil_float_c, then _store's rounding and saturation
            def taps(at):
                w = words32(at)
                return [builder.uitofp(builder.and_(w, const(65535)), vf64),
                        builder.uitofp(builder.lshr(w, const(16)), vf64)]

            gx, gy = fraction(fx), fraction(fy)
            one = const(1.0, vf64, f64)
            hx, hy = builder.fsub(one, gx), builder.fsub(one, gy)
            (a, b), (c, e) = taps(off), taps(below)
            v = builder.fadd(builder.fmul(a, builder.fmul(hx, hy)), builder.fmul(b, builder.fmul(gx, hy)))
            v = builder.fadd(v, builder.fmul(c, builder.fmul(hx, gy)))
            v = builder.fadd(v, builder.fmul(e, builder.fmul(gx, gy)))
            pixels = _saturate_convert_ir(builder, v, types.uint16, ir.IntType(16), True, 65535.0)
        else:  # float32: both taps as one 64-bit word, as _bil_f32_c
            def taps(at):
                if wide:  # two 512-bit gathers of eight 64-bit words (:func:`_wide_f32_gathers`)
                    at64 = builder.mul(builder.sext(at, ir.VectorType(i64, n)), _vconst(i64, [4] * n))
                    words = _gather_ir(builder, builder.ptrtoint(base, i64), at64, i64, 4)
                else:
                    words = joined([_avx2_gather_ir(builder, base, lanes(at, h, 4), i64, 4) for h in range(0, n, 4)])
                pairs = builder.bitcast(words, ir.VectorType(f32, 2 * n))
                return [builder.shuffle_vector(pairs, pairs, ir.Constant(
                    ir.VectorType(i32, n), [ir.Constant(i32, 2 * k + e) for k in range(n)])) for e in (0, 1)]

            def fraction32(f):  # float32((q & Q_MASK) * Q_INV) == float32(f) * 2**-32 (exact scaling)
                return builder.fmul(builder.uitofp(f, vf32), const(2.0 ** -32, vf32, f32))

            gx, gy = fraction32(fx), fraction32(fy)
            pixels = _f32_bilinear_lanes_ir(builder, *taps(off), *taps(below), gx, gy)
    _store_vector(builder, out, d, pixels)


@intrinsic
def _bilinear_grey_block(typingctx, src, sbase, row, xq, yq, dxq, dyq, dst, d):
    """:data:`GATHER` consecutive pixels of an interior 1-channel bilinear span (pixel ``k`` at the 32.32
    coordinate ``(xq + k dxq, yq + k dyq)``) written to ``dst[d : d + GATHER]`` as one vector, the pixels in
    the lanes of each operation. Returns False, having written nothing, when a read would pass ``src``'s
    end (uint8 reads 4 bytes for its 2-tap pairs).

    Each row's two taps come from one gather (float32: both taps as one 64-bit word; uint16: as one 32-bit
    word; uint8: a 32-bit word holding them). The arithmetic is the scalar loop's, lane by lane: uint16 as
    :func:`_bil_float_c` in float64, rounded and saturated as :func:`_store`; float32 as :func:`_bil_f32_c` with
    the fractions rounded to float32 as :func:`_span_bil_f32_1` rounds them; uint8 as :func:`_bil_int_c`,
    ``t = (a << 15) + (b - a) fx`` in float32, where every value is an integer below 2**24 and so exact,
    and ``((t << 15) + (u - t) fy + 2**29) >> 30`` in float64, exact below 2**39, the shift a
    multiplication by 2**-30 truncated (the sum is never negative)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.uint8, types.uint16, types.float32)):
        return None
    sig = types.boolean(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, dst,
                        types.intp)
    is_u8 = src.dtype == types.uint8
    is_u16 = src.dtype == types.uint16

    def codegen(context, builder, sig, args):
        source = context.make_array(sig.args[0])(context, builder, args[0])
        out = context.make_array(sig.args[7])(context, builder, args[7]).data
        sbase, row, xq, yq, dxq, dyq, _, d = args[1:]
        if "avx2" in _target_features(context):
            return _grey32_ir(builder, sig.args[0].dtype, source.data, builder.extract_value(source.shape, 0), sbase,
                              row, xq, yq, dxq, dyq, out, d, _wide_f32_gathers(context))
        i32, i64, n = ir.IntType(32), ir.IntType(64), GATHER
        f32, f64 = ir.FloatType(), ir.DoubleType()
        v64, vf32, vf64 = ir.VectorType(i64, n), ir.VectorType(f32, n), ir.VectorType(f64, n)

        def splat(x, vec=v64):
            return _splat(builder, vec, x)

        def const(x, vec=v64, elt=i64):
            return ir.Constant(vec, [ir.Constant(elt, x)] * n)

        steps = ir.Constant(v64, [ir.Constant(i64, k) for k in range(n)])
        xs = builder.add(splat(xq), builder.mul(splat(dxq), steps))
        ys = builder.add(splat(yq), builder.mul(splat(dyq), steps))
        off = builder.add(splat(sbase), builder.add(_times_row(builder, builder.ashr(ys, const(32)), row),
                                                    builder.ashr(xs, const(32))))
        size = builder.extract_value(source.shape, 0)
        reads = 4 if is_u8 else 2  # elements read from each row's left tap (uint16: a 32-bit word)
        past = builder.icmp_signed(">", off, splat(builder.sub(builder.sub(size, row), ir.Constant(i64, reads))))
        ok = builder.icmp_unsigned("==", builder.bitcast(past, ir.IntType(n)), ir.Constant(ir.IntType(n), 0))
        with builder.if_then(ok, likely=True):
            base = builder.ptrtoint(source.data, i64)
            if is_u8:
                def weight(q):  # _w15, exact in float32
                    w = builder.lshr(builder.add(builder.and_(q, const(Q_MASK)), const(65536)), const(17))
                    return builder.sitofp(w, vf32)

                def taps(at):  # the row's left and right taps
                    words = builder.bitcast(_gather_ir(builder, base, at, i32, 1), ir.VectorType(ir.IntType(8), 4 * n))
                    return [builder.uitofp(builder.shuffle_vector(words, words, ir.Constant(
                        ir.VectorType(i32, n), [4 * k + e for k in range(n)])), vf32) for e in (0, 1)]

                def lerp_x(a, b):  # (a << 15) + (b - a) fx
                    return builder.fadd(builder.fmul(a, const(32768.0, vf32, f32)), builder.fmul(builder.fsub(b, a), fx))

                fx, fy = weight(xs), weight(ys)
                t = lerp_x(*taps(off))
                u = lerp_x(*taps(builder.add(off, splat(row))))
                v = builder.fadd(builder.fadd(builder.fmul(builder.fpext(t, vf64), const(32768.0, vf64, f64)),
                                              const(536870912.0, vf64, f64)),
                                 builder.fmul(builder.fpext(builder.fsub(u, t), vf64), builder.fpext(fy, vf64)))
                pixels = builder.fptoui(builder.fmul(v, const(2.0 ** -30, vf64, f64)), ir.VectorType(ir.IntType(8), n))
            elif is_u16:  # float64, as _bil_float_c, then _store's rounding and saturation
                def fraction(q):  # (q & Q_MASK) * Q_INV
                    return builder.fmul(builder.sitofp(builder.and_(q, const(Q_MASK)), vf64), const(Q_INV, vf64, f64))

                def taps(at):
                    words = builder.bitcast(_gather_ir(builder, base, builder.mul(at, const(2)), i32, 2),
                                            ir.VectorType(ir.IntType(16), 2 * n))
                    return [builder.uitofp(builder.shuffle_vector(words, words, ir.Constant(
                        ir.VectorType(i32, n), [2 * k + e for k in range(n)])), vf64) for e in (0, 1)]

                fx, fy = fraction(xs), fraction(ys)
                one = const(1.0, vf64, f64)
                gx, gy = builder.fsub(one, fx), builder.fsub(one, fy)
                (a, b), (c, e) = taps(off), taps(builder.add(off, splat(row)))
                v = builder.fadd(builder.fmul(a, builder.fmul(gx, gy)), builder.fmul(b, builder.fmul(fx, gy)))
                v = builder.fadd(v, builder.fmul(c, builder.fmul(gx, fy)))
                v = builder.fadd(v, builder.fmul(e, builder.fmul(fx, fy)))
                pixels = _saturate_convert_ir(builder, v, types.uint16, ir.IntType(16), True, 65535.0)
            else:
                def fraction(q):  # float32((q & Q_MASK) * Q_INV)
                    return builder.fptrunc(builder.fmul(builder.sitofp(builder.and_(q, const(Q_MASK)), vf64),
                                                        const(Q_INV, vf64, f64)), vf32)

                def taps(at):
                    pairs = builder.bitcast(_gather_ir(builder, base, builder.mul(at, const(4)), i64, 4),
                                            ir.VectorType(f32, 2 * n))
                    return [builder.shuffle_vector(pairs, pairs, ir.Constant(
                        ir.VectorType(i32, n), [2 * k + e for k in range(n)])) for e in (0, 1)]

                def lerp(a, b, f):  # a + (b - a) f
                    return builder.fadd(a, builder.fmul(builder.fsub(b, a), f))

                gx, gy = fraction(xs), fraction(ys)
                t = lerp(*taps(off), gx)
                u = lerp(*taps(builder.add(off, splat(row))), gx)
                pixels = lerp(t, u, gy)
            _store_vector(builder, out, d, pixels)
        return ok
    return sig, codegen


@intrinsic
def _bicubic_grey_block(typingctx, src, sbase, row, xq, yq, dxq, dyq, dst, d):
    """:data:`GATHER` consecutive pixels of an interior 1-channel bicubic span (pixel ``k`` at the 32.32
    coordinate ``(xq + k dxq, yq + k dyq)``) written to ``dst[d : d + GATHER]`` as one vector, the pixels in
    the lanes of each operation: the arithmetic of :func:`_bicubic_channels_f64` (uint8, uint16: float64,
    rounded and saturated as :func:`_store`) or :func:`_bicubic_channels_f32` (float32: float32 with the
    weights rounded to float32), operation by operation, so every lane has the scalar loop's bits. Each of
    the four rows' four taps is one gathered word (uint8: 32 bits, uint16: 64) or two (float32: 2 x 64
    bits); nothing outside the taps is read, so it always writes them and returns True (as
    :func:`_bilinear_grey_block` returns whether it wrote)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.uint8, types.uint16, types.float32)):
        return None
    sig = types.boolean(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, dst,
                        types.intp)
    width = 8 * np.dtype(str(src.dtype)).itemsize
    maxv = {8: 255.0, 16: 65535.0}.get(width)

    def codegen(context, builder, sig, args):
        source = context.make_array(sig.args[0])(context, builder, args[0])
        out = context.make_array(sig.args[7])(context, builder, args[7]).data
        sbase, row, xq, yq, dxq, dyq, _, d = args[1:]
        i32, i64, n = ir.IntType(32), ir.IntType(64), GATHER
        f64 = ir.DoubleType()
        v64, vf64 = ir.VectorType(i64, n), ir.VectorType(f64, n)
        real = ir.FloatType() if width == 32 else f64  # the arithmetic
        vr = ir.VectorType(real, n)
        elt = ir.IntType(width)

        def splat(x, vec=v64):
            return _splat(builder, vec, x)

        def const(x, vec=v64, e=i64):
            return ir.Constant(vec, [ir.Constant(e, x)] * n)

        def fconst(x, vec=vf64):
            return ir.Constant(vec, [ir.Constant(vec.element, x)] * n)

        steps = ir.Constant(v64, [ir.Constant(i64, k) for k in range(n)])
        xs = builder.add(splat(xq), builder.mul(splat(dxq), steps))
        ys = builder.add(splat(yq), builder.mul(splat(dyq), steps))
        top_left = builder.add(splat(sbase), builder.add(
            _times_row(builder, builder.sub(builder.ashr(ys, const(32)), const(1)), row),
            builder.sub(builder.ashr(xs, const(32)), const(1))))
        at = builder.mul(top_left, const(width // 8))  # byte offsets
        base = builder.ptrtoint(source.data, i64)

        def weights(q):  # _scalar.cubic_weights((q & Q_MASK) * Q_INV), in the arithmetic's type
            t = builder.fmul(builder.sitofp(builder.and_(q, const(Q_MASK)), vf64), fconst(Q_INV))
            a = _scalar.CUBIC_A

            def near(x):  # ((A + 2) x - (A + 3)) x x + 1
                v = builder.fsub(builder.fmul(fconst(a + 2.0), x), fconst(a + 3.0))
                return builder.fadd(builder.fmul(builder.fmul(v, x), x), fconst(1.0))

            def far(x):  # ((A x - 5A) x + 8A) x - 4A
                v = builder.fsub(builder.fmul(fconst(a), x), fconst(5.0 * a))
                v = builder.fadd(builder.fmul(v, x), fconst(8.0 * a))
                return builder.fsub(builder.fmul(v, x), fconst(4.0 * a))

            w = [far(builder.fadd(t, fconst(1.0))), near(t), near(builder.fsub(fconst(1.0), t)),
                 far(builder.fsub(fconst(2.0), t))]
            return [builder.fptrunc(v, vr) for v in w] if width == 32 else w

        wx, wy = weights(xs), weights(ys)

        def row_taps(byte_at):  # the four taps of a row, each a vector over the pixels, in the arithmetic's type
            if width == 32:
                words = [_gather_ir(builder, base, byte_at, i64, 4),
                         _gather_ir(builder, base, builder.add(byte_at, const(8)), i64, 4)]
                halves = [builder.bitcast(w, ir.VectorType(real, 2 * n)) for w in words]
                return [builder.shuffle_vector(halves[e // 2], halves[e // 2], ir.Constant(
                    ir.VectorType(i32, n), [2 * k + e % 2 for k in range(n)])) for e in range(4)]
            got = builder.bitcast(_gather_ir(builder, base, byte_at, ir.IntType(4 * width), width // 8),
                                  ir.VectorType(elt, 4 * n))
            return [builder.uitofp(builder.shuffle_vector(got, got, ir.Constant(
                ir.VectorType(i32, n), [4 * k + e for k in range(n)])), vr) for e in range(4)]

        def dot(v, w):  # ((v0 w0 + v1 w1) + v2 w2) + v3 w3
            acc = builder.fadd(builder.fmul(v[0], w[0]), builder.fmul(v[1], w[1]))
            acc = builder.fadd(acc, builder.fmul(v[2], w[2]))
            return builder.fadd(acc, builder.fmul(v[3], w[3]))

        row_bytes = builder.mul(splat(row), const(width // 8))
        rows = []
        for r in range(4):
            rows.append(dot(row_taps(at), wx))
            at = builder.add(at, row_bytes)
        v = dot(rows, wy)
        if maxv is not None:  # _store: v + 0.5 saturated to [0, maxv] (NaN gives 0), truncated
            v = _saturate_convert_ir(builder, v, src.dtype, elt, True, maxv)
        _store_vector(builder, out, d, v)
        return ir.Constant(ir.IntType(1), 1)  # always written: nothing outside the taps is read
    return sig, codegen


@intrinsic
def _lowest_bit(typingctx, mask):
    """The index of the lowest set bit of a nonzero int64 (``llvm.cttz``: one instruction)."""
    if not isinstance(mask, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64, ir.IntType(1)]),
                                            "llvm.cttz.i64")
        return builder.call(fn, [builder.sext(args[0], i64) if args[0].type.width < 64 else args[0],
                                 ir.Constant(ir.IntType(1), 1)])
    return types.int64(types.int64), codegen


#: 16.16 coordinates (:func:`_nearest_copy16`, :func:`_coords32_ir`) for pixels within this many pixels of
#: the origin (32-bit lanes hold them with room for the rounding constants).
Q16_PIXELS = (1 << 15) - 2
#: Lanes of each 16.16 offset vector of a nearest block (:func:`_nearest_copy16`): two per block, each near
#: mask one ``movmskps``.
NEAREST_LANES = 8


def _round16_ir(builder, q, dq, k):
    """Pixel ``k``'s rounded coordinate (int32) as :func:`_nearest16_ir` computes it in its lanes."""
    i32 = ir.IntType(32)
    v = builder.add(builder.add(_to16_ir(builder, q), ir.Constant(i32, 1 << 15)),
                    builder.mul(_to16_ir(builder, dq), ir.Constant(i32, k)))
    return builder.ashr(v, ir.Constant(i32, 16))


def _nearest16_ir(builder, row, xq, yq, dxq, dyq, m16, cc, first=0, n=GATHER, parts=False):
    """The offsets (``ry row + cc rx``, a vector of ``n`` int32) of pixels ``k = first .. first+n-1`` at the
    32.32 coordinates ``(xq + k dxq, yq + k dyq)``, rounded in 16.16 fixed point in 32-bit lanes, and the
    bit mask (int64) of those whose 16.16 fraction lies within ``m16`` units of ``2**-16`` px of one half
    (the caller writes them again); with ``parts``, the columns ``rx`` and rows ``ry`` instead of the
    offsets. The start and step rounded to 16.16 put pixel ``k``'s 16.16
    coordinate within ``(1 + k) / 2`` units of its 32.32 one, at most 8 for ``k < 16``
    (:func:`_span_nearest_copy` chooses ``m16``). The caller keeps the coordinates within
    :data:`Q16_PIXELS` px and the offsets below ``2**31``."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    vec = ir.VectorType(i32, n)

    def const(x):
        return ir.Constant(vec, [ir.Constant(i32, x)] * n)

    steps = ir.Constant(vec, [ir.Constant(i32, first + k) for k in range(n)])
    half = ir.Constant(i32, 1 << 15)  # added to the start: each 16.16 value plus one half

    def plus_half(q, dq):
        return builder.add(_splat(builder, vec, builder.add(_to16_ir(builder, q), half)),
                           builder.mul(_splat(builder, vec, _to16_ir(builder, dq)), steps))

    xs, ys = plus_half(xq, dxq), plus_half(yq, dyq)
    m = builder.trunc(m16, i32)
    m_vec = _splat(builder, vec, m)

    def frac(v):  # ((v + m) & 0xFFFF): at most 2 m where v's fraction (of the value plus one half) is within m of 0
        return builder.and_(builder.add(v, m_vec), const(0xFFFF))

    fx, fy = frac(xs), frac(ys)
    nearer = builder.select(builder.icmp_signed("<", fx, fy), fx, fy)
    rx = builder.ashr(xs, const(16))
    ry = builder.ashr(ys, const(16))
    bits = builder.icmp_signed("<=", nearer, _splat(builder, vec, builder.add(m, m)))
    near = builder.zext(builder.bitcast(bits, ir.IntType(n)), i64)
    if parts:
        return rx, ry, near
    off = builder.add(builder.mul(ry, _splat(builder, vec, builder.trunc(row, i32))), builder.mul(rx, const(cc)))
    return off, near


@intrinsic
def _nearest_copy16(typingctx, src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, cc):
    """:data:`GATHER` consecutive pixels of a ``cc``-channel nearest span (``cc`` a constant 1, 3 or 4) copied
    to ``dst[d : d + cc GATHER]`` one by one, their offsets from ``sbase`` computed as vectors of 16.16
    coordinates (:func:`_nearest16_ir`); returns the bit mask of the pixels within ``m16`` of one half, for
    the caller to write again. A 3-channel pixel but the block's last is read and written as four
    elements (the pixel and the next element, which the next pixel writes again: the caller makes sure
    the fourth element is inside the input); the last one as three, so the block writes nothing past its
    pixels."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (1, 3, 4)):
        return None
    channels = cc.literal_value
    moved = 1 if channels == 1 else 4  # elements each copy moves
    sig = types.int64(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, types.int64,
                      dst, types.intp, cc)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        out = context.make_array(sig.args[8])(context, builder, args[8]).data
        i32, i64 = ir.IntType(32), ir.IntType(64)
        base = builder.gep(data, [args[1]])
        elt = data.type.pointee
        near = ir.Constant(i64, 0)
        for k in range(GATHER):
            if k % NEAREST_LANES == 0:
                off, bits = _nearest16_ir(builder, *args[2:8], cc=channels, first=k, n=NEAREST_LANES)
                near = builder.or_(near, builder.shl(bits, ir.Constant(i64, k)))
            # zero-extended: the offsets are not negative, and a 32-bit extract has its upper half clear
            lane = builder.extract_element(off, ir.Constant(i32, k % NEAREST_LANES))
            at = builder.gep(base, [builder.zext(lane, i64)])
            to = builder.gep(out, [builder.add(args[9], ir.Constant(i64, channels * k))])
            if moved == 1:
                builder.store(builder.load(at), to)
            elif channels == 3 and k == GATHER - 1:  # two elements as one integer, then the third
                pair = ir.IntType(2 * elt.get_abi_size(context.target_data) * 8).as_pointer()
                builder.store(builder.load(builder.bitcast(at, pair), align=1), builder.bitcast(to, pair), align=1)
                two = ir.Constant(i64, 2)
                builder.store(builder.load(builder.gep(at, [two])), builder.gep(to, [two]))
            else:
                vec = ir.VectorType(elt, 4).as_pointer()
                builder.store(builder.load(builder.bitcast(at, vec), align=1), builder.bitcast(to, vec), align=1)
        return near
    return sig, codegen


#: Whether uint8 nearest spans may pick their pixels out of a few input rows with byte permutes where the
#: compile target has AVX-512 VBMI (:func:`_nearest_permute16`; tests turn it off to compare the two forms).
PERMUTES_ALLOWED = True
#: Input rows a permuted nearest block reads, 64 bytes of each, from its topmost pixel's row.
PERMUTE_ROWS = 4


def _has_vbmi(context) -> bool:
    """Whether ``context``'s target permutes bytes across 64-byte vectors (AVX-512 VBMI, with BW), read from
    the target machine's feature string as :func:`_has_ifma` reads it."""
    return PERMUTES_ALLOWED and {"avx512vbmi", "avx512bw"} <= _target_features(context)


@intrinsic
def _nearest_permute16(typingctx, src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, cc):
    """The pixels :func:`_nearest_copy16` writes, for uint8 images, picked out of the input with byte
    permutes: the block's rows and columns rounded as there (:func:`_nearest16_ir`), each pixel's bytes
    found in 64-byte windows of the :data:`PERMUTE_ROWS` input rows from the block's top row, starting at
    its leftmost column (two 128-byte permutes and a select), and stored at once. Returns the near mask as
    :func:`_nearest_copy16` does, or -1 having written nothing: where the block spans more rows or more
    than 64 bytes of a row, where the last window would pass ``src``'s end, for other dtypes, and where
    the compile target has no AVX-512 VBMI (:func:`_has_vbmi`; the caller then copies the block)."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and isinstance(cc, types.IntegerLiteral) and cc.literal_value in (1, 3, 4)):
        return None
    channels = cc.literal_value
    sig = types.int64(src, types.intp, types.intp, types.int64, types.int64, types.int64, types.int64, types.int64,
                      dst, types.intp, cc)

    def codegen(context, builder, sig, args):
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        none = ir.Constant(i64, -1)
        if sig.args[0].dtype != types.uint8 or not _has_vbmi(context):
            return none
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        data = ary.data
        out = context.make_array(sig.args[8])(context, builder, args[8]).data
        n, width = GATHER, 64
        rx, ry, near = _nearest16_ir(builder, *args[2:8], cc=channels, n=n, parts=True)
        # the rounded coordinates step monotonically: their extremes are the first and the last pixel's
        (x0, x1), (y0, y1) = ([_round16_ir(builder, args[q], args[q + 2], k) for k in (0, n - 1)] for q in (3, 4))

        def pick(op, a, b):
            return builder.select(builder.icmp_signed(op, a, b), a, b)

        top, bottom, left, right = pick("<", y0, y1), pick(">", y0, y1), pick("<", x0, x1), pick(">", x0, x1)
        row = args[2]
        corner = builder.add(args[1], builder.mul(builder.sext(left, i64), ir.Constant(i64, channels)))
        # the last window: the bottom row's (the windows of the rows below it are the bottom row's again)
        end = builder.add(builder.add(corner, builder.mul(builder.sext(bottom, i64), row)), ir.Constant(i64, width))
        ok = builder.and_(
            builder.and_(builder.icmp_signed("<", builder.sub(bottom, top), ir.Constant(i32, PERMUTE_ROWS)),
                         builder.icmp_signed("<=", builder.mul(builder.sub(right, left), ir.Constant(i32, channels)),
                                             ir.Constant(i32, width - channels))),
            builder.icmp_signed("<=", end, ary.nitems))
        result = cgutils.alloca_once_value(builder, none)
        with builder.if_then(ok, likely=True):
            vec = ir.VectorType(i32, n)
            local = builder.add(builder.mul(builder.sub(ry, _splat(builder, vec, top)), _splat(builder, vec,
                                                                                             ir.Constant(i32, width))),
                                builder.mul(builder.sub(rx, _splat(builder, vec, left)),
                                            _splat(builder, vec, ir.Constant(i32, channels))))
            local = builder.trunc(local, ir.VectorType(i8, n))
            used = n * channels
            bytes64 = ir.VectorType(i8, width)
            idx = builder.shuffle_vector(local, ir.Constant(local.type, ir.Undefined), ir.Constant(
                ir.VectorType(i32, width), [b // channels if b < used else 0 for b in range(width)]))
            idx = builder.add(idx, ir.Constant(bytes64, [b % channels if b < used else 0 for b in range(width)]))
            tables = []
            for k in range(PERMUTE_ROWS):  # rows below the bottom one read the bottom row again
                r = builder.add(top, ir.Constant(i32, k))
                r = builder.sext(builder.select(builder.icmp_signed("<", r, bottom), r, bottom), i64)
                at = builder.gep(data, [builder.add(corner, builder.mul(r, row))])
                tables.append(builder.load(builder.bitcast(at, bytes64.as_pointer()), align=1))
            perm = cgutils.get_or_insert_function(builder.module, ir.FunctionType(bytes64, [bytes64] * 3),
                                                  "llvm.x86.avx512.vpermi2var.qi.512")
            upper = builder.call(perm, [tables[0], idx, tables[1]])
            lower = builder.call(perm, [tables[2], idx, tables[3]])
            below = builder.icmp_unsigned(">=", idx, ir.Constant(bytes64, [128] * width))
            pixels = builder.select(below, lower, upper)
            to = builder.gep(out, [args[9]])
            done = 0
            for part in {1: (16,), 3: (32, 16), 4: (64,)}[channels]:  # whole stores of the block's bytes
                chunk = builder.shuffle_vector(pixels, ir.Constant(bytes64, ir.Undefined), ir.Constant(
                    ir.VectorType(i32, part), list(range(done, done + part))))
                at = builder.gep(to, [ir.Constant(i64, done)])
                builder.store(chunk, builder.bitcast(at, chunk.type.as_pointer()), align=1)
                done += part
            builder.store(near, result)
        return builder.load(result)
    return sig, codegen


#: Input images up to this many bytes are prefetched: the first one by the calling thread as a call
#: starts (:func:`_prefetch_first`), the next one of a batch while the rows of the current one are
#: sampled (:func:`_prefetch_next`). A warp reads its input along slanted lines, which the hardware
#: prefetchers do not follow, so an image that left the cache costs a memory round trip per line;
#: a linear pass of prefetches costs a few microseconds and brings it in at the memory's bandwidth.
#: Larger images would not stay in cache. (Affine warps that read ahead row by row, images over
#: :data:`PREFETCH_AHEAD_BYTES`, do not read the first image all at once.)
PREFETCH_MAX_BYTES = 1 << 20


@jit_device
def _prefetch_first(src, image_size, role):
    """The calling thread prefetches the call's first input image (flat, ``image_size`` elements)."""
    if role == CALLER and image_size * src.itemsize <= PREFETCH_MAX_BYTES:
        for p in range(0, min(image_size, src.size), max(1, 64 // src.itemsize)):
            _prefetch(src, p)


@jit_device
def _prefetch_next(src, n, n_img, image_size, i, ho):
    """While output row ``i`` of image ``n`` is sampled, prefetch the matching ``1/ho`` share of image
    ``n + 1``'s input (flat, ``image_size`` elements), so the next image is in cache when its rows start."""
    if n + 1 < n_img and image_size * src.itemsize <= PREFETCH_MAX_BYTES:
        share = (image_size + ho - 1) // ho
        p0 = (n + 1) * image_size + i * share
        p1 = min(p0 + share, (n + 2) * image_size)
        for p in range(p0, p1, max(1, 64 // src.itemsize)):
            _prefetch(src, p)


#: Images of more bytes than this are read ahead row by row (:func:`_prefetch_row`), by each thread a few of
#: its own rows ahead, instead of all at once by the calling thread as a call starts (:func:`_prefetch_first`).
#: The slanted lines a warp reads cross a new input row every few pixels, which the hardware prefetchers do
#: not follow, so an input that is not in cache costs a memory round trip per line; and a whole image read
#: ahead by one thread lands in that core's cache, where the other thread's rows have to fetch it from.
#: Larger than this, an image and its output do not stay in a core's cache together. On a 2-core AMD EPYC
#: (Zen 5), 512x512x3 uint8 bilinear, a loop over 32 images not in cache (in one process, the two ways
#: alternated): 200-214 us an image against 275 (two threads) and 365 against 580 (one thread); the same
#: image again and again, where it stays in cache, 185-190 against 175-177 (the prefetches' own cost).
#: Grey 512x512 uint8 and uint16 images (256 and 512 KB) stay under it. Affine nearest warps do not read
#: ahead: on the same EPYC, rotated 10 degrees on two threads, alternated builds, best of three,
#: 1024x1024x3 uint8 0.26-0.28 ms against 0.36 with the prefetches (top taps only: 0.35-0.36),
#: 2048x2048x3 uint8 1.19-1.31 against 1.49-1.57, 1024x1024x3 float32 0.46-0.60 against 0.62-0.65.
PREFETCH_AHEAD_BYTES = 512 << 10
#: How many output rows ahead :func:`_prefetch_row` reads, and every how many pixels of that row (a 64-byte
#: line holds 5 float32 or 21 uint8 3-channel pixels). On a 2-core Intel Xeon (Emerald Rapids), 2048x2048x3
#: uint8 rotated 10 degrees on two threads: 9-13 ms instead of 19-22 ms for 1-4 rows ahead and every 2-8
#: pixels; 1024x1024x3 float32 (12 MB) 3.4-3.8 ms instead of 9.5-10.5 ms. On the Zen 5 EPYC, every 8th pixel
#: against every 4th, alternated processes: 2048x2048x3 uint8 2.56-2.65 ms against 2.80-2.85, 1024x1024x3
#: float32 0.74-0.76 against 0.76-0.78.
PREFETCH_ROWS = 2
PREFETCH_EVERY = 8


@jit_device
def _prefetch_row(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop):
    """Prefetch the top and bottom taps of every :data:`PREFETCH_EVERY` th pixel ``j_lo <= j < j_stop`` of a
    row whose pixel ``j`` lies at the 32.32 coordinates ``(xq + j dxq, yq + j dyq)``; offsets outside ``src``
    are skipped (a hint: no effect on results)."""
    for j in range(j_lo, j_stop, PREFETCH_EVERY):
        p = sbase + ((yq + j * dyq) >> 32) * row + ((xq + j * dxq) >> 32) * cc
        if p >= 0 and p < src.size - row:
            _prefetch(src, p)
            _prefetch(src, p + row)


# --------------------------------------------------------------------------- interior span loops
# The interior loops live in small functions of their own: inside one large function LLVM
# optimizes them several times worse.

@jit_device
def _span_bil_u8_1(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    xq, yq, j_lo = grey_blocks(BILINEAR, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32)
        dst[np.uint64(dbase + j)] = _bil_int_c(src, off, off + row, 1, 0, _w15(xq), _w15(yq))
        xq += dxq
        yq += dyq


@jit_device
def _span_bil_u8_4(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """Blocks of eight pixels where the target has AVX2 (:func:`_bilinear_u8_run8`), then two pixels at a time
    (:func:`_bilinear_u8_put_pair`), the last one alone. (The same pair loop as :func:`_span_bil_u8_3`'s,
    written out in each: as one shared helper it cost 3% at 2048x2048x3.)"""
    j = j_lo
    if j_stop - j >= BLOCK8:
        done = _bilinear_u8_run8(src, sbase, row, xq, yq, dxq, dyq, (j_stop - j) // BLOCK8, dst, dbase + j * 4, 4)
        xq += done * dxq
        yq += done * dyq
        j += done
    while j + 1 < j_stop:
        off0 = sbase + (yq >> 32) * row + (xq >> 32) * 4
        x1 = xq + dxq
        y1 = yq + dyq
        off1 = sbase + (y1 >> 32) * row + (x1 >> 32) * 4
        _bilinear_u8_put_pair(src, off0, off1, row, _w15(xq), _w15(yq), _w15(x1), _w15(y1), dst, dbase + j * 4, 4)
        xq = x1 + dxq
        yq = y1 + dyq
        j += 2
    if j < j_stop:
        off = sbase + (yq >> 32) * row + (xq >> 32) * 4
        _bilinear_u8_put_rgba(src, off, row, _w15(xq), _w15(yq), dst, dbase + j * 4)


@jit_device
def _span_bil_f32_1(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    xq, yq, j_lo = grey_blocks(BILINEAR, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32)
        gx = _frac32(xq)
        gy = _frac32(yq)
        dst[np.uint64(dbase + j)] = _bil_f32_c(src, off, off + row, 1, 0, gx, gy)
        xq += dxq
        yq += dyq


@jit_device
def _span_bil_f32_4(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """Blocks of eight pixels where the target has AVX-512 (:func:`_bilinear_f32_run8`), the rest pixel by
    pixel (:func:`_bilinear_f32_put_rgba`)."""
    if j_stop - j_lo >= BLOCK8:
        done = _bilinear_f32_run8(src, sbase, row, xq, yq, dxq, dyq, (j_stop - j_lo) // BLOCK8, dst, dbase + j_lo * 4, 4)
        xq += done * dxq
        yq += done * dyq
        j_lo += done
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * 4
        gx = _frac32(xq)
        gy = _frac32(yq)
        _bilinear_f32_put_rgba(src, off, row, gx, gy, dst, dbase + j * 4)
        xq += dxq
        yq += dyq


def grey_blocks(mode, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """The whole blocks of :data:`GATHER` pixels of an interior 1-channel span of ``mode`` (a constant,
    BILINEAR or BICUBIC) from ``j_lo`` on, in vector lanes (:func:`_bilinear_grey_block`,
    :func:`_bicubic_grey_block`: uint8, uint16 and float32; none for float64) as far as they can be read;
    returns the coordinates and index of the first pixel left. Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(grey_blocks, prefer_literal=True, jit_options=OVERLOAD_OPTIONS)
def _ov_grey_blocks(mode, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    block = _bicubic_grey_block if _literal_mode(mode) == BICUBIC else _bilinear_grey_block
    if src.dtype in (types.uint8, types.uint16, types.float32):
        def impl(mode, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
            while j_lo + GATHER <= j_stop and row <= ROW32:
                if not block(src, sbase, row, xq, yq, dxq, dyq, dst, dbase + j_lo):
                    break
                xq += GATHER * dxq
                yq += GATHER * dyq
                j_lo += GATHER
            return xq, yq, j_lo
    else:
        def impl(mode, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
            return xq, yq, j_lo
    return impl


@jit_device
def _span_bil_f64(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv):
    """float64 arithmetic: float64 images, uint16 (rounded and saturated), and uncommon channel counts."""
    if cc == 1:  # whole blocks of uint16 pixels in vector lanes
        xq, yq, j_lo = grey_blocks(BILINEAR, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    elif cc == 3 or cc == 4:  # uint16: a pixel's channels in vector lanes
        j_lo = bilinear_channel_lanes(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * cc
        o2 = off + row
        fx = (xq & Q_MASK) * Q_INV
        fy = (yq & Q_MASK) * Q_INV
        d = dbase + j * cc
        for c in range(cc):
            _store(dst, d + c, _bil_float_c(src, off, o2, cc, c, fx, fy), is_int, maxv)
        xq += dxq
        yq += dyq


@jit_device
def _span_bil_u8_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """Each pixel but the span's last with 4-byte loads and 4-byte stores, where its taps are not the array's
    last bytes; the others with exact loads and stores. When no pixel of the span can reach those bytes
    (its offset is at most the one of its largest row and column), the loop checks nothing per pixel and
    takes two pixels at a time (:func:`_bilinear_u8_put_pair`: 8-10% less time a pixel than one at a time
    with :func:`_bilinear_u8_put4`, on an AMD EPYC without IFMA), after blocks of eight where the target has
    AVX2 and the 8-byte tap loads stay inside ``src`` (:func:`_bilinear_u8_run8`, :func:`_blocks8`): those
    run to the span's end, the last one overlapping the one before it (some pixels written twice, the same
    values; a Zen 5 EPYC, one thread: 8192x32x3 0.50-0.51 ms against 0.56, 512x512x3 the same)."""
    if j_stop <= j_lo:
        return
    wide = src.size - row - 6  # the offsets whose taps' 4-byte loads stay inside src
    last = j_stop - 1
    xe = xq + (last - j_lo) * dxq  # the last pixel's coordinates (exact: integer steps)
    ye = yq + (last - j_lo) * dyq
    top = sbase + (max(yq, ye) >> 32) * row + (max(xq, xe) >> 32) * 3  # no pixel's offset is larger
    if top < wide:
        j = j_lo
        if top < wide - 1:  # blocks to the span's end (they write nothing past their pixels)
            done = _bilinear_u8_run8(src, sbase, row, xq, yq, dxq, dyq, (j_stop - j) // BLOCK8, dst, dbase + j * 3, 3)
            xq += done * dxq
            yq += done * dyq
            j += done
            if done > 0 and j < j_stop:  # one more block that ends the span: some pixels again, the same values
                back = j + BLOCK8 - j_stop
                _bilinear_u8_run8(src, sbase, row, xq - back * dxq, yq - back * dyq, dxq, dyq, 1, dst,
                                  dbase + (j - back) * 3, 3)
                j = j_stop
        while j + 2 < last:
            off0 = sbase + (yq >> 32) * row + (xq >> 32) * 3
            x1 = xq + dxq
            y1 = yq + dyq
            off1 = sbase + (y1 >> 32) * row + (x1 >> 32) * 3
            _bilinear_u8_put_pair(src, off0, off1, row, _w15(xq), _w15(yq), _w15(x1), _w15(y1), dst, dbase + j * 3, 3)
            xq = x1 + dxq
            yq = y1 + dyq
            j += 2
        for j in range(j, last):
            off = sbase + (yq >> 32) * row + (xq >> 32) * 3
            _bilinear_u8_put4(src, off, row, _w15(xq), _w15(yq), dst, dbase + j * 3)
            xq += dxq
            yq += dyq
        j_lo = max(j, last)
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * 3
        d = dbase + j * 3
        if off < wide and j + 1 < j_stop:
            _bilinear_u8_put4(src, off, row, _w15(xq), _w15(yq), dst, d)
        else:
            v0, v1, v2 = _bilinear_u8_taps3(src, off, row, _w15(xq), _w15(yq))
            dst[np.uint64(d)] = v0
            dst[np.uint64(d + 1)] = v1
            dst[np.uint64(d + 2)] = v2
        xq += dxq
        yq += dyq


@jit_device
def _span_bil_f32_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """As :func:`_span_bil_u8_3`, for float32: where no pixel of the span can reach the array's last
    elements, blocks of eight pixels where the target has AVX-512 (:func:`_bilinear_f32_run8`), then each
    pixel but the span's last with 4-element loads and one 4-element store (:func:`_bilinear_f32_put4`);
    the others with exact loads and stores."""
    if j_stop <= j_lo:
        return
    last = j_stop - 1
    xe = xq + (last - j_lo) * dxq  # the last pixel's coordinates (exact: integer steps)
    ye = yq + (last - j_lo) * dyq
    if sbase + (max(yq, ye) >> 32) * row + (max(xq, xe) >> 32) * 3 < src.size - row - 6:
        if last - 1 - j_lo >= BLOCK8:
            done = _bilinear_f32_run8(src, sbase, row, xq, yq, dxq, dyq, (last - 1 - j_lo) // BLOCK8, dst,
                                      dbase + j_lo * 3, 3)
            xq += done * dxq
            yq += done * dyq
            j_lo += done
        for j in range(j_lo, last):
            off = sbase + (yq >> 32) * row + (xq >> 32) * 3
            gx = _frac32(xq)
            gy = _frac32(yq)
            _bilinear_f32_put4(src, off, row, gx, gy, dst, dbase + j * 3)
            xq += dxq
            yq += dyq
        j_lo = last
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * 3
        gx = _frac32(xq)
        gy = _frac32(yq)
        v0, v1, v2 = _bilinear_f32_taps3(src, off, row, gx, gy)
        d = dbase + j * 3
        dst[np.uint64(d)] = v0
        dst[np.uint64(d + 1)] = v1
        dst[np.uint64(d + 2)] = v2
        xq += dxq
        yq += dyq


@jit_inline
def _nearest_slack(j_stop):
    """A bound, in 32.32 units, on the distance between the 32.32 coordinate of an affine row's pixel
    ``j < j_stop`` and its float coordinate plus :func:`_scalar.rint`'s tie tolerance (see
    :func:`_span_nearest`). A pixel whose 32.32 coordinate lies more than this from every half integer
    rounds the same with either; twice this inside the pixel centres' range ``-1/2 .. size - 1/2``,
    every pixel rounds inside the image (the interior span), and twice this outside it, every pixel
    rounds outside (the fill)."""
    return (np.int64(1) << 23) + j_stop + 2


@jit_inline
def _nearest_q(xq, yq, j, margin, coef):
    """The pixel nearest to the 32.32 coordinate ``(xq, yq)`` of span pixel ``j`` (see :func:`_span_nearest`):
    integer rounding, or the float coordinate's where a fraction lies within ``margin`` of one half. One
    unsigned comparison per axis and one rarely taken branch keep the loop as fast as plain rounding."""
    rx = (xq + Q_HALF) >> 32
    ry = (yq + Q_HALF) >> 32
    near_x = np.uint64((xq & Q_MASK) - Q_HALF + margin) <= np.uint64(2 * margin)
    near_y = np.uint64((yq & Q_MASK) - Q_HALF + margin) <= np.uint64(2 * margin)
    if near_x | near_y:
        ax, bx, dx, ay, by, dy = coef
        if near_x:
            rx = np.int64(_rint((dx * j + ax) + bx))
        if near_y:
            ry = np.int64(_rint((dy * j + ay) + by))
    return rx, ry


@jit_inline
def _span_nearest(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
    """Nearest takes the pixel :func:`_scalar.rint` gives for the float64 coordinate ``(dx j + ax) + bx``
    (evaluated as the reference evaluates its pixel map), so exact ties go to even on every backend.

    The 32.32 coordinate is within ``2**-33 (j + 1)`` px of the float one (plus the float's own
    rounding, under 2**-22 px below Q_LIMIT), and rint's tie tolerance is under 2**-10 px there; a
    32.32 fraction farther than ``margin`` from one half is therefore on the same side of it as the
    float coordinate and rounds with integer arithmetic; the rest (near a half) round the float
    coordinate. The span keeps every rounded tap inside the image either way (:func:`_nearest_slack`).

    An axis along which the row does not move (``dy == 0``: a scale or shift without rotation; ``dx ==
    0``: with a quarter turn) has the same float coordinate at every pixel; it is rounded once, and the
    span steps from the centre of that pixel, so a row that lies on a tie (every tenth row of a 1.1x
    zoom) does not round each of its pixels' float coordinates."""
    ax, bx, dx, ay, by, dy = coef
    if dx == 0.0:
        xq = np.int64(_rint((dx * j_lo + ax) + bx)) << 32
    if dy == 0.0:
        yq = np.int64(_rint((dy * j_lo + ay) + by)) << 32
    margin = _nearest_slack(j_stop)
    span_nearest(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef)


@jit_device
def _span_nearest_table(src, base, cc, work, j_lo, j_stop, dst, dbase):
    """The interior span of a nearest row that reads ``base + table[j]`` at pixel ``j`` (the column table
    in ``work``, :func:`_nearest_columns`), copied by :func:`_copy_cells`."""
    _copy_cells(src, base, work, W_WORDS, j_lo, j_stop, dst, dbase, cc)


def span_nearest(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
    """The interior span of a nearest row; the loop is chosen when the kernel is compiled: vector offsets
    and a copy per pixel for 1, 3 and 4 channels (:func:`_span_nearest_copy`), pixel by pixel for other
    channel counts; gathers for uint8, uint16 and float32 where :func:`fast_gathers` says so
    (:func:`_span_nearest_gather`). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


#: Whether nearest spans gather their pixels where the compile target has AVX-512 (:func:`fast_gathers`).
#: Off: the copies were faster on every machine measured.
GATHERS_ALLOWED = False


def fast_gathers(features=None) -> bool:
    """Whether the nearest spans gather their pixels: where :data:`GATHERS_ALLOWED` and the compile target
    has AVX-512 (read from the CPU target's feature string, the host's or ``NUMBA_CPU_FEATURES``, or from
    ``features``). 16.16 offsets in 32-bit lanes with a copy per pixel (:func:`_span_nearest_copy`) were
    faster on both machines measured. On an AMD EPYC (Zen 3, AVX2, where LLVM splits gathers into scalar
    loads), 512x512 images on one thread: 0.24 ms against the gathers' 0.47 (uint8, 1 channel), 0.27
    against 0.53 (uint8, 3 channels), 0.44 against 0.70-0.80 (float32, 4 channels). On an Intel Xeon with
    AVX-512 (hardware gathers), two threads, alternated builds: 512x512x3 uint8 0.119-0.128 ms against
    0.132-0.147, 1 channel 0.101-0.107 against 0.118-0.122, 4 channels 0.118-0.125 against 0.136-0.174,
    3-channel float32 0.187-0.203 against 0.237-0.288, 2048x2048x3 uint8 1.7-2.0 against 2.5-2.9;
    128x128x3 even (0.027-0.035 ms)."""
    return GATHERS_ALLOWED and "avx512f" in _target_features(features=features)


@overload(span_nearest, jit_options=OVERLOAD_OPTIONS)
def _ov_span_nearest(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
    if src.dtype in (types.uint8, types.uint16, types.float32) and fast_gathers():
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
            _span_nearest_gather(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef)
    else:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
            _span_nearest_copy(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef)
    return impl


@jit_device
def _span_nearest_gather(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
    """uint8, uint16 and float32: blocks of :data:`GATHER` pixels of 1, 3 or 4 channels gathered at once
    (:func:`_nearest_gather`), the pixels near a half written again one by one; pixel by pixel where a
    block cannot be gathered and for other channel counts. One function for every channel count (one
    compile per dtype, where one per channel count took about 0.6 s each)."""
    j = j_lo
    while j < j_stop:
        n = min(GATHER, j_stop - j)
        near = -1
        if n == GATHER and row <= ROW32:
            d = dbase + j * cc
            if cc == 3:
                near = _nearest_gather(src, sbase, row, xq, yq, dxq, dyq, margin, dst, d, 3)
            elif cc == 1:
                near = _nearest_gather(src, sbase, row, xq, yq, dxq, dyq, margin, dst, d, 1)
            elif cc == 4:
                near = _nearest_gather(src, sbase, row, xq, yq, dxq, dyq, margin, dst, d, 4)
            if near == 0:
                xq += GATHER * dxq
                yq += GATHER * dyq
                j += GATHER
                continue
        for k in range(n):
            if near < 0 or (near >> k) & 1:
                rx, ry = _nearest_q(xq + k * dxq, yq + k * dyq, j + k, margin, coef)
                _copy_pixel(src, sbase + ry * row + rx * cc, dst, dbase + (j + k) * cc, cc)
        xq += n * dxq
        yq += n * dyq
        j += n


@jit_device
def _nearest_rewrite(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j, near, dst, d, coef):
    """Write again, one by one, the pixels ``k`` of the set bits of ``near`` (pixel ``k`` of a block starting at
    span pixel ``j``, 32.32 coordinates ``(xq, yq)``, and output index ``d``), rounded as :func:`_nearest_q`
    rounds them. A function of its own: the block loops stay small."""
    while near != 0:  # lowest first
        k = _lowest_bit(near)
        near &= near - 1
        rx, ry = _nearest_q(xq + k * dxq, yq + k * dyq, j + k, margin, coef)
        _copy_pixel(src, sbase + ry * row + rx * cc, dst, d + cc * k, cc)


@jit_device
def _span_nearest_copy(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j_lo, j_stop, dst, dbase, coef):
    """Any dtype: blocks of :data:`GATHER` pixels of 1, 3 or 4 channels, their offsets computed as one vector
    of 16.16 coordinates and copied one by one (:func:`_nearest_copy16`; uint8 blocks that fit four input
    rows' 64-byte windows picked out of them by byte permutes where the target has AVX-512 VBMI,
    :func:`_nearest_permute16`), the pixels that may round
    otherwise written again (:func:`_nearest_rewrite`); the pixels after the last whole block by one more
    block that ends the span (writing some pixels twice, the same values). Pixel by pixel: spans shorter
    than a block, other channel counts, spans beyond 16.16 coordinates or 32-bit offsets, and 3-channel
    spans that reach the input array's last pixel (a block reads four elements of a pixel)."""
    if j_stop <= j_lo:
        return
    xe = xq + (j_stop - 1 - j_lo) * dxq  # the last pixel's coordinates (exact: integer steps)
    ye = yq + (j_stop - 1 - j_lo) * dyq
    # the largest row and column a 16.16 rounding can give, 2**-8 px to spare
    top = ((max(yq, ye) + Q_HALF + (1 << 24)) >> 32) * row + ((max(xq, xe) + Q_HALF + (1 << 24)) >> 32) * cc
    # Blocks need coordinates and offsets in 32 bits. Their pixels farther than m16 = 10 units of 2**-16 px
    # from one half round as the reference rounds the float coordinate (see _span_nearest): the 16.16 value
    # is within 8 units of the 32.32 one, which is within 2**-33 (j + 1) <= 2**-17 px of the float one for
    # j < 2**16, the float's own rounding (magnitudes below 2**20) is under 2**-31 px, and rint's tie
    # tolerance is under 2**-25 px below 2**15 px: 2 units to spare.
    ax, bx, dx, ay, by, dy = coef
    blocks = 0
    if (max(abs(xq), abs(xe), abs(yq), abs(ye)) < (Q16_PIXELS << 32) and top + 4 < (1 << 31) and j_stop < (1 << 16)
            and abs(dx) * j_stop + abs(ax) + abs(bx) < 1048576.0 and abs(dy) * j_stop + abs(ay) + abs(by) < 1048576.0):
        blocks = (j_stop - j_lo) // GATHER
    if not (cc == 1 or cc == 3 or cc == 4) or (cc == 3 and sbase + top + 4 > src.size):
        blocks = 0  # other channel counts, and a four-element read that could pass src's end: pixel by pixel
    m16 = 10
    # Whole blocks from j_lo, then, where pixels are left, one more block that ends the span (it writes
    # some pixels again, the same values: blocks write nothing past their pixels, _nearest_copy16)
    tail = blocks > 0 and blocks * GATHER < j_stop - j_lo
    step_x = GATHER * dxq  # a block's step
    step_y = GATHER * dyq
    j = j_lo
    d = dbase + j * cc
    for b in range(blocks + tail):
        if b == blocks:  # the last block ends the span
            back = j + GATHER - j_stop
            j -= back
            d -= back * cc
            xq -= back * dxq
            yq -= back * dyq
        if cc == 1:
            near = _nearest_permute16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 1)
            if near < 0:
                near = _nearest_copy16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 1)
        elif cc == 3:
            near = _nearest_permute16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 3)
            if near < 0:
                near = _nearest_copy16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 3)
        else:
            near = _nearest_permute16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 4)
            if near < 0:
                near = _nearest_copy16(src, sbase, row, xq, yq, dxq, dyq, m16, dst, d, 4)
        if near != 0:
            _nearest_rewrite(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j, near, dst, d, coef)
        xq += step_x
        yq += step_y
        j += GATHER
        d += cc * GATHER
    while j < j_stop:  # the rest pixel by pixel, 64 at a time (a mask's bits)
        n = min(64, j_stop - j)
        _nearest_rewrite(src, sbase, row, cc, xq, yq, dxq, dyq, margin, j, (np.int64(1) << n) - 1 if n < 64 else -1,
                         dst, d, coef)
        xq += n * dxq
        yq += n * dyq
        j += n
        d += n * cc


@jit_device
def _span_bicubic_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv):
    """A 3-channel bicubic span in its dtype's arithmetic (float32 for float32 images, ``is_int`` and
    ``maxv`` then unused): each pixel but the last with 4-element loads and one 4-element store
    (:func:`_bicubic_put4`) when no pixel of the span can reach the array's last elements (its top-left
    tap's offset is at most the one of its largest row and column), the others with exact loads and
    stores (:func:`_bicubic_put3`)."""
    if j_stop <= j_lo:
        return
    last = j_stop - 1
    xe = xq + (last - j_lo) * dxq  # the last pixel's coordinates (exact: integer steps)
    ye = yq + (last - j_lo) * dyq
    # the bottom-right tap's 4-element load reads up to o0 + 3 row + 12, o0 = (y - 1) row + 3 (x - 1)
    if sbase + ((max(yq, ye) >> 32) + 2) * row + (max(xq, xe) >> 32) * 3 + 9 < src.size:
        for j in range(j_lo, last):
            _bicubic_put4(src, sbase + ((yq >> 32) - 1) * row + ((xq >> 32) - 1) * 3, row, (xq & Q_MASK) * Q_INV,
                          (yq & Q_MASK) * Q_INV, dst, dbase + j * 3, is_int, maxv)
            xq += dxq
            yq += dyq
        j_lo = last
    for j in range(j_lo, j_stop):
        _bicubic_put3(src, sbase + ((yq >> 32) - 1) * row + ((xq >> 32) - 1) * 3, row, (xq & Q_MASK) * Q_INV,
                      (yq & Q_MASK) * Q_INV, dst, dbase + j * 3, is_int, maxv)
        xq += dxq
        yq += dyq


@jit_device
def _span_bicubic_f64(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv):
    if cc == 3:
        _span_bicubic_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv)
        return
    if cc == 1:  # whole blocks of pixels in vector lanes, where the dtype has them
        xq, yq, j_lo = grey_blocks(BICUBIC, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    for j in range(j_lo, j_stop):
        _bicubic_channels_f64(src, sbase + (yq >> 32) * row + (xq >> 32) * cc, row, cc, (xq & Q_MASK) * Q_INV,
                              (yq & Q_MASK) * Q_INV, dst, dbase + j * cc, is_int, maxv)
        xq += dxq
        yq += dyq


@jit_device
def _span_bicubic_f32(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    """float32 arithmetic; pixels whose float32 sums overflowed, again in float64 (:func:`_f32_overflow_again`)."""
    xq0, yq0, j0 = xq, yq, j_lo
    if cc == 3:
        _span_bicubic_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, False, 0.0)
    else:
        if cc == 1:  # whole blocks of pixels in vector lanes, where the dtype has them
            xq, yq, j_lo = grey_blocks(BICUBIC, src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
        for j in range(j_lo, j_stop):
            _bicubic_channels_f32(src, sbase + (yq >> 32) * row + (xq >> 32) * cc, row, cc, (xq & Q_MASK) * Q_INV,
                                  (yq & Q_MASK) * Q_INV, dst, dbase + j * cc)
            xq += dxq
            yq += dyq
    if j_stop > j0 and _f32_overflow_again(dst, dbase + j0 * cc, dbase + j_stop * cc):
        for j in range(j0, j_stop):
            x = xq0 + (j - j0) * dxq
            y = yq0 + (j - j0) * dyq
            _bicubic_f64_again(src, sbase + (y >> 32) * row + (x >> 32) * cc, row, cc, (x & Q_MASK) * Q_INV,
                               (y & Q_MASK) * Q_INV, dst, dbase + j * cc)


def span_bicubic(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
    """The interior span of a bicubic row; the arithmetic is chosen by ``src``'s dtype when the kernel
    is compiled: float32 for float32 images (:func:`_span_bicubic_f32`), float64 for the others
    (:func:`_span_bicubic_f64`). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(span_bicubic, jit_options=OVERLOAD_OPTIONS)
def _ov_span_bicubic(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
    if src.dtype == types.float32:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
            _span_bicubic_f32(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    else:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
            _span_bicubic_f64(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv)
    return impl


@jit_device
def _span_bil_u8_n(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * cc
        fx = _w15(xq)
        fy = _w15(yq)
        d = dbase + j * cc
        for c in range(cc):
            dst[np.uint64(d + c)] = _bil_int_c(src, off, off + row, cc, c, fx, fy)
        xq += dxq
        yq += dyq


@jit_device
def _span_bil_f32_n(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase):
    for j in range(j_lo, j_stop):
        off = sbase + (yq >> 32) * row + (xq >> 32) * cc
        gx = _frac32(xq)
        gy = _frac32(yq)
        d = dbase + j * cc
        for c in range(cc):
            dst[np.uint64(d + c)] = _bil_f32_c(src, off, off + row, cc, c, gx, gy)
        xq += dxq
        yq += dyq


def span_bilinear(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
    """The interior span of a bilinear row; the loop is chosen by ``src``'s dtype when the kernel is
    compiled, and by the channel count at run time (one loop per case, so the per-pixel body has no
    dtype or channel-count branches). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(span_bilinear, jit_options=OVERLOAD_OPTIONS)
def _ov_span_bilinear(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
    if src.dtype == types.uint8:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
            if cc == 3:
                _span_bil_u8_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            elif cc == 1:
                _span_bil_u8_1(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            elif cc == 4:
                _span_bil_u8_4(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            else:
                _span_bil_u8_n(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    elif src.dtype == types.float32:
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
            if cc == 3:
                _span_bil_f32_3(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            elif cc == 1:
                _span_bil_f32_1(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            elif cc == 4:
                _span_bil_f32_4(src, sbase, row, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
            else:
                _span_bil_f32_n(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase)
    else:
        # float64 arithmetic: float64 images and uint16 (rounded and saturated)
        def impl(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv, coef):
            _span_bil_f64(src, sbase, row, cc, xq, yq, dxq, dyq, j_lo, j_stop, dst, dbase, is_int, maxv)
    return impl


# --------------------------------------------------------------------------- per-point rows
# A row sampled at its own input coordinates (projective, grid, TPS, elastic) is done in two passes: the
# row's cells (which pixel or taps each point reads, and whether it needs the careful path or the fill)
# in one loop the compiler vectorizes, then runs of pixels that read them.

@jit_inline
def _careful_point(x, y, exact):
    """The coordinates a points row hands the careful path: the float ones for nearest (``exact``),
    which rounds them, and where they are too large for 32.32; the 32.32 ones otherwise."""
    if exact or not (abs(x) < Q_LIMIT and abs(y) < Q_LIMIT):
        return x, y
    return _to_q(x) * Q_INV, _to_q(y) * Q_INV


# Runs of pixels of a per-point row (projective, grid, TPS) that need no careful path: interior
# pixels, and with zeros or constant padding (``fills``) pixels with no tap inside, which take the
# fill value (:func:`_fill_range`). One call per run, so the
# arrays' references are taken once per run rather than once per pixel, and the pixel code is
# compiled once per dtype and shared by every family that samples points.

@jit_inline
def _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv):
    """Pixel ``j`` (whose cell is -2) and the -2 cells that follow it take the fill value; returns the index
    after them."""
    k = j + 1
    while k < wo and cells[k] == -2:
        k += 1
    _fill_range(dst, dbase, j, k, fill, cc, is_int, maxv)
    return k


@jit_device
def _nearest_cells(sbase, h, w, cc, xs, ys, wo, margin, cells):
    """The cells of a nearest points row, in one loop the compiler vectorizes: ``cells[j]`` is the offset
    of the pixel :func:`_scalar.rint` picks for ``(xs[j], ys[j])`` when that pixel lies inside the image,
    else -2 (the careful path's decision: a point beyond ``-1 < x < w``, ``-1 < y < h``, or not finite,
    or one that rounds outside), where zeros and constant padding write the fill value and the other
    paddings take the careful path. No nearest cell needs the careful path for its own sake (-1).
    ``margin`` is nearest's, 0 (the same parameters as :func:`_row_cells`)."""
    row = w * cc
    for j in range(_nearest_cells8(sbase, h, w, cc, xs, ys, wo, cells), wo):
        x = xs[j]
        y = ys[j]
        near = (x > -1.0) & (x < w) & (y > -1.0) & (y < h)  # False for NaN
        rx = _rint(x if near else 0.0)
        ry = _rint(y if near else 0.0)
        inside = near & (rx >= 0.0) & (ry >= 0.0) & (rx <= w - 1.0) & (ry <= h - 1.0)
        cells[j] = _small_int(sbase + (ry * row + rx * cc)) if inside else -2


@jit_device
def _copy_cells(src, base, offs, t, j_lo, j_stop, dst, dbase, cc):
    """``dst`` pixels ``j_lo <= j < j_stop`` (at ``dbase + cc j``) = the input pixels at ``base + offs[t + j]``
    (all inside the image): a nearest row's column table (:func:`_span_nearest_table`) or a points row's
    cells (:func:`_run_nearest`). A loop per channel count: one loop calling :func:`_copy_pixel` (its channel
    test inside the loop) took 17-20% longer for 1 and 4 channels."""
    if cc == 3:  # four elements where the next pixel writes the fourth again and it is inside src
        for j in range(j_lo, j_stop):
            off = base + offs[np.uint64(t + j)]
            if j + 1 < j_stop and off + 4 <= src.size:
                _copy4(src, off, dst, dbase + 3 * j)
            else:
                _copy3(src, off, dst, dbase + 3 * j)
    elif cc == 1:
        for j in range(j_lo, j_stop):
            dst[np.uint64(dbase + j)] = src[np.uint64(base + offs[np.uint64(t + j)])]
    elif cc == 4:
        for j in range(j_lo, j_stop):
            _copy4(src, base + offs[np.uint64(t + j)], dst, dbase + 4 * j)
    else:
        for j in range(j_lo, j_stop):
            _copy_pixel(src, base + offs[np.uint64(t + j)], dst, dbase + cc * j, cc)


@jit_device
def _run_nearest(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """:func:`run_bilinear` for nearest pixels (the pixels of :func:`_nearest_cells`): each run of cells
    inside the image copied at once (:func:`_copy_cells`), fill runs written (zeros and constant padding)."""
    while j < wo:
        k = j
        while k < wo and cells[k] >= 0:
            k += 1
        if k > j:
            _copy_cells(src, 0, cells, 0, j, k, dst, dbase, cc)
            j = k
            continue
        if not (fills and cells[j] == -2):
            break
        j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
    return j


#: Whether points rows compute their cells eight at a time in explicit 512-bit vector code where the target
#: has AVX-512 (:func:`_row_cells8`; the compiler's own vectorization of :func:`_row_cells` uses 256-bit
#: vectors there). Tests turn it off to compare the two.
CELLS8_ALLOWED = True


def _has_cells8(context) -> bool:
    return CELLS8_ALLOWED and "avx512f" in _target_features(context)


def _cells8_typing(sbase, h, w, cc, xs, ys, wo, cells, *more):
    """The signature of an eight-lane cells intrinsic (:func:`_row_cells8`, :func:`_nearest_cells8`), or None."""
    if not (all(isinstance(a, types.Array) and a.ndim == 1 for a in (xs, ys, cells))
            and xs.dtype == ys.dtype == types.float64 and cells.dtype == types.int64
            and all(isinstance(v, (types.Integer, types.Float)) for v in more)):
        return None
    return types.intp(sbase, h, w, cc, xs, ys, wo, cells, *more)


def _cells8_ir(context, builder, sig, args, body):
    """A cells loop's pixels ``0 .. 8 (wo // 8) - 1`` in lanes of eight float64 (arguments as
    :func:`_cells8_typing`'s): ``body(lanes)`` emits the row's constants, before the loop, and returns the
    function that gives a block's vectors of int64 for ``cells[k wo + j]`` (``k = 0, 1, ...``) from its points
    ``x, y``; ``lanes`` has the arguments as float64 scalars and the vector helpers.
    Returns the first pixel left to the loop: 0 where the target has no AVX-512 (:func:`_has_cells8`) or an
    array is not contiguous."""
    i64, f64 = ir.IntType(64), ir.DoubleType()
    if not _has_cells8(context) or any(a.layout != "C" for a in (sig.args[4], sig.args[5], sig.args[7])):
        return ir.Constant(i64, 0)
    n = 8
    vf, vi = ir.VectorType(f64, n), ir.VectorType(i64, n)

    class Lanes:
        @staticmethod
        def num(k):  # argument k as float64
            return context.cast(builder, args[k], sig.args[k], types.float64)

        @staticmethod
        def splat(x):
            return _splat(builder, vf, x if isinstance(x, ir.Value) else ir.Constant(f64, x))

        @staticmethod
        def call(name, v):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf]), f"llvm.{name}.v8f64")
            return builder.call(fn, [v])

        @staticmethod
        def small_int(v):  # _small_int
            bits = builder.bitcast(builder.fadd(v, Lanes.splat(4503599627370496.0)), vi)
            return builder.sub(bits, ir.Constant(vi, [0x4330000000000000] * n))

        @staticmethod
        def ints(v):
            return ir.Constant(vi, [v] * n)

        @staticmethod
        def offset(ix, iy):  # sbase + (iy row + ix cc), as the loops compute it
            return Lanes.small_int(builder.fadd(sbase, builder.fadd(builder.fmul(iy, row), builder.fmul(ix, cc))))

    row = Lanes.splat(builder.sitofp(builder.mul(context.cast(builder, args[2], sig.args[2], types.intp),
                                                context.cast(builder, args[3], sig.args[3], types.intp)), f64))
    sbase, cc = Lanes.splat(Lanes.num(0)), Lanes.splat(Lanes.num(3))
    block = body(Lanes)
    wo = context.cast(builder, args[6], sig.args[6], types.intp)
    x_data, y_data, out = (context.make_array(sig.args[k])(context, builder, args[k]).data for k in (4, 5, 7))
    blocks = builder.sdiv(wo, ir.Constant(i64, n))
    with cgutils.for_range(builder, blocks) as loop:
        j = builder.mul(loop.index, ir.Constant(i64, n))
        x, y = (builder.load(builder.bitcast(builder.gep(data, [j]), vf.as_pointer()), align=8)
                for data in (x_data, y_data))
        for k, v in enumerate(block(x, y)):
            to = builder.gep(out, [builder.add(j, builder.mul(wo, ir.Constant(i64, k)))])
            builder.store(v, builder.bitcast(to, vi.as_pointer()), align=8)
    return builder.mul(blocks, ir.Constant(i64, n))


@intrinsic
def _row_cells8(typingctx, sbase, h, w, cc, xs, ys, wo, cells, margin):
    """:func:`_row_cells`' loop for pixels ``0 .. 8 (wo // 8) - 1`` in lanes of eight float64, the same
    operations in the same order (so the same cells); returns the first pixel it left to the loop
    (:func:`_cells8_ir`)."""
    sig = _cells8_typing(sbase, h, w, cc, xs, ys, wo, cells, margin)

    def codegen(context, builder, sig, args):
        f64 = ir.DoubleType()

        def body(L):
            def lt(a, b):
                return builder.fcmp_ordered("<", a, b)

            h_f, w_f, margin_f = L.num(1), L.num(2), L.num(8)
            one = ir.Constant(f64, 1.0)
            reach = builder.fadd(builder.fmul(ir.Constant(f64, 2.0), margin_f), one)
            x_hi = L.splat(builder.fsub(builder.fsub(w_f, one), margin_f))
            y_hi = L.splat(builder.fsub(builder.fsub(h_f, one), margin_f))
            x_far = L.splat(builder.fadd(builder.fsub(w_f, one), reach))
            y_far = L.splat(builder.fadd(builder.fsub(h_f, one), reach))
            low, near_low = L.splat(margin_f), L.splat(builder.fneg(reach))
            limit, q_one, q_inv, half = L.splat(Q_LIMIT), L.splat(Q_ONE), L.splat(Q_INV), L.splat(0.5)
            zeros = L.splat(0.0)

            def block(x, y):
                ok = builder.and_(lt(L.call("fabs", x), limit), lt(L.call("fabs", y), limit))
                qx = L.call("floor", builder.fadd(builder.fmul(builder.select(ok, x, zeros), q_one), half))
                qy = L.call("floor", builder.fadd(builder.fmul(builder.select(ok, y, zeros), q_one), half))
                ix, iy = L.call("floor", builder.fmul(qx, q_inv)), L.call("floor", builder.fmul(qy, q_inv))
                inside = ok
                for c in (builder.fcmp_ordered(">=", ix, low), builder.fcmp_ordered(">=", iy, low), lt(ix, x_hi),
                          lt(iy, y_hi)):
                    inside = builder.and_(inside, c)
                xc, yc = builder.fmul(qx, q_inv), builder.fmul(qy, q_inv)
                beyond = builder.not_(ok)
                for c in (lt(xc, near_low), builder.fcmp_ordered(">", xc, x_far), lt(yc, near_low),
                          builder.fcmp_ordered(">", yc, y_far)):
                    beyond = builder.or_(beyond, c)
                cell = builder.select(inside, L.offset(ix, iy), builder.select(beyond, L.ints(-2), L.ints(-1)))
                return (cell, L.small_int(builder.fsub(qx, builder.fmul(ix, q_one))),
                        L.small_int(builder.fsub(qy, builder.fmul(iy, q_one))))
            return block
        return _cells8_ir(context, builder, sig, args, body)
    return sig, codegen


@intrinsic
def _nearest_cells8(typingctx, sbase, h, w, cc, xs, ys, wo, cells):
    """:func:`_nearest_cells`' loop for pixels ``0 .. 8 (wo // 8) - 1`` in lanes of eight float64, rounding as
    :func:`_scalar.rint` does, the same operations in the same order (so the same cells); returns the first
    pixel it left to the loop (:func:`_cells8_ir`)."""
    sig = _cells8_typing(sbase, h, w, cc, xs, ys, wo, cells)

    def codegen(context, builder, sig, args):
        def body(L):
            def cmp(op, a, b):
                return builder.fcmp_ordered(op, a, b)

            h_f, w_f = L.num(1), L.num(2)
            one, half, zeros, two, tie = L.splat(1.0), L.splat(0.5), L.splat(0.0), L.splat(2.0), L.splat(
                _scalar.TIE_TOL)
            x_hi, y_hi, low = L.splat(w_f), L.splat(h_f), L.splat(-1.0)
            x_last, y_last = builder.fsub(x_hi, one), builder.fsub(y_hi, one)

            def rint(v):  # _scalar.rint
                r = builder.fmul(one, L.call("floor", builder.fadd(v, half)))
                d = builder.fsub(r, v)
                a = L.call("fabs", v)
                tol = builder.fmul(tie, builder.select(cmp(">", a, one), a, one))
                odd = builder.fcmp_unordered("!=", builder.fsub(r, builder.fmul(two, L.call(
                    "floor", builder.fmul(half, r)))), zeros)
                up = builder.and_(odd, cmp("<=", L.call("fabs", builder.fadd(d, half)), tol))
                down = builder.and_(builder.and_(odd, builder.not_(up)),
                                    cmp("<=", L.call("fabs", builder.fsub(d, half)), tol))
                return builder.select(up, builder.fadd(r, one), builder.select(down, builder.fsub(r, one), r))

            def block(x, y):
                near = cmp(">", x, low)
                for c in (cmp("<", x, x_hi), cmp(">", y, low), cmp("<", y, y_hi)):
                    near = builder.and_(near, c)
                rx, ry = rint(builder.select(near, x, zeros)), rint(builder.select(near, y, zeros))
                inside = near
                for c in (cmp(">=", rx, zeros), cmp(">=", ry, zeros), cmp("<=", rx, x_last), cmp("<=", ry, y_last)):
                    inside = builder.and_(inside, c)
                return (builder.select(inside, L.offset(rx, ry), L.ints(-2)),)
            return block
        return _cells8_ir(context, builder, sig, args, body)
    return sig, codegen


@jit_device
def _row_cells(sbase, h, w, cc, xs, ys, wo, margin, cells):
    """The cells of a points row's pixels, for the whole row in one branch-free loop (which the compiler
    vectorizes): ``cells[j]`` is the offset of pixel ``j``'s top-left tap when every tap of a mode with
    ``margin`` taps around the sample lies inside the image; -2 when none does (:func:`_beyond` at the
    coordinate the careful path would take, or a coordinate too large or not finite), where zeros and
    constant padding write the fill value; else -1 (the careful path). ``cells[wo + j]``,
    ``cells[2 wo + j]`` are the fractions of its 32.32 coordinates (``q & Q_MASK``). ``xs`` and ``ys`` hold
    at least ``wo`` points, ``cells`` at least ``3 wo`` values (unchecked). The whole blocks of eight pixels
    go in explicit eight-lane code where the target has AVX-512 (:func:`_row_cells8`), the rest in the loop.

    The 32.32 coordinate is ``floor(x 2**32 + 0.5)`` for ``|x| < Q_LIMIT``, the float the integer was
    always made from; its integer part (``q >> 32``) and its fraction are computed in float64, where
    both are exact, so the cells are the integer arithmetic's, bit for bit."""
    row = w * cc
    reach = 2 * margin + 1.0  # a tap lies inside while -reach <= x <= w - 1 + reach (see _beyond)
    for j in range(_row_cells8(sbase, h, w, cc, xs, ys, wo, cells, margin), wo):
        x = xs[j]
        y = ys[j]
        ok = (abs(x) < Q_LIMIT) & (abs(y) < Q_LIMIT)  # False for NaN
        qx = np.floor((x if ok else 0.0) * Q_ONE + 0.5)
        qy = np.floor((y if ok else 0.0) * Q_ONE + 0.5)
        ix = np.floor(qx * Q_INV)
        iy = np.floor(qy * Q_INV)
        inside = ok & (ix >= margin) & (iy >= margin) & (ix < w - 1.0 - margin) & (iy < h - 1.0 - margin)
        xc = qx * Q_INV
        yc = qy * Q_INV
        beyond = (not ok) | (xc < -reach) | (xc > w - 1.0 + reach) | (yc < -reach) | (yc > h - 1.0 + reach)
        cells[np.uint64(j)] = _small_int(sbase + (iy * row + ix * cc)) if inside else (-2 if beyond else -1)
        cells[np.uint64(wo + j)] = _small_int(qx - ix * Q_ONE)
        cells[np.uint64(2 * wo + j)] = _small_int(qy - iy * Q_ONE)


def _bil_grey(src, off, w, qx, qy, dst, d, is_int, maxv):
    """``dst[d]`` = the interior bilinear value of a one-channel image at the top-left tap ``off`` and the
    32.32 fractions ``qx``, ``qy``, in the arithmetic of the dtype's run (:func:`run_bilinear`). Callable
    from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(_bil_grey, jit_options=OVERLOAD_OPTIONS)
def _ov_bil_grey(src, off, w, qx, qy, dst, d, is_int, maxv):
    if src.dtype == types.uint8:
        def impl(src, off, w, qx, qy, dst, d, is_int, maxv):
            fx = (qx + 65536) >> 17  # _w15 of the fraction
            fy = (qy + 65536) >> 17
            dst[np.uint64(d)] = _bil_int_c(src, off, off + w, 1, 0, fx, fy)
    elif src.dtype == types.float32:
        def impl(src, off, w, qx, qy, dst, d, is_int, maxv):
            dst[np.uint64(d)] = _bil_f32_c(src, off, off + w, 1, 0, np.float32(qx * Q_INV), np.float32(qy * Q_INV))
    else:
        def impl(src, off, w, qx, qy, dst, d, is_int, maxv):
            _store(dst, d, _bil_float_c(src, off, off + w, 1, 0, qx * Q_INV, qy * Q_INV), is_int, maxv)
    return impl


@jit_device
def run_bilinear_grey(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """:func:`run_bilinear` for one-channel images (``cc`` is 1), every dtype: blocks of GATHER pixels
    first where the target has AVX2 (uint8, uint16, float32: :func:`grey_cells`), then one by one in
    the dtype's own arithmetic. The colour runs have no one-channel path: a colour kernel compiles none
    of this (one-channel images are (N, H, W) arrays to the kernels: :data:`GREY`)."""
    blocks_from = j  # from here on, blocks of GATHER pixels are tried first
    while j < wo:
        if j >= blocks_from:
            j = grey_cells(src, cells, j, wo, w, dst, dbase)
            blocks_from = j + BLOCK8  # the next pixels go one at a time
            if j >= wo:
                break
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, 1, is_int, maxv)
            continue
        _bil_grey(src, off, w, cells[wo + j], cells[2 * wo + j], dst, dbase + j, is_int, maxv)
        j += 1
    return j


@jit_device
def _run_bil_u8(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """uint8: exact integer arithmetic with rounded 15-bit weights, as the affine span. 3 and 4 channels
    in vector lanes, other counts channel by channel (one-channel images go to :func:`run_bilinear_grey`)."""
    row = w * cc
    wide = src.size - row - 6  # 3 channels: the offsets whose taps' 4-byte loads stay inside src
    blocks_from = j  # from here on, blocks of eight pixels are tried first (where the target has AVX2)
    while j < wo:
        if j >= blocks_from:
            if cc == 3:  # the blocks' 8-byte loads: src[off + row + 7] exists
                j += _bilinear_u8_cells8(src, cells, j, wo, row, wide - 1, dst, dbase + j * 3, 3)
            elif cc == 4:
                j += _bilinear_u8_cells8(src, cells, j, wo, row, src.size, dst, dbase + j * 4, 4)
            blocks_from = j + BLOCK8  # the next block's pixels go one or two at a time
            if j >= wo:
                break
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
            continue
        d = dbase + j * cc
        fx = (cells[wo + j] + 65536) >> 17  # _w15 of the fraction
        fy = (cells[2 * wo + j] + 65536) >> 17
        if (cc == 3 or cc == 4) and j + 1 < wo and cells[j + 1] >= 0:
            # two pixels at a time (_bilinear_u8_put_pair); 3 channels: where both pixels' 4-byte loads stay
            # inside src and pixel j + 2, written next, takes the last two bytes' place
            off1 = cells[j + 1]
            if cc == 4 or (off < wide and off1 < wide and j + 2 < wo):
                fx1 = (cells[wo + j + 1] + 65536) >> 17
                fy1 = (cells[2 * wo + j + 1] + 65536) >> 17
                if cc == 3:
                    _bilinear_u8_put_pair(src, off, off1, row, fx, fy, fx1, fy1, dst, d, 3)
                else:
                    _bilinear_u8_put_pair(src, off, off1, row, fx, fy, fx1, fy1, dst, d, 4)
                j += 2
                continue
        if cc == 3:
            if off < wide and j + 1 < wo:  # pixel j + 1, written next, takes the fourth byte's place
                _bilinear_u8_put4(src, off, row, fx, fy, dst, d)
            else:
                v0, v1, v2 = _bilinear_u8_taps3(src, off, row, fx, fy)
                dst[np.uint64(d)] = v0
                dst[np.uint64(d + 1)] = v1
                dst[np.uint64(d + 2)] = v2
        elif cc == 4:  # the four channels in the lanes of one vector
            _bilinear_u8_put_rgba(src, off, row, fx, fy, dst, d)
        else:
            for c in range(cc):
                dst[np.uint64(d + c)] = _bil_int_c(src, off, off + row, cc, c, fx, fy)
        j += 1
    return j


@jit_device
def _run_bil_f32(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """float32: float32 arithmetic, as PyTorch does (weights from the exact fraction)."""
    row = w * cc
    blocks_from = j  # from here on, blocks of eight pixels are tried first (where the target has AVX-512)
    while j < wo:
        if j >= blocks_from:
            if cc == 3:  # the blocks' 4-element loads: src[off + row + 6] exists
                j += _bilinear_f32_cells8(src, cells, j, wo, row, src.size - row - 6, dst, dbase + j * 3, 3)
            elif cc == 4:
                j += _bilinear_f32_cells8(src, cells, j, wo, row, src.size, dst, dbase + j * 4, 4)
            blocks_from = j + BLOCK8  # the next block's pixels go one at a time
            if j >= wo:
                break
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
            continue
        d = dbase + j * cc
        gx = np.float32(cells[wo + j] * Q_INV)
        gy = np.float32(cells[2 * wo + j] * Q_INV)
        if cc == 3:
            v0, v1, v2 = _bilinear_f32_taps3(src, off, row, gx, gy)
            dst[np.uint64(d)] = v0
            dst[np.uint64(d + 1)] = v1
            dst[np.uint64(d + 2)] = v2
        elif cc == 4:  # the four channels in the lanes of one vector
            _bilinear_f32_put_rgba(src, off, row, gx, gy, dst, d)
        else:
            for c in range(cc):
                dst[np.uint64(d + c)] = _bil_f32_c(src, off, off + row, cc, c, gx, gy)
        j += 1
    return j


@jit_device
def _run_bil_f64(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """float64 arithmetic: float64 images, and uint16 (whose 16 bits need more than 15-bit weights to
    stay exact; rounded and saturated)."""
    row = w * cc
    while j < wo:
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
            continue
        d = dbase + j * cc
        fx = cells[wo + j] * Q_INV
        fy = cells[2 * wo + j] * Q_INV
        if not bilinear_pixel_lanes(src, off, row, cc, fx, fy, dst, d):  # uint16, 3 or 4 channels: in lanes
            for c in range(cc):
                _store(dst, d + c, _bil_float_c(src, off, off + row, cc, c, fx, fy), is_int, maxv)
        j += 1
    return j


def run_bilinear(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """Write the bilinear pixels of a points row (input coordinates ``xs``, ``ys``; their cells,
    :func:`_row_cells`) from ``j`` on while every tap is inside the image or, when ``fills`` (zeros or
    constant padding), none is; returns the first pixel that needs the careful path (``wo`` when none is
    left). The arithmetic is chosen by ``src``'s dtype when the kernel is compiled. Callable from kernels
    only."""
    raise NotImplementedError("compiled kernels only")


@overload(run_bilinear, jit_options=OVERLOAD_OPTIONS)
def _ov_run_bilinear(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    run = {types.uint8: _run_bil_u8, types.float32: _run_bil_f32}.get(src.dtype, _run_bil_f64)

    def impl(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
        return run(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills)
    return impl


@jit_device
def _run_bic_f64(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """float64 arithmetic (uint8, uint16, float64 images)."""
    row = w * cc
    while j < wo:
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
            continue
        _bicubic_interior_f64(src, off, row, cc, cells[wo + j] * Q_INV, cells[2 * wo + j] * Q_INV, dst,
                              dbase + j * cc, is_int, maxv)
        j += 1
    return j


@jit_device
def _run_bic_f32(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """float32 images: float32 arithmetic; pixels whose float32 sums overflowed, again in float64
    (:func:`_f32_overflow_again`)."""
    row = w * cc
    j0 = j
    j = _run_bic_f32_sums(src, row, cc, cells, j, wo, dst, dbase, is_int, maxv, fill, fills)
    if j > j0 and _f32_overflow_again(dst, dbase + j0 * cc, dbase + j * cc):
        for k in range(j0, j):
            if cells[k] >= 0:
                _bicubic_f64_again(src, cells[k], row, cc, cells[wo + k] * Q_INV, cells[2 * wo + k] * Q_INV, dst,
                                   dbase + k * cc)
    return j


@jit_inline
def _run_bic_f32_sums(src, row, cc, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    while j < wo:
        off = cells[j]
        if off < 0:
            if not (fills and off == -2):
                break
            j = _fill_run(cells, j, wo, dst, dbase, fill, cc, is_int, maxv)
            continue
        _bicubic_interior_f32(src, off, row, cc, cells[wo + j] * Q_INV, cells[2 * wo + j] * Q_INV, dst,
                              dbase + j * cc)
        j += 1
    return j


def run_bicubic(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    """:func:`run_bilinear` for bicubic pixels. Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(run_bicubic, jit_options=OVERLOAD_OPTIONS)
def _ov_run_bicubic(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
    run = _run_bic_f32 if src.dtype == types.float32 else _run_bic_f64

    def impl(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills):
        return run(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills)
    return impl


# --------------------------------------------------------------------------- sharing rows between threads
# A call's rows (or tasks) are claimed in small chunks from a shared counter, so a thread that starts
# late takes fewer chunks instead of delaying the call; the calling thread waits for the helpers that
# joined by spinning briefly on a counter instead of sleeping. ``work`` is an int64 array:

W_NEXT, W_ITEMS, W_CHUNK, W_JOINED, W_DONE, W_BACK, W_CALLER = 0, 1, 2, 3, 4, 5, 6
#: ``work[W_TABLE]``: 0, or the axis of an affine nearest warp's column table (:func:`_nearest_columns`),
#: whose ``Wo`` offsets follow the :data:`W_WORDS` words of the schedule.
W_TABLE = 7
W_WORDS = 8
#: The calling thread (always takes part, waits for the others at the end) and a helper thread.
CALLER, HELPER = 0, 1
#: Checks of the helpers' counter before the caller gives up spinning (about a millisecond) and waits
#: on the helpers' tasks instead.
SPIN_LIMIT = 1 << 20
#: Checks of ``W_BACK`` (helpers back in Python and done with the GIL again: :func:`_helper_loop`) before
#: the caller returns anyway (some tens of microseconds).
BACK_SPINS = 1 << 15


def _slot_pointer(context, builder, ary_type, ary, index):
    return cgutils.get_item_pointer(context, builder, ary_type, context.make_array(ary_type)(context, builder, ary),
                                    [index])


@intrinsic
def _fetch_add(typingctx, ary, index, value):
    """``old = ary[index]; ary[index] += value; return old`` as one atomic step (int64 arrays)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ptr = _slot_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return types.int64(ary, types.intp, types.int64), codegen


@intrinsic
def _compare_swap(typingctx, ary, index, expected, value):
    """``ary[index] = value`` if it equals ``expected``, as one atomic step; True when it did."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ptr = _slot_pointer(context, builder, sig.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return types.boolean(ary, types.intp, types.int64, types.int64), codegen


@intrinsic
def _load(typingctx, ary, index):
    """``ary[index]``, read atomically (int64 arrays)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ptr = _slot_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)
    return types.int64(ary, types.intp), codegen


@intrinsic
def _load_address(typingctx, address, index):
    """``((int64 *) address)[index]``, read atomically (a published schedule's slot: :func:`_watch`)."""
    if not (isinstance(address, types.Integer) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load_atomic(builder.gep(ptr, [args[1]]), "seq_cst", 8)
    return types.int64(types.int64, types.intp), codegen


@jit_serial
def _watch(board, seen, spins, back):
    """A helper thread's wait between calls, without the GIL: count itself back in the schedule ``back`` of
    its last task (``W_BACK``: its caller may return now), spin until ``board[0]``, the count of calls
    that gave helpers work, is no longer ``seen``, then until that call's caller is inside its kernel
    (slot ``W_CALLER`` of its schedule, at address ``board[1]``, set by :func:`_join` first thing), with
    the GIL released: the helper then takes the GIL without waiting for it. Returns the new count, or
    -1 after ``spins`` checks with no new call."""
    _fetch_add(back, W_BACK, 1)
    for _ in range(spins):
        now = _load(board, 0)
        if now != seen:
            address = _load(board, 1)
            for _ in range(spins):
                if _load_address(address, W_CALLER) > 0:
                    break
            return now
    return -1


# The scheduling helpers (_join, _claim, _finish) and the per-call and per-row prefetches run once per
# call or row, not per pixel: as jit_device helpers they are typed and lowered once per process and then
# loaded from the disk cache by every later kernel family, where inlining them in numba's IR repeated that
# work in every kernel (each further family's first compile: about 10% less on a 2-core Intel Xeon,
# benchmarks/results/compile.md).
@jit_device
def _join(work, role):
    """True when this thread takes part: always for the caller, which says it is in its kernel now
    (``W_CALLER``: a helper waiting in :func:`_watch` goes, before the caller's prefetches and first
    chunk); a helper only before the caller has closed the call (bit 0 of ``W_JOINED``; helpers count in
    steps of 2). Called first thing in a kernel."""
    if role == CALLER:
        _fetch_add(work, W_CALLER, 1)
        return True
    while True:
        joined = _load(work, W_JOINED)
        if joined & 1:
            return False
        if _compare_swap(work, W_JOINED, joined, joined + 2):
            return True


@jit_device
def _claim(work):
    """The next chunk ``[i0, i1)`` of items; empty when none is left."""
    i0 = _fetch_add(work, W_NEXT, 1) * work[W_CHUNK]
    n = work[W_ITEMS]
    return min(i0, n), min(i0 + work[W_CHUNK], n)


@jit_device
def _finish(work, role, joined):
    """A helper counts itself done; the caller closes the call to late helpers and spins until the
    helpers that joined are done, then (a while at most) until they have let go of the GIL again
    (``W_BACK``). Returns False when the caller stopped spinning first."""
    if role != CALLER:
        if joined:
            _fetch_add(work, W_DONE, 1)
        return True
    helpers = _fetch_add(work, W_JOINED, 1) >> 1
    for _ in range(SPIN_LIMIT):
        if _load(work, W_DONE) >= helpers:
            # a helper that returned to Python takes the GIL for a few microseconds: let it have it, so
            # the caller's own return does not wait for a thread wake-up
            for _ in range(BACK_SPINS if helpers else 0):
                if _load(work, W_BACK) >= helpers:
                    break
            return True
    return False


# --------------------------------------------------------------------------- rows: the mode is a constant

#: mode -> (interior span loop, careful path, run of interior points, tap margin around the sample, the
#: cells of a points row)
_MODE_FUNCS = {
    NEAREST: (_span_nearest, _general_nearest, _run_nearest, 0, _nearest_cells),
    BILINEAR: (span_bilinear, _general_bilinear, run_bilinear, 0, _row_cells),
    BICUBIC: (span_bicubic, _general_bicubic, run_bicubic, 1, _row_cells),
}


#: Added to a row function's mode constant by the entry kernels of border and reflection padding
#: (:data:`PADDED_ENTRIES`): only they compile the padded loops (:data:`_PADDED`), so a kernel for the
#: other paddings costs no more to compile for them.
PADDED = 4


NEAREST_PADDED, BILINEAR_PADDED, BICUBIC_PADDED = NEAREST + PADDED, BILINEAR + PADDED, BICUBIC + PADDED

#: Added by the points-row kernels (projective, grid, TPS) to :func:`points_row`'s mode for one-channel
#: images, which they are given as ``(N, H, W)`` arrays (:func:`channel_views`): a one-channel image and a
#: colour one are then two signatures of a kernel, and each compiles its own pixel loops only
#: (:func:`run_bilinear_grey` or the colour runs).
GREY = 8


def _literal_kind(mode) -> tuple:
    """``(mode, padded)`` of a row function's constant mode argument (a mode, plus :data:`PADDED` or not,
    plus :data:`GREY` or not: :func:`_literal_grey`)."""
    value = mode.literal_value if isinstance(mode, types.IntegerLiteral) else None
    if value is None or (value & ~(PADDED | GREY)) not in _MODE_FUNCS:
        raise TypingError("mode must be a constant: NEAREST, BILINEAR or BICUBIC (plus PADDED, GREY)")
    return value & ~(PADDED | GREY), bool(value & PADDED)


def _literal_grey(mode) -> bool:
    """Whether a row function's constant mode has :data:`GREY`."""
    return bool(mode.literal_value & GREY)


def image_dims(img):
    """``(n, h, w, cc)`` of a kernel's image (or output) array: ``(N, H, W, C)``, or ``(N, H, W)`` for one
    channel (:data:`GREY`). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(image_dims, jit_options=OVERLOAD_OPTIONS)
def _ov_image_dims(img):
    if img.ndim == 3:
        return lambda img: (img.shape[0], img.shape[1], img.shape[2], np.int64(1))
    return lambda img: img.shape


def _grey_kind(mode, img) -> int:
    """A row function's mode constant for :func:`points_row`: plus :data:`GREY` for ``(N, H, W)`` images."""
    return mode.literal_value | (GREY if img.ndim == 3 else 0)


def _literal_mode(mode) -> int:
    return _literal_kind(mode)[0]


# The row functions below take the mode as a constant (the entry kernels pass NEAREST, BILINEAR or
# BICUBIC), so each entry compiles the paths of its own mode only. Padding, align_corners and the
# channel count stay run-time values; the image dtype picks the arithmetic (span_bilinear,
# run_bilinear).

@jit_device
def _fill_outside(xq, yq, dxq, dyq, lo_q, hi_q, h, w, wo, dst, dbase, fill, cc, is_int, maxv):
    """The pixels of an affine row of ``wo`` (32.32 coordinates ``xq + j dxq``, ``yq + j dyq``) outside
    ``lo_q <= q < size 2**32 + hi_q`` on either axis take the fill value; returns ``(c_lo, c_hi)``, the
    pixels inside it (one interval: the coordinates are linear in ``j``; empty, ``(wo, wo - 1)``, when none
    is)."""
    one = np.int64(1) << 32
    c_lo, c_hi = _row_interval(xq, yq, dxq, dyq, lo_q, w * one + hi_q, h * one + hi_q, wo)
    _fill_range(dst, dbase, np.int64(0), c_lo, fill, cc, is_int, maxv)
    _fill_range(dst, dbase, c_hi + 1, wo, fill, cc, is_int, maxv)
    return c_lo, c_hi


#: mode -> ``(lo_q, hi_q)``: an affine row's pixel whose 32.32 coordinate ``q`` (per axis, image side
#: ``size``) lies outside ``lo_q <= q < size 2**32 + hi_q`` has no tap inside the image; with zeros or
#: constant padding it takes the fill value, as the careful path would write it: bilinear exactly
#: there (:func:`_beyond` at ``q / 2**32``, the point it takes), bicubic where its sixteen taps are
#: outside. Nearest's bounds depend on the row (:func:`_nearest_slack`); these are placeholders.
_NO_TAP = {
    NEAREST: (np.int64(0), np.int64(0)),
    BILINEAR: (-(np.int64(1) << 32), np.int64(1)),
    BICUBIC: (-(np.int64(2) << 32), np.int64(2) << 32),
}


def edge_pixels(mode, src, sbase, h, w, cc, xq, yq, dxq, dyq, j_lo, j_hi, wo, dst, dbase, pad, align_corners, fill,
                is_int, maxv, coef):
    """The pixels of a row of ``wo`` outside its interior span ``j_lo <= j <= j_hi`` (empty when
    ``j_hi < j_lo``): the fill value where every tap is outside (zeros and constant padding), else the
    careful path (nearest: at the float coordinates ``(dx j + ax) + bx`` of ``coef``, evaluated as the
    reference evaluates its pixel map). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(edge_pixels, prefer_literal=True, jit_options=OVERLOAD_OPTIONS)
def _ov_edge_pixels(mode, src, sbase, h, w, cc, xq, yq, dxq, dyq, j_lo, j_hi, wo, dst, dbase, pad, align_corners,
                    fill, is_int, maxv, coef):
    m, with_padded = _literal_kind(mode)
    general = _MODE_FUNCS[m][1]
    padded = _PADDED[m][0] if with_padded else _no_padded_affine
    exact = m == NEAREST  # nearest rounds the float coordinate; the other modes keep the 32.32 one
    no_tap_lo, no_tap_hi = _NO_TAP[m]

    def impl(mode, src, sbase, h, w, cc, xq, yq, dxq, dyq, j_lo, j_hi, wo, dst, dbase, pad, align_corners, fill,
             is_int, maxv, coef):
        ax, bx, dx, ay, by, dy = coef
        # the pixels with a tap near the image: c_lo <= j <= c_hi, one interval (the coordinates are linear
        # in j) that holds the interior span; with zeros and constant padding the rest take the fill value
        c_lo = 0
        c_hi = wo - 1
        if pad == ZEROS or pad == CONSTANT:
            lo_q = no_tap_lo
            hi_q = no_tap_hi
            if exact:  # beyond -1/2 .. size - 1/2 by twice the slack: the float coordinate rounds outside
                lo_q = -Q_HALF - 2 * _nearest_slack(wo)
                hi_q = -Q_HALF + 2 * _nearest_slack(wo)
            c_lo, c_hi = _fill_outside(xq, yq, dxq, dyq, lo_q, hi_q, h, w, wo, dst, dbase, fill, cc, is_int, maxv)
        # the careful pixels: [c_lo, j_lo) and (j_hi, c_hi], or all of [c_lo, c_hi] without an interior span
        a_stop = c_hi + 1
        b_start = a_stop
        if j_lo <= j_hi:
            a_stop = j_lo
            b_start = j_hi + 1
        n_a = max(0, a_stop - c_lo)
        if with_padded and (pad == BORDER or pad == REFLECTION):  # every point padded inside: one loop
            padded(src, sbase, h, w, cc, xq, yq, dxq, dyq, coef, c_lo, a_stop, b_start, c_hi, dst, dbase, pad,
                   align_corners, fill, is_int, maxv)
            return
        for k in range(n_a + max(0, c_hi + 1 - b_start)):
            j = c_lo + k if k < n_a else b_start + (k - n_a)
            d = dbase + j * cc
            if exact:
                general(src, sbase, h, w, cc, (dx * j + ax) + bx, (dy * j + ay) + by, dst, d, pad, align_corners,
                        fill, is_int, maxv)
            else:
                general(src, sbase, h, w, cc, (xq + j * dxq) * Q_INV, (yq + j * dyq) * Q_INV, dst, d, pad,
                        align_corners, fill, is_int, maxv)
    return impl


def affine_rows(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    """The output rows claimed from ``work`` (all images' rows, ``r = n Ho + i``; :func:`_claim`) of an
    affine warp, by a thread in ``role`` (:data:`CALLER` or :data:`HELPER`): the input
    coordinates of row ``i`` are ``x0 + j dx``, ``y0 + j dy``. Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(affine_rows, prefer_literal=True, jit_options=OVERLOAD_OPTIONS)
def _ov_affine_rows(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    m = _literal_mode(mode)
    kind = mode.literal_value  # the mode, with PADDED or not: for the row helpers
    span, general, _, margin, _ = _MODE_FUNCS[m]
    nearest = m == NEAREST
    padded_kernel = _literal_kind(mode)[1]  # border and reflection padding's entries (PADDED_ENTRIES)

    def impl(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
        # Coordinates step exactly in 32.32 fixed point, so the interior span (every tap inside the
        # image) is an interval found by integer division; it runs without bounds checks, the rest of
        # the row takes the careful path.
        n_img, h, w, cc = img.shape
        _, ho, wo, _ = out.shape
        src = img.reshape(img.size)
        dst = out.reshape(out.size)
        n_maps = maps.shape[0]
        one = np.int64(1) << 32
        # the interior span: 32.32 coordinates lo_in <= q < (size - 1) 2**32 + hi_in on both axes; every tap
        # inside the image, or for nearest every pixel that rounds inside it, but near -1/2 and size - 1/2
        # (-1/2 .. size - 1/2, less twice the slack)
        lo_in = margin * one
        hi_in = -margin * one
        if nearest:
            lo_in = -Q_HALF + 2 * _nearest_slack(wo)
            hi_in = Q_HALF - 2 * _nearest_slack(wo)
        table = work[W_TABLE] if nearest else 0  # a column table (_nearest_columns) or none
        joined = _join(work, role)
        # nearest reads one tap per pixel and reads ahead slower than without (PREFETCH_AHEAD_BYTES)
        far = h * w * cc * src.itemsize > PREFETCH_AHEAD_BYTES and not nearest
        if not far:
            _prefetch_first(src, h * w * cc, role)
        while joined:
            r0, r1 = _claim(work)
            if r0 >= r1:
                break
            for r in range(r0, r1):
                n = r // ho
                i = r - n * ho
                k = n if n_maps > 1 else 0
                _prefetch_next(src, n, n_img, h * w * cc, i, ho)
                sbase = n * h * w * cc
                dbase = (n * ho + i) * wo * cc
                # the reference's order: (m00 j + m01 i) + m02
                ax = maps[k, 0, 1] * i
                bx = maps[k, 0, 2]
                ay = maps[k, 1, 1] * i
                by = maps[k, 1, 2]
                dx = maps[k, 0, 0]
                dy = maps[k, 1, 0]
                coef = (ax, bx, dx, ay, by, dy)
                x0 = ax + bx
                y0 = ay + by
                ahead_x = maps[k, 0, 1] * PREFETCH_ROWS
                ahead_y = maps[k, 1, 1] * PREFETCH_ROWS
                xa = x0 + 0 * dx
                xb = x0 + (wo - 1) * dx
                ya = y0 + 0 * dy
                yb = y0 + (wo - 1) * dy
                # the steps too (also finite): a one-pixel row's ends say nothing of them, and 32.32 steps of
                # Q_LIMIT px or more overflow (a 1-pixel-wide output scaled 1e9 read the fill)
                if not (max(abs(xa), abs(xb), abs(ya), abs(yb), abs(dx), abs(dy)) < Q_LIMIT):
                    for j in range(wo):
                        general(src, sbase, h, w, cc, (dx * j + ax) + bx, (dy * j + ay) + by, dst, dbase + j * cc, pad,
                                align_corners, fill, is_int, maxv)
                    continue
                xq0 = _to_q(x0)
                yq0 = _to_q(y0)
                dxq = _to_q(dx)
                dyq = _to_q(dy)
                j_lo, j_hi = _row_interval(xq0, yq0, dxq, dyq, lo_in, (w - 1) * one + hi_in, (h - 1) * one + hi_in,
                                           wo)
                if table != 0 and padded_kernel:
                    # border and reflection padding: the table's columns are padded (_nearest_columns), and so is
                    # the row's own coordinate below: every pixel of the row reads the table
                    j_lo = 0
                    j_hi = wo - 1
                if j_hi >= j_lo and table != 0:  # the coordinate that is the same at every pixel, rounded once
                    if table == TABLE_X:
                        t, size, stride = (dy * j_lo + ay) + by, h, w * cc
                    else:
                        t, size, stride = (dx * j_lo + ax) + bx, w, cc
                    if padded_kernel:
                        t = _pad_coord_inline(t, size, pad, align_corners)
                    _span_nearest_table(src, sbase + np.int64(_rint(t)) * stride, cc, work, j_lo, j_hi + 1, dst,
                                        dbase)
                elif j_hi >= j_lo:
                    if far and abs(ahead_x) + abs(ahead_y) < Q_LIMIT / 2:  # taps PREFETCH_ROWS rows below, cached for them
                        _prefetch_row(src, sbase, w * cc, cc, _to_q(x0 + ahead_x), _to_q(y0 + ahead_y), dxq, dyq, j_lo,
                                      j_hi + 1)
                    span(src, sbase, w * cc, cc, xq0 + j_lo * dxq, yq0 + j_lo * dyq, dxq, dyq, j_lo, j_hi + 1, dst,
                         dbase, is_int, maxv, coef)
                if j_lo > 0 or j_hi < wo - 1:  # (skipped when the span is the whole row)
                    edge_pixels(kind, src, sbase, h, w, cc, xq0, yq0, dxq, dyq, j_lo, j_hi, wo, dst, dbase, pad,
                                align_corners, fill, is_int, maxv, coef)
        return _finish(work, role, joined)
    return impl


def points_row(mode, src, sbase, h, w, cc, xs, ys, wo, dst, dbase, pad, align_corners, fill, is_int, maxv, cells):
    """The ``wo`` output pixels of a row at input pixel coordinates ``xs[j], ys[j]`` (``cells``: int64
    scratch of ``3 wo``). Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(points_row, prefer_literal=True, jit_options=OVERLOAD_OPTIONS)
def _ov_points_row(mode, src, sbase, h, w, cc, xs, ys, wo, dst, dbase, pad, align_corners, fill, is_int, maxv,
                   cells):
    m, with_padded = _literal_kind(mode)
    _, general, run, margin, row_cells = _MODE_FUNCS[m]
    if _literal_grey(mode) and m == BILINEAR:
        run = run_bilinear_grey
    padded = _PADDED[m][1] if with_padded else _no_padded_points
    exact = m == NEAREST  # nearest rounds the float coordinate; the other modes keep the 32.32 one

    def impl(mode, src, sbase, h, w, cc, xs, ys, wo, dst, dbase, pad, align_corners, fill, is_int, maxv, cells):
        # the row's cells in one vectorized loop; then runs of pixels that need no careful path, one call
        # each, and the careful path between them
        row_cells(sbase, h, w, cc, xs, ys, wo, margin, cells)
        fills = pad == ZEROS or pad == CONSTANT
        j = run(src, h, w, cc, xs, ys, cells, 0, wo, dst, dbase, is_int, maxv, fill, fills)
        if with_padded and (pad == BORDER or pad == REFLECTION):  # the careful pixels in runs of their own
            while j < wo:
                j = padded(src, sbase, h, w, cc, xs, ys, cells, j, wo, dst, dbase, pad, align_corners, fill, is_int,
                           maxv)
                j = run(src, h, w, cc, xs, ys, cells, j, wo, dst, dbase, is_int, maxv, fill, fills)
            return
        while j < wo:
            x, y = _careful_point(xs[j], ys[j], exact)
            general(src, sbase, h, w, cc, x, y, dst, dbase + j * cc, pad, align_corners, fill, is_int, maxv)
            j = run(src, h, w, cc, xs, ys, cells, j + 1, wo, dst, dbase, is_int, maxv, fill, fills)
    return impl


def projective_rows(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    """The output rows claimed from ``work`` of a projective warp. Callable from kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(projective_rows, prefer_literal=True, jit_options=ALLOCATING_OVERLOAD_OPTIONS)
def _ov_projective_rows(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    m = _literal_mode(mode)
    kind = _grey_kind(mode, img)  # the mode, with PADDED or not, GREY or not: for the row helpers

    def impl(mode, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
        n_img, h, w, cc = image_dims(img)
        _, ho, wo, _ = image_dims(out)
        src = img.reshape(img.size)
        dst = out.reshape(out.size)
        n_maps = maps.shape[0]
        xs = np.empty(wo)
        ys = np.empty(wo)
        cells = np.empty(3 * wo, np.int64)
        joined = _join(work, role)
        _prefetch_first(src, h * w * cc, role)
        while joined:
            r0, r1 = _claim(work)
            if r0 >= r1:
                break
            for r in range(r0, r1):
                n = r // ho
                i = r - n * ho
                k = n if n_maps > 1 else 0
                _prefetch_next(src, n, n_img, h * w * cc, i, ho)
                m00, m01, m02 = maps[k, 0, 0], maps[k, 0, 1], maps[k, 0, 2]
                m10, m11, m12 = maps[k, 1, 0], maps[k, 1, 1], maps[k, 1, 2]
                m20, m21, m22 = maps[k, 2, 0], maps[k, 2, 1], maps[k, 2, 2]
                u0 = m01 * i + m02
                v0 = m11 * i + m12
                q0 = m21 * i + m22
                for j in range(wo):
                    q = m20 * j + q0
                    xs[j] = (m00 * j + u0) / q
                    ys[j] = (m10 * j + v0) / q
                points_row(kind, src, n * h * w * cc, h, w, cc, xs, ys, wo, dst, (n * ho + i) * wo * cc, pad,
                           align_corners, fill, is_int, maxv, cells)
        return _finish(work, role, joined)
    return impl


def grid_rows(mode, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    """The output rows claimed from ``work``, sampled at a grid of input normalized coordinates. Kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(grid_rows, prefer_literal=True, jit_options=ALLOCATING_OVERLOAD_OPTIONS)
def _ov_grid_rows(mode, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    m = _literal_mode(mode)
    kind = _grey_kind(mode, img)  # the mode, with PADDED or not, GREY or not: for the row helpers

    def impl(mode, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
        n_img, h, w, cc = image_dims(img)
        _, ho, wo, _ = image_dims(out)
        src = img.reshape(img.size)
        dst = out.reshape(out.size)
        n_grids = grid.shape[0]
        xs = np.empty(wo)
        ys = np.empty(wo)
        cells = np.empty(3 * wo, np.int64)
        joined = _join(work, role)
        _prefetch_first(src, h * w * cc, role)
        while joined:
            r0, r1 = _claim(work)
            if r0 >= r1:
                break
            for r in range(r0, r1):
                n = r // ho
                i = r - n * ho
                k = n if n_grids > 1 else 0
                _prefetch_next(src, n, n_img, h * w * cc, i, ho)
                for j in range(wo):
                    xs[j] = _unnormalize(np.float64(grid[k, i, j, 0]), w, align_corners)
                    ys[j] = _unnormalize(np.float64(grid[k, i, j, 1]), h, align_corners)
                points_row(kind, src, n * h * w * cc, h, w, cc, xs, ys, wo, dst, (n * ho + i) * wo * cc, pad,
                           align_corners, fill, is_int, maxv, cells)
        return _finish(work, role, joined)
    return impl


#: Rows per TPS task: a task interpolates its rows' coordinates from the lattice, then samples them.
TPS_BLOCK = 16


@intrinsic
def _phases3(typingctx, coef, whole, inv, xs, ys):
    """For a lattice step of 3: ``xs[3 b + k]`` and ``ys[3 b + k]`` = each cell's cubic (``coef`` rows 0-3
    for x, 4-7 for y, as :func:`_tps_row_coords` makes them) at ``t = k inv``, ``((c3 t + c2) t + c1) t +
    c0``, for ``k < 3`` and the cells ``b`` of the whole blocks of eight below ``whole``, in lanes of eight
    float64 stored in pixel order (the same operations as the loops, so the same bits). Returns the cells
    done: 0 where the target has no AVX-512 (:func:`_has_cells8`) or an array is not contiguous."""
    if not (isinstance(coef, types.Array) and coef.ndim == 2 and coef.dtype == types.float64
            and all(isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.float64 for a in (xs, ys))):
        return None
    sig = types.intp(coef, whole, inv, xs, ys)

    def codegen(context, builder, sig, args):
        i32, i64, f64 = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        if not _has_cells8(context) or any(a.layout != "C" for a in (sig.args[0], sig.args[3], sig.args[4])):
            return ir.Constant(i64, 0)
        n = 8
        vf = ir.VectorType(f64, n)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        stride = cgutils.unpack_tuple(builder, ary.shape, 2)[1]  # elements per coef row
        outs = [context.make_array(sig.args[k])(context, builder, args[k]).data for k in (3, 4)]
        inv = context.cast(builder, args[2], sig.args[2], types.float64)
        ts = [_splat(builder, vf, builder.fmul(ir.Constant(f64, float(k)), inv)) for k in range(3)]
        blocks = builder.sdiv(context.cast(builder, args[1], sig.args[1], types.intp), ir.Constant(i64, n))
        lanes = lambda *idx: ir.Constant(ir.VectorType(i32, len(idx)), list(idx))  # noqa: E731
        with cgutils.for_range(builder, blocks) as loop:
            b = builder.mul(loop.index, ir.Constant(i64, n))
            for axis in range(2):
                c0, c1, c2, c3 = (builder.load(builder.bitcast(
                    builder.gep(ary.data, [builder.add(builder.mul(ir.Constant(i64, 4 * axis + m), stride), b)]),
                    vf.as_pointer()), align=8) for m in range(4))
                p = [builder.fadd(builder.fmul(builder.fadd(builder.fmul(builder.fadd(builder.fmul(c3, t), c2), t),
                                                            c1), t), c0) for t in ts]
                first = builder.shuffle_vector(p[0], p[1], lanes(*range(2 * n)))
                last = builder.shuffle_vector(p[2], p[2], lanes(*range(2 * n)))
                # pixel 3 b' + k of the block is phase k's lane b' (lanes 0-15 of first, 16-23 of last)
                pixels = builder.shuffle_vector(first, last, lanes(*(k * n + c for c in range(n) for k in range(3))))
                to = builder.gep(outs[axis], [builder.mul(b, ir.Constant(i64, 3))])
                builder.store(pixels, builder.bitcast(to, pixels.type.as_pointer()), align=8)
        return builder.mul(blocks, ir.Constant(i64, n))
    return sig, codegen


@jit_device
def _tps_row_coords(lattice, step, inv, singular, tables, radius, snx, sny, i, wo, rows, coef, xs, ys):
    """The input pixel coordinates ``xs, ys`` of output row ``i`` of a TPS plan (spec:
    ``_reference.tps_lattice_points``): Catmull-Rom upsampling plus exact radial terms near control points.
    Scratch: ``rows (2, Wc + 2)`` (the lattice interpolated to the row, x then y) and ``coef (8, Wc - 1)``
    (each cell's cubic). The loops over cells are contiguous in memory, so the compiler runs them in
    vector lanes; the pixels of a cell then go cell by cell (for step 3, whole blocks of eight cells in
    vector lanes first where the target allows: :func:`_phases3`, the same operations, so the same bits).
    Computing every step's pixels one fraction of a cell at a time over the cells, then putting them in
    pixel order, was slower for steps 2, 4 and 6 on an AVX-512 Xeon (TPS and elastic warps, uint8: 5-23%)
    and cost about 0.5 s of a first TPS call's compile."""
    hc = lattice.shape[0] - 2
    wc = lattice.shape[1] - 2
    a = min(i // step, hc - 2)
    wy0, wy1, wy2, wy3 = _cr_weights((i - a * step) * inv)
    l0, l1, l2, l3 = lattice[a], lattice[a + 1], lattice[a + 2], lattice[a + 3]
    rx, ry = rows[0], rows[1]
    for b in range(wc + 2):
        rx[b] = wy0 * l0[b, 0] + wy1 * l1[b, 0] + wy2 * l2[b, 0] + wy3 * l3[b, 0]
        ry[b] = wy0 * l0[b, 1] + wy1 * l1[b, 1] + wy2 * l2[b, 1] + wy3 * l3[b, 1]
    # each cell's cubic in t (its pixels' fraction of the way to the next node), for x and y
    for axis in range(2):
        r = rows[axis]
        c0, c1, c2, c3 = coef[4 * axis], coef[4 * axis + 1], coef[4 * axis + 2], coef[4 * axis + 3]
        for b in range(wc - 1):
            c0[b] = r[b + 1]
            c1[b] = 0.5 * (r[b + 2] - r[b])
            c2[b] = r[b] - 2.5 * r[b + 1] + 2.0 * r[b + 2] - 0.5 * r[b + 3]
            c3[b] = 0.5 * (r[b + 3] - r[b]) + 1.5 * (r[b + 1] - r[b + 2])
    # step 3 (elastic sigma 6 and 7): the cells with all their pixels in the row (not the last, which also
    # takes the row's end) in blocks of eight, where the target allows; the rest cell by cell
    whole = _phases3(coef, min(wc - 2, wo // step), inv, xs, ys) if step == 3 else 0
    for b in range(whole, wc - 1):
        j_start = b * step
        j_stop = min((b + 1) * step, wo) if b < wc - 2 else wo
        x1, cx1, cx2, cx3 = coef[0, b], coef[1, b], coef[2, b], coef[3, b]
        y1, cy1, cy2, cy3 = coef[4, b], coef[5, b], coef[6, b], coef[7, b]
        for j in range(j_start, j_stop):
            t = (j - j_start) * inv
            xs[j] = ((cx3 * t + cx2) * t + cx1) * t + x1
            ys[j] = ((cy3 * t + cy2) * t + cy1) * t + y1
    for q in range(singular.shape[0]):
        cx = singular[q, 0]
        cy = singular[q, 1]
        if abs(i - cy) > radius:
            continue
        j_lo = max(0, int(np.ceil(cx - radius)))
        j_hi = min(wo - 1, int(np.floor(cx + radius)))
        dyn = (i - cy) * sny
        for j in range(j_lo, j_hi + 1):
            dxn = (j - cx) * snx
            d2 = dxn * dxn + dyn * dyn
            u = _tps_radial(d2)
            b = min(j // step, wc - 2)
            wx0, wx1, wx2, wx3 = _cr_weights((j - b * step) * inv)
            acc = 0.0
            for qq in range(4):
                wyq = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
                acc += wyq * (wx0 * tables[a + qq, b, q] + wx1 * tables[a + qq, b + 1, q]
                              + wx2 * tables[a + qq, b + 2, q] + wx3 * tables[a + qq, b + 3, q])
            corr = u - acc
            xs[j] += singular[q, 2] * corr
            ys[j] += singular[q, 3] * corr


def tps_rows(mode, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners, fill,
             is_int, maxv):
    """The TPS tasks claimed from ``work`` (task ``t``: image ``t // blocks``, rows of block ``t % blocks``).
    Kernels only."""
    raise NotImplementedError("compiled kernels only")


@overload(tps_rows, prefer_literal=True, jit_options=ALLOCATING_OVERLOAD_OPTIONS)
def _ov_tps_rows(mode, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners,
                 fill, is_int, maxv):
    m = _literal_mode(mode)
    kind = _grey_kind(mode, img)  # the mode, with PADDED or not, GREY or not: for the row helpers

    def impl(mode, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners, fill,
             is_int, maxv):
        n_img, h, w, cc = image_dims(img)
        _, ho, wo, _ = image_dims(out)
        wc = lattice.shape[1] - 2
        src = img.reshape(img.size)
        dst = out.reshape(out.size)
        inv = 1.0 / step
        n_blocks = (ho + TPS_BLOCK - 1) // TPS_BLOCK
        rows = np.empty((2, wc + 2))
        coef = np.empty((8, wc - 1))
        xs = np.empty(wo)
        ys = np.empty(wo)
        cells = np.empty(3 * wo, np.int64)
        joined = _join(work, role)
        _prefetch_first(src, h * w * cc, role)
        while joined:
            t0, t1 = _claim(work)
            if t0 >= t1:
                break
            for task in range(t0, t1):
                n = task // n_blocks
                i0 = (task - n * n_blocks) * TPS_BLOCK
                for i in range(i0, min(i0 + TPS_BLOCK, ho)):
                    _tps_row_coords(lattice, step, inv, singular, tables, radius, snx, sny, i, wo, rows, coef, xs, ys)
                    points_row(kind, src, n * h * w * cc, h, w, cc, xs, ys, wo, dst, (n * ho + i) * wo * cc, pad,
                               align_corners, fill, is_int, maxv, cells)
        return _finish(work, role, joined)
    return impl


# --------------------------------------------------------------------------- entry kernels, one per (family, mode)
# Serial and GIL-free, over a range of output rows (or TPS tasks); :func:`_run_blocks` runs blocks of
# the range on a thread pool. A call compiles (or loads) only its own family, mode and dtypes.

@jit_serial
def warp_affine_nearest(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(NEAREST, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_affine_bilinear(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(BILINEAR, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_affine_bicubic(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(BICUBIC, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_nearest(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(NEAREST, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_bilinear(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(BILINEAR, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_bicubic(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(BICUBIC, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_nearest(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(NEAREST, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_bilinear(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(BILINEAR, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_bicubic(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(BICUBIC, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_nearest(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners, fill,
                     is_int, maxv):
    return tps_rows(NEAREST, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_bilinear(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners, fill,
                      is_int, maxv):
    return tps_rows(BILINEAR, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_bicubic(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad, align_corners, fill,
                     is_int, maxv):
    return tps_rows(BICUBIC, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


# The same entries for border and reflection padding (the row functions' mode plus PADDED): only these
# compile the padded loops (:data:`_PADDED`).

@jit_serial
def warp_affine_nearest_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(NEAREST_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_affine_bilinear_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(BILINEAR_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_affine_bicubic_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return affine_rows(BICUBIC_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_nearest_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(NEAREST_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_bilinear_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(BILINEAR_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_projective_bicubic_padded(img, maps, out, work, role, pad, align_corners, fill, is_int, maxv):
    return projective_rows(BICUBIC_PADDED, img, maps, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_nearest_padded(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(NEAREST_PADDED, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_bilinear_padded(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(BILINEAR_PADDED, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def sample_grid_bicubic_padded(img, grid, out, work, role, pad, align_corners, fill, is_int, maxv):
    return grid_rows(BICUBIC_PADDED, img, grid, out, work, role, pad, align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_nearest_padded(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                            align_corners, fill, is_int, maxv):
    return tps_rows(NEAREST_PADDED, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_bilinear_padded(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                             align_corners, fill, is_int, maxv):
    return tps_rows(BILINEAR_PADDED, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


@jit_serial
def warp_tps_bicubic_padded(img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                            align_corners, fill, is_int, maxv):
    return tps_rows(BICUBIC_PADDED, img, lattice, step, singular, tables, radius, snx, sny, out, work, role, pad,
                    align_corners, fill, is_int, maxv)


#: (family, mode) -> entry kernel. Families: "affine", "projective", "grid", "tps".
ENTRIES = {
    ("affine", NEAREST): warp_affine_nearest, ("affine", BILINEAR): warp_affine_bilinear,
    ("affine", BICUBIC): warp_affine_bicubic,
    ("projective", NEAREST): warp_projective_nearest, ("projective", BILINEAR): warp_projective_bilinear,
    ("projective", BICUBIC): warp_projective_bicubic,
    ("grid", NEAREST): sample_grid_nearest, ("grid", BILINEAR): sample_grid_bilinear,
    ("grid", BICUBIC): sample_grid_bicubic,
    ("tps", NEAREST): warp_tps_nearest, ("tps", BILINEAR): warp_tps_bilinear, ("tps", BICUBIC): warp_tps_bicubic,
}
#: (family, mode) -> the entry kernel for border and reflection padding (each entry's ``..._padded`` twin).
PADDED_ENTRIES = {key: globals()[kernel.py_func.__name__ + "_padded"] for key, kernel in ENTRIES.items()}


#: Padding ids of :data:`stntool.sampling.OWN_KERNEL_PADDINGS` (border and reflection).
_OWN_KERNEL_PADS = frozenset(PADDINGS[name] for name in OWN_KERNEL_PADDINGS)


def entry(family: str, mode: int, pad: int):
    """The entry kernel of a family and mode for padding ``pad``: border and reflection padding have
    entries of their own (:data:`PADDED_ENTRIES`), which alone compile the padded loops."""
    return (PADDED_ENTRIES if pad in _OWN_KERNEL_PADS else ENTRIES)[(family, mode)]


# --------------------------------------------------------------------------- running blocks of rows

#: Below this many output values a call runs on the caller's thread alone.
MIN_PARALLEL_WORK = 16384
#: An affine warp's output value in units of MIN_PARALLEL_WORK's, by mode (a projective one's twice that): on
#: a 2-core AMD EPYC a second thread's hand-off pays from about 50,000 nearest values (a 128x128x3 image),
#: 16,000 bilinear and 4,000 bicubic values (one thread and two alternated in steady runs); at one unit a
#: value, 96x96x3 nearest took 25% longer on two threads than on one, and 48x48x3 bicubic 12% longer on one.
MODE_WORK = {NEAREST: 0.33, BILINEAR: 1.0, BICUBIC: 4.0}
#: Chunks per thread a call's items are cut into (a late thread costs at most about one chunk).
CHUNKS_PER_THREAD = 16
#: Chunks per thread each image of a batch is cut into at least, for kernels that prefetch the next
#: image (:func:`_run_blocks`'s ``per_image``).
IMAGE_SHARES = 4
_helpers = None
_helpers_lock = threading.Lock()


class _Task:
    """One helper's share of a call (``work``: its schedule); ``wait()`` returns once the helper has run it."""

    __slots__ = ("kernel", "args", "work", "done", "error")

    def __init__(self, kernel, args, work):
        self.kernel = kernel
        self.args = args
        self.work = work
        self.error = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self):
        try:
            self.kernel(*self.args)
        except BaseException as e:  # handed to the caller if it waits
            self.error = e
        finally:
            self.done.release()

    def wait(self):
        self.done.acquire()
        self.done.release()
        if self.error is not None:
            raise self.error


#: How long (microseconds) a helper thread busy-waits for the next call after its last task, without the
#: GIL, before it sleeps (``STNTOOL_SPIN_US``; 0: sleep at once). Waking a sleeping thread costs tens of
#: microseconds on some machines, a good part of a small call; a helper that finds no call in that
#: time sleeps at once for its next :data:`QUIET_TASKS` tasks, so long gaps between calls cost little.
SPIN_US = 200.0
QUIET_TASKS = 8
#: A helper starts watching after this many tasks: a short run (a few images) never compiles :func:`_watch`
#: (0.3 s on a first run; 4 ms to load from the cache after that).
WATCH_AFTER = 8
#: ``[calls posted, address of the last one's schedule]`` (:func:`_post`, :func:`_watch`)
_BOARD = np.zeros(2, np.int64)
_POSTED = collections.deque(maxlen=8)  # the last schedules posted: alive while a helper may read them


def _spin_us() -> float:
    try:
        return max(0.0, float(os.environ.get("STNTOOL_SPIN_US", SPIN_US)))
    except ValueError:
        return SPIN_US


def _post(schedule):
    """Tell watching helpers that a call has put its tasks on the queue (:func:`_watch`)."""
    _POSTED.append(schedule)
    _BOARD[1] = schedule.__array_interface__["data"][0]
    _BOARD[0] += 1


def _spins_for(us: float) -> int:
    """Checks of :func:`_watch` that take about ``us`` microseconds on this machine (measured once)."""
    if us <= 0:
        return 0
    idle = np.zeros(2, np.int64)
    back = np.zeros(W_BACK + 1, np.int64)
    _watch(idle, 0, 1000, back)
    t = time.perf_counter()
    _watch(idle, 0, 100000, back)
    per_us = 100000 / max((time.perf_counter() - t) * 1e6, 1.0)
    return max(1, int(us * per_us))


def _helper_loop(tasks):
    spins = None  # measured once this thread has run WATCH_AFTER tasks
    quiet = WATCH_AFTER  # tasks to take without watching (at first, and after a watch that found no call)
    nothing = np.zeros(W_BACK + 1, np.int64)
    back = nothing  # the last task's schedule, until this thread has counted itself back there (W_BACK)
    while True:
        seen = int(_BOARD[0])
        try:
            task = tasks.get_nowait()
        except queue.Empty:
            if not quiet and spins is None:
                spins = _spins_for(_spin_us())
            if spins and not quiet:
                found = _watch(_BOARD, seen, spins, back)  # counts this thread back first, without the GIL
                back = nothing
                if found >= 0:
                    continue  # a call posted its tasks: take one
                quiet = QUIET_TASKS
            back[W_BACK] += 1  # about to let go of the GIL, waiting
            back = nothing
            task = tasks.get()
            quiet = max(0, quiet - 1)
        back[W_BACK] += 1  # about to let go of the GIL, in the next task's kernel
        back = task.work
        task.run()


def _helper_queue() -> queue.SimpleQueue:
    """The queue of the helper threads (``NUMBA_NUM_THREADS - 1`` daemon threads, started on first use)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            tasks = queue.SimpleQueue()
            for k in range(max(1, numba.config.NUMBA_NUM_THREADS - 1)):
                threading.Thread(target=_helper_loop, args=(tasks,), name=f"stntool-rows-{k}", daemon=True).start()
            _helpers = tasks
        return _helpers


def _forget_helpers_in_child():
    """A forked child has none of the parent's helper threads: start new ones there when needed."""
    global _helpers, _helpers_lock
    _helpers = None
    _helpers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers_in_child)


def _thread_count() -> int:
    """``numba.get_num_threads()`` (this thread's setting), without its per-call lock once numba's
    threading layer has started (the public function takes a process-wide lock to check that)."""
    read = getattr(_numba_parallel, "_get_num_threads", None)
    if read is not None and getattr(_numba_parallel, "_is_initialized", False):
        n = read()
        if n > 0:
            return n
    return numba.get_num_threads()


def _schedule(n_items, chunk, table=None):
    """A call's ``work`` array: the schedule's words and, where given, the column table ``(axis,
    offsets)`` (:func:`_nearest_columns`)."""
    work = np.zeros(W_WORDS + (0 if table is None else table[1].size), dtype=np.int64)
    work[W_ITEMS] = n_items
    work[W_CHUNK] = chunk
    if table is not None:
        work[W_TABLE] = table[0]
        work[W_WORDS:] = table[1]
    return work


def _run_blocks(kernel, n_items, work, args_before, args_after, per_image=0, table=None):
    """``kernel(*args_before, schedule, role, *args_after)`` over items ``0 <= i < n_items`` on up to
    ``numba.get_num_threads()`` threads (which the caller may lower per thread): the caller's thread and
    helper threads claim chunks of items from a shared schedule (:func:`_claim`) until none is left.
    Small calls (``work`` output values below :data:`MIN_PARALLEL_WORK`) and single-thread settings run
    on the caller's thread alone. Items write disjoint outputs, so the result does not depend on which
    thread ran which chunk.

    ``per_image``: items per image of a batch, when the kernel prefetches the next image while it samples
    one (:func:`_prefetch_next`); a chunk is then at most :data:`IMAGE_SHARES` ths of an image per thread,
    so every thread works on every image and their prefetches together bring in all of the next one
    (with a whole image per chunk, each thread prefetches the image another thread is already sampling).

    ``table``: the column table of an affine nearest warp (:func:`_nearest_columns`), or None."""
    n_thr = 1 if work < MIN_PARALLEL_WORK else min(_thread_count(), n_items)
    if n_thr <= 1:
        kernel(*args_before, _schedule(n_items, max(n_items, 1), table), CALLER, *args_after)
        return
    chunk = max(1, n_items // (CHUNKS_PER_THREAD * n_thr))
    if per_image:
        chunk = min(chunk, max(1, per_image // (IMAGE_SHARES * n_thr)))
    schedule = _schedule(n_items, chunk, table)
    helpers = _helper_queue()
    tasks = [_Task(kernel, (*args_before, schedule, HELPER, *args_after), schedule) for _ in range(n_thr - 1)]
    for t in tasks:
        helpers.put(t)
    _post(schedule)
    if not kernel(*args_before, schedule, CALLER, *args_after):
        for t in tasks:  # the caller stopped spinning: wait for the helpers still running
            t.wait()


# --------------------------------------------------------------------------- the kernel table

def channel_views(img, out):
    """``(img, out)`` as the points-row kernels (projective, grid, TPS) take them: one-channel arrays as
    ``(N, H, W)`` views (:data:`GREY`), others as they are."""
    if img.shape[3] == 1:
        return img[..., 0], out[..., 0]
    return img, out


def warp_matrix(img, maps, out, mode, pad, align_corners, fill, is_int, maxv, projective):
    """``out[n, i, j] = img[n]`` sampled at ``maps[n] @ (j, i, 1)`` (pixel maps ``in_pix_from_out_pix``).
    Warps that read whole input pixels (identity, flips, quarter turns, whole-pixel shifts) are copies
    where that gives the kernels' bits (:mod:`stntool.sampling._copies`)."""
    if not projective and _copies.warp_matrix(img, maps, out, int(mode), int(pad), fill, bool(is_int), float(maxv)):
        return
    kernel = entry("projective" if projective else "affine", int(mode), int(pad))
    n_rows = out.shape[0] * out.shape[1]
    if projective:
        img, out = channel_views(img, out)  # (N, H, W) for one channel: out.shape[1] is still H
    work = int(out.size * MODE_WORK[int(mode)] * (2 if projective else 1))
    table = None if projective or int(mode) != NEAREST else _nearest_columns(maps, img.shape[2], img.shape[3],
                                                                                out.shape[2], img.shape[1], int(pad),
                                                                                bool(align_corners))
    _run_blocks(kernel, n_rows, work, (img, maps, out), (pad, align_corners, fill, is_int, maxv),
                per_image=out.shape[1], table=table)


#: Column tables (:func:`_nearest_columns`): output pixel ``j`` of every row reads input column ``x_j``
#: (the row's ``y`` is the same at every pixel), or input row ``y_j`` (the row's ``x`` is the same).
TABLE_X, TABLE_Y = 1, 2


def _nearest_columns(maps, w, cc, wo, h=None, pad=ZEROS, align_corners=False):
    """``(axis, offsets)`` for an affine nearest warp along the image axes, else None.

    When every pixel map ``maps[k]`` (``in_pix_from_out_pix``) is the same in its first two rows and has
    ``m10 = m01 = 0`` (scales, flips and shifts), output pixel ``j`` of every row reads input column
    ``rint((m00 j + m01 i) + m02)``, the same in every row ``i`` (``m01 i`` is a zero), and the row's ``y``
    is the same at every pixel: ``offsets[j]`` is that column times ``cc`` (:data:`TABLE_X`). With ``m00 =
    m11 = 0`` (those after a quarter turn) pixel ``j`` reads input row ``rint((m10 j + m11 i) + m12)``:
    ``offsets[j]`` is that row times ``w cc`` (:data:`TABLE_Y`). The kernel uses the table inside a row's
    interior span only, where every pixel rounds inside the image; elsewhere (and ``offsets`` there) it
    is unused. Such warps put many pixels on ties (a 2x reduction puts every one there), which the
    kernel's fixed-point rounding sends to the float coordinate one by one; the table rounds each
    column once, with the reference's :func:`_reference.rint`, bit for bit the kernels' rounding.

    With border or reflection padding (``pad``, ``align_corners`` and the input's height ``h``) every
    column is the reference's padded one, ``rint(apply_padding(x))``: every pixel of every row then reads
    its table entry, the row's own coordinate padded and rounded once (:func:`affine_rows`). The entries a
    span reads inside the image are the same either way.

    The tables of the last few warps are kept (:func:`_column_table`): a batch of calls with one θ, such as
    a folder warped by ``--theta``, rounds its columns once (about 30 us of a 512-pixel row's table). Rows
    wider than :data:`KEPT_TABLE_WIDTH` pixels make their tables each time (what they keep would outweigh
    the rounding: 16 tables of 20 million entries held 2.5 GB)."""
    (m00, m01, m02), (m10, m11, m12) = maps[0, :2].tolist()
    if m10 == 0.0 and m01 == 0.0:
        axis, d, a, b, stride = TABLE_X, m00, m01, m02, cc
    elif m00 == 0.0 and m11 == 0.0:
        axis, d, a, b, stride = TABLE_Y, m10, m11, m12, w * cc
    else:
        return None
    if maps.shape[0] > 1 and not np.all(maps[:, :2, :] == maps[:1, :2, :]):
        return None
    table = _column_table if wo <= KEPT_TABLE_WIDTH else _column_table.__wrapped__
    if pad in (BORDER, REFLECTION) and h is not None:
        return table(axis, d, a, b, stride, wo, int(pad), w if axis == TABLE_X else h, bool(align_corners))
    return table(axis, d, a, b, stride, wo, ZEROS, 0, False)


#: The widest rows whose column tables are kept (:func:`_nearest_columns`): 16 tables of at most 512 KB.
KEPT_TABLE_WIDTH = 1 << 16


@functools.lru_cache(maxsize=16)
def _column_table(axis, d, a, b, stride, wo, pad, size, align_corners):
    """:func:`_nearest_columns`' table (read-only) of columns ``(d j + a) + b`` for ``j < wo`` times ``stride``,
    padded (border, reflection) for an axis of ``size`` pixels, or None where a column is not finite. Keys
    that differ only in the sign of a zero give the same table: their columns differ in that sign alone,
    which rounding to whole pixels drops."""
    from ._reference import rint
    coords = (d * np.arange(wo, dtype=np.float64) + a) + b  # the kernels' order: (d j + a i) + b, a i a zero
    if not np.all(np.isfinite(coords)):
        return None
    if pad in (BORDER, REFLECTION):
        from ._reference import apply_padding

        padding = "border" if pad == BORDER else "reflection"
        offsets = rint(apply_padding(coords, size, padding, align_corners)).astype(np.int64) * stride
    else:
        offsets = np.clip(rint(coords), -1, 1 << 31).astype(np.int64) * stride
    offsets.flags.writeable = False
    return axis, offsets


def sample_grid(img, grid, out, mode, pad, align_corners, fill, is_int, maxv):
    """Generic sampler: ``grid (M, Ho, Wo, 2)`` of input normalized coordinates, ``M`` 1 or N."""
    kernel = entry("grid", int(mode), int(pad))
    n_rows = out.shape[0] * out.shape[1]
    img, out = channel_views(img, out)
    _run_blocks(kernel, n_rows, out.size, (img, grid, out), (pad, align_corners, fill, is_int, maxv))


def warp_tps_lattice(img, lattice, step, singular, tables, radius, snx, sny, out, mode, pad, align_corners, fill,
                     is_int, maxv):
    """Fused TPS warp: Catmull-Rom upsampling of an apron lattice plus exact radial terms near control points.

    Spec: ``_reference.tps_lattice_points``. ``lattice (Hc+2, Wc+2, 2)``, ``singular (K, 4)``,
    ``tables (Hc+2, Wc+2, K)``; one plan for every image of the batch. Tasks are blocks of
    :data:`TPS_BLOCK` rows of one image.
    """
    kernel = entry("tps", int(mode), int(pad))
    n_tasks = out.shape[0] * ((out.shape[1] + TPS_BLOCK - 1) // TPS_BLOCK)
    img, out = channel_views(img, out)
    _run_blocks(kernel, n_tasks, out.size, (img, lattice, step, singular, tables, radius, snx, sny, out),
                (pad, align_corners, fill, is_int, maxv))


@jit_serial
def _tps_lattice_points_range(lattice, step, singular, tables, radius, snx, sny, js, is_, out, work, role):
    hc = lattice.shape[0] - 2
    wc = lattice.shape[1] - 2
    inv = 1.0 / step
    joined = _join(work, role)
    while joined:
        p0, p1 = _claim(work)
        if p0 >= p1:
            break
        for p in range(p0, p1):
            j = js[p]
            i = is_[p]
            a = min(i // step, hc - 2)
            b = min(j // step, wc - 2)
            wy0, wy1, wy2, wy3 = _cr_weights((i - a * step) * inv)
            wx0, wx1, wx2, wx3 = _cr_weights((j - b * step) * inv)
            for c in range(2):
                acc = 0.0
                for qq in range(4):
                    wyq = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
                    acc += wyq * (wx0 * lattice[a + qq, b, c] + wx1 * lattice[a + qq, b + 1, c]
                                  + wx2 * lattice[a + qq, b + 2, c] + wx3 * lattice[a + qq, b + 3, c])
                out[p, c] = acc
            for q in range(singular.shape[0]):
                cx = singular[q, 0]
                cy = singular[q, 1]
                if abs(i - cy) > radius or abs(j - cx) > radius:
                    continue
                dxn = (j - cx) * snx
                dyn = (i - cy) * sny
                d2 = dxn * dxn + dyn * dyn
                u = _tps_radial(d2)
                acc = 0.0
                for qq in range(4):
                    wyq = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
                    acc += wyq * (wx0 * tables[a + qq, b, q] + wx1 * tables[a + qq, b + 1, q]
                                  + wx2 * tables[a + qq, b + 2, q] + wx3 * tables[a + qq, b + 3, q])
                out[p, 0] += singular[q, 2] * (u - acc)
                out[p, 1] += singular[q, 3] * (u - acc)
    return _finish(work, role, joined)


def tps_lattice_points(lattice, step, singular, tables, radius, snx, sny, js, is_, out):
    """``_reference.tps_lattice_points`` for scattered integer output pixels (used to verify a plan)."""
    _run_blocks(_tps_lattice_points_range, js.shape[0], js.shape[0] * (singular.shape[0] + 32),
                (lattice, step, singular, tables, radius, snx, sny, js, is_, out), ())


@jit_serial
def _tps_eval_terms_range(points, centres, weights, affine, out, terms, work, role):
    n_c = centres.shape[0]
    joined = _join(work, role)
    while joined:
        p0, p1 = _claim(work)
        if p0 >= p1:
            break
        for p in range(p0, p1):
            px = points[p, 0]
            py = points[p, 1]
            fx = affine[0, 0] + affine[1, 0] * px + affine[2, 0] * py
            fy = affine[0, 1] + affine[1, 1] * px + affine[2, 1] * py
            for q in range(n_c):
                dx = px - centres[q, 0]
                dy = py - centres[q, 1]
                d2 = dx * dx + dy * dy
                u = _tps_radial(d2)
                terms[p, q] = u
                fx += weights[q, 0] * u
                fy += weights[q, 1] * u
            out[p, 0] = fx
            out[p, 1] = fy
    return _finish(work, role, joined)


def tps_eval_terms(points, centres, weights, affine, out, terms):
    """Evaluate one thin-plate spline at ``points (P, 2)`` into ``out (P, 2)``, storing each radial term
    ``U(|p - c_q|)`` in ``terms (P, n)``; ``weights (n, 2)``, ``affine (3, 2)``."""
    _run_blocks(_tps_eval_terms_range, points.shape[0], points.shape[0] * (centres.shape[0] + 2),
                (points, centres, weights, affine, out, terms), ())


# --------------------------------------------------------------------------- backward

def grid_sample_backward(img, grid, grad_out, pad, align_corners, want_img):
    """Gradients of bilinear ``grid_sample``: ``(grad_img (N, H, W, C), grad_grid (N, Ho, Wo, 2))`` float64
    (``grad_img`` None, and not computed, without ``want_img``).

    ``img (N, H, W, C)``, ``grid (N, Ho, Wo, 2)`` and ``grad_out (N, Ho, Wo, C)`` float64,
    C-contiguous. Deterministic: rows are split into tasks, each task accumulates the image
    gradient into a buffer of its own (four per image for small batches, so two threads have
    work), and the buffers are summed in a fixed order. ``grad_grid`` is a gather: each pixel's
    value is the same whichever task computes it, and with or without the image gradient.
    """
    n, h, w, c = img.shape
    chunks = 1 if n >= 4 else 4
    parts = np.zeros((n, chunks, h, w, c) if want_img else (n, chunks, 0, 0, c))
    grad_grid = np.empty(grid.shape)
    _run_blocks(_grid_sample_backward_parts, n * chunks, grad_out.size * 4,
                (img, grid, grad_out, pad, bool(align_corners), chunks, parts, grad_grid), ())
    if not want_img:
        return None, grad_grid
    grad_img = np.zeros((n, h, w, c))
    _sum_parts(parts, grad_img)
    return grad_img, grad_grid


@jit_serial
def _grid_sample_backward_parts(img, grid, grad_out, pad, align_corners, chunks, grad_img_parts, grad_grid, work,
                                role):
    """Bilinear backward, tasks ``t0 <= t < t1`` (image ``t // chunks``, row chunk ``t % chunks``).
    ``grad_img_parts (N, chunks, H, W, C)``: each task owns one part, so the result does not depend on
    thread scheduling; :func:`_sum_parts` adds them in order. ``(N, chunks, 0, 0, C)``: no image gradient."""
    n_img, h, w, c_count = img.shape
    want_img = grad_img_parts.shape[2] > 0
    _, ho, wo, _ = grid.shape
    if align_corners:
        sx = (w - 1) / 2.0
        sy = (h - 1) / 2.0
    else:
        sx = w / 2.0
        sy = h / 2.0
    rows_per = (ho + chunks - 1) // chunks
    flat_img = img.reshape(img.size)
    flat_go = grad_out.reshape(grad_out.size)
    flat_grid = grid.reshape(grid.size)
    flat_gg = grad_grid.reshape(grad_grid.size)
    joined = _join(work, role)
    while joined:
        t0, t1 = _claim(work)
        if t0 >= t1:
            break
        for task in range(t0, t1):
            n = task // chunks
            part = task - n * chunks
            for i in range(part * rows_per, min((part + 1) * rows_per, ho)):
                g_row = np.uint64(((n * ho + i) * wo) * 2)
                for j in range(wo):
                    gx = np.float64(flat_grid[g_row + np.uint64(2 * j)])
                    gy = np.float64(flat_grid[g_row + np.uint64(2 * j + 1)])
                    if not (math.isfinite(gx) and math.isfinite(gy)):
                        grad_grid[n, i, j, 0] = 0.0
                        grad_grid[n, i, j, 1] = 0.0
                        continue
                    x = _unnormalize(gx, w, align_corners)
                    y = _unnormalize(gy, h, align_corners)
                    if not (math.isfinite(x) and math.isfinite(y)):  # past float64 in pixels: the forward pass fills it
                        grad_grid[n, i, j, 0] = 0.0
                        grad_grid[n, i, j, 1] = 0.0
                        continue
                    x, mx = _pad_coord_grad(x, w, pad, align_corners)
                    y, my = _pad_coord_grad(y, h, pad, align_corners)
                    mx *= sx
                    my *= sy
                    if x < -1.0 or x > w or y < -1.0 or y > h:
                        grad_grid[n, i, j, 0] = 0.0
                        grad_grid[n, i, j, 1] = 0.0
                        continue
                    x0 = np.floor(x)
                    y0 = np.floor(y)
                    tx = x - x0
                    ty = y - y0
                    ix = int(x0)
                    iy = int(y0)
                    gxa = 0.0
                    gya = 0.0
                    if not want_img and ix >= 0 and iy >= 0 and ix < w - 1 and iy < h - 1:
                        # the grid's gradient alone, all four taps inside: the loop below unrolled on flat offsets
                        # (taps (ix, iy), (ix + 1, iy), (ix, iy + 1), (ix + 1, iy + 1)) in the same order; adding
                        # -(d w) is subtracting d w exactly, so the same bits; about 1.5x faster than the loop
                        o0 = np.uint64(((n * h + iy) * w + ix) * c_count)
                        o1 = o0 + np.uint64(c_count)
                        o2 = o0 + np.uint64(w * c_count)
                        o3 = o2 + np.uint64(c_count)
                        ob = np.uint64(((n * ho + i) * wo + j) * c_count)
                        d0 = 0.0
                        d1 = 0.0
                        d2 = 0.0
                        d3 = 0.0
                        for c in range(c_count):
                            g = flat_go[ob + np.uint64(c)]
                            d0 += flat_img[o0 + np.uint64(c)] * g
                            d1 += flat_img[o1 + np.uint64(c)] * g
                            d2 += flat_img[o2 + np.uint64(c)] * g
                            d3 += flat_img[o3 + np.uint64(c)] * g
                        sx0 = 1.0 - tx
                        sy0 = 1.0 - ty
                        gxa -= d0 * sy0
                        gya -= d0 * sx0
                        gxa += d1 * sy0
                        gya -= d1 * tx
                        gxa -= d2 * ty
                        gya += d2 * sx0
                        gxa += d3 * ty
                        gya += d3 * tx
                        flat_gg[g_row + np.uint64(2 * j)] = gxa * mx
                        flat_gg[g_row + np.uint64(2 * j + 1)] = gya * my
                        continue
                    for t in range(4):
                        dyo = t // 2
                        dxo = t - 2 * dyo
                        cx = ix + dxo
                        cy = iy + dyo
                        if dxo == 0:
                            wxx = 1.0 - tx
                            dwx = -1.0
                        else:
                            wxx = tx
                            dwx = 1.0
                        if dyo == 0:
                            wyy = 1.0 - ty
                            dwy = -1.0
                        else:
                            wyy = ty
                            dwy = 1.0
                        if cx < 0 or cx > w - 1 or cy < 0 or cy > h - 1:
                            continue
                        wgt = wxx * wyy
                        dot = 0.0
                        for c in range(c_count):
                            g = grad_out[n, i, j, c]
                            dot += img[n, cy, cx, c] * g
                            if want_img:
                                grad_img_parts[n, part, cy, cx, c] += wgt * g
                        gxa += dot * dwx * wyy
                        gya += dot * dwy * wxx
                    grad_grid[n, i, j, 0] = gxa * mx
                    grad_grid[n, i, j, 1] = gya * my
    return _finish(work, role, joined)


@jit_serial
def _sum_parts(parts, out):
    """``out[n] += Σ_k parts[n, k]``, element by element in the order k = 0, 1, ... (deterministic), in one
    pass over flat views (no temporary arrays)."""
    n_img, chunks = parts.shape[0], parts.shape[1]
    size = out.size // max(n_img, 1)
    o = out.reshape(out.size)
    p = parts.reshape(parts.size)
    for n in range(n_img):
        ob = n * size
        pb = n * chunks * size
        for e in range(size):
            acc = o[ob + e]
            for k in range(chunks):
                acc += p[pb + k * size + e]
            o[ob + e] = acc
