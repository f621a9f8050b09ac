"""Building, composing, inverting, converting and fitting θ.

θ is ``in_norm_from_out_norm`` (see :mod:`stntool.coords`): a ``(2, 3)`` affine or ``(3, 3)``
projective matrix taking output normalized points to input normalized points, batched as
``(N, 2, 3)`` / ``(N, 3, 3)``. Pixel-space matrices are ``(3, 3)`` and named by the frames
they map, for example ``out_pix_from_in_pix`` (what ``cv2.warpAffine`` takes by default) or
``in_pix_from_out_pix`` (what it takes with ``WARP_INVERSE_MAP``).

The builders :func:`rotate`, :func:`scale`, :func:`shear`, :func:`translate`, :func:`hflip`
and :func:`vflip` return ``out_pix_from_in_pix`` matrices: they say where each input pixel
goes, in pixels, so they are correct for non-square images. Chain them with
:func:`compose` and turn the result into θ with :func:`theta_from_pixel_map`.

Example
-------
>>> import numpy as np, stntool
>>> m = stntool.transforms.rotate(90, center=(1.5, 1.5))      # 4x4 image, quarter turn
>>> theta = stntool.transforms.theta_from_pixel_map(m, (4, 4))
>>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
>>> bool(np.array_equal(stntool.warp(img, theta), np.rot90(img)))   # counter-clockwise
True
"""

from __future__ import annotations

import math

import numpy as np

from .coords import (_norm_from_pixel, _pixel_from_norm, _points_xy, as_flag, as_hw, finite_number, host_array,
                     norm_from_pixel, pixel_from_norm)
from .errors import DegenerateError, InvalidArgumentError

__all__ = [
    "identity",
    "rotate",
    "scale",
    "shear",
    "translate",
    "hflip",
    "vflip",
    "compose",
    "invert",
    "as_theta",
    "to_3x3",
    "theta_from_pixel_map",
    "pixel_map_from_theta",
    "theta_from_cv2",
    "theta_to_cv2",
    "fit_affine",
    "fit_projective",
    "apply_matrix",
]


# --------------------------------------------------------------------------- validation

def as_theta(theta, *, allow_batch: bool = True) -> np.ndarray:
    """Validate θ and return it as float64 ``(2, 3)``, ``(3, 3)``, ``(N, 2, 3)`` or ``(N, 3, 3)``."""
    t = _real_array(theta, "theta", copy=False)
    if t.ndim not in (2, 3) or t.shape[-1] != 3 or t.shape[-2] not in (2, 3) or (t.ndim == 3 and not allow_batch):
        raise InvalidArgumentError(f"theta must have shape (2, 3) or (3, 3) or be batched (N, 2, 3) / (N, 3, 3); got {t.shape}")
    if not all_finite(t):
        raise InvalidArgumentError("theta contains NaN or infinity")
    return t


def _real_array(values, what: str, copy: bool = True) -> np.ndarray:
    """``values`` as float64, refusing what is not an array of real numbers (strings, ragged lists, booleans, complex
    numbers, whose imaginary part numpy would drop with only a warning) with :class:`InvalidArgumentError`;
    ``copy=False`` gives a float64 array back as it is."""
    a = host_array(values, what)
    if a.dtype.kind not in "iuf":
        raise InvalidArgumentError(f"{what} must be an array of real numbers; got dtype {a.dtype}")
    return a.astype(np.float64, copy=copy)


def _one_matrix(values, what: str) -> np.ndarray:
    """``values`` as one finite float64 ``(2, 3)`` or ``(3, 3)`` matrix (:func:`_real_array`), else
    :class:`InvalidArgumentError` naming ``what``."""
    m = _real_array(values, what)
    if m.shape not in ((2, 3), (3, 3)) or not np.all(np.isfinite(m)):
        raise InvalidArgumentError(f"{what} must be a finite (2, 3) or (3, 3) array, got shape {m.shape}")
    return m


def all_finite(a: np.ndarray) -> bool:
    """``np.isfinite(a).all()`` for a small float array: the sum of its values as Python floats is finite
    when every value is (NaN and infinities propagate); only a sum that overflows from finite values needs
    the element-wise check. A quarter of the time for a θ."""
    return math.isfinite(sum(a.ravel().tolist())) or bool(np.isfinite(a).all())


