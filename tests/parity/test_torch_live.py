"""stntool against live PyTorch on random inputs (skipped when torch is not installed).

Same checks as ``test_torch_frozen.py`` on fresh draws, plus layouts the frozen file does not
hold (unbatched images and grids, one image or one θ for a batch), projective θ, and thin-plate
splines built STN-style in torch (Bookstein's system solved in float64) with gradients to the
control points. All gradients come from torch autograd, none from finite differences.

Draws come from ``np.random.default_rng(seed)``; set ``STNTOOL_PARITY_SEED`` to draw other
inputs (the seed is part of every failure message). Tolerances are explained in ``_parity_util``.
"""

from __future__ import annotations

import os
import warnings
import zlib

import numpy as np
import pytest

import stntool
from _parity_util import (BACKENDS, GRID_ATOL, MODES, PADDINGS, away_from_kinks, assert_close,
                          assert_grad_close, forward_atol, random_theta)

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

BASE_SEED = int(os.environ.get("STNTOOL_PARITY_SEED", "7"))
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
DTYPES = ("float32", "float64")
# (in_hw, out_hw, channels): odd sizes, a single-pixel axis, up- and down-sampling
SIZES = (((7, 10), (5, 8), 3), ((1, 6), (4, 3), 2), ((9, 5), (9, 5), 1))


def _rng(*key) -> np.random.Generator:
    """A generator for one test, from the base seed and the test's key (strings hashed stably)."""
    return np.random.default_rng([BASE_SEED, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key)])


def _seed_note(*key) -> str:
    return f"(STNTOOL_PARITY_SEED={BASE_SEED}, key={key})"


def to_nchw(img_nhwc: np.ndarray, requires_grad: bool = False):
    t = torch.from_numpy(np.ascontiguousarray(img_nhwc.transpose(0, 3, 1, 2)))
    return t.clone().requires_grad_(requires_grad)


def to_nhwc(t) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def torch_affine_grid(theta, n, c, out_hw, align_corners):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about unit-size grids with align_corners=True
        return F.affine_grid(theta, (n, c) + tuple(out_hw), align_corners=align_corners)


def draw_grid(rng, n, in_hw, out_hw, align_corners, dtype, spread=1.7):
    """Random normalized grid reaching outside the image, away from ties and gradient kinks."""
    while True:
        g = rng.uniform(-spread, spread, size=(n,) + tuple(out_hw) + (2,)).astype(dtype)
        if away_from_kinks(g, in_hw, align_corners):
            return g


