"""First-run cost: cold kernel compilation per kernel family, and the README's first command cold and warm.

    python benchmarks/bench_compile.py                 # every family, writes benchmarks/results/compile.md
    python benchmarks/bench_compile.py --families affine-u8-bilinear,tps --repeat 1 --out ''
    python benchmarks/bench_compile.py --warmup 1,2 --families affine-u8-bilinear --repeat 1   # + stntool warmup
    python benchmarks/bench_compile.py --ahead 3 --no-readme --families '' --out benchmarks/results/compile-ahead.md
    python benchmarks/bench_compile.py --ahead 3 --ahead-command tps --no-readme --families '' --out ''
    python benchmarks/bench_compile.py --link-only 2 --no-readme --repeat 0     # link-only helpers on and off

Every measurement runs in a fresh subprocess. "Cold" points ``NUMBA_CACHE_DIR`` at a new empty folder, so
nothing compiled earlier (by this run, the tests or the user) is reused; "cached" runs the same call again in a
second fresh process with that folder, so it measures loading the compiled code from disk. "After affine" is
a family's cost once the README's kernel (uint8 bilinear affine) is already in the cache, which is what a user
pays for each new mode, dtype or kernel. Times are wall-clock seconds of the first call (``import stntool``
and ``import numba`` excluded, reported separately), minimum over ``--repeat`` runs. Load average is printed:
on a busy machine compile times grow with the load. ``--ahead N`` times the README command cold and warm
N times each with the second compiling process on and off (``STNTOOL_COMPILE_AHEAD``), alternated
(``--ahead-command``: or ``warp --tps`` or ``augment --elastic`` over the samples instead).
``--link-only N`` times each family's "after affine" first call N times with link-only helpers on and off
(``STNTOOL_LINK_ONLY``, :mod:`stntool.sampling._link_only`), alternated, each mode with its own cache.
``--backend cuda`` measures the CUDA kernels instead (on a GPU; the first call then includes creating the
CUDA context, which the "from cache" column shows)::

    python benchmarks/bench_compile.py --backend cuda --repeat 1 --out ''
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import child_env, cpu_model, loadavg, write_report  # noqa: E402  (one definition of the machine facts)

# family -> Python statements run after `import numpy as np, stntool` (the timed part)
_IMG = "img = (np.arange(96 * 128 * {c}) % 251).astype(np.{dt}).reshape(96, 128{shape})\n"
_THETA = "th = [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]\n"
FAMILIES = {
    "affine-u8-bilinear": (_IMG.format(c=3, dt="uint8", shape=", 3") + _THETA,
                           "stntool.warp(img, th, backend='cpu')"),
    "affine-u8-nearest": (_IMG.format(c=3, dt="uint8", shape=", 3") + _THETA,
                          "stntool.warp(img, th, mode='nearest', backend='cpu')"),
    "affine-u8-bicubic": (_IMG.format(c=3, dt="uint8", shape=", 3") + _THETA,
                          "stntool.warp(img, th, mode='bicubic', backend='cpu')"),
    "affine-u16-bilinear": (_IMG.format(c=1, dt="uint16", shape="") + _THETA,
                            "stntool.warp(img, th, backend='cpu')"),
    "affine-f32-bilinear": (_IMG.format(c=4, dt="float32", shape=", 4") + _THETA,
                            "stntool.warp(img, th, backend='cpu')"),
    "projective-u8-bilinear": (_IMG.format(c=3, dt="uint8", shape=", 3"),
                               "stntool.warp(img, [[0.9, -0.2, 0.0], [0.2, 0.9, 0.0], [0.1, 0.05, 1.0]], "
                               "backend='cpu')"),
    "grid-u8-bilinear": (_IMG.format(c=3, dt="uint8", shape=", 3") + _THETA
                         + "g = stntool.affine_grid(th, (96, 128))\n",
                         "stntool.grid_sample(img, g, backend='cpu')"),
    "tps-u8-bilinear": (_IMG.format(c=3, dt="uint8", shape=", 3")
                        + "src = [[10, 10], [117, 12], [8, 85], [120, 90], [64, 48]]\n"
                        + "dst = [[12, 9], [115, 14], [10, 83], [118, 92], [60, 50]]\n",
                        "stntool.warp_tps(img, src, dst, backend='cpu')"),
    "backward-f64": (_IMG.format(c=3, dt="float64", shape=", 3") + _THETA
                     + "go = np.ones((96, 128, 3))\n",
                     "stntool.warp_backward(img, [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]], go, backend='cpu')"),
}
README_THETA = "0.9,-0.25,0.05,0.25,0.9,0"
#: The backend the families and the README command run on (``--backend``).
BACKEND = "cpu"

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, stntool
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
{setup}
t3 = time.perf_counter()
{call}
t4 = time.perf_counter()
{call}
t5 = time.perf_counter()
print(json.dumps({{"import_stntool": t1 - t0, "import_numba": t2 - t1, "first": t4 - t3, "second": t5 - t4}}))
"""


