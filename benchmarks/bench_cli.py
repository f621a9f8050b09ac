"""Whole-process throughput: `stntool warp --jobs 2` vs an OpenCV script with 2 spawned workers.

Generates N JPEGs (1024x768, q90) into a temp dir, then times, as whole processes:
  * stntool warp --theta ... DIR -o OUT --jobs 2 --format jpg
  * a plain script: cv2.imread + cv2.warpAffine + cv2.imwrite over a 2-process spawn Pool
Also times `stntool --help` and single-image `stntool warp` (warm kernel cache).

Usage: python benchmarks/bench_cli.py [--n 1000] [--repeat 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

THETA = "0.9,0.1,0.02,-0.1,0.9,0.01"

SCRIPT = r'''
import os, sys, cv2, numpy as np
from multiprocessing import get_context
M = None
def init(m):
    global M
    M = m
    cv2.setNumThreads(1)  # one thread per worker, as stntool --jobs 2 gives each job its share of the CPUs
def one(args):
    src, dst = args
    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    out = cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR)
    cv2.imwrite(dst, out, [cv2.IMWRITE_JPEG_QUALITY, 95])
if __name__ == "__main__":
    src_dir, out_dir = sys.argv[1], sys.argv[2]
    m = np.array([float(v) for v in sys.argv[3].split(",")]).reshape(2, 3)
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(os.listdir(src_dir))
    with get_context("spawn").Pool(2, initializer=init, initargs=(m,)) as pool:
        list(pool.imap(one, [(os.path.join(src_dir, n), os.path.join(out_dir, n)) for n in names], chunksize=8))
'''


def make_images(folder, n):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:768, 0:1024].astype(np.float32)
    base = np.dstack([128 + 100 * np.sin(xx / 40), 128 + 100 * np.cos(yy / 30), (xx + yy) % 256]).astype(np.uint8)
    for i in range(n):
        img = np.clip(base.astype(np.int16) + rng.integers(-8, 9, (1, 1, 3)), 0, 255).astype(np.uint8)
        cv2.putText(img, f"image {i}", (100, 300), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        with open(os.path.join(folder, f"{i:05d}.jpg"), "wb") as f:
            f.write(buf.tobytes())


def stntool_command():
    """This interpreter's `stntool` script (the command users run), or `python -m stntool` without one: never
    another install's found on PATH."""
    script = os.path.join(os.path.dirname(sys.executable), "stntool")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "stntool"]


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        os.mkdir(src)
        make_images(src, a.n)
        script = os.path.join(tmp, "cv2_script.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        # θ -> OpenCV matrix for the script (same geometry; OpenCV's own sampling)
        import stntool
        m = stntool.theta_to_cv2(np.array([float(v) for v in THETA.split(",")]).reshape(2, 3), (768, 1024))
        mtxt = ",".join(repr(float(v)) for v in m.ravel())
        stn_cmd = [*stntool_command(), "warp", "--theta", THETA, src, "--jobs", "2", "--format", "jpg",
                   "--quality", "95", "-q", "--overwrite", "-o"]
        timed(stn_cmd + [os.path.join(tmp, "warm")])  # warm the kernel cache once
        t_stn, t_cv = [], []
        for r in range(a.repeat):  # interleaved, best of
            t_cv.append(timed([sys.executable, script, src, os.path.join(tmp, f"cv{r}"), mtxt]))
            t_stn.append(timed(stn_cmd + [os.path.join(tmp, f"stn{r}")]))
        help_t = min(timed([*stntool_command(), "--help"]) for _ in range(5))
        py_t = min(timed([sys.executable, "-c", "pass"]) for _ in range(5))
        one = os.path.join(src, "00000.jpg")
        single = min(timed([*stntool_command(), "warp", "--theta", THETA, one, "-o", os.path.join(tmp, "one.jpg"), "-q",
                            "--overwrite"]) for _ in range(3))
    stn, cv = a.n / min(t_stn), a.n / min(t_cv)
    print(f"images: {a.n} JPEG 1024x768 q90 -> JPEG q95, --jobs 2 / 2 spawn workers, cpus={os.cpu_count()}")
    print(f"stntool warp:    {min(t_stn):.2f} s  {stn:.1f} images/s  (runs: {', '.join(f'{t:.2f}' for t in t_stn)})")
    print(f"cv2 script:      {min(t_cv):.2f} s  {cv:.1f} images/s  (runs: {', '.join(f'{t:.2f}' for t in t_cv)})")
    print(f"ratio stntool/cv2: {stn / cv:.2f}x")
    print(f"stntool --help:  {help_t:.3f} s (python -c pass: {py_t:.3f} s)")
    print(f"single image warm: {single:.3f} s")


if __name__ == "__main__":
    main()
