"""Engine benchmark: stntool's fused CPU kernels against OpenCV, PyTorch, scikit-image, Kornia and
Albumentations, all measured in one run on this machine.

    python benchmarks/bench_engine.py            # full run, writes benchmarks/results/engine.md
    python benchmarks/bench_engine.py --quick    # fewer repetitions (smoke test)

Every timing is the minimum over N repetitions after warm-up, with the contenders of one row interleaved
in blocks of calls (A A A A A, B B B B B, A ...: see :func:`bench`) so that load from other processes hits
them alike. Peers that are not installed are
reported as "n/a". Kernel threads: numba, OpenCV and torch all get ``--threads`` (default 2).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# PyTorch's OpenMP runtime reads this when it loads: without it, its idle workers spin after each call on the
# cores the next contender needs (stntool sets it for its own kernels, but only when they load, after torch)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import stntool  # noqa: E402


# --------------------------------------------------------------------------- helpers

#: Calls of one contender in a row (:func:`bench`).
BLOCK = 5


def bench(fns: dict, reps: int, warmup: int = 2, min_time: float = 0.0, block: int = BLOCK) -> dict:
    """Min-of-N timing, the contenders interleaved in blocks: ``block`` calls of one, then ``block`` of the
    next (A A A A A, B B B B B, A ...), until each has made ``reps`` counted calls (and, with ``min_time``,
    until that many seconds have passed, ten times as many calls at most). The first call of each block is
    not counted. Returns ``{name: (min_s, median_s, n)}``.

    Why blocks: after a parallel call, each library's idle threads wait for the next call by spinning
    for a while (OpenCV's pool about 2,000 pause loops a worker, stntool's helpers up to ``SPIN_US``), on
    the cores the other library's next call needs. Alternating single calls times each one partly on one
    core, depending on whose spinning thread the scheduler runs: on a 2-core AMD EPYC, 512x512x3 uint8
    nearest alternated call by call, stntool's helper took part in 60% of the calls of some runs and those
    calls took as long as one thread alone (147-151 us against 93-107), in 100% with OpenCV's spinning off
    (``OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER=0``). Blocks time each library as a loop of its own calls runs,
    while load from other processes still hits them alike."""
    block = max(1, min(block, reps))
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {k: [] for k in fns}
    start = time.perf_counter()
    while True:
        counted = min(len(v) for v in times.values())
        if counted >= reps and (time.perf_counter() - start >= min_time or counted >= 10 * reps):
            break
        for k, f in fns.items():
            for m in range(block + 1):
                t0 = time.perf_counter()
                f()
                if m:
                    times[k].append(time.perf_counter() - t0)
    return {k: (min(v), float(np.median(v)), len(v)) for k, v in times.items()}


def child_env(**extra) -> dict:
    """The environment for a timed child process: this one's, with ``extra`` set, and without
    ``PYTHONDONTWRITEBYTECODE``, so the child writes and then reuses the bytecode of this checkout's modules as
    a default Python does (with it set, every run compiles again each module edited since its bytecode was
    last written: tens of milliseconds for the kernel module alone)."""
    env = dict(os.environ, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_command(cmd, env, shell: bool = False) -> float:
    """Wall-clock seconds of one run of a command (output discarded); raises with its stderr's tail when it
    fails. ``shell``: ``cmd`` is a shell line."""
    import subprocess

    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, shell=shell)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        shown = cmd if shell else " ".join(cmd[:4])
        raise RuntimeError(f"{shown} ... failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return dt


def jpegs_made_once(folder: Path, n: int, tag: str, make) -> Path:
    """``folder`` holding the ``n`` JPEGs that ``make()`` writes, made once: a stamp file ``.made-<tag>``
    says they are there (so a changed recipe needs a new tag); otherwise the folder's JPEGs are removed and
    ``make()`` runs."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f".made-{tag}"
    if stamp.exists() and len(list(folder.glob("*.jpg"))) == n:
        return folder
    for f in folder.glob("*.jpg"):
        f.unlink()
    make()
    stamp.write_text("")
    return folder


def write_report(report: str, out=""):
    """Print a benchmark's markdown report, and write it to ``out`` too when given."""
    print(report)
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        print(f"# wrote {out}", file=sys.stderr)


def ms(t: float | None) -> str:
    if t is None:
        return "n/a"
    return f"{t * 1e3:.2f}" if t < 0.1 else f"{t * 1e3:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    return f"{a / b:.2f}"


def vs_cv2(case: str, r: dict, **extra) -> dict:
    """A row of a section against OpenCV from :func:`bench`'s result ``r`` (contenders ``stntool`` and ``cv2``)."""
    return {"case": case, "stntool": r["stntool"][0], "peer": r["cv2"][0], "stntool_med": r["stntool"][1],
            "peer_med": r["cv2"][1], **extra}


def cv2_table(heading: str, rows) -> list:
    """The report lines of a section of :func:`vs_cv2` rows in milliseconds, its heading first."""
    lines = [heading, "", "| case | stntool ms | cv2 ms | stntool / cv2 | median ms (stntool / cv2) |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {ms(r['stntool'])} | {ms(r['peer'])} | **{ratio(r['stntool'], r['peer'])}** "
                     f"| {ms(r['stntool_med'])} / {ms(r['peer_med'])} |")
    return lines + [""]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def version(mod: str) -> str:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:  # noqa: BLE001 - a peer that fails to import is simply absent
        return "not installed"


