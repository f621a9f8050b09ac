"""Sampling grids in normalized coordinates (NumPy).

A grid has shape ``(H, W, 2)`` or ``(N, H, W, 2)`` and holds, for every output pixel, the
input normalized ``(x, y)`` to read (see :mod:`stntool.coords`). These are what
``torch.nn.functional.affine_grid`` builds; the fused kernels compute the same points on
the fly instead of materialising them.
"""

from __future__ import annotations

import numpy as np

from .coords import as_hw, base_coords, norm_to_pixel, pixel_to_norm
from .errors import InvalidArgumentError
from .sampling import check_real
from .tps import ThinPlateSpline, regular_control_points
from .transforms import as_theta

__all__ = ["affine_grid", "projective_grid", "theta_grid", "tps_grid", "make_tps", "out_norm_points"]


def _out_dtype(theta) -> np.dtype:
    check_real(theta, "theta")
    dt = np.asarray(theta).dtype  # float32 in either byte order gives a native float32 grid
    return np.dtype(np.float32) if dt.type is np.float32 else np.dtype(np.float64)


def out_norm_points(out_hw, align_corners: bool = False) -> np.ndarray:
    """Normalized ``(x, y)`` of every output pixel centre, ``(H, W, 2)`` float64 (the base grid)."""
    h, w = as_hw(out_hw)
    xs = base_coords(w, align_corners)
    ys = base_coords(h, align_corners)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx, gy], axis=-1)


def affine_grid(theta, out_hw, align_corners: bool = False) -> np.ndarray:
    """Sampling grid for affine θ, like ``torch.nn.functional.affine_grid``.

    Parameters
    ----------
    theta : (2, 3) or (N, 2, 3) array
        ``in_norm_from_out_norm``.
    out_hw : (H, W)
        Output size.

    Returns ``(H, W, 2)`` or ``(N, H, W, 2)``, float32 for float32 θ and float64 otherwise.

    Example
    -------
    >>> g = affine_grid([[1, 0, 0], [0, 1, 0]], (2, 3))
    >>> g[0, :, 0].round(4).tolist()       # x of the three pixel centres (align_corners=False)
    [-0.6667, 0.0, 0.6667]
    """
    check_real(theta, "theta")
    t = as_theta(theta)
    if t.shape[-2:] != (2, 3):
        raise InvalidArgumentError(f"affine_grid takes (2, 3) or (N, 2, 3) theta, got {t.shape}; "
                                   "use projective_grid for (3, 3)")
    return theta_grid(theta, out_hw, align_corners)


def projective_grid(theta, out_hw, align_corners: bool = False) -> np.ndarray:
    """Sampling grid for projective θ ``(3, 3)`` or ``(N, 3, 3)``: ``(x', y') = (θ₀·p, θ₁·p) / θ₂·p``.

    Output points whose homogeneous coordinate is 0 map to infinity and sample the fill value.
    """
    check_real(theta, "theta")
    t = as_theta(theta)
    if t.shape[-2:] != (3, 3):
        raise InvalidArgumentError(f"projective_grid takes (3, 3) or (N, 3, 3) theta, got {t.shape}")
    return theta_grid(theta, out_hw, align_corners)


def theta_grid(theta, out_hw, align_corners: bool = False) -> np.ndarray:
    """Grid for a ``(2, 3)`` affine or ``(3, 3)`` projective θ, batched or not.

    θ of any real dtype and byte order is accepted; the grid is float32 for float32 θ and float64
    otherwise (float16 and longdouble θ give float64). bool, complex and object θ are refused.
    """
    dtype = _out_dtype(theta)
    t = as_theta(theta)
    batched = t.ndim == 3
    tb = t if batched else t[None]
    h, w = as_hw(out_hw)
    x = base_coords(w, align_corners)[None, None, :]  # the base grid's columns and rows (out_norm_points)
    y = base_coords(h, align_corners)[None, :, None]
    # row i of θ·(x, y, 1), summed in this order: (x θ_i0 + θ_i2) + y θ_i1 (the grid's definition, bit for bit)
    rows = [(x * tb[:, i, 0, None, None] + tb[:, i, 2, None, None]) + y * tb[:, i, 1, None, None]
            for i in range(tb.shape[-2])]
    if len(rows) == 3:
        with np.errstate(divide="ignore", invalid="ignore"):
            rows = [rows[0] / rows[2], rows[1] / rows[2]]
    res = np.stack(rows, axis=-1).astype(dtype, copy=False)
    return res if batched else res[0]


def make_tps(src_points, dst_points=None, regularization: float = 0.0) -> ThinPlateSpline:
    """The spline ``in_norm_from_out_norm`` sending output control points ``dst`` to input points ``src``.

    ``dst_points`` defaults to a regular ``k x k`` grid over ``[-1, 1]²`` when ``len(src) == k²``.
    """
    check_real(src_points, "src_points")
    src = np.asarray(src_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[-1] != 2:
        raise InvalidArgumentError(f"TPS points must be (n, 2), got {src.shape}")
    if dst_points is None:
        k = int(round(np.sqrt(len(src))))
        if k * k != len(src):
            raise InvalidArgumentError("without dst_points, src_points must form a k x k grid (n = k²)")
        dst = regular_control_points(k)
    else:
        check_real(dst_points, "dst_points")
        dst = np.asarray(dst_points, dtype=np.float64)
    return ThinPlateSpline(dst, src, regularization)


def tps_grid(src_points, out_hw, dst_points=None, align_corners: bool = False,
             regularization: float = 0.0) -> np.ndarray:
    """Thin-plate-spline sampling grid (STN, Jaderberg et al. 2015, section 3.2).

    Parameters
    ----------
    src_points : (n, 2) or (N, n, 2) array
        Input-frame normalized positions of the control points (what a localisation net predicts).
    out_hw : (H, W)
        Output size.
    dst_points : (n, 2) array, optional
        Control points in the output frame, normalized; default a regular ``k x k`` grid over
        ``[-1, 1]²`` (row-major) when ``n = k²``.
    regularization : float
        Bookstein's ``λ`` (0 interpolates exactly).

    Returns ``(H, W, 2)`` or ``(N, H, W, 2)`` float64: the output point ``dst[i]`` reads the
    input at ``src[i]``.
    """
    check_real(src_points, "src_points")
    src = np.asarray(src_points, dtype=np.float64)
    batched = src.ndim == 3
    srcb = src if batched else src[None]
    base = out_norm_points(out_hw, align_corners).reshape(-1, 2)
    shape = tuple(as_hw(out_hw)) + (2,)
    if not len(srcb):  # an empty batch: an empty stack of grids, as affine_grid gives
        return np.empty((0,) + shape)
    grids = [make_tps(s, dst_points, regularization)(base).reshape(shape) for s in srcb]
    res = np.stack(grids)
    return res if batched else res[0]


def pixel_grid_from_norm(grid, in_hw, align_corners: bool = False) -> np.ndarray:
    """Convert a normalized grid to input pixel coordinates (for ``cv2.remap``)."""
    return norm_to_pixel(grid, in_hw, align_corners)


def norm_grid_from_pixel(grid_pix, in_hw, align_corners: bool = False) -> np.ndarray:
    """Convert a grid of input pixel coordinates to normalized coordinates."""
    return pixel_to_norm(grid_pix, in_hw, align_corners)
