"""Where a warp record reads the input: the map ``in_pix_from_out_pix`` of a :class:`~stntool.records.WarpSpec`.

Every record is a map from output pixels to input pixels (see :mod:`stntool.coords`):

* θ (affine or projective): ``pixel_map_from_theta``, exact.
* a thin-plate spline: the spline, solved in the frame of its points (see :func:`stntool.warp_tps`).
* either of those plus an **elastic** displacement (:class:`~stntool.records.Elastic`): the base map
  plus a smooth random field in input pixels, both read on a lattice of output pixels every
  ``step`` pixels and interpolated with Catmull-Rom weights (the fused TPS kernels' lattice, so the
  warp is one pass over the output, with no per-pixel grid in memory).

The elastic field is Simard's and Albumentations' ``ElasticTransform(alpha, sigma,
noise_distribution="uniform")``: uniform noise in [-1, 1] per pixel and per axis, smoothed by a
Gaussian of standard deviation ``sigma`` pixels (truncated at 4 sigma, edges replicated) and
multiplied by ``alpha``. A field that smooth is band-limited, so it is drawn on the lattice itself:
nodes ``step = max(1, sigma // 2)`` pixels apart carry noise scaled by ``1 / step`` (the sum of the
``step²`` pixels' noise they stand for, per unit weight), smoothed there by a Gaussian of ``sigma /
step`` nodes. The displacement has the same standard deviation and correlation length as the
per-pixel recipe away from the edges (within about ``2 sigma`` of them, that recipe's replicated edge
repeats single pixels' noise: its field moves more there, up to twice as much at the border), at
``1 / step²`` of its cost. The noise comes from ``PCG64(seed)`` raw doubles
(``Generator.random``) and the weights from Python's ``math.exp``, so a record replays the same
field on every machine.

:func:`in_from_out` evaluates any record's map at real-valued output points (what label transport
and ``keep_inside`` need); :func:`lattice_plan` builds what the kernels read for an elastic record.
"""

from __future__ import annotations

import math

import numpy as np

from .coords import as_hw
from .errors import InvalidArgumentError

__all__ = ["lattice_step", "elastic_displacement", "lattice_plan", "lattice_map", "in_from_out", "base_map",
           "lattice_shape"]


#: The most lattice nodes an elastic field may have (2 GiB of float64 displacements, about 4 * 10**8 output
#: pixels at sigma 1): beyond it a record is refused, not a MemoryError halfway.
_MAX_NODES = 1 << 27


