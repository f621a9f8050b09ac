"""Compiled twin of :func:`stntool.maps._smooth` (the spec), for the elastic fields of warp records.

The same separable Gaussian with replicated edges, evaluated in the same order of operations (each
value is ``((0 + x0 w0) + x1 w1) + ...`` over the taps in order, first along axis -2 of the field,
then along axis -1, as the spec's loop over ``axis in (-2, -1)``), so the results are the spec's bits;
the tests compare the two. :func:`noise_field` draws an elastic record's noise and smooths it, one
channel per thread (:func:`stntool.sampling._cpu._run_blocks`), with the bits of the NumPy recipe.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit_inline, jit_serial
from .sampling._cpu import _claim, _finish, _join, _run_blocks


@jit_inline
def _smooth_channel(field, taps, scale, out, c, tmp, padded, acc):
    """``out[:, :, c]`` = ``field (H, W)`` smoothed along axis 0, then along axis 1, times ``scale``; ``tmp``
    ``(H, W)``, ``padded`` ``(W + taps.size - 1)`` and ``acc`` ``(W)`` are scratch."""
    h, w = field.shape
    n_taps = taps.size
    r = n_taps // 2
    for i in range(h):  # along axis -2
        for j in range(w):
            tmp[i, j] = 0.0
        for k in range(n_taps):
            src = min(max(i + k - r, 0), h - 1)
            wk = taps[k]
            for j in range(w):
                tmp[i, j] += field[src, j] * wk
    for i in range(h):  # along axis -1
        for j in range(w + 2 * r):
            padded[j] = tmp[i, min(max(j - r, 0), w - 1)]
        for j in range(w):
            acc[j] = 0.0
        for k in range(n_taps):
            wk = taps[k]
            for j in range(w):
                acc[j] += padded[j + k] * wk
        for j in range(w):
            out[i, j, c] = acc[j] * scale


@jit_serial
def _draw_and_smooth(gen0, gen1, step, taps, scale, out, work, role):
    """Channel ``c`` (0 or 1) of ``out (H, W, 2)``: uniform noise from ``gen_c`` (``random()`` row by row, as
    ``(u * 2 - 1) / step``), smoothed and scaled as :func:`_smooth_channel`. The channels are the items of
    the schedule ``work``, so two threads draw and smooth one each (``gen1`` is ``gen0``'s stream advanced
    by ``H * W`` draws: the channels are the bits of one ``random((2, H, W))`` call)."""
    h, w, _ = out.shape
    noise = np.empty((h, w))
    tmp = np.empty((h, w))
    padded = np.empty(w + taps.size - 1)
    acc = np.empty(w)
    joined = _join(work, role)
    while joined:
        c0, c1 = _claim(work)
        if c0 >= c1:
            break
        for c in range(c0, c1):
            g = gen0 if c == 0 else gen1
            for i in range(h):
                for j in range(w):
                    noise[i, j] = (g.random() * 2.0 - 1.0) / step
            _smooth_channel(noise, taps, scale, out, c, tmp, padded, acc)
    return _finish(work, role, joined)


def noise_field(seed: int, hw, step: int, taps: np.ndarray, scale: float) -> np.ndarray:
    """``np.moveaxis(maps._smooth(noise, taps) * scale, 0, -1)`` of ``noise = (Generator(PCG64(seed)).random((2, H, W))
    * 2 - 1) / step``, compiled: ``(H, W, 2)``, C-contiguous, the same bits, the two channels drawn and smoothed
    on two threads when there are."""
    h, w = hw
    first = np.random.PCG64(seed)
    second = np.random.PCG64(seed)
    second.advance(h * w)  # one 64-bit draw per double
    out = np.empty((h, w, 2))
    _run_blocks(_draw_and_smooth, 2, out.size, (np.random.Generator(first), np.random.Generator(second),
                                                  float(step), np.ascontiguousarray(taps, dtype=np.float64),
                                                  float(scale), out), ())
    return out
