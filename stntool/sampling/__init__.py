"""The one dispatch point between the NumPy reference, Numba CPU and Numba CUDA kernels.

Wrappers here validate arguments, normalise layouts to ``(N, H, W, C)``, allocate outputs and
call the chosen backend's kernel; kernels never validate. ``backend`` is one of:

* ``"numpy"``: the vectorised reference (the spec; slow, no compilation);
* ``"cpu"``: fused Numba kernels, parallel over output rows, cached on disk;
* ``"cuda"``: Numba CUDA twins (needs ``stntool[cuda]`` and a GPU);
* ``"auto"``: ``"cuda"`` when a GPU is usable, else ``"cpu"``.

Asking for a backend that cannot run is an error, never a silent fallback.

Every backend module exposes the same kernel table, :data:`KERNELS`: the same names, the same
parameters, the same argument kinds (option ids as ints, ``fill`` as a ``(C,)`` float64 array,
caller-allocated outputs), so :mod:`stntool.api` makes one call through :func:`kernels` whatever
the backend. The reference accepts ``is_int`` / ``maxv`` / ``projective`` and derives the same
behaviour from ``out``'s dtype and the maps.
"""

from __future__ import annotations

import decimal
import functools
import numbers
import os
import sys

import numpy as np

from ..coords import host_array
from ..errors import BackendUnavailableError, InvalidArgumentError

MODES = {"nearest": 0, "bilinear": 1, "bicubic": 2}
PADDINGS = {"zeros": 0, "border": 1, "reflection": 2, "constant": 3}
#: Paddings whose CPU kernels are entries of their own (``_cpu.PADDED_ENTRIES``): every point they read lies
#: inside the image, so those kernels write such pixels in loops of their own.
OWN_KERNEL_PADDINGS = ("border", "reflection")
BACKENDS = ("auto", "numpy", "cpu", "cuda")
DTYPES = (np.uint8, np.uint16, np.float32, np.float64)

#: The kernel table: name -> parameters, identical in ``_reference``, ``_cpu`` and ``_cuda``.
#: Forward kernels write ``out`` (``(N, Ho, Wo, C)``, the image dtype); ``mode``, ``pad`` are ids of
#: :data:`MODES`, :data:`PADDINGS`. ``grid_sample_backward`` takes float64 ``img``, ``grid (N, Ho, Wo, 2)``
#: and ``grad_out`` and returns ``(grad_img, grad_grid)`` float64 (buffers are the backend's business);
#: with ``want_img`` False it neither computes nor returns the image gradient (``(None, grad_grid)``).
#: ``tps_eval_terms`` and ``tps_lattice_points`` build TPS plans (:mod:`stntool.tps_lattice`) and
#: write host arrays.
KERNELS = {
    "warp_matrix": ("img", "maps", "out", "mode", "pad", "align_corners", "fill", "is_int", "maxv", "projective"),
    "sample_grid": ("img", "grid", "out", "mode", "pad", "align_corners", "fill", "is_int", "maxv"),
    "warp_tps_lattice": ("img", "lattice", "step", "singular", "tables", "radius", "snx", "sny", "out", "mode", "pad",
                         "align_corners", "fill", "is_int", "maxv"),
    "grid_sample_backward": ("img", "grid", "grad_out", "pad", "align_corners", "want_img"),
    "tps_eval_terms": ("points", "centres", "weights", "affine", "out", "terms"),
    "tps_lattice_points": ("lattice", "step", "singular", "tables", "radius", "snx", "sny", "js", "is_", "out"),
}

__all__ = ["MODES", "PADDINGS", "BACKENDS", "KERNELS", "kernels", "resolve_backend", "cuda_available", "ImageBatch",
           "sample_options", "as_host_grid", "check_real"]


@functools.lru_cache(maxsize=None)
def _driver_may_exist() -> bool:
    """Cheap check before importing numba-cuda (about 0.35 s): is an NVIDIA driver or the simulator there?"""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    return _driver_files()


@functools.lru_cache(maxsize=1)
def _driver_files() -> bool:
    """Whether the driver's files exist (looked up once per process: a driver does not appear mid-run)."""
    if sys.platform.startswith("linux"):
        # the driver's control device (containers and hosts), its proc entry, or WSL's GPU device
        return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg"))
    return True  # elsewhere let numba-cuda decide


def cuda_available() -> bool:
    """True when numba-cuda is installed and a GPU can be used (probes lazily, never at import)."""
    if not _driver_may_exist():  # first: cached, where reading the environment costs a microsecond or two a call
        return False
    if os.environ.get("STNTOOL_DISABLE_CUDA"):
        return False
    try:
        from . import _cuda

        return bool(_cuda.is_available())
    except Exception:  # a broken CUDA install must not break "auto"; an explicit "cuda" reports why
        return False


def resolve_backend(backend: str = "auto") -> str:
    """Turn ``backend`` into a concrete backend name, raising when an explicit choice cannot run."""
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    if backend == "cuda" and not cuda_available():
        from . import _cuda_status

        raise BackendUnavailableError(f"backend 'cuda' was requested but is not usable: {_cuda_status.reason()}")
    return backend