def to_3x3(m) -> np.ndarray:
    """Extend ``(..., 2, 3)`` affine matrices with a ``[0, 0, 1]`` row; ``(..., 3, 3)`` pass through."""
    m = _real_array(m, "matrix", copy=False)
    if m.shape[-2:] == (3, 3):
        return m.copy()
    if m.shape[-2:] != (2, 3):
        raise InvalidArgumentError(f"expected (..., 2, 3) or (..., 3, 3) matrices, got {m.shape}")
    out = np.empty(m.shape[:-2] + (3, 3))
    out[..., :2, :] = m
    out[..., 2:, :] = LAST_ROW
    return out


#: The last row of an affine matrix made 3x3, as a (1, 3) row (read-only).
LAST_ROW = np.array([[0.0, 0.0, 1.0]])
LAST_ROW.flags.writeable = False


def _is_affine(m3: np.ndarray) -> bool:
    return bool(np.allclose(m3[..., 2, :], [0.0, 0.0, 1.0], rtol=0, atol=1e-12))


def _singular(m3: np.ndarray) -> np.ndarray:
    """Boolean mask over ``(..., 3, 3)`` matrices: True where a matrix is numerically singular.

    Relative test: the smallest singular value is at most ``1e-12`` times the largest, taken
    over the 2x2 linear part for affine matrices (so translations in pixels do not matter) and
    over the whole 3x3 for projective ones. NaN or infinite entries count as singular.
    """
    m3 = np.asarray(m3, dtype=np.float64)
    finite = np.all(np.isfinite(m3), axis=(-2, -1))
    m3 = np.where(finite[..., None, None], m3, 0.0)
    affine = np.all(np.abs(m3[..., 2, :] - [0.0, 0.0, 1.0]) <= 1e-12, axis=-1)
    if m3.ndim == 2:  # one matrix: only the test that applies to it
        sv = np.linalg.svd(m3[:2, :2] if affine else m3, compute_uv=False)
        return ~((sv[-1] > 1e-12 * sv[0]) & finite)
    sv2 = np.linalg.svd(m3[..., :2, :2], compute_uv=False)
    sv3 = np.linalg.svd(m3, compute_uv=False)
    ok = np.where(affine, sv2[..., -1] > 1e-12 * sv2[..., 0], sv3[..., -1] > 1e-12 * sv3[..., 0])
    return ~(ok & finite)


def _finite_3x3(m, what: str) -> np.ndarray:
    """``to_3x3`` of a numeric, finite matrix (or batch), else :class:`InvalidArgumentError`."""
    m = host_array(m, what)
    try:
        m = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be numeric") from None
    m3 = to_3x3(m)
    if not np.all(np.isfinite(m3)):
        raise InvalidArgumentError(f"{what} contains NaN or infinity")
    return m3


def _inverse(m3: np.ndarray, what: str) -> np.ndarray:
    """Inverse of ``(..., 3, 3)`` matrices; :class:`DegenerateError` when one is singular.

    Every function here that inverts a matrix goes through this, so a singular matrix always
    raises the same error (never ``numpy.linalg.LinAlgError``, never a silent inf/NaN result).
    """
    bad = np.atleast_1d(_singular(m3))
    if np.any(bad):
        where = f" (#{int(np.flatnonzero(bad)[0])} of the batch)" if m3.ndim == 3 else ""
        raise DegenerateError(f"{what} is singular{where} and has no inverse")
    try:
        inv = np.linalg.inv(m3)
    except np.linalg.LinAlgError:
        raise DegenerateError(f"{what} is singular and has no inverse") from None
    if not np.all(np.isfinite(inv)):
        raise DegenerateError(f"{what} is singular and has no inverse")
    return inv


def _unit_corner(m3: np.ndarray) -> np.ndarray:
    """Scale projective matrices so ``m[2, 2] == 1`` where that entry is not (nearly) zero."""
    corner = m3[..., 2:3, 2:3]
    big = np.abs(m3).max(axis=(-2, -1), keepdims=True)
    return np.where(np.abs(corner) > 1e-15 * big, m3 / np.where(corner == 0, 1.0, corner), m3)


