"""Why `stntool rectify` leaves a page off: each search's steps, the margin sweep's peaks and the page's true
angle and shear, for pages of the held-out set or of a validation seed.

    python benchmarks/pages_diagnose.py --seed 7 --kind clean --split affine heldout-3 heldout-45
    python benchmarks/pages_diagnose.py --seed 2026 --pages 100 --split quarter samples/text_page.png --save /tmp/d

Names are as ``bench_pages.py --worst N`` prints them. For each page: the residual rotation and text-line
angle of rectify's θ (as bench_pages scores them), the angle and x shear of its square-frame θ, the angle and
shear that undo the distortion (a search around rectify's, minimising residual rotation plus line angle),
every sweep and climb in the order `_refine` ran them, and the margin sweep's best shears for the line
starts, the line ends and both (energy over its median). ``--save DIR`` writes each page and its output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import heldout as H  # noqa: E402
from stntool import rectify as R  # noqa: E402


def truth(rect, case, theta_sq, span=(1.0, 0.1), steps=(0.01, 0.002)):
    """``(angle, shear, residual rotation, line angle)`` of the θ ``base · R(angle) · Sh(shear)`` (rectify's
    quarter turn) that best undoes the case's distortion, on a grid around rectify's own."""
    a0, s0 = R._angle_shear(theta_sq[:2, :2] / theta_sq[2, 2])
    base = theta_sq @ np.linalg.inv(R._shape_theta(a0, s0))
    hw = case.image.shape[:2]
    best = None
    for a in np.arange(a0 - span[0], a0 + span[0] + 1e-12, steps[0]):
        for s in np.arange(s0 - span[1], s0 + span[1] + 1e-12, steps[1]):
            sc = H.score(case, H.correction_from_theta(hw, rect._page_theta(base @ R._shape_theta(a, s), hw, hw)))
            cost = sc["rotation"] + sc["line"]
            if best is None or cost < best[0]:
                best = (cost, a, s, sc["signed"], sc["line"])
    return best[1:]


class Trace:
    """Records the searches of a Rectifier (by wrapping its methods) and the margin sweep's curves."""

    SEARCHES = ("_bracket", "_sweep", "_climb", "_ascend")

    def __init__(self, rect):
        self.lines = []
        self.curves = []
        for name in self.SEARCHES:
            self._wrap_search(rect, name)
        margin, self._columns = rect._margin_shear, R._column_energies
        R._column_energies = self.columns  # the margin sweep's curves (module-level: the sweep calls it so)

        def margin_shear(ink, base, ang, shear0):
            self.curves.clear()
            shear, prominence = margin(ink, base, ang, shear0)
            self.lines.append(f"margin shear at angle {ang:.4f}: {shear:+.4f}, prominence {prominence:.3f}")
            if len(self.curves) >= 2:  # the wide sweep: starts, then ends (every other row)
                (d, e_s), (_, e_e) = self.curves[:2]
                for label, e in (("starts", e_s), ("ends", e_e), ("both", e_s + e_e)):
                    top = np.argsort(-e)[:5]
                    med = max(float(np.median(e)), 1e-12)
                    peaks = ", ".join(f"{shear0 + d[k]:+.3f}: {e[k] / med:.2f}" for k in top)
                    self.lines.append(f"    {label:6s} {peaks}")
            return shear, prominence

        rect._margin_shear = margin_shear

    def _wrap_search(self, rect, name):
        f = getattr(rect, name)

        def run(energy, ink, base, ang, shear, which, *args, **kwargs):
            x = f(energy, ink, base, ang, shear, which, *args, **kwargs)
            self.lines.append(f"{name[1:]:8s} {energy.__name__:18s} {which:5s} on {ink.ink.shape}: "
                              f"from angle {ang:.4f}, shear {shear:+.4f} -> {x:.4f}")
            return x

        setattr(rect, name, run)

    def columns(self, points, slope, offsets, width):
        out = self._columns(points, slope, offsets, width)
        self.curves.append((np.asarray(offsets, dtype=np.float64), out))
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="pages, e.g. heldout-3 samples/text_page.png")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pages", type=int, default=60, help="pages the set was made with (held-out: 100)")
    ap.add_argument("--kind", default="clean", choices=("clean", "scans"))
    ap.add_argument("--split", default="affine", choices=H.SPLITS)
    ap.add_argument("--family", default=None)
    ap.add_argument("--save", default="", help="write each page and rectify's output to this folder")
    args = ap.parse_args(argv)
    cases = H.make_cases(n_pages=args.pages, seed=args.seed, kinds=(args.kind,), splits=(args.split,))
    rect = R.Rectifier("text", family=args.family, min_confidence=0.0)
    trace = Trace(rect)
    found = {c.name: c for c in cases[(args.kind, args.split)]}
    for name in args.names:
        if name not in found:
            raise SystemExit(f"no page {name!r} in {args.kind}/{args.split} of seed {args.seed}")
        case = found[name]
        trace.lines.clear()
        theta, _, info = rect.estimate(case.image, details=True)
        sc = H.score(case, H.correction_from_theta(case.image.shape, theta))
        tsq = info["theta_square"]
        ang, shear = R._angle_shear(tsq[:2, :2] / tsq[2, 2])
        t_ang, t_shear, t_rot, t_line = truth(rect, case, tsq)
        print(f"{name} {case.image.shape[0]}x{case.image.shape[1]}: residual {sc['signed']:+.4f}°, line "
              f"{sc['line']:.4f}°; rectify angle {ang:.4f} shear {shear:+.4f}; best angle {t_ang:.4f} shear "
              f"{t_shear:+.4f} (residual {t_rot:+.4f}°, line {t_line:.4f}°)")
        for line in trace.lines:
            print("   ", line)
        if args.save:
            import cv2

            import stntool

            out = Path(args.save)
            out.mkdir(parents=True, exist_ok=True)
            stem = name.replace("/", "_")
            cv2.imwrite(str(out / f"{stem}_in.png"), case.image)
            cv2.imwrite(str(out / f"{stem}_out.png"), stntool.warp(case.image, theta, padding="border"))


if __name__ == "__main__":
    main()
