"""Every public function converts arrays at its boundary, identically on every backend.

Byte order (``'>u2'`` images as FITS readers produce them, big-endian grids), float16 and
longdouble, non-contiguous views and read-only arrays give exactly the result of the equivalent
native array; bool, complex, object and string arrays are refused with ``InvalidArgumentError``.
The oracle of each case is the same call on the native-dtype array, whose own correctness the
other tests check against the NumPy reference.
"""

import numpy as np
import pytest

import stntool
from stntool.errors import InvalidArgumentError
from stntool.tps import regular_control_points

BACKENDS = ("numpy", "cpu")
THETA = [[0.9, -0.3, 0.1], [0.25, 1.05, -0.05]]
THETA_PROJ = [[1.05, 0.1, 0.02], [-0.1, 0.95, 0.05], [0.1, -0.15, 1.0]]
SRC_PIX = [[0, 0], [12, 0], [0, 8], [12, 8], [6.5, 4.2]]
DST_PIX = [[0.5, -0.5], [12.5, 1.0], [-1, 8.5], [11.5, 8], [7.2, 5.1]]
HW = (9, 13)


def _image(dtype, seed=0):
    v = np.random.default_rng(seed).random(HW)
    if np.dtype(dtype).kind == "u":
        return np.round(v * np.iinfo(dtype).max).astype(dtype)
    return (v * 2 - 0.5).astype(dtype)


def _grid():
    g = stntool.affine_grid(THETA, (7, 11))
    return g + np.random.default_rng(5).normal(0, 0.013, g.shape)  # values not exact in float16


# --------------------------------------------------------------------------- image variants

def _image_calls(backend):
    """``name -> f(img)`` for every public function taking an image (forward and backward)."""
    grid = _grid()
    go = np.random.default_rng(3).standard_normal((7, 11))
    go_hw = np.random.default_rng(4).standard_normal(HW)
    return {
        "warp": lambda im: stntool.warp(im, THETA, backend=backend),
        "warp_proj": lambda im: stntool.warp(im, THETA_PROJ, mode="bicubic", padding="border", backend=backend),
        "grid_sample": lambda im: stntool.grid_sample(im, grid, mode="nearest", backend=backend),
        "warp_tps": lambda im: stntool.warp_tps(im, SRC_PIX, DST_PIX, backend=backend),
        "grid_sample_backward": lambda im: stntool.grid_sample_backward(im, grid, go, backend=backend),
        "warp_backward": lambda im: stntool.warp_backward(im, THETA, go_hw, backend=backend),
    }


IMAGE_VARIANTS = {
    # name: (native dtype, how to derive the variant from the native image)
    ">u2": (np.uint16, lambda a: a.astype(">u2")),
    ">f4": (np.float32, lambda a: a.astype(">f4")),
    ">f8": (np.float64, lambda a: a.astype(">f8")),
    "non-contiguous": (np.uint8, lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)[::2, ::2]),
    "transposed": (np.float32, lambda a: np.ascontiguousarray(a.T).T),
    "read-only": (np.uint16, lambda a: _read_only(a)),
}


def _read_only(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def _same(got, want):
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    assert got.dtype == want.dtype and got.dtype.isnative
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", sorted(IMAGE_VARIANTS))
@pytest.mark.parametrize("func", ["warp", "warp_proj", "grid_sample", "warp_tps", "grid_sample_backward",
                                  "warp_backward"])
def test_image_variants_give_the_native_result(backend, variant, func):
    native_dtype, derive = IMAGE_VARIANTS[variant]
    native = _image(native_dtype)
    img = derive(native)
    assert img.dtype != native.dtype or not img.flags.c_contiguous or not img.flags.writeable
    before = img.copy()
    call = _image_calls(backend)[func]
    _same(call(img), call(native))
    np.testing.assert_array_equal(img, before)  # inputs are never modified


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("func", ["warp", "grid_sample", "warp_tps"])
def test_float16_image_is_sampled_in_float32_and_returned_as_float16(backend, func):
    img16 = _image(np.float16)
    call = _image_calls(backend)[func]
    got = call(img16)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, call(img16.astype(np.float32)).astype(np.float16))
    _same(call(img16.astype(">f2")), got)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("func", ["warp", "grid_sample", "warp_tps"])
