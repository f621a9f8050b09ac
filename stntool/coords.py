"""The one coordinate convention of stntool.

Convention
----------
* Points are ``(x, y)``: ``x`` is the column (to the right), ``y`` the row (downwards).
  Arrays of points have shape ``(..., 2)`` with ``x`` first. Images are ``(H, W)``,
  ``(H, W, C)`` or ``(N, H, W, C)``; a size is written ``hw = (H, W)``.
* **Pixel coordinates**: the centre of pixel ``img[i, j]`` is at ``(x, y) = (j, i)``.
  This is OpenCV's convention (``cv2.warpAffine``, ``cv2.remap``).
* **Normalized coordinates**: ``x`` and ``y`` run over ``[-1, 1]`` across the image, as in
  PyTorch's ``affine_grid`` / ``grid_sample``:

  - ``align_corners=False`` (the default): -1 and +1 are the *outer edges* of the corner
    pixels, ``x_pix = ((x_norm + 1) * W - 1) / 2``.
  - ``align_corners=True``: -1 and +1 are the *centres* of the corner pixels,
    ``x_pix = (x_norm + 1) / 2 * (W - 1)``.

* **θ** (``theta``) maps *output* normalized coordinates to *input* normalized coordinates
  (``in_norm_from_out_norm``), exactly like ``torch.nn.functional.affine_grid``.
  Sampling grids hold input normalized coordinates, one point per output pixel.

Every grid builder, sampler and conversion in stntool goes through this module.
Matrices are named ``<to>_from_<from>``: ``pixel_from_norm(hw)`` maps normalized points
of an image of size ``hw`` to its pixel coordinates.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "pixel_from_norm",
    "norm_from_pixel",
    "norm_to_pixel",
    "pixel_to_norm",
    "base_coords",
    "as_hw",
]


def _whole_number(v) -> bool:
    """An int (or NumPy integer), or a float with no fraction; not a bool or a string."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    return isinstance(v, numbers.Integral) or float(v).is_integer()


def as_hw(size) -> tuple[int, int]:
    """Validate a ``(H, W)`` size and return it as a tuple of two positive ints."""
    if type(size) is tuple and len(size) == 2 and type(size[0]) is int and type(size[1]) is int \
            and size[0] >= 1 and size[1] >= 1:
        return size  # already validated (the common case, once per call of every warp)
    from .errors import InvalidArgumentError

    try:
        h, w = size
        if isinstance(size, (str, bytes)) or not all(_whole_number(v) for v in (h, w)):
            raise TypeError
        h, w = int(h), int(w)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"size must be (H, W), two whole numbers, got {size!r}") from None
    if h < 1 or w < 1:
        raise InvalidArgumentError(f"size must be positive, got (H, W) = ({h}, {w})")
    return h, w


def finite_number(x, what: str) -> float:
    """``x`` as a finite float: a real number (NumPy's too), not a bool or a string; else
    :class:`InvalidArgumentError` naming ``what``."""
    import math
    import numbers

    if type(x) is float and x - x == 0.0:  # a finite float (inf - inf and nan - nan are nan)
        return x
    from .errors import InvalidArgumentError

    if isinstance(x, bool) or not isinstance(x, numbers.Real):  # NumPy's numbers too, not its bool
        raise InvalidArgumentError(f"{what}: {x!r} is not a number")
    try:
        x = float(x)
    except OverflowError:  # an integer beyond float64 (JSON allows 10**400)
        raise InvalidArgumentError(f"{what}: an integer of {len(str(abs(x)))} digits is not finite") from None
    if not math.isfinite(x):
        raise InvalidArgumentError(f"{what}: {x!r} is not finite")
    return x


def host_array(values, what: str) -> np.ndarray:
    """``np.asarray(values)``, or :class:`InvalidArgumentError` where it cannot be one: a ragged list, or a
    PyTorch tensor that requires grad (NumPy cannot read it: ``t.detach()`` can be)."""
    try:
        return np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as e:
        from .errors import InvalidArgumentError

        hint = " (a tensor that requires grad: pass t.detach())" if getattr(values, "requires_grad", False) is True \
            and "grad" in str(e) else ""  # (not for a tensor NumPy cannot read for another reason: its device, dtype)
        raise InvalidArgumentError(f"{what} must be a numeric array{hint}") from None


