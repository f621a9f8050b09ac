"""Compiled twin of :func:`stntool.maps._smooth` (the spec), for the elastic fields of warp records.

The same separable Gaussian with replicated edges, evaluated in the same order of operations (each
value is ``((0 + x0 w0) + x1 w1) + ...`` over the taps in order, first along axis -2 of the field,
then along axis -1, as the spec's loop over ``axis in (-2, -1)``), so the results are the spec's bits;
the tests compare the two.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit_serial


@jit_serial
def _smooth_rows_then_columns(field, taps, scale, out):
    n_ch, h, w = field.shape
    n_taps = taps.size
    r = n_taps // 2
    tmp = np.empty((h, w))
    padded = np.empty(w + 2 * r)
    acc = np.empty(w)
    for c in range(n_ch):
        for i in range(h):  # along axis -2
            for j in range(w):
                tmp[i, j] = 0.0
            for k in range(n_taps):
                src = min(max(i + k - r, 0), h - 1)
                wk = taps[k]
                for j in range(w):
                    tmp[i, j] += field[c, src, j] * wk
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


def smooth(field: np.ndarray, taps: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``np.moveaxis(maps._smooth(field, taps) * scale, 0, -1)`` of a ``(C, H, W)`` float64 field, compiled:
    ``(H, W, C)``, C-contiguous, the same bits."""
    field = np.ascontiguousarray(field, dtype=np.float64)
    out = np.empty(field.shape[1:] + field.shape[:1])
    _smooth_rows_then_columns(field, np.ascontiguousarray(taps, dtype=np.float64), float(scale), out)
    return out
