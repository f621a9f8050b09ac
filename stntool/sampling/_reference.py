"""NumPy reference samplers: the specification every compiled kernel is tested against.

Semantics are those of ``torch.nn.functional.grid_sample`` (see :mod:`stntool.coords` for
the coordinate convention), on channel-last images:

* ``img``: ``(N, H, W, C)``; ``grid``: ``(N, Ho, Wo, 2)`` input normalized ``(x, y)``.
* Unnormalize ``x`` to pixels (``align_corners``). For ``nearest`` and ``bilinear`` the
  padding rule is applied to the continuous coordinate first (``border``: clip to
  ``[0, W-1]``; ``reflection``: reflect about the image edges, then clip), then taps outside
  the image read the fill value (0 for ``zeros``, the ``fill`` colour for ``constant``).
* ``nearest`` rounds half to even (``nearbyint``), as PyTorch does; a coordinate within
  ``TIE_TOL * max(1, |x|)`` of a half integer (:data:`TIE_TOL`, 2**-40) counts as a tie, so a
  coordinate that is exactly ``k + 1/2`` rounds to even whatever the last bits of its float
  evaluation.
* ``bicubic`` uses Keys' cubic convolution with ``A = -0.75`` on the unnormalized
  coordinate, and applies the padding rule to each of the 16 integer taps separately.
* Grid points that are NaN or infinite, or whose pixel coordinate is (``1e308`` unnormalized overflows),
  produce the fill value (0 unless ``constant``) and no gradient, as do points with
  ``zeros`` or ``constant`` padding more than 1 px (``bilinear``) or 3 px (``bicubic``) outside the image,
  where the compiled kernels write it without sampling: the fill value itself, not the weights' sum times
  it. (Bicubic points 2 to 3 px outside read the fill at all 16 taps too, weighed; there a fill that is a
  half, such as 127.5, can round either way, in the reference and in the kernels.)
* Arithmetic is float64. Integer outputs are rounded to nearest (half up) and saturated
  to the dtype's range; float outputs are cast.

The functions at the end of the module (the kernel table: ``warp_matrix``, ``sample_grid``,
``warp_tps_lattice``, ``grid_sample_backward``, ``tps_eval_terms``, ``tps_lattice_points``) have
the names and signatures of the compiled backends' (see :mod:`stntool.sampling`): option ids
(``mode``, ``pad``) are ints, ``fill`` is a ``(C,)`` array, and results go into caller-allocated
``out`` arrays. The functions above them are the spec in plain terms (option names, returned
arrays), which tests call directly.
"""

from __future__ import annotations

import numpy as np

CUBIC_A = -0.75
TIE_TOL = 2.0 ** -40
MODES = ("nearest", "bilinear", "bicubic")
PADDINGS = ("zeros", "border", "reflection", "constant")


