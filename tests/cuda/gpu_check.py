"""Parity and timing of the CUDA backend on a real GPU (not a pytest module; needs a GPU and torch).

Run on the GPU machine, from the repository root::

    python tests/cuda/gpu_check.py            # parity + benchmarks, prints a summary
    python tests/cuda/gpu_check.py --quick    # parity only

Checks
------
* parity of every CUDA kernel against the NumPy reference (modes x paddings x align_corners x
  dtypes, per-image maps, NaN grid), integer outputs within 1 (FMA contraction), floats 1e-4;
* float32 parity against torch's CUDA ``grid_sample`` forward (max abs err <= 1e-4) and backward
  (max err <= 2e-5 of the largest gradient, as the CPU parity tests);
* timings with CUDA events after a warm-up (compilation reported separately): fused affine
  bilinear float32 64x3x512x512 vs torch ``affine_grid + grid_sample`` and ``grid_sample``
  alone, a device-to-device copy for the bandwidth ceiling, uint8 64x512x512x3 effective
  bandwidth, and a TPS 4x4 warp vs torch STN-style TPS (basis matmul + grid_sample).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from stntool.sampling import _cuda  # noqa: E402  (installs the numpy row_stack alias first)
from stntool import api  # noqa: E402
from stntool.sampling import _reference as ref  # noqa: E402
from stn_testing import random_image as rand_img  # noqa: E402

MODES = ["nearest", "bilinear", "bicubic"]
PADDINGS = ["zeros", "border", "reflection", "constant"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
results: list[tuple[str, bool, str]] = []


def record(name, ok, detail):
    results.append((name, bool(ok), detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def max_err(a, b):
    return float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def parity_reference(rng):
    n, h, w, c = 3, 37, 53, 3
    maps = np.zeros((n, 3, 3))
    for k in range(n):
        a = rng.uniform(-0.5, 0.5)
        s = rng.uniform(0.8, 1.3)
        maps[k, :2, :2] = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        maps[k, :2, 2] = rng.uniform(-6, 6, 2)
        maps[k, 2, 2] = 1.0
    grid = rng.uniform(-1.3, 1.3, (n, 29, 41, 2))
    grid[0, 0, 0] = np.nan
    g = np.linspace(-1, 1, 3)
    ctrl = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    plan = api.tps_plan(ctrl + rng.uniform(-0.05, 0.05, ctrl.shape), ctrl, (h, w), (33, 49), normalized=True)
    plan_gpu = api.tps_plan(ctrl * 0.97, ctrl, (h, w), (33, 49), normalized=True, backend="cuda")
    plan_cpu = api.tps_plan(ctrl * 0.97, ctrl, (h, w), (33, 49), normalized=True, backend="cpu")
    e = max(float(np.abs(plan_gpu.lattice - plan_cpu.lattice).max()),
            float(np.abs(plan_gpu.tables - plan_cpu.tables).max()))
    record("TPS plan built by the CUDA kernels", plan_gpu.step == plan_cpu.step and e <= 1e-9, f"max diff vs CPU {e:.3g}")
    worst = {}
    for dtype in DTYPES:
        img = rand_img(rng, (n, h, w, c), dtype)
        is_int = np.dtype(dtype).kind == "u"
        maxv = float(np.iinfo(dtype).max) if is_int else 0.0
        for mode_id, mode in enumerate(MODES):
            for pad_id, pad in enumerate(PADDINGS):
                fill = np.array([3.0, 7.0, 11.0]) if pad == "constant" else np.zeros(c)
                fill_ref = fill if pad == "constant" else None
                for ac in (False, True):
                    out = np.empty((n, 31, 47, c), dtype)
                    _cuda.warp_matrix(img, maps, out, mode_id, pad_id, ac, fill, is_int, maxv, False)
                    exp = ref.warp_matrix_spec(img, maps, np.empty_like(out), mode, pad, ac, fill_ref)
                    e1 = max_err(out, exp)
                    out = np.empty((n, 29, 41, c), dtype)
                    _cuda.sample_grid(img, grid, out, mode_id, pad_id, ac, fill, is_int, maxv)
                    e2 = max_err(out, ref.grid_sample(img, grid, mode, pad, ac, fill_ref))
                    out = np.empty((n, 33, 49, c), dtype)
                    _cuda.warp_tps_lattice(img, plan.lattice, plan.step, plan.singular, plan.tables, plan.radius,
                                           plan.norm_scale[0], plan.norm_scale[1], out, mode_id, pad_id, ac, fill,
                                           is_int, maxv)
                    exp = ref.warp_tps_lattice_spec(img, plan.lattice, plan.step, plan.singular, plan.tables,
                                                    plan.radius, plan.norm_scale, np.empty_like(out), mode, pad, ac,
                                                    fill_ref)
                    e3 = max_err(out, exp)
                    key = np.dtype(dtype).name
                    worst[key] = max(worst.get(key, 0.0), e1, e2, e3)
    for key, e in worst.items():
        tol = 1.0 if key.startswith("uint") else 1e-4
        record(f"reference parity {key}", e <= tol, f"max err {e:.3g} (tol {tol})")
    img = rng.random((n, h, w, c))
    go = rng.standard_normal((n, 29, 41, c))
    for pad_id, pad in enumerate(PADDINGS[:3]):
        for ac in (False, True):
            gi, gg = _cuda.grid_sample_backward(img, grid, go, pad_id, ac, True)
            ri, rg = ref.grid_sample_backward_spec(img, grid, go, pad, ac)
            e = max(max_err(gi, ri), max_err(gg, rg))
            record(f"reference backward {pad} ac={ac}", e <= 1e-9, f"max err {e:.3g}")
    gi2, gg2 = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
    gi1, gg1 = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
    record("backward deterministic", np.array_equal(gi1, gi2) and np.array_equal(gg1, gg2), "two runs bit-identical")


def parity_torch(rng):
    import torch
    import torch.nn.functional as F

    n, c, h, w = 4, 3, 64, 96
    img = rng.random((n, h, w, c)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (n, 48, 80, 2)).astype(np.float32)
    timg = torch.tensor(img.transpose(0, 3, 1, 2), device="cuda", requires_grad=True)
    tgrid = torch.tensor(grid, device="cuda", requires_grad=True)
    for mode_id, mode in enumerate(MODES):
        for pad_id, pad in enumerate(PADDINGS[:3]):
            for ac in (False, True):
                out = np.empty((n, 48, 80, c), np.float32)
                _cuda.sample_grid(img, grid, out, mode_id, pad_id, ac, np.zeros(c), False, 0.0)
                t = F.grid_sample(timg, tgrid, mode=mode, padding_mode=pad, align_corners=ac)
                e = max_err(out, t.detach().cpu().numpy().transpose(0, 2, 3, 1))
                record(f"torch forward {mode} {pad} ac={ac}", e <= 1e-4, f"max err {e:.3g}")
                if mode == "bilinear":
                    go = torch.randn_like(t)
                    gi_t, gg_t = torch.autograd.grad(t, (timg, tgrid), go)
                    gi, gg = _cuda.grid_sample_backward(img.astype(np.float64), grid,
                                                             go.cpu().numpy().transpose(0, 2, 3, 1).astype(np.float64),
                                                             pad_id, ac, True)
                    # float32 gradients are sums of many terms: compared relative to the largest entry,
                    # as the CPU parity tests do (tests/parity/_parity_util.py, GRAD_RTOL float32)
                    e = 0.0
                    for got, want in ((gi, gi_t.cpu().numpy().transpose(0, 2, 3, 1)), (gg, gg_t.cpu().numpy())):
                        e = max(e, max_err(got, want) / max(1.0, float(np.abs(want).max())))
                    record(f"torch backward {pad} ac={ac}", e <= 2e-5, f"max err {e:.3g} of the largest gradient")


def bench(fn, reps=20):
    from numba import cuda

    fn()
    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    stop.synchronize()
    return cuda.event_elapsed_time(start, stop) / reps  # ms


def benchmarks(rng):
    import torch
    import torch.nn.functional as F
    from numba import cuda

    from stntool.transforms import pixel_map_from_theta

    n, c, h, w = 64, 3, 512, 512
    lines = []
    theta = np.zeros((n, 2, 3))
    for k in range(n):
        a = rng.uniform(-0.3, 0.3)
        theta[k, :, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        theta[k, :, 2] = rng.uniform(-0.1, 0.1, 2)
    maps = cuda.to_device(np.ascontiguousarray(pixel_map_from_theta(theta, (h, w), (h, w), False)))
    fill = cuda.to_device(np.zeros(c))
    # float32 NHWC for stntool, NCHW for torch (same bytes)
    d_img = cuda.to_device(rng.random((n, h, w, c)).astype(np.float32))
    d_out = cuda.device_array((n, h, w, c), np.float32)
    t0 = time.perf_counter()
    _cuda.warp_matrix(d_img, maps, d_out, 1, 0, False, fill, False, 0.0, False)
    cuda.synchronize()
    lines.append(f"first fused call (compile or cache load): {time.perf_counter() - t0:.2f} s")
    fused = bench(lambda: _cuda.warp_matrix(d_img, maps, d_out, 1, 0, False, fill, False, 0.0, False))
    timg = torch.rand((n, c, h, w), device="cuda")
    ttheta = torch.tensor(theta, dtype=torch.float32, device="cuda")
    tgrid = F.affine_grid(ttheta, (n, c, h, w), align_corners=False)
    t_full = bench(lambda: F.grid_sample(timg, F.affine_grid(ttheta, (n, c, h, w), align_corners=False),
                                         align_corners=False))
    t_gs = bench(lambda: F.grid_sample(timg, tgrid, align_corners=False))
    d_copy = cuda.device_array_like(d_img)
    t_copy = bench(lambda: d_copy.copy_to_device(d_img))
    nbytes = 2 * n * h * w * c * 4
    copy_bw = nbytes / t_copy / 1e6
    lines.append(f"float32 64x3x512x512 fused affine bilinear: {fused:.3f} ms ({nbytes / fused / 1e6:.0f} GB/s)")
    lines.append(f"torch affine_grid+grid_sample: {t_full:.3f} ms  ratio {t_full / fused:.2f}x (goal >= 2x)")
    lines.append(f"torch grid_sample alone: {t_gs:.3f} ms  ratio {t_gs / fused:.2f}x (goal >= 1x)")
    lines.append(f"device copy: {t_copy:.3f} ms ({copy_bw:.0f} GB/s); fused at {nbytes / fused / 1e6 / copy_bw:.0%} "
                 "of copy bandwidth (goal >= 60%)")
    u8 = cuda.to_device(rng.integers(0, 256, (n, h, w, c)).astype(np.uint8))
    u8_out = cuda.device_array((n, h, w, c), np.uint8)
    t_u8 = bench(lambda: _cuda.warp_matrix(u8, maps, u8_out, 1, 0, False, fill, True, 255.0, False))
    bw = 2 * n * h * w * c / t_u8 / 1e6
    lines.append(f"uint8 64x512x512x3 fused affine bilinear: {t_u8:.3f} ms, {bw:.0f} GB/s effective "
                 f"({bw / copy_bw:.0%} of copy; goal >= 50%)")
    # TPS 4x4: stntool plan (tol 0.01 px) + fused TPS warp vs torch basis matmul + grid_sample
    g = np.linspace(-1, 1, 4)
    src = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    dst = src + rng.uniform(-0.05, 0.05, src.shape)
    plan = api.tps_plan(src, dst, (h, w), normalized=True)
    step = plan.step
    d_lat = cuda.to_device(plan.lattice)
    d_sing = cuda.to_device(plan.singular)
    d_tab = cuda.to_device(plan.tables)
    t_tps = bench(lambda: _cuda.warp_tps_lattice(d_img, d_lat, step, d_sing, d_tab, plan.radius, plan.norm_scale[0],
                                                 plan.norm_scale[1], d_out, 1, 0, False, fill, False, 0.0))
    from stntool.grids import make_tps, out_norm_points

    basis = torch.tensor(make_tps(dst, dst).basis(out_norm_points((h, w), False).reshape(-1, 2)),
                         dtype=torch.float32, device="cuda")
    tsrc = torch.tensor(np.broadcast_to(src, (n,) + src.shape).copy(), dtype=torch.float32, device="cuda")
    t_tps_torch = bench(lambda: F.grid_sample(timg, (basis @ tsrc).view(n, h, w, 2), align_corners=False))
    lines.append(f"TPS 4x4 (lattice step {step}) fused: {t_tps:.3f} ms; torch basis matmul + grid_sample: "
                 f"{t_tps_torch:.3f} ms  ratio {t_tps_torch / t_tps:.2f}x")
    for line in lines:
        print(line, flush=True)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="parity only")
    args = ap.parse_args()
    if not _cuda.is_available() or _cuda._simulator_enabled():
        print(f"no real GPU: {_cuda.unavailable_reason() or 'the simulator is on'}", file=sys.stderr)
        return 2
    from numba import cuda

    import numba
    dev = cuda.get_current_device()
    print(f"device: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name} cc {dev.compute_capability}; "
          f"numpy {np.__version__}, numba {numba.__version__}", flush=True)
    rng = np.random.default_rng(0)
    parity_reference(rng)
    try:
        import torch

        if torch.cuda.is_available():
            print(f"torch {torch.__version__}", flush=True)
            parity_torch(rng)
            bench_lines = [] if args.quick else benchmarks(rng)
        else:
            record("torch", False, "torch has no CUDA device")
            bench_lines = []
    except ImportError:
        record("torch", False, "torch is not installed")
        bench_lines = []
    failed = [r for r in results if not r[1]]
    print("\nSUMMARY")
    print(f"parity checks: {len(results) - len(failed)} passed, {len(failed)} failed")
    for name, _, detail in failed:
        print(f"  FAILED {name}: {detail}")
    for line in bench_lines:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
