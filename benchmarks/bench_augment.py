"""Augmentation benchmark: stntool.augment against Albumentations, images per second, in one run.

    python benchmarks/bench_augment.py                 # full run, report on stdout (--out FILE to keep it)
    python benchmarks/bench_augment.py --quick         # few repetitions, 100 files (smoke test)
    python benchmarks/bench_augment.py --no-command    # in-process sections only
    python benchmarks/bench_augment.py --command-only --runs 4   # the whole command only

Albumentations (and torchvision, if it imports) must be importable by the Python that runs this;
stntool is imported from this checkout. Three sections:

1. One image at a time, in a Python loop over the same 32 distinct 512x512x3 uint8 images:
   ``Augmenter(...)(img, rng)`` (draw a record + warp) against the matching Albumentations transform
   (p=1, bilinear, zeros/constant-0 border, ranges as close as their definitions allow; see
   ``FAMILIES``). A third row warps records drawn beforehand (``apply_spec``) to show what drawing costs.
   For affine, torchvision v2 ``RandomAffine`` runs per image on uint8 tensors (when it imports; see
   :func:`import_torchvision`), else torch's ``affine_grid`` + ``grid_sample``, which is what it runs
   for a tensor; either is timed in a pair of its own with stntool, so its long calls do not disturb the
   other rows.
2. The batch API: ``Augmenter.batch(images (32, 512, 512, 3), rng)`` against Albumentations' ``Affine``
   in a per-image loop (and the same on 512 images of 64x64, where per-image costs dominate); then
   where one image's time goes (drawing, warping, OpenCV's kernel alone).
3. The whole command: ``stntool augment DIR -o OUT --count 4 --seed 1 --rotate -15:15 --scale 0.9:1.1
   -j 2`` over N JPEGs (512x512, quality 90) against a script that runs Albumentations' ``Affine`` with
   the same ranges in two spawned worker processes (cv2.imread, 4 variants, cv2.imwrite, JPEG quality
   95 on both sides: stntool's default), outputs written per second, runs interleaved.

Timing: every contender gets the same images; numba and OpenCV get ``--threads`` threads (default 2)
in-process; contenders of a row run interleaved in blocks of calls, and the figure is the minimum over the
repetitions (``bench_engine.bench``) after a warm-up, so compilation is not counted.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_engine import (bench, child_env, cpu_model, jpegs_made_once, loadavg, test_image, timed_command,  # noqa: E402
                          version, write_report)

SIZE = 512
N_IMAGES = 32
SMALL, N_SMALL = 64, 512  # the batch API on many small images (reported, no target)

#: family -> (stntool Augmenter options, Albumentations transform name and options, what is compared)
FAMILIES = {
    "affine": (
        dict(rotate=(-15, 15), scale=(0.9, 1.1), translate=0.05),
        ("Affine", dict(rotate=(-15, 15), scale=(0.9, 1.1), translate_percent=(-0.05, 0.05))),
        "rotate U(-15, 15) deg, scale U(0.9, 1.1), translate U(-5%, 5%) per axis",
    ),
    "perspective": (
        dict(perspective=0.06),
        ("Perspective", dict(scale=(0.05, 0.05), keep_size=True, fit_output=False)),
        "stntool: each corner moves U(-6%, 6%) per axis (sd 3.5%); Albumentations: |N(0, 5%)| inwards "
        "(mean 4%), then resized back to 512x512 (keep_size)",
    ),
    "tps": (
        dict(tps=0.05, tps_grid=4),
        ("ThinPlateSpline", dict(scale_range=(0.3, 0.3), num_control_points=4)),
        "4x4 control points; stntool: jitter U(-5%, 5%) of the size (sd 2.9%); Albumentations: N(0, 3%) "
        "(scale_range 0.3 / 10)",
    ),
    "elastic s6": (
        dict(elastic=(50.0, 6.0)),
        ("ElasticTransform", dict(alpha=50, sigma=6, noise_distribution="uniform", approximate=False)),
        "alpha 50, sigma 6, uniform noise (Albumentations' exact Gaussian, approximate=False)",
    ),
    "elastic s20": (
        dict(elastic=(200.0, 20.0)),
        ("ElasticTransform", dict(alpha=200, sigma=20, noise_distribution="uniform", approximate=False)),
        "alpha 200, sigma 20, uniform noise",
    ),
}
# stntool draws its field on a lattice sigma / 2 apart and interpolates it (docs/augment.md); Albumentations blurs
# a full-size field, with a Gaussian kernel sized to sigma (exact) or cut to 17x17 (approximate=True, a field
# smoother than sigma says): neither is stntool's field, so part of each ratio is the algorithm
for _fam in ("elastic s6", "elastic s20"):
    _st, (_name, _opts), _ = FAMILIES[_fam]
    FAMILIES[f"{_fam}, Alb. approximate"] = (
        _st, (_name, dict(_opts, approximate=True)),
        f"as {_fam}, Albumentations' approximate=True (a 17x17 Gaussian kernel whatever sigma)")

#: targets from the feature's description: stntool images/s over the peer's
TARGETS = {"affine": 1.5, "tps": 5.0, "elastic s6": 5.0, "elastic s20": 5.0, "batch": 3.0, "command": 1.2}


def images(n=N_IMAGES, size=SIZE):
    return [test_image(size, size, 3, np.uint8, seed=i) for i in range(n)]


def albumentations_transform(name, opts, seed=0):
    import albumentations as A
    import cv2

    t = getattr(A, name)(p=1.0, interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0, **opts)
    if hasattr(t, "set_random_seed"):
        t.set_random_seed(seed)
    return t


#: torchvision's import registers fake (meta) kernels for these two of its compiled ops without checking that
#: its compiled library loaded; :func:`import_torchvision` declares their schemas when it did not.
_TV_FAKE_OPS = {"nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"}
_tv = None


def import_torchvision():
    """``(torchvision or None, note)``. When torchvision's compiled ops do not load against this torch (a
    wheel built for another torch), its import fails on the fake kernels it registers for ``nms`` and
    ``qnms``; their schemas are then declared and the import retried: the v2 transforms are Python on top
    of torch, and ``RandomAffine`` on a tensor calls none of the compiled ops. The note says so."""
    global _tv
    if _tv is not None:
        return _tv
    try:
        import torchvision
        _tv = (torchvision, "")
        return _tv
    except Exception as e:  # noqa: BLE001 - a peer that fails to import is simply absent
        first = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if "torchvision::" not in first:
        _tv = (None, first)
        return _tv
    try:
        import torch

        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _TV_FAKE_OPS.values():
            lib.define(schema)
        torchvision = importlib.import_module("torchvision")
        importlib.import_module("torchvision.transforms.v2")
    except Exception as e:  # noqa: BLE001
        _tv = (None, f"{first}; after declaring {', '.join(_TV_FAKE_OPS)}: {type(e).__name__}: {e}")
        return _tv
    _tv = (torchvision, f"its compiled ops do not load against torch {torch.__version__} ({first}); "
                        f"imported after declaring the schemas of {', '.join(_TV_FAKE_OPS)}, which its import "
                        "registers fake kernels for; `RandomAffine` on a tensor uses none of them")
    return _tv


def torchvision_status() -> str:
    """Empty when torchvision imports as it is; otherwise what :func:`import_torchvision` had to say."""
    return import_torchvision()[1] or ""


def torchvision_affine_loop(imgs, threads, seed=0):
    """A per-image loop of torchvision v2 ``RandomAffine`` (rotate U(-15, 15) deg, scale U(0.9, 1.1), translate
    U(-5%, 5%), bilinear, fill 0) on uint8 CHW tensors made beforehand; None when torchvision does not import."""
    tv, _ = import_torchvision()
    if tv is None:
        return None
    import torch
    from torchvision.transforms import v2

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t = v2.RandomAffine(degrees=15, translate=(0.05, 0.05), scale=(0.9, 1.1),
                        interpolation=v2.InterpolationMode.BILINEAR, fill=0)
    tensors = [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in imgs]

    def run():
        for x in tensors:
            t(x)
    return run


def torch_affine_loop(imgs, threads, seed=0):
    """A per-image loop of random affine warps with torch's ``affine_grid`` + ``grid_sample`` on uint8 CHW
    tensors made beforehand, drawn as the affine family's (rotate U(-15, 15) deg, scale U(0.9, 1.1), translate
    U(-5%, 5%)): what torchvision v2 ``RandomAffine`` runs for a tensor (to float32, bilinear, zeros, rounded
    back to uint8). None when torch does not import."""
    try:
        import torch
        import torch.nn.functional as F
    except Exception:  # noqa: BLE001 - a peer that fails to import is simply absent
        return None
    torch.set_num_threads(threads)
    tensors = [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in imgs]
    gen = torch.Generator().manual_seed(seed)

    def run():
        for t in tensors:
            u = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
            a, s = (u[0] * 30.0 - 15.0) * np.pi / 180.0, 0.9 + 0.2 * u[1]
            tx, ty = (u[2] * 2.0 - 1.0) * 0.05 * 2.0, (u[3] * 2.0 - 1.0) * 0.05 * 2.0  # fractions -> normalized
            c, sn = np.cos(a) / s, np.sin(a) / s
            theta = torch.tensor([[[c, sn, tx], [-sn, c, ty]]], dtype=torch.float32)
            x = t.unsqueeze(0).to(torch.float32)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            y.round_().to(torch.uint8)
    return run


def rate(n, t):
    return None if t is None else n / t


def fmt_rate(r):
    return "n/a" if r is None else f"{r:.0f}" if r >= 100 else f"{r:.1f}"


def fmt_ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


# --------------------------------------------------------------------------- 1 and 2: in-process

def contenders(fam):
    """``(stntool Augmenter, Albumentations transform)`` of a family of :data:`FAMILIES` (bilinear, zeros)."""
    from stntool.augment import Augmenter

    st_opts, (alb_name, alb_opts), _ = FAMILIES[fam]
    return Augmenter(mode="bilinear", padding="zeros", **st_opts), albumentations_transform(alb_name, alb_opts)


def bench_families(imgs, reps, min_time, families, threads=2):
    from stntool.records import apply_spec

    out = {}
    for fam in families:
        aug, alb = contenders(fam)
        rng = np.random.default_rng(0)
        pre = [aug.sample(np.random.default_rng(1000 + i), img.shape[:2]) for i, img in enumerate(imgs)]

        def f_st(aug=aug, rng=rng):
            for img in imgs:
                aug(img, rng)

        def f_st_pre(pre=pre):
            for img, spec in zip(imgs, pre):
                apply_spec(img, spec)

        def f_alb(alb=alb):
            for img in imgs:
                alb(image=img)

        print(f"# {fam} ...", file=sys.stderr)
        r = bench({"stntool": f_st, "alb": f_alb, "stntool_pre": f_st_pre}, reps, warmup=1, min_time=min_time)
        out[fam] = {k: (rate(len(imgs), v[0]), rate(len(imgs), v[1]), v[2]) for k, v in r.items()}
        if fam != "affine":
            continue
        # torchvision v2, else torch's own calls (what RandomAffine runs for a tensor), each in a pair of its
        # own with stntool, so their long calls do not disturb the rows above
        f_tv = torchvision_affine_loop(imgs, threads)
        peer, f_peer = ("torchvision", f_tv) if f_tv is not None else ("torch", torch_affine_loop(imgs, threads))
        if f_peer is not None:
            print(f"# affine, {peer} ...", file=sys.stderr)
            r = bench({"stntool": f_st, peer: f_peer}, reps, warmup=1, min_time=min_time)
            out[fam][peer], out[fam][f"stntool_vs_{peer}"] = (
                (rate(len(imgs), r[k][0]), rate(len(imgs), r[k][1]), r[k][2]) for k in (peer, "stntool"))
    return out


def bench_batch(imgs, reps, min_time):
    """The batch call against per-image loops on ``imgs`` (a list of same-size images); rates in images/s."""
    from stntool.records import apply_spec

    aug, alb = contenders("affine")
    batch = np.ascontiguousarray(np.stack(imgs))
    rng_b, rng_l = np.random.default_rng(0), np.random.default_rng(0)

    def f_batch():
        aug.batch(batch, rng_b)

    def f_loop():
        for img in imgs:
            aug(img, rng_l)

    def f_alb():
        for img in imgs:
            alb(image=img)

    # the batch's outputs equal the per-image warps of the same records (the API's promise)
    outs, specs = aug.batch(batch[:4], np.random.default_rng(5))
    same = all(np.array_equal(o, apply_spec(i, s)) for o, i, s in zip(outs, batch[:4], specs))
    print(f"# batch {batch.shape} ...", file=sys.stderr)
    r = bench({"batch": f_batch, "alb": f_alb, "loop": f_loop}, reps, warmup=1, min_time=min_time)
    return {k: (rate(len(imgs), v[0]), rate(len(imgs), v[1]), v[2]) for k, v in r.items()}, same


def bench_breakdown(img, reps, min_time, families):
    """Where one image's time goes: drawing the record, warping by it, and the peers' calls (ms, min of N)."""
    import cv2

    from stntool import transforms as tf
    from stntool.maps import lattice_plan
    from stntool.records import apply_spec

    rows = {}
    for fam in families:
        aug, alb = contenders(fam)
        rng = np.random.default_rng(0)
        spec = aug.sample(np.random.default_rng(7), img.shape[:2])
        fns = {"sample": lambda aug=aug, rng=rng: aug.sample(rng, img.shape[:2]),
               "apply": lambda spec=spec: apply_spec(img, spec),
               "alb": lambda alb=alb: alb(image=img)}
        if spec.elastic is not None:
            fns["plan"] = lambda spec=spec: lattice_plan(spec, img.shape[:2])
        elif spec.theta is not None:
            m = tf.theta_to_cv2(np.array(spec.theta), img.shape[:2])
            if len(spec.theta) == 2:
                fns["cv2"] = lambda m=m: cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR)
            else:
                fns["cv2"] = lambda m=m: cv2.warpPerspective(img, m, (img.shape[1], img.shape[0]),
                                                             flags=cv2.INTER_LINEAR)
        print(f"# breakdown {fam} ...", file=sys.stderr)
        rows[fam] = {k: v[0] for k, v in bench(fns, reps, warmup=2, min_time=min_time).items()}
    return rows


# --------------------------------------------------------------------------- 3: whole command

ALB_SCRIPT = r'''
import os, sys
from multiprocessing import get_context

T = None


def init():
    global T
    import albumentations as A
    import cv2

    cv2.setNumThreads(1)  # one thread per worker process, as stntool gives each of its 2 workers
    T = A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), interpolation=cv2.INTER_LINEAR,
                 border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)
    T.set_random_seed(os.getpid())


def one(args):
    import cv2

    src, out_dir, count = args
    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    stem = os.path.splitext(os.path.basename(src))[0]
    for k in range(count):
        out = T(image=img)["image"]
        cv2.imwrite(os.path.join(out_dir, f"{stem}_{k}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 95])


if __name__ == "__main__":
    src_dir, out_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".jpg"))
    with get_context("spawn").Pool(2, initializer=init) as pool:
        list(pool.imap_unordered(one, [(os.path.join(src_dir, n), out_dir, count) for n in names], chunksize=8))
'''


def make_jpegs(folder: Path, n: int, size=SIZE) -> Path:
    """``n`` photo-like JPEGs (smooth colour, shapes, noise; quality 90) in ``folder``, made once."""
    import cv2

    def make():
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        for i in range(n):
            ph = rng.random(3) * 6.3
            base = np.dstack([128 + 90 * np.sin(xx / (30 + 7 * c) + yy / (45 + 5 * c) + ph[c]) for c in range(3)])
            img = np.clip(base, 0, 255).astype(np.uint8)
            for _ in range(6):
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                if rng.random() < 0.5:
                    c = tuple(int(v) for v in rng.integers(0, size, 2))
                    cv2.circle(img, c, int(rng.integers(10, 90)), colour, -1, cv2.LINE_AA)
                else:
                    p = rng.integers(0, size, 4)
                    cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, -1)
            img = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            (folder / f"{i:05d}.jpg").write_bytes(buf.tobytes())

    return jpegs_made_once(folder, n, f"{n}-{size}", make)


def bench_command(n_files, runs, work: Path):
    src = make_jpegs(work / f"in-{n_files}", n_files)
    env = child_env(PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = work / "alb_augment.py"
    script.write_text(ALB_SCRIPT)
    count = 4
    stn = [sys.executable, "-m", "stntool", "augment", str(src), "--count", str(count), "--seed", "1",
           "--rotate=-15:15", "--scale=0.9:1.1", "-j", "2", "-q", "--quality", "95", "-o"]
    alb = [sys.executable, str(script), str(src)]

    # Every run writes into a folder of its own, and the outputs stay until the last run. Deleting a run's
    # 4,000 files just before the next run made that run's file creations slow: ext4 without a journal
    # (this box's root file system) skips inodes deleted in the last minute when it allocates new ones,
    # scanning past each of them; every new file then took 0.6-1.0 ms of system time instead of about
    # 0.1 ms (benchmarks/results/augment.md), which added the same seconds to both contenders.
    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)  # an interrupted benchmark's outputs
    runs_dir.mkdir(parents=True)
    made = []

    def out_dir(name):
        d = runs_dir / f"{name}-{len(made)}"
        made.append(d)
        if hasattr(os, "sync"):
            os.sync()  # the earlier runs' files reach the disk now, not during this run
        return d

    def written(d):
        return sum(1 for _ in Path(d).rglob("*.jpg"))

    try:
        # warm-up: kernels compiled and cached, files in the page cache
        timed_command(stn + [str(out_dir("warm-stntool"))], env)
        timed_command(alb + [str(out_dir("warm-alb")), str(count)], env)
        times = {"stntool": [], "alb": []}
        counts = {}
        for r in range(runs):
            for name, cmd in (("alb", alb), ("stntool", stn)) if r % 2 == 0 else (("stntool", stn), ("alb", alb)):
                d = out_dir(f"out-{name}")
                times[name].append(timed_command(cmd + ([str(d), str(count)] if name == "alb" else [str(d)]), env))
                counts[name] = written(d)
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return times, counts


# --------------------------------------------------------------------------- report

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions, 100 files (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--files", type=int, default=None, help="JPEGs for the whole-command section (default 1000)")
    ap.add_argument("--runs", type=int, default=4,
                    help="interleaved runs of each whole command (default 4: both contenders' whole-process times "
                         "move by 10-30%% from run to run on a shared 2-core box, and the best of two was not stable)")
    ap.add_argument("--no-command", action="store_true", help="skip the whole-command section")
    ap.add_argument("--command-only", action="store_true", help="only the whole-command section")
    ap.add_argument("--only", default="", help="comma-separated families of section 1 (default: all)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "stntool-bench-augment"),
                    help="folder for the generated JPEGs (kept between runs) and the outputs (removed)")
    ap.add_argument("--out", default="", help="also write the markdown report to this file")
    args = ap.parse_args(argv)

    import cv2
    import numba

    numba.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    q = args.quick
    reps, min_time = (2, 0.0) if q else (5, 4.0)
    n_files = args.files or (100 if q else 1000)
    families = [f.strip() for f in args.only.split(",") if f.strip()] or list(FAMILIES)

    load_start = loadavg()
    t_start = time.perf_counter()
    print(f"# load average at start: {load_start}", file=sys.stderr)
    fam = None
    if not args.command_only:
        imgs = images()
        fam = bench_families(imgs, reps, min_time, families, args.threads)
        bat, bat_same = bench_batch(imgs, reps, min_time)
        small = [test_image(SMALL, SMALL, 3, np.uint8, seed=i) for i in range(N_SMALL)]
        bat_small, small_same = bench_batch(small, reps, min_time)
        brk = bench_breakdown(imgs[0], 4 * reps, min_time / 2, families)
    load_mid = loadavg()
    cmd = None
    if not args.no_command:
        print(f"# whole command, {n_files} files x 4 ...", file=sys.stderr)
        cmd = bench_command(n_files, args.runs, Path(args.work))
    load_end = loadavg()
    elapsed = time.perf_counter() - t_start

    L = []
    if fam is not None:
        L.append(f"## 1. One image at a time: {N_IMAGES} distinct {SIZE}x{SIZE}x3 uint8 images in a Python loop")
        L.append("")
        L.append("Images/s, best of the interleaved repetitions (median in brackets). `stntool` = "
                 "`Augmenter(...)(img, rng)`: draw a record and warp; `stntool, records drawn before` = "
                 "`apply_spec` of records drawn beforehand.")
        L.append("")
        L.append("| family | stntool | Albumentations | stntool / Alb. | target | stntool, records drawn before |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for f, r in fam.items():
            L.append(f"| {f} | {fmt_rate(r['stntool'][0])} ({fmt_rate(r['stntool'][1])}) "
                     f"| {fmt_rate(r['alb'][0])} ({fmt_rate(r['alb'][1])}) "
                     f"| **{fmt_ratio(r['stntool'][0], r['alb'][0])}** "
                     f"| {'>= ' + str(TARGETS[f]) + 'x' if f in TARGETS else 'report'} "
                     f"| {fmt_rate(r['stntool_pre'][0])} |")
        aff = fam.get("affine", {})
        peer = next((p for p in ("torchvision", "torch") if aff.get(p) is not None), None)
        if peer is not None:
            t, mine = aff[peer], aff[f"stntool_vs_{peer}"]
            what = (f"torchvision {version('torchvision')} v2 `RandomAffine(degrees=15, translate=(0.05, 0.05), "
                    "scale=(0.9, 1.1), interpolation=BILINEAR, fill=0)` per image on a uint8 CHW tensor made "
                    "beforehand" if peer == "torchvision" else
                    "torch (`affine_grid` + `grid_sample` per image on a uint8 CHW tensor made beforehand, the "
                    "affine family's draws: what torchvision v2 `RandomAffine` runs for a tensor; torchvision "
                    "does not import), affine")
            L.append("")
            L.append(f"{what}: {fmt_rate(t[0])} ({fmt_rate(t[1])}) images/s against stntool's {fmt_rate(mine[0])} "
                     f"in the same interleaved pair; stntool / {peer} **{fmt_ratio(mine[0], t[0])}**.")
        L.append("")
        L.append("Parameters (p=1, bilinear, constant-0 border everywhere):")
        L.append("")
        for f in fam:
            st_opts, (alb_name, alb_opts), what = FAMILIES[f]
            st = ", ".join(f"{k}={v}" for k, v in st_opts.items())
            al = ", ".join(f"{k}={v}" for k, v in alb_opts.items())
            L.append(f"- {f}: `Augmenter({st})` vs `A.{alb_name}({al})`; {what}")
        L.append("")
        L.append("## 2. Batch API vs a per-image loop (affine, as in section 1)")
        L.append("")
        L.append("| contender | images/s (median) | vs Albumentations loop |")
        L.append("|---|---:|---:|")
        for label, b, same in ((f"{N_IMAGES} x {SIZE}x{SIZE}x3 uint8", bat, bat_same),
                               (f"{N_SMALL} x {SMALL}x{SMALL}x3 uint8 (no target)", bat_small, small_same)):
            tgt = f" (target >= {TARGETS['batch']}x)" if b is bat else ""
            L.append(f"| **{label}** | | |")
            L.append(f"| stntool `Augmenter.batch(images, rng)` | {fmt_rate(b['batch'][0])} "
                     f"({fmt_rate(b['batch'][1])}) | **{fmt_ratio(b['batch'][0], b['alb'][0])}**{tgt} |")
            L.append(f"| stntool `aug(img, rng)` loop | {fmt_rate(b['loop'][0])} ({fmt_rate(b['loop'][1])}) "
                     f"| {fmt_ratio(b['loop'][0], b['alb'][0])} |")
            L.append(f"| Albumentations `Affine` loop | {fmt_rate(b['alb'][0])} ({fmt_rate(b['alb'][1])}) | 1.00x |")
        L.append("")
        L.append("Batch outputs equal `apply_spec` of their records: "
                 f"{'yes' if bat_same and small_same else 'NO'}.")
        L.append("")
        L.append("## Where one image's time goes (one 512x512x3 uint8 image, again and again; ms, min of N, "
                 "interleaved)")
        L.append("")
        L.append("| family | stntool `sample` | stntool `apply_spec` | of which elastic `lattice_plan` "
                 "| OpenCV warp alone, same matrix | Albumentations call |")
        L.append("|---|---:|---:|---:|---:|---:|")

        def cell(r, k):
            return f"{r[k] * 1e3:.2f}" if k in r else ""

        for f, r in brk.items():
            L.append(f"| {f} | {cell(r, 'sample')} | {cell(r, 'apply')} | {cell(r, 'plan')} | {cell(r, 'cv2')} "
                     f"| {cell(r, 'alb')} |")
        L.append("")
    if cmd is not None:
        times, counts = cmd
        n_out = n_files * 4
        best_s, best_a = min(times["stntool"]), min(times["alb"])
        L.append(f"## 3. Whole command: {n_files} JPEGs {SIZE}x{SIZE} (quality 90) -> 4 variants each "
                 f"({n_out} JPEGs, quality 95)")
        L.append("")
        L.append("| contender | best s | outputs/s (best) | all runs, s | files written |")
        L.append("|---|---:|---:|---|---:|")
        L.append(f"| `stntool augment ... --count 4 --seed 1 --rotate -15:15 --scale 0.9:1.1 -j 2` | {best_s:.2f} "
                 f"| {fmt_rate(n_out / best_s)} | {', '.join(f'{t:.2f}' for t in times['stntool'])} "
                 f"| {counts['stntool']} |")
        L.append(f"| Albumentations `Affine` script, 2 spawned workers | {best_a:.2f} | {fmt_rate(n_out / best_a)} "
                 f"| {', '.join(f'{t:.2f}' for t in times['alb'])} | {counts['alb']} |")
        L.append("")
        L.append(f"stntool / Albumentations: **{best_a / best_s:.2f}x** (target >= {TARGETS['command']}x). "
                 "Runs interleaved (Albumentations first in even runs), after one warm-up run of each; each "
                 "time is the whole process, start-up included.")
        L.append("")
    tv = torchvision_status()
    versions = {m: version(m) for m in ("stntool", "numpy", "numba", "cv2", "albumentations", "albucore", "torch",
                                       "torchvision")}
    head = [
        "# stntool augment benchmark",
        "",
        f"- date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores); threads in-process: numba {args.threads}, "
        f"OpenCV {args.threads}",
        f"- Python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- torchvision: {'imports' if not tv else ('measured: ' if import_torchvision()[0] else 'not measured: ') + tv}",
        f"- load average (1/5/15 min): start {load_start}, after sections 1-2 {load_mid}, end {load_end}",
        f"- {'--quick' if q else 'full'} run, {elapsed:.0f} s; command `python benchmarks/bench_augment.py"
        f"{' --quick' if q else ''}`",
        "",
    ]
    write_report("\n".join(head) + "\n" + "\n".join(L), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
