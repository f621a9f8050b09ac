"""Whole-command throughput of `stntool rectify` over a folder of page scans, against deskew.

    python benchmarks/bench_rectify_command.py                  # 200 scans, 2 interleaved runs each
    python benchmarks/bench_rectify_command.py --files 1000     # the 1,000-scan figure
    python benchmarks/bench_rectify_command.py --files 40 --runs 1 --cli-files 10   # smoke test

The scans: 1240x1750 synthetic pages with the scan degradations of ``stntool.pages`` (noise, blur, JPEG,
uneven light, paper), every other one in colour, each distorted as the held-out affine split distorts
its pages (``heldout.py``: rotation ±30°, x shear ±0.15, scale 0.85-1.15, translation 5%), written as
JPEG (quality 90) to ``--work`` once and kept there between runs.

Contenders, one folder in, one folder of straightened JPEGs (quality 95) out, two cores:

* ``stntool rectify IN -o OUT -j 2 -q`` (the default model and family);
* deskew through its Python API in two spawned worker processes, the fastest way to run it over a
  folder that we found: ``cv2.imread``, grey, ``determine_skew``, ``cv2.warpAffine`` (bilinear,
  replicated border) about the centre, ``cv2.imwrite``; OpenCV at one thread per worker;
* deskew's own command line (``deskew FILE -o OUT``, one process per file, two at a time through
  ``xargs -P 2``) on the first ``--cli-files`` scans, reported per file: it starts Python and
  scikit-image for every file and rotates with scikit-image, so it is the slower of deskew's two ways.

Timing: a warm-up run of each (kernels compiled and cached, files in the page cache), then ``--runs``
runs of each, interleaved (A, B, B, A, ...); the best run counts. The load average is printed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_engine import child_env, cpu_model, jpegs_made_once, loadavg, timed_command, write_report  # noqa: E402

SIZE = (1750, 1240)  # (H, W) of a scan

DESKEW_SCRIPT = r'''
import os, sys
from multiprocessing import get_context


def init():
    import cv2

    cv2.setNumThreads(1)  # one thread per worker process: two workers on two cores


def one(args):
    import cv2
    from deskew import determine_skew

    src, out_dir = args
    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    angle = determine_skew(grey)
    h, w = grey.shape
    if angle is not None:
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cv2.imwrite(os.path.join(out_dir, os.path.basename(src)), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


if __name__ == "__main__":
    src_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".jpg"))
    with get_context("spawn").Pool(2, initializer=init) as pool:
        list(pool.imap_unordered(one, [(os.path.join(src_dir, n), out_dir) for n in names], chunksize=4))
'''


def _make_one(args):
    import cv2

    import heldout as H
    from stntool.pages import render_page

    i, folder = args
    colour = i % 2 == 1
    page = render_page((20261202, i), size=SIZE, split="heldout", colour=colour, degrade=True)
    rng = np.random.default_rng([20261202, i])
    fwd = H._pixel_distortion(rng, page.shape[:2], "affine")
    img = H.distort(page, fwd)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (Path(folder) / f"scan-{i:05d}.jpg").write_bytes(buf.tobytes())


def make_scans(folder: Path, n: int) -> Path:
    """``n`` distorted page scans in ``folder`` (made once, in two spawned processes)."""
    from multiprocessing import get_context

    def make():
        print(f"# making {n} scans in {folder} ...", file=sys.stderr)
        with get_context("spawn").Pool(2) as pool:
            list(pool.imap_unordered(_make_one, [(i, str(folder)) for i in range(n)], chunksize=4))

    return jpegs_made_once(folder, n, str(n), make)


def written(d: Path) -> int:
    return sum(1 for _ in Path(d).rglob("*.jpg"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200, help="scans in the folder (default 200; the issue's figure: 1000)")
    ap.add_argument("--runs", type=int, default=2, help="timed runs of each contender after a warm-up (default 2)")
    ap.add_argument("--cli-files", type=int, default=20, help="scans for deskew's own command line (0: skip)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "stntool-bench-rectify"),
                    help="folder for the scans (kept between runs) and the outputs (removed)")
    ap.add_argument("--out", default="", help="also write the markdown report to this file")
    args = ap.parse_args(argv)

    work = Path(args.work)
    src = make_scans(work / f"scans-{args.files}", args.files)
    env = child_env(PYTHONPATH=str(ROOT) + os.pathsep + str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = work / "deskew_folder.py"
    script.write_text(DESKEW_SCRIPT)
    stn = [sys.executable, "-m", "stntool", "rectify", str(src), "-j", "2", "-q", "-o"]
    dsk = [sys.executable, str(script), str(src)]

    def out_dir(name):
        d = work / name
        shutil.rmtree(d, ignore_errors=True)
        return d

    load_start = loadavg()
    print(f"# load average at start: {load_start}", file=sys.stderr)
    t_start = time.perf_counter()
    for name, cmd in (("stntool", stn), ("deskew", dsk)):  # warm-up
        d = out_dir("warm")
        timed_command(cmd + [str(d)], env)
        shutil.rmtree(d, ignore_errors=True)
    times = {"stntool": [], "deskew": []}
    counts = {}
    for r in range(args.runs):
        order = (("deskew", dsk), ("stntool", stn)) if r % 2 == 0 else (("stntool", stn), ("deskew", dsk))
        for name, cmd in order:
            d = out_dir(f"out-{name}")
            times[name].append(timed_command(cmd + [str(d)], env))
            counts[name] = written(d)
            shutil.rmtree(d, ignore_errors=True)
            print(f"# {name}: {times[name][-1]:.1f} s", file=sys.stderr)
    cli = None
    if args.cli_files > 0:
        deskew_bin = Path(sys.executable).with_name("deskew")
        if deskew_bin.exists():
            d = out_dir("out-cli")
            d.mkdir(parents=True)
            names = sorted(src.glob("*.jpg"))[:args.cli_files]
            listing = work / "cli-files.txt"
            listing.write_text("".join(f"{p}\n" for p in names))
            cmd = (f"xargs -P 2 -I{{}} sh -c '\"{deskew_bin}\" \"$1\" -o \"{d}/$(basename \"$1\")\"' _ {{}} "
                   f"< \"{listing}\"")
            cli = (timed_command(cmd, env, shell=True), len(names), written(d))
            shutil.rmtree(d, ignore_errors=True)
    load_end = loadavg()
    elapsed = time.perf_counter() - t_start

    best = {k: min(v) for k, v in times.items()}
    n = args.files
    L = ["# `stntool rectify` against deskew over a folder of scans", ""]
    L.append(f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    L.append(f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores)")
    L.append(f"- load average (1/5/15 min): start {load_start}, end {load_end}")
    L.append(f"- {n} scans {SIZE[1]}x{SIZE[0]} (JPEG quality 90, half grey, half colour), out: JPEG quality 95; "
             f"full run {elapsed:.0f} s; command `python benchmarks/bench_rectify_command.py --files {n}`")
    L.append("")
    L.append("| contender | best s | scans/s | all runs, s | files written |")
    L.append("|---|---:|---:|---|---:|")
    L.append(f"| `stntool rectify IN -o OUT -j 2 -q` | {best['stntool']:.1f} | {n / best['stntool']:.2f} | "
             f"{', '.join(f'{t:.1f}' for t in times['stntool'])} | {counts['stntool']} |")
    L.append(f"| deskew (Python API), 2 spawned workers | {best['deskew']:.1f} | {n / best['deskew']:.2f} | "
             f"{', '.join(f'{t:.1f}' for t in times['deskew'])} | {counts['deskew']} |")
    if cli is not None:
        t, k, w = cli
        L.append(f"| deskew command line, 2 at a time (`xargs -P 2`), first {k} scans | {t:.1f} | {k / t:.2f} | "
                 f"{t:.1f} | {w} |")
    L.append("")
    L.append(f"stntool / deskew (scans per second, best runs): **{best['deskew'] / best['stntool']:.2f}x** "
             f"(target >= 3x).")
    write_report("\n".join(L) + "\n", args.out)


if __name__ == "__main__":
    main()
