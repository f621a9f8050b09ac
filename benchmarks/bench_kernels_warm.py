"""Warm CPU kernel timings per kernel family: min and median of repeated calls, one JSON line.

    NUMBA_NUM_THREADS=2 PYTHONPATH=<tree> python benchmarks/bench_kernels_warm.py

Run it alternately against two source trees (before / after a change, PYTHONPATH pointing at each)
in one sitting to compare kernel speed: the machine's load hits both alike. ``THREADS`` sets
numba's thread count (default 2), ``MIN_TIME`` the seconds of sampling per case (default 2.5),
``CASES`` a comma-separated list of words: only the cases whose name contains one of them run.
The load average is printed with the results.
"""
import json, os, sys, time
import numba, numpy as np, stntool
numba.set_num_threads(int(os.environ.get("THREADS", "2")))
rng = np.random.default_rng(0)
th = np.array([[0.9 * np.cos(0.17), -0.9 * np.sin(0.17), 0.02], [0.9 * np.sin(0.17), 0.9 * np.cos(0.17), -0.01]])
cases = {}
for dt in ("uint8", "float32"):
    img = (rng.random((512, 512, 3)) * (255 if dt == "uint8" else 1)).astype(dt)
    for mode in ("nearest", "bilinear", "bicubic"):
        cases[f"512 {dt} {mode}"] = (lambda img=img, mode=mode: stntool.warp(img, th, mode=mode, backend="cpu"), 60)
big = (rng.random((2048, 2048, 3)) * 255).astype(np.uint8)
cases["2048 uint8 bilinear"] = (lambda: stntool.warp(big, th, backend="cpu"), 15)
batch = rng.random((64, 128, 128, 3)).astype(np.float32)
ths = np.repeat(th[None], 64, 0)
cases["64x128x128x3 f32 batch"] = (lambda: stntool.warp(batch, ths, backend="cpu"), 25)
proj = [[0.9, -0.2, 0.0], [0.2, 0.9, 0.0], [0.1, 0.05, 1.0]]
img8 = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
cases["512 uint8 projective bilinear"] = (lambda: stntool.warp(img8, proj, backend="cpu"), 40)
g = stntool.affine_grid(th, (512, 512))
cases["512 uint8 grid_sample bilinear"] = (lambda: stntool.grid_sample(img8, g, backend="cpu"), 40)
src = np.array([[0, 0], [511, 0], [0, 511], [511, 511], [250, 260.], [100, 400.]])
dst = np.array([[0, 0], [511, 0], [0, 511], [511, 511], [256, 256.], [110, 390.]])
cases["512 uint8 warp_tps bilinear"] = (lambda: stntool.warp_tps(img8, src, dst, backend="cpu"), 30)
imgd = rng.random((2, 128, 128, 3)); gd = rng.uniform(-1, 1, (2, 128, 128, 2)); go = rng.standard_normal((2, 128, 128, 3))
cases["backward 2x128x128x3"] = (lambda: stntool.grid_sample_backward(imgd, gd, go, backend="cpu"), 20)
only = [w for w in os.environ.get("CASES", "").split(",") if w]
res = {}
for name, (f, n) in cases.items():
    if only and not any(w in name for w in only):
        continue
    for _ in range(3):
        f()
    ts = []
    t_end = time.perf_counter() + float(os.environ.get("MIN_TIME", "2.5"))
    while len(ts) < n or (time.perf_counter() < t_end and len(ts) < 20 * n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    res[name] = (min(ts) * 1e3, float(np.median(ts)) * 1e3)
print(json.dumps({"load": os.getloadavg(), "res": res}))
