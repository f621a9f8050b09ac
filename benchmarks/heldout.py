"""The held-out page set for judging page rectification (the localisation net and `stntool rectify`).

Pages the training never saw: rendered with the held-out font families and layouts of
``stntool.pages`` (``split="heldout"``: C059, P052, URW Bookman, URW Gothic, Liberation Serif,
DejaVu Serif Condensed; newspaper and invoice layouts), plus the shipped text sample, each distorted by
a known transform. Splits:

* ``affine``: rotation U[-30°, 30°], x shear U[-0.15, 0.15] (factor), scale U[0.85, 1.15], translation up
  to 5% per axis;
* ``rotation``: rotation U[-30°, 30°] only;
* ``quarter``: ±90° (each page turned one way or the other) plus rotation U[-5°, 5°];
* ``skew``: rotation U[-1°, 1°] only (a flatbed scanner's skew: most real scans);
* ``straight``: no distortion (a page scanned or rendered straight), only the sub-pixel move below.

Every distortion ends with a translation by a fraction of a pixel, U[-0.5, 0.5) per axis, drawn from a
generator of its own (so the splits' rotations, shears and scales are those drawn without it). Without it
(``phase="aligned"``, the set as first defined), a correction that turns a rotation-only page back exactly
reads the distorted page where the upright page's own pixel centres went: the profile through those
samples is sharper at the exact answer than a page scanned at an arbitrary sub-pixel offset can ever be,
and an estimator's figures on such pages were flattered by it (clean rotation-only pages: median
text-line angle 0.005° aligned against 0.011° at a random offset, the same estimator).

``clean`` pages have no degradations (the truth is exact); ``scans`` pages carry the generator's scan
degradations (noise, blur, JPEG, uneven light, paper, page-in-photo). The distortion is applied to the
page at its own size (output size = input size), with the page's border colour as padding.

Scoring (:func:`score`): the residual transform ``in_pix_from_out_pix`` of the corrected page against the
upright one, ``M = D · C`` (distortion then correction, pixel maps about the page centre), gives

* the residual rotation: the angle of the rotation in the polar decomposition of M's linear part;
* the text-line angle: the angle at which a horizontal line of the upright page appears in the output;
* the shear/anisotropy: ``σ1 / σ2 - 1`` of M's linear part (its singular values; 0 for a rotation and a
  uniform scale, which a page does not show; an x shear of factor s gives about |s|);
* upright: whether the residual rotation is within 45°;
* signed: the residual rotation with its sign (counter-clockwise positive), for looking at single pages.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Case:
    name: str
    split: str
    upright: np.ndarray          # the undistorted page (grey uint8)
    image: np.ndarray            # the distorted page given to the estimators
    in_from_out: np.ndarray      # 3x3 pixel map of the distortion: image(x) = upright(M x)


def _pixel_distortion(rng, hw, split):
    from stntool import transforms as tf

    h, w = hw
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    if split == "affine":
        rot, shear, scale = rng.uniform(-30, 30), rng.uniform(-0.15, 0.15), rng.uniform(0.85, 1.15)
        tx, ty = rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.05, 0.05) * h
    elif split == "rotation":
        rot, shear, scale, tx, ty = rng.uniform(-30, 30), 0.0, 1.0, 0.0, 0.0
    elif split == "quarter":
        rot = rng.choice([-90.0, 90.0]) + rng.uniform(-5, 5)
        shear, scale, tx, ty = 0.0, 1.0, 0.0, 0.0
    elif split == "skew":
        rot, shear, scale, tx, ty = rng.uniform(-1, 1), 0.0, 1.0, 0.0, 0.0
    elif split == "straight":
        rot, shear, scale, tx, ty = 0.0, 0.0, 1.0, 0.0, 0.0
    else:
        raise ValueError(split)
    sh = np.array([[1.0, shear, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out_from_in = (tf.translate(c[0] + tx, c[1] + ty) @ tf.rotate(rot) @ sh @ tf.scale(scale) @
                   tf.translate(-c[0], -c[1]))
    return out_from_in


def distort(page, out_from_in):
    """The page warped by a forward pixel map (same size), padded with its border colour."""
    import stntool
    from stntool.pageview import border_value, _grey01
    from stntool.transforms import theta_from_pixel_map

    hw = page.shape[:2]
    theta = theta_from_pixel_map(out_from_in, hw)
    fill = border_value(_grey01(page)) * 255.0
    return stntool.warp(page, theta, padding="constant", fill=fill, mode="bilinear")


SPLITS = ("affine", "rotation", "quarter", "skew", "straight")


def make_cases(n_pages=60, seed=2026, kinds=("clean", "scans"), splits=SPLITS, size=None, include_sample=True,
               phase="random"):
    """``{(kind, split): [Case, ...]}``, deterministic for a seed. ``phase``: ``"random"`` (a sub-pixel
    translation after each distortion) or ``"aligned"`` (none; see the module docstring)."""
    from stntool import transforms as tf

    if phase not in ("random", "aligned"):
        raise ValueError(phase)
    from stntool.io import read_image
    from stntool.pages import render_page

    pages = {}
    for kind in kinds:
        pages[kind] = [(f"heldout-{i}", render_page((seed, i), size=size, split="heldout", degrade=kind == "scans"))
                       for i in range(n_pages)]
        if include_sample:
            sample = read_image(str(ROOT / "samples" / "text_page.png"))[0]
            if sample.ndim == 3:
                import cv2

                sample = cv2.cvtColor(sample, cv2.COLOR_BGR2GRAY)
            pages[kind].append(("samples/text_page.png", sample))
    cases = {}
    for kind in kinds:
        for split in splits:
            rng = np.random.default_rng([seed, hash_split(kind, split)])
            sub_pixel = np.random.default_rng([seed, hash_split(kind, split), 1])
            out = []
            for name, page in pages[kind]:
                fwd = _pixel_distortion(rng, page.shape[:2], split)
                if phase == "random":
                    fwd = tf.translate(*sub_pixel.uniform(-0.5, 0.5, 2)) @ fwd
                out.append(Case(name, split, page, distort(page, fwd), np.linalg.inv(fwd)))
            cases[(kind, split)] = out
    return cases


def hash_split(kind, split):
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(kind + "/" + split))


def correction_from_angle(hw, degrees):
    """``in_pix_from_out_pix`` of a correction that rotates the page by ``degrees`` (counter-clockwise) about its centre."""
    from stntool import transforms as tf

    h, w = hw
    return np.linalg.inv(tf.rotate(degrees, ((w - 1) / 2.0, (h - 1) / 2.0)))


def correction_from_theta(hw, theta):
    """``in_pix_from_out_pix`` of a page θ (output size = input size)."""
    from stntool.transforms import pixel_map_from_theta

    return pixel_map_from_theta(np.asarray(theta, dtype=np.float64), hw)


def score(case: Case, correction_in_from_out: np.ndarray) -> dict:
    """Residual rotation (polar decomposition), text-line angle (degrees, absolute) and upright flag."""
    m = case.in_from_out @ correction_in_from_out  # upright(m · x) is the corrected output at x
    lin = m[:2, :2] / m[2, 2]
    ang = _polar_rotation(lin)
    if ang is None:
        return {"rotation": 180.0, "signed": 180.0, "line": 90.0, "upright": False, "anisotropy": float("inf")}
    sv = np.linalg.svd(lin, compute_uv=False)
    out_dir = np.linalg.solve(lin, [1.0, 0.0])  # a horizontal line of the upright page, seen in the output
    line = math.degrees(math.atan2(out_dir[1], out_dir[0]))
    line = (line + 90.0) % 180.0 - 90.0
    return {"rotation": abs(ang), "signed": ang, "line": abs(line), "upright": abs(ang) < 45.0,
            "anisotropy": float(sv[0] / sv[1] - 1.0)}


def _polar_rotation(lin):
    """The rotation (degrees, counter-clockwise) of the polar decomposition of a 2x2 map, None when it
    reflects."""
    u, _, vt = np.linalg.svd(lin)
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        return None
    return math.degrees(math.atan2(rot[1, 0], rot[0, 0]))


def distortion_rotation(case: Case) -> float:
    """The rotation (degrees, counter-clockwise, polar decomposition) of the case's distortion: what an
    estimator had to undo."""
    fwd = np.linalg.inv(case.in_from_out)
    return _polar_rotation(fwd[:2, :2] / fwd[2, 2])


def summarise(scores) -> dict:
    r = np.array([s["rotation"] for s in scores])
    ln = np.array([s["line"] for s in scores])
    up = np.array([s["upright"] for s in scores])
    an = np.array([s.get("anisotropy", 0.0) for s in scores])
    return {"n": len(r), "rotation_median": float(np.median(r)), "rotation_p90": float(np.percentile(r, 90)),
            "line_median": float(np.median(ln)), "anisotropy_median": float(np.median(an)), "upright": float(up.mean()), "within_1deg": float((r <= 1.0).mean())}
