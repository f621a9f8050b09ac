"""Exact coordinates: nearest ties round half to even, and bilinear at dyadic coordinates is exact,
on every backend.

The oracle is exact rational arithmetic (:class:`fractions.Fraction`): an identity-θ resize of one
row from width ``w`` to ``wo`` samples input pixel ``x_j = j (w - 1) / (wo - 1)`` with
``align_corners`` and ``x_j = ((2 j + 1) w - wo) / (2 wo)`` without; Python's ``round`` of a
``Fraction`` rounds half to even, as the documented nearest rule does.
"""

from fractions import Fraction

import numpy as np
import pytest

import stntool
from stntool.sampling import _reference as ref

IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
WIDTHS_IN = range(2, 40)
WIDTHS_OUT = range(2, 80)


def exact_x(j, w, wo, align_corners):
    if align_corners:
        return Fraction(j * (w - 1), wo - 1)
    return Fraction((2 * j + 1) * w - wo, 2 * wo)


def oracle_nearest_row(w, wo, align_corners):
    """Values ``1 .. w`` sampled by nearest at the exact coordinates (0 = outside, zeros padding)."""
    out = np.zeros(wo)
    for j in range(wo):
        k = round(exact_x(j, w, wo, align_corners))
        if 0 <= k <= w - 1:
            out[j] = k + 1
    return out


def resize_row(w, wo, align_corners, backend, mode="nearest", row=None):
    img = (np.arange(1.0, w + 1.0) if row is None else row)[None, :]
    return stntool.warp(img, IDENTITY, out_hw=(1, wo), mode=mode, align_corners=align_corners,
                        backend=backend).reshape(wo)


def test_issue_example_ties_round_to_even_on_every_backend():
    img = np.array([[10.0, 20.0]])
    for backend in ("numpy", "cpu"):
        got = stntool.warp(img, IDENTITY, out_hw=(1, 7), mode="nearest", align_corners=True, backend=backend)
        # x = j / 6: j = 3 is the tie 0.5, which rounds to 0
        np.testing.assert_array_equal(got.reshape(7), [10, 10, 10, 10, 20, 20, 20], err_msg=backend)


@pytest.mark.parametrize("align_corners", [True, False])
def test_nearest_identity_resizes_match_exact_oracle(align_corners):
    """Every one-row identity resize from 2..39 to 2..79 pixels: cpu == numpy == exact oracle."""
    bad = {"cpu": [], "numpy": []}
    for w in WIDTHS_IN:
        for wo in WIDTHS_OUT:
            expected = oracle_nearest_row(w, wo, align_corners)
            for backend in bad:
                if not np.array_equal(resize_row(w, wo, align_corners, backend), expected):
                    bad[backend].append((w, wo))
    assert bad == {"cpu": [], "numpy": []}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_three_channel_nearest_resizes_match_exact_oracle(dtype):
    """Three-channel rows (the block paths of the nearest span: vector offsets, gathers) resized from
    2..39 to 16..79 pixels, ties included: every channel equals the exact oracle, on both backends."""
    bad = []
    for align_corners in (True, False):
        for w in WIDTHS_IN:
            # four equal rows: the identity maps output rows onto them exactly, so the middle rows
            # lie inside the image and take the interior span
            row = np.stack([np.arange(1, w + 1), np.arange(101, w + 101), np.arange(201, w + 201)], -1)
            img = np.repeat(row[None], 4, 0).astype(dtype)
            for wo in range(16, 80):
                expected = oracle_nearest_row(w, wo, align_corners)
                want = np.stack([expected, np.where(expected > 0, expected + 100, 0),
                                 np.where(expected > 0, expected + 200, 0)], -1)
                for backend in ("cpu", "numpy"):
                    got = stntool.warp(img, IDENTITY, out_hw=(4, wo), mode="nearest", align_corners=align_corners,
                                       backend=backend)
                    if not np.array_equal(got, np.repeat(want[None], 4, 0)):
                        bad.append((backend, align_corners, w, wo))
    assert bad == []


def _exact_y(i, h, ho, align_corners):
    return exact_x(i, h, ho, align_corners)