def lattice_step(sigma: float) -> int:
    """Spacing in output pixels of the nodes an elastic field of this ``sigma`` is drawn on."""
    return max(1, int(sigma // 2))


def _lattice_nodes(elastic, out_hw) -> tuple:
    """``(step, Hc, Wc)`` of an elastic field's lattice for an output of ``out_hw``; :class:`InvalidArgumentError`
    when it would have more than :data:`_MAX_NODES` nodes (apron included)."""
    step = lattice_step(elastic.sigma)
    hc, wc = lattice_shape(out_hw, step)
    if (hc + 2) * (wc + 2) > _MAX_NODES:
        raise InvalidArgumentError(f"the elastic field of an output of {out_hw[0]}x{out_hw[1]} at sigma "
                                   f"{elastic.sigma:g} needs {(hc + 2) * (wc + 2)} lattice nodes (at most "
                                   f"{_MAX_NODES})")
    return step, hc, wc


def lattice_shape(out_hw, step: int) -> tuple:
    """``(Hc, Wc)``: nodes per axis covering an output of ``out_hw`` (without the apron), as TPS plans use."""
    ho, wo = out_hw
    return max(2, -(-(ho - 1) // step) + 1), max(2, -(-(wo - 1) // step) + 1)


def _gaussian_taps(sigma_nodes: float) -> np.ndarray:
    radius = max(1, int(math.ceil(4.0 * sigma_nodes)))
    w = [math.exp(-0.5 * (k / sigma_nodes) ** 2) for k in range(-radius, radius + 1)]
    total = math.fsum(w)
    return np.array([v / total for v in w])


def _smooth(field: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable convolution of ``field (..., H, W)`` along its last two axes, edges replicated, fixed order.

    The spec of the elastic field's smoothing; :mod:`stntool._smoothing` is its compiled twin, which
    :func:`elastic_displacement` runs (the tests check they give the same bits)."""
    r = len(taps) // 2
    for axis in (-2, -1):
        n = field.shape[axis]
        pad = [(0, 0)] * field.ndim
        pad[axis] = (r, r)
        p = np.pad(field, pad, mode="edge")
        acc = np.zeros_like(field)
        term = np.empty_like(field)
        window = [slice(None)] * field.ndim
        for k, w in enumerate(taps):
            window[axis] = slice(k, k + n)
            np.multiply(p[tuple(window)], w, out=term)
            acc += term
        field = acc
    return field


def elastic_displacement(elastic, out_hw, base=None) -> tuple:
    """``(step, d)``: the elastic field of ``elastic`` at the lattice nodes of an output of ``out_hw``.

    ``d`` is ``(Hc + 2, Wc + 2, 2)`` float64, the ``(dx, dy)`` displacement in input pixels at output
    pixels ``((b - 1) step, (a - 1) step)`` (one apron node on every side, as :class:`stntool.TpsPlan`).
    With ``base``, a float64 pixel map (2x3 affine, 3x3 projective), ``d`` is that map at the nodes plus
    the field, added as the field is made, with the bits of :func:`_theta_points` plus the field.
    """
    out_hw = as_hw(out_hw)
    step, hc, wc = _lattice_nodes(elastic, out_hw)
    # noise U(-1, 1) / step: (Generator(PCG64(seed)).random((2, Hc + 2, Wc + 2)) * 2 - 1) / step, smoothed by the
    # compiled twin of _smooth, times alpha, as (H, W, 2) (the same bits; both drawn in one pass per channel)
    from ._smoothing import noise_field

    return step, noise_field(elastic.seed, (hc + 2, wc + 2), step, _gaussian_taps(elastic.sigma / step), elastic.alpha,
                             base=base)


def base_map(spec, in_hw, out_hw):
    """A function of output pixel points ``(P, 2)`` -> input pixel points: the record's θ or spline (without its
    elastic field), exact."""
    from .transforms import pixel_map_from_theta

    if spec.tps is None:
        m = pixel_map_from_theta(np.array(spec.theta, dtype=np.float64), in_hw, out_hw, spec.align_corners)

        def theta_map(p):
            q = np.empty(p.shape)
            q[:, 0], q[:, 1] = _theta_points(m, len(spec.theta) == 3, p[:, 0], p[:, 1])
            return q

        return theta_map
    from .tps_lattice import _frame_matrices

    t = spec.tps
    tps = t.spline()
    m_out, m_in = _frame_matrices("pixel" if not t.normalized else "norm", in_hw, out_hw, spec.align_corners)

    def tps_map(p):
        s = p * [m_out[0, 0], m_out[1, 1]] + [m_out[0, 2], m_out[1, 2]]
        v = tps(s)
        return v * [m_in[0, 0], m_in[1, 1]] + [m_in[0, 2], m_in[1, 2]]

    return tps_map


def _theta_points(m, projective: bool, x, y) -> tuple:
    """``(x', y')``: the 3x3 pixel map ``m`` at points ``x``, ``y`` (arrays that broadcast), each coordinate
    ``(x m[r, 0] + y m[r, 1]) + m[r, 2]`` in that order, divided by the third row's when ``projective``.

    Element by element, with no matrix product: a BLAS product's rounding depends on its kernel (fused
    multiply-adds or not), so this gives the same bits on every machine."""
    qx = x * m[0, 0] + y * m[0, 1] + m[0, 2]
    qy = x * m[1, 0] + y * m[1, 1] + m[1, 2]
    if projective:
        w = x * m[2, 0] + y * m[2, 1] + m[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            qx, qy = qx / w, qy / w
    return qx, qy


def _lattice_denominators(m, step, hc, wc) -> list:
    """The denominator of the pixel map ``m`` (3x3) at the corners of an elastic field's lattice (nodes from
    ``-step`` to ``Wc step``, ``Hc step``). It is linear over the lattice: where it changes sign between two
    corners, the horizon crosses the lattice, and interpolating across it is wrong even where no node lies on it."""
    xs, ys = (-float(step), float(wc * step)), (-float(step), float(hc * step))
    return [x * m[2, 0] + y * m[2, 1] + m[2, 2] for x in xs for y in ys]


def horizon_clear_of_lattice(spec, in_hw, margin: float = 1e-6) -> bool:
    """Whether a projective θ record's horizon keeps clear of its elastic field's lattice (:func:`lattice_plan`
    refuses records where it does not): the map's denominator has one sign at the lattice's corners, each at
    least ``margin`` of the largest in size. True for records without a field or a projective θ."""
    if spec.elastic is None or spec.tps is not None or len(spec.theta) != 3:
        return True
    from .transforms import pixel_map_from_theta

    in_hw = as_hw(in_hw)
    out_hw = spec.out_hw or in_hw
    try:
        step, hc, wc = _lattice_nodes(spec.elastic, out_hw)
    except InvalidArgumentError:  # a lattice too large to make: warping the record says so
        return True
    m = pixel_map_from_theta(np.array(spec.theta, dtype=np.float64), in_hw, out_hw, spec.align_corners)
    w = np.array(_lattice_denominators(m, step, hc, wc))
    return bool(np.all(np.isfinite(w)) and (np.all(w > 0) or np.all(w < 0))
                and np.abs(w).min() >= margin * np.abs(w).max())


def lattice_plan(spec, in_hw):
    """The :class:`stntool.TpsPlan` an elastic record warps with: base map plus field at the nodes, no radial terms."""
    from .tps_lattice import TpsPlan

    if spec.elastic is None:
        raise InvalidArgumentError("lattice_plan needs a record with an elastic field")
    in_hw = as_hw(in_hw)
    out_hw = spec.out_hw or in_hw
    step, hc, wc = _lattice_nodes(spec.elastic, out_hw)  # too many: refused before the base map is looked at
    if spec.tps is None:  # θ: the nodes' input pixels added as the field is made, the same bits as base_map's
        from .transforms import pixel_map_from_theta

        m = pixel_map_from_theta(np.array(spec.theta, dtype=np.float64), in_hw, out_hw, spec.align_corners)
        if len(spec.theta) == 3:
            w = _lattice_denominators(m, step, hc, wc)
            if min(w) <= 0.0 <= max(w):
                raise InvalidArgumentError("the elastic record's base map has its horizon in view (a projective "
                                           "θ's horizon crosses the output or the field's lattice, which reaches "
                                           "half a sigma beyond it)")
        step, lattice = elastic_displacement(spec.elastic, out_hw, base=m if len(spec.theta) == 3 else m[:2])
    else:
        step, lattice = elastic_displacement(spec.elastic, out_hw)
        nodes = np.empty(lattice.shape)  # the nodes' output pixels
        nodes[..., 0] = np.arange(-1, lattice.shape[1] - 1) * float(step)
        nodes[..., 1] = (np.arange(-1, lattice.shape[0] - 1) * float(step))[:, None]
        lattice += base_map(spec, in_hw, out_hw)(nodes.reshape(-1, 2)).reshape(lattice.shape)
    if not np.isfinite(lattice).all():
        raise InvalidArgumentError("the elastic record's base map is not finite on its lattice (horizon in view)")
    return TpsPlan._adopting(lattice, step, np.zeros((0, 4)), np.zeros(lattice.shape[:2] + (0,)), -1.0, np.ones(2),
                             0.0, in_hw=in_hw)


def lattice_map(plan, pts_out) -> np.ndarray:
    """A radial-term-free lattice plan's map at real-valued output pixel points ``(P, 2)``.

    At integer points this is what the kernels compute; between them the same Catmull-Rom
    interpolation continues smoothly (points outside the output extrapolate from the edge cells).
    """
    from .sampling._reference import catmull_rom_weights

    p = np.asarray(pts_out, dtype=np.float64).reshape(-1, 2)
    lat, step = plan.lattice, plan.step
    hc, wc = lat.shape[0] - 2, lat.shape[1] - 2
    bad = ~np.all(np.isfinite(p), axis=1)
    p = np.where(bad[:, None], 0.0, p)  # non-finite points give NaN (below), not an index error
    fy, fx = p[:, 1] / step, p[:, 0] / step
    a = np.clip(np.floor(fy), 0, hc - 2).astype(np.int64)
    b = np.clip(np.floor(fx), 0, wc - 2).astype(np.int64)
    wy, wx = catmull_rom_weights(fy - a), catmull_rom_weights(fx - b)
    acc = np.zeros((len(p), 2))
    for q in range(4):
        for r in range(4):
            acc += (wy[:, q] * wx[:, r])[:, None] * lat[a + q, b + r]
    acc[bad] = np.nan
    return acc


def record_in_hw(spec, in_hw=None) -> tuple:
    """The input size a record is applied at: ``in_hw``, else the record's ``in_hw``; the two must agree when
    both are given (:class:`InvalidArgumentError` otherwise, and when neither is)."""
    if in_hw is None:
        if spec.in_hw is None:
            raise InvalidArgumentError("the input size is needed: pass in_hw or a record with in_hw")
        in_hw = spec.in_hw
    in_hw = as_hw(in_hw)
    if spec.in_hw is not None and tuple(spec.in_hw) != in_hw:
        raise InvalidArgumentError(f"the warp record is for a {spec.in_hw[1]}x{spec.in_hw[0]} input but the input is "
                                   f"{in_hw[1]}x{in_hw[0]}")
    return in_hw


def in_from_out(spec, pts_out, in_hw=None) -> np.ndarray:
    """Input pixel points read by output pixel points ``pts_out`` (``(..., 2)``, real-valued) under ``spec``.

    θ and splines are evaluated exactly (the TPS kernels read the spline within their plan's
    tolerance, 0.01 px); elastic records through their lattice (:func:`lattice_map`). Points where a
    projective map has no image (its horizon) come back as NaN or infinity. ``in_hw``: the input's size
    (default ``spec.in_hw``; when both are given they must agree), as
    :func:`stntool.labels.out_from_in` takes it.
    """
    in_hw = record_in_hw(spec, in_hw)
    if spec.theta is None and spec.tps is None:
        raise InvalidArgumentError("the warp record has no theta or tps yet")
    p = np.asarray(pts_out, dtype=np.float64)
    flat = p.reshape(-1, 2)
    if spec.elastic is not None:
        q = lattice_map(lattice_plan(spec, in_hw), flat)
    else:
        q = base_map(spec, in_hw, spec.out_hw or in_hw)(flat)
    return q.reshape(p.shape)
