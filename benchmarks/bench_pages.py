"""Page straightening on the held-out set: the localisation net alone, `stntool rectify`, and peers.

    python benchmarks/bench_pages.py --model stntool/models/text.npz            # writes results/pages.md
    python benchmarks/bench_pages.py --quick                                     # fewer pages
    python benchmarks/bench_pages.py --methods rectify --seed 7 --pages 60 --out /tmp/v.md --thetas /tmp/v.npz
                                               # one method on other pages (choosing a setting), its θ saved
    python benchmarks/bench_pages.py --methods rectify --splits skew --seed 7 --pages 60 --worst 8 --out /tmp/v.md
                                               # and its eight worst pages per split, to look at

Contenders, all on the same distorted images (benchmarks/heldout.py):

* ``net``: the localisation net alone, one look (quarter turn, then θ), no refinement;
* ``net x2``: the net looking again at its own result (composed);
* ``rectify``: `stntool.rectify.Rectifier` (net, then refinement through the sampler);
* ``classical``: benchmarks/classical_deskew.py (Fourier coarse skew, projection-profile rotation, shear
  sweep), the baseline;
* ``deskew`` (``determine_skew``) and ``jdeskew`` (``get_angle``) when importable: they estimate an angle
  only; the correction rotates by it.

Reported per split: median and 90th percentile of the residual rotation (polar decomposition of the
residual pixel map), median text-line angle, median shear/anisotropy (``σ1 / σ2 - 1`` of the residual's
linear part), the fraction upright (within 45°) and within 1°, and the estimation time per page. deskew
and jdeskew are benchmark-only dependencies (``pip install deskew jdeskew``); run with a Python that has
them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import heldout as H  # noqa: E402
from bench_engine import cpu_model, loadavg  # noqa: E402


def contenders(model):
    from stntool.rectify import Rectifier

    out = {
        "net": Rectifier(model, refine=False, iterations=1, min_confidence=0.0),
        "net x2": Rectifier(model, refine=False, iterations=2, min_confidence=0.0),
        "rectify": Rectifier(model, refine=True, iterations=2, min_confidence=0.0),
    }
    fns = {name: (lambda img, r=r: ("theta", r.estimate(img)[0])) for name, r in out.items()}
    import classical_deskew

    fns["classical"] = lambda img: ("pixel map", classical_deskew.correction_in_from_out(
        img.shape[:2], *classical_deskew.estimate(img)))
    try:
        from deskew import determine_skew

        fns["deskew"] = lambda img: ("angle", determine_skew(img))
    except ImportError:
        pass
    try:
        from jdeskew.estimator import get_angle

        fns["jdeskew"] = lambda img: ("angle", get_angle(img))
    except ImportError:
        pass
    return fns


def run(model, n_pages, seed, methods=None, thetas=None, splits=H.SPLITS, phase="random", worst=0):
    """Every method (or those named in ``methods``) on every case; with ``thetas`` (a list), the θ each
    θ-giving method returned, case by case, is appended to it as ``(method, split, θ)``. ``worst``: print
    that many of each method's worst pages per split (:func:`worst_pages`)."""
    cases = H.make_cases(n_pages=n_pages, seed=seed, splits=splits, phase=phase)
    fns = contenders(model)
    if methods:
        unknown = sorted(set(methods) - set(fns))
        if unknown:
            raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(fns)}")
        fns = {k: v for k, v in fns.items() if k in methods}
    results = {}
    for key, cs in cases.items():
        for name, fn in fns.items():
            scores, times = [], []
            for c in cs:
                t0 = time.perf_counter()
                kind, value = fn(c.image)
                times.append(time.perf_counter() - t0)
                if thetas is not None and kind == "theta":
                    thetas.append((name, "/".join(key), np.asarray(value, dtype=np.float64)))
                if kind == "angle":
                    corr = H.correction_from_angle(c.image.shape, 0.0 if value is None else float(value))
                elif kind == "pixel map":
                    corr = value
                else:
                    corr = H.correction_from_theta(c.image.shape, value)
                scores.append(H.score(c, corr))
            s = H.summarise(scores)
            s["ms"] = 1e3 * float(np.median(times))
            results[(key, name)] = s
            print(key, name, {k: round(v, 4) for k, v in s.items()}, flush=True)
            if worst:
                print(worst_pages(cs, scores, worst), flush=True)
    return cases, results


def worst_pages(cases, scores, n):
    """The ``n`` pages with the largest residual rotation, one line each: the residual (signed, degrees),
    the rotation the distortion made, the page and its size: where to look when a summary moves."""
    order = sorted(range(len(cases)), key=lambda i: -scores[i]["rotation"])[:n]
    return "\n".join(f"    residual {scores[i]['signed']:+9.4f}°  distortion {H.distortion_rotation(cases[i]):+8.3f}°  "
                     f"{cases[i].name} {cases[i].image.shape[0]}x{cases[i].image.shape[1]}" for i in order)


def table(results):
    lines = ["| pages | split | method | n | median rot ° | p90 rot ° | median line ° | median aniso | upright | "
             "within 1° | ms/page |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (key, name), s in results.items():
        lines.append(f"| {key[0]} | {key[1]} | {name} | {s['n']} | {s['rotation_median']:.3f} | "
                     f"{s['rotation_p90']:.3f} | {s['line_median']:.3f} | {s['anisotropy_median']:.4f} | "
                     f"{s['upright']:.1%} | {s['within_1deg']:.1%} | {s['ms']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT.parent / "stntool" / "models" / "text.npz"))
    p.add_argument("--pages", type=int, default=100)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "results" / "pages.md"))
    p.add_argument("--methods", default="", help="comma-separated subset, e.g. rectify (A/B of one method)")
    p.add_argument("--thetas", default="", help="save the θ of each θ-giving method and case to this .npz "
                                                "(compare two builds bit for bit)")
    p.add_argument("--splits", default=",".join(H.SPLITS), help="comma-separated subset of " + ", ".join(H.SPLITS))
    p.add_argument("--phase", choices=("random", "aligned"), default="random",
                   help="a sub-pixel translation after each distortion (random, the default) or none (aligned: "
                        "the set as first defined; see benchmarks/heldout.py)")
    p.add_argument("--worst", type=int, default=0, metavar="N",
                   help="print each method's N worst pages per split (residual, distortion, page, size)")
    a = p.parse_args(argv)
    n = 10 if a.quick else a.pages
    before = loadavg()
    thetas = [] if a.thetas else None
    splits = tuple(x for x in a.splits.split(",") if x)
    _, results = run(a.model, n, a.seed, [m for m in a.methods.split(",") if m], thetas, splits, a.phase,
                     a.worst)
    if a.thetas:
        np.savez(a.thetas, methods=np.array([t[0] for t in thetas]), splits=np.array([t[1] for t in thetas]),
                 thetas=np.array([t[2] for t in thetas]))
    text = (f"# Page straightening on the held-out set\n\n{_dt.datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, "
            f"load average before {before}, after {loadavg()}; model `{Path(a.model).name}`; {n} rendered held-out "
            f"pages + the shipped text sample per split (see benchmarks/heldout.py), sub-pixel phase "
            f"{a.phase}.\n\n{table(results)}\n")
    if not a.quick:
        Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