@pytest.mark.parametrize("cc", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_axis_aligned_nearest_resizes_match_exact_oracle(dtype, cc):
    """Identity resizes of whole images (rows and columns on ties: a 2x reduction puts every pixel on
    one), the kernels' column table (one rounding per column, one per row): every pixel equals the exact
    oracle ``img[round(y_i), round(x_j)]``, on both backends, both align_corners, with enough pixels for
    several threads."""
    from stntool.sampling import _cpu
    from stntool.transforms import pixel_map, to_3x3

    h, w = 45, 61
    rng = np.random.default_rng(7)
    img = rng.integers(1, 250, (h, w, cc)).astype(dtype)
    bad = []
    for ho, wo in [(22, 30), (90, 122), (50, 67), (45, 61), (41, 200), (130, 17)]:
        for align_corners in (False, True):
            maps = pixel_map(to_3x3(np.array(IDENTITY)[None]), (h, w), (ho, wo), align_corners)
            assert _cpu._nearest_columns(maps, w, cc, wo)[0] == _cpu.TABLE_X
            rows = [round(_exact_y(i, h, ho, align_corners)) for i in range(ho)]
            cols = [round(exact_x(j, w, wo, align_corners)) for j in range(wo)]
            want = np.zeros((ho, wo, cc), dtype)
            for i, y in enumerate(rows):
                for j, x in enumerate(cols):
                    if 0 <= y < h and 0 <= x < w:
                        want[i, j] = img[y, x]
            for backend in ("cpu", "numpy"):
                got = stntool.warp(img, IDENTITY, out_hw=(ho, wo), mode="nearest", align_corners=align_corners,
                                   backend=backend)
                if not np.array_equal(got, want):
                    bad.append((backend, ho, wo, align_corners, int(np.sum(np.any(got != want, -1)))))
    assert bad == []


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_axis_aligned_and_transposed_nearest_warps_equal_the_reference(padding):
    """Scales, flips and half-pixel shifts, also after a quarter turn (the column table's other axis),
    on single images and on a batch (one map for every image: the table; different maps: none), equal the
    NumPy reference bit for bit."""
    from stntool.sampling import _cpu
    from stntool.transforms import pixel_map, to_3x3

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (4, 33, 47, 3)).astype(np.uint8)
    thetas = {
        "zoom 1.1": ([[1 / 1.1, 0, 0], [0, 1 / 1.1, 0]], _cpu.TABLE_X),
        "flip, half": ([[-1, 0, 0], [0, 0.5, 0.25]], _cpu.TABLE_X),
        "out of range": ([[1.7, 0, 0.6], [0, 0.4, -0.9]], _cpu.TABLE_X),
        "transposed": ([[0, 1, 0], [1, 0, 0]], _cpu.TABLE_Y),
        "turned, zoomed": ([[0, -0.9, 0.05], [1.25, 0, 0]], _cpu.TABLE_Y),
        "turned 10 deg": ([[0.98, -0.17, 0], [0.17, 0.98, 0]], None),
    }
    for name, (theta, axis) in thetas.items():
        for out_hw in [(33, 47), (20, 70), (66, 24)]:
            for align_corners in (False, True):
                maps = pixel_map(to_3x3(np.array(theta, float)[None]), (33, 47), out_hw, align_corners)
                got_axis = _cpu._nearest_columns(maps, 47, 3, out_hw[1])
                assert (got_axis and got_axis[0]) == axis, name
                kw = dict(out_hw=out_hw, mode="nearest", padding=padding, align_corners=align_corners)
                for images in (img[0], img):
                    np.testing.assert_array_equal(stntool.warp(images, theta, backend="cpu", **kw),
                                                  stntool.warp(images, theta, backend="numpy", **kw), err_msg=name)
    # a batch with one θ per image: the same first two rows give the table, different ones do not
    same = np.repeat(np.array(thetas["zoom 1.1"][0], float)[None], 4, 0)
    mixed = same.copy()
    mixed[2, 0, 2] = 0.3
    for tb, with_table in ((same, True), (mixed, False)):
        maps = pixel_map(to_3x3(tb), (33, 47), (40, 50), False)
        assert (_cpu._nearest_columns(maps, 47, 3, 50) is not None) == with_table
        np.testing.assert_array_equal(stntool.warp(img, tb, out_hw=(40, 50), mode="nearest", padding=padding),
                                      stntool.warp(img, tb, out_hw=(40, 50), mode="nearest", padding=padding,
                                                   backend="numpy"))


