"""stntool: spatial-transformer warps with PyTorch's semantics, on NumPy images.

θ maps output normalized coordinates to input normalized coordinates, exactly like
``torch.nn.functional.affine_grid`` + ``grid_sample`` (see :mod:`stntool.coords`).
Importing stntool does not import numba; kernels compile (or load from the on-disk cache)
on first use.
"""

from ._version import __version__
from . import coords, transforms
from .api import (
    affine_grid_backward,
    grid_sample,
    grid_sample_backward,
    tps_grid_backward,
    TpsPlan,
    tps_plan,
    warp,
    warp_backward,
    warp_tps,
)
from .errors import BackendUnavailableError, DegenerateError, InvalidArgumentError, StnError
from .grids import affine_grid, projective_grid, theta_grid, tps_grid
from .tps import ThinPlateSpline
from .transforms import fit_affine, fit_projective, theta_from_cv2, theta_from_pixel_map, theta_to_cv2

__all__ = [
    "__version__",
    "coords",
    "transforms",
    "affine_grid",
    "projective_grid",
    "theta_grid",
    "tps_grid",
    "grid_sample",
    "warp",
    "warp_tps",
    "tps_plan",
    "TpsPlan",
    "grid_sample_backward",
    "affine_grid_backward",
    "warp_backward",
    "tps_grid_backward",
    "ThinPlateSpline",
    "theta_from_cv2",
    "theta_to_cv2",
    "theta_from_pixel_map",
    "fit_affine",
    "fit_projective",
    "StnError",
    "InvalidArgumentError",
    "DegenerateError",
    "BackendUnavailableError",
]
