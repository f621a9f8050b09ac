"""The frame a thin-plate spline is solved in: pixel points -> pixel space, normalized points -> normalized space.

With pixel points, ``warp_tps`` must be the spline that scikit-image
(``skimage.transform.ThinPlateSplineTransform``), OpenCV (``ThinPlateSplineShapeTransformer``) and
Albumentations compute from the same points: Bookstein's system over the output-pixel control
points, with the input-pixel points as values. The oracle here is that system written out densely
(``_pixel_tps_oracle``, independent of :mod:`stntool.tps`); scikit-image is compared too when it is
installed. Normalized points keep the STN form, ``grid_sample(img, tps_grid(src, out_hw, dst))``.
"""

import json

import numpy as np
import pytest

import stntool
from stntool.coords import norm_from_pixel
from stntool.records import TpsPoints, WarpSpec, apply_spec
from stntool.sampling import _reference

BACKENDS = ("numpy", "cpu")


def _pixel_tps_oracle(centres, values, points):
    """Bookstein (1989): solve ``[[K, P], [Pᵀ, 0]] [w; a] = [v; 0]`` with ``U(r) = r² log r²`` and evaluate."""
    c = np.asarray(centres, dtype=np.float64)
    n = len(c)

    def u(p, q):
        d2 = ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)
        out = np.zeros_like(d2)
        pos = d2 > 0
        out[pos] = d2[pos] * np.log(d2[pos])
        return out

    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = u(c, c)
    system[:n, n] = 1.0
    system[:n, n + 1:] = c
    system[n, :n] = 1.0
    system[n + 1:, :n] = c.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = values
    sol = np.linalg.solve(system, rhs)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    res = u(p, c) @ sol[:n] + sol[n] + p @ sol[n + 1:]
    return res.reshape(np.shape(points))


def _pixel_points(out_hw):
    ii, jj = np.meshgrid(np.arange(out_hw[0]), np.arange(out_hw[1]), indexing="ij")
    return np.stack([jj, ii], -1).astype(np.float64)


def _case(hw, seed, n_extra=3):
    """Control points on the corners plus a few inside, moved by a few pixels."""
    h, w = hw
    rng = np.random.default_rng(seed)
    src = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]] +
                   [[rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h] for _ in range(n_extra)])
    dst = src + rng.uniform(-3.5, 3.5, src.shape)
    return src, dst


def _image(hw, seed=7, dtype=np.float64):
    v = np.random.default_rng(seed).random(hw)
    return np.round(v * 255).astype(np.uint8) if dtype == np.uint8 else v.astype(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("in_hw, out_hw", [((40, 50), (40, 50)), ((31, 77), (31, 77)), ((40, 50), (36, 57)),
                                           ((50, 40), (50, 40))])
@pytest.mark.parametrize("tol", [0.0, 0.01])
def test_pixel_points_solve_the_spline_in_pixel_space(backend, align_corners, in_hw, out_hw, tol):
    src, dst = _case(in_hw, seed=in_hw[1] + out_hw[0])
    want = _pixel_tps_oracle(dst, src, _pixel_points(out_hw))
    plan = stntool.tps_plan(src, dst, in_hw, out_hw, align_corners, tol=tol, backend=backend)
    got = plan.dense(out_hw)
    assert np.abs(got - want).max() <= max(tol, 1e-9)
    if tol == 0:
        return
    # the sampled image: exact where the plan's coordinates agree with the oracle's
    img = _image(in_hw)
    out = stntool.warp_tps(img, src, dst, out_hw, align_corners=align_corners, tol=tol, backend=backend)
    ref = _reference.sample_pixels_float64(img[None, :, :, None], got[None, ..., 0], got[None, ..., 1],
                                           "bilinear", "zeros", align_corners, None)[0, :, :, 0]
    # the compiled kernels evaluate the plan in their own operation order: coordinates agree to ~1e-10 px
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 if backend == "numpy" else 1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hw", [(40, 50), (31, 77)])
def test_pixel_warp_matches_the_oracle_sampled_exactly(backend, hw):
    """Nearest uint8 output from the oracle's coordinates equals warp_tps wherever no rounding tie is near."""
    src, dst = _case(hw, seed=3)
    img = _image(hw, dtype=np.uint8)
    want_xy = _pixel_tps_oracle(dst, src, _pixel_points(hw))
    want = _reference.to_dtype(_reference.sample_pixels_float64(
        img[None, :, :, None], want_xy[None, ..., 0], want_xy[None, ..., 1], "nearest", "border", False, None),
        np.uint8)[0, :, :, 0]
    got = stntool.warp_tps(img, src, dst, mode="nearest", padding="border", tol=0, backend=backend)
    frac = np.abs(want_xy - np.floor(want_xy) - 0.5)
    clear = (frac > 1e-6).all(-1)
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], want[clear])


@pytest.mark.parametrize("hw", [(40, 50), (31, 77)])
def test_pixel_spline_matches_scikit_image(hw):
    transform = pytest.importorskip("skimage.transform")
    src, dst = _case(hw, seed=11)
    pts = _pixel_points(hw).reshape(-1, 2)
    if hasattr(transform.ThinPlateSplineTransform, "from_estimate"):
        tps = transform.ThinPlateSplineTransform.from_estimate(dst, src)
    else:  # scikit-image < 0.26
        tps = transform.ThinPlateSplineTransform()
        assert tps.estimate(dst, src)
    want = tps(pts).reshape(hw + (2,))
    got = stntool.tps_plan(src, dst, hw, tol=0, backend="numpy").dense(hw)
    assert np.abs(got - want).max() < 1e-4  # scikit-image's own solve is good to about 1e-5 px here