def test_rint_ties_and_neighbours():
    """The spec's rounding: exact ties to even (also a few ulps off a tie), everything else to nearest."""
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, np.nextafter(0.5, 1), np.nextafter(2.5, 0), 0.5 + 1e-9, 2.5 - 1e-9,
                  0.49999999999999994, 3.2, -3.7, 7.0])
    np.testing.assert_array_equal(ref.rint(x), [0, 2, 2, 0, -2, 0, 2, 1, 2, 0, 3, -4, 7])


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_bilinear_at_dyadic_coordinates_is_exact(dtype, align_corners):
    """Resizes whose coordinates are multiples of 2**-m (m <= 6) are exactly representable: the
    result is the exact bilinear value, rounded half up for integer images."""
    rng = np.random.default_rng(5)
    top = 255 if dtype == np.uint8 else (65535 if dtype == np.uint16 else 1.0)
    for w, wo in ([2, 5], [2, 9], [3, 5], [3, 9], [5, 17], [9, 33], [4, 8], [6, 24], [8, 64], [16, 32]):
        ratio = Fraction(wo - 1, w - 1) if align_corners else Fraction(wo, w)
        if ratio.denominator != 1 or ratio.numerator & (ratio.numerator - 1):
            continue  # the coordinates are dyadic only for a power-of-two ratio
        if np.dtype(dtype).kind == "u":
            row = rng.integers(0, top + 1, w).astype(dtype)
        else:
            row = (rng.integers(0, 2 ** 10, w) / 2 ** 10).astype(dtype)
        vals = [Fraction(int(v)) if np.dtype(dtype).kind == "u" else Fraction(float(v)) for v in row]
        expected = []
        for j in range(wo):
            x = exact_x(j, w, wo, align_corners)
            x0 = x.numerator // x.denominator
            t = x - x0
            v0 = vals[x0] if 0 <= x0 <= w - 1 else 0
            v1 = vals[x0 + 1] if 0 <= x0 + 1 <= w - 1 else 0
            expected.append((1 - t) * v0 + t * v1)
        for backend in ("numpy", "cpu"):
            got = resize_row(w, wo, align_corners, backend, "bilinear", row)
            if np.dtype(dtype).kind == "u":
                want = [int((e + Fraction(1, 2)).__floor__()) for e in expected]
                np.testing.assert_array_equal(got, want, err_msg=f"{backend} {w}->{wo}")
            else:
                # a dyadic value with few bits: every float operation on the way is exact
                np.testing.assert_array_equal(got, np.array([float(e) for e in expected], dtype),
                                              err_msg=f"{backend} {w}->{wo}")


def test_uint8_bilinear_rounds_weights_to_nearest():
    """x = 65/2**15 - 2**-30 between pixels 0 and 1 of [0, 255, 255]: exact value 0.5058 rounds to 1.
    A weight truncated to 15 bits (64/2**15) would give 0.498 and round to 0."""
    img = np.array([[0, 255, 255], [0, 255, 255]], np.uint8)  # two rows: the interior (fixed-point) path
    x = 65 / 2 ** 15 - 2 ** -30
    grid = np.array([[[x - 1.0, -1.0]]])  # align_corners: pixel x = normalized + 1 on a width of 3; row 0
    for backend in ("numpy", "cpu"):
        got = stntool.grid_sample(img, grid, align_corners=True, backend=backend)
        assert int(np.asarray(got).ravel()[0]) == 1, backend


def test_uint8_bilinear_within_stated_bound():
    """The uint8 interior path is the exact bilinear value at weights rounded to 15 bits: within
    255 * 2**-15 of the exact value before rounding, so equal to the exact value rounded except
    within that distance of a half level (and never more than one level off)."""
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (1, 6, 7, 3)).astype(np.uint8)
    grid = rng.uniform(-0.8, 0.8, (1, 40, 50, 2))
    got = stntool.grid_sample(img, grid, align_corners=False, backend="cpu").astype(np.int64)
    exact = ref.grid_sample_float64(img, grid, "bilinear", "zeros", False)
    rounded = np.floor(exact + 0.5)
    assert np.abs(got - rounded).max() <= 1
    far = np.abs(exact - np.floor(exact) - 0.5) > 255 * 2.0 ** -15
    np.testing.assert_array_equal(got[far], rounded[far])


