"""Shared pieces of the PyTorch parity tests: tolerances, tie avoidance, comparison.

Tolerances (max abs error unless said otherwise) and why:

* ``affine_grid``: torch computes the grid in the θ dtype; stntool computes in float64 and casts.
  For float32 the two differ by a few ulps of values up to ~3 (ulp 2.4e-7), hence 1e-6.
* Forward sampling, float32: image values are in [-1, 1]; torch interpolates in float32
  (relative error ~1e-7 per operation, a handful of operations), stntool in float64 and rounds once.
  Bilinear and nearest stay well under 1e-5. Bicubic sums 16 taps with weights up to ~1.2 in
  magnitude and its coordinates are unnormalized in float32, so 1e-4.
* Forward, float64: both sides compute in float64 with differently ordered operations; 1e-12
  (bicubic 1e-11) leaves room for that and nothing else. The "cpu" backend's fixed-point
  coordinates loosen this to ``CPU_FLOAT64_ATOL`` (see there).
* ``nearest`` must match exactly: the grids keep away from ties, so both pick the same pixel.
* Gradients are compared *relative to the largest reference entry* of the same array:
  ``max|got - want| <= rtol * max(1, max|want|)``. torch accumulates float32 sums (up to Ho*Wo
  contributions on one border pixel for ``grad_img``, Ho*Wo grid gradients times base
  coordinates for ``grad_θ``) and unnormalizes coordinates in float32, while stntool works in
  float64 from the same float32 inputs; the float32 error then is a few ulps of the largest
  term times a small count, so ``rtol = 2e-5`` for float32 (observed 1e-6) and ``1e-12`` for float64 (observed 2e-15).
"""

from __future__ import annotations

import os

import numpy as np

#: Backends checked against torch. Set ``STNTOOL_PARITY_BACKENDS=numpy,cpu,cuda`` on a GPU machine
#: (or under ``NUMBA_ENABLE_CUDASIM=1``, slowly) to include the CUDA backend.
BACKENDS = tuple(b.strip() for b in os.environ.get("STNTOOL_PARITY_BACKENDS", "numpy,cpu").split(",") if b.strip())
MODES = ("nearest", "bilinear", "bicubic")
PADDINGS = ("zeros", "border", "reflection")
MARGIN = 2e-3

GRID_ATOL = {"float32": 1e-6, "float64": 1e-12}
FORWARD_ATOL = {
    ("float32", "nearest"): 0.0,
    ("float32", "bilinear"): 1e-5,
    ("float32", "bicubic"): 1e-4,
    ("float64", "nearest"): 0.0,
    ("float64", "bilinear"): 1e-12,
    ("float64", "bicubic"): 1e-11,
}
GRAD_RTOL = {"float32": 2e-5, "float64": 1e-12}
# The "cpu" backend rounds pixel coordinates to 32.32 fixed point (error <= 2**-33 px) and the
# fused warp steps along a row by a rounded increment, so after j steps the coordinate is off by
# up to (1 + 2j) * 2**-33 px (2e-9 px for our widths <= 9). With image values in [-1, 1] a value
# changes by at most ~4 per pixel per axis (bicubic overshoot), so float64 results are within
# ~2e-8 of exact; observed: 3e-10 for grid_sample, 2e-9 for warp.
CPU_FLOAT64_ATOL = 2e-8


def forward_atol(dtype_name: str, mode: str, backend: str) -> float:
    """Forward tolerance for a dtype, mode and backend."""
    atol = FORWARD_ATOL[dtype_name, mode]
    if backend == "cpu" and dtype_name == "float64" and mode != "nearest":
        atol = max(atol, CPU_FLOAT64_ATOL)
    return atol


def unnormalized(grid: np.ndarray, in_hw, align_corners: bool) -> np.ndarray:
    """Pixel coordinates (float64) of a normalized ``(..., 2)`` grid, written out independently of stntool."""
    h, w = in_hw
    out = np.empty(grid.shape)
    for axis, size in ((0, w), (1, h)):
        g = grid[..., axis].astype(np.float64)
        out[..., axis] = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
    return out


def away_from_kinks(grid: np.ndarray, in_hw, align_corners: bool, margin: float = MARGIN) -> bool:
    """True when every pixel coordinate is ``margin`` away from half-integers and integers.

    ``nearest`` jumps at half-integers (ties) and the bilinear grid gradient at integers; there
    float32 rounding in torch and float64 arithmetic in stntool may fall on different sides.
    Reflection and clipping keep these distances (they reflect about integers or half-integers,
    or land on integers where the gradient is zero), so checking the raw coordinate suffices.
    Axes of one pixel with ``align_corners=True`` always map to pixel 0 and are skipped.
    """
    pix = unnormalized(grid, in_hw, align_corners)
    for axis, size in ((0, in_hw[1]), (1, in_hw[0])):
        if align_corners and size == 1:
            continue
        frac = pix[..., axis] - np.floor(pix[..., axis])
        if np.any(np.abs(frac - 0.5) < margin) or np.any(np.minimum(frac, 1 - frac) < margin):
            return False
    return True


def random_theta(rng: np.random.Generator) -> np.ndarray:
    """(2, 2, 3): a near-identity θ and a large one (rotation, anisotropic scale, shear, big shift)."""
    small = np.eye(2, 3) + rng.normal(scale=0.05, size=(2, 3))
    ang = rng.uniform(-np.pi, np.pi)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    lin = rot @ np.diag(rng.uniform(0.5, 1.8, size=2)) @ np.array([[1, rng.uniform(-0.5, 0.5)], [0, 1]])
    big = np.hstack([lin, rng.uniform(-1.0, 1.0, size=(2, 1))])
    return np.stack([small, big])


def max_err(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != torch {want.shape}"
    return float(np.abs(got - want).max()) if got.size else 0.0


def assert_close(got, want, atol: float, what: str) -> None:
    """``max|got - want| <= atol``, reporting the worst element."""
    err = max_err(got, want)
    if not err <= atol:
        got = np.asarray(got, np.float64)
        want = np.asarray(want, np.float64)
        diff = np.where(np.isnan(got - want), np.inf, np.abs(got - want))
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        raise AssertionError(f"{what}: max abs error {err:.3g} > {atol:.3g}; worst at {at}: "
                             f"stntool {float(got[at])!r}, torch {float(want[at])!r}")


def assert_grad_close(got, want, dtype_name: str, what: str) -> None:
    """Gradient comparison relative to the largest reference entry (see the module docstring)."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max()) if want.size else 0.0)
    assert_close(got, want, GRAD_RTOL[dtype_name] * scale, what)