def draw_theta(rng, n, c, in_hw, out_hw, align_corners, dtype):
    """Random θ (alternating near-identity and large) whose torch grid stays away from kinks."""
    while True:
        theta = np.concatenate([random_theta(rng) for _ in range((n + 1) // 2)])[:n].astype(dtype)
        grid = torch_affine_grid(torch.from_numpy(theta), n, c, out_hw, align_corners)
        if away_from_kinks(grid.numpy(), in_hw, align_corners):
            return theta, grid


def draw_image(rng, n, in_hw, c, dtype):
    return rng.uniform(-1.0, 1.0, size=(n,) + tuple(in_hw) + (c,)).astype(dtype)


# --------------------------------------------------------------------------- forward

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0][0]}x{s[0][1]}to{s[1][0]}x{s[1][1]}")
def test_live_forward(size, dtype, align_corners, backend):
    """affine_grid, grid_sample on explicit grids, and the fused warp, for every mode and padding."""
    in_hw, out_hw, c = size
    key = ("forward", *in_hw, *out_hw, dtype, int(align_corners))
    rng = _rng(*key)
    note = _seed_note(*key)
    n = 3
    img = draw_image(rng, n, in_hw, c, dtype)
    grid = draw_grid(rng, n, in_hw, out_hw, align_corners, dtype)
    theta, tgrid = draw_theta(rng, n, c, in_hw, out_hw, align_corners, dtype)
    assert_close(stntool.affine_grid(theta, out_hw, align_corners), tgrid.numpy(), GRID_ATOL[dtype],
                 f"affine_grid {note}")
    timg = to_nchw(img)
    for mode in MODES:
        for padding in PADDINGS:
            atol = forward_atol(dtype, mode, backend)
            want = to_nhwc(F.grid_sample(timg, torch.from_numpy(grid), mode=mode, padding_mode=padding,
                                         align_corners=align_corners))
            got = stntool.grid_sample(img, grid, mode, padding, align_corners, backend=backend)
            assert got.dtype == img.dtype
            assert_close(got, want, atol, f"grid_sample {mode}/{padding} {note}")
            want = to_nhwc(F.grid_sample(timg, tgrid, mode=mode, padding_mode=padding, align_corners=align_corners))
            got = stntool.warp(img, theta, out_hw, mode, padding, align_corners, backend=backend)
            assert_close(got, want, atol, f"warp {mode}/{padding} {note}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_live_layouts(mode, backend):
    """(H, W) and (H, W, C) images with (Ho, Wo, 2) grids; one image or one θ for a whole batch."""
    dtype, in_hw, out_hw, align_corners = "float32", (6, 7), (5, 9), False
    rng = _rng("layouts", mode)
    note = _seed_note("layouts", mode)
    img_hwc = draw_image(rng, 1, in_hw, 3, dtype)[0]
    grid_hw2 = draw_grid(rng, 1, in_hw, out_hw, align_corners, dtype)[0]
    for padding in PADDINGS:
        atol = forward_atol(dtype, mode, backend)

        def ref(img_nhwc, grid_n):
            out = F.grid_sample(to_nchw(img_nhwc), torch.from_numpy(grid_n), mode=mode, padding_mode=padding,
                                align_corners=align_corners)
            return to_nhwc(out)

        want = ref(img_hwc[None], grid_hw2[None])
        got = stntool.grid_sample(img_hwc, grid_hw2, mode, padding, align_corners, backend=backend)
        assert got.shape == out_hw + (3,)
        assert_close(got, want[0], atol, f"HWC grid_sample {padding} {note}")
        got = stntool.grid_sample(img_hwc[..., 1], grid_hw2, mode, padding, align_corners, backend=backend)
        assert got.shape == out_hw
        assert_close(got, want[0, ..., 1], atol, f"HW grid_sample {padding} {note}")
        # one image, a batch of grids: torch needs the image repeated
        grids = draw_grid(rng, 2, in_hw, out_hw, align_corners, dtype)
        want = ref(np.repeat(img_hwc[None], 2, axis=0), grids)
        got = stntool.grid_sample(img_hwc, grids, mode, padding, align_corners, backend=backend)
        assert got.shape == (2,) + out_hw + (3,)
        assert_close(got, want, atol, f"one image, batched grid {padding} {note}")
        # one θ for a batch of images
        imgs = draw_image(rng, 2, in_hw, 3, dtype)
        theta, tgrid = draw_theta(rng, 1, 3, in_hw, out_hw, align_corners, dtype)
        want = to_nhwc(F.grid_sample(to_nchw(imgs), tgrid.expand(2, -1, -1, -1), mode=mode, padding_mode=padding,
                                     align_corners=align_corners))
        got = stntool.warp(imgs, theta[0], out_hw, mode, padding, align_corners, backend=backend)
        assert_close(got, want, atol, f"one theta, batched images {padding} {note}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_live_projective(align_corners, backend):
    """A (3, 3) θ: torch has no projective grid, so build (θ0·p, θ1·p) / θ2·p on torch's base grid."""
    in_hw, out_hw, c, n = (8, 7), (6, 9), 2, 2
    rng = _rng("projective", int(align_corners))
    note = _seed_note("projective", int(align_corners))
    img = draw_image(rng, n, in_hw, c, "float64")
    base = torch_affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], 1, c, out_hw, align_corners)[0]
    hom = torch.cat([base, torch.ones(out_hw + (1,), dtype=torch.float64)], -1)
    while True:
        theta = np.tile(np.eye(3), (n, 1, 1)) + rng.normal(scale=0.15, size=(n, 3, 3))
        proj = torch.einsum("hwk,nik->nhwi", hom, torch.from_numpy(theta))
        tgrid = proj[..., :2] / proj[..., 2:]
        if proj[..., 2].abs().min() > 0.2 and away_from_kinks(tgrid.numpy(), in_hw, align_corners):
            break
    assert_close(stntool.projective_grid(theta, out_hw, align_corners), tgrid.numpy(), 1e-12,
                 f"projective_grid {note}")
    for mode in MODES:
        for padding in PADDINGS:
            want = to_nhwc(F.grid_sample(to_nchw(img), tgrid, mode=mode, padding_mode=padding,
                                         align_corners=align_corners))
            got = stntool.warp(img, theta, out_hw, mode, padding, align_corners, backend=backend)
            assert_close(got, want, forward_atol("float64", mode, backend), f"projective warp {mode}/{padding} {note}")


# --------------------------------------------------------------------------- backward (autograd)

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_live_backward(dtype, align_corners, padding, backend):
    """grid_sample_backward and warp_backward against torch autograd of sum(out * grad_out)."""
    in_hw, out_hw, c, n = (7, 10), (5, 8), 2, 2
    key = ("backward", dtype, int(align_corners), padding)
    rng = _rng(*key)
    note = _seed_note(*key)
    tdtype = TORCH_DTYPES[dtype]
    img = draw_image(rng, n, in_hw, c, dtype)
    grad_out = rng.normal(size=(n,) + out_hw + (c,)).astype(dtype)
    tgo = to_nchw(grad_out)

    grid = draw_grid(rng, n, in_hw, out_hw, align_corners, dtype)
    timg = to_nchw(img, requires_grad=True)
    tgrid = torch.from_numpy(grid).requires_grad_(True)
    out = F.grid_sample(timg, tgrid, mode="bilinear", padding_mode=padding, align_corners=align_corners)
    (out * tgo).sum().backward()
    grad_img, grad_grid = stntool.grid_sample_backward(img, grid, grad_out, padding, align_corners, backend=backend)
    assert grad_img.dtype == np.float64 and grad_grid.dtype == np.float64
    assert_grad_close(grad_img, to_nhwc(timg.grad), dtype, f"grad_img {note}")
    assert_grad_close(grad_grid, tgrid.grad.numpy(), dtype, f"grad_grid {note}")

    # unbatched: (H, W, C) image with an (Ho, Wo, 2) grid
    gi1, gg1 = stntool.grid_sample_backward(img[0], grid[0], grad_out[0], padding, align_corners, backend=backend)
    assert gi1.shape == img[0].shape and gg1.shape == grid[0].shape
    assert_grad_close(gi1, to_nhwc(timg.grad)[0], dtype, f"unbatched grad_img {note}")
    assert_grad_close(gg1, tgrid.grad.numpy()[0], dtype, f"unbatched grad_grid {note}")

    theta, _ = draw_theta(rng, n, c, in_hw, out_hw, align_corners, dtype)
    timg = to_nchw(img, requires_grad=True)
    ttheta = torch.from_numpy(theta).requires_grad_(True)
    out = F.grid_sample(timg, torch_affine_grid(ttheta, n, c, out_hw, align_corners), mode="bilinear",
                        padding_mode=padding, align_corners=align_corners)
    (out * tgo).sum().backward()
    grad_img, grad_theta = stntool.warp_backward(img, theta, grad_out, out_hw, padding, align_corners,
                                                 backend=backend)
    assert grad_theta.shape == theta.shape
    assert_grad_close(grad_img, to_nhwc(timg.grad), dtype, f"warp grad_img {note}")
    assert_grad_close(grad_theta, ttheta.grad.numpy(), dtype, f"warp grad_theta {note}")


# --------------------------------------------------------------------------- thin-plate splines

def _u(d2):
    """U(r) = r² log r², U(0) = 0, safe for autograd."""
    pos = d2 > 0
    return torch.where(pos, d2 * torch.log(torch.where(pos, d2, torch.ones_like(d2))), torch.zeros_like(d2))


def torch_tps_grid(src, dst, out_hw, align_corners, regularization=0.0):
    """STN-style TPS grid in torch: centres ``dst`` (output frame), values ``src`` (input frame), float64.

    ``src`` is ``(N, n, 2)`` and may require grad; Bookstein's system is solved with torch.linalg.
    """
    n = dst.shape[0]
    d2 = ((dst[:, None, :] - dst[None, :, :]) ** 2).sum(-1)
    p = torch.cat([torch.ones(n, 1, dtype=dst.dtype), dst], 1)
    system = torch.zeros(n + 3, n + 3, dtype=dst.dtype)
    system[:n, :n] = _u(d2) + regularization * torch.eye(n, dtype=dst.dtype)
    system[:n, n:] = p
    system[n:, :n] = p.T
    rhs = torch.cat([src, torch.zeros(src.shape[0], 3, 2, dtype=src.dtype)], 1)
    coef = torch.linalg.solve(system, rhs)  # (N, n + 3, 2)
    base = torch_affine_grid(torch.eye(2, 3, dtype=dst.dtype)[None], 1, 1, out_hw, align_corners)[0].reshape(-1, 2)
    feats = torch.cat([_u(((base[:, None, :] - dst[None]) ** 2).sum(-1)), torch.ones(len(base), 1, dtype=dst.dtype),
                       base], 1)
    return (feats @ coef).reshape((src.shape[0],) + tuple(out_hw) + (2,))


def regular_dst(k):
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, k, dtype=torch.float64),
                            torch.linspace(-1, 1, k, dtype=torch.float64), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("points", ["regular", "scattered", "regularized"])