def kernels(backend: str):
    """The kernel module of a concrete backend (``"numpy"``, ``"cpu"`` or ``"cuda"``): :data:`KERNELS`."""
    mod = _KERNEL_MODULES.get(backend)
    if mod is not None:
        return mod
    if backend == "numpy":
        from . import _reference as mod
    elif backend == "cpu":
        from . import _cpu as mod
    elif backend == "cuda":
        from . import _cuda as mod
    else:  # pragma: no cover - resolve_backend guards this
        raise InvalidArgumentError(backend)
    _KERNEL_MODULES[backend] = mod
    return mod


#: Backend name -> kernel module, once imported (:func:`kernels` runs on every call).
_KERNEL_MODULES = {}


def sample_options(mode: str, padding: str, fill, channels: int):
    """Validate sampling options; returns ``(mode_id, pad_id, fill (C,) float64)``."""
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidArgumentError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not isinstance(padding, str) or padding not in PADDINGS:
        raise InvalidArgumentError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    fill_c = np.zeros(channels)
    if fill is not None:
        if padding != "constant":
            raise InvalidArgumentError("fill is only used with padding='constant'")
        if hasattr(fill, "requires_grad"):
            fill = host_array(fill, "fill")
        try:
            f = np.asarray(fill)
        except (TypeError, ValueError):
            f = np.asarray(None)
        if f.dtype == object and all(isinstance(v, (numbers.Real, decimal.Decimal))
                                     and not isinstance(v, (bool, np.bool_)) for v in f.ravel()):
            try:
                f = f.astype(np.float64)  # Fraction, Decimal: real numbers numpy keeps as objects
            except (OverflowError, ValueError):  # 10**400, Decimal("sNaN")
                raise InvalidArgumentError(f"fill must be finite, got {fill!r}") from None
        if f.dtype.kind not in "iuf":  # not strings, bytes, booleans, dates or complex numbers (numpy casts them)
            raise InvalidArgumentError(f"fill must be a number or one number per channel, got {fill!r}")
        f = f.astype(np.float64).ravel()
        if f.size == 1:
            fill_c[:] = f[0]
        elif f.size == channels:
            fill_c[:] = f
        else:
            want = "1 value" if channels == 1 else f"1 or {channels} values (one per channel)"
            raise InvalidArgumentError(f"fill must have {want}, got {f.size}")
        if not np.all(np.isfinite(fill_c)):
            raise InvalidArgumentError("fill must be finite")
    return MODES[mode], PADDINGS[padding], fill_c


def is_device_array(a) -> bool:
    """numba device arrays and objects exposing ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors)."""
    if isinstance(a, np.ndarray):
        return False
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def _refusal(dt: np.dtype, what: str) -> str:
    if dt.kind == "b":
        return f"{what} of dtype bool cannot be sampled; convert it to uint8 (0/255) or float first"
    if dt.kind == "c":
        return f"{what} of dtype {dt} (complex) cannot be sampled; pass the real and imaginary parts separately"
    return f"{what} of dtype {dt} cannot be sampled"


def as_host_grid(grid, what: str = "grid") -> np.ndarray:
    """A host grid as C-contiguous native float64 ``(..., 2)`` array, or :class:`InvalidArgumentError`.

    Any real dtype and byte order is accepted (float16, float32, longdouble and integers are converted
    to float64; every kernel reads grid values as float64, so float32 and float64 grids give the same
    results as before conversion); bool, complex, object and string grids are refused.
    """
    g = host_array(grid, what)
    if g.dtype.kind not in "iuf":
        raise InvalidArgumentError(_refusal(g.dtype, what) if g.dtype.kind in "bc" else
                                   f"{what} must be a numeric array; got dtype {g.dtype}")
    if g.ndim not in (3, 4) or g.shape[-1] != 2:
        raise InvalidArgumentError(f"{what} must be (Ho, Wo, 2) or (N, Ho, Wo, 2); got {g.shape}")
    if g.shape[-3] == 0 or g.shape[-2] == 0:  # as an output size of 0 is refused (an empty batch: by the caller)
        raise InvalidArgumentError(f"{what} has no points; got shape {g.shape}")
    return np.ascontiguousarray(g, dtype=np.float64)


def check_real(values, what: str) -> np.ndarray:
    """Refuse bool, complex, object and string arrays (θ, points) with :class:`InvalidArgumentError`;
    returns ``values`` as an array (``np.asarray``, no copy of an array)."""
    a = values if isinstance(values, np.ndarray) else host_array(values, what)
    dt = a.dtype
    if dt.kind not in "iuf":
        raise InvalidArgumentError(_refusal(dt, what) if dt.kind in "bc" else f"{what} must be numeric; got dtype {dt}")
    return a


#: Host image dtypes the kernels take as they are (native byte order).
_READY = frozenset(np.dtype(t) for t in DTYPES)

#: The largest value of each integer image dtype (``maxv`` of the kernels; 0 for floats).
_INT_MAX = {t: float(np.iinfo(t).max) for t in DTYPES if np.dtype(t).kind == "u"}


