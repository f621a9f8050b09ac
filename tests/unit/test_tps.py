"""Thin-plate splines: fitting, exactness, degenerate input, fused TPS warps."""

import numpy as np
import pytest

import stntool
from stntool.errors import InvalidArgumentError
from stntool.sampling import _reference
from stntool.tps import ThinPlateSpline, regular_control_points


def test_interpolates_control_points_and_reproduces_affine(rng):
    c = rng.uniform(-1, 1, (9, 2))
    v = c + rng.normal(0, 0.1, c.shape)
    tps = ThinPlateSpline(c, v)
    np.testing.assert_allclose(tps(c), v, atol=1e-12)
    a = np.array([[0.9, 0.2], [-0.1, 1.1]])
    tps_aff = ThinPlateSpline(c, c @ a.T + [0.3, -0.2])
    np.testing.assert_allclose(tps_aff.weights, 0, atol=1e-10)
    p = rng.uniform(-2, 2, (50, 2))
    np.testing.assert_allclose(tps_aff(p), p @ a.T + [0.3, -0.2], atol=1e-10)


def test_kernel_is_r2_log_r2():
    tps = ThinPlateSpline([[0, 0], [1, 0], [0, 1], [1, 1]], [[0, 0], [1, 0], [0, 1], [1, 1.1]])
    d2 = 0.5 ** 2 + 0.25 ** 2
    k = stntool.tps.tps_kernel(np.array([[0.5, 0.25]]), np.array([[0.0, 0.0]]))
    assert k[0, 0] == pytest.approx(d2 * np.log(d2))


def test_regularization_smooths(rng):
    c = regular_control_points(4)
    v = c + rng.normal(0, 0.2, c.shape)
    exact = ThinPlateSpline(c, v)
    smooth = ThinPlateSpline(c, v, regularization=10.0)
    assert np.abs(smooth(c) - v).max() > 1e-3
    assert np.abs(smooth.weights).sum() < np.abs(exact.weights).sum()


def test_degenerate_control_points_raise():
    with pytest.raises(stntool.DegenerateError, match="duplicate"):
        ThinPlateSpline([[0, 0], [1, 0], [0, 1], [1, 0]], np.zeros((4, 2)))
    with pytest.raises(stntool.DegenerateError, match="collinear"):
        ThinPlateSpline([[0, 0], [1, 1], [2, 2], [3, 3]], np.zeros((4, 2)))
    with pytest.raises(stntool.DegenerateError, match="at least 3"):
        ThinPlateSpline([[0, 0], [1, 1]], np.zeros((2, 2)))
    with pytest.raises(stntool.InvalidArgumentError):
        ThinPlateSpline([[0, 0], [1, 0], [0, np.nan]], np.zeros((3, 2)))


def test_basis_is_the_linear_map_from_values(rng):
    c = regular_control_points(3)
    v = c + rng.normal(0, 0.1, c.shape)
    p = rng.uniform(-1, 1, (20, 2))
    np.testing.assert_allclose(ThinPlateSpline(c, v).basis(p) @ v, ThinPlateSpline(c, v)(p), atol=1e-12)


