"""The public Python API shared by users and the command line.

All functions take images ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` in their own dtype
(uint8, uint16, float32, float64) and return the same layout and dtype. Arrays are converted at
the boundary, the same way for every backend (:class:`stntool.sampling.ImageBatch`): any byte order,
non-contiguous and read-only arrays; float16 images are sampled in float32 and longdouble images in
float64, each returned in its own dtype; grids, θ and points of any real dtype are read as float64.
bool, complex, object and string arrays raise :class:`InvalidArgumentError`. θ follows
:mod:`stntool.coords`: ``in_norm_from_out_norm``, exactly as PyTorch's ``affine_grid``.
PyTorch's NCHW tensors correspond to ``img.transpose(0, 2, 3, 1)``.
"""

from __future__ import annotations

import numpy as np

from .coords import as_flag, as_hw, base_coords
from .errors import InvalidArgumentError
from .grids import affine_grid, make_tps, out_norm_points, projective_grid, theta_grid, tps_grid  # noqa: F401
from .sampling import ImageBatch, as_host_grid, check_real, kernels, resolve_backend, sample_options
from .tps_lattice import TpsPlan, tps_plan
from .transforms import (LAST_ROW, as_theta, pixel_map, pixel_map_from_theta, theta_from_cv2,  # noqa: F401
                         theta_to_cv2, to_3x3)

