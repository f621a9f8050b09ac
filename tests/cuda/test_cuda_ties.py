"""CUDA nearest at exact half-pixel ties: the exact oracle of tests/unit/test_ties.py, on a subset of
its one-row identity resizes (the simulator is slow)."""

from fractions import Fraction

import numpy as np
import pytest

from stntool.sampling import MODES as MODE_IDS
from stntool.sampling import PADDINGS as PAD_IDS
from stntool.sampling import _cpu, _cuda
from stntool.transforms import pixel_map_from_theta

IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def exact_nearest(w, wo, align_corners):
    out = np.zeros(wo)
    for j in range(wo):
        x = Fraction(j * (w - 1), wo - 1) if align_corners else Fraction((2 * j + 1) * w - wo, 2 * wo)
        k = round(x)  # half to even
        if 0 <= k <= w - 1:
            out[j] = k + 1
    return out


def resize_map(w, wo, align_corners):
    """The in_pix_from_out_pix map of an identity-θ resize of one row, as the library builds it."""
    return pixel_map_from_theta(IDENTITY, (1, w), (1, wo), align_corners)[None]


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("w, wo", [(2, 7), (3, 9), (5, 13), (4, 10), (7, 25), (9, 41), (12, 8), (6, 23)])
def test_nearest_ties_match_exact_oracle(w, wo, align_corners):
    img = np.arange(1.0, w + 1.0).reshape(1, 1, w, 1)
    maps = resize_map(w, wo, align_corners)
    fill = np.zeros(1)
    expected = exact_nearest(w, wo, align_corners)
    for backend in (_cuda, _cpu):
        out = np.empty((1, 1, wo, 1))
        backend.warp_matrix(img, maps, out, MODE_IDS["nearest"], PAD_IDS["zeros"], align_corners, fill, False, 0.0,
                            False)
        np.testing.assert_array_equal(out.reshape(wo), expected, err_msg=backend.__name__)
