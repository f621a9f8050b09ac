"""Affine warps that read every output pixel at an exact input pixel, done as copies.

Identity, flips, quarter turns and whole-pixel shifts (a pixel map whose linear part is a signed
permutation and whose offsets are whole pixels) read each output pixel at an integer input position,
where every mode returns that input pixel: nearest rounds to it, and the bilinear and bicubic
weights of the other taps are exactly 0. For uint8 and uint16 images the kernels' result is then the
input pixel itself (the zero-weight taps add exact zeros to an integer), and for every dtype with
nearest. :func:`warp_matrix` writes such warps with OpenCV's flips and transposes and NumPy copies,
ten to thirty times faster than sampling, and leaves everything else to the kernels: float images
with bilinear or bicubic (a zero weight times an infinite neighbour is NaN, and ``-0.0`` comes back
as ``+0.0``), border and reflection padding where the output reaches outside the input, and channel
layouts OpenCV cannot transpose.

Which pixel each output pixel reads is decided exactly as the kernels decide it: row ``i`` of the
output starts at the 32.32 fixed-point coordinates ``q(m01 i + m02)``, ``q(m11 i + m12)`` and steps by
``q(m00)``, ``q(m10)`` (``q(x) = floor(x 2**32 + 0.5)``, the kernels' ``_to_q``), and the warp is a
copy only when every one of those is a whole number of pixels. A pixel map that is a flip up to
rounding (``0.9999999999999999``) qualifies exactly when the kernels would land on whole pixels.
"""

from __future__ import annotations

import math

import numpy as np

from ._scalar import CONSTANT, NEAREST, ZEROS

#: The kernels' fixed point (``_cpu.Q_ONE``, ``_cpu.Q_LIMIT``): coordinates are ``q / 2**32``; rows
#: reaching beyond ``Q_LIMIT`` pixels take the kernels' float path, left to the kernels here.
Q_ONE = 4294967296.0
Q_MASK = 4294967295
Q_LIMIT = 1073741824.0


def _whole(v: float):
    """``q(v) / 2**32`` as an int when ``q(v)``, the kernels' 32.32 coordinate of ``v``, is a whole number of
    pixels, else None (``q(v) = floor(v 2**32 + 0.5)``, the same double arithmetic as ``_cpu._to_q``)."""
    if not abs(v) < Q_LIMIT:  # also NaN: the kernels' float path
        return None
    q = math.floor(v * Q_ONE + 0.5)
    return q >> 32 if q & Q_MASK == 0 else None


def _row_starts(coef: float, offset: float, n: int):
    """``(start, step)`` when the kernels' row starts ``q(coef i + offset)``, ``0 <= i < n``, are the whole pixels
    ``start + i step`` (``step`` -1, 0 or 1), else None."""
    first = _whole(offset)  # i = 0: coef * 0 + offset is offset
    if first is None:
        return None
    if coef == 0.0 or n == 1:
        return first, 0
    if coef in (-1.0, 1.0) and offset == first:  # whole numbers: coef i + offset is exact
        return first, int(coef)
    q = np.floor((coef * np.arange(n, dtype=np.float64) + offset) * Q_ONE + 0.5)
    step = round(coef)
    if step not in (-1, 1) or not np.array_equal(q, (first + step * np.arange(n, dtype=np.float64)) * Q_ONE):
        return None
    return first, step


def pixel_steps(m, ho: int, wo: int):
    """``(transposed, r0, r_step, c0, c_step)`` when the affine pixel map ``m`` (``in_pix_from_out_pix``, 3x3
    or its first two rows) sends output pixel ``(j, i)`` to a whole input pixel, through one of two forms

    * ``transposed=False``: input row ``r0 + i r_step``, column ``c0 + j c_step``;
    * ``transposed=True``: input column ``r0 + i r_step``, row ``c0 + j c_step``,

    with steps of -1 or 1, as the kernels compute it (module docstring); else None."""
    if m.shape[0] > 2 and not (m[2, 0] == 0.0 and m[2, 1] == 0.0 and m[2, 2] == 1.0):
        return None
    (m00, m01, m02), (m10, m11, m12) = m[:2].tolist()
    reach = max(abs(m02), abs(m12)) + (abs(m01) + abs(m11)) * ho + (abs(m00) + abs(m10)) * wo
    if not reach < Q_LIMIT / 2:  # also refuses NaN and infinities
        return None
    xs, ys = _row_starts(m01, m02, ho), _row_starts(m11, m12, ho)
    dx, dy = _whole(m00), _whole(m10)
    if xs is None or ys is None or dx is None or dy is None:
        return None
    (x0, sx), (y0, sy) = xs, ys
    if ho == 1:  # a single row: its step is free, the column steps decide the form
        sx, sy = (0, 1) if dx else (1, 0)
    if wo == 1:  # a single column: its step is free, the row steps decide the form
        dx, dy = (0, 1) if sx else (1, 0)
    if abs(dx) == 1 and dy == 0 and sx == 0 and abs(sy) == 1:
        return False, y0, sy, x0, dx
    if dx == 0 and abs(dy) == 1 and abs(sx) == 1 and sy == 0:
        return True, x0, sx, y0, dy
    return None