def apply_matrix(m, points_xy) -> np.ndarray:
    """Map ``(..., 2)`` points by a ``(2, 3)`` or ``(3, 3)`` matrix (projective division included)."""
    m3 = to_3x3(_one_matrix(m, "matrix"))
    p = _points_xy(points_xy)
    x, y = p[..., 0], p[..., 1]
    u = m3[0, 0] * x + m3[0, 1] * y + m3[0, 2]
    v = m3[1, 0] * x + m3[1, 1] * y + m3[1, 2]
    w = m3[2, 0] * x + m3[2, 1] * y + m3[2, 2]
    return np.stack([u / w, v / w], axis=-1)


# --------------------------------------------------------------------------- pixel-space builders

def identity() -> np.ndarray:
    """The 3x3 identity (as a pixel map or as θ)."""
    return np.eye(3)


def _real(value, what: str) -> float:
    """``value`` as a finite float (:func:`stntool.coords.finite_number`), a 0-d array or tensor of one number
    too; else :class:`InvalidArgumentError`."""
    import numbers

    v = value
    if not isinstance(v, (numbers.Real, str, bytes)) and v is not None:  # a 0-d array or tensor of one number
        try:
            a = host_array(v, what)  # (a tensor that requires grad: said so)
        except InvalidArgumentError:
            if getattr(v, "requires_grad", False) is True:
                raise
            a = None
        if a is not None and a.ndim == 0 and a.dtype.kind in "iuf":
            v = a.item()
    return finite_number(v, what)


def translate(tx: float, ty: float) -> np.ndarray:
    """``out_pix_from_in_pix`` moving the image by ``(tx, ty)`` pixels (right, down)."""
    return np.array([[1.0, 0.0, _real(tx, "tx")], [0.0, 1.0, _real(ty, "ty")], [0.0, 0.0, 1.0]])


def _about(m: np.ndarray, center) -> np.ndarray:
    if center is None:
        return m
    try:
        if isinstance(center, (str, bytes)):
            raise TypeError
        cx, cy = center
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"center must be (x, y), got {center!r}") from None
    cx, cy = _real(cx, "center x"), _real(cy, "center y")
    return translate(cx, cy) @ m @ translate(-cx, -cy)


def rotate(degrees: float, center=None) -> np.ndarray:
    """``out_pix_from_in_pix`` rotating by ``degrees`` about ``center`` (pixels ``(x, y)``, default origin).

    Convention: positive angles turn the picture counter-clockwise as displayed (x right, y
    down), as in ``cv2.getRotationMatrix2D``, ``skimage.transform.rotate``,
    ``torchvision.transforms.functional.rotate`` and ``kornia.geometry.transform.rotate``.
    ``rotate(a, c)`` equals ``cv2.getRotationMatrix2D(c, a, 1.0)`` (extended to 3x3), and
    +90 degrees about the centre ``((W - 1) / 2, (H - 1) / 2)`` of a square image is
    ``np.rot90(img)``. (Earlier stntool versions turned the other way.)

    >>> np.round(apply_matrix(rotate(90), [[1.0, 0.0]]), 12)   # +x goes to -y: up on screen
    array([[ 0., -1.]])
    """
    degrees = _real(degrees, "degrees")
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    # exact values at multiples of 90 degrees so flips and quarter turns are exact (from the turn count,
    # not by rounding cos and sin: radians(1e300) is far from a multiple of pi / 2)
    if degrees % 90.0 == 0.0:
        c, s = ((1, 0), (0, 1), (-1, 0), (0, -1))[int(degrees % 360.0 // 90.0)]  # ints: no -0.0 entries
    m = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    return _about(m, center)


def scale(sx: float, sy: float | None = None, center=None) -> np.ndarray:
    """``out_pix_from_in_pix`` scaling by ``sx`` (and ``sy``, default ``sx``) about ``center``."""
    sx = _real(sx, "sx")
    sy = sx if sy is None else _real(sy, "sy")
    return _about(np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]), center)