def test_tps_grid_identity_and_points():
    g = stntool.tps_grid(regular_control_points(3), (5, 7))
    np.testing.assert_allclose(g, stntool.affine_grid([[1, 0, 0], [0, 1, 0]], (5, 7)), atol=1e-12)
    src = regular_control_points(3) * 0.8
    g2 = stntool.tps_grid(np.stack([src, src]), (5, 5), align_corners=True)
    assert g2.shape == (2, 5, 5, 2)
    np.testing.assert_allclose(g2[0, 0, 0], src[0], atol=1e-12)     # corner control point lands exactly
    np.testing.assert_allclose(g2[1, 2, 2], src[4], atol=1e-12)     # centre


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sigma", [2.0, 12.0, 30.0])
def test_plan_is_within_tolerance_of_exact_spline(rng, align_corners, sigma):
    h, w = 300, 420
    dst = np.array([[x, y] for y in np.linspace(0, h - 1, 4) for x in np.linspace(0, w - 1, 4)])
    src = dst + rng.normal(0, sigma, dst.shape)
    plan = stntool.tps_plan(src, dst, (h, w), align_corners=align_corners, tol=0.01)
    exact = stntool.tps_plan(src, dst, (h, w), align_corners=align_corners, tol=0)
    assert exact.step == 1 and plan.step >= (4 if sigma < 20 else 2)
    err = np.hypot(*(plan.dense((h, w)) - exact.lattice[1:-1, 1:-1]).transpose(2, 0, 1))
    assert err.max() <= 0.01
    assert plan.max_error <= 0.8 * 0.01  # tps_lattice.TOL_SHARE


def test_the_lattice_keeps_tol_at_the_quarter_points_where_catmull_rom_errs_most():
    # the probes were the cell centres, where the interpolation's cubic error vanishes: this plan reported
    # 0.0049 px and was 0.0125 px off at pixel (2, 2) of its 8-px cells (tol 0.01)
    dst = [[189.6, -159.5], [-150.7, 148.2], [185.2, 670.8], [480.0, 612.2], [669.3, 177.0], [-162.6, 213.6],
           [570.1, 536.0], [-44.3, -38.7]]
    src = [[974.1, 88.8], [103.9, -49.2], [-447.6, 735.1], [521.9, 140.9], [406.9, 149.2], [-525.5, 175.8],
           [606.8, 549.7], [-238.7, 189.3]]
    cases = [(src, dst, (512, 512))]
    rng = np.random.default_rng(5)  # its 26th spline was 1.08 tol off with two quarter points probed, not four
    for k in range(26):
        h, w = (int(v) for v in rng.integers(100, 700, 2))
        d = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h], (int(rng.integers(4, 20)), 2))
        s = d + rng.normal(0, rng.choice([0.01, 0.03, 0.1, 0.3]) * max(h, w), d.shape)
    cases.append((s, d, (h, w)))
    rng = np.random.default_rng(7)
    for _ in range(12):
        h, w = (int(v) for v in rng.integers(80, 400, 2))
        d = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h], (int(rng.integers(4, 14)), 2))
        cases.append((d + rng.normal(0, rng.choice([0.03, 0.1, 0.3]) * max(h, w), d.shape), d, (h, w)))
    for s, d, hw in cases:
        plan = stntool.tps_plan(s, d, hw, tol=0.01)
        exact = stntool.tps_plan(s, d, hw, tol=0, backend="numpy").lattice[1:-1, 1:-1]
        err = np.abs(plan.dense(hw) - exact).max()
        assert err <= 0.01 and plan.max_error <= 0.008 and err <= 1.25 * plan.max_error + 1e-9, (hw, plan, err)


def test_plan_exact_lattice_is_the_spline(rng):
    h, w = 20, 30
    dst = np.array([[0, 0], [29, 0], [0, 19], [29, 19], [14, 9]], float)
    src = dst + rng.normal(0, 2, dst.shape)
    # pixel points: the spline from output pixels to input pixels
    plan = stntool.tps_plan(src, dst, (h, w), tol=0)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pix = ThinPlateSpline(dst, src)(np.stack([jj, ii], -1).astype(float))
    np.testing.assert_allclose(plan.lattice[1:-1, 1:-1], pix, atol=1e-9)
    # normalized points: the STN spline of tps_grid
    src_n, dst_n = stntool.coords.pixel_to_norm(src, (h, w)), stntool.coords.pixel_to_norm(dst, (h, w))
    plan_n = stntool.tps_plan(src_n, dst_n, (h, w), normalized=True, tol=0)
    grid = stntool.tps_grid(src_n, (h, w), dst_n)
    np.testing.assert_allclose(plan_n.lattice[1:-1, 1:-1], stntool.coords.norm_to_pixel(grid, (h, w)), atol=1e-9)
    # a one-pixel output axis with align_corners=True has no extent: the plan evaluates every pixel
    c = stntool.tps.regular_control_points(3)
    thin = stntool.tps_plan(c * 0.9, c, (h, w), (1, w), align_corners=True, normalized=True, tol=0.01)
    assert thin.step == 1 and thin.radius < 0