def rotation_about_centre(hw, deg=10.0, scale=1.1):
    """OpenCV forward matrix: rotate ``deg`` degrees and scale about the image centre."""
    import cv2

    h, w = hw
    return cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, scale)


def test_image(h, w, c=3, dtype=np.uint8, seed=0):
    """Smooth photo-like content plus noise (so no kernel can shortcut on constant regions)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [0.5 + 0.5 * np.sin(x / (17 + 5 * k) + y / (29 + 3 * k) + k) for k in range(c)]
    img = np.stack(base, -1) * 0.8 + 0.2 * rng.random((h, w, c), dtype=np.float32)
    if dtype == np.uint8:
        return np.ascontiguousarray((img * 255).round().astype(np.uint8))
    return np.ascontiguousarray(img.astype(dtype))


def cv2_modes() -> dict:
    """stntool's mode names -> OpenCV's interpolation flags."""
    import cv2

    return {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


# --------------------------------------------------------------------------- 1. affine vs OpenCV

def bench_affine_cv2(reps_big, reps_small, min_time=0.0):
    import cv2

    rows = []
    cases = [((2048, 2048), np.uint8, "bilinear")]
    for dt in (np.uint8, np.float32):
        for mode in ("nearest", "bilinear", "bicubic"):
            cases.append(((512, 512), dt, mode))
    inter = cv2_modes()
    for hw, dt, mode in cases:
        img = test_image(*hw, dtype=dt)
        m = rotation_about_centre(hw)
        theta = stntool.theta_from_cv2(m, hw, hw)
        size = (hw[1], hw[0])

        def f_st(img=img, theta=theta, mode=mode):
            return stntool.warp(img, theta, mode=mode, padding="zeros", backend="cpu")

        def f_cv(img=img, m=m, mode=mode, size=size):
            return cv2.warpAffine(img, m, size, flags=inter[mode], borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        reps = reps_big if hw[0] >= 1024 else reps_small
        r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=3, min_time=min_time)
        # sanity: same warp (agreement away from the border; OpenCV's 5-bit weights differ by a few levels)
        a = f_st().astype(np.float64)
        b = f_cv().astype(np.float64)
        mh, mw = hw[0] // 4, hw[1] // 4
        scale = 255.0 if dt == np.uint8 else 1.0
        diff = np.abs(a - b)[mh:-mh, mw:-mw] / scale * 255.0
        rows.append(vs_cv2(f"{hw[0]}x{hw[1]}x3 {np.dtype(dt).name} {mode}", r, n=r["stntool"][2],
                           check=f"mean {diff.mean():.2f} / max {diff.max():.1f} (0-255 scale)"))
    return rows


# --------------------------------------------------------------------------- 1c. grey and RGBA vs OpenCV

def bench_channels_cv2(reps, min_time=0.0):
    """512x512 grey (1 channel) and RGBA (4 channels) images of each dtype and mode, same warp as section 1."""
    import cv2

    inter = cv2_modes()
    hw = (512, 512)
    m = rotation_about_centre(hw)
    theta = stntool.theta_from_cv2(m, hw, hw)
    rows = []
    for dt in (np.uint8, np.uint16, np.float32):
        for c in (1, 4):
            base = test_image(*hw, c=c, dtype=np.float32)
            img = np.ascontiguousarray((base * 65535).round().astype(dt) if dt == np.uint16
                                       else (base * 255).round().astype(dt) if dt == np.uint8 else base)
            if c == 1:
                img = np.ascontiguousarray(img[..., 0])
            for mode in ("nearest", "bilinear", "bicubic"):
                def f_st(img=img, mode=mode):
                    return stntool.warp(img, theta, mode=mode, padding="zeros", backend="cpu")

                def f_cv(img=img, mode=mode):
                    return cv2.warpAffine(img, m, (hw[1], hw[0]), flags=inter[mode], borderMode=cv2.BORDER_CONSTANT,
                                          borderValue=0)

                r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=3, min_time=min_time)
                rows.append(vs_cv2(f"512x512x{c} {np.dtype(dt).name} {mode}", r))
    return rows


# --------------------------------------------------------------------------- 1e. border and reflection padding

def bench_padding_cv2(reps, min_time=0.0):
    """Border and reflection padding against OpenCV's ``BORDER_REPLICATE`` and ``BORDER_REFLECT`` (PyTorch's
    reflection with ``align_corners=False`` reflects about the outer pixel edges, as ``BORDER_REFLECT``), bilinear
    (and one case nearest and bicubic), where much of the output reads outside the image: a 30 degree turn (a
    quarter of the output outside), a zoom out to half size (three quarters outside), about the centre, and a
    perspective warp (a third outside)."""
    import cv2

    rows = []
    cases = []
    for hw, c, dt in (((512, 512), 3, np.uint8), ((1024, 1024), 1, np.float32)):
        for what, (deg, scale) in (("turn 30 deg", (30.0, 1.0)), ("zoom out 0.5", (10.0, 0.5))):
            cases.append((hw, c, dt, what, rotation_about_centre(hw, deg, scale)))
    cases.append(((512, 512), 3, np.uint8, "perspective, corners 15% inside", perspective_matrix((512, 512), 0.15)))
    cases = [case + ("bilinear",) for case in cases]
    cases += [((512, 512), 3, np.uint8, "zoom out 0.5", rotation_about_centre((512, 512), 10.0, 0.5), mode)
              for mode in ("nearest", "bicubic")]
    inter = cv2_modes()
    for hw, c, dt, what, m, mode in cases:
        img = test_image(*hw, c=c, dtype=dt)
        img = np.ascontiguousarray(img[..., 0]) if c == 1 else img
        theta = stntool.theta_from_cv2(m, hw, hw)
        cv_warp = cv2.warpPerspective if m.shape == (3, 3) else cv2.warpAffine
        for padding, border in (("border", cv2.BORDER_REPLICATE), ("reflection", cv2.BORDER_REFLECT)):
            def f_st(img=img, theta=theta, padding=padding, mode=mode):
                return stntool.warp(img, theta, mode=mode, padding=padding, backend="cpu")

            def f_cv(img=img, m=m, border=border, cv_warp=cv_warp, mode=mode):
                return cv_warp(img, m, (hw[1], hw[0]), flags=inter[mode], borderMode=border)

            r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=3, min_time=min_time)
            label = "" if mode == "bilinear" else f" {mode}"
            rows.append(vs_cv2(f"{hw[0]}x{hw[1]}x{c} {np.dtype(dt).name}{label}, {what}, {padding}", r))
    return rows


# --------------------------------------------------------------------------- 1f. nearest warps along the image axes

def bench_axes_nearest_cv2(reps, min_time=0.0):
    """Nearest warps without rotation or shear (scales and shifts: what masks and labels go through in a
    resize or a scale augmentation), where many pixels lie on ties (a 2x reduction puts every one there;
    a 1.1x zoom every eleventh column and every tenth row), against ``cv2.warpAffine`` with
    ``INTER_NEAREST`` (which rounds its fixed-point coordinates its own way: no agreement column)."""
    import cv2

    rows = []
    cases = [((1024, 1024), (512, 512), 3, np.uint8, "2x reduction", [[1.0, 0, 0], [0, 1.0, 0]]),
             ((512, 512), (512, 512), 3, np.uint8, "zoom in 1.1", [[1 / 1.1, 0, 0], [0, 1 / 1.1, 0]]),
             ((512, 512), (512, 512), 3, np.float32, "zoom in 1.1", [[1 / 1.1, 0, 0], [0, 1 / 1.1, 0]]),
             ((512, 512), (512, 512), 1, np.uint8, "scale 0.8, shift 3%", [[1.25, 0, 0.03], [0, 1.25, -0.03]])]
    for in_hw, out_hw, c, dt, what, theta in cases:
        img = test_image(*in_hw, c=c, dtype=dt)
        img = np.ascontiguousarray(img[..., 0]) if c == 1 else img
        theta = np.array(theta)
        m = stntool.theta_to_cv2(theta, in_hw, out_hw, inverse_map=True)

        def f_st(img=img, theta=theta, out_hw=out_hw):
            return stntool.warp(img, theta, out_hw, mode="nearest", backend="cpu")

        def f_cv(img=img, m=m, out_hw=out_hw):
            return cv2.warpAffine(img, m, (out_hw[1], out_hw[0]), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)

        r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=3, min_time=min_time)
        rows.append(vs_cv2(f"{in_hw[0]}x{in_hw[1]}x{c} {np.dtype(dt).name} to {out_hw[0]}x{out_hw[1]}, {what}", r))
    return rows


# --------------------------------------------------------------------------- 1d. small images, one call each

#: Sizes of section 1d: a call's fixed cost (Python, checks, dispatch) is much of its time there.
SMALL_SIZES = (32, 64, 128)


def bench_small_cv2(reps, min_time=0.0):
    """One call per image of 32x32 to 128x128 (3-channel uint8), as a per-sample augmentation loop makes them:
    ``stntool.warp`` with its defaults (backend "auto") against ``cv2.warpAffine``, same warp as section 1."""
    import cv2

    inter = cv2_modes()
    rows = []
    for side in SMALL_SIZES:
        hw = (side, side)
        img = test_image(*hw)
        m = rotation_about_centre(hw)
        theta = stntool.theta_from_cv2(m, hw, hw)
        for mode in ("nearest", "bilinear"):
            def f_st(img=img, mode=mode):
                return stntool.warp(img, theta, mode=mode)

            def f_cv(img=img, mode=mode):
                return cv2.warpAffine(img, m, (hw[1], hw[0]), flags=inter[mode], borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=0)

            r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=20, min_time=min_time)
            rows.append(vs_cv2(f"{side}x{side}x3 uint8 {mode}", r))
    return rows


def bench_copies_cv2(reps, min_time=0.0):
    """Warps that read whole input pixels (512x512x3 uint8, bilinear, zeros padding): identity, a left-right
    flip, a quarter turn and a whole-pixel shift, against ``cv2.warpAffine`` with the same matrix and OpenCV's
    own copy for the case (``cv2.flip``, ``cv2.rotate``, a slice copy)."""
    import cv2

    hw = (512, 512)
    img = test_image(*hw)
    shifted = np.zeros_like(img)
    cases = {
        "identity": (np.array([[1.0, 0, 0], [0, 1, 0]]), lambda: img.copy()),
        "left-right flip": (np.array([[-1.0, 0, 511], [0, 1, 0]]), lambda: cv2.flip(img, 1)),
        "quarter turn": (np.array([[0.0, 1, 0], [-1, 0, 511]]), lambda: cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)),
        "shift (+17, -9) px": (np.array([[1.0, 0, 17], [0, 1, -9]]), lambda: _shift_copy(img, shifted, 17, -9)),
    }
    rows = []
    for name, (m, f_own) in cases.items():
        theta = stntool.theta_from_cv2(m, hw, hw)

        def f_st(theta=theta):
            return stntool.warp(img, theta, backend="cpu")

        def f_cv(m=m):
            return cv2.warpAffine(img, m, (hw[1], hw[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0)

        same = np.array_equal(f_st(), f_cv()) and np.array_equal(f_st(), f_own())
        r = bench({"stntool": f_st, "cv2": f_cv, "own": f_own}, reps, warmup=5, min_time=min_time)
        rows.append({"case": f"512x512x3 uint8 {name}", "stntool": r["stntool"][0], "peer": r["cv2"][0],
                     "own": r["own"][0], "same": same})
    return rows


def _shift_copy(img, out, dx, dy):
    """``img`` moved by whole pixels ``(dx, dy)`` into ``out`` (zeros where it uncovers), by slicing."""
    out[...] = 0
    h, w = img.shape[:2]
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = img[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


def us(t: float | None) -> str:
    return "n/a" if t is None else f"{t * 1e6:.1f}"


# --------------------------------------------------------------------------- 1b. projective vs OpenCV

def perspective_matrix(hw, jitter):
    """OpenCV forward homography that puts the input's corners ``jitter`` of the size inside the output's
    corners, unevenly (part of the output then lies outside the input and reads the fill value);
    ``jitter`` < 0 puts them outside (the output sees only the input)."""
    import cv2

    h, w = hw
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    step = np.float32([[1.0, 0.6], [-0.8, 1.0], [-1.0, -0.7], [0.9, -1.0]]) * np.float32([w, h]) * jitter
    return cv2.getPerspectiveTransform(src, src + step)


def bench_projective_cv2(reps, min_time=0.0):
    import cv2

    rows = []
    hw = (512, 512)
    img = test_image(*hw)
    for jitter in (-0.06, 0.06):
        m = perspective_matrix(hw, jitter)
        outside = 1.0 - cv2.warpPerspective(np.ones(hw, np.uint8), m, (hw[1], hw[0])).mean()
        label = f"input corners {abs(jitter):.0%} {'inside' if jitter > 0 else 'outside'} the output's " \
                f"({outside:.0%} of the output outside the input)"
        theta = stntool.theta_from_cv2(m, hw, hw)

        def f_st(theta=theta):
            return stntool.warp(img, theta, mode="bilinear", padding="zeros", backend="cpu")

        def f_cv(m=m):
            return cv2.warpPerspective(img, m, (hw[1], hw[0]), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        r = bench({"stntool": f_st, "cv2": f_cv}, reps, warmup=3, min_time=min_time)
        diff = np.abs(f_st().astype(np.float64) - f_cv().astype(np.float64))[128:-128, 128:-128]
        rows.append(vs_cv2(f"512x512x3 uint8 bilinear, {label}", r,
                           check=f"mean {diff.mean():.2f} / max {diff.max():.1f}"))
    return rows


# --------------------------------------------------------------------------- 2. batch vs torch

def bench_batch_torch(reps, threads, min_time=0.0):
    n, h, w = 64, 128, 128
    imgs = np.stack([test_image(h, w, dtype=np.float32, seed=i) for i in range(n)])
    m = rotation_about_centre((h, w))
    theta = stntool.theta_from_cv2(m, (h, w), (h, w))
    res = {"case": f"{n}x{h}x{w}x3 float32 bilinear zeros"}

    def f_st():
        return stntool.warp(imgs, theta, mode="bilinear", padding="zeros", backend="cpu")

    fns = {"stntool": f_st}
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        x = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
        th = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(theta, (n, 2, 3))).astype(np.float32))

        def f_torch():
            with torch.inference_mode():
                grid = F.affine_grid(th, (n, 3, h, w), align_corners=False)
                return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        def f_torch_nhwc():  # what a NumPy NHWC user pays: transposes in and out included
            with torch.inference_mode():
                xt = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
                grid = F.affine_grid(th, (n, 3, h, w), align_corners=False)
                out = F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
                return out.permute(0, 2, 3, 1).contiguous().numpy()

        fns["torch"] = f_torch
        fns["torch_nhwc"] = f_torch_nhwc
    except ImportError:
        pass
    r = bench(fns, reps, warmup=2, min_time=min_time)
    res["stntool"] = r["stntool"][0]
    res["stntool_med"] = r["stntool"][1]
    res["n"] = r["stntool"][2]
    if "torch" in r:
        res["torch"], res["torch_med"] = r["torch"][0], r["torch"][1]
        res["torch_nhwc"] = r["torch_nhwc"][0]
        ours = f_st()
        ref = fns["torch"]().numpy().transpose(0, 2, 3, 1)
        res["maxdiff"] = float(np.abs(ours - ref).max())
    return res


# --------------------------------------------------------------------------- 3. TPS vs peers

REMAP_FLOAT = "OpenCV cv2.remap, the spline's map made once (float32)"
REMAP_FIXED = "OpenCV cv2.remap, the spline's map made once (fixed point, cv2.convertMaps)"


def tps_points(hw, k=4, sigma_frac=0.03, seed=0):
    """Regular k x k output control points (pixels) and a fixed random perturbation of them in the input."""
    h, w = hw
    gx = np.linspace(0, w - 1, k)
    gy = np.linspace(0, h - 1, k)
    dst = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    src = dst + rng.normal(0.0, sigma_frac * max(h, w), dst.shape)
    return src, dst


def bench_tps(reps, min_time=0.0):
    hw = (512, 512)
    h, w = hw
    img = test_image(h, w, dtype=np.uint8)
    src, dst = tps_points(hw)
    fns = {}
    notes = {}

    def f_st():
        return stntool.warp_tps(img, src, dst, mode="bilinear", padding="zeros", backend="cpu")

    # new points on every call (nothing reusable between calls): tiny distinct offsets defeat any cache
    counter = [0]

    def f_st_fresh():
        counter[0] += 1
        return stntool.warp_tps(img, src + 1e-7 * counter[0], dst, mode="bilinear", padding="zeros", backend="cpu")

    fns["stntool (same points, lattice reused)"] = f_st
    fns["stntool (new points every call)"] = f_st_fresh

    import cv2

    # the like of reused points for a peer: the spline's per-pixel map made once, then only cv2.remap per call
    exact_map = stntool.tps_plan(src, dst, hw, hw, tol=0).lattice[1:-1, 1:-1]
    map_x, map_y = (np.ascontiguousarray(exact_map[..., i], dtype=np.float32) for i in (0, 1))
    fixed_1, fixed_2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    fns[REMAP_FLOAT] = lambda: cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                         borderValue=0)
    fns[REMAP_FIXED] = lambda: cv2.remap(img, fixed_1, fixed_2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                         borderValue=0)

    try:
        from skimage.transform import ThinPlateSplineTransform, warp as sk_warp

        def f_sk():
            if hasattr(ThinPlateSplineTransform, "from_estimate"):
                t = ThinPlateSplineTransform.from_estimate(dst, src)  # output px -> input px
            else:
                t = ThinPlateSplineTransform()
                t.estimate(dst, src)
            out = sk_warp(img, t, order=1, mode="constant", cval=0, preserve_range=True)
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)

        fns["scikit-image ThinPlateSplineTransform + warp (one thread: it does not parallelise)"] = f_sk
    except ImportError:
        notes["scikit-image"] = "not installed"

    try:
        import torch
        from kornia.geometry.transform import get_tps_transform, warp_image_tps

        def norm(p):  # pixel -> grid_sample normalized, align_corners=False
            return torch.from_numpy(((2.0 * p + 1.0) / np.array([w, h]) - 1.0)[None].astype(np.float32))

        def f_kornia():
            with torch.inference_mode():
                x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
                ps, pd = norm(src), norm(dst)
                kw, aw = get_tps_transform(pd, ps)  # the documented call order for warp_image_tps
                out = warp_image_tps(x, ps, kw, aw, align_corners=False)
                return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

        fns["Kornia get_tps_transform + warp_image_tps"] = f_kornia
    except ImportError:
        notes["Kornia"] = "not installed"

    try:
        import albumentations as A

        tr = A.ThinPlateSpline(scale_range=(0.3, 0.3), num_control_points=4, p=1.0,
                               border_mode=0, fill=0)
        if hasattr(tr, "set_random_seed"):
            tr.set_random_seed(0)

        def f_alb():
            return tr(image=img)["image"]

        fns["Albumentations ThinPlateSpline (own random points)"] = f_alb

        from albumentations.augmentations.geometric import functional as fgeo

        if hasattr(fgeo, "compute_tps_weights") and hasattr(fgeo, "tps_transform") and hasattr(fgeo, "remap"):
            import cv2

            # the steps of ThinPlateSpline's get_params_dependent_on_data + apply, on our fixed points
            # (Albumentations works in [0, 1] image fractions, forward control points -> sampling map). A timing
            # of its per-pixel work only: the map it makes is not the textbook spline of these points (its
            # kernel is built one way to solve for the weights and another to evaluate them), so its output
            # is another warp than the other contenders'
            s01 = (dst / [w, h]).astype(np.float64)
            d01 = (src / [w, h]).astype(np.float64)

            def f_alb_fixed():
                weights, affine = fgeo.compute_tps_weights(s01, d01)
                x, y = np.meshgrid(np.arange(w), np.arange(h))
                pts = np.stack([x.flatten(), y.flatten()], axis=1).astype(np.float32)
                tr_pts = fgeo.tps_transform(pts / [w, h], s01, weights, affine) * [w, h]
                mx = tr_pts[:, 0].reshape(h, w).astype(np.float32)
                my = tr_pts[:, 1].reshape(h, w).astype(np.float32)
                return fgeo.remap(img, mx, my, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT, 0)

            fns["Albumentations functional (fixed points; another map, timing only)"] = f_alb_fixed
    except ImportError:
        notes["Albumentations"] = "not installed"

    r = bench(fns, reps, warmup=2, min_time=min_time)

    # accuracy of the sampling coordinates: the plan (upsampled as the kernel does) vs the exact spline
    plan = stntool.tps_plan(src, dst, hw, hw, tol=0.01)
    exact = stntool.tps_plan(src, dst, hw, hw, tol=0).lattice[1:-1, 1:-1]
    err = float(np.hypot(*(plan.dense(hw) - exact).transpose(2, 0, 1)).max())
    step = plan.step
    acc = {"step": int(step), "lattice": tuple(plan.lattice.shape[:2]), "max_err_px": err}
    try:  # independent check that the "exact" spline is the textbook one (similarity-invariant TPS)
        from skimage.transform import ThinPlateSplineTransform

        if hasattr(ThinPlateSplineTransform, "from_estimate"):
            t = ThinPlateSplineTransform.from_estimate(dst, src)
        else:
            t = ThinPlateSplineTransform()
            t.estimate(dst, src)
        ys, xs = np.mgrid[0:h, 0:w]
        sk = t(np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64)).reshape(h, w, 2)
        acc["exact_vs_skimage_px"] = float(np.abs(sk - exact).max())
    except Exception:  # noqa: BLE001
        pass
    # how the lattice step (and the cost of a fresh lattice) depends on the perturbation size
    acc["by_sigma"] = []
    for sig in (0.005, 0.01, 0.03):
        s2, d2 = tps_points(hw, sigma_frac=sig, seed=1)
        ex = stntool.tps_plan(s2, d2, hw, hw, tol=0).lattice[1:-1, 1:-1]
        best = None
        for i in range(5):
            s2i = s2 + 1e-7 * (i + 1)  # new points: nothing cached
            t0 = time.perf_counter()
            pl = stntool.tps_plan(s2i, d2, hw, hw, tol=0.01)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        e = float(np.hypot(*(pl.dense(hw) - ex).transpose(2, 0, 1)).max())
        acc["by_sigma"].append((sig, int(pl.step), e, best))
    best = None
    for i in range(5):
        t0 = time.perf_counter()
        stntool.tps_plan(src + 1e-7 * (i + 1), dst, hw, hw, tol=0)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    acc["exact_build"] = best
    return r, notes, acc


# --------------------------------------------------------------------------- 4. import / compile / cache

_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import numba
t_numba = time.perf_counter() - t0
sys.path.insert(0, {root!r})
import numpy as np
t0 = time.perf_counter()
import stntool
t_stn = time.perf_counter() - t0
numba.set_num_threads({threads})
img = np.zeros((512, 512, 3), np.uint8)
th = np.array([[0.9, -0.1, 0.05], [0.1, 0.9, -0.02]])
res = {{"import_numba": t_numba, "import_stntool_after_numba": t_stn}}
t0 = time.perf_counter(); stntool.warp(img, th, backend="cpu"); res["warp_first"] = time.perf_counter() - t0
t0 = time.perf_counter(); stntool.warp(img, th, backend="cpu"); res["warp_second"] = time.perf_counter() - t0
src = np.array([[0, 0], [511, 0], [0, 511], [511, 511], [250, 260.]])
dst = np.array([[0, 0], [511, 0], [0, 511], [511, 511], [256, 256.]])
t0 = time.perf_counter(); stntool.warp_tps(img, src, dst, backend="cpu"); res["tps_first"] = time.perf_counter() - t0
print("RESULT" + json.dumps(res))
"""

