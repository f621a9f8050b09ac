"""Numba CUDA twins of :mod:`stntool.sampling._cpu`: fused grid + sample on the GPU.

Three layers, as in stumpy's ``gpu_stump``:

* **kernels** (``_k_*``): ``cuda.jit``, cached on disk keyed on this file and the shared scalar
  maths (:mod:`stntool.sampling._kernel_cache`), one thread per output pixel (all channels) or
  per point, grid-stride loops so any launch size is correct, no globals read inside; one
  kernel per (family, mode) (:data:`KERNELS_BY_MODE`), so a call compiles only the sampler of
  its own mode;
* **private host drivers** (``_launch_*``): move inputs to the device (or wrap device arrays
  without a copy), allocate, launch with the geometry of :func:`_launch_geometry`, copy back;
* **public functions**: the kernel table, with the names and signatures of the CPU module and
  the reference (:mod:`stntool.sampling`), called by :mod:`stntool.api` and
  :mod:`stntool.tps_lattice` through :func:`stntool.sampling.kernels`.

The scalar maths (padding, reflection, rounding, cubic and Catmull-Rom weights, the padding
rule's derivative, saturation) is :mod:`stntool.sampling._scalar`, compiled here as CUDA device
functions; the CPU backend compiles the same source. TPS plans for this backend are built with
its own kernels (:func:`tps_eval_terms`, :func:`tps_lattice_points`): the plan's accuracy is
checked with the arithmetic the warp kernel uses.

Semantics are those of :mod:`stntool.sampling._reference` (the spec): coordinates and
interpolation are float64 and written in the same order as the reference, integer outputs are
``floor(v + 0.5)`` saturated to the dtype, NaN / infinite coordinates give the fill value.

The launch geometry comes from :data:`THREADS_PER_BLOCK` and the bounds :data:`MIN_BLOCKS`,
:data:`MAX_BLOCKS` (read by the host drivers at launch time, never inside a kernel). The host
drivers and the availability probe run one at a time (:data:`_DRIVER_LOCK`). Importing this module
imports ``numba.cuda`` but does not initialise CUDA; :func:`is_available` probes lazily.

numpy >= 2.5 removed ``np.row_stack``, which numba-cuda 0.30.x registers an overload for
when it first compiles a kernel (``numba/cuda/np/arrayobj.py``; NVIDIA/numba-cuda#902, #907).
:func:`_ensure_numpy_compat` restores the name as a thin alias of ``np.vstack`` before
``numba.cuda`` is imported, so kernels launch under any numpy.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np


def _ensure_numpy_compat() -> bool:
    """Give numpy >= 2.5 back ``np.row_stack`` (an alias of ``np.vstack``) for numba-cuda 0.30.x.

    numba-cuda's ``numba.cuda.np.arrayobj`` runs ``overload(np.row_stack)`` when the CUDA target
    is first refreshed (first kernel compilation); without the name every launch fails with
    ``AttributeError: module 'numpy' has no attribute 'row_stack'``. The alias is a separate
    function, so numba registers its own overload for it and ``np.vstack``'s is untouched.
    Returns True when the alias was installed.
    """
    if "row_stack" in np.__dict__:
        return False

    def row_stack(tup, *, dtype=None, casting="same_kind"):
        """Alias of :func:`numpy.vstack` (removed in numpy 2.5; restored by stntool for numba-cuda)."""
        return np.vstack(tup, dtype=dtype, casting=casting)

    np.row_stack = row_stack
    return True


_ensure_numpy_compat()

from numba import cuda  # noqa: E402

from . import _kernel_cache, _scalar, is_device_array  # noqa: E402

#: Threads per block for every launch. Tests patch it small so tiny inputs span several blocks.
THREADS_PER_BLOCK = 256
#: Upper bound on blocks per launch; grid-stride loops cover the rest.
MAX_BLOCKS = 65535
#: Lower bound on blocks per launch: fewer leave most of the GPU idle (numba-cuda warns below 128);
#: the extra threads find no pixel and return. Tests patch it to 1, with THREADS_PER_BLOCK.
MIN_BLOCKS = 128


def _simulator_enabled() -> bool:
    """True when numba-cuda runs kernels in its Python simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        from numba.cuda import config as cuda_config
    except ImportError:  # older layouts keep it in numba.config
        from numba import config as cuda_config
    return bool(getattr(cuda_config, "ENABLE_CUDASIM", False))


def _kernel(fn):
    """``cuda.jit`` with the on-disk cache of :mod:`stntool.sampling._kernel_cache` (none under the simulator)."""
    k = cuda.jit(fn)
    if not _simulator_enabled():
        k._cache = _kernel_cache.cuda_cache(fn)
    return k


_device = cuda.jit(device=True)

# The scalar maths shared with the CPU backend (stntool.sampling._scalar), as device functions;
# floor and fmod are math's (libdevice).
_s = _scalar.compile_for(_device)
_unnormalize = _s.unnormalize
_pad_coord = _s.pad_coord
_pad_coord_grad = _s.pad_coord_grad
_rint = _s.rint
_cubic_weights = _s.cubic_weights
_cr_weights = _s.cr_weights
_tps_radial = _s.tps_radial
_saturate = _s.saturate

