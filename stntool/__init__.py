"""stntool: spatial-transformer warps with PyTorch's semantics, on NumPy images.

θ maps output normalized coordinates to input normalized coordinates, exactly like
``torch.nn.functional.affine_grid`` + ``grid_sample`` (see :mod:`stntool.coords`).
Importing stntool does not import numba (kernels compile, or load from the on-disk cache, on
first use), and the public names load on first access, so ``stntool --help`` stays fast.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "affine_grid_backward": "api",
    "grid_sample": "api",
    "grid_sample_backward": "api",
    "tps_grid_backward": "api",
    "tps_plan": "tps_lattice",
    "TpsPlan": "tps_lattice",
    "warp": "api",
    "warp_backward": "api",
    "warp_tps": "api",
    "warp_plan": "api",
    "set_compile_notice": "_compile_notice",
    "StnError": "errors",
    "InvalidArgumentError": "errors",
    "DegenerateError": "errors",
    "BackendUnavailableError": "errors",
    "affine_grid": "grids",
    "projective_grid": "grids",
    "theta_grid": "grids",
    "tps_grid": "grids",
    "ThinPlateSpline": "tps",
    "fit_affine": "transforms",
    "fit_projective": "transforms",
    "theta_from_cv2": "transforms",
    "theta_from_pixel_map": "transforms",
    "theta_to_cv2": "transforms",
    "WarpSpec": "records",
    "TpsPoints": "records",
    "apply_spec": "records",
}
_SUBMODULES = {"coords", "transforms", "grids", "tps", "tps_lattice", "api", "errors", "sampling", "io", "records",
               "batch", "maps", "labels", "augment", "locnet", "pages", "pageview", "train"}

__all__ = ["__version__", "coords", "transforms", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stntool' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
