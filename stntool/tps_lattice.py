"""TPS plans: what the fused thin-plate-spline kernels read, and how a plan is built and cached.

A plan is a Catmull-Rom lattice of the exact map ``in_pix_from_out_pix`` (the spline of
:mod:`stntool.tps`, solved in float64 in the frame its points are given in, see :func:`tps_plan`)
plus, per control point, the exact radial term near it, where interpolation cannot follow
``r² log r²``. :func:`tps_plan` builds the coarsest lattice within the requested tolerance and
caches it; a cached plan is immutable (read-only arrays, frozen attributes), so no caller can
change what another one reads.

Plans are built by the kernels of the backend that will warp with them (the kernel table of
:mod:`stntool.sampling`: ``tps_eval_terms`` evaluates the spline and its radial terms at the
lattice nodes and probe points, ``tps_lattice_points`` evaluates the plan at the probes), so a
plan's accuracy is checked with the arithmetic its warp uses. Every backend builds on the
device it runs on: NumPy, the CPU, or the GPU.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .coords import as_flag, as_hw, norm_from_pixel, pixel_from_norm
from .errors import InvalidArgumentError
from .grids import make_tps

__all__ = ["TpsPlan", "tps_plan"]

_ARRAYS = ("lattice", "singular", "tables", "norm_scale")
#: The most float64 values a plan's lattice and radial tables may hold (2 GiB): beyond it a plan is refused.
MAX_PLAN_VALUES = 1 << 28


def _frozen_array(a, adopt: bool = False) -> np.ndarray:
    """A read-only float64 C-contiguous copy, seen through a read-only view (whose flag cannot be turned back on;
    the owner's, reached on purpose through ``.base``, can: read-only guards against mistakes, not against that).

    ``adopt``: ``a`` itself is frozen instead of a copy when it is such an array and owns its memory, or is
    a view of an array that does (the caller made it and keeps no other reference to it or its base)."""
    base = getattr(a, "base", None)
    if (adopt and isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
            and (base is None or (isinstance(base, np.ndarray) and base.base is None))):
        if base is not None:
            base.flags.writeable = False
        owner = a
    else:
        owner = np.array(a, dtype=np.float64, order="C", copy=True)
    owner.flags.writeable = False
    view = owner.view()
    view.flags.writeable = False
    return view


class TpsPlan:
    """What the fused TPS kernels read: a Catmull-Rom lattice of the exact map plus exact radial terms.

    Immutable: attributes cannot be set and the arrays are read-only copies, so a cached plan can
    be shared safely.

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
        Output pixel -> spline frame scale, for the exact radial terms: the output's pixel -> normalized
        scale for a spline solved in normalized coordinates, ``(1, 1)`` for one solved in pixels.
    max_error : float
        Largest deviation from the exact spline found at the probe points (each cell's centre and quarter
        points, rings around the control points: :func:`_build_tps_plan`), in pixels.
    in_hw : (int, int) or None
        The input size the lattice's coordinates were computed for, where they depend on it (a spline of
        normalized points, an elastic record's map); None where any input size reads the same pixels.
    """

    __slots__ = ("lattice", "step", "singular", "tables", "radius", "norm_scale", "max_error", "in_hw")

    def __init__(self, lattice, step, singular, tables, radius, norm_scale, max_error, _adopt=False, in_hw=None):
        init = object.__setattr__
        init(self, "in_hw", None if in_hw is None else as_hw(in_hw))
        init(self, "lattice", _frozen_array(lattice, _adopt))
        init(self, "step", int(step))
        init(self, "singular", _frozen_array(singular, _adopt))
        init(self, "tables", _frozen_array(tables, _adopt))
        init(self, "radius", float(radius))
        init(self, "norm_scale", _frozen_array(norm_scale, _adopt))
        init(self, "max_error", float(max_error))

    @classmethod
    def _adopting(cls, lattice, step, singular, tables, radius, norm_scale, max_error, in_hw=None):
        """A plan that freezes the arrays it is given instead of copying them, where they own their memory:
        for arrays just made by the caller, which keeps no other reference to them."""
        return cls(lattice, step, singular, tables, radius, norm_scale, max_error, _adopt=True, in_hw=in_hw)

    def __setattr__(self, name, value):
        raise AttributeError(f"TpsPlan is immutable (cannot set {name!r})")

    def __delattr__(self, name):
        raise AttributeError(f"TpsPlan is immutable (cannot delete {name!r})")

    def __repr__(self):
        return (f"TpsPlan(lattice={self.lattice.shape}, step={self.step}, control_points={len(self.singular)}, "
                f"radius={self.radius}, max_error={self.max_error:.3g})")

    def kernel_args(self) -> tuple:
        """``(lattice, step, singular, tables, radius, snx, sny)``: the plan as the kernels take it."""
        return (self.lattice, self.step, self.singular, self.tables, self.radius, float(self.norm_scale[0]),
                float(self.norm_scale[1]))

    def points(self, js, is_):
        """Input pixel coordinates for output pixels ``(js, is_)`` (integer arrays), as the kernels compute them."""
        from .sampling import _reference

        return _reference.lattice_points(self.lattice, self.step, self.singular, self.tables, self.radius,
                                         self.norm_scale, js, is_)

    def dense(self, out_hw):
        """The whole ``(H, W, 2)`` map of input pixel coordinates."""
        ii, jj = np.meshgrid(np.arange(out_hw[0]), np.arange(out_hw[1]), indexing="ij")
        return self.points(jj, ii)


def _eval_tps_terms(k, tps, out_pix_xy, m_out):
    """Spline at output pixel points, by the backend kernels ``k``: ``(values (P, 2) in the spline's
    input frame, radial terms (P, n))``; ``m_out`` maps output pixels to the spline's output frame."""
    pts = np.ascontiguousarray(out_pix_xy * [m_out[0, 0], m_out[1, 1]] + [m_out[0, 2], m_out[1, 2]])
    vals = np.empty((len(pts), 2))
    terms = np.empty((len(pts), len(tps.centres)))
    k.tps_eval_terms(pts, np.ascontiguousarray(tps.centres), np.ascontiguousarray(tps.weights),
                     np.ascontiguousarray(tps.affine), vals, terms)
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
    # where a ring leaves the output (an output a few pixels thick, a point near its edge), the output pixels
    # nearest its part outside: the edge pixels just outside the window, which the ring would miss
    # each pixel once (sorted by row, then column): unique int64 keys, a tenth of np.unique(axis=0)'s time
    keys = np.unique(np.clip(p[:, 1], 0, ho - 1) * np.int64(wo) + np.clip(p[:, 0], 0, wo - 1))
    return np.column_stack([keys % wo, keys // wo])


def _frame_matrices(frame, in_hw, out_hw, align_corners):
    """``(spline_from_out_pix, in_pix_from_spline)`` for a spline solved in ``frame`` ("norm" or "pixel")."""
    if frame == "pixel":
        return np.eye(3), np.eye(3)
    return norm_from_pixel(out_hw, align_corners), pixel_from_norm(in_hw, align_corners)


#: A lattice is kept when its largest error at the probe points is within this share of ``tol``: the probes
#: sit where the error peaks (:func:`_build_tps_plan`), so the error anywhere stays within ``tol`` (measured:
#: over every pixel of 369 random splines at most 0.84 ``tol``, 1.0-1.05 times the probes' largest).
TOL_SHARE = 0.8


def _build_tps_plan(tps, in_hw, out_hw, align_corners, tol, backend, frame="norm") -> TpsPlan:
    """Coarsest power-of-two lattice whose upsampling is within ``TOL_SHARE * tol`` px of the spline at the probe
    points: in every cell its centre and the four points a quarter step in from its corners, and rings around
    the control points.

    Bilinear or cubic upsampling alone cannot follow ``r² log r²`` near a control point (its second
    derivative is logarithmically singular there), so within two lattice steps of each control
    point the radial term is evaluated exactly; what remains is smooth and Catmull-Rom upsampling
    of it converges fast. ``tol=0`` evaluates the spline at every pixel. ``backend`` is a concrete
    backend name; its kernels evaluate the spline and the plan. ``frame`` is the frame the spline
    was solved in: ``"norm"`` (normalized output -> normalized input) or ``"pixel"`` (output pixels ->
    input pixels; then the radial terms are evaluated in output pixels with unit scale and the weights
    are already in input pixels).
    """
    from .sampling import kernels

    k = kernels(backend)
    ho, wo = out_hw
    m_out, m_in = _frame_matrices(frame, in_hw, out_hw, align_corners)
    in_scale = np.array([m_in[0, 0], m_in[1, 1]])
    in_off = np.array([m_in[0, 2], m_in[1, 2]])
    norm_scale = np.array([m_out[0, 0], m_out[1, 1]])
    degenerate = norm_scale[0] == 0.0 or norm_scale[1] == 0.0  # a one-pixel axis with align_corners=True
    step = 1 if (tol <= 0 or degenerate) else max(2, min(32, 1 << int(math.log2(max(2, max(ho, wo) // 64)))))
    n_ctrl = len(tps.centres)
    if not degenerate:
        m_out_inv = pixel_from_norm(out_hw, align_corners) if frame == "norm" else np.eye(3)
        centres_pix = tps.centres * [m_out_inv[0, 0], m_out_inv[1, 1]] + [m_out_inv[0, 2], m_out_inv[1, 2]]
    else:
        centres_pix = np.zeros((n_ctrl, 2))
    singular = np.ascontiguousarray(np.hstack([centres_pix, tps.weights * in_scale]))
    planned_for = in_hw if frame == "norm" else None  # a pixel spline's lattice holds input pixels of any size
    while True:
        hc = max(2, -(-(ho - 1) // step) + 1)
        wc = max(2, -(-(wo - 1) // step) + 1)
        if (hc + 2) * (wc + 2) * (n_ctrl + 2) > MAX_PLAN_VALUES:  # refused, not a MemoryError (or worse) halfway
            raise InvalidArgumentError(f"a TPS plan for an output of {ho}x{wo} with {n_ctrl} points needs "
                                       f"{(hc + 2) * (wc + 2) * (n_ctrl + 2)} values at {step} px per node (at most "
                                       f"{MAX_PLAN_VALUES}; a larger tol or fewer points need fewer)")
        ys, xs = np.meshgrid(np.arange(-1, hc + 1) * float(step), np.arange(-1, wc + 1) * float(step), indexing="ij")
        vals, terms = _eval_tps_terms(k, tps, np.stack([xs.ravel(), ys.ravel()], -1), m_out)
        lattice = np.ascontiguousarray((vals * in_scale + in_off).reshape(hc + 2, wc + 2, 2))
        tables = np.ascontiguousarray(terms.reshape(hc + 2, wc + 2, n_ctrl))
        if step == 1:
            return TpsPlan(lattice, 1, singular, tables, -1.0, norm_scale, 0.0, in_hw=planned_for)
        radius = 2.0 * step
        # probes: in every cell its centre and the four points a quarter of a step in from its corners, and
        # square rings just outside each control point's exact window, where the uncorrected radial term's
        # error peaks. Catmull-Rom reproduces quadratics, so its error in a cell is mostly a c(tx) + b c(ty)
        # with c(t) = t (1 - t) (1 - 2 t) from the cubic terms along each axis: zero half way between nodes
        # (the centre sees only the smaller terms), largest near a quarter step from a node, where the four
        # points see |a| + |b| and the higher terms' part that is not symmetric (two of them were not enough:
        # 1.08 tol on one of 369 random splines). (A 2-px lattice has no quarter points: its cells' other
        # pixels, half way along their sides, instead.)
        probes = [_ring_probes(centres_pix, radius, step, out_hw)]
        q, half = step // 4, step // 2
        for oi, oj in (((half, half), (q, q), (q, step - q), (step - q, q), (step - q, step - q)) if step > 2
                       else ((1, 1), (0, 1), (1, 0))):
            pii, pjj = np.meshgrid(np.minimum(np.arange(hc - 1) * step + oi, ho - 1),
                                   np.minimum(np.arange(wc - 1) * step + oj, wo - 1), indexing="ij")
            probes.append(np.stack([pjj.ravel(), pii.ravel()], -1))
        probe = np.ascontiguousarray(np.concatenate(probes).astype(np.int64))
        approx = np.empty((len(probe), 2))
        k.tps_lattice_points(lattice, step, singular, tables, radius, float(norm_scale[0]), float(norm_scale[1]),
                             np.ascontiguousarray(probe[:, 0]), np.ascontiguousarray(probe[:, 1]), approx)
        exact, _ = _eval_tps_terms(k, tps, probe.astype(np.float64), m_out)
        err = float(np.abs(approx - (exact * in_scale + in_off)).max())
        if err <= TOL_SHARE * tol:
            return TpsPlan(lattice, step, singular, tables, radius, norm_scale, err, in_hw=planned_for)
        step //= 2


@functools.lru_cache(maxsize=32)
def _tps_plan_cached(src_key, dst_key, n, in_hw, out_hw, align_corners, regularization, tol, backend, frame):
    src = np.frombuffer(src_key).reshape(n, 2)
    dst = np.frombuffer(dst_key).reshape(n, 2)
    return _build_tps_plan(make_tps(src, dst, regularization), in_hw, out_hw, align_corners, tol, backend, frame)


def _points(points, what):
    from .sampling import check_real

    check_real(points, what)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise InvalidArgumentError(f"TPS points must be (n, 2) arrays of (x, y); got {p.shape}")
    return p


def tps_plan(src_points, dst_points, in_hw, out_hw=None, align_corners: bool = False, regularization: float = 0.0,
             normalized: bool = False, tol: float = 0.01, backend: str = "cpu") -> TpsPlan:
    """Plan a fused TPS warp: see :class:`TpsPlan`.

    The spline is solved in the frame of its points (see :func:`stntool.warp_tps`): with pixel
    points (``normalized=False``) it maps output pixels to input pixels, like scikit-image's, OpenCV's
    and Albumentations' thin-plate splines, and ``align_corners`` only affects padding; with
    normalized points it maps output normalized to input normalized coordinates (the STN form of
    :func:`stntool.tps_grid`).

    Plans are cached (per points, sizes, options and backend), so warping many images with the
    same points builds the plan once; the cached plan is immutable. ``backend`` (``"numpy"``,
    ``"cpu"``, ``"cuda"`` or ``"auto"``) chooses the kernels that build it.
    """
    from .sampling import resolve_backend

    in_hw = as_hw(in_hw)
    out_hw = in_hw if out_hw is None else as_hw(out_hw)
    src = np.ascontiguousarray(_points(src_points, "src_points"))
    dst = np.ascontiguousarray(_points(dst_points, "dst_points"))
    if src.shape != dst.shape:
        raise InvalidArgumentError(f"src_points and dst_points must have the same shape; got {src.shape} and {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InvalidArgumentError("TPS points contain NaN or infinity")
    for what, value in (("tol", tol), ("regularization", regularization)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidArgumentError(f"{what} must be a number, got {value!r}")
    if not (tol >= 0):
        raise InvalidArgumentError(f"tol must be >= 0, got {tol!r}")
    name = resolve_backend(backend)
    frame = "norm" if as_flag(normalized, "normalized") else "pixel"
    try:
        return _tps_plan_cached(src.tobytes(), dst.tobytes(), len(src), in_hw, out_hw, as_flag(align_corners),
                                float(regularization), float(tol), name, frame)
    except MemoryError:
        raise InvalidArgumentError(f"a TPS plan for an output of {out_hw[0]}x{out_hw[1]} does not fit in memory") \
            from None
