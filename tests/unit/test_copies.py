"""Warps that read whole input pixels are copies with the kernels' bits (stntool.sampling._copies)."""

import numpy as np
import pytest

import stntool
from stntool.sampling import _copies
from stntool.transforms import theta_from_pixel_map

#: The linear parts of pixel maps that are copies: identity, flips, transposes and quarter turns.
SIGNED_PERMUTATIONS = [np.array(p, float) for p in (
    [[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
    [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]])]


@pytest.fixture
def copies_counted(monkeypatch):
    """Counts of ``_copies.warp_matrix``'s answers (copied, declined) while a test runs."""
    counts = {True: 0, False: 0}
    real = _copies.warp_matrix

    def counting(*args):
        done = real(*args)
        counts[done] += 1
        return done

    monkeypatch.setattr(_copies, "warp_matrix", counting)
    return counts


def _sampled(monkeypatch, *args, **kwargs):
    """``stntool.warp`` with copies turned off: the kernels sample every pixel."""
    with monkeypatch.context() as m:
        m.setattr(_copies, "warp_matrix", lambda *a: False)
        return stntool.warp(*args, **kwargs)


def test_whole_pixel_warps_are_the_kernels_bits(rng, monkeypatch, copies_counted):
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        ho, wo = (h, w) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 30, 2))
        m = np.eye(3)
        m[:2, :2] = SIGNED_PERMUTATIONS[rng.integers(len(SIGNED_PERMUTATIONS))]
        m[:2, 2] = rng.integers(-6, 30, 2)  # output inside the input, or partly beyond it
        ac = bool(rng.integers(2))
        theta = theta_from_pixel_map(m, (h, w), (ho, wo), align_corners=ac)  # (m: out_from_in) up to rounding
        dt = (np.uint8, np.uint16, np.float32, np.float64)[rng.integers(4)]
        c = int((1, 2, 3, 4, 5)[rng.integers(5)])
        img = (rng.random((int(rng.integers(1, 3)), h, w, c)) * 250).astype(dt)
        if img.dtype.kind == "f":
            img.flat[rng.integers(img.size)] = -0.0  # nearest keeps its sign bit
        for mode in ("nearest", "bilinear", "bicubic"):
            for padding in ("zeros", "border", "reflection", "constant"):
                fill = rng.random(c) * 300 - 20 if padding == "constant" else None
                opts = dict(out_hw=(ho, wo), mode=mode, padding=padding, align_corners=ac, fill=fill, backend="cpu")
                got = stntool.warp(img, theta, **opts)
                want = _sampled(monkeypatch, img, theta, **opts)
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (m, ac, dt, c, mode, padding)
    assert copies_counted[True] > 150 and copies_counted[False] > 150


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_flips_and_quarter_turns_are_copies(rng, dtype, copies_counted):
    img = (rng.random((37, 52, 3)) * 200).astype(dtype)
    mode = "bilinear" if dtype == np.uint8 else "nearest"
    for ac in (False, True):
        def warp(theta, out_hw=None):
            return stntool.warp(img, theta, out_hw=out_hw, mode=mode, align_corners=ac, backend="cpu")

        np.testing.assert_array_equal(warp([[1, 0, 0], [0, 1, 0]]), img)
        np.testing.assert_array_equal(warp([[-1, 0, 0], [0, 1, 0]]), img[:, ::-1])
        np.testing.assert_array_equal(warp([[1, 0, 0], [0, -1, 0]]), img[::-1])
        np.testing.assert_array_equal(warp([[-1, 0, 0], [0, -1, 0]]), img[::-1, ::-1])
        # a quarter turn: output x reads input y, so the output is the input's size transposed
        np.testing.assert_array_equal(warp([[0, 1, 0], [-1, 0, 0]], (52, 37)), np.rot90(img, -1))
        np.testing.assert_array_equal(warp([[0, -1, 0], [1, 0, 0]], (52, 37)), np.rot90(img, 1))
    assert copies_counted == {True: 12, False: 0}