def test_cpu_plan_kernel_matches_reference_points(rng):
    from stntool.sampling import _cpu

    h, w = 150, 170
    dst = np.array([[x, y] for y in np.linspace(0, h - 1, 3) for x in np.linspace(0, w - 1, 3)])
    plan = stntool.tps_plan(dst + rng.normal(0, 6, dst.shape), dst, (h, w), tol=0.01)
    js = rng.integers(0, w, 500)
    is_ = rng.integers(0, h, 500)
    got = np.empty((500, 2))
    _cpu.tps_lattice_points(plan.lattice, plan.step, plan.singular, plan.tables, plan.radius, plan.norm_scale[0],
                            plan.norm_scale[1], js, is_, got)
    np.testing.assert_allclose(got, plan.points(js, is_), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_warp_tps_cpu_matches_reference_and_exact(rng, dtype):
    img = (rng.random((33, 41, 3)) * 200).astype(dtype)
    dst = np.array([[0, 0], [40, 0], [0, 32], [40, 32], [20, 16]], float)
    src = dst + rng.normal(0, 2, dst.shape)
    for mode in ("nearest", "bilinear", "bicubic"):
        a = stntool.warp_tps(img, src, dst, mode=mode, tol=0.05, backend="cpu")
        b = stntool.warp_tps(img, src, dst, mode=mode, tol=0.05, backend="numpy")
        tol = 1 if dtype == np.uint8 else 1e-4  # values up to 200: a few float32 ulps
        if mode != "nearest":
            assert np.abs(a.astype(float) - b).max() <= tol
        else:
            assert np.mean(a != b) < 0.01
    ii, jj = np.meshgrid(np.arange(33), np.arange(41), indexing="ij")
    exact_pix = ThinPlateSpline(dst, src)(np.stack([jj, ii], -1).astype(float))  # pixel points: pixel-space spline
    exact_grid = stntool.coords.pixel_to_norm(exact_pix, (33, 41))
    exact = stntool.grid_sample(img.astype(np.float64), exact_grid, backend="numpy")
    fused = stntool.warp_tps(img.astype(np.float64), src, dst, tol=0, backend="cpu")
    np.testing.assert_allclose(fused, exact, atol=1e-9)


def test_warp_tps_moves_points(rng):
    img = np.zeros((40, 40), np.float32)
    img[10, 12] = 1.0
    src = np.array([[12, 10], [0, 0], [39, 0], [0, 39], [39, 39]], float)
    dst = np.array([[20, 25], [0, 0], [39, 0], [0, 39], [39, 39]], float)
    out = stntool.warp_tps(img, src, dst, mode="nearest", tol=0)
    assert out[25, 20] == 1.0


def test_cached_plan_is_immutable(rng):
    h, w = 64, 80
    dst = np.array([[0, 0], [79, 0], [0, 63], [79, 63], [40, 30]], float)
    src = dst + rng.normal(0, 3, dst.shape)
    plan = stntool.tps_plan(src, dst, (h, w), tol=0.05)
    assert stntool.tps_plan(src, dst, (h, w), tol=0.05) is plan          # cached
    assert stntool.TpsPlan is stntool.tps_lattice.TpsPlan and stntool.api.tps_plan is stntool.tps_plan
    lattice = plan.lattice.copy()
    for name in ("lattice", "tables", "singular", "norm_scale"):
        arr = getattr(plan, name)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flat[0] = 123.0
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    for name, value in (("max_error", 0.0), ("step", 1), ("lattice", lattice), ("radius", 0.0)):
        with pytest.raises(AttributeError):
            setattr(plan, name, value)
    with pytest.raises(AttributeError):
        del plan.step
    again = stntool.tps_plan(src, dst, (h, w), tol=0.05)
    np.testing.assert_array_equal(again.lattice, lattice)
    assert 0 <= again.max_error <= 0.8 * 0.05


def test_plan_copies_the_arrays_it_is_given():
    lattice = np.zeros((4, 4, 2))
    plan = stntool.TpsPlan(lattice, 2, np.zeros((1, 4)), np.zeros((4, 4, 1)), 4.0, [0.1, 0.1], 0.0)
    lattice[...] = 7.0
    assert plan.lattice.max() == 0.0 and lattice.flags.writeable
    assert plan.norm_scale.dtype == np.float64 and plan.step == 2


@pytest.mark.parametrize("theta", [((1.0, 0.1, 0.0), (-0.1, 1.0, 0.0)), ((1.0, 0.1, 0.0), (0.0, 1.0, 0.0), (0.1, 0.0, 1.0))])
def test_an_elastic_records_plan_freezes_its_own_arrays(theta):
    """lattice_plan hands the plan arrays it made itself, frozen rather than copied: read-only for good."""
    from stntool.maps import lattice_plan, lattice_shape
    from stntool.records import Elastic, WarpSpec

    plan = lattice_plan(WarpSpec(theta=theta, elastic=Elastic(20.0, 4.0, 5)), (40, 50))
    for name in ("lattice", "tables", "singular", "norm_scale"):
        arr = getattr(plan, name)
        with pytest.raises(ValueError):
            arr.flat[0] = 1.0
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    again = lattice_plan(WarpSpec(theta=theta, elastic=Elastic(20.0, 4.0, 5)), (40, 50))
    np.testing.assert_array_equal(again.lattice, plan.lattice)
    hc, wc = lattice_shape((40, 50), plan.step)
    assert plan.lattice.shape == (hc + 2, wc + 2, 2) and plan.step == 2


def test_an_adopting_plan_copies_arrays_it_does_not_own():
    base = np.zeros((4, 4, 2))
    plan = stntool.TpsPlan._adopting(base[:, :, ::-1], 2, np.zeros((1, 4)), np.zeros((4, 4, 1)), 4.0, [0.1, 0.1], 0.0)
    base[...] = 7.0  # a strided view is copied; its base stays the caller's
    assert plan.lattice.max() == 0.0 and base.flags.writeable


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6, 7, 8, 13])
def test_lattice_rows_read_where_the_lattice_says_for_every_step(rng, step):
    """A lattice plan warp of linear ramps (channel 0 = x, channel 1 = y, float64) reads back the Catmull-Rom
    map of the lattice (``maps.lattice_map``, the numpy spec) at every output pixel: small steps take the
    fraction-by-fraction loop of a row's cells (step 3 puts the fractions in pixel order by a loop of its
    own, the others by one general loop), larger ones cell by cell, and the last cell of a row whose width
    is not a multiple of the step takes the row's end."""
    from stntool.maps import lattice_map, lattice_shape

    h, w = 60, 80
    img = np.empty((h, w, 2))
    img[..., 0] = np.arange(w)
    img[..., 1] = np.arange(h)[:, None]
    for out_hw in ((37, 53), (40, 3 * step + 1), (19, 61)):
        hc, wc = lattice_shape(out_hw, step)
        lat = np.empty((hc + 2, wc + 2, 2))
        lat[..., 0] = 10.0 + np.arange(-1, wc + 1) * step * 0.8
        lat[..., 1] = 8.0 + (np.arange(-1, hc + 1) * step * 0.9)[:, None]
        lat += rng.uniform(-1.5, 1.5, lat.shape)
        plan = stntool.TpsPlan._adopting(lat, step, np.zeros((0, 4)), np.zeros((hc + 2, wc + 2, 0)), -1.0,
                                         np.ones(2), 0.0)
        got = stntool.warp_plan(img, plan, out_hw, padding="border", backend="cpu")
        jj, ii = np.meshgrid(np.arange(out_hw[1]), np.arange(out_hw[0]))
        want = lattice_map(plan, np.stack([jj, ii], -1).reshape(-1, 2).astype(float)).reshape(out_hw + (2,))
        assert want.min() > 0 and want[..., 0].max() < w - 1 and want[..., 1].max() < h - 1  # ramps are exact
        np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("out_hw", [(10**6, 10**6), (10**30, 1)])