def test_longdouble_image_is_sampled_in_float64_and_returned_as_longdouble(backend, func):
    img = _image(np.float64).astype(np.longdouble)
    call = _image_calls(backend)[func]
    got = call(img)
    assert got.dtype == np.longdouble
    np.testing.assert_array_equal(got, call(img.astype(np.float64)).astype(np.longdouble))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_and_longdouble_images_in_backward_are_float64(backend):
    img = _image(np.float64)
    call = _image_calls(backend)["grid_sample_backward"]
    want = call(img.astype(np.float16).astype(np.float64))
    _same(call(img.astype(np.float16)), want)
    _same(call(img.astype(np.longdouble)), call(img))


REFUSED_IMAGES = {
    "complex": lambda: _image(np.float64).astype(np.complex128),
    "object": lambda: _image(np.float64).astype(object),
    "bool": lambda: _image(np.float64) > 0.5,
    "str": lambda: np.full(HW, "a"),
    "int32": lambda: _image(np.uint16).astype(np.int32),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(REFUSED_IMAGES))
@pytest.mark.parametrize("func", ["warp", "warp_proj", "grid_sample", "warp_tps", "grid_sample_backward",
                                  "warp_backward"])
def test_unsupported_images_are_refused(backend, kind, func):
    with pytest.raises(InvalidArgumentError, match="dtype"):
        _image_calls(backend)[func](REFUSED_IMAGES[kind]())


def test_refusals_name_the_problem():
    with pytest.raises(InvalidArgumentError, match="bool.*uint8"):
        stntool.warp(np.zeros((3, 3), bool), THETA, backend="numpy")
    with pytest.raises(InvalidArgumentError, match="complex"):
        stntool.warp(np.zeros((3, 3), complex), THETA, backend="numpy")
    with pytest.raises(InvalidArgumentError, match="complex"):
        stntool.grid_sample(np.zeros((3, 3)), np.zeros((2, 2, 2), complex), backend="numpy")
    with pytest.raises(InvalidArgumentError, match="numeric"):
        stntool.grid_sample(np.zeros((3, 3)), [[[0, "a"]]], backend="numpy")


# --------------------------------------------------------------------------- grid, θ and point variants

GRID_VARIANTS = {
    "float16": lambda g: g.astype(np.float16),
    "float32": lambda g: g.astype(np.float32),
    "longdouble": lambda g: g.astype(np.longdouble),
    ">f8": lambda g: g.astype(">f8"),
    ">f4": lambda g: g.astype(">f4"),
    "non-contiguous": lambda g: np.repeat(g, 2, axis=1)[:, ::2],
    "read-only": _read_only,
}


