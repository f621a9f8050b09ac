"""Thin-plate splines (Bookstein 1989), as used by spatial transformer networks.

A thin-plate spline ``f: R^2 -> R^2`` through control points ``c_i`` with values ``v_i`` is

    f(p) = a0 + a1·x + a2·y + Σ_i w_i · U(|p - c_i|),    U(r) = r² log r²,  U(0) = 0,

with ``(w, a)`` solving Bookstein's symmetric system over one set of centres,

    [ K + λI   P ] [w]   [v]
    [ Pᵀ       0 ] [a] = [0],     K_ij = U(|c_i - c_j|),  P_i = (1, x_i, y_i),

in float64. ``λ >= 0`` trades exact interpolation for smoothness. For warping (Jaderberg et
al. 2015, section 3.2) the centres are control points in the **output** frame and the values
are their positions in the **input** frame, so ``f`` is ``in_from_out`` like θ.
"""

from __future__ import annotations

import numpy as np

from .coords import finite_number, host_array
from .errors import DegenerateError, InvalidArgumentError

#: Largest control-point coordinate (either frame): far beyond any image, well within float64's squares.
TPS_COORD_LIMIT = 1e15
#: The most control points a spline takes: its dense system of (n + 3)² float64 values is 200 MB there, solved in
#: seconds; more would take gigabytes and minutes (a record from elsewhere, or points meant to be a dense map).
MAX_TPS_POINTS = 5000

__all__ = ["ThinPlateSpline", "tps_kernel", "regular_control_points"]


def tps_kernel(points_xy: np.ndarray, centres_xy: np.ndarray) -> np.ndarray:
    """``U(|p - c|)`` for every point/centre pair: ``(M, 2), (n, 2) -> (M, n)`` float64."""
    p = np.asarray(points_xy, dtype=np.float64)
    c = np.asarray(centres_xy, dtype=np.float64)
    d2 = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = d2 * np.log(d2)
    u[d2 == 0.0] = 0.0
    return u


