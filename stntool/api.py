"""The public Python API shared by users and the command line.

All functions take images ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` in their own dtype
(uint8, uint16, float32, float64) and return the same layout and dtype. θ follows
:mod:`stntool.coords`: ``in_norm_from_out_norm``, exactly as PyTorch's ``affine_grid``.
PyTorch's NCHW tensors correspond to ``img.transpose(0, 2, 3, 1)``.
"""

from __future__ import annotations

import functools

import numpy as np

from .coords import as_hw, norm_from_pixel, pixel_from_norm
from .errors import InvalidArgumentError
from .grids import affine_grid, make_tps, out_norm_points, projective_grid, tps_grid  # noqa: F401
from .sampling import ImageBatch, kernels, resolve_backend, sample_options
from .transforms import as_theta, pixel_map_from_theta, theta_from_cv2, theta_to_cv2, to_3x3  # noqa: F401

__all__ = [
    "grid_sample",
    "warp",
    "warp_tps",
    "tps_plan",
    "TpsPlan",
    "grid_sample_backward",
    "affine_grid_backward",
    "warp_backward",
    "tps_grid_backward",
]


def _out_hw(out_hw, default):
    return default if out_hw is None else as_hw(out_hw)


def _batch_count(images: ImageBatch, k: int, what: str) -> int:
    if k not in (1, images.n) and images.n != 1:
        raise InvalidArgumentError(f"{what} has batch size {k} but the image batch has {images.n}")
    return max(k, images.n)


def _expand_images(images: ImageBatch, n: int) -> np.ndarray:
    data = images.data
    if images.on_device:
        if images.n != n:
            raise InvalidArgumentError(f"a device image batch of {images.n} needs {images.n} θ (or one), got {n}")
        return data
    if images.n == 1 and n > 1:
        data = np.ascontiguousarray(np.broadcast_to(data, (n,) + data.shape[1:]))
    return data


def grid_sample(img, grid, mode: str = "bilinear", padding: str = "zeros", align_corners: bool = False,
                fill=None, backend: str = "auto"):
    """Sample ``img`` at a grid of input normalized coordinates, like ``torch.nn.functional.grid_sample``.

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array, uint8 / uint16 / float32 / float64
    grid : (Ho, Wo, 2) or (N, Ho, Wo, 2) array
        Input normalized ``(x, y)`` for every output pixel (see :mod:`stntool.coords`).
    mode : {"nearest", "bilinear", "bicubic"}
    padding : {"zeros", "border", "reflection", "constant"}
        ``constant`` pads with ``fill`` (a scalar or one value per channel).
    align_corners : bool
    backend : {"auto", "numpy", "cpu", "cuda"}

    Returns the sampled image in ``img``'s dtype: ``(Ho, Wo[, C])``, or ``(N, Ho, Wo, C)`` when
    ``img`` or ``grid`` is batched. Integer results are rounded to nearest and saturated.

    Example
    -------
    >>> import numpy as np, stntool
    >>> img = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> g = stntool.affine_grid([[1, 0, 0], [0, 1, 0]], (3, 4))
    >>> bool(np.array_equal(stntool.grid_sample(img, g), img))
    True
    """
    images = ImageBatch(img)
    g = np.asarray(grid)
    if g.ndim not in (3, 4) or g.shape[-1] != 2:
        raise InvalidArgumentError(f"grid must be (Ho, Wo, 2) or (N, Ho, Wo, 2); got {g.shape}")
    if g.dtype.kind != "f":
        g = g.astype(np.float64)
    gb = g if g.ndim == 4 else g[None]
    n = _batch_count(images, gb.shape[0], "grid")
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    out = images.empty_out(n, gb.shape[1:3])
    data = _expand_images(images, n)
    gb = np.ascontiguousarray(gb)
    if name == "numpy":
        kernels(name).grid_sample(data, np.broadcast_to(gb, (n,) + gb.shape[1:]), mode, padding, bool(align_corners),
                                  fill_c if padding == "constant" else None, out=out)
    else:
        kernels(name).sample_grid(data, gb, out, mode_id, pad_id, bool(align_corners), fill_c, images.is_int,
                                  images.maxv)
    return images.restore(out, g.ndim == 4)