def test_an_output_too_large_for_a_plan_is_refused_not_a_memory_error(out_hw):
    """warp_tps built the plan before it checked the output (a MemoryError, or a process the kernel killed while
    it filled a 55 GB lattice); a 10**30 side was a TypeError from np.log2."""
    src = [[12.2, 1.7], [4.0, 1.2], [3.0, 1.9], [33.4, 0.5], [11.9, 1.6]]
    dst = [[13.4, 1.9], [4.2, 0.5], [3.9, 0.2], [33.3, -0.1], [11.7, 0.6]]
    img = np.zeros((40, 40))
    with pytest.raises(InvalidArgumentError, match="too large|values"):  # (a lazily allocated output: the plan)
        stntool.warp_tps(img, src, dst, out_hw=out_hw)
    with pytest.raises(InvalidArgumentError, match="a TPS plan for an output of .* needs .* values"):
        stntool.tps_plan(src, dst, (40, 40), out_hw)


@pytest.mark.parametrize("out_hw", [(1, 1146), (2, 1441), (3, 800)])
def test_a_plan_for_a_thin_output_stays_within_tol(out_hw):
    """The probes around each control point are a ring just outside its exact window; for an output a few pixels
    thick the ring's rows and sampled columns all lay outside it, so nothing checked the pixels beside the window
    (a plan for tol 0.5 was 2.7 px off there, reporting 0.11). The ring's parts outside the output now probe the
    output pixels nearest them."""
    src = [[12.2, 1.7], [4.0, 1.2], [3.0, 1.9], [33.4, 0.5], [11.9, 1.6], [16.0, 0.2], [23.2, 1.5], [30.7, 1.5]]
    dst = [[13.4, 1.9], [4.2, 0.5], [3.9, 0.2], [33.3, -0.1], [11.7, 0.6], [16.7, 0.1], [22.6, 2.0], [30.6, 0.9]]
    tol = 0.5
    plan = stntool.tps_plan(src, dst, (2, 34), out_hw, tol=tol, backend="cpu")
    exact = stntool.tps_plan(src, dst, (2, 34), out_hw, tol=0, backend="numpy")
    ii, jj = np.divmod(np.arange(out_hw[0] * out_hw[1]), out_hw[1])
    err = np.abs(plan.points(jj, ii) - exact.points(jj, ii)).max()
    assert err <= tol and plan.max_error >= err - 1e-9, (plan.step, err, plan.max_error)


def test_more_control_points_than_a_spline_takes_are_refused_before_any_solving():
    # 30,000 points would take a 7 GB system and minutes: a record from elsewhere was read as given
    from stntool.tps import MAX_TPS_POINTS, ThinPlateSpline

    pts = np.random.default_rng(0).random((MAX_TPS_POINTS + 1, 2))
    with pytest.raises(InvalidArgumentError, match=f"{MAX_TPS_POINTS + 1} control points: at most {MAX_TPS_POINTS}"):
        ThinPlateSpline(pts, pts)
    with pytest.raises(InvalidArgumentError, match="at most"):
        stntool.warp_tps(np.zeros((8, 8)), pts * 7, pts * 7, backend="numpy")