__all__ = [
    "grid_sample",
    "warp",
    "warp_tps",
    "warp_plan",
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
    if k < 1:
        raise InvalidArgumentError(f"the {what} batch is empty (shape with N = 0)")
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


#: Output pixel centres whose homogeneous coordinate is within this fraction of its scale of 0 are "on the horizon".
_HORIZON_RTOL = 1e-12


def _horizon_on_pixels(tb: np.ndarray, out_hw, align_corners: bool) -> bool:
    """True when the horizon (w = 0) of some projective θ in ``tb (N, 3, 3)`` passes within rounding of an
    output pixel centre.

    There the fused pixel matrix and the normalized grid may round ``w`` differently (one exactly 0, the
    other about 1e-16, or opposite signs), and so read different pixels. Checks the two pixels nearest
    the horizon in every row (or column): O(H + W).
    """
    rows = [(a, b, c) for a, b, c in tb[:, 2, :].tolist() if not (a == 0.0 and b == 0.0)]  # else w = c everywhere
    # every pixel centre lies in [-1, 1]², where w (linear) lies between its values at the corners: a horizon
    # that stays clear of the square by twice the tolerance (rounding is some 1e-16 of the scale) is no risk
    rows = [(a, b, c) for a, b, c in rows
            if not abs(c) - abs(a) - abs(b) > 2 * _HORIZON_RTOL * (abs(a) + abs(b) + abs(c))]
    if not rows:
        return False
    xs = base_coords(out_hw[1], align_corners)
    ys = base_coords(out_hw[0], align_corners)
    for a, b, c in rows:
        scale = abs(a) + abs(b) + abs(c)  # |xs|, |ys| <= 1
        along, across, p, q = (xs, ys, a, b) if abs(a) >= abs(b) else (ys, xs, b, a)
        cross = -(q * across + c) / p  # where each line of the other axis meets the horizon
        hi = np.clip(np.searchsorted(along, cross), 0, len(along) - 1)
        lo = np.clip(hi - 1, 0, len(along) - 1)
        for idx in (lo, hi):
            w = p * along[idx] + q * across + c
            if np.any(np.abs(w) <= _HORIZON_RTOL * scale):
                return True
    return False


def grid_sample(img, grid, mode: str = "bilinear", padding: str = "zeros", align_corners: bool = False,
                fill=None, backend: str = "auto"):
    """Sample ``img`` at a grid of input normalized coordinates, like ``torch.nn.functional.grid_sample``.

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array, uint8 / uint16 / float32 / float64
        (float16 and longdouble too, see the module docstring)
    grid : (Ho, Wo, 2) or (N, Ho, Wo, 2) array, any real dtype (read as float64)
        Input normalized ``(x, y)`` for every output pixel (see :mod:`stntool.coords`).
    mode : {"nearest", "bilinear", "bicubic"}
    padding : {"zeros", "border", "reflection", "constant"}
        ``constant`` pads with ``fill`` (a scalar or one value per channel).
    align_corners : bool
    backend : {"auto", "numpy", "cpu", "cuda"}

    Returns the sampled image in ``img``'s dtype: ``(Ho, Wo[, C])``, or ``(N, Ho, Wo[, C])`` when
    ``img`` or ``grid`` is batched (``[, C]``: as ``img`` has a channel axis or not). Integer results are
    rounded to nearest and saturated.

    Example
    -------
    >>> import numpy as np, stntool
    >>> img = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> g = stntool.affine_grid([[1, 0, 0], [0, 1, 0]], (3, 4))
    >>> bool(np.array_equal(stntool.grid_sample(img, g), img))
    True
    """
    images = ImageBatch(img)
    g = as_host_grid(grid)
    gb = g if g.ndim == 4 else g[None]
    n = _batch_count(images, gb.shape[0], "grid")
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    out = images.empty_out(n, gb.shape[1:3])
    data = _expand_images(images, n)
    gb = np.ascontiguousarray(gb)
    kernels(name).sample_grid(data, gb, out, mode_id, pad_id, as_flag(align_corners), fill_c, images.is_int,
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

    Output pixels on the horizon of a projective θ (homogeneous coordinate 0) read the fill value,
    exactly as ``grid_sample(img, projective_grid(theta, out_hw))`` (θ as float64): when the horizon
    passes within rounding of a pixel centre, the warp samples that grid instead of the fused pixel
    matrix, whose rounding could put such a pixel on either side.

    Example
    -------
    >>> import numpy as np, stntool
    >>> img = np.arange(20, dtype=np.uint8).reshape(4, 5)
    >>> flipped = stntool.warp(img, [[-1, 0, 0], [0, 1, 0]])      # x -> -x mirrors left-right
    >>> bool(np.array_equal(flipped, img[:, ::-1]))
    True
    """
    images = ImageBatch(img)
    t = as_theta(check_real(theta, "theta"))
    out_hw = _out_hw(out_hw, images.hw)
    tb = t if t.ndim == 3 else t[None]
    n = _batch_count(images, tb.shape[0], "theta")
    if t.ndim == 2:  # one θ: 3x3 products, a third of the time of a stack's (the same bits)
        maps = pixel_map(t if t.shape[0] == 3 else np.concatenate((t, LAST_ROW)), images.hw, out_hw,
                         align_corners)[None]
    else:
        maps = pixel_map(to_3x3(tb), images.hw, out_hw, align_corners)
    projective = tb.shape[-2] == 3 and bool(np.any(tb[:, 2, :2] != 0.0))
    if tb.shape[-2] == 3 and not projective:
        with np.errstate(divide="ignore", invalid="ignore"):  # a bottom row of zeros: every pixel reads the fill
            maps = maps / maps[:, 2:3, 2:3]
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    out = images.empty_out(n, out_hw)
    data = _expand_images(images, n)
    if projective and _horizon_on_pixels(tb, out_hw, align_corners):
        # the grid's arithmetic decides which pixels lie on the horizon (and read the fill value)
        grid = np.ascontiguousarray(theta_grid(tb, out_hw, align_corners))
        kernels(name).sample_grid(data, grid, out, mode_id, pad_id, as_flag(align_corners), fill_c, images.is_int,
                                  images.maxv)
        return images.restore(out, t.ndim == 3)
    kernels(name).warp_matrix(data, maps, out, mode_id, pad_id, as_flag(align_corners), fill_c, images.is_int,
                              images.maxv, bool(projective))
    return images.restore(out, t.ndim == 3)


# --------------------------------------------------------------------------- thin-plate splines

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
    normalized : bool
        The frame the points are given in, and the frame the spline is solved in:

        * ``False`` (pixels, x right, y down, pixel centres at integers): the spline maps output
          pixels to input pixels, the thin-plate spline that scikit-image
          (``ThinPlateSplineTransform``), OpenCV (``ThinPlateSplineShapeTransformer``) and
          Albumentations compute from the same points; ``align_corners`` then only changes padding.
        * ``True`` (``[-1, 1]``, as θ): the spline maps output normalized to input normalized
          coordinates, the STN form of :func:`stntool.tps_grid`
          (``grid_sample(img, tps_grid(src, out_hw, dst))``).

        With ``regularization=0`` the two agree whenever the output is square (the output's
        pixel -> normalized map is then a uniform scale, which leaves a thin-plate spline unchanged) and
        differ otherwise.
    regularization : float
        Bookstein's λ (0 interpolates exactly), in the units of the frame above.
    tol : float
        Largest allowed error in pixels of the sampling coordinates against the exact spline.
        The spline is solved in float64; the kernel reads a lattice of it (see :func:`tps_plan`);
        ``tol=0`` evaluates it at every pixel.

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
    out = images.empty_out(images.n, out_hw)  # first: an output too large is refused before a plan is built for it
    plan = tps_plan(src_points, dst_points, images.hw, out_hw, align_corners, regularization, normalized, tol,
                    backend=name)
    kernels(name).warp_tps_lattice(images.data, *plan.kernel_args(), out, mode_id, pad_id, as_flag(align_corners),
                                   fill_c, images.is_int, images.maxv)
    return images.restore(out, False)


def warp_plan(img, plan: TpsPlan, out_hw, mode: str = "bilinear", padding: str = "zeros", align_corners: bool = False,
              fill=None, backend: str = "auto"):
    """Warp ``img`` by a lattice plan (:class:`TpsPlan`) built for an output of ``out_hw``.

    What :func:`warp_tps` does after planning, for plans made elsewhere: a thin-plate spline's
    (:func:`tps_plan`) or a smooth map's such as an elastic record's (:func:`stntool.maps.lattice_plan`).
    ``out_hw`` must be the size the plan was built for, and the image the input size of a plan whose
    coordinates depend on it (``plan.in_hw``: normalized points, elastic records).
    """
    if not isinstance(plan, TpsPlan):
        raise InvalidArgumentError(f"plan must be a TpsPlan (stntool.tps_plan, stntool.maps.lattice_plan), got "
                                   f"{type(plan).__name__}")
    images = ImageBatch(img)
    out_hw = as_hw(out_hw)
    hc, wc = plan.lattice.shape[0] - 2, plan.lattice.shape[1] - 2
    if (hc - 1) * plan.step < out_hw[0] - 1 or (wc - 1) * plan.step < out_hw[1] - 1:
        raise InvalidArgumentError(f"the plan's lattice does not cover an output of {out_hw[1]}x{out_hw[0]}")
    if (hc, wc) != tuple(max(2, -(-(n - 1) // plan.step) + 1) for n in out_hw):  # a smaller output: a crop of it
        raise InvalidArgumentError(f"the plan was built for a larger output than {out_hw[1]}x{out_hw[0]} (its lattice: "
                                   f"{wc}x{hc} nodes {plan.step} px apart)")
    if plan.in_hw is not None and images.hw != plan.in_hw:
        raise InvalidArgumentError(f"the plan was built for an input of {plan.in_hw[1]}x{plan.in_hw[0]}; this image is "
                                   f"{images.hw[1]}x{images.hw[0]} (its normalized coordinates are another size's)")
    mode_id, pad_id, fill_c = sample_options(mode, padding, fill, images.c)
    name = resolve_backend(backend)
    images.require_backend(name)
    out = images.empty_out(images.n, out_hw)
    kernels(name).warp_tps_lattice(images.data, *plan.kernel_args(), out, mode_id, pad_id, as_flag(align_corners),
                                   fill_c, images.is_int, images.maxv)
    return images.restore(out, False)


# --------------------------------------------------------------------------- backward

def grid_sample_backward(img, grid, grad_out, padding: str = "zeros", align_corners: bool = False,
                         backend: str = "auto", input_grad: bool = True, fill=None):
    """Gradients of bilinear :func:`grid_sample` (STN paper, eqs. 6-7).

    Parameters
    ----------
    img : (H, W), (H, W, C) or (N, H, W, C) array
    grid : (Ho, Wo, 2) or (N, Ho, Wo, 2) array
    grad_out : array shaped like the output of ``grid_sample(img, grid)``
        Gradient of the loss with respect to that output.
    padding, fill : as in :func:`grid_sample`
        With ``padding="constant"``, the fill the forward pass used (default 0): taps outside the image
        read it, so it moves the grid's gradient near the edges (bilinear sampling with a constant fill
        ``f`` is ``f`` plus zeros-padded sampling of ``img - f``, and that is how it is differentiated).

    input_grad : bool
        Whether to compute the image gradient. A spatial transformer whose input image is data (no
        layer before the sampler to train) needs only ``grad_grid``: with ``input_grad=False`` the
        image gradient is neither computed nor returned (``grad_img`` is None), which saves its
        scatter, buffers and sums; ``grad_grid`` is the same, bit for bit.

    Returns ``(grad_img, grad_grid)`` in float64, shaped like ``img`` and ``grid``: one image sampled by a batch
    of grids gets the sum of their image gradients, one grid sampling a batch of images the sum of their grid
    gradients (as autograd sums a broadcast tensor's). Every backend's result is deterministic (see each
    backend's ``grid_sample_backward``).
    """
    images = ImageBatch(img)
    if images.on_device:
        raise InvalidArgumentError("grid_sample_backward takes host (NumPy) arrays; copy device arrays to the host")
    g = as_host_grid(grid)
    gb = np.ascontiguousarray(g if g.ndim == 4 else g[None])
    grids = gb.shape[0]
    n = _batch_count(images, grids, "grid")
    gb = np.ascontiguousarray(np.broadcast_to(gb, (n,) + gb.shape[1:]))
    go = np.asarray(check_real(grad_out, "grad_out"), dtype=np.float64)
    expect = (n,) + gb.shape[1:3] + (images.c,)
    # the shape grid_sample returned: without the batch axis for one image and one grid, without the channel
    # axis for an (H, W) image
    shapes = {expect}
    if n == 1:
        shapes.add(expect[1:])
    if images.ndim == 2:
        shapes |= {s[:-1] for s in shapes}
    if go.shape not in shapes:
        raise InvalidArgumentError(f"grad_out must match the sampled output, {expect}; got {go.shape}")
    go = np.ascontiguousarray(go.reshape(expect))
    _, pad_id, fill_c = sample_options("bilinear", padding, fill, images.c)
    name = resolve_backend(backend)
    data = _expand_images(images, n).astype(np.float64)
    if fill_c.any():  # constant padding: f + zeros-padded sampling of (img - f), whose grid gradient is this one's
        data -= fill_c
    gi, gg = kernels(name).grid_sample_backward(data, gb, go, pad_id, as_flag(align_corners),
                                                as_flag(input_grad, "input_grad"))
    if grids == 1 and n > 1:  # one grid sampled every image: its gradient is the sum of theirs
        gg = gg.sum(axis=0, keepdims=True)
    if gi is None:
        return None, (gg if g.ndim == 4 else gg[0])
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
    g = as_host_grid(grad_grid, "grad_grid")
    out_hw = as_hw(g.shape[-3:-1] if out_hw is None else out_hw)
    if g.shape[-3:-1] != out_hw:
        raise InvalidArgumentError(f"grad_grid is {g.shape[-3:-1]} but out_hw is {out_hw}")
    # dL/dθ_ik = Σ_hw g[h, w, i] (x_w, y_h, 1)_k; the base grid is separable, so sum over rows and columns first
    by_column = g.sum(axis=-3)  # (..., W, 2)
    # (..., H, 2) a component at a time: NumPy reduces a middle axis followed by one of 2 about 25x slower
    by_row = np.stack([g[..., 0].sum(axis=-1), g[..., 1].sum(axis=-1)], axis=-1)
    xs = base_coords(out_hw[1], align_corners)
    ys = base_coords(out_hw[0], align_corners)
    return np.stack([np.swapaxes(by_column, -1, -2) @ xs, np.swapaxes(by_row, -1, -2) @ ys, by_column.sum(axis=-2)],
                    axis=-1)


def warp_backward(img, theta, grad_out, out_hw=None, padding: str = "zeros", align_corners: bool = False,
                  backend: str = "auto", input_grad: bool = True, fill=None):
    """Gradients of bilinear :func:`warp` with affine θ: ``(grad_img, grad_theta)`` in float64 (``grad_img``
    None with ``input_grad=False``; ``fill`` with ``padding="constant"``: see :func:`grid_sample_backward`)."""
    images = ImageBatch(img)
    check_real(theta, "theta")
    t = as_theta(theta)
    if t.shape[-2:] != (2, 3):
        raise InvalidArgumentError("warp_backward takes affine θ, (2, 3) or (N, 2, 3)")
    out_hw = _out_hw(out_hw, images.hw)
    grid = affine_grid(t, out_hw, align_corners)
    grad_img, grad_grid = grid_sample_backward(img, grid, grad_out, padding, align_corners, backend, input_grad, fill)
    return grad_img, affine_grid_backward(grad_grid, out_hw, align_corners)


def tps_grid_backward(grad_grid, dst_points, out_hw=None, align_corners: bool = False, regularization: float = 0.0):
    """Chain a grid gradient to the input-frame control points of :func:`tps_grid`.

    The grid is linear in ``src_points`` (``grid = B @ src``), so ``dL/dsrc = Bᵀ dL/dgrid`` with ``B``
    depending only on ``dst_points`` (normalized, output frame). Returns ``(n, 2)`` or ``(N, n, 2)``.
    """
    g = as_host_grid(grad_grid, "grad_grid")
    out_hw = as_hw(g.shape[-3:-1] if out_hw is None else out_hw)
    if tuple(g.shape[-3:-1]) != out_hw:  # the basis is made for out_hw: another size's gradient is not its grid's
        raise InvalidArgumentError(f"grad_grid is {g.shape[-3:-1]} but out_hw is {out_hw}")
    dst = np.asarray(check_real(dst_points, "dst_points"), dtype=np.float64)
    tps = make_tps(dst, dst, regularization)
    basis = tps.basis(out_norm_points(out_hw, align_corners).reshape(-1, 2))
    flat = g.reshape(g.shape[:-3] + (-1, 2))
    return np.einsum("pn,...pk->...nk", basis, flat)