def warp(img, theta, out_hw=None, mode: str = "bilinear", padding: str = "zeros", align_corners: bool = False,
         fill=None, backend: str = "auto"):
    """Warp ``img`` by θ: ``grid_sample(img, affine_grid(theta, out_hw))`` fused in one pass.

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array
    theta : (2, 3) affine or (3, 3) projective θ, or batched (N, 2, 3) / (N, 3, 3)
        ``in_norm_from_out_norm``, PyTorch's convention. One θ for a batch applies to every image.
    out_hw : (H, W), optional
        Output size; defaults to the input size.
    mode, padding, align_corners, fill, backend
        As in :func:`grid_sample`.

    Example
    -------
    >>> import numpy as np, stntool
    >>> img = np.arange(20, dtype=np.uint8).reshape(4, 5)
    >>> flipped = stntool.warp(img, [[-1, 0, 0], [0, 1, 0]])      # x -> -x mirrors left-right
    >>> bool(np.array_equal(flipped, img[:, ::-1]))
    True
    """
    images = ImageBatch(img)
    t = as_theta(theta)
    out_hw = _out_hw(out_hw, images.hw)
    tb = t if t.ndim == 3 else t[None]
    n = _batch_count(images, tb.shape[0], "theta")
    maps = np.ascontiguousarray(pixel_map_from_theta(tb, images.hw, out_hw, align_corners))
    projective = tb.shape[-2] == 3 and not np.allclose(tb[:, 2, :2], 0.0, rtol=0, atol=0)
    if tb.shape[-2] == 3 and not projective:
        maps = maps / maps[:, 2:3, 2:3]
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    out = images.empty_out(n, out_hw)
    data = _expand_images(images, n)
    k = kernels(name)
    if name == "numpy":
        k.warp_matrix(data, maps, out, mode, padding, bool(align_corners), fill_c if padding == "constant" else None)
    else:
        k.warp_matrix(data, maps, out, mode_id, pad_id, bool(align_corners), fill_c, images.is_int, images.maxv,
                      bool(projective))
    return images.restore(out, t.ndim == 3)


# --------------------------------------------------------------------------- thin-plate splines

def _tps_normalized_points(points, hw, normalized, align_corners):
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise InvalidArgumentError(f"TPS points must be (n, 2) arrays of (x, y); got {p.shape}")
    if normalized:
        return p
    m = norm_from_pixel(hw, align_corners)
    return p * [m[0, 0], m[1, 1]] + [m[0, 2], m[1, 2]]


class TpsPlan:
    """What the fused TPS kernels read: a Catmull-Rom lattice of the exact map plus exact radial terms.

    Attributes
    ----------
    lattice : (Hc + 2, Wc + 2, 2) float64
        Input pixel coordinates read by output pixels ``((b - 1) step, (a - 1) step)`` (an apron node
        on every side so every cell has its 4 x 4 Catmull-Rom support).
    step : int
        Lattice spacing in output pixels (1: the exact map at every pixel).
    singular : (K, 4) float64
        Per control point: output pixel position and radial weight in input pixels.
    tables : (Hc + 2, Wc + 2, K) float64
        Each control point's radial term at the lattice nodes.
    radius : float
        Chebyshev distance (output pixels) within which a control point's radial term is evaluated
        exactly instead of interpolated (negative: never).
    norm_scale : (2,) float64
        Output pixel -> normalized scale, for the exact radial terms.
    max_error : float
        Largest deviation from the exact spline found at the probe points (cell centres), in pixels.
    """

    def __init__(self, lattice, step, singular, tables, radius, norm_scale, max_error):
        self.lattice = lattice
        self.step = int(step)
        self.singular = singular
        self.tables = tables
        self.radius = float(radius)
        self.norm_scale = norm_scale
        self.max_error = float(max_error)

    def points(self, js, is_):
        """Input pixel coordinates for output pixels ``(js, is_)`` (integer arrays), as the kernels compute them."""
        from .sampling import _reference

        return _reference.tps_lattice_points(self.lattice, self.step, self.singular, self.tables, self.radius,
                                             self.norm_scale, js, is_)

    def dense(self, out_hw):
        """The whole ``(H, W, 2)`` map of input pixel coordinates."""
        ii, jj = np.meshgrid(np.arange(out_hw[0]), np.arange(out_hw[1]), indexing="ij")
        return self.points(jj, ii)