def _as_values(a):
    """The float64 values a converted array stands for (what the native call must get)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def _grid_calls(backend):
    img = _image(np.float32)
    go = np.random.default_rng(3).standard_normal((7, 11))
    dst_norm = regular_control_points(3) * 0.9
    return {
        "grid_sample": lambda g: stntool.grid_sample(img, g, mode="bicubic", backend=backend),
        "grid_sample_backward": lambda g: stntool.grid_sample_backward(img, g, go, backend=backend),
        "affine_grid_backward": lambda g: stntool.affine_grid_backward(g),
        "tps_grid_backward": lambda g: stntool.tps_grid_backward(g, dst_norm),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", sorted(GRID_VARIANTS))
@pytest.mark.parametrize("func", ["grid_sample", "grid_sample_backward", "affine_grid_backward", "tps_grid_backward"])
def test_grid_variants_are_converted_to_float64(backend, variant, func):
    g = GRID_VARIANTS[variant](_grid())
    call = _grid_calls(backend)[func]
    _same(call(g), call(_as_values(g)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["complex", "object", "bool", "str"])
@pytest.mark.parametrize("func", ["grid_sample", "grid_sample_backward", "affine_grid_backward", "tps_grid_backward"])
def test_unsupported_grids_are_refused(backend, kind, func):
    g = _grid()
    bad = {"complex": g.astype(complex), "object": g.astype(object), "bool": g > 0,
           "str": g.astype(str)}[kind]
    with pytest.raises(InvalidArgumentError):
        _grid_calls(backend)[func](bad)


THETA_VARIANTS = {
    "float16": lambda t: np.asarray(t, np.float16),
    "longdouble": lambda t: np.asarray(t, np.longdouble),
    ">f8": lambda t: np.asarray(t, ">f8"),
    "non-contiguous": lambda t: np.asarray(t, np.float64).T.copy().T,
    "read-only": lambda t: _read_only(np.asarray(t, np.float64)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", sorted(THETA_VARIANTS))
def test_theta_variants(backend, variant):
    img = _image(np.uint8)
    for theta in (THETA, THETA_PROJ):
        t = THETA_VARIANTS[variant](theta)
        _same(stntool.warp(img, t, backend=backend), stntool.warp(img, _as_values(t), backend=backend))
        grid = stntool.theta_grid(t, (5, 6))
        _same(grid, stntool.theta_grid(_as_values(t), (5, 6)))
    go = np.ones(HW)
    _same(stntool.warp_backward(img, THETA_VARIANTS[variant](THETA), go, backend=backend),
          stntool.warp_backward(img, _as_values(THETA_VARIANTS[variant](THETA)), go, backend=backend))


def test_big_endian_float32_theta_gives_a_float32_grid():
    g = stntool.affine_grid(np.asarray(THETA, ">f4"), (4, 5))
    assert g.dtype == np.float32 and g.dtype.isnative
    _same(g, stntool.affine_grid(np.asarray(THETA, np.float32), (4, 5)))


@pytest.mark.parametrize("kind", ["complex", "object", "bool"])
def test_unsupported_theta_is_refused(kind):
    t = np.asarray(THETA)
    bad = {"complex": t.astype(complex), "object": t.astype(object), "bool": t > 0}[kind]
    for call in (lambda: stntool.warp(_image(np.uint8), bad, backend="numpy"),
                 lambda: stntool.affine_grid(bad, (3, 4)),
                 lambda: stntool.projective_grid(np.concatenate([bad, bad[:1]]), (3, 4)),
                 lambda: stntool.warp_backward(_image(np.float64), bad, np.ones(HW), backend="numpy")):
        with pytest.raises(InvalidArgumentError):
            call()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["float16", "longdouble", ">f8", "non-contiguous", "read-only"])
def test_tps_point_variants(backend, variant):
    conv = THETA_VARIANTS[variant]
    img = _image(np.uint16)
    src, dst = conv(SRC_PIX), conv(DST_PIX)
    _same(stntool.warp_tps(img, src, dst, backend=backend),
          stntool.warp_tps(img, _as_values(src), _as_values(dst), backend=backend))
    p, q = stntool.tps_plan(src, dst, HW, backend=backend), stntool.tps_plan(_as_values(src), _as_values(dst), HW,
                                                                              backend=backend)
    np.testing.assert_array_equal(p.lattice, q.lattice)
    src_n = conv(regular_control_points(3) * 0.8)
    _same(stntool.tps_grid(src_n, (5, 6)), stntool.tps_grid(_as_values(src_n), (5, 6)))


@pytest.mark.parametrize("kind", ["complex", "object", "bool"])
def test_unsupported_tps_points_are_refused(kind):
    s = np.asarray(SRC_PIX, np.float64)
    bad = {"complex": s.astype(complex), "object": s.astype(object), "bool": s > 3}[kind]
    for call in (lambda: stntool.warp_tps(_image(np.uint8), bad, DST_PIX, backend="numpy"),
                 lambda: stntool.warp_tps(_image(np.uint8), SRC_PIX, bad, backend="numpy"),
                 lambda: stntool.tps_plan(bad, DST_PIX, HW, backend="numpy"),
                 lambda: stntool.tps_grid(bad[:4], (3, 4), regular_control_points(2))):
        with pytest.raises(InvalidArgumentError):
            call()


def test_an_output_too_large_for_memory_is_one_clear_error(monkeypatch):
    """An output the machine cannot hold (28 GiB; numpy's MemoryError, here made to happen whatever the machine's
    memory): InvalidArgumentError naming its size."""
    empty = np.empty

    def no_memory(shape, *args, **kwargs):
        if np.prod(shape, dtype=np.float64) > 1e9:
            raise MemoryError("Unable to allocate 27.9 GiB")
        return empty(shape, *args, **kwargs)

    monkeypatch.setattr(np, "empty", no_memory)
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InvalidArgumentError, match=r"too large \(27.9 GiB\)"):
        stntool.warp(img, [[1, 0, 0], [0, 1, 0]], out_hw=(100_000, 100_000))


@pytest.mark.parametrize("flag", ["False", "True", None, 2, 0.5])
def test_align_corners_is_true_or_false(flag):
    """The string "False" is true to Python: it warped as align_corners=True. Only booleans (and 0, 1) are taken."""
    img = np.zeros((6, 6), np.float32)
    theta = np.array([[1.0, 0, 0], [0, 1, 0]])
    for call in (lambda: stntool.warp(img, theta, align_corners=flag),
                 lambda: stntool.affine_grid(theta, (4, 4), align_corners=flag),
                 lambda: stntool.grid_sample(img, stntool.affine_grid(theta, (4, 4)), align_corners=flag),
                 lambda: stntool.theta_from_cv2(np.eye(3)[:2], (4, 4), align_corners=flag)):
        with pytest.raises(InvalidArgumentError, match="align_corners must be True or False"):
            call()
    assert np.array_equal(stntool.warp(img, theta, align_corners=np.bool_(True)),
                          stntool.warp(img, theta, align_corners=1))


@pytest.mark.parametrize("bad", ["abc", [[1, 0], [0, 1, 0]], np.eye(3, dtype=complex), np.eye(3, dtype=bool)[:2]])
def test_opencv_matrices_and_theta_of_other_than_real_numbers_are_refused(bad):
    """A string, a ragged list (numpy's ValueError), a complex matrix (its imaginary part dropped with a warning),
    booleans: one InvalidArgumentError each way."""
    for convert in (stntool.theta_from_cv2, stntool.theta_to_cv2):
        with pytest.raises(InvalidArgumentError, match="must be an array of|must be a numeric array"):
            convert(bad, (4, 4))


def test_tps_plan_and_warp_plan_arguments_are_checked():
    pts = [[0, 0], [5, 0], [0, 5], [5, 5]]
    for kwargs in ({"tol": None}, {"tol": "x"}, {"regularization": "x"}, {"regularization": True}):
        with pytest.raises(InvalidArgumentError, match="must be a number"):
            stntool.tps_plan(pts, pts, (6, 6), **kwargs)
    with pytest.raises(InvalidArgumentError, match="plan must be a TpsPlan"):
        stntool.warp_plan(np.zeros((6, 6), np.float32), "plan", (6, 6))


def test_warp_plan_takes_the_output_size_its_plan_was_built_for():
    """A smaller size read a crop of the planned output, silently; refused now (a lattice of other node counts)."""
    img = np.random.default_rng(1).random((16, 20)).astype(np.float32)
    src = [[0, 0], [19, 0], [0, 15], [19, 15], [10, 8]]
    dst = [[1, 0], [18, 1], [0, 14], [19, 15], [11, 7]]
    plan = stntool.tps_plan(src, dst, (16, 20))
    assert np.array_equal(stntool.warp_plan(img, plan, (16, 20)), stntool.warp_tps(img, src, dst))
    for hw in ((8, 10), (15, 20), (16, 19)):
        with pytest.raises(InvalidArgumentError, match="built for a larger output"):
            stntool.warp_plan(img, plan, hw)