_IMPORT_ONLY = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import stntool
t_stn = time.perf_counter() - t0
print("RESULT" + json.dumps({{"import_stntool": t_stn, "numba_loaded": "numba" in sys.modules}}))
"""


def _child(code: str, env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise RuntimeError(f"child process failed (rc {p.returncode}):\n{p.stdout}\n{p.stderr}")


def bench_startup(threads, import_reps):
    env = child_env()
    imp = [_child(_IMPORT_ONLY.format(root=str(ROOT)), env) for _ in range(import_reps)]
    with tempfile.TemporaryDirectory(prefix="stntool-numba-cache-") as cache:
        env["NUMBA_CACHE_DIR"] = cache
        code = _CHILD.format(root=str(ROOT), threads=threads)
        cold = _child(code, env)
        warm = [_child(code, env) for _ in range(import_reps)]
    return {
        "import_stntool": min(r["import_stntool"] for r in imp),
        "stntool_imports_numba": any(r["numba_loaded"] for r in imp),
        "import_numba": min(r["import_numba"] for r in warm + [cold]),
        "cold": cold,
        "cached_warp_first": min(r["warp_first"] for r in warm),
        "cached_tps_first": min(r["tps_first"] for r in warm),
        "warp_second": min(r["warp_second"] for r in warm + [cold]),
    }


# --------------------------------------------------------------------------- report

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "engine.md"),
                    help="markdown report path ('' to skip writing)")
    args = ap.parse_args(argv)

    import cv2
    import numba

    numba.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    q = args.quick
    reps_big, reps_small, reps_batch, reps_tps, import_reps = (5, 5, 3, 3, 1) if q else (30, 40, 10, 12, 3)
    # keep sampling for at least this long per row (up to 10x the repetitions): on a loaded machine the minimum
    # needs many samples to find a quiet moment
    min_time = 0.0 if q else 3.0
    load_start = loadavg()
    t_start = time.perf_counter()
    print(f"# load average at start: {load_start}", file=sys.stderr)

    print("# affine vs cv2.warpAffine ...", file=sys.stderr)
    aff = bench_affine_cv2(reps_big, reps_small, min_time)
    print("# grey and RGBA vs cv2.warpAffine ...", file=sys.stderr)
    chan = bench_channels_cv2(reps_small, min_time / 2)
    print("# border and reflection padding vs cv2.warpAffine ...", file=sys.stderr)
    pads = bench_padding_cv2(reps_small, min_time / 3)
    print("# nearest along the axes vs cv2.warpAffine ...", file=sys.stderr)
    axes = bench_axes_nearest_cv2(reps_small, min_time / 3)
    print("# small images vs cv2.warpAffine ...", file=sys.stderr)
    small = bench_small_cv2(10 * reps_small, min_time / 3)
    print("# whole-pixel warps vs cv2 ...", file=sys.stderr)
    copies = bench_copies_cv2(reps_small, min_time / 3)
    print("# projective vs cv2.warpPerspective ...", file=sys.stderr)
    proj = bench_projective_cv2(reps_small, min_time)
    print("# batch vs torch ...", file=sys.stderr)
    bat = bench_batch_torch(reps_batch, args.threads, min_time)
    print("# TPS vs peers ...", file=sys.stderr)
    tps, tps_notes, acc = bench_tps(reps_tps, 2 * min_time)
    print("# import / compile / cache (subprocesses) ...", file=sys.stderr)
    st = bench_startup(args.threads, import_reps)
    load_end = loadavg()

    L = []
    L.append("## 1. Fused affine warp vs `cv2.warpAffine` (rotate 10 deg + scale 1.1 about the centre, zeros padding)")
    L.append("")
    L.append("| case | stntool ms | cv2 ms | stntool / cv2 | bar | median ms (stntool / cv2) | agreement vs cv2 (interior) |")
    L.append("|---|---:|---:|---:|---|---|---|")
    for i, r in enumerate(aff):
        bar = "<= 1.5 (goal 1.0)" if i == 0 else "report"
        L.append(f"| {r['case']} | {ms(r['stntool'])} | {ms(r['peer'])} | **{ratio(r['stntool'], r['peer'])}** | {bar} "
                 f"| {ms(r['stntool_med'])} / {ms(r['peer_med'])} | {r['check']} |")
    L.append("")
    L += cv2_table("## 1c. Grey and RGBA images vs `cv2.warpAffine` (512x512, same warp as section 1)", chan)
    L += cv2_table("## 1e. Border and reflection padding vs OpenCV's `BORDER_REPLICATE` and `BORDER_REFLECT` "
                   "(bilinear unless named)", pads)
    L += cv2_table("## 1f. Nearest warps along the image axes (scales and shifts, many pixels on ties) vs "
                   "`cv2.warpAffine`", axes)
    L.append("## 1d. Small images, one call each (3-channel uint8, same warp as section 1, `stntool.warp` defaults)")
    L.append("")
    L.append("| case | stntool us | cv2 us | stntool / cv2 | median us (stntool / cv2) |")
    L.append("|---|---:|---:|---:|---|")
    for r in small:
        L.append(f"| {r['case']} | {us(r['stntool'])} | {us(r['peer'])} | **{ratio(r['stntool'], r['peer'])}** "
                 f"| {us(r['stntool_med'])} / {us(r['peer_med'])} |")
    L.append("")
    L.append("Warps that read whole input pixels (bilinear, zeros padding), copied rather than sampled:")
    L.append("")
    L.append("| case | stntool us | `cv2.warpAffine` us | stntool / warpAffine | OpenCV's copy us | same pixels |")
    L.append("|---|---:|---:|---:|---:|---|")
    for r in copies:
        L.append(f"| {r['case']} | {us(r['stntool'])} | {us(r['peer'])} | **{ratio(r['stntool'], r['peer'])}** "
                 f"| {us(r['own'])} | {'yes' if r['same'] else 'NO'} |")
    L.append("")
    L.append("## 1b. Projective warp vs `cv2.warpPerspective` (zeros padding)")
    L.append("")
    L.append("| case | stntool ms | cv2 ms | stntool / cv2 | median ms (stntool / cv2) | agreement vs cv2 (centre) |")
    L.append("|---|---:|---:|---:|---|---|")
    for r in proj:
        L.append(f"| {r['case']} | {ms(r['stntool'])} | {ms(r['peer'])} | **{ratio(r['stntool'], r['peer'])}** "
                 f"| {ms(r['stntool_med'])} / {ms(r['peer_med'])} | {r['check']} |")
    L.append("")
    L.append("## 2. Batch: 64x128x128x3 float32, same warp, vs torch `affine_grid` + `grid_sample` (NCHW)")
    L.append("")
    L.append("| contender | min ms | median ms | torch / stntool | bar |")
    L.append("|---|---:|---:|---:|---|")
    L.append(f"| stntool.warp (NHWC NumPy) | {ms(bat['stntool'])} | {ms(bat['stntool_med'])} | | |")
    if "torch" in bat:
        L.append(f"| torch on an NCHW tensor | {ms(bat['torch'])} | {ms(bat['torch_med'])} | "
                 f"**{ratio(bat['torch'], bat['stntool'])}x** | >= 3x |")
        L.append(f"| torch incl. NHWC<->NCHW copies | {ms(bat['torch_nhwc'])} | | "
                 f"{ratio(bat['torch_nhwc'], bat['stntool'])}x | |")
        L.append("")
        L.append(f"max |stntool - torch| = {bat['maxdiff']:.2e}")
    else:
        L.append("| torch | n/a | | | |")
    L.append("")
    L.append("## 3. TPS, 4x4 control points, 512x512x3 uint8, fixed random perturbation (sigma 3% of the side)")
    L.append("")
    remaps = (REMAP_FLOAT, REMAP_FIXED)
    peers = {k: v for k, v in tps.items() if not k.startswith("stntool") and k not in remaps}
    fastest_name = min(peers, key=lambda k: peers[k][0]) if peers else None
    fastest = peers[fastest_name][0] if peers else None
    remap = min(tps[k][0] for k in remaps)
    L.append("| contender | min ms | median ms | fastest spline-making peer / this |")
    L.append("|---|---:|---:|---:|")
    for k, (mn, med, _) in tps.items():
        L.append(f"| {k} | {ms(mn)} | {ms(med)} | {ratio(fastest, mn) if fastest and k not in remaps else ''} |")
    for k, v in tps_notes.items():
        L.append(f"| {k} | {v} | | |")
    if fastest_name:
        L.append("")
        fresh = ratio(fastest, tps['stntool (new points every call)'][0])
        L.append(f"Fastest peer that makes the spline on each call: {fastest_name}. Bar: stntool >= 5x faster "
                 f"(goal 10x). New points every call: **{fresh}x**. "
                 f"With the same points, stntool reuses its lattice, so its peer is OpenCV warping with the "
                 f"spline's map made once (`cv2.remap`, the faster of float and fixed-point maps): "
                 f"**{ratio(remap, tps['stntool (same points, lattice reused)'][0])}x**.")
    L.append("")
    L.append(f"Sampling coordinates: lattice step {acc['step']} px ({acc['lattice'][0]}x{acc['lattice'][1]} nodes), "
             f"max |upsampled lattice - exact TPS| = **{acc['max_err_px']:.4f} px** (bar 0.01)"
             + (f"; exact TPS vs scikit-image's spline: {acc['exact_vs_skimage_px']:.1e} px." if "exact_vs_skimage_px"
                in acc else "."))
    L.append("")
    L.append("Adaptive lattice at tol 0.01 px vs perturbation size (4x4 points, seed 1; build time with new points, "
             "min of 5), and the exact per-pixel lattice (`tol=0`) for comparison:")
    L.append("")
    L.append("| sigma (% of side) | step px | max error px | lattice build ms |")
    L.append("|---:|---:|---:|---:|")
    for sig, stp, e, bt in acc["by_sigma"]:
        L.append(f"| {sig * 100:g} | {stp} | {e:.4f} | {ms(bt)} |")
    L.append(f"| 3 (seed 0), `tol=0` | 1 | 0 | {ms(acc['exact_build'])} |")
    L.append("")
    L.append("## 4. Start-up (fresh subprocesses)")
    L.append("")
    c = st["cold"]
    L.append("| what | ms |")
    L.append("|---|---:|")
    L.append(f"| `import stntool` (numba imported: {'yes' if st['stntool_imports_numba'] else 'no'}) "
             f"| {ms(st['import_stntool'])} |")
    L.append(f"| `import numba` | {ms(st['import_numba'])} |")
    L.append(f"| first `warp` (512x512x3 uint8), empty cache: compile | {ms(c['warp_first'])} |")
    L.append(f"| then first `warp_tps`, empty cache | {ms(c['tps_first'])} |")
    L.append(f"| first `warp` in a second process (cached) | {ms(st['cached_warp_first'])} |")
    L.append(f"| then first `warp_tps` in a second process (cached) | {ms(st['cached_tps_first'])} |")
    L.append(f"| second `warp` call (compiled) | {ms(st['warp_second'])} |")
    table = "\n".join(L)

    elapsed = time.perf_counter() - t_start
    versions = {m: version(m) for m in ("stntool", "numpy", "numba", "cv2", "torch", "skimage", "kornia",
                                        "albumentations")}
    head = [
        "# stntool engine benchmark",
        "",
        f"- date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores); threads per library: {args.threads}",
        f"- Python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- load average (1/5/15 min): start {load_start}, end {load_end}"
        + (f"; OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}" if "OPENBLAS_CORETYPE" in os.environ else ""),
        f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} for every library (set before torch loads)",
        f"- timings: min of N after warm-up, contenders interleaved in blocks of {BLOCK} calls; "
        f"{'--quick' if q else 'full'} run, "
        f"{elapsed:.0f} s; command `python benchmarks/bench_engine.py{' --quick' if q else ''}`",
        "",
    ]
    write_report("\n".join(head) + "\n" + table + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