NEAREST, BILINEAR, BICUBIC = _s.NEAREST, _s.BILINEAR, _s.BICUBIC
ZEROS, BORDER, REFLECTION, CONSTANT = _s.ZEROS, _s.BORDER, _s.REFLECTION, _s.CONSTANT


def _launch_geometry(work_items: int) -> tuple[int, int]:
    """``(blocks, threads_per_block)`` covering ``work_items`` (grid-stride loops do the rest), at least
    :data:`MIN_BLOCKS` blocks."""
    tpb = int(THREADS_PER_BLOCK)
    blocks = max(1, int(MIN_BLOCKS), min(int(MAX_BLOCKS), (int(work_items) + tpb - 1) // tpb))
    return blocks, tpb


# --------------------------------------------------------------------------- device helpers

@_device
def _store(out, n, i, j, c, v, is_int, maxv):
    """Write ``v`` (float64) to ``out[n, i, j, c]``: integers round half up and saturate
    (:func:`_scalar.saturate`; NaN -> 0, as the reference's nan_to_num)."""
    if is_int:
        v = _saturate(v, maxv)
    out[n, i, j, c] = v


@_device
def _store_fill(out, n, i, j, fill, is_int, maxv):
    for c in range(out.shape[3]):
        _store(out, n, i, j, c, fill[c], is_int, maxv)


@_device
def _tap(img, n, iy, ix, c, inb, f):
    """``img[n, iy, ix, c]`` as float64 when ``inb``, else the fill value ``f``."""
    if inb:
        return np.float64(img[n, iy, ix, c])
    return f


# One careful sampler per mode, so a kernel compiles the mode it runs only (the mode is a kernel's
# choice, not an argument): NaN / infinite coordinates give the fill value, then the mode's taps.

@_device
def _sample_nearest(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv):
    """Write ``out[n, i, j, :]``: ``img[n]`` at input pixel ``(x, y)`` (float64), nearest, any padding."""
    h = img.shape[1]
    w = img.shape[2]
    cc = img.shape[3]
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    x = _pad_coord(x, w, pad, align_corners)
    y = _pad_coord(y, h, pad, align_corners)
    if not (x > -1.0 and x < w and y > -1.0 and y < h):
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    xr = _rint(x)
    yr = _rint(y)
    if xr < 0.0 or xr > w - 1.0 or yr < 0.0 or yr > h - 1.0:
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    ix = int(xr)
    iy = int(yr)
    for c in range(cc):
        _store(out, n, i, j, c, np.float64(img[n, iy, ix, c]), is_int, maxv)


@_device
def _sample_bilinear(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv):
    """Bilinear twin of :func:`_sample_nearest`."""
    h = img.shape[1]
    w = img.shape[2]
    cc = img.shape[3]
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    x = _pad_coord(x, w, pad, align_corners)
    y = _pad_coord(y, h, pad, align_corners)
    if x < -1.0 or x > w or y < -1.0 or y > h:
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    x0 = math.floor(x)
    y0 = math.floor(y)
    tx = x - x0
    ty = y - y0
    ix = int(x0)
    iy = int(y0)
    in_x0 = ix >= 0 and ix <= w - 1
    in_x1 = ix + 1 >= 0 and ix + 1 <= w - 1
    in_y0 = iy >= 0 and iy <= h - 1
    in_y1 = iy + 1 >= 0 and iy + 1 <= h - 1
    w00 = (1.0 - tx) * (1.0 - ty)
    w01 = tx * (1.0 - ty)
    w10 = (1.0 - tx) * ty
    w11 = tx * ty
    for c in range(cc):
        f = fill[c]
        v00 = _tap(img, n, iy, ix, c, in_y0 and in_x0, f)
        v01 = _tap(img, n, iy, ix + 1, c, in_y0 and in_x1, f)
        v10 = _tap(img, n, iy + 1, ix, c, in_y1 and in_x0, f)
        v11 = _tap(img, n, iy + 1, ix + 1, c, in_y1 and in_x1, f)
        _store(out, n, i, j, c, v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11, is_int, maxv)


@_device
def _cubic_taps(x0, size, pad, align_corners, idx):
    """Indices of the four taps ``x0 - 1 .. x0 + 2`` under the padding rule into ``idx`` (int64, 4);
    -1 for a tap outside the image (it reads the fill value)."""
    for b in range(4):
        xb = _pad_coord(x0 - 1.0 + b, size, pad, align_corners)
        idx[b] = int(xb) if (xb >= 0.0 and xb <= size - 1.0) else -1


@_device
def _sample_bicubic(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv):
    """Bicubic twin of :func:`_sample_nearest`: the padding rule applies to each integer tap, on the
    unpadded coordinate (once per pixel, for every channel)."""
    h = img.shape[1]
    w = img.shape[2]
    cc = img.shape[3]
    if not (math.isfinite(x) and math.isfinite(y)):
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    if (pad == ZEROS or pad == CONSTANT) and (x < -3.0 or x > w + 2.0 or y < -3.0 or y > h + 2.0):
        _store_fill(out, n, i, j, fill, is_int, maxv)
        return
    x0 = math.floor(x)
    y0 = math.floor(y)
    tx = x - x0
    ty = y - y0
    wx0, wx1, wx2, wx3 = _cubic_weights(tx)
    wy0, wy1, wy2, wy3 = _cubic_weights(ty)
    ixs = cuda.local.array(4, np.int64)
    iys = cuda.local.array(4, np.int64)
    _cubic_taps(x0, w, pad, align_corners, ixs)
    _cubic_taps(y0, h, pad, align_corners, iys)
    for c in range(cc):
        f = fill[c]
        acc = 0.0
        for a in range(4):
            iy = iys[a]
            wy = wy0 if a == 0 else (wy1 if a == 1 else (wy2 if a == 2 else wy3))
            racc = 0.0
            for b in range(4):
                ix = ixs[b]
                wxb = wx0 if b == 0 else (wx1 if b == 1 else (wx2 if b == 2 else wx3))
                racc += _tap(img, n, max(iy, 0), max(ix, 0), c, iy >= 0 and ix >= 0, f) * wxb
            acc += racc * wy
        _store(out, n, i, j, c, acc, is_int, maxv)


# --------------------------------------------------------------------------- input coordinates of one output pixel

@_device
def _pixel_of(p, per_img, wo):
    """Flat output index ``p`` of a grid-stride loop -> ``(image n, row i, column j)``."""
    n = p // per_img
    r = p - n * per_img
    i = r // wo
    return n, i, r - i * wo


@_device
def _matrix_coords(maps, k, i, j, projective):
    """Input pixel ``(x, y)`` of output pixel ``(j, i)`` under pixel map ``maps[k]`` (``in_pix_from_out_pix``)."""
    xs = np.float64(j)
    ys = np.float64(i)
    u = maps[k, 0, 0] * xs + maps[k, 0, 1] * ys + maps[k, 0, 2]
    v = maps[k, 1, 0] * xs + maps[k, 1, 1] * ys + maps[k, 1, 2]
    if projective:
        q = maps[k, 2, 0] * xs + maps[k, 2, 1] * ys + maps[k, 2, 2]
        if q == 0.0:
            u = math.inf
            v = math.inf
        else:
            u = u / q
            v = v / q
    return u, v


@_device
def _tps_coords(lattice, step, singular, tables, radius, snx, sny, i, j):
    """Input pixel ``(x, y)`` of output pixel ``(j, i)`` from a TPS plan; spec ``_reference.tps_lattice_points``."""
    hc = lattice.shape[0] - 2
    wc = lattice.shape[1] - 2
    a = min(i // step, hc - 2)
    b = min(j // step, wc - 2)
    ty = (i - a * step) / step
    tx = (j - b * step) / step
    wy0, wy1, wy2, wy3 = _cr_weights(ty)
    wx0, wx1, wx2, wx3 = _cr_weights(tx)
    x = 0.0
    y = 0.0
    for qq in range(4):
        wy = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
        for rr in range(4):
            wgt = wy * (wx0 if rr == 0 else (wx1 if rr == 1 else (wx2 if rr == 2 else wx3)))
            x += wgt * lattice[a + qq, b + rr, 0]
            y += wgt * lattice[a + qq, b + rr, 1]
    for q in range(singular.shape[0]):
        cx = singular[q, 0]
        cy = singular[q, 1]
        if abs(i - cy) > radius or abs(j - cx) > radius:
            continue
        dxn = (j - cx) * snx
        dyn = (i - cy) * sny
        d2 = dxn * dxn + dyn * dyn
        u = _tps_radial(d2)
        acc = 0.0
        for qq in range(4):
            wy = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
            for rr in range(4):
                acc += wy * (wx0 if rr == 0 else (wx1 if rr == 1 else (wx2 if rr == 2 else wx3))) * tables[
                    a + qq, b + rr, q]
        x += singular[q, 2] * (u - acc)
        y += singular[q, 3] * (u - acc)
    return x, y


@_device
def _grid_coords(grid, k, i, j, h, w, align_corners):
    """Input pixel ``(x, y)`` of grid point ``grid[k, i, j]`` (input normalized)."""
    gx = np.float64(grid[k, i, j, 0])
    gy = np.float64(grid[k, i, j, 1])
    return _unnormalize(gx, w, align_corners), _unnormalize(gy, h, align_corners)


# --------------------------------------------------------------------------- kernels, one per (family, mode)
# One thread per output pixel (all channels), grid-stride loops.

@_kernel
def _k_warp_matrix_nearest(img, maps, out, pad, align_corners, fill, is_int, maxv, projective):
    """``out[n, i, j] = img[n]`` sampled at ``maps[n] @ (j, i, 1)`` (``in_pix_from_out_pix``), nearest."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = maps.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _matrix_coords(maps, n if multi else 0, i, j, projective)
        _sample_nearest(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_warp_matrix_bilinear(img, maps, out, pad, align_corners, fill, is_int, maxv, projective):
    """Bilinear twin of :func:`_k_warp_matrix_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = maps.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _matrix_coords(maps, n if multi else 0, i, j, projective)
        _sample_bilinear(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_warp_matrix_bicubic(img, maps, out, pad, align_corners, fill, is_int, maxv, projective):
    """Bicubic twin of :func:`_k_warp_matrix_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = maps.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _matrix_coords(maps, n if multi else 0, i, j, projective)
        _sample_bicubic(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_sample_grid_nearest(img, grid, out, pad, align_corners, fill, is_int, maxv):
    """Generic sampler, nearest: ``grid (M, Ho, Wo, 2)`` of input normalized ``(x, y)``, ``M`` 1 or N."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = grid.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _grid_coords(grid, n if multi else 0, i, j, img.shape[1], img.shape[2], align_corners)
        _sample_nearest(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_sample_grid_bilinear(img, grid, out, pad, align_corners, fill, is_int, maxv):
    """Bilinear twin of :func:`_k_sample_grid_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = grid.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _grid_coords(grid, n if multi else 0, i, j, img.shape[1], img.shape[2], align_corners)
        _sample_bilinear(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_sample_grid_bicubic(img, grid, out, pad, align_corners, fill, is_int, maxv):
    """Bicubic twin of :func:`_k_sample_grid_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    multi = grid.shape[0] > 1
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _grid_coords(grid, n if multi else 0, i, j, img.shape[1], img.shape[2], align_corners)
        _sample_bicubic(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_warp_tps_nearest(img, lattice, step, singular, tables, radius, snx, sny, out, pad, align_corners, fill,
                        is_int, maxv):
    """Fused TPS warp, nearest; spec ``_reference.tps_lattice_points``."""
    ho = out.shape[1]
    wo = out.shape[2]
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _tps_coords(lattice, step, singular, tables, radius, snx, sny, i, j)
        _sample_nearest(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_warp_tps_bilinear(img, lattice, step, singular, tables, radius, snx, sny, out, pad, align_corners, fill,
                         is_int, maxv):
    """Bilinear twin of :func:`_k_warp_tps_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _tps_coords(lattice, step, singular, tables, radius, snx, sny, i, j)
        _sample_bilinear(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


@_kernel
def _k_warp_tps_bicubic(img, lattice, step, singular, tables, radius, snx, sny, out, pad, align_corners, fill,
                        is_int, maxv):
    """Bicubic twin of :func:`_k_warp_tps_nearest`."""
    ho = out.shape[1]
    wo = out.shape[2]
    per_img = ho * wo
    for p in range(cuda.grid(1), out.shape[0] * per_img, cuda.gridsize(1)):
        n, i, j = _pixel_of(p, per_img, wo)
        x, y = _tps_coords(lattice, step, singular, tables, radius, snx, sny, i, j)
        _sample_bicubic(img, n, x, y, out, i, j, pad, align_corners, fill, is_int, maxv)


#: (family, mode) -> kernel; a call compiles (or loads) only its own.
KERNELS_BY_MODE = {
    ("matrix", NEAREST): _k_warp_matrix_nearest, ("matrix", BILINEAR): _k_warp_matrix_bilinear,
    ("matrix", BICUBIC): _k_warp_matrix_bicubic,
    ("grid", NEAREST): _k_sample_grid_nearest, ("grid", BILINEAR): _k_sample_grid_bilinear,
    ("grid", BICUBIC): _k_sample_grid_bicubic,
    ("tps", NEAREST): _k_warp_tps_nearest, ("tps", BILINEAR): _k_warp_tps_bilinear,
    ("tps", BICUBIC): _k_warp_tps_bicubic,
}


@_kernel
def _k_tps_lattice_points(lattice, step, singular, tables, radius, snx, sny, js, is_, out):
    """A TPS plan at scattered integer output pixels ``(js[p], is_[p])``, one thread per point
    (spec ``_reference.lattice_points``; the arithmetic of the CPU kernel of the same name)."""
    hc = lattice.shape[0] - 2
    wc = lattice.shape[1] - 2
    inv = 1.0 / step
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for p in range(start, js.shape[0], stride):
        j = js[p]
        i = is_[p]
        a = min(i // step, hc - 2)
        b = min(j // step, wc - 2)
        wy0, wy1, wy2, wy3 = _cr_weights((i - a * step) * inv)
        wx0, wx1, wx2, wx3 = _cr_weights((j - b * step) * inv)
        for c in range(2):
            acc = 0.0
            for qq in range(4):
                wyq = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
                acc += wyq * (wx0 * lattice[a + qq, b, c] + wx1 * lattice[a + qq, b + 1, c]
                              + wx2 * lattice[a + qq, b + 2, c] + wx3 * lattice[a + qq, b + 3, c])
            out[p, c] = acc
        for q in range(singular.shape[0]):
            cx = singular[q, 0]
            cy = singular[q, 1]
            if abs(i - cy) > radius or abs(j - cx) > radius:
                continue
            dxn = (j - cx) * snx
            dyn = (i - cy) * sny
            u = _tps_radial(dxn * dxn + dyn * dyn)
            acc = 0.0
            for qq in range(4):
                wyq = wy0 if qq == 0 else (wy1 if qq == 1 else (wy2 if qq == 2 else wy3))
                acc += wyq * (wx0 * tables[a + qq, b, q] + wx1 * tables[a + qq, b + 1, q]
                              + wx2 * tables[a + qq, b + 2, q] + wx3 * tables[a + qq, b + 3, q])
            out[p, 0] += singular[q, 2] * (u - acc)
            out[p, 1] += singular[q, 3] * (u - acc)


@_kernel
def _k_tps_eval_terms(points, centres, weights, affine, out, terms):
    """One thin-plate spline at ``points (P, 2)``, one thread per point: values into ``out (P, 2)``,
    each radial term ``U(|p - c_q|)`` into ``terms (P, n)`` (the CPU kernel's arithmetic)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for p in range(start, points.shape[0], stride):
        px = points[p, 0]
        py = points[p, 1]
        fx = affine[0, 0] + affine[1, 0] * px + affine[2, 0] * py
        fy = affine[0, 1] + affine[1, 1] * px + affine[2, 1] * py
        for q in range(centres.shape[0]):
            dx = px - centres[q, 0]
            dy = py - centres[q, 1]
            u = _tps_radial(dx * dx + dy * dy)
            terms[p, q] = u
            fx += weights[q, 0] * u
            fy += weights[q, 1] * u
        out[p, 0] = fx
        out[p, 1] = fy


# --------------------------------------------------------------------------- backward kernels
#
# grad_img is a scatter (several output pixels read the same input pixel). To keep it
# deterministic without per-block copies of the image, contributions are accumulated with
# integer atomics in 64-bit fixed point: integer addition is associative, so the sum does not
# depend on the order threads arrive in. The scale is a power of two chosen from a bound on
# |grad_out| so no sum can overflow (|grad_img| <= Ho * Wo * max|grad_out|); the resolution is
# 2**-62 of that bound. Non-finite contributions (inf / NaN in grad_out) go to a float64 buffer,
# whose sums are order-independent because they are inf or NaN anyway.

FIXED_BITS = 62


@_kernel
def _k_abs_bound(values, bound, nonfinite):
    """``bound[0] = max |v|`` over finite values of the 1-D ``values``; ``nonfinite[0] = 1`` if any is not finite."""
    local = 0.0
    bad = 0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for p in range(start, values.shape[0], stride):
        v = abs(np.float64(values[p]))
        if math.isfinite(v):
            local = max(local, v)
        else:
            bad = 1
    if local > 0.0:
        cuda.atomic.max(bound, 0, local)
    if bad:
        cuda.atomic.max(nonfinite, 0, 1)


@_kernel
def _k_backward(img, grid, grad_out, pad, align_corners, scale, acc_fixed, acc_float, grad_grid):
    """Bilinear backward, one thread per output pixel.

    ``grad_grid`` is gathered (each thread writes its own pixel); image gradients go to
    ``acc_fixed`` (int64, units of ``1 / scale``) or, when not finite or ``scale`` is 0, to ``acc_float``; an empty
    ``acc_fixed`` (``(N, 0, 0, C)``) asks for no image gradient.
    """
    want_img = acc_fixed.shape[1] > 0
    h = img.shape[1]
    w = img.shape[2]
    cc = img.shape[3]
    n_img = grad_out.shape[0]
    ho = grad_out.shape[1]
    wo = grad_out.shape[2]
    per_img = ho * wo
    total = n_img * per_img
    multi = grid.shape[0] > 1
    if align_corners:
        sx = (w - 1) / 2.0
        sy = (h - 1) / 2.0
    else:
        sx = w / 2.0
        sy = h / 2.0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for p in range(start, total, stride):
        n, i, j = _pixel_of(p, per_img, wo)
        k = n if multi else 0
        gx = np.float64(grid[k, i, j, 0])
        gy = np.float64(grid[k, i, j, 1])
        if not (math.isfinite(gx) and math.isfinite(gy)):
            grad_grid[n, i, j, 0] = 0.0
            grad_grid[n, i, j, 1] = 0.0
            continue
        x = _unnormalize(gx, w, align_corners)
        y = _unnormalize(gy, h, align_corners)
        if not (math.isfinite(x) and math.isfinite(y)):  # past float64 in pixels: the forward pass fills it
            grad_grid[n, i, j, 0] = 0.0
            grad_grid[n, i, j, 1] = 0.0
            continue
        x, mx = _pad_coord_grad(x, w, pad, align_corners)
        y, my = _pad_coord_grad(y, h, pad, align_corners)
        if x < -1.0 or x > w or y < -1.0 or y > h:
            grad_grid[n, i, j, 0] = 0.0
            grad_grid[n, i, j, 1] = 0.0
            continue
        x0 = math.floor(x)
        y0 = math.floor(y)
        tx = x - x0
        ty = y - y0
        ix = int(x0)
        iy = int(y0)
        gxa = 0.0
        gya = 0.0
        for t in range(4):
            dyo = t // 2
            dxo = t - 2 * dyo
            cx = ix + dxo
            cy = iy + dyo
            if dxo == 0:
                wxx = 1.0 - tx
                dwx = -1.0
            else:
                wxx = tx
                dwx = 1.0
            if dyo == 0:
                wyy = 1.0 - ty
                dwy = -1.0
            else:
                wyy = ty
                dwy = 1.0
            if cx < 0 or cx > w - 1 or cy < 0 or cy > h - 1:
                continue
            wgt = wxx * wyy
            dot = 0.0
            for c in range(cc):
                g = np.float64(grad_out[n, i, j, c])
                dot += np.float64(img[n, cy, cx, c]) * g
                if not want_img:
                    continue
                contrib = wgt * g
                if math.isfinite(contrib) and scale > 0.0:
                    cuda.atomic.add(acc_fixed, (n, cy, cx, c), np.int64(math.floor(contrib * scale + 0.5)))
                else:
                    cuda.atomic.add(acc_float, (n, cy, cx, c), contrib)
            gxa += dot * dwx * wyy
            gya += dot * dwy * wxx
        grad_grid[n, i, j, 0] = gxa * (mx * sx)
        grad_grid[n, i, j, 1] = gya * (my * sy)


@_kernel
def _k_fixed_to_float(acc_fixed, inv_scale, acc_float, use_float, grad_img):
    """``grad_img = acc_fixed * inv_scale (+ acc_float)``, all 1-D views."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for p in range(start, grad_img.shape[0], stride):
        v = np.float64(acc_fixed[p]) * inv_scale
        if use_float:
            v += acc_float[p]
        grad_img[p] = v


# --------------------------------------------------------------------------- host drivers

#: One host driver (and the availability probe) at a time. numba-cuda initialises the driver and
#: loads a kernel's module on first use without a lock of its own: two threads probing at once can
#: see ``CUDA_ERROR_NOT_INITIALIZED`` (the second skips ``cuInit`` while the first is in it), and two
#: threads launching the same new kernel both load it, the second failing with "key already in
#: dictionary: <CUlibrary ...>" (``stntool warp --jobs`` did). Decoding and encoding still overlap;
#: the GPU runs one call's transfers and kernels at a time.
_DRIVER_LOCK = threading.RLock()


def _serialized(driver):
    @functools.wraps(driver)
    def locked(*args):
        with _DRIVER_LOCK:
            return driver(*args)
    return locked


def _device_view(a):
    if getattr(a, "__cuda_ndarray__", False):
        return a
    return cuda.as_cuda_array(a)


def _to_device(a, stream, dtype=None):
    """A device view of ``a``: device arrays are wrapped without a copy (their dtype must already be
    the one the kernel expects); host arrays are copied, as C-contiguous ``dtype``."""
    if is_device_array(a):
        return _device_view(a)
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype), stream=stream)


class _Output:
    """The device array a kernel writes, and how to hand it back into the caller's ``out``."""

    def __init__(self, out, stream):
        self.out = out
        self.stream = stream
        if is_device_array(out):
            self.dev = _device_view(out)
        else:
            self.dev = cuda.device_array(out.shape, dtype=out.dtype, stream=stream)

    def finish(self):
        if not is_device_array(self.out):
            if self.out.flags.c_contiguous:
                self.dev.copy_to_host(self.out, stream=self.stream)
            else:
                self.out[...] = self.dev.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return self.out


def _sampling_args(fill, is_int, maxv, stream, align_corners, pad):
    return int(pad), bool(align_corners), _to_device(fill, stream, np.float64), bool(is_int), float(maxv)


@_serialized
def _launch_warp_matrix(img, maps, out, mode, pad, align_corners, fill, is_int, maxv, projective):
    stream = cuda.stream()
    d_img = _to_device(img, stream)
    d_maps = _to_device(maps, stream, np.float64)
    res = _Output(out, stream)
    pad, align_corners, d_fill, is_int, maxv = _sampling_args(fill, is_int, maxv, stream, align_corners, pad)
    n, ho, wo, _ = res.dev.shape
    blocks, tpb = _launch_geometry(n * ho * wo)
    kernel = KERNELS_BY_MODE[("matrix", int(mode))]
    kernel[blocks, tpb, stream](d_img, d_maps, res.dev, pad, align_corners, d_fill, is_int, maxv, bool(projective))
    return res.finish()


@_serialized
def _launch_sample_grid(img, grid, out, mode, pad, align_corners, fill, is_int, maxv):
    stream = cuda.stream()
    d_img = _to_device(img, stream)
    d_grid = _to_device(grid, stream)
    res = _Output(out, stream)
    pad, align_corners, d_fill, is_int, maxv = _sampling_args(fill, is_int, maxv, stream, align_corners, pad)
    n, ho, wo, _ = res.dev.shape
    blocks, tpb = _launch_geometry(n * ho * wo)
    kernel = KERNELS_BY_MODE[("grid", int(mode))]
    kernel[blocks, tpb, stream](d_img, d_grid, res.dev, pad, align_corners, d_fill, is_int, maxv)
    return res.finish()


@_serialized
def _launch_warp_tps_lattice(img, lattice, step, singular, tables, radius, snx, sny, out, mode, pad, align_corners,
                             fill, is_int, maxv):
    stream = cuda.stream()
    d_img = _to_device(img, stream)
    d_lattice = _to_device(lattice, stream, np.float64)
    d_singular = _to_device(singular, stream, np.float64)
    d_tables = _to_device(tables, stream, np.float64)
    res = _Output(out, stream)
    pad, align_corners, d_fill, is_int, maxv = _sampling_args(fill, is_int, maxv, stream, align_corners, pad)
    n, ho, wo, _ = res.dev.shape
    blocks, tpb = _launch_geometry(n * ho * wo)
    kernel = KERNELS_BY_MODE[("tps", int(mode))]
    kernel[blocks, tpb, stream](d_img, d_lattice, int(step), d_singular, d_tables, float(radius), float(snx),
                                float(sny), res.dev, pad, align_corners, d_fill, is_int, maxv)
    return res.finish()


@_serialized
def _launch_points(kernel, n_points, args, outs):
    """Launch a per-point kernel over ``n_points``; ``outs`` are host arrays the kernel writes."""
    stream = cuda.stream()
    d_args = [_to_device(a, stream) if isinstance(a, np.ndarray) else a for a in args]
    d_outs = [cuda.device_array(o.shape, dtype=o.dtype, stream=stream) for o in outs]
    blocks, tpb = _launch_geometry(n_points)
    kernel[blocks, tpb, stream](*d_args, *d_outs)
    for o, d in zip(outs, d_outs):
        d.copy_to_host(o, stream=stream)
    stream.synchronize()
    return outs


def _fixed_point_scale(bound: float, n_out_pixels: int) -> tuple[float, float]:
    """``(scale, 1 / scale)``, powers of two, so that ``n_out_pixels * bound * scale <= 2**FIXED_BITS``; ``(0.0,
    0.0)`` when the sum is below about 2**-961, where such a scale passes float64's range: the kernel then adds
    in float64 (whose atomic sums' order, and so their last bits, may vary between runs)."""
    if not (bound > 0.0) or not math.isfinite(bound):
        return 1.0, 1.0
    total = bound * max(int(n_out_pixels), 1)
    if math.isfinite(total):
        e = math.frexp(total)[1]  # total < 2**e
    else:  # beyond float64 (a sum that overflows anyway): bound < 2**eb and n <= 2**nb
        e = math.frexp(bound)[1] + (max(int(n_out_pixels), 1) - 1).bit_length()
    if FIXED_BITS - e > 1023:
        return 0.0, 0.0
    return math.ldexp(1.0, FIXED_BITS - e), math.ldexp(1.0, e - FIXED_BITS)


@_serialized
def _grid_sample_backward(img, grid, grad_out, pad, align_corners, want_img):
    stream = cuda.stream()
    on_device = is_device_array(img)
    d_img = _to_device(img, stream)
    d_grid = _to_device(grid, stream)
    d_go = _to_device(grad_out, stream)
    n, h, w, c = d_img.shape
    _, ho, wo, _ = d_go.shape
    if want_img:
        # 1. a bound on |grad_out| fixes the fixed-point scale
        d_bound = cuda.to_device(np.zeros(1), stream=stream)
        d_nonfinite = cuda.to_device(np.zeros(1, dtype=np.int32), stream=stream)
        flat_go = d_go.reshape(d_go.size)
        blocks, tpb = _launch_geometry(flat_go.size)
        blocks = min(blocks, 1024)  # one atomic per thread at most: keep the thread count moderate
        _k_abs_bound[blocks, tpb, stream](flat_go, d_bound, d_nonfinite)
        bound = float(d_bound.copy_to_host(stream=stream)[0])
        use_float = bool(d_nonfinite.copy_to_host(stream=stream)[0])
        scale, inv_scale = _fixed_point_scale(bound, ho * wo)
        use_float = use_float or scale == 0.0
        acc_shape = (n, h, w, c)
    else:  # the grid's gradient only: no bound, empty accumulators (the kernel's signal), no conversion
        use_float, scale, inv_scale = False, 1.0, 1.0
        acc_shape = (n, 0, 0, c)
    # 2. scatter / gather
    acc_fixed = cuda.to_device(np.zeros(acc_shape, dtype=np.int64), stream=stream)
    acc_float = cuda.to_device(np.zeros(acc_shape if use_float else (1, 1, 1, 1)), stream=stream)
    d_grad_grid = cuda.device_array((n, ho, wo, 2), dtype=np.float64, stream=stream)
    blocks, tpb = _launch_geometry(n * ho * wo)
    _k_backward[blocks, tpb, stream](d_img, d_grid, d_go, int(pad), bool(align_corners), float(scale), acc_fixed,
                                     acc_float, d_grad_grid)
    # 3. back to float64
    d_grad_img = None
    if want_img:
        d_grad_img = cuda.device_array((n, h, w, c), dtype=np.float64, stream=stream)
        size = n * h * w * c
        blocks, tpb = _launch_geometry(size)
        _k_fixed_to_float[blocks, tpb, stream](acc_fixed.reshape(size), float(inv_scale),
                                               acc_float.reshape(acc_float.size), use_float, d_grad_img.reshape(size))
    if on_device:
        stream.synchronize()
        return d_grad_img, d_grad_grid
    grad_img = None if d_grad_img is None else d_grad_img.copy_to_host(stream=stream)
    grad_grid = d_grad_grid.copy_to_host(stream=stream)
    stream.synchronize()
    return grad_img, grad_grid


# --------------------------------------------------------------------------- public functions
# The kernel table (same signatures as stntool.sampling._cpu); the caller validates and allocates.
# Arrays may be host NumPy arrays or device arrays (anything with __cuda_array_interface__:
# numba, CuPy, PyTorch); device inputs are used in place, a device ``out`` is written in place.


def warp_matrix(img, maps, out, mode, pad, align_corners, fill, is_int, maxv, projective):
    """Fused warp: ``out[n, i, j] = img[n]`` sampled at ``maps[n] @ (j, i, 1)``.

    Parameters
    ----------
    img : (N, H, W, C) uint8 / uint16 / float32 / float64, C-contiguous
    maps : (M, 3, 3) float64 pixel maps ``in_pix_from_out_pix``, ``M`` 1 or N
    out : (N, Ho, Wo, C), same dtype as ``img``; written in place and returned
    mode : 0 nearest, 1 bilinear, 2 bicubic
    pad : 0 zeros, 1 border, 2 reflection, 3 constant
    align_corners : bool
    fill : (C,) float64, the value outside the image (zeros unless ``pad`` is constant)
    is_int, maxv : integer output (rounded half up, saturated to ``[0, maxv]``)
    projective : divide by the third homogeneous coordinate
    """
    return _launch_warp_matrix(img, maps, out, mode, pad, align_corners, fill, is_int, maxv, projective)


def sample_grid(img, grid, out, mode, pad, align_corners, fill, is_int, maxv):
    """Generic sampler (``grid_sample``): ``grid (M, Ho, Wo, 2)`` of input normalized ``(x, y)``, ``M`` 1 or N.

    Other parameters as in :func:`warp_matrix`.
    """
    return _launch_sample_grid(img, grid, out, mode, pad, align_corners, fill, is_int, maxv)


def warp_tps_lattice(img, lattice, step, singular, tables, radius, snx, sny, out, mode, pad, align_corners, fill,
                     is_int, maxv):
    """Fused thin-plate-spline warp from a :class:`stntool.tps_lattice.TpsPlan` (same arguments as the CPU kernel).

    ``lattice (Hc+2, Wc+2, 2)``, ``singular (K, 4)``, ``tables (Hc+2, Wc+2, K)``; other parameters
    as in :func:`warp_matrix`.
    """
    return _launch_warp_tps_lattice(img, lattice, step, singular, tables, radius, snx, sny, out, mode, pad,
                                    align_corners, fill, is_int, maxv)


def grid_sample_backward(img, grid, grad_out, pad, align_corners, want_img):
    """Gradients of bilinear ``grid_sample``: ``(grad_img (N, H, W, C), grad_grid (N, Ho, Wo, 2))`` float64
    (``grad_img`` None, and not computed, without ``want_img``).

    ``img (N, H, W, C)`` (float64 from the API; any supported dtype works), ``grid (M, Ho, Wo, 2)``
    with ``M`` 1 or N, ``grad_out (N, Ho, Wo, C)``. Host inputs give host results; a device ``img``
    gives device results.

    Deterministic: ``grad_grid`` is a gather, and ``grad_img`` is accumulated with 64-bit
    integer atomics in fixed point (scale ``2**62 / (Ho * Wo * max|grad_out|)``), whose sums do not
    depend on thread order. The quantisation error is below ``Ho * Wo * max|grad_out| * 2**-62``
    per contribution.
    """
    return _grid_sample_backward(img, grid, grad_out, pad, align_corners, bool(want_img))


def tps_lattice_points(lattice, step, singular, tables, radius, snx, sny, js, is_, out):
    """A TPS plan at integer output pixels ``js, is_ (P,)`` into the host array ``out (P, 2)`` float64
    (spec ``_reference.lattice_points``); used to check a plan's accuracy."""
    n = int(js.shape[0])
    if n == 0:
        return out
    _launch_points(_k_tps_lattice_points, n,
                   (np.ascontiguousarray(lattice, np.float64), int(step), np.ascontiguousarray(singular, np.float64),
                    np.ascontiguousarray(tables, np.float64), float(radius), float(snx), float(sny),
                    np.ascontiguousarray(js, np.int64), np.ascontiguousarray(is_, np.int64)), (out,))
    return out


def tps_eval_terms(points, centres, weights, affine, out, terms):
    """One thin-plate spline at ``points (P, 2)`` into the host arrays ``out (P, 2)`` and ``terms (P, n)``
    (each radial term); ``weights (n, 2)``, ``affine (3, 2)``, all float64."""
    n = int(points.shape[0])
    if n == 0:
        return out, terms
    _launch_points(_k_tps_eval_terms, n,
                   tuple(np.ascontiguousarray(a, np.float64) for a in (points, centres, weights, affine)),
                   (out, terms))
    return out, terms


# --------------------------------------------------------------------------- availability

_probe_result: tuple[bool, str | None] | None = None


def _probe() -> tuple[bool, str | None]:
    if _probe_result is None:
        with _DRIVER_LOCK:
            _probe_locked()
    return _probe_result


def _probe_locked() -> None:
    global _probe_result
    if _probe_result is None:
        try:
            if _simulator_enabled():
                _probe_result = (True, None)
            elif not cuda.is_available():
                _probe_result = (False, _driver_error() or "no CUDA GPU or driver was found")
            else:
                from numba.cuda.cudadrv import nvvm

                if not nvvm.is_available():
                    _probe_result = (False, "libNVVM (the CUDA compiler library) was not found; "
                                            "install the CUDA toolkit libraries, e.g. pip install 'numba-cuda[cu12]'")
                else:
                    _probe_result = (True, None)
        except Exception as exc:  # any driver / binding failure means "not usable"
            _probe_result = (False, _said(exc))


def _driver_error() -> str | None:
    try:
        cuda.current_context()
    except Exception as exc:
        return _said(exc)
    return None


def _said(exc: Exception) -> str:
    """What a driver or binding failure says, for a user: its message (numba-cuda's say what is missing), or the
    exception's name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__


def is_available() -> bool:
    """True when a CUDA GPU can run the kernels (or the simulator is on). Probes once, on first call."""
    return _probe()[0]


def unavailable_reason() -> str | None:
    """Why :func:`is_available` is False, or None when it is True."""
    return _probe()[1]