def as_flag(value, name: str = "align_corners") -> bool:
    """``value`` as a bool: True or False (NumPy's too, and the integers 0 and 1); anything else, such as the
    string ``"False"`` (which Python takes as true), is refused with :class:`InvalidArgumentError`."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    from .errors import InvalidArgumentError

    raise InvalidArgumentError(f"{name} must be True or False, got {value!r}")


def _axis_scale_offset(n: int, align_corners: bool) -> tuple[float, float]:
    """``pix = scale * norm + offset`` along one axis of ``n`` pixels."""
    if align_corners:
        return (n - 1) / 2.0, (n - 1) / 2.0
    return n / 2.0, (n - 1) / 2.0


def pixel_from_norm(hw, align_corners: bool = False) -> np.ndarray:
    """3x3 matrix mapping normalized ``(x, y, 1)`` to pixel ``(x, y, 1)`` for an image of size ``hw``."""
    return _pixel_from_norm(as_hw(hw), as_flag(align_corners)).copy()


def norm_from_pixel(hw, align_corners: bool = False) -> np.ndarray:
    """3x3 matrix mapping pixel ``(x, y, 1)`` to normalized ``(x, y, 1)``; inverse of :func:`pixel_from_norm`.

    An axis of one pixel has no extent when ``align_corners=True``; like PyTorch's
    ``affine_grid`` we then place its only pixel at normalized 0.
    """
    return _norm_from_pixel(as_hw(hw), as_flag(align_corners)).copy()


@functools.lru_cache(maxsize=64)
def _pixel_from_norm(hw: tuple, align_corners: bool) -> np.ndarray:
    """:func:`pixel_from_norm` of a validated size, read-only and shared (a warp's per-call maths)."""
    h, w = hw
    sx, ox = _axis_scale_offset(w, align_corners)
    sy, oy = _axis_scale_offset(h, align_corners)
    m = np.array([[sx, 0.0, ox], [0.0, sy, oy], [0.0, 0.0, 1.0]])
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=64)
def _norm_from_pixel(hw: tuple, align_corners: bool) -> np.ndarray:
    """:func:`norm_from_pixel` of a validated size, read-only and shared."""
    h, w = hw
    sx, ox = _axis_scale_offset(w, align_corners)
    sy, oy = _axis_scale_offset(h, align_corners)
    ix = 1.0 / sx if sx else 0.0
    iy = 1.0 / sy if sy else 0.0
    m = np.array([[ix, 0.0, -ox * ix], [0.0, iy, -oy * iy], [0.0, 0.0, 1.0]])
    m.flags.writeable = False
    return m


def _points_xy(points_xy) -> np.ndarray:
    """``points_xy`` as float64 ``(..., 2)``; :class:`InvalidArgumentError` for other shapes (a scalar or a
    row of three would broadcast against the two axes) and for what is not real numbers."""
    p = host_array(points_xy, "points")
    if p.dtype.kind not in "iuf" or p.ndim < 1 or p.shape[-1] != 2:
        from .errors import InvalidArgumentError

        what = f"dtype {p.dtype}" if p.dtype.kind not in "iuf" else f"shape {p.shape}"
        raise InvalidArgumentError(f"points must be real (x, y) pairs, an array (..., 2); got {what}")
    return p.astype(np.float64, copy=False)


def norm_to_pixel(points_xy, hw, align_corners: bool = False) -> np.ndarray:
    """Map normalized points ``(..., 2)`` to pixel coordinates of an image of size ``hw``."""
    m = pixel_from_norm(hw, align_corners)
    return _points_xy(points_xy) * np.array([m[0, 0], m[1, 1]]) + np.array([m[0, 2], m[1, 2]])


def pixel_to_norm(points_xy, hw, align_corners: bool = False) -> np.ndarray:
    """Map pixel points ``(..., 2)`` to normalized coordinates of an image of size ``hw``."""
    m = norm_from_pixel(hw, align_corners)
    return _points_xy(points_xy) * np.array([m[0, 0], m[1, 1]]) + np.array([m[0, 2], m[1, 2]])


def base_coords(n: int, align_corners: bool = False, dtype=np.float64) -> np.ndarray:
    """Normalized coordinates of the ``n`` pixel centres along one output axis.

    PyTorch's ``affine_grid`` base grid up to rounding: ``linspace(-1, 1, n)`` (NumPy's, which puts the
    middle of an odd ``n`` exactly at 0; PyTorch's ``linspace`` can differ from it by an ulp), scaled by
    ``(n - 1) / n`` when ``align_corners=False``; a single pixel sits at 0.
    """
    align_corners = as_flag(align_corners)
    if n <= 1:
        return np.zeros(max(n, 0), dtype=dtype)
    v = np.linspace(-1.0, 1.0, n, dtype=np.float64)
    if not align_corners:
        v = v * ((n - 1) / n)
    return v.astype(dtype)
