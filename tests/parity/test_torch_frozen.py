"""stntool against frozen PyTorch results (``tests/data/torch_reference.npz``); torch is not needed.

The file is made by ``make_torch_reference.py`` in this folder: float32 and float64, odd and
single-pixel sizes, near-identity and large θ, explicit grids reaching outside the image, every
mode x padding x ``align_corners``, and autograd gradients of bilinear sampling. Tolerances are
explained in ``_parity_util``.
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import pytest

import stntool
from _parity_util import BACKENDS, GRID_ATOL, MODES, PADDINGS, assert_close, assert_grad_close, forward_atol

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "torch_reference.npz"


@functools.lru_cache(maxsize=1)
def _load():
    with np.load(DATA) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("index"))), arrays


def _index():
    return _load()[0]


def _case_id(meta) -> str:
    (h, w), (ho, wo) = meta["in_hw"], meta["out_hw"]
    ac = "acT" if meta["align_corners"] else "acF"
    return f"{meta['dtype']}-{h}x{w}to{ho}x{wo}-{ac}-{meta['kind']}"


class Case:
    """One stored case: metadata plus its arrays, NHWC."""

    def __init__(self, meta):
        self.meta = meta
        self.dtype = meta["dtype"]
        self.in_hw = tuple(meta["in_hw"])
        self.out_hw = tuple(meta["out_hw"])
        self.ac = bool(meta["align_corners"])
        self.kind = meta["kind"]
        self._arrays = _load()[1]

    def __getitem__(self, name):
        return self._arrays[f"c{self.meta['id']}_{name}"]


ALL = [pytest.param(m["id"], id=_case_id(m)) for m in _index()]
AFFINE = [pytest.param(m["id"], id=_case_id(m)) for m in _index() if m["kind"] == "affine"]


def _case(k) -> Case:
    return Case(_index()[k])


def test_reference_file_is_complete():
    index, arrays = _load()
    assert str(arrays["torch_version"]).startswith("2.")
    assert {m["dtype"] for m in index} == {"float32", "float64"}
    assert {m["kind"] for m in index} == {"affine", "grid"}
    assert {m["align_corners"] for m in index} == {False, True}
    assert DATA.stat().st_size < 1 << 20
    for m in index:
        for name in m["arrays"]:
            assert f"c{m['id']}_{name}" in arrays


# --------------------------------------------------------------------------- grids

@pytest.mark.parametrize("k", AFFINE)
def test_affine_grid(k):
    c = _case(k)
    got = stntool.affine_grid(c["theta"], c.out_hw, c.ac)
    assert got.dtype == np.dtype(c.dtype)
    assert_close(got, c["grid"], GRID_ATOL[c.dtype], "affine_grid")


@pytest.mark.parametrize("k", AFFINE)
def test_affine_grid_unbatched(k):
    c = _case(k)
    for n in range(c["theta"].shape[0]):
        got = stntool.affine_grid(c["theta"][n], c.out_hw, c.ac)
        assert_close(got, c["grid"][n], GRID_ATOL[c.dtype], f"affine_grid theta[{n}]")


# --------------------------------------------------------------------------- forward

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", ALL)
def test_grid_sample(k, mode, padding, backend):
    c = _case(k)
    got = stntool.grid_sample(c["img"], c["grid"], mode, padding, c.ac, backend=backend)
    assert got.dtype == np.dtype(c.dtype)
    assert_close(got, c[f"out_{mode}_{padding}"], forward_atol(c.dtype, mode, backend), f"grid_sample {mode}/{padding}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", AFFINE)
def test_warp_fused(k, mode, padding, backend):
    """``warp(img, θ)`` samples where torch's ``affine_grid`` + ``grid_sample`` do, in one pass."""
    c = _case(k)
    got = stntool.warp(c["img"], c["theta"], c.out_hw, mode, padding, c.ac, backend=backend)
    assert got.dtype == np.dtype(c.dtype)
    assert_close(got, c[f"out_{mode}_{padding}"], forward_atol(c.dtype, mode, backend), f"warp {mode}/{padding}")


# --------------------------------------------------------------------------- backward

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("k", ALL)
def test_grid_sample_backward(k, padding, backend):
    c = _case(k)
    grad_img, grad_grid = stntool.grid_sample_backward(c["img"], c["grid"], c["grad_out"], padding, c.ac,
                                                       backend=backend)
    assert grad_img.shape == c["img"].shape and grad_grid.shape == c["grid"].shape
    assert_grad_close(grad_img, c[f"grad_img_{padding}"], c.dtype, f"grad_img {padding}")
    assert_grad_close(grad_grid, c[f"grad_grid_{padding}"], c.dtype, f"grad_grid {padding}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("k", AFFINE)
def test_warp_backward(k, padding, backend):
    c = _case(k)
    grad_img, grad_theta = stntool.warp_backward(c["img"], c["theta"], c["grad_out"], c.out_hw, padding, c.ac,
                                                 backend=backend)
    assert grad_theta.shape == c["theta"].shape
    assert_grad_close(grad_img, c[f"grad_img_{padding}"], c.dtype, f"grad_img {padding}")
    assert_grad_close(grad_theta, c[f"grad_theta_{padding}"], c.dtype, f"grad_theta {padding}")


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("k", AFFINE)
def test_affine_grid_backward(k, padding):
    """The chain rule alone: torch's grid gradient through stntool gives torch's θ gradient."""
    c = _case(k)
    got = stntool.affine_grid_backward(c[f"grad_grid_{padding}"], c.out_hw, c.ac)
    assert_grad_close(got, c[f"grad_theta_{padding}"], c.dtype, f"affine_grid_backward {padding}")