def _env(cache_dir: str, **extra) -> dict:
    env = child_env(**extra)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def run_family(name: str, cache_dir: str, **env) -> dict:
    setup, call = FAMILIES[name]
    code = _CHILD.format(setup=setup, call=call.replace("backend='cpu'", f"backend='{BACKEND}'"))
    p = subprocess.run([sys.executable, "-c", code], env=_env(cache_dir, **env), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


#: ``--ahead-command``: the command ``--ahead`` times, besides the README's: a thin-plate spline over the samples
#: (four lattice-kernel signatures and the spline's plan kernels), and elastic variants of them.
TPS_POINTS = {"src": [[-0.8, -0.8], [0.8, -0.8], [-0.8, 0.8], [0.8, 0.8], [0, 0]],
              "dst": [[-0.75, -0.82], [0.78, -0.76], [-0.8, 0.8], [0.84, 0.77], [0.04, -0.05]], "normalized": True}
AHEAD_COMMANDS = {  # (output, the TPS points' file) -> the command's arguments
    "readme": lambda out, points: ["warp", "--theta", README_THETA, str(ROOT / "samples"), "-o", out],
    "tps": lambda out, points: ["warp", "--tps", points, str(ROOT / "samples"), "-o", out],
    "elastic": lambda out, points: ["augment", str(ROOT / "samples"), "-o", out, "--count", "2", "--seed", "1",
                                    "--elastic", "30,6"],
}


def _points_file(tmp: str) -> str:
    path = os.path.join(tmp, "points.json")
    if not os.path.exists(path):
        with open(path, "w") as f:
            json.dump(TPS_POINTS, f)
    return path


def run_readme(cache_dir: str, out_dir: str, command: str = "readme", **env) -> float:
    """Wall time of ``stntool warp --theta ... samples/ -o OUT`` as a user runs it (``env``: extra variables), or
    of another of :data:`AHEAD_COMMANDS`."""
    cmd = _cli([
        *AHEAD_COMMANDS[command](out_dir, _points_file(os.path.dirname(cache_dir)) if command == "tps" else None),
        "--overwrite", "-q",
        *(["--device", BACKEND] if BACKEND != "cpu" else [])])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=_env(cache_dir, **env), capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"README command failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt


def _cli(args) -> list:
    """The ``stntool`` script installed for this interpreter (beside it, as pip puts it), else the first on
    PATH, else ``python -m stntool``. PATH's first one may belong to another environment, or be a version
    manager's shim (pyenv's adds about 0.1 s of shell start-up to every run)."""
    here = Path(sys.executable).parent / ("stntool.exe" if os.name == "nt" else "stntool")
    exe = str(here) if here.is_file() else shutil.which("stntool")
    return ([exe] if exe else [sys.executable, "-m", "stntool"]) + list(args)


def run_warmup(cache_dir: str, args=()) -> tuple:
    """Wall time of ``stntool warmup ARGS`` and its number of first-compile lines."""
    t0 = time.perf_counter()
    p = subprocess.run(_cli(["warmup", "--device", BACKEND, *args]), env=_env(cache_dir), capture_output=True,
                       text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"stntool warmup {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt, sum("compiling kernels" in line for line in p.stderr.splitlines())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of: "
                    + ", ".join(FAMILIES))
    ap.add_argument("--repeat", type=int, default=2,
                    help="cold runs per measurement (minimum is reported); 0 skips the per-family table")
    ap.add_argument("--no-readme", action="store_true", help="skip the README command")
    ap.add_argument("--warmup", default="", metavar="JOBS",
                    help="also time `stntool warmup` (its defaults) cold with each -j in this comma-separated "
                         "list (e.g. 1,2), the README command after it, and `stntool warmup --all -j 2` cold")
    ap.add_argument("--ahead", type=int, default=0, metavar="N",
                    help="also time the README command cold and warm N times each with STNTOOL_COMPILE_AHEAD=1 "
                         "and =0, alternated")
    ap.add_argument("--ahead-command", choices=sorted(AHEAD_COMMANDS), default="readme",
                    help="the command --ahead times: the README's, `warp --tps` or `augment --elastic` over the "
                         "samples")
    ap.add_argument("--link-only", type=int, default=0, metavar="N",
                    help="also time each family's 'after affine' first call N times with STNTOOL_LINK_ONLY=1 and "
                         "=0, alternated")
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu",
                    help="the kernels to measure (cuda: on a GPU; compile ahead and link-only are CPU matters)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compile.md"),
                    help="markdown results file ('' to print only)")
    args = ap.parse_args(argv)
    global BACKEND
    BACKEND = args.backend
    families = [f for f in args.families.split(",") if f]
    for f in families:
        if f not in FAMILIES:
            ap.error(f"unknown family {f!r}")

    lines = [f"# First-run cost ({_dt.date.today().isoformat()})", "",
             f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
             f"load average at start {loadavg()}; backend {BACKEND}.", ""]
    print("\n".join(lines), flush=True)
    tmp = tempfile.mkdtemp(prefix="stntool-compile-")
    try:
        readme = None
        if not args.no_readme:
            cold, warm = [], []
            for r in range(args.repeat):
                cache = os.path.join(tmp, f"readme{r}")
                cold.append(run_readme(cache, os.path.join(tmp, f"out{r}")))
                warm.append(min(run_readme(cache, os.path.join(tmp, f"out{r}")) for _ in range(3)))
                print(f"README command: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s (load {loadavg()})",
                      flush=True)
            readme = (min(cold), min(warm))

        ahead_rows = []
        for r in range(args.ahead):
            for on in ("1", "0") if r % 2 == 0 else ("0", "1"):
                cache = os.path.join(tmp, f"ahead{on}-{r}")
                before = loadavg()
                out = os.path.join(tmp, f"aout{on}-{r}")
                cold = run_readme(cache, out, args.ahead_command, STNTOOL_COMPILE_AHEAD=on)
                warm = min(run_readme(cache, out, args.ahead_command, STNTOOL_COMPILE_AHEAD=on) for _ in range(3))
                ahead_rows.append((r + 1, on, cold, warm, before))
                state = "on " if on == "1" else "off"
                print(f"{args.ahead_command} command, compile ahead {state}: cold {cold:.2f} s, "
                      f"warm {warm:.2f} s (load before {before})", flush=True)

        warm_rows = []
        for jobs in [int(j) for j in args.warmup.split(",") if j]:
            cache = os.path.join(tmp, f"warmup-j{jobs}")
            dt, n = run_warmup(cache, ["-j", str(jobs)])
            after = min(run_readme(cache, os.path.join(tmp, f"wout{jobs}")) for _ in range(2))
            warm_rows.append((f"stntool warmup -j {jobs}", dt, n, after))
            print(f"warmup -j {jobs}: cold {dt:.2f} s ({n} kernels), README command after it {after:.2f} s "
                  f"(load {loadavg()})", flush=True)
        if args.warmup:
            dt, n = run_warmup(os.path.join(tmp, "warmup-all"), ["--all", "-j", "2"])
            warm_rows.append(("stntool warmup --all -j 2", dt, n, None))
            print(f"warmup --all -j 2: cold {dt:.2f} s ({n} kernels) (load {loadavg()})", flush=True)

        # the README kernel, shared by the "after affine" column
        base_cache = os.path.join(tmp, "base")
        if families:
            run_family("affine-u8-bilinear", base_cache)
        link_rows = []
        if args.link_only and families:
            bases = {}
            for on in ("1", "0"):
                bases[on] = os.path.join(tmp, f"link{on}-base")
                run_family("affine-u8-bilinear", bases[on], STNTOOL_LINK_ONLY=on)
            for name in families:
                times = {"1": [], "0": []}
                for r in range(args.link_only):
                    for on in ("1", "0") if r % 2 == 0 else ("0", "1"):
                        cache = os.path.join(tmp, f"link{on}-{name}-{r}")
                        shutil.copytree(bases[on], cache)
                        times[on].append(run_family(name, cache, STNTOOL_LINK_ONLY=on)["first"])
                link_rows.append((name, times["1"], times["0"]))
                print(f"{name:24s} link-only on {min(times['1']):6.2f} s  off {min(times['0']):6.2f} s "
                      f"(load {loadavg()})", flush=True)
        rows = []
        for name in families if args.repeat > 0 else ():
            cold, cached, after, imports = [], [], [], []
            for r in range(args.repeat):
                cache = os.path.join(tmp, f"{name}-{r}")
                res = run_family(name, cache)
                cold.append(res["first"])
                imports.append(res["import_stntool"] + res["import_numba"])
                cached.append(run_family(name, cache)["first"])
                inc = os.path.join(tmp, f"{name}-after-{r}")
                if os.path.isdir(base_cache):
                    shutil.copytree(base_cache, inc)  # (numba-cuda's simulator caches nothing)
                after.append(run_family(name, inc)["first"])
            row = (name, min(cold), min(after), min(cached), min(imports))
            rows.append(row)
            print(f"{name:24s} cold {row[1]:6.2f} s  after affine {row[2]:6.2f} s  cached {row[3]:5.2f} s  "
                  f"(imports {row[4]:.2f} s, load {loadavg()})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out = list(lines)
    if ahead_rows:
        def stats(on, col):
            vals = sorted(row[col] for row in ahead_rows if row[1] == on)
            return f"{vals[0]:.2f} / {vals[len(vals) // 2]:.2f} / {vals[-1]:.2f}"

        shown = " ".join(AHEAD_COMMANDS[args.ahead_command]("out/", "points.json")).replace(str(ROOT) + os.sep, "")
        shown = shown.replace("points.json", "points.json (benchmarks/bench_compile.py's TPS_POINTS)")
        title = "README command" if args.ahead_command == "readme" else f"`{args.ahead_command}` command"
        out += [f"## {title}: compiling ahead in a second process", "",
                f"`stntool {shown}`, wall time of the whole process; cold = "
                "a new empty NUMBA_CACHE_DIR, warm = best of 3 runs after it; on and off alternated.", "",
                "| run | compile ahead | cold s | warm s | load average before |", "|---|---|---|---|---|"]
        out += [f"| {r} | {'on' if on == '1' else 'off'} | {c:.2f} | {w:.2f} | {lo} |"
                for r, on, c, w, lo in ahead_rows]
        out += ["", "| compile ahead | cold min / median / max | warm min / median / max |", "|---|---|---|",
                f"| on | {stats('1', 2)} | {stats('1', 3)} |", f"| off | {stats('0', 2)} | {stats('0', 3)} |", ""]
    if readme is not None:
        out += ["## README command", "",
                f"`stntool warp --theta {README_THETA} samples/ -o out/` (5 images, wall time of the whole process; "
                f"run as `{_cli([])[0]}`):",
                "", "| cache | seconds |", "|---|---|",
                f"| cold (empty NUMBA_CACHE_DIR) | {readme[0]:.2f} |", f"| warm | {readme[1]:.2f} |", ""]
    if warm_rows:
        out += ["## Compiling ahead of time", "", "Each in a fresh NUMBA_CACHE_DIR; the README command is then "
                "run with that cache.", "", "| command | seconds, cold | kernels compiled | README command after |",
                "|---|---|---|---|"]
        out += [f"| `{c}` | {t:.2f} | {n} | {'' if a is None else f'{a:.2f}'} |" for c, t, n, a in warm_rows]
        out += [""]
    if rows:
        out += ["## First call per kernel family (seconds, imports excluded)", "",
                "| family | cold | after affine | from cache | imports |", "|---|---|---|---|---|"]
        out += [f"| {n} | {c:.2f} | {a:.2f} | {k:.2f} | {i:.2f} |" for n, c, a, k, i in rows]
        out += ["", f"Sum of 'after affine' over {len(rows)} families: {sum(r[2] for r in rows):.1f} s."]
    if link_rows:
        out += ["## Link-only helpers on and off", "",
                "First call once the README kernel is cached (\"after affine\"), seconds, each run in a fresh "
                "process; `STNTOOL_LINK_ONLY=1` (the default) and `=0` (numba's own behaviour) alternated, each "
                "with its own cache (numba's scipy and cffi set-up is deferred in both).", "", "| family | on: runs | off: runs | on / off (min) |", "|---|---|---|---|"]
        out += [f"| {n} | {' '.join(f'{t:.2f}' for t in a)} | {' '.join(f'{t:.2f}' for t in b)} | "
                f"{min(a) / min(b):.2f} |" for n, a, b in link_rows]
    out += ["", f"Load average at end {loadavg()}.", ""]
    write_report("\n".join(out), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