def _eval_tps_terms(tps, out_pix_xy, m_out, backend):
    """Spline at output pixel points: ``(values (P, 2) normalized input, radial terms (P, n))``."""
    pts = np.ascontiguousarray(out_pix_xy * [m_out[0, 0], m_out[1, 1]] + [m_out[0, 2], m_out[1, 2]])
    if backend == "numpy":
        from .tps import tps_kernel

        return tps(pts), np.ascontiguousarray(tps_kernel(pts, tps.centres))
    from .sampling import _cpu

    vals = np.empty((len(pts), 2))
    terms = np.empty((len(pts), len(tps.centres)))
    _cpu.tps_eval_terms(pts, tps.centres, np.ascontiguousarray(tps.weights), np.ascontiguousarray(tps.affine),
                        vals, terms)
    return vals, terms


def _ring_probes(centres_pix, radius, step, out_hw):
    """Output pixels on the square ring at Chebyshev distance ``radius + 1`` around every control point,
    just outside its exact window, where the uncorrected radial term's error peaks (every ``step / 4`` px)."""
    ho, wo = out_hw
    dist = np.floor(radius) + 1
    stride = max(1, step // 4)
    t = np.arange(0, int(2 * dist) + 1, stride)
    lo = np.floor(centres_pix - dist).astype(np.int64)  # (K, 2)
    hi = lo + int(2 * dist)
    xs = lo[:, None, 0] + t
    ys = lo[:, None, 1] + t
    pts = [np.stack([xs, np.broadcast_to(lo[:, None, 1], xs.shape)], -1),
           np.stack([xs, np.broadcast_to(hi[:, None, 1], xs.shape)], -1),
           np.stack([np.broadcast_to(lo[:, None, 0], ys.shape), ys], -1),
           np.stack([np.broadcast_to(hi[:, None, 0], ys.shape), ys], -1)]
    p = np.concatenate([q.reshape(-1, 2) for q in pts])
    keep = (p[:, 0] >= 0) & (p[:, 0] < wo) & (p[:, 1] >= 0) & (p[:, 1] < ho)
    return p[keep]


def _build_tps_plan(tps, in_hw, out_hw, align_corners, tol, backend) -> TpsPlan:
    """Coarsest power-of-two lattice whose upsampling is within ``tol / 2`` px of the spline at every cell centre.

    Bilinear or cubic upsampling alone cannot follow ``r² log r²`` near a control point (its second
    derivative is logarithmically singular there), so within two lattice steps of each control
    point the radial term is evaluated exactly; what remains is smooth and Catmull-Rom upsampling
    of it converges fast. ``tol=0`` evaluates the spline at every pixel.
    """
    ho, wo = out_hw
    m_out = norm_from_pixel(out_hw, align_corners)
    m_in = pixel_from_norm(in_hw, align_corners)
    in_scale = np.array([m_in[0, 0], m_in[1, 1]])
    in_off = np.array([m_in[0, 2], m_in[1, 2]])
    norm_scale = np.array([m_out[0, 0], m_out[1, 1]])
    degenerate = norm_scale[0] == 0.0 or norm_scale[1] == 0.0  # a one-pixel axis with align_corners=True
    step = 1 if (tol <= 0 or degenerate) else max(2, min(32, 1 << int(np.log2(max(2, max(ho, wo) // 64)))))
    k = len(tps.centres)
    if not degenerate:
        m_out_inv = pixel_from_norm(out_hw, align_corners)
        centres_pix = tps.centres * [m_out_inv[0, 0], m_out_inv[1, 1]] + [m_out_inv[0, 2], m_out_inv[1, 2]]
    else:
        centres_pix = np.zeros((k, 2))
    singular = np.ascontiguousarray(np.hstack([centres_pix, tps.weights * in_scale]))
    while True:
        hc = max(2, -(-(ho - 1) // step) + 1)
        wc = max(2, -(-(wo - 1) // step) + 1)
        ys, xs = np.meshgrid(np.arange(-1, hc + 1) * float(step), np.arange(-1, wc + 1) * float(step), indexing="ij")
        vals, terms = _eval_tps_terms(tps, np.stack([xs.ravel(), ys.ravel()], -1), m_out, backend)
        lattice = np.ascontiguousarray((vals * in_scale + in_off).reshape(hc + 2, wc + 2, 2))
        tables = np.ascontiguousarray(terms.reshape(hc + 2, wc + 2, k))
        if step == 1:
            return TpsPlan(lattice, 1, singular, tables, -1.0, norm_scale, 0.0)
        radius = 2.0 * step
        plan = TpsPlan(lattice, step, singular, tables, radius, norm_scale, 0.0)
        # probes: cell centres, where the smooth part's interpolation error peaks, and square rings just
        # outside each control point's exact window, where the uncorrected radial term's error peaks
        pi = np.minimum(np.arange(hc - 1) * step + step // 2, ho - 1)
        pj = np.minimum(np.arange(wc - 1) * step + step // 2, wo - 1)
        pii, pjj = np.meshgrid(pi, pj, indexing="ij")
        probes = [np.stack([pjj.ravel(), pii.ravel()], -1), _ring_probes(centres_pix, radius, step, out_hw)]
        probe = np.ascontiguousarray(np.concatenate(probes).astype(np.int64))
        if backend == "numpy":
            approx = plan.points(probe[:, 0], probe[:, 1])
        else:
            from .sampling import _cpu

            approx = np.empty((len(probe), 2))
            _cpu.tps_lattice_points(lattice, step, singular, tables, radius, float(norm_scale[0]),
                                    float(norm_scale[1]), np.ascontiguousarray(probe[:, 0]),
                                    np.ascontiguousarray(probe[:, 1]), approx)
        exact, _ = _eval_tps_terms(tps, probe.astype(np.float64), m_out, backend)
        err = float(np.abs(approx - (exact * in_scale + in_off)).max())
        if err <= tol / 2.0:
            plan.max_error = err
            return plan
        step //= 2


@functools.lru_cache(maxsize=32)
def _tps_plan_cached(src_key, dst_key, n, in_hw, out_hw, align_corners, regularization, tol, backend):
    src = np.frombuffer(src_key).reshape(n, 2)
    dst = np.frombuffer(dst_key).reshape(n, 2)
    return _build_tps_plan(make_tps(src, dst, regularization), in_hw, out_hw, align_corners, tol, backend)


def tps_plan(src_points, dst_points, in_hw, out_hw=None, align_corners: bool = False, regularization: float = 0.0,
             normalized: bool = False, tol: float = 0.01, backend: str = "cpu") -> TpsPlan:
    """Plan a fused TPS warp: see :class:`TpsPlan`. Plans are cached, so warping many images with the same
    points builds the plan once."""
    in_hw = as_hw(in_hw)
    out_hw = _out_hw(out_hw, in_hw)
    src = np.ascontiguousarray(_tps_normalized_points(src_points, in_hw, normalized, align_corners))
    dst = np.ascontiguousarray(_tps_normalized_points(dst_points, out_hw, normalized, align_corners))
    if src.shape != dst.shape:
        raise InvalidArgumentError(f"src_points and dst_points must have the same shape; got {src.shape} and {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InvalidArgumentError("TPS points contain NaN or infinity")
    if not (tol >= 0):
        raise InvalidArgumentError(f"tol must be >= 0, got {tol!r}")
    be = "numpy" if backend == "numpy" else "cpu"
    return _tps_plan_cached(src.tobytes(), dst.tobytes(), len(src), in_hw, out_hw, bool(align_corners),
                            float(regularization), float(tol), be)


def warp_tps(img, src_points, dst_points, out_hw=None, mode: str = "bilinear", padding: str = "zeros",
             align_corners: bool = False, fill=None, normalized: bool = False, regularization: float = 0.0,
             tol: float = 0.01, backend: str = "auto"):
    """Thin-plate-spline warp moving input points ``src_points`` to output points ``dst_points``.

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array
    src_points : (n, 2) array
        ``(x, y)`` in the input image: pixels, or normalized when ``normalized=True``.
    dst_points : (n, 2) array
        Where those points land in the output, same units (output frame).
    out_hw : (H, W), optional
        Output size, default the input size.
    regularization : float
        Bookstein's λ (0 interpolates exactly).
    tol : float
        Largest allowed error in pixels of the sampling coordinates against the exact spline.
        The spline is solved in float64 in the normalized frame (as in the STN paper); the kernel
        reads a lattice of it (see :func:`tps_plan`); ``tol=0`` evaluates it at every pixel.

    Example
    -------
    >>> import numpy as np, stntool
    >>> img = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    >>> pts = [[0, 0], [31, 0], [0, 31], [31, 31], [16, 16]]
    >>> bool(np.allclose(stntool.warp_tps(img, pts, pts), img, atol=1e-5))   # identity
    True
    """
    images = ImageBatch(img)
    out_hw = _out_hw(out_hw, images.hw)
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    plan = tps_plan(src_points, dst_points, images.hw, out_hw, align_corners, regularization, normalized, tol,
                    backend=name)
    out = images.empty_out(images.n, out_hw)
    k = kernels(name)
    if name == "numpy":
        k.warp_tps_lattice(images.data, plan.lattice, plan.step, plan.singular, plan.tables, plan.radius,
                           plan.norm_scale, out, mode, padding, bool(align_corners),
                           fill_c if padding == "constant" else None)
    else:
        k.warp_tps_lattice(images.data, plan.lattice, plan.step, plan.singular, plan.tables, plan.radius,
                           float(plan.norm_scale[0]), float(plan.norm_scale[1]), out, mode_id, pad_id,
                           bool(align_corners), fill_c, images.is_int, images.maxv)
    return images.restore(out, False)


# --------------------------------------------------------------------------- backward

def grid_sample_backward(img, grid, grad_out, padding: str = "zeros", align_corners: bool = False,
                         backend: str = "auto"):
    """Gradients of bilinear :func:`grid_sample` (STN paper, eqs. 6-7).

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array
    grid : (Ho, Wo, 2) or (N, Ho, Wo, 2) array
    grad_out : array shaped like the output of ``grid_sample(img, grid)``
        Gradient of the loss with respect to that output.

    Returns ``(grad_img, grad_grid)`` in float64, shaped like ``img`` and ``grid``. The CPU result is
    deterministic: every task accumulates into its own buffer and buffers are summed in order.
    """
    images = ImageBatch(img)
    if images.on_device:
        raise InvalidArgumentError("grid_sample_backward takes host (NumPy) arrays; copy device arrays to the host")
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim not in (3, 4) or g.shape[-1] != 2:
        raise InvalidArgumentError(f"grid must be (Ho, Wo, 2) or (N, Ho, Wo, 2); got {g.shape}")
    gb = np.ascontiguousarray(g if g.ndim == 4 else g[None])
    n = _batch_count(images, gb.shape[0], "grid")
    gb = np.ascontiguousarray(np.broadcast_to(gb, (n,) + gb.shape[1:]))
    go = np.asarray(grad_out, dtype=np.float64)
    expect = (n,) + gb.shape[1:3] + (images.c,)
    if go.size != int(np.prod(expect)):
        raise InvalidArgumentError(f"grad_out must match the sampled output, {expect}; got {go.shape}")
    go = np.ascontiguousarray(go.reshape(expect))
    _, pad_id, _ = sample_options("bilinear", padding, None, images.c)
    name = resolve_backend(backend)
    data = _expand_images(images, n).astype(np.float64)
    if name == "numpy":
        gi, gg = kernels(name).grid_sample_backward(data, gb, go, padding, bool(align_corners))
    elif name == "cpu":
        from .sampling import _cpu

        chunks = 1 if n >= 4 else 4
        parts = np.zeros((n, chunks, images.h, images.w, images.c))
        gg = np.empty(gb.shape)
        _cpu.grid_sample_backward(data, gb, go, pad_id, bool(align_corners), chunks, parts, gg)
        gi = np.zeros((n, images.h, images.w, images.c))
        _cpu.sum_parts(parts, gi)
    else:
        gi, gg = kernels(name).grid_sample_backward_host(data, gb, go, pad_id, bool(align_corners))
    if images.n == 1 and n > 1:
        gi = gi.sum(axis=0, keepdims=True)
    grad_img = gi.reshape((images.n,) + gi.shape[1:])
    if images.ndim == 2:
        grad_img = grad_img[0, :, :, 0]
    elif images.ndim == 3:
        grad_img = grad_img[0]
    return grad_img, (gg if g.ndim == 4 else gg[0])


def affine_grid_backward(grad_grid, out_hw=None, align_corners: bool = False):
    """Chain a grid gradient ``(N, H, W, 2)`` or ``(H, W, 2)`` to affine θ: ``dL/dθ`` of shape ``(N, 2, 3)`` / ``(2, 3)``."""
    g = np.asarray(grad_grid, dtype=np.float64)
    out_hw = as_hw(g.shape[-3:-1] if out_hw is None else out_hw)
    base = out_norm_points(out_hw, align_corners)
    hom = np.concatenate([base, np.ones(base.shape[:-1] + (1,))], axis=-1)
    return np.einsum("...hwi,hwk->...ik", g, hom)


def warp_backward(img, theta, grad_out, out_hw=None, padding: str = "zeros", align_corners: bool = False,
                  backend: str = "auto"):
    """Gradients of bilinear :func:`warp` with affine θ: ``(grad_img, grad_theta)`` in float64."""
    images = ImageBatch(img)
    t = as_theta(theta)
    if t.shape[-2:] != (2, 3):
        raise InvalidArgumentError("warp_backward takes affine θ, (2, 3) or (N, 2, 3)")
    out_hw = _out_hw(out_hw, images.hw)
    grid = affine_grid(t, out_hw, align_corners)
    grad_img, grad_grid = grid_sample_backward(img, grid, grad_out, padding, align_corners, backend)
    return grad_img, affine_grid_backward(grad_grid, out_hw, align_corners)


def tps_grid_backward(grad_grid, dst_points, out_hw=None, align_corners: bool = False, regularization: float = 0.0):
    """Chain a grid gradient to the input-frame control points of :func:`tps_grid`.

    The grid is linear in ``src_points`` (``grid = B @ src``), so ``dL/dsrc = Bᵀ dL/dgrid`` with ``B``
    depending only on ``dst_points`` (normalized, output frame). Returns ``(n, 2)`` or ``(N, n, 2)``.
    """
    g = np.asarray(grad_grid, dtype=np.float64)
    out_hw = as_hw(g.shape[-3:-1] if out_hw is None else out_hw)
    dst = np.asarray(dst_points, dtype=np.float64)
    tps = make_tps(dst, dst, regularization)
    basis = tps.basis(out_norm_points(out_hw, align_corners).reshape(-1, 2))
    flat = g.reshape(g.shape[:-3] + (-1, 2))
    return np.einsum("pn,...pk->...nk", basis, flat)