def unnormalize(coord: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """Normalized -> pixel along one axis of ``size`` pixels."""
    with np.errstate(over="ignore", invalid="ignore"):  # a coordinate past float64 once in pixels: infinite
        if align_corners:
            return (coord + 1.0) / 2.0 * (size - 1)
        return ((coord + 1.0) * size - 1.0) / 2.0


def reflect(coord: np.ndarray, twice_low: float, twice_high: float) -> np.ndarray:
    """Reflect ``coord`` into ``[twice_low / 2, twice_high / 2]`` (PyTorch ``reflect_coordinates``)."""
    if twice_low == twice_high:
        return np.zeros_like(coord)
    lo = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    c = np.abs(coord - lo)
    extra = np.fmod(c, span)
    flips = np.floor(c / span)
    return np.where(np.fmod(flips, 2.0) == 0.0, extra + lo, span - extra + lo)


def rint(x: np.ndarray) -> np.ndarray:
    """Round half to even, ties within ``TIE_TOL * max(1, |x|)`` of a half integer (finite ``x``)."""
    r = np.floor(x + 0.5)
    d = r - x
    tol = TIE_TOL * np.maximum(1.0, np.abs(x))
    odd = np.fmod(r, 2.0) != 0.0
    return r - (odd & (np.abs(d - 0.5) <= tol)) + (odd & (np.abs(d + 0.5) <= tol))


def apply_padding(coord: np.ndarray, size: int, padding: str, align_corners: bool) -> np.ndarray:
    """PyTorch ``compute_coordinates``: border clipping or reflection of a pixel coordinate."""
    if padding == "border":
        return np.clip(coord, 0.0, size - 1.0)
    if padding == "reflection":
        if align_corners:
            c = reflect(coord, 0.0, 2.0 * (size - 1))
        else:
            c = reflect(coord, -1.0, 2.0 * size - 1.0)
        return np.clip(c, 0.0, size - 1.0)
    return coord


def cubic_weights(t: np.ndarray) -> tuple:
    """Keys' cubic convolution weights for taps at offsets -1, 0, 1, 2 from ``floor(x)``; ``t = x - floor(x)``."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a

    return far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)


def _gather(img, n_idx, iy, ix, fill):
    """Read ``img[n, iy, ix, :]`` where in bounds, ``fill`` elsewhere. Shapes broadcast; returns (..., C)."""
    _, h, w, _ = img.shape
    finite = np.isfinite(ix) & np.isfinite(iy)
    inb = finite & (ix >= 0) & (ix <= w - 1) & (iy >= 0) & (iy <= h - 1)
    ixi = np.where(inb, ix, 0).astype(np.intp)
    iyi = np.where(inb, iy, 0).astype(np.intp)
    vals = img[n_idx, iyi, ixi].astype(np.float64)
    return np.where(inb[..., None], vals, fill)


def grid_sample_float64(img: np.ndarray, grid: np.ndarray, mode: str = "bilinear", padding: str = "zeros",
                        align_corners: bool = False, fill=None) -> np.ndarray:
    """Sample ``img (N, H, W, C)`` at ``grid (N, Ho, Wo, 2)``; returns float64 ``(N, Ho, Wo, C)`` before rounding."""
    _, h, w, _ = img.shape
    x = unnormalize(grid[..., 0].astype(np.float64), w, align_corners)
    y = unnormalize(grid[..., 1].astype(np.float64), h, align_corners)
    return sample_pixels_float64(img, x, y, mode, padding, align_corners, fill)


def sample_pixels_float64(img: np.ndarray, x: np.ndarray, y: np.ndarray, mode: str = "bilinear",
                          padding: str = "zeros", align_corners: bool = False, fill=None) -> np.ndarray:
    """Sample ``img (N, H, W, C)`` at input *pixel* coordinates ``x, y (N, Ho, Wo)``; float64 result."""
    n, h, w, c = img.shape
    fill_c = np.zeros(c) if fill is None or padding != "constant" else np.broadcast_to(np.asarray(fill, np.float64), (c,))
    bad = ~(np.isfinite(x) & np.isfinite(y))
    x = np.where(bad, 0.0, x)
    y = np.where(bad, 0.0, y)
    n_idx = np.arange(n).reshape(n, 1, 1)
    if mode in ("nearest", "bilinear"):
        x = apply_padding(x, w, padding, align_corners)
        y = apply_padding(y, h, padding, align_corners)
    if mode == "nearest":
        out = _gather(img, n_idx, rint(y), rint(x), fill_c)
    elif mode == "bilinear":
        x0 = np.floor(x)
        y0 = np.floor(y)
        tx = (x - x0)[..., None]
        ty = (y - y0)[..., None]
        out = (_gather(img, n_idx, y0, x0, fill_c) * ((1 - tx) * (1 - ty))
               + _gather(img, n_idx, y0, x0 + 1, fill_c) * (tx * (1 - ty))
               + _gather(img, n_idx, y0 + 1, x0, fill_c) * ((1 - tx) * ty)
               + _gather(img, n_idx, y0 + 1, x0 + 1, fill_c) * (tx * ty))
    elif mode == "bicubic":
        x0 = np.floor(x)
        y0 = np.floor(y)
        wx = cubic_weights(x - x0)
        wy = cubic_weights(y - y0)
        out = np.zeros(x.shape + (c,))
        for a in range(4):
            ty = apply_padding(y0 - 1 + a, h, padding, align_corners)
            row = np.zeros_like(out)
            for b in range(4):
                tx = apply_padding(x0 - 1 + b, w, padding, align_corners)
                row += _gather(img, n_idx, ty, tx, fill_c) * wx[b][..., None]
            out += row * wy[a][..., None]
    else:
        raise ValueError(mode)
    if mode != "nearest" and padding in ("zeros", "constant"):
        # beyond 1 px of the image (bilinear) or 3 px (bicubic), as the kernels decide it: the fill itself, not the
        # fill times the weights' sum (Keys' weights can sum to 1 - 4e-16, which rounds a fill of 127.5 down)
        r = 1.0 if mode == "bilinear" else 3.0
        out[(x < -r) | (x > w - 1 + r) | (y < -r) | (y > h - 1 + r)] = fill_c
    out[bad] = fill_c
    return out


def warp_matrix_spec(img, in_pix_from_out_pix, out, mode="bilinear", padding="zeros", align_corners=False,
                     fill=None):
    """Fused-warp spec: ``out (N, Ho, Wo, C)`` reads ``img`` where the ``(M, 3, 3)`` pixel maps send each output pixel."""
    n, ho, wo, _ = out.shape
    m = np.broadcast_to(in_pix_from_out_pix, (n, 3, 3))
    ys, xs = np.meshgrid(np.arange(ho, dtype=np.float64), np.arange(wo, dtype=np.float64), indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite maps give non-finite points: the fill
        u = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
        v = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
        wh = m[:, 2, 0, None, None] * xs + m[:, 2, 1, None, None] * ys + m[:, 2, 2, None, None]
        x, y = u / wh, v / wh
    out[...] = to_dtype(sample_pixels_float64(img, x, y, mode, padding, align_corners, fill), out.dtype)
    return out


def to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """Cast float64 results to ``dtype``: integers are rounded half up and saturated."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        v = np.floor(values + 0.5)
        v = np.clip(np.nan_to_num(v, nan=0.0), info.min, info.max)
        return v.astype(dtype)
    return values.astype(dtype)


def grid_sample(img, grid, mode="bilinear", padding="zeros", align_corners=False, fill=None, out=None):
    """Reference ``grid_sample`` on ``(N, H, W, C)`` images; output in the image's dtype."""
    res = to_dtype(grid_sample_float64(img, grid, mode, padding, align_corners, fill), img.dtype)
    if out is not None:
        out[...] = res
        return out
    return res


def grid_sample_backward_spec(img, grid, grad_out, padding="zeros", align_corners=False):
    """Gradients of bilinear ``grid_sample`` (STN eqs. 6-7) w.r.t. the image and the grid.

    ``img (N, H, W, C)``, ``grid (N, Ho, Wo, 2)``, ``grad_out (N, Ho, Wo, C)``; returns
    ``(grad_img (N, H, W, C), grad_grid (N, Ho, Wo, 2))`` in float64. Follows PyTorch: the
    padding rules' derivatives (clip: 0 outside, reflection: sign flips) are included and
    taps outside the image contribute nothing. ``constant`` padding is not differentiable
    with respect to its fill and is treated like ``zeros`` here.
    """
    n, h, w, c = img.shape
    img64 = img.astype(np.float64)
    go = grad_out.astype(np.float64)
    gx = grid[..., 0].astype(np.float64)
    gy = grid[..., 1].astype(np.float64)
    # points the forward pass fills: not finite, on the grid or once in pixels
    bad = ~(np.isfinite(unnormalize(gx, w, align_corners)) & np.isfinite(unnormalize(gy, h, align_corners)))
    gx = np.where(bad, 0.0, gx)
    gy = np.where(bad, 0.0, gy)
    x, dx_mult = _source_index_with_grad(gx, w, padding, align_corners)
    y, dy_mult = _source_index_with_grad(gy, h, padding, align_corners)
    x0 = np.floor(x)
    y0 = np.floor(y)
    tx = x - x0
    ty = y - y0
    n_idx = np.broadcast_to(np.arange(n).reshape(n, 1, 1), x.shape)
    grad_img = np.zeros((n, h, w, c))
    gxp = np.zeros(x.shape)
    gyp = np.zeros(y.shape)
    taps = ((0, 0, (1 - tx) * (1 - ty), -(1 - ty), -(1 - tx)),
            (0, 1, tx * (1 - ty), (1 - ty), -tx),
            (1, 0, (1 - tx) * ty, -ty, (1 - tx)),
            (1, 1, tx * ty, ty, tx))
    live = ~bad
    for dyo, dxo, wgt, dwdx, dwdy in taps:
        ix = x0 + dxo
        iy = y0 + dyo
        inb = live & (ix >= 0) & (ix <= w - 1) & (iy >= 0) & (iy <= h - 1)
        ixi = np.where(inb, ix, 0).astype(np.intp)
        iyi = np.where(inb, iy, 0).astype(np.intp)
        v = np.where(inb[..., None], img64[n_idx, iyi, ixi], 0.0)
        with np.errstate(invalid="ignore"):  # 0 * inf outside: dropped below, as PyTorch never forms it
            g = np.where(inb, (v * go).sum(-1), 0.0)
        gxp += g * dwdx
        gyp += g * dwdy
        np.add.at(grad_img, (n_idx[inb], iyi[inb], ixi[inb]), go[inb] * wgt[inb][..., None])
    grad_grid = np.stack([gxp * dx_mult, gyp * dy_mult], axis=-1)
    grad_grid[bad] = 0.0
    return grad_img, grad_grid


def _source_index_with_grad(coord, size, padding, align_corners):
    """Pixel coordinate after padding and d(pixel)/d(normalized), as PyTorch computes them."""
    if align_corners:
        scale = (size - 1) / 2.0
    else:
        scale = size / 2.0
    x = unnormalize(coord, size, align_corners)
    mult = np.full(x.shape, scale)
    if padding == "border":
        inside = (x > 0) & (x < size - 1)
        mult = np.where(inside, mult, 0.0)
        x = np.clip(x, 0.0, size - 1.0)
    elif padding == "reflection":
        if align_corners:
            twice_low, twice_high = 0.0, 2.0 * (size - 1)
        else:
            twice_low, twice_high = -1.0, 2.0 * size - 1.0
        if twice_low == twice_high:
            return np.zeros_like(x), np.zeros_like(x)
        lo = twice_low / 2.0
        span = (twice_high - twice_low) / 2.0
        d = x - lo
        sign = np.where(d < 0, -1.0, 1.0)
        a = np.abs(d)
        extra = np.fmod(a, span)
        flips = np.floor(a / span)
        even = np.fmod(flips, 2.0) == 0.0
        x = np.where(even, extra + lo, span - extra + lo)
        mult = mult * sign * np.where(even, 1.0, -1.0)
        inside = (x > 0) & (x < size - 1)
        mult = np.where(inside, mult, 0.0)
        x = np.clip(x, 0.0, size - 1.0)
    return x, mult


def catmull_rom_weights(t):
    """Catmull-Rom weights of the nodes at offsets -1, 0, 1, 2 for a position ``t`` in ``[0, 1]``; shape ``t.shape + (4,)``."""
    t = np.asarray(t, dtype=np.float64)
    t2 = t * t
    t3 = t2 * t
    return np.stack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t,
                     0.5 * t3 - 0.5 * t2], axis=-1)