def shear(shx_degrees: float = 0.0, shy_degrees: float = 0.0, center=None) -> np.ndarray:
    """``out_pix_from_in_pix`` shearing x by ``tan(shx)·y`` and y by ``tan(shy)·x`` about ``center``."""
    m = np.array([[1.0, math.tan(math.radians(_real(shx_degrees, "shx_degrees"))), 0.0],
                  [math.tan(math.radians(_real(shy_degrees, "shy_degrees"))), 1.0, 0.0],
                  [0.0, 0.0, 1.0]])
    return _about(m, center)


def hflip(width: int) -> np.ndarray:
    """``out_pix_from_in_pix`` mirroring left-right an image ``width`` pixels wide (``np.fliplr``)."""
    return np.array([[-1.0, 0.0, _side(width, "width") - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _side(value, what: str) -> float:
    """An image's width or height (:func:`_real`'s numbers): a whole number of pixels >= 1."""
    v = _real(value, what)
    if v < 1.0 or v != math.floor(v):
        raise InvalidArgumentError(f"{what} must be a whole number of pixels >= 1, got {value!r}")
    return v


def vflip(height: int) -> np.ndarray:
    """``out_pix_from_in_pix`` mirroring top-bottom an image ``height`` pixels high (``np.flipud``)."""
    return np.array([[1.0, 0.0, 0.0], [0.0, -1.0, _side(height, "height") - 1.0], [0.0, 0.0, 1.0]])


def compose(*matrices) -> np.ndarray:
    """Chain maps applied left to right: ``compose(a, b)`` applies ``a`` first, then ``b`` (``b @ a``).

    Works for pixel maps and for θ alike; ``(2, 3)`` inputs are extended to ``(3, 3)``. The
    result is ``(3, 3)``.
    """
    out = _IDENTITY
    for m in matrices:
        if not (type(m) is np.ndarray and m.shape == (3, 3) and m.dtype == np.float64):
            m = to_3x3(m)
        out = m @ out
    return out.copy() if out is _IDENTITY else out


_IDENTITY = np.eye(3)
_IDENTITY.flags.writeable = False


def invert(theta) -> np.ndarray:
    """Inverse of θ (or any map): ``(2, 3)`` stays ``(2, 3)``, ``(3, 3)`` stays ``(3, 3)``; batches allowed.

    Projective inverses are scaled so ``m[2, 2] == 1`` where that entry is not zero. Raises
    :class:`DegenerateError` for a singular matrix, :class:`InvalidArgumentError` for NaN or
    infinite entries.
    """
    t = np.asarray(host_array(theta, "theta"), dtype=np.float64)
    inv = _inverse(_finite_3x3(t, "matrix"), "matrix")
    if t.shape[-2] == 2:
        return inv[..., :2, :]
    return _unit_corner(inv)


# --------------------------------------------------------------------------- θ <-> pixel maps

def _fix_shape(m3: np.ndarray, like_affine: bool) -> np.ndarray:
    if like_affine:
        return m3[..., :2, :] / m3[..., 2:3, 2:3]
    return m3


def theta_from_pixel_map(out_pix_from_in_pix, in_hw, out_hw=None, align_corners: bool = False) -> np.ndarray:
    """θ (``in_norm_from_out_norm``) for a forward pixel map ``out_pix_from_in_pix``.

    Returns ``(2, 3)`` when the map is affine, ``(3, 3)`` otherwise. ``out_hw`` defaults to ``in_hw``.
    Raises :class:`DegenerateError` when the map is singular (θ is its inverse).
    """
    in_hw = as_hw(in_hw)
    out_hw = in_hw if out_hw is None else as_hw(out_hw)
    fwd = _finite_3x3(out_pix_from_in_pix, "pixel map")
    in_pix_from_out_pix = _inverse(fwd, "pixel map out_pix_from_in_pix")
    return _theta_from_inverse_pixel_map(in_pix_from_out_pix, in_hw, out_hw, align_corners)


def _theta_from_inverse_pixel_map(in_pix_from_out_pix, in_hw, out_hw, align_corners) -> np.ndarray:
    m = to_3x3(in_pix_from_out_pix)
    theta = norm_from_pixel(in_hw, align_corners) @ m @ pixel_from_norm(out_hw, align_corners)
    return _fix_shape(theta, _is_affine(m))


def pixel_map_from_theta(theta, in_hw, out_hw=None, align_corners: bool = False) -> np.ndarray:
    """``in_pix_from_out_pix`` (3x3) for θ: where each output pixel reads the input, in pixels.

    Batched θ gives ``(N, 3, 3)``. This is the matrix the fused kernels evaluate. It needs no
    inverse, so a singular θ (which collapses the output onto a line or a point of the input) is
    accepted here and by :func:`stntool.warp`.
    """
    in_hw = as_hw(in_hw)
    out_hw = in_hw if out_hw is None else as_hw(out_hw)
    return pixel_map(to_3x3(as_theta(theta)), in_hw, out_hw, align_corners)


def pixel_map(theta3, in_hw, out_hw, align_corners: bool) -> np.ndarray:
    """:func:`pixel_map_from_theta` of an already validated float64 ``(..., 3, 3)`` θ and ``(H, W)`` tuples
    (what :func:`stntool.warp` runs on every call: no checks, no copies of the frame matrices)."""
    ac = as_flag(align_corners)
    return _pixel_from_norm(in_hw, ac) @ theta3 @ _norm_from_pixel(out_hw, ac)


def theta_from_cv2(matrix, in_hw, out_hw=None, inverse_map: bool = False, align_corners: bool = False) -> np.ndarray:
    """θ equivalent to an OpenCV pixel matrix as given to ``cv2.warpAffine`` / ``cv2.warpPerspective``.

    Parameters
    ----------
    matrix : (2, 3) or (3, 3) array
        ``out_pix_from_in_pix`` (OpenCV's default), or ``in_pix_from_out_pix`` when
        ``inverse_map=True`` (``cv2.WARP_INVERSE_MAP``).
    in_hw, out_hw : (H, W)
        Input image size and output size (``dsize`` is ``(W, H)`` in OpenCV; default: ``in_hw``).

    Returns θ of shape ``(2, 3)`` for an affine matrix, ``(3, 3)`` for a projective one. Raises
    :class:`DegenerateError` when a forward matrix (``inverse_map=False``) is singular.
    """
    m = _one_matrix(matrix, "OpenCV matrix")
    in_hw = as_hw(in_hw)
    out_hw = in_hw if out_hw is None else as_hw(out_hw)
    m3 = to_3x3(m)
    if not as_flag(inverse_map, "inverse_map"):
        m3 = _inverse(m3, "OpenCV matrix")
    theta = _theta_from_inverse_pixel_map(m3, in_hw, out_hw, align_corners)
    if m.shape == (3, 3) and theta.shape == (2, 3):
        theta = to_3x3(theta)
    return theta


def theta_to_cv2(theta, in_hw, out_hw=None, inverse_map: bool = False, align_corners: bool = False) -> np.ndarray:
    """OpenCV pixel matrix equivalent to θ: ``(2, 3)`` for affine θ, ``(3, 3)`` for projective θ.

    Gives ``out_pix_from_in_pix`` (for plain ``cv2.warpAffine``), or ``in_pix_from_out_pix`` with
    ``inverse_map=True`` (for ``flags=cv2.WARP_INVERSE_MAP``). Projective results are scaled so
    ``m[2, 2] == 1`` where that entry is not zero. Raises :class:`DegenerateError` when θ is
    singular and ``inverse_map=False`` (the forward matrix is its inverse).
    """
    t = as_theta(theta, allow_batch=False)
    in_pix_from_out_pix = pixel_map_from_theta(t, in_hw, out_hw, align_corners)
    m = in_pix_from_out_pix if as_flag(inverse_map, "inverse_map") else _inverse(in_pix_from_out_pix, "theta")
    if t.shape == (2, 3):
        return m[:2] / m[2, 2]
    return _unit_corner(m)


# --------------------------------------------------------------------------- fitting

def _check_pairs(src, dst, minimum: int):
    s = _real_array(src, "source points")
    d = _real_array(dst, "destination points")
    if s.ndim != 2 or s.shape[1] != 2 or s.shape != d.shape:
        raise InvalidArgumentError(f"point sets must both be (N, 2); got {s.shape} and {d.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(d))):
        raise InvalidArgumentError("points contain NaN or infinity")
    if len(s) < minimum:
        raise DegenerateError(f"need at least {minimum} point pairs, got {len(s)}")
    return s, d


def _normalizing(p: np.ndarray) -> np.ndarray:
    """Hartley normalization: centroid to 0, mean distance sqrt(2)."""
    c = p.mean(axis=0)
    d = np.sqrt(((p - c) ** 2).sum(axis=1)).mean()
    if not d > 1e-12 * np.abs(p).max():  # relative: points 1e-100 apart are points too
        raise DegenerateError("all points coincide")
    s = math.sqrt(2.0) / d
    return np.array([[s, 0.0, -s * c[0]], [0.0, s, -s * c[1]], [0.0, 0.0, 1.0]])


def _rank_of_points(p: np.ndarray) -> int:
    """The rank of the centred points ``p`` (N, 2): 2 for a spread in the plane, 1 on a line, 0 one point.

    Relative to their spread, whatever the unit and wherever they lie (a triangle 1e9 px from the
    origin spans the plane as it does at the origin), but not below the rounding of the centring
    itself (a few ulps of the largest coordinate), which would make a line far out look spread."""
    q = p - p.mean(axis=0)
    sv = np.linalg.svd(q, compute_uv=False)
    spread = float(np.ptp(p, axis=0).max()) if len(p) else 0.0
    tol = max(1e-9 * spread, 64 * np.finfo(np.float64).eps * float(np.abs(p).max(initial=0.0)))
    return int(np.sum(sv > tol * math.sqrt(len(p))))


def _on_one_line(p: np.ndarray, tol: float) -> bool:
    """True when every point of ``p`` (M, 2) lies within ``tol`` of one line (or M < 3)."""
    if len(p) < 3:
        return True
    q = p - p.mean(axis=0)
    _, _, vt = np.linalg.svd(q, full_matrices=False)
    return bool(np.abs(q @ vt[-1]).max() <= tol)


def _clearly_a_frame(p: np.ndarray, extent: float) -> bool:
    """True when each of the four points ``p`` lies farther than ``1e-6 extent`` from the line through
    any two others: then no three are collinear within :func:`_lacks_projective_frame`'s tolerance
    (a thousand times smaller), and its general test can be skipped (the common case of a fit from
    four corners)."""
    p = np.asarray(p, dtype=np.float64).tolist()  # Python floats: the same arithmetic, without numpy scalars
    for i in range(4):
        for j in range(i + 1, 4):
            dx, dy = p[j][0] - p[i][0], p[j][1] - p[i][1]
            length = math.hypot(dx, dy)
            for k in range(4):
                if k == i or k == j:
                    continue
                cross = dx * (p[k][1] - p[i][1]) - dy * (p[k][0] - p[i][0])
                if abs(cross) <= 1e-6 * extent * length:
                    return False
    return True


def _lacks_projective_frame(p: np.ndarray) -> str | None:
    """Why ``p`` (N, 2) holds no four points with no three collinear, or None when it does.

    A point set holds such a frame unless it lies on one line plus at most one point off it (a
    "near-pencil"; this covers duplicates and fewer than four distinct points). Only three
    candidates for the extra point need checking: with ``a``, ``b`` two far-apart points,
    either the line is ``ab`` and the extra point is the only one off it, or the extra point
    is ``a`` or ``b`` itself.
    """
    extent = float(np.ptp(p, axis=0).max()) if len(p) else 0.0
    tol = 1e-9 * max(extent, 1e-300)
    if len(p) == 4 and _clearly_a_frame(p, extent):
        return None
    distinct = np.unique(p, axis=0)
    if len(distinct) < 4:
        return f"only {len(distinct)} distinct points"
    a = distinct[np.argmax(((distinct - distinct.mean(axis=0)) ** 2).sum(axis=1))]
    b = distinct[np.argmax(((distinct - a) ** 2).sum(axis=1))]
    normal = np.array([a[1] - b[1], b[0] - a[0]]) / math.hypot(*(b - a))
    off = distinct[np.abs((distinct - a) @ normal) > tol]
    if len(off) == 0:
        return "all points are collinear"
    if len(off) == 1:
        return "all points but one are collinear"
    for extra in (a, b):
        rest = distinct[np.any(distinct != extra, axis=1)]
        if _on_one_line(rest, tol):
            return "all points but one are collinear"
    return None


def fit_affine(src, dst) -> np.ndarray:
    """Least-squares affine map ``dst_from_src`` (3x3) from point pairs ``src[i] -> dst[i]`` (N >= 3).

    Raises :class:`DegenerateError` when the source points are collinear or coincide (the map
    is not determined), or when the destination points are (the fitted map would be singular:
    it flattens the plane onto a line and has no inverse, so no θ).
    """
    s, d = _check_pairs(src, dst, 3)
    if _rank_of_points(s) < 2:
        raise DegenerateError("source points are collinear: an affine map is not determined")
    if _rank_of_points(d) < 2:
        raise DegenerateError("destination points are collinear: the fitted affine map would be singular")
    ts, td = _normalizing(s), _normalizing(d)  # centred and scaled: coordinates of any size solve alike
    a = np.hstack([apply_matrix(ts, s), np.ones((len(s), 1))])
    sol, *_ = np.linalg.lstsq(a, apply_matrix(td, d), rcond=None)
    m_n = np.eye(3)
    m_n[:2] = sol.T
    m = np.linalg.inv(td) @ m_n @ ts
    m[2] = [0.0, 0.0, 1.0]
    if _singular(m):
        raise DegenerateError("fitted affine map is singular")
    return m


def fit_projective(src, dst) -> np.ndarray:
    """Projective map ``dst_from_src`` (3x3, ``m[2, 2] == 1``) by the normalized DLT (N >= 4).

    A homography is determined only when both point sets hold four points of which no three
    are collinear. Raises :class:`DegenerateError` when the source or the destination points
    do not (all collinear, all but one collinear such as three collinear among four, fewer
    than four distinct points), and when the fitted matrix is numerically singular.
    """
    s, d = _check_pairs(src, dst, 4)
    for side, pts in (("source", s), ("destination", d)):
        why = _lacks_projective_frame(pts)
        if why is not None:
            raise DegenerateError(f"{side} points: {why}; a projective map needs four points "
                                  "with no three collinear")
    ts, td = _normalizing(s), _normalizing(d)
    sn = apply_matrix(ts, s)
    dn = apply_matrix(td, d)
    n = len(s)
    a = np.zeros((2 * n, 9))
    x, y = sn[:, 0], sn[:, 1]
    u, v = dn[:, 0], dn[:, 1]
    a[0::2, 0], a[0::2, 1], a[0::2, 2] = x, y, 1.0
    a[0::2, 6], a[0::2, 7], a[0::2, 8] = -u * x, -u * y, -u
    a[1::2, 3], a[1::2, 4], a[1::2, 5] = x, y, 1.0
    a[1::2, 6], a[1::2, 7], a[1::2, 8] = -v * x, -v * y, -v
    _, sv, vt = np.linalg.svd(a)
    # a unique solution needs a one-dimensional null space: the 8th singular value must not vanish
    if sv[min(7, len(sv) - 1)] < 1e-9 * sv[0] or len(sv) < 8:
        raise DegenerateError("point configuration does not determine a unique projective map "
                              "(three or more points collinear)")
    h = vt[-1].reshape(3, 3)
    m = np.linalg.inv(td) @ h @ ts
    if _singular(h):  # in the normalized frames, where its size says nothing of the points' unit
        raise DegenerateError("fitted projective map is singular")
    if not abs(m[2, 2]) > 1e-15 * np.abs(m[2, :2]).max() * np.abs(s).max():  # against the points' own scale
        raise DegenerateError("fitted projective map sends the origin to infinity")
    return m / m[2, 2]