def test_column_tables_are_kept_per_warp_and_padding():
    """A nearest warp along the axes rounds its columns once for repeated calls with one θ (the table is
    kept, read-only); another output width, padding, axis size or align_corners gets its own table, each
    the reference's columns; a zero's sign does not change a table."""
    from stntool.sampling import _cpu
    from stntool.sampling._reference import apply_padding, rint
    from stntool.transforms import pixel_map, to_3x3

    theta = np.array([[1.6, 0, 0.1], [0, 1.0, 0]])  # zoomed out: columns beyond both edges
    maps = pixel_map(to_3x3(theta[None]), (20, 31), (20, 40), False)
    first = _cpu._nearest_columns(maps, 31, 3, 40)
    again = _cpu._nearest_columns(maps.copy(), 31, 3, 40)
    assert again[1] is first[1] and not first[1].flags.writeable
    x = (maps[0, 0, 0] * np.arange(40) + maps[0, 0, 1]) + maps[0, 0, 2]
    np.testing.assert_array_equal(first[1], np.clip(rint(x), -1, 1 << 31).astype(np.int64) * 3)
    for pad, padding in ((_cpu.BORDER, "border"), (_cpu.REFLECTION, "reflection")):
        for ac in (False, True):
            got = _cpu._nearest_columns(maps, 31, 3, 40, h=20, pad=pad, align_corners=ac)[1]
            np.testing.assert_array_equal(got, rint(apply_padding(x, 31, padding, ac)).astype(np.int64) * 3)
        narrower = _cpu._nearest_columns(maps, 29, 3, 40, h=20, pad=pad)[1]  # another axis size
        np.testing.assert_array_equal(narrower, rint(apply_padding(x, 29, padding, False)).astype(np.int64) * 3)
    assert len(_cpu._nearest_columns(maps, 31, 3, 25)[1]) == 25
    signed = maps.copy()
    signed[0, 0, 1] = -0.0  # m01: a zero either way
    np.testing.assert_array_equal(_cpu._nearest_columns(signed, 31, 3, 40)[1], first[1])


def test_wide_column_tables_are_not_kept(monkeypatch):
    """Rows wider than KEPT_TABLE_WIDTH make their column table each call and keep none (a 20-million-pixel
    row's table is 160 MB); narrower ones are kept."""
    from stntool.sampling import _cpu
    from stntool.transforms import pixel_map, to_3x3

    monkeypatch.setattr(_cpu, "KEPT_TABLE_WIDTH", 100)
    img = np.arange(3 * 64, dtype=np.uint8).reshape(1, 64, 3)
    for wo in (100, 101, 5000):
        theta = np.array([[1.5 + wo / 1e4, 0, 0], [0, 1, 0]])
        maps = pixel_map(to_3x3(theta[None]), (1, 64), (1, wo), False)
        first, again = _cpu._nearest_columns(maps, 64, 3, wo), _cpu._nearest_columns(maps, 64, 3, wo)
        assert (again[1] is first[1]) == (wo <= 100)
        np.testing.assert_array_equal(again[1], first[1])
        np.testing.assert_array_equal(stntool.warp(img, theta, (1, wo), mode="nearest", backend="cpu"),
                                      stntool.warp(img, theta, (1, wo), mode="nearest", backend="numpy"))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_one_pixel_wide_outputs_of_huge_scales_read_the_reference_pixels(mode):
    """An output one pixel wide (or high) reads its centre column whatever the scale along that axis: a step
    of 9e9 input pixels per output pixel (never taken) is no reason to read the fill."""
    b = np.arange(27, dtype=np.uint8).reshape(1, 9, 3)
    for s in (1e3, 1e9, -1e12, 1e300):
        for theta, out_hw in (([[s, 0, 0], [0, 1, 0]], (5, 1)), ([[1, 0, 0], [0, s, 0]], (1, 7))):
            got = stntool.warp(b, theta, out_hw, mode=mode, backend="cpu")
            np.testing.assert_array_equal(got, stntool.warp(b, theta, out_hw, mode=mode, backend="numpy"),
                                          err_msg=f"{s} {out_hw}")