def lattice_points(lattice, step, singular, tables, radius, norm_scale, js, is_):
    """Input pixel coordinates read by output pixels ``(js, is_)`` (integer arrays) under a TPS lattice plan.

    The spec of the fused TPS kernels:

    * ``lattice (Hc + 2, Wc + 2, 2)``: the exact map at output pixels ``((b - 1) step, (a - 1) step)``
      (one apron node on every side), upsampled with Catmull-Rom weights in y then x;
    * ``singular (K, 4)``: per control point, its output pixel position ``(cx, cy)`` and its radial weight
      in input pixels ``(wx, wy)``; ``tables (Hc + 2, Wc + 2, K)``: its radial term ``U`` at the nodes.
      Within ``radius`` (Chebyshev, output pixels) of a control point the interpolated radial term is
      replaced by the exact ``U(r) = r² log r²`` (``r`` normalized through ``norm_scale``), removing the
      logarithmic singularity that interpolation cannot follow.
    """
    hc = lattice.shape[0] - 2
    wc = lattice.shape[1] - 2
    js = np.asarray(js, dtype=np.int64)
    is_ = np.asarray(is_, dtype=np.int64)
    a = np.minimum(is_ // step, hc - 2)
    b = np.minimum(js // step, wc - 2)
    wy = catmull_rom_weights((is_ - a * step) / step)
    wx = catmull_rom_weights((js - b * step) / step)

    def interp(field):  # field (Hc + 2, Wc + 2, ...) -> values at the points
        acc = 0.0
        for q in range(4):
            for r in range(4):
                wgt = wy[..., q] * wx[..., r]
                v = field[a + q, b + r]
                acc = acc + (wgt[..., None] * v if v.ndim > wgt.ndim else wgt * v)
        return acc

    res = np.array(interp(lattice), dtype=np.float64)
    for k in range(len(singular)):
        cx, cy, wxk, wyk = singular[k]
        near = (np.abs(js - cx) <= radius) & (np.abs(is_ - cy) <= radius)
        if not near.any():
            continue
        d2 = ((js - cx) * norm_scale[0]) ** 2 + ((is_ - cy) * norm_scale[1]) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(d2 > 0, d2 * np.log(np.where(d2 > 0, d2, 1.0)), 0.0)
        corr = np.where(near, u - interp(tables[..., k]), 0.0)
        res[..., 0] += wxk * corr
        res[..., 1] += wyk * corr
    return res


def warp_tps_lattice_spec(img, lattice, step, singular, tables, radius, norm_scale, out, mode="bilinear",
                          padding="zeros", align_corners=False, fill=None):
    """Fused TPS warp spec: sample where :func:`lattice_points` sends every output pixel."""
    n, ho, wo, _ = out.shape
    ii, jj = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    pts = lattice_points(lattice, step, singular, tables, radius, norm_scale, jj, ii)
    x = np.broadcast_to(pts[..., 0], (n, ho, wo))
    y = np.broadcast_to(pts[..., 1], (n, ho, wo))
    out[...] = to_dtype(sample_pixels_float64(img, x, y, mode, padding, align_corners, fill), out.dtype)
    return out


# --------------------------------------------------------------------------- the kernel table
# Same names and signatures as stntool.sampling._cpu and _cuda. ``is_int`` / ``maxv`` are
# accepted for the common signature: the spec rounds and saturates by ``out.dtype``.
# ``projective`` likewise: the spec always divides by the third homogeneous coordinate
# (exactly 1.0 for affine maps).

def warp_matrix(img, maps, out, mode, pad, align_corners, fill, is_int, maxv, projective):
    """Fused warp: ``out[n, i, j] = img[n]`` sampled at ``maps[n] @ (j, i, 1)`` (``in_pix_from_out_pix``,
    ``(M, 3, 3)``, ``M`` 1 or N). ``mode``, ``pad``: ids of :data:`MODES`, :data:`PADDINGS`."""
    return warp_matrix_spec(img, maps, out, MODES[mode], PADDINGS[pad], bool(align_corners), fill)


def sample_grid(img, grid, out, mode, pad, align_corners, fill, is_int, maxv):
    """``grid_sample`` into ``out``: ``grid (M, Ho, Wo, 2)`` of input normalized ``(x, y)``, ``M`` 1 or N."""
    g = np.broadcast_to(grid, (out.shape[0],) + grid.shape[1:])
    out[...] = to_dtype(grid_sample_float64(img, g, MODES[mode], PADDINGS[pad], bool(align_corners), fill),
                        out.dtype)
    return out


def warp_tps_lattice(img, lattice, step, singular, tables, radius, snx, sny, out, mode, pad, align_corners, fill,
                     is_int, maxv):
    """Fused TPS warp from a plan (see :func:`lattice_points`); ``(snx, sny)`` is the plan's ``norm_scale``."""
    return warp_tps_lattice_spec(img, lattice, step, singular, tables, radius, (snx, sny), out, MODES[mode],
                                 PADDINGS[pad], bool(align_corners), fill)


def tps_lattice_points(lattice, step, singular, tables, radius, snx, sny, js, is_, out):
    """:func:`lattice_points` for integer output pixels ``js, is_ (P,)`` into ``out (P, 2)``."""
    out[...] = lattice_points(lattice, step, singular, tables, radius, (snx, sny), js, is_)
    return out


def tps_eval_terms(points, centres, weights, affine, out, terms):
    """Evaluate one thin-plate spline at ``points (P, 2)`` into ``out (P, 2)`` and each radial term
    ``U(|p - c_q|)`` into ``terms (P, n)``; ``weights (n, 2)``, ``affine (3, 2)``
    (:class:`stntool.tps.ThinPlateSpline`'s evaluation)."""
    from ..tps import tps_kernel

    u = tps_kernel(points, centres)
    vals = u @ weights
    vals += affine[0] + points @ affine[1:]
    terms[...] = u
    out[...] = vals
    return out, terms


def grid_sample_backward(img, grid, grad_out, pad, align_corners, want_img):
    """:func:`grid_sample_backward_spec` with a padding id: ``(grad_img, grad_grid)`` float64 (``grad_img``
    None without ``want_img``)."""
    grad_img, grad_grid = grid_sample_backward_spec(img, grid, grad_out, PADDINGS[pad], bool(align_corners))
    return (grad_img if want_img else None), grad_grid
