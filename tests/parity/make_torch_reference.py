"""Generate ``tests/data/torch_reference.npz``: frozen PyTorch results for the parity tests.

Run by hand when the cases change (needs torch)::

    python tests/parity/make_torch_reference.py

(run as a script: it imports ``_parity_util`` from its own folder).

Every case is built in PyTorch's own layout (NCHW images, ``(N, Ho, Wo, 2)`` grids) and stored
channel-last (NHWC), the layout stntool uses. For each dtype (float32, float64), each size pair
(odd sizes and single-pixel axes included), each ``align_corners`` and two kinds of grid
(``affine``: ``affine_grid`` of a near-identity θ and a large θ that reaches outside the image;
``grid``: explicit random grids reaching to ±1.7) the file holds

* the grid torch sampled (and θ for affine cases),
* ``grid_sample`` outputs for every mode x padding,
* for bilinear and every padding, the autograd gradients of ``sum(out * grad_out)`` with respect
  to the image, the grid and (affine cases) θ through ``affine_grid``.

Points where the result is discontinuous are kept out of the cases, because there float32
rounding inside torch and float64 arithmetic in stntool can legitimately land on different
sides: ``nearest`` jumps at half-pixel positions (ties), and the bilinear *gradient* with respect
to the grid jumps at whole-pixel positions. Every grid is redrawn until each pixel coordinate is
at least ``MARGIN`` pixels away from both. Axes of one pixel with ``align_corners=True`` are
exempt: every point maps to pixel 0 and the gradient there is zero by definition.

Layout of the file: ``index`` is a JSON string listing the cases; array ``c{k}_{name}`` belongs
to case ``k``. ``torch_version`` records the PyTorch that produced it.
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from _parity_util import MARGIN, MODES, PADDINGS, away_from_kinks, random_theta

SEED = 20240611
# (in_hw, out_hw, channels)
SIZES = (
    ((1, 7), (3, 4), 2),
    ((5, 1), (5, 1), 1),
    ((5, 7), (5, 7), 2),
    ((6, 9), (4, 6), 3),
    ((6, 9), (7, 5), 1),
)
BATCH = 2
OUT_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "torch_reference.npz"


def torch_affine_grid(theta: np.ndarray, dtype, n, c, out_hw, align_corners):
    t = torch.tensor(theta, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit-size grids with align_corners=True
        return F.affine_grid(t, (n, c) + tuple(out_hw), align_corners=align_corners)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def make_case(rng, np_dtype, in_hw, out_hw, c, align_corners, kind):
    tdtype = torch.float32 if np_dtype == np.float32 else torch.float64
    img_nchw = torch.tensor(rng.uniform(-1.0, 1.0, size=(BATCH, c) + tuple(in_hw)), dtype=tdtype)
    arrays = {"img": nhwc(img_nchw)}
    for _ in range(10000):
        if kind == "affine":
            theta = random_theta(rng)
            grid = torch_affine_grid(theta, tdtype, BATCH, c, out_hw, align_corners)
        else:
            grid = torch.tensor(rng.uniform(-1.7, 1.7, size=(BATCH,) + tuple(out_hw) + (2,)), dtype=tdtype)
        if away_from_kinks(grid.numpy(), in_hw, align_corners):
            break
    else:  # pragma: no cover
        raise RuntimeError("could not draw a grid away from ties")
    if kind == "affine":
        arrays["theta"] = theta.astype(np_dtype)
    arrays["grid"] = grid.numpy()
    for mode in MODES:
        for padding in PADDINGS:
            out = F.grid_sample(img_nchw, grid, mode=mode, padding_mode=padding, align_corners=align_corners)
            arrays[f"out_{mode}_{padding}"] = nhwc(out)
    grad_out = torch.tensor(rng.normal(size=(BATCH, c) + tuple(out_hw)), dtype=tdtype)
    arrays["grad_out"] = nhwc(grad_out)
    for padding in PADDINGS:
        img_v = img_nchw.clone().requires_grad_(True)
        if kind == "affine":
            theta_v = torch.tensor(arrays["theta"]).requires_grad_(True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grid_v = F.affine_grid(theta_v, (BATCH, c) + tuple(out_hw), align_corners=align_corners)
            grid_v.retain_grad()
        else:
            grid_v = grid.clone().requires_grad_(True)
        out = F.grid_sample(img_v, grid_v, mode="bilinear", padding_mode=padding, align_corners=align_corners)
        (out * grad_out).sum().backward()
        arrays[f"grad_img_{padding}"] = nhwc(img_v.grad)
        arrays[f"grad_grid_{padding}"] = grid_v.grad.numpy().copy()
        if kind == "affine":
            arrays[f"grad_theta_{padding}"] = theta_v.grad.numpy().copy()
    meta = {"dtype": np.dtype(np_dtype).name, "in_hw": list(in_hw), "out_hw": list(out_hw), "channels": c,
            "align_corners": align_corners, "kind": kind}
    return meta, arrays


def main() -> None:
    rng = np.random.default_rng(SEED)
    index, payload = [], {}
    for np_dtype in (np.float32, np.float64):
        for in_hw, out_hw, c in SIZES:
            for align_corners in (False, True):
                for kind in ("affine", "grid"):
                    meta, arrays = make_case(rng, np_dtype, in_hw, out_hw, c, align_corners, kind)
                    k = len(index)
                    meta["id"] = k
                    meta["arrays"] = sorted(arrays)
                    index.append(meta)
                    for name, arr in arrays.items():
                        payload[f"c{k}_{name}"] = arr
    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_PATH, index=np.array(json.dumps(index)), torch_version=np.array(torch.__version__),
                        seed=np.array(SEED), margin=np.array(MARGIN), **payload)
    size_kib = OUT_PATH.stat().st_size / 1024
    print(f"wrote {len(index)} cases to {OUT_PATH} ({size_kib:.0f} KiB), torch {torch.__version__}")


if __name__ == "__main__":
    main()