def _compute_dtype(dt: np.dtype):
    """``(dtype the kernels run on, dtype returned)`` for a host image dtype, or None when refused."""
    if dt.kind not in "uif":
        return None
    native = dt.newbyteorder("=")
    if native.type in DTYPES:
        return np.dtype(native.type), np.dtype(native.type)
    if native.kind == "f" and native.itemsize == 2:  # float16: sampled in float32, rounded back
        return np.dtype(np.float32), np.dtype(np.float16)
    if native.kind == "f" and native.itemsize > 8:  # longdouble: sampled in float64
        return np.dtype(np.float64), native
    return None


class ImageBatch:
    """An image viewed as C-contiguous ``(N, H, W, C)``, remembering how to give results back.

    ``(H, W)`` becomes ``(1, H, W, 1)``, ``(H, W, C)`` becomes ``(1, H, W, C)``.

    Host images are converted at this boundary, identically for every backend: any byte order
    (``'>u2'`` from FITS readers gives a native uint16 result), non-contiguous views and read-only
    arrays (copied, so the kernels see one array type). float16 images are sampled in float32 and
    the result rounded to float16; longdouble images are sampled in float64 and returned as
    longdouble. Other dtypes (bool, complex, object, strings, other integers) are refused with
    :class:`InvalidArgumentError`. Device images must already be C-contiguous and of a kernel dtype.
    """

    def __init__(self, img):
        if type(img) is np.ndarray and img.dtype in _READY and 2 <= img.ndim <= 4 and img.size \
                and img.flags.c_contiguous and img.flags.writeable:
            self.on_device = False  # the common case: nothing to convert
            self._set(img, img.dtype, img.dtype)
            return
        self.on_device = is_device_array(img)
        if self.on_device:
            from . import _cuda

            a = _cuda._device_view(img)
            if not a.is_c_contiguous():
                raise InvalidArgumentError("device images must be C-contiguous")
        else:
            a = host_array(img, "image")
        if a.ndim not in (2, 3, 4):
            raise InvalidArgumentError(f"image must be (H, W), (H, W, C) or (N, H, W, C); got {a.ndim} dimensions")
        dt = np.dtype(a.dtype)
        kinds = (dt, dt) if self.on_device and dt.type in DTYPES and dt.isnative else \
            (None if self.on_device else _compute_dtype(dt))
        if kinds is None:
            if dt.kind in "bc":
                raise InvalidArgumentError(_refusal(dt, "an image"))
            raise InvalidArgumentError(f"unsupported image dtype {dt}; use uint8, uint16, float16, float32 or float64"
                                       + (" (device images: uint8, uint16, float32 or float64)" if self.on_device
                                          else ""))
        if min(a.shape) < 1:
            raise InvalidArgumentError(f"image has an empty dimension: shape {a.shape}")
        if isinstance(a, np.ndarray):
            converted = np.ascontiguousarray(a, dtype=kinds[0])
            if not converted.flags.writeable:
                converted = converted.copy()
            a = converted
        self._set(a, *kinds)

    def _set(self, a, dtype, result_dtype):
        """Record ``a`` (C-contiguous, of the kernels' ``dtype``) viewed as ``(N, H, W, C)``."""
        self.ndim = a.ndim
        self.dtype, self.result_dtype = dtype, result_dtype
        if a.ndim == 2:
            a = a.reshape(1, a.shape[0], a.shape[1], 1)
        elif a.ndim == 3:
            a = a.reshape(1, *a.shape)
        self.data = a
        self.n, self.h, self.w, self.c = a.shape

    @property
    def hw(self):
        return self.h, self.w

    @property
    def is_int(self) -> bool:
        return self.dtype.kind in "ui"

    @property
    def maxv(self) -> float:
        return _INT_MAX.get(self.dtype.type, 0.0)

    def empty_out(self, n, out_hw):
        shape = (n, out_hw[0], out_hw[1], self.c)
        if self.on_device:
            from . import _cuda

            return _cuda.cuda.device_array(shape, dtype=self.dtype)
        try:
            return np.empty(shape, dtype=self.dtype)
        except (ValueError, MemoryError):  # "array is too big", "maximum allowed dimension exceeded", no memory
            size = float(np.prod(shape, dtype=np.float64)) * self.dtype.itemsize / 2 ** 30
            raise InvalidArgumentError(f"an output of shape {shape} is too large ({size:.3g} GiB)") from None

    def require_backend(self, name: str):
        """Device images stay on the device: they need the cuda backend."""
        if self.on_device and name != "cuda":
            raise InvalidArgumentError(f"the image is a GPU (device) array; use backend='cuda' (got {name!r})")

    def restore(self, out4, batched: bool):
        """Give ``(N, Ho, Wo, C)`` back in the caller's layout."""
        if self.result_dtype != self.dtype:
            out4 = out4.astype(self.result_dtype)
        if batched or self.ndim == 4:
            return out4 if self.ndim != 2 else out4[..., 0]
        if self.ndim == 2:
            return out4[0, :, :, 0]
        return out4[0]
