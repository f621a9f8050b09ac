"""Why the CUDA backend is or is not usable, without initialising CUDA at import."""

from __future__ import annotations

import os


def reason() -> str:
    if os.environ.get("STNTOOL_DISABLE_CUDA"):
        return "disabled by the STNTOOL_DISABLE_CUDA environment variable"
    try:
        import numba_cuda  # noqa: F401
    except ImportError:
        try:
            from numba import cuda  # noqa: F401
        except ImportError:
            return "numba-cuda is not installed (pip install 'stntool[cuda]')"
    try:
        from . import _cuda
    except ImportError as exc:
        return f"the CUDA kernels could not be loaded ({exc})"
    return _cuda.unavailable_reason() or "no usable GPU was found"