def regular_control_points(rows: int, cols: int | None = None, extent: float = 1.0) -> np.ndarray:
    """``rows x cols`` control points evenly spaced over ``[-extent, extent]²`` (normalized), row-major.

    The STN paper places the TPS control points on such a grid in the output frame.
    """
    cols = rows if cols is None else cols
    if rows < 2 or cols < 2:
        raise InvalidArgumentError("a control-point grid needs at least 2 x 2 points")
    ys, xs = np.meshgrid(np.linspace(-extent, extent, rows), np.linspace(-extent, extent, cols), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


class ThinPlateSpline:
    """A fitted thin-plate spline ``R^2 -> R^2``.

    Parameters
    ----------
    centres : (n, 2) array
        Control points (the domain, e.g. output-frame points), ``n >= 3``, not all collinear,
        no duplicates.
    values : (n, 2) array
        Where each control point maps to (e.g. its input-frame position).
    regularization : float
        ``λ >= 0``; 0 interpolates exactly.

    Attributes
    ----------
    weights : (n, 2) float64
        Radial weights ``w``.
    affine : (3, 2) float64
        Affine part ``a`` (rows: constant, x, y).

    Example
    -------
    >>> import numpy as np
    >>> c = np.array([[-1., -1], [1, -1], [-1, 1], [1, 1], [0, 0]])
    >>> tps = ThinPlateSpline(c, c + [0.1, 0.0])
    >>> bool(np.allclose(tps(c), c + [0.1, 0.0]))
    True
    """

    def __init__(self, centres, values, regularization: float = 0.0):
        c = np.asarray(host_array(centres, "control points"), dtype=np.float64)
        v = np.asarray(host_array(values, "control point values"), dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 2 or v.shape != c.shape:
            raise InvalidArgumentError(f"control points and values must both be (n, 2); got {c.shape} and {v.shape}")
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(v))):
            raise InvalidArgumentError("control points contain NaN or infinity")
        if len(c) > MAX_TPS_POINTS:  # refused, not a MemoryError (or minutes of solving) halfway
            raise InvalidArgumentError(f"{len(c)} control points: at most {MAX_TPS_POINTS} (the spline's system has "
                                       f"(n + 3)² values: {(len(c) + 3) ** 2 * 8 / 1e9:.1f} GB for these)")
        if max(np.abs(c).max(initial=0.0), np.abs(v).max(initial=0.0)) > TPS_COORD_LIMIT:
            raise InvalidArgumentError(f"control points lie beyond ±{TPS_COORD_LIMIT:g} (the spline's squared "
                                       "distances would overflow)")
        lam = finite_number(regularization, "regularization")  # not a string or a bool, which float() took
        if lam < 0:
            raise InvalidArgumentError(f"regularization must be >= 0, got {regularization!r}")
        n = len(c)
        if n < 3:
            raise DegenerateError(f"a thin-plate spline needs at least 3 control points, got {n}")
        d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        span = max(float(np.ptp(c, axis=0).max()), 1e-300)
        off = d2[~np.eye(n, dtype=bool)]
        if off.size and off.min() <= (1e-9 * span) ** 2:
            i, j = np.argwhere((d2 <= (1e-9 * span) ** 2) & ~np.eye(n, dtype=bool))[0]
            if d2[i, j] == 0.0:
                raise DegenerateError(f"duplicate control points: #{i} and #{j} are both at "
                                      f"({float(c[i][0]):g}, {float(c[i][1]):g})")
            raise DegenerateError(f"control points #{i} at ({float(c[i][0]):g}, {float(c[i][1]):g}) and #{j} at "
                                  f"({float(c[j][0]):g}, {float(c[j][1]):g}) are {float(np.sqrt(d2[i, j])):.3g} apart, "
                                  f"closer than 1e-9 of the points' extent ({span:.3g}): too close to tell apart")
        q = c - c.mean(axis=0)
        sv = np.linalg.svd(q, compute_uv=False)
        if sv[-1] <= 1e-9 * max(sv[0], 1e-300):
            raise DegenerateError("control points are collinear: a thin-plate spline is not determined")
        k = tps_kernel(c, c) + lam * np.eye(n)
        p = np.hstack([np.ones((n, 1)), c])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = k
        system[:n, n:] = p
        system[n:, :n] = p.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = v
        try:
            sol = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:
            raise DegenerateError("thin-plate spline system is singular") from None
        if not np.all(np.isfinite(sol)):
            raise DegenerateError("thin-plate spline system is ill-conditioned")
        self.centres = c
        self.values = v
        self.regularization = lam
        self.system = system
        self.weights = sol[:n]
        self.affine = sol[n:]

    @property
    def coefficients(self) -> np.ndarray:
        """``(n + 3, 2)``: weights stacked on the affine part."""
        return np.vstack([self.weights, self.affine])

    def __call__(self, points_xy) -> np.ndarray:
        """Evaluate at ``(..., 2)`` points; returns float64 of the same shape."""
        p = np.asarray(host_array(points_xy, "points"), dtype=np.float64)
        flat = p.reshape(-1, 2)
        out = tps_kernel(flat, self.centres) @ self.weights
        out += self.affine[0] + flat @ self.affine[1:]
        return out.reshape(p.shape)

    def basis(self, points_xy) -> np.ndarray:
        """``(M, n)`` matrix ``B`` with ``f(points) = B @ values``: the linear map from control values.

        Used to chain gradients to control-point positions (``dL/dvalues = Bᵀ dL/df``).
        """
        p = np.asarray(host_array(points_xy, "points"), dtype=np.float64).reshape(-1, 2)
        n = len(self.centres)
        inv_cols = np.linalg.solve(self.system, np.vstack([np.eye(n), np.zeros((3, n))]))
        feat = np.hstack([tps_kernel(p, self.centres), np.ones((len(p), 1)), p])
        return feat @ inv_cols