def test_non_square_pixel_and_normalized_frames_differ():
    """The regression: the old normalized-frame solve is a different map on a non-square image."""
    hw = (40, 50)
    src, dst = _case(hw, seed=5)
    m = norm_from_pixel(hw, False)
    to_norm = lambda p: p * [m[0, 0], m[1, 1]] + m[:2, 2]  # noqa: E731
    pixel = stntool.tps_plan(src, dst, hw, tol=0, backend="numpy").dense(hw)
    normalized = stntool.tps_plan(to_norm(src), to_norm(dst), hw, normalized=True, tol=0, backend="numpy").dense(hw)
    assert np.abs(pixel - normalized).max() > 0.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("in_hw, out_hw", [((32, 32), (32, 32)), ((35, 50), (24, 24))])
def test_square_outputs_agree_in_both_frames(backend, align_corners, in_hw, out_hw):
    """A uniform scale leaves a thin-plate spline unchanged: with a square output both frames give one map."""
    src, dst = _case(in_hw, seed=2)
    dst = dst * (out_hw[0] / in_hw[0])
    mi, mo = norm_from_pixel(in_hw, align_corners), norm_from_pixel(out_hw, align_corners)
    src_n = src * [mi[0, 0], mi[1, 1]] + mi[:2, 2]
    dst_n = dst * [mo[0, 0], mo[1, 1]] + mo[:2, 2]
    pixel = stntool.tps_plan(src, dst, in_hw, out_hw, align_corners, tol=0, backend=backend).dense(out_hw)
    norm = stntool.tps_plan(src_n, dst_n, in_hw, out_hw, align_corners, normalized=True, tol=0,
                            backend=backend).dense(out_hw)
    np.testing.assert_allclose(pixel, norm, rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_normalized_points_keep_the_stn_form(backend, align_corners):
    """normalized=True is grid_sample(img, tps_grid(src, out_hw, dst)) on any shape."""
    rng = np.random.default_rng(4)
    dst = regular = stntool.tps.regular_control_points(3) * 0.9
    src = regular + rng.normal(0, 0.06, regular.shape)
    img = _image((31, 77))
    out_hw = (26, 45)
    got = stntool.warp_tps(img, src, dst, out_hw, align_corners=align_corners, normalized=True, tol=0,
                           backend=backend)
    want = stntool.grid_sample(img, stntool.tps_grid(src, out_hw, dst, align_corners), align_corners=align_corners,
                               backend="numpy")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_pixel_identity_and_control_points_land():
    hw = (31, 77)
    src, dst = _case(hw, seed=9)
    img = _image(hw)
    np.testing.assert_allclose(stntool.warp_tps(img, src, src, tol=0, backend="numpy"), img, atol=1e-9)
    plan = stntool.tps_plan(src, dst, hw, tol=0, backend="numpy")
    # each output control point reads its input point (checked at control points on integer pixels)
    dst_int = np.round(dst)
    plan_int = stntool.tps_plan(src, dst_int, hw, tol=0, backend="numpy")
    got = plan_int.points(dst_int[:, 0].astype(int), dst_int[:, 1].astype(int))
    inside = (dst_int[:, 0] >= 0) & (dst_int[:, 0] < hw[1]) & (dst_int[:, 1] >= 0) & (dst_int[:, 1] < hw[0])
    np.testing.assert_allclose(got[inside], src[inside], atol=1e-9)
    assert plan.norm_scale.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_and_cli_replay_the_pixel_spline(tmp_path, backend):
    from click.testing import CliRunner

    from stntool.cli import cli
    from stntool.io import decode_image

    import cv2

    hw = (31, 44)
    src, dst = _case(hw, seed=13)
    img = _image(hw, dtype=np.uint8)
    want = stntool.warp_tps(img, src, dst, backend=backend)
    spec = WarpSpec(tps=TpsPoints(src.tolist(), dst.tolist()), in_hw=hw)
    np.testing.assert_array_equal(apply_spec(img, spec, backend=backend), want)
    again = WarpSpec.from_record(json.loads(json.dumps(spec.to_record())))
    np.testing.assert_array_equal(apply_spec(img, again, backend=backend), want)
    # the spline is the pixel-space one
    oracle = _pixel_tps_oracle(dst, src, _pixel_points(hw))
    assert np.abs(stntool.tps_plan(src, dst, hw, backend=backend).dense(hw) - oracle).max() <= 0.01
    if backend != "cpu":  # the command line runs the compiled backends only
        return
    # and the command line, from a points file
    ok, buf = cv2.imencode(".png", img)
    (tmp_path / "in.png").write_bytes(buf.tobytes())
    (tmp_path / "p.json").write_text(json.dumps({"src": src.tolist(), "dst": dst.tolist()}))
    r = CliRunner().invoke(cli, ["warp", "--tps", str(tmp_path / "p.json"), str(tmp_path / "in.png"), "-o",
                                 str(tmp_path / "o.png"), "--device", "cpu", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    out = decode_image((tmp_path / "o.png").read_bytes())
    np.testing.assert_array_equal(out.reshape(want.shape), want)