def test_live_tps(points, align_corners, padding, backend):
    """tps_grid and tps_grid_backward (through grid_sample_backward) against torch autograd."""
    in_hw, out_hw, c, n = (9, 8), (7, 10), 2, 2
    key = ("tps", points, int(align_corners), padding)
    rng = _rng(*key)
    note = _seed_note(*key)
    lam = 0.05 if points == "regularized" else 0.0
    if points == "scattered":
        dst = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(7, 2)))
    else:
        dst = regular_dst(3)
    img = draw_image(rng, n, in_hw, c, "float64")
    grad_out = rng.normal(size=(n,) + out_hw + (c,))
    while True:
        src = dst.numpy()[None] + rng.normal(scale=0.15, size=(n,) + tuple(dst.shape))
        with torch.no_grad():
            tgrid = torch_tps_grid(torch.from_numpy(src), dst, out_hw, align_corners, lam)
        if away_from_kinks(tgrid.numpy(), in_hw, align_corners):
            break

    grid = stntool.tps_grid(src, out_hw, dst.numpy(), align_corners, lam)
    assert grid.shape == (n,) + out_hw + (2,)
    assert_close(grid, tgrid.numpy(), 1e-12, f"tps_grid {note}")
    if points == "regular":  # default control points: the regular 3 x 3 grid, row-major
        assert_close(stntool.tps_grid(src[0], out_hw, None, align_corners), tgrid.numpy()[0], 1e-12,
                     f"tps_grid default dst {note}")

    tsrc = torch.from_numpy(src).requires_grad_(True)
    timg = to_nchw(img, requires_grad=True)
    out = F.grid_sample(timg, torch_tps_grid(tsrc, dst, out_hw, align_corners, lam), mode="bilinear",
                        padding_mode=padding, align_corners=align_corners)
    (out * to_nchw(grad_out)).sum().backward()
    grad_img, grad_grid = stntool.grid_sample_backward(img, grid, grad_out, padding, align_corners, backend=backend)
    grad_src = stntool.tps_grid_backward(grad_grid, dst.numpy(), out_hw, align_corners, lam)
    assert grad_src.shape == src.shape
    # float64 throughout; the small, well-conditioned TPS systems here agree to ~1e-15
    assert_grad_close(grad_img, to_nhwc(timg.grad), "float64", f"tps grad_img {note}")
    assert_grad_close(grad_src, tsrc.grad.numpy(), "float64", f"tps grad_src {note}")
    single = stntool.tps_grid_backward(grad_grid[0], dst.numpy(), out_hw, align_corners, lam)
    assert_close(single, grad_src[0], 1e-12, f"unbatched tps_grid_backward {note}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_live_warp_tps_exact(mode, backend):
    """warp_tps with tol=0 (spline evaluated at every pixel) equals torch's TPS grid + grid_sample."""
    in_hw, out_hw, c, align_corners = (9, 8), (7, 10), 3, False
    rng = _rng("warp_tps", mode)
    note = _seed_note("warp_tps", mode)
    dst = regular_dst(3)
    img = draw_image(rng, 1, in_hw, c, "float64")
    while True:
        src = dst.numpy() + rng.normal(scale=0.15, size=tuple(dst.shape))
        tgrid = torch_tps_grid(torch.from_numpy(src)[None], dst, out_hw, align_corners)
        if away_from_kinks(tgrid.numpy(), in_hw, align_corners):
            break
    for padding in PADDINGS:
        want = to_nhwc(F.grid_sample(to_nchw(img), tgrid, mode=mode, padding_mode=padding,
                                     align_corners=align_corners))
        got = stntool.warp_tps(img, src, dst.numpy(), out_hw, mode, padding, align_corners, normalized=True, tol=0,
                               backend=backend)
        assert_close(got, want, forward_atol("float64", mode, backend), f"warp_tps {mode}/{padding} {note}")