def _fill_value(fill, dtype, is_int: bool, maxv: float) -> np.ndarray:
    """The kernels' stored fill: rounded half up and saturated for integer images (``_scalar.saturate``)."""
    f = np.asarray(fill, dtype=np.float64)
    if is_int:
        f = np.clip(np.floor(f + 0.5), 0.0, maxv)
    return f.astype(dtype)


def warp_matrix(img, maps, out, mode: int, pad: int, fill, is_int: bool, maxv: float) -> bool:
    """Write ``out`` as :func:`stntool.sampling._cpu.warp_matrix` would, by copying, and return True; or
    return False (``out`` untouched or partly written) when the warp is not such a copy (module docstring)."""
    if mode != NEAREST and not is_int:
        return False
    for m in maps.tolist():  # first the cheap refusal of every other warp: steps that are not whole pixels
        if _whole(m[0][0]) is None or _whole(m[1][0]) is None:
            return False
    import cv2

    n, h, w, c = img.shape
    _, ho, wo, _ = out.shape
    plans = []  # per map: its steps and the block of output pixels that read inside the input
    for m in maps:
        steps = pixel_steps(m, ho, wo)
        if steps is None:
            return False
        transposed, r0, r_step, c0, c_step = steps
        src_h, src_w = (w, h) if transposed else (h, w)
        # the output pixels that read inside the input: rows r0 + i r_step in [0, src_h), likewise the columns
        i_lo, i_hi = _inside(r0, r_step, src_h, ho)
        j_lo, j_hi = _inside(c0, c_step, src_w, wo)
        covered = i_lo == 0 and i_hi == ho and j_lo == 0 and j_hi == wo
        if pad not in (ZEROS, CONSTANT) and not covered:
            return False  # border and reflection padding repeat pixels: the kernels
        plans.append((steps, i_lo, i_hi, j_lo, j_hi, covered))
    fill_row = None
    if not all(p[-1] for p in plans):  # one output row of the fill value
        value = _fill_value(fill if pad == CONSTANT else np.zeros(c), out.dtype, is_int, maxv)
        fill_row = np.tile(value, wo)
    for k in range(n):
        (transposed, r0, r_step, c0, c_step), i_lo, i_hi, j_lo, j_hi, covered = plans[k if len(plans) > 1 else 0]
        src = img[k] if c > 1 else img[k, :, :, 0]
        dst = out[k] if c > 1 else out[k, :, :, 0]
        if not covered:  # the rows and the ends of rows that read outside the input
            rows = _rows(out[k])
            rows[:i_lo] = fill_row
            rows[i_hi:] = fill_row
            rows[i_lo:i_hi, :j_lo * c] = fill_row[:j_lo * c]
            rows[i_lo:i_hi, j_hi * c:] = fill_row[j_hi * c:]
        if i_hi == i_lo or j_hi == j_lo:
            continue
        try:
            turn = _TURNS.get((r_step, c_step)) if transposed and covered and dst.flags.c_contiguous else None
            if turn is not None:  # a whole quarter turn in one pass (a transpose and a flip: two)
                turned = cv2.rotate(src, turn, dst=dst)
                if turned is not dst:  # (written elsewhere: not turned a second time)
                    np.copyto(dst, turned)
                continue
            a = cv2.transpose(src) if transposed else src
            # input rows and columns read by the inside block, in the block's order
            ra, rb = sorted((r0 + i_lo * r_step, r0 + (i_hi - 1) * r_step))
            ca, cb = sorted((c0 + j_lo * c_step, c0 + (j_hi - 1) * c_step))
            block = a[ra:rb + 1, ca:cb + 1]
            target = dst[i_lo:i_hi, j_lo:j_hi]
            flip = _FLIPS[(r_step, c_step)]
            if flip is not None:
                into = target if target.flags.c_contiguous else None
                block = cv2.flip(np.ascontiguousarray(block), flip, dst=into)
                if into is not None and np.shares_memory(block, target):
                    continue
            np.copyto(_rows(target), _rows(block.reshape(target.shape)))
        except (cv2.error, TypeError, ValueError):
            return False  # a layout OpenCV does not take (a transpose of 5-byte pixels): the kernels write it all
    return True


#: (row step, column step) -> OpenCV's flip code (None: no flip).
_FLIPS = {(1, 1): None, (-1, 1): 0, (1, -1): 1, (-1, -1): -1}
#: (row step, column step) of a transposed copy -> the quarter turn it is (``cv2.rotate``'s code): the transpose
#: flipped upside down turns counter-clockwise, flipped left-right clockwise (the other two are not turns).
_TURNS = {(-1, 1): 2, (1, -1): 0}  # cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_90_CLOCKWISE


def _rows(a):
    """``a`` (rows, columns[, channels]) as a 2-D view of rows, so a copy moves whole row segments (NumPy copies
    arrays whose last axis has 3 elements one element at a time: ten times slower)."""
    return a.reshape(a.shape[0], -1)


def _inside(start: int, step: int, size: int, n: int):
    """``(lo, hi)``: the indices ``lo <= t < hi`` of ``0 <= t < n`` with ``0 <= start + t step < size``
    (``step`` -1 or 1; ``lo == hi`` when there are none)."""
    if step == 1:
        lo, hi = -start, size - start
    else:
        lo, hi = start - size + 1, start + 1
    lo, hi = max(0, lo), min(n, hi)
    return lo, max(lo, hi)
