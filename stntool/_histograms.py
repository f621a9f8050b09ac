"""The margin search's column histograms (:func:`stntool.rectify._column_energies`), compiled.

One sweep of shears over a page's line ends: each point moved along its row by ``d · g``, shared linearly
between its two nearest columns, the histogram smoothed by [1, 2, 1] / 4 and its energy (sum of squares)
taken, for every offset ``d``. The arithmetic is :func:`stntool.rectify._column_energy_of_points`' for
positions ``x + d g``; the energies may differ from a NumPy evaluation in their last bits (the order of the
final sum of squares).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit_serial


@jit_serial
def column_energies(x, y, slope, offsets, width, out):
    """``out[k]``: the energy of the points ``(x, y)`` at ``x + offsets[k] (slope · (x, y, 1))`` over columns
    ``0 <= x' < width``."""
    n = x.size
    g = np.empty(n)
    for i in range(n):
        g[i] = slope[0] * x[i] + slope[1] * y[i] + slope[2]
    lo = np.empty(width)  # each column's share of the points left of it (1 - frac), then right of it (frac)
    hi = np.empty(width)
    for k in range(offsets.size):
        d = offsets[k]
        lo[:] = 0.0
        hi[:] = 0.0
        for i in range(n):
            pos = x[i] + d * g[i]
            left = math.floor(pos)
            if left >= 0.0 and left < width - 1:
                c = int(left)
                frac = pos - left
                lo[c] += 1.0 - frac
                hi[c + 1] += frac
        e = 0.0
        for c in range(width):
            s = 0.5 * (lo[c] + hi[c])
            if c > 0:
                s += 0.25 * (lo[c - 1] + hi[c - 1])
            if c < width - 1:
                s += 0.25 * (lo[c + 1] + hi[c + 1])
            e += s * s
        out[k] = e
