"""Bit-exact fingerprints of every backend's outputs over a matrix of sampling options.

A refactor of the kernels must not change a single output bit. This module builds a fixed set of
cases (dtype x mode x padding x channel count x align_corners, for affine, projective, grid and TPS
warps, plus the bilinear backward), runs them through the public API and hashes each output
(SHA-256 of dtype, shape and bytes). ``tests/data/golden_outputs.json`` holds the fingerprints of a
known-good build; ``test_golden.py`` compares the current build with it.

    python tests/parity/golden_outputs.py --write tests/data/golden_outputs.json [--backends numpy,cpu]

``--only PREFIX`` (e.g. ``warp_tps/``) re-records just the cases whose key starts with ``PREFIX`` and
keeps every other fingerprint already in the file, for a change that alters those cases on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys

import numpy as np

DTYPES = ("uint8", "uint16", "float32", "float64")
MODES = ("nearest", "bilinear", "bicubic")
PADDINGS = ("zeros", "border", "reflection", "constant")
CHANNELS = (1, 3, 4)
IN_HW = (11, 13)
OUT_HW = (12, 15)


def _image(dtype: str, c: int, n: int = 1) -> np.ndarray:
    rng = np.random.default_rng(1234 + c)
    v = rng.random((n,) + IN_HW + (c,))
    if dtype == "uint8":
        a = np.round(v * 255).astype(np.uint8)
    elif dtype == "uint16":
        a = np.round(v * 65535).astype(np.uint16)
    else:
        a = (v * 2.0 - 0.5).astype(dtype)
    return a if n > 1 else a[0]


def _fill(c: int):
    return [10.5, 200.25, 37.0, 3.75][:c]


def _grid() -> np.ndarray:
    import stntool

    g = stntool.affine_grid([[0.8, -0.45, 0.12], [0.5, 0.95, -0.2]], OUT_HW).copy()
    g[0, 0] = [np.nan, 0.0]
    g[0, 1] = [np.inf, 0.3]
    g[1, 2] = [3.5, -2.75]      # far outside
    g[2, 3] = [1.0, -1.0]       # exactly on the edges
    g[3, 4] = [-1.05, 0.999]
    return g


THETA_AFFINE = [[0.85, -0.4, 0.07], [0.45, 0.9, -0.13]]
THETA_PROJ = [[[1.1, 0.2, 0.05], [-0.15, 0.95, 0.1], [0.12, -0.2, 1.0]],
              [[0.7, -0.3, -0.2], [0.35, 1.2, 0.0], [-0.1, 0.25, 1.0]]]
TPS_SRC = [[0, 0], [12, 0], [0, 10], [12, 10], [6.3, 4.8], [3.1, 7.7]]
TPS_DST = [[0.5, -0.5], [12.5, 1.0], [-1, 10.5], [12, 9], [7.2, 5.5], [2.5, 8.4]]


def _digest(a) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256()
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:32]


def cases():
    """``(key, thunk(backend))`` for every case."""
    import stntool

    for dtype, mode, pad, c, ac in itertools.product(DTYPES, MODES, PADDINGS, CHANNELS, (False, True)):
        opts = dict(mode=mode, padding=pad, align_corners=ac, fill=_fill(c) if pad == "constant" else None)
        key = f"{dtype}/{mode}/{pad}/c{c}/ac{int(ac)}"
        img = _image(dtype, c)
        img2 = _image(dtype, c, n=2)
        yield f"warp/{key}", lambda be, img=img, o=opts: stntool.warp(img, THETA_AFFINE, OUT_HW, backend=be, **o)
        yield f"warp_proj/{key}", lambda be, img=img2, o=opts: stntool.warp(img, THETA_PROJ, OUT_HW, backend=be, **o)
        yield f"grid_sample/{key}", lambda be, img=img, o=opts: stntool.grid_sample(img, _grid(), backend=be, **o)
        yield f"warp_tps/{key}", lambda be, img=img, o=opts: stntool.warp_tps(img, TPS_SRC, TPS_DST, OUT_HW,
                                                                               backend=be, **o)
    rng = np.random.default_rng(99)
    for pad, c, ac in itertools.product(PADDINGS, CHANNELS, (False, True)):
        img = _image("float64", c)
        go = rng.standard_normal(OUT_HW + (c,))
        key = f"backward/{pad}/c{c}/ac{int(ac)}"
        yield key, lambda be, img=img, go=go, p=pad, a=ac: stntool.grid_sample_backward(img, _grid(), go, p, a,
                                                                                       backend=be)


#: Case keys whose bits depend on the CPU when computed with NumPy (the NumPy reference, and the CUDA kernels
#: under the simulator, which run as Python on NumPy scalars): thin-plate splines are evaluated with NumPy's
#: vectorised ``log`` and a BLAS matrix product, whose last bits follow the SIMD kernels the CPU selects
#: (AVX-512 or AVX2). Their outputs are compared with the CPU backend's, whose fingerprints are checked
#: exactly, within :func:`assert_close_to_kernels`' tolerances instead.
CPU_DEPENDENT = ("warp_tps/",)


def assert_close_to_kernels(key: str, got, kernels) -> None:
    """``got`` (a NumPy-computed output of case ``key``) matches the CPU kernels' output ``kernels``: nearest
    sampling in all but 1% of the values (a coordinate a few ulps from a pixel boundary may round the other
    way), integers within one level, float64 within 1e-7 and float32 within 1e-5 (values up to about 200)."""
    assert got.dtype == kernels.dtype and got.shape == kernels.shape, key
    diff = np.abs(got.astype(np.float64) - kernels.astype(np.float64))
    if key.split("/")[2] == "nearest":
        assert np.mean(diff > 0) <= 0.01, key
    elif got.dtype.kind == "u":
        assert diff.max() <= 1, key
    else:
        assert diff.max() <= (1e-7 if got.dtype == np.float64 else 1e-5), key


def fingerprints(backends, only=None) -> dict:
    """``{"backend/case": digest}`` for every case (or the case keys in ``only``)."""
    out = {}
    for key, thunk in cases():
        if only is not None and key not in only:
            continue
        for be in backends:
            res = thunk(be)
            if isinstance(res, tuple):
                out[f"{be}/{key}"] = "|".join(_digest(r) for r in res)
            else:
                out[f"{be}/{key}"] = _digest(res)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", required=True, help="JSON file to write")
    ap.add_argument("--backends", default="numpy,cpu")
    ap.add_argument("--only", metavar="PREFIX", help="re-record only the case keys starting with PREFIX, "
                    "keeping the rest of the file")
    args = ap.parse_args(argv)
    if args.only:
        with open(args.write) as f:
            fp = json.load(f)
        keys = {k for k, _ in cases() if k.startswith(args.only)}
        fp.update(fingerprints(args.backends.split(","), only=keys))
    else:
        fp = fingerprints(args.backends.split(","))
    with open(args.write, "w") as f:
        json.dump(fp, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"{len(fp)} fingerprints -> {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