def test_whole_pixel_shift_fills_what_it_uncovers(rng):
    img = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    in_from_out = np.array([[1.0, 0, -4], [0, 1, 7], [0, 0, 1]])  # output (x, y) reads input (x - 4, y + 7)
    theta = theta_from_pixel_map(np.linalg.inv(in_from_out), (20, 30))
    out = stntool.warp(img, theta, padding="constant", fill=[10.4, 20.5, 300.0])
    np.testing.assert_array_equal(out[:13, 4:], img[7:, :26])
    assert (out[13:] == [10, 21, 255]).all() and (out[:, :4] == [10, 21, 255]).all()


@pytest.mark.parametrize("case", ["float bilinear", "half-pixel shift", "scale 2", "border beyond", "one θ each"])
def test_warps_that_are_not_copies_are_sampled(rng, case, copies_counted):
    img = (rng.random((2, 16, 16, 3)) * 255).astype(np.float32 if case == "float bilinear" else np.uint8)
    m = np.eye(3)
    padding = "zeros"
    if case == "half-pixel shift":
        m[0, 2] = 0.5
    elif case == "scale 2":
        m[0, 0] = 2.0
    elif case == "border beyond":
        m[0, 2] = 3.0
        padding = "border"
    theta = theta_from_pixel_map(np.linalg.inv(m), (16, 16))
    if case == "one θ each":  # one of them a copy, the other not: the kernels sample both
        theta = np.stack([theta, theta_from_pixel_map(np.array([[1.0, 0, 0.5], [0, 1, 0], [0, 0, 1]]), (16, 16))])
    stntool.warp(img, theta, padding=padding, backend="cpu")
    assert copies_counted == {True: 0, False: 1}


def test_pixel_steps_follow_the_kernels_fixed_point():
    from stntool.sampling import _cpu

    assert (_copies.Q_ONE, _copies.Q_MASK, _copies.Q_LIMIT) == (_cpu.Q_ONE, _cpu.Q_MASK, _cpu.Q_LIMIT)
    # 1 - 2**-40 rounds to a whole 32.32 coordinate (the kernels land on whole pixels); 1 - 2**-20 does not
    assert _copies.pixel_steps(np.array([[1 - 2.0 ** -40, 0, 0], [0, 1, 0], [0, 0, 1]]), 8, 8) == (False, 0, 1, 0, 1)
    assert _copies.pixel_steps(np.array([[1 - 2.0 ** -20, 0, 0], [0, 1, 0], [0, 0, 1]]), 8, 8) is None
    assert _copies.pixel_steps(np.array([[0, -1, 9.0], [1, 0, 2.0], [0, 0, 1]]), 5, 4) == (True, 9, -1, 2, 1)
    assert _copies.pixel_steps(np.array([[1, 0, 0], [0, 1, 0], [0, 1e-9, 1]]), 8, 8) is None  # projective
    assert _copies.pixel_steps(np.array([[1, 0, np.nan], [0, 1, 0], [0, 0, 1]]), 8, 8) is None
    assert _copies.pixel_steps(np.array([[-1.0, 0, 7], [0, 1, 0]]), 8, 8) == (False, 0, 1, 7, -1)  # the kernels' 2x3


def test_a_batch_whose_every_theta_is_a_copy_is_copied(rng, monkeypatch, copies_counted):
    img = (rng.random((3, 12, 12, 3)) * 255).astype(np.uint8)
    thetas = np.array([[[1.0, 0, 0], [0, 1, 0]], [[-1.0, 0, 0], [0, 1, 0]], [[0.0, 1, 0], [-1, 0, 0]]])
    got = stntool.warp(img, thetas, backend="cpu")
    assert copies_counted == {True: 1, False: 0}
    np.testing.assert_array_equal(got, np.stack([img[0], img[1, :, ::-1], np.rot90(img[2], -1)]))
    assert got.tobytes() == _sampled(monkeypatch, img, thetas, backend="cpu").tobytes()


def test_overflowed_pixel_maps_are_refused_not_raised():
    assert _copies.pixel_steps(np.array([[np.inf, 0, 0], [0, 1, 0]]), 8, 8) is None
    img = np.zeros((1, 4, 4, 1), np.uint8)
    for bad in (np.inf, np.nan, 1e300):  # a pixel map that overflowed: refused, not raised
        assert not _copies.warp_matrix(img, np.array([[[bad, 0, 0], [0, 1, 0]]]), img.copy(), 1, 0, np.zeros(1),
                                       True, 255.0)
