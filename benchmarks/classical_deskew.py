"""A classical page deskewer, the baseline stntool rectify is judged against (benchmark only, not the product).

1. Coarse skew from the Fourier spectrum: the dominant orientation of the log power spectrum of the page's
   ink (text lines are a peak perpendicular to them), from an angular histogram over an annulus.
2. Rotation refined by maximising the energy of the horizontal projection profile: a sweep of ±1.5° in
   0.05° steps around the coarse angle, then parabolic interpolation, twice at finer steps.
3. Shear by a sweep that maximises the energy of the vertical projection profile (x shear in ±0.2).

Everything is OpenCV (``warpAffine``, INTER_LINEAR) on the page's ink at up to 1280 px. Returns the
correction as ``(angle in degrees counter-clockwise, x shear)``: the page is turned by the angle about its
centre, then sheared along x in the straightened frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _ink(img, long_side=1280):
    g = img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    g = g.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
    s = min(1.0, long_side / max(g.shape))
    if s < 1.0:
        g = cv2.resize(g, (round(g.shape[1] * s), round(g.shape[0] * s)), interpolation=cv2.INTER_AREA)
    edge = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    return np.abs(g - np.median(edge))


def _warp(ink, angle, shear):
    h, w = ink.shape
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    a = math.radians(angle)
    lin = np.array([[1.0, shear], [0.0, 1.0]]) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    m = np.hstack([lin, (np.array(c) - lin @ np.array(c))[:, None]])  # out_from_in about the centre
    return cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _best(energy, x0, span, step):
    xs = x0 + np.arange(-span, span + 1e-9, step)
    es = np.array([energy(x) for x in xs])
    i = int(np.argmax(es))
    if 0 < i < len(xs) - 1:
        d = es[i - 1] - 2 * es[i] + es[i + 1]
        if d < 0:
            return xs[i] + 0.5 * step * (es[i - 1] - es[i + 1]) / d
    return xs[i]


def estimate(img):
    """``(angle, shear)`` correcting the page (counter-clockwise degrees, x shear), about its centre."""
    ink = _ink(img)

    def row_energy(a):
        return float((_warp(ink, a, 0.0).sum(axis=1).astype(np.float64) ** 2).sum())

    a = _coarse_rotation(ink)
    for span, step in ((1.5, 0.05), (0.1, 0.01)):
        a = _best(row_energy, a, span, step)

    def col_energy(s):
        return float((_warp(ink, a, s).sum(axis=0).astype(np.float64) ** 2).sum())

    s = _best(col_energy, 0.0, 0.2, 0.01)
    s = _best(col_energy, s, 0.01, 0.001)
    return a, s


def _coarse_rotation(ink):
    """The rotation (counter-clockwise degrees, in [-45, 45)) that makes the spectrum's line peak vertical."""
    side = max(ink.shape)
    sq = np.zeros((side, side), np.float32)  # pad to a square first: a non-uniform resize would bend angles
    sq[(side - ink.shape[0]) // 2:][:ink.shape[0], (side - ink.shape[1]) // 2:][:, :ink.shape[1]] = ink
    small = cv2.resize(sq, (512, 512), interpolation=cv2.INTER_AREA)
    win = np.outer(np.hanning(512), np.hanning(512)).astype(np.float32)
    spec = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((small - small.mean()) * win))))
    yy, xx = np.mgrid[-256:256, -256:256]
    r = np.hypot(xx, yy)
    ring = (r > 8) & (r < 200)
    direction = np.degrees(np.arctan2(yy[ring], xx[ring]))  # of the frequency vector, image y down
    # text lines at angle t (counter-clockwise as displayed) put their peak at direction 90 - t (mod 180)
    tilt = (90.0 - direction + 45.0) % 90.0 - 45.0
    hist, edges = np.histogram(tilt, bins=360, range=(-45, 45), weights=spec[ring])
    hist = np.convolve(np.r_[hist[-4:], hist, hist[:4]], np.ones(9) / 9, mode="valid")
    t = edges[int(np.argmax(hist))] + 0.125
    return -t  # the correction turns the other way


def correction_in_from_out(hw, angle, shear):
    """``in_pix_from_out_pix`` of the correction (what the benchmark scores)."""
    h, w = hw
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    a = math.radians(angle)
    lin = np.array([[1.0, shear], [0.0, 1.0]]) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    fwd = np.eye(3)
    fwd[:2, :2] = lin
    fwd[:2, 2] = c - lin @ c
    return np.linalg.inv(fwd)
