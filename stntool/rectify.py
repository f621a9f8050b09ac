"""Straightening pages: the localisation net's θ, refined through the sampler.

:class:`Rectifier` estimates, for one image, the θ that makes its text upright:

1. **Quarter turn.** The net's quarter-turn head says how many quarter turns (counter-clockwise) the page
   is off; the view is turned back exactly (:func:`stntool.pageview.quarter_theta`).
2. **The net's θ**, iterated: the net looks at the view warped by its last answer and the answers are
   composed (``iterations`` times). Its θ is reduced to what a page shows: a rotation, and for the
   ``affine`` and ``projective`` families an x shear (and the projective part); a page's absolute scale
   and position cannot be seen, so the output keeps the page's size and centre. Then, for a model with
   an upright head, a second look at the page made straight: the head's log-odds that it is upside
   down (from its text lines' ink profile) join the quarter head's, and the page is turned half round
   if they say so.
3. **Refinement through the sampler.** The page's ink (its distance from the paper colour) is warped
   by the current θ. The angle maximises the energy of the horizontal projection profile (rows:
   sharpest when text lines are horizontal): a coarse sweep brackets the optimum within the net's error,
   a finer sweep and a climb on the fine image follow. When the coarse search ends more than a degree
   from the net's angle, the net's neighbourhood is searched on the fine image too and the sharper
   profile wins. The x shear
   (``affine`` and ``projective``) is the one that lines up the ends of the text lines (margins,
   indents, table columns: :meth:`Rectifier._margin_shear`); on a page where nothing lines up, the
   energy of the column profile (sharpest when strokes and edges are vertical) is maximised over the
   shear instead, by sweeps and gradient steps whose gradients come through the sampler
   (:func:`stntool.warp_backward`).
4. **Confidence** in [0, 1]: the quarter head's probability times the text evidence (the share of the row
   profile's variance in line-sized oscillation: rows of text lines and gaps; when the columns oscillate as
   much, the text lines must show when read across; none when the page made straight shows fewer than 30
   runs of ink with an x-height band: a chart, a pattern or a logo has rows of ink, not text lines). Below
   ``min_confidence`` the θ is the identity and the reason says why: blank pages, noise and photos without
   text come back unchanged.

Everything is done in the page's square frame (:mod:`stntool.pageview`), where a rotation is a
rotation; the θ returned is the page's own (PyTorch's ``affine_grid`` convention, normalized output ->
normalized input, ``align_corners=False``, output size = input size), ready for
:func:`stntool.warp` or a :class:`~stntool.records.WarpSpec`.

>>> from stntool.rectify import Rectifier                     # doctest: +SKIP
>>> theta, confidence = Rectifier("text").estimate(img)       # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

from .coords import as_flag, host_array
from .errors import InvalidArgumentError
from .transforms import to_3x3

__all__ = ["Rectifier", "load_model", "MODELS"]

#: Models shipped with stntool, by name.
MODELS = {"text": os.path.join(os.path.dirname(__file__), "models", "text.npz")}

_REFINE_LONG = 1280     # long side (pixels) of the page image the final refinement warps
_FINE_ROWS = 2            # rows per pixel of the fine image's row profiles (Rectifier._fine_row_energy) ...
_FINE_SHIFT = 0.25        # ... moved down by this many pixels: the rows on and half way between the pixel rows
_GRADIENT_LONG = 512    # long side of the coarse image (the coarse sweeps, the shear's gradient steps)
_ROWS_SHRINK = 2         # the row profiles' ink is this many times narrower than the ink (see _Ink.rows)
_SWEEP = 6.0            # degrees either side of the net's angle for the coarse sweep
_SWEEP_STEP = 0.5
_ASCENT_STEPS = 2         # gradient steps (through the sampler) of one parameter; the fine sweeps finish
_UPRIGHT_WEIGHT = 2.0     # the upright head's log-odds count this many times (each way) against the quarter head's ...
_UPRIGHT_LINES = 200      # ... read from this many text-line runs or more; from fewer, in proportion (_second_look)
_SECOND_OPINION = (2.0, 0.25)  # degrees either side of the net's angle, and step, of the fine second-opinion sweep
_FINE_LIMIT = 1.0         # degrees from the coarse angle that the search on the fine image may go
_FINE_CLIMBS = 3          # climbs on the fine image at most, each from the last one's best where that lay at its reach
_SECOND_OPINION_AFTER = 1.0  # degrees between the net's angle and the coarse search's that call for it
_MARGIN_SWEEP = (0.3, 0.005)  # x shear either side of the net's that the line-end search sweeps, and its step
_LINE_ENDS_DENSITY = 2    # the line ends are found at this many pixels per pixel of the fine image, both ways
_LINE_ENDS_BLUR = 1.0     # pixels of Gaussian smoothing of the strokes the line ends are found in (_Ink.strokes_u8)
_MARGIN_FINE_BINS = 0.5   # pixels of the line ends' frame per column of the fine sweep's (and zero check's) histograms
_MARGIN_FIT = 3           # the shear's parabola is fitted to the fine sweep's points this many either side of its best
_SQUARE_CHECK = 0.5       # degrees off the page's square beyond which the square's own sharpness is compared
_STRAIGHT = (0.998, 0.5)  # no turn when none is this share as sharp and the turn moves a row's far end <= pixels
_STRIPS = 2               # the two-column check reads the fine row profile in this many strips side by side ...
_STRIP_MIN = 200          # ... each at least this many pixels wide (narrower pages are not checked)
_STRIP_DISAGREE = 0.05    # degrees between the whole rows' angle and the strips' beyond which the two are weighed
_HALF_BLUR = 4.0          # local-mean blurs this wide (pixels) or wider are made at half size (_Ink)
_MAX_SHEAR = 0.2          # the net's x shear, clipped to this, is where the shear searches start
_ZERO_SHEAR = 0.95        # no shear when the line ends line up within this share as well unsheared as at the best
_MARGIN_MIN_PROMINENCE = 1.12  # margin energy at its best shear over its median over the sweep, to be trusted
# (noise and blurred blobs: 1.07-1.10; sheared validation pages at 1.13-1.15, margins cut off by the image's
# edge: the line ends' shear within 0.012-0.027 of the page's, the column profile's 0.025-0.15)
_EVIDENCE = (0.03, 0.08)  # text evidence (row-profile oscillation share) mapped to confidence 0 .. 1
_FAINT = 0.25            # a page whose grey levels span less than this (and at least _FLAT) is stretched to 0 .. 1
_FLAT = 0.03             # ... a blank page's noise spans less
_NOISE_SPAN = 0.25       # ... and pixel noise keeps less than this share of its span when smoothed (_stretched)
_ELONGATED = 2.5         # long side over short side from which a page turned sideways is settled turned upright
_MIN_LINES = 30          # text-line runs (pageview.line_profile) below which a page has no text evidence
_LINES = (100, 2.0)       # text lines a page must show read across, and how many times more than read down
_TRIM = 5.0               # percent of a profile's highest and lowest values clipped where rows and columns compare
_THIN = 16                # pixels: an image narrower than this either way holds no two text lines to read
_PERIODIC = (16.0, 1.5, 150)  # a row profile's periodogram peak over its median below which, with fewer than this
# many times the text lines read across as read down, rows are noise, not lines, on images smaller than this
# (pixels, the long side). Uniform and Gaussian noise of 64-128 px: peaks 1.4-11.5 at 1.0-1.1 times as many lines;
# held-out pages: peaks from 10.6, those below 16 with 2.3-8.3 times as many; rendered pages of 160-240 px: some
# with weak peaks and as many lines read either way, so larger images are not checked.


def load_model(model):
    """A :class:`stntool.locnet.LocNet` from a shipped name (``"text"``), a path, or a LocNet."""
    from .locnet import LocNet

    if isinstance(model, LocNet):
        return model
    path = MODELS.get(model, model)
    if model in MODELS and not os.path.exists(path):
        raise InvalidArgumentError(f"the shipped model {model!r} is missing from this installation ({path})")
    names = ", ".join(repr(k) for k in MODELS)  # a shipped name is a model here too
    return LocNet.load(path, what=f"a model is {names}, the shipped one, or a .npz file from stntool train")


def _rot(deg):
    if deg % 90.0 == 0.0:  # exactly (cos 90° is not 0 in floating point)
        from .pageview import quarter_theta

        return quarter_theta(int(deg // 90.0))[:, :2]
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _angle_shear(lin):
    """``(degrees, shear)`` with ``lin = R(degrees) · [[1, shear], [0, 1]] · upper-triangular scale``."""
    ang = math.degrees(math.atan2(lin[1, 0], lin[0, 0]))
    u = _rot(-ang) @ lin
    return ang, (u[0, 1] / u[1, 1] if abs(u[1, 1]) > 1e-12 else 0.0)


def _with(ang, shear, which, x):
    """``(ang, shear)`` with the parameter ``which`` (``"angle"`` or ``"shear"``) replaced by ``x``."""
    return (x, shear) if which == "angle" else (ang, x)


def _parabola_top(x, step, e_lo, e_mid, e_hi):
    """Where the parabola through ``(x - step, e_lo)``, ``(x, e_mid)``, ``(x + step, e_hi)`` peaks, when it
    opens downwards; ``x`` otherwise."""
    curv = e_lo - 2 * e_mid + e_hi
    return float(x + 0.5 * step * (e_lo - e_hi) / curv) if curv < 0 else float(x)


def _parabola_fit(xs, es, i, half):
    """Where the parabola fitted (least squares) to the points ``(xs, es)`` within ``half`` of the best ``i``
    (an even sweep) peaks. The three-point parabola (:func:`_parabola_top`) where fewer than five points are
    there, or the fit does not open downwards or peaks beyond them; ``xs[i]`` at the sweep's ends."""
    lo, hi = max(0, i - half), min(len(xs), i + half + 1)
    if hi - lo >= 5:
        c2, c1, _ = np.polyfit(xs[lo:hi] - xs[i], es[lo:hi], 2)
        if c2 < 0 and abs(c1 / (2 * c2)) <= xs[hi - 1] - xs[i] and abs(c1 / (2 * c2)) <= xs[i] - xs[lo]:
            return float(xs[i] - c1 / (2 * c2))
    if 0 < i < len(xs) - 1:
        return _parabola_top(xs[i], xs[i + 1] - xs[i], es[i - 1], es[i], es[i + 1])
    return float(xs[i])


def _nearest_quarter_turn(m, tol: float = 0.5):
    """The square-frame θ (3x3) of the quarter turn nearest ``m``, when ``m`` is within ``tol`` of it; else ``m``."""
    from .pageview import quarter_theta

    k = round(math.degrees(math.atan2(m[1, 0], m[0, 0])) / 90.0) % 4
    q = to_3x3(quarter_theta(k))
    return q if np.abs(np.asarray(m, dtype=np.float64) - q).max() < tol else m


def _shape_theta(ang, shear):
    """Square-frame θ (3x3) of a rotation by ``ang`` degrees after an x shear, about the centre."""
    m = np.eye(3)
    m[:2, :2] = _rot(ang) @ np.array([[1.0, shear], [0.0, 1.0]])
    return m


class _Ink:
    """The page's ink, float32, with its long side at most ``long_side`` (exactly ``long_side`` with
    ``enlarge``: a smaller page is enlarged, bicubic): ``|grey - its local mean|``, smoothed by a Gaussian of
    ``blur`` pixels (none for 0).

    The local mean (a Gaussian of about two line heights, made at half size when 4 px or wider) is the paper
    under the strokes, so what is left is text and rules, not the page's edge on a desk, shading or a
    figure's area. The smoothing helps the gradient steps on a small image; the final angle is sharper
    without it (held-out clean pages: median text-line angle 0.016° with 0.8 pixels at 1280, 0.004° without).

    The fine image (:meth:`Rectifier._refine`) is enlarged: the profiles of a page a few hundred pixels
    long, warped bilinearly at its own size, are blurred more at some angles and sub-pixel offsets than at
    others, and their line ends are found less precisely. Enlarged to 1280 pixels, validation pages (61 a
    split, seeds 7 and 11, a few hundred to 900 pixels long) came back at about half the median residual
    rotation (clean rotation-only 0.0082° -> 0.0045° and 0.0103° -> 0.0048°; clean sheared 0.030° -> 0.011°
    and 0.034° -> 0.018°, as the margins' shear is found more precisely too), and no summary worse; such a
    page takes 15-40 ms more (held-out pages: 68-90 -> 85-106 ms). Pages larger than 1280 pixels are
    unchanged.

    With ``strokes``, the ink is the strokes alone (:meth:`_stroke_field`: the page darker than the local
    mean, not the difference either way), as for the fine image: the difference also lights up the paper
    beside the strokes (a halo a few pixels wide, brighter where more ink is near), which fills the gaps
    between text lines of a row profile unevenly. Validation pages (seeds 7, 11 and 13, 61 a split): the
    median residual rotation of pages turned up to ±30° 0.0044° -> 0.0036°, 0.0047° -> 0.0025°, 0.0040° ->
    0.0017° (clean), of skewed pages 0.0081° -> 0.0066°, 0.0093° -> 0.0049°, 0.0076° -> 0.0042° (clean) and
    0.0068° -> 0.0048°, 0.0080° -> 0.0052°, 0.0054° -> 0.0046° (scans); a few scans' medians rose (by up
    to 0.0018°, sheared scans of seed 13), with the check of the two halves weighed by energy
    (:meth:`Rectifier._strips_win`), without which sharper whole rows drew more two-column pages to a tilt.
    """

    def __init__(self, img, long_side: int = _REFINE_LONG, blur: float = 0.8, grey=None, larger=None,
                 enlarge: bool = False, strokes: bool = False):
        import cv2

        from .pageview import _grey01

        g = _grey01(img) if grey is None else grey
        self.hw = g.shape
        scale = long_side / max(self.hw)
        if scale < 1.0 or (enlarge and scale > 1.0):
            size = (max(1, round(self.hw[1] * scale)), max(1, round(self.hw[0] * scale)))
            if scale > 1.0:
                g = cv2.resize(g, size, interpolation=cv2.INTER_CUBIC)
            else:  # from the larger ink's grey image when there is one and it is not enlarged (fewer pixels to average)
                src = g if larger is None or larger.enlarged else larger._small_grey
                g = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        sigma = max(2.0, max(g.shape) / 200.0)
        if sigma >= _HALF_BLUR:  # the paper's level varies slowly: blurred at half size, in a third of the time
            h, w = g.shape
            half = cv2.resize(g, (max(1, round(w / 2)), max(1, round(h / 2))), interpolation=cv2.INTER_AREA)
            local = cv2.resize(cv2.GaussianBlur(half, (0, 0), sigma / 2), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            local = cv2.GaussianBlur(g, (0, 0), sigma)
        self._small_grey = g
        self._local = local
        self._strokes = self._stroke_field() if strokes else None
        self.ink = self._strokes if strokes else cv2.absdiff(g, local)
        if blur > 0:
            self.ink = cv2.GaussianBlur(self.ink, (0, 0), blur)
        self.enlarged = scale > 1.0 and enlarge
        self._totals = {}

    def total(self, field: str) -> float:
        """The sum of the field ``field`` (``"ink"``, ``"mass"``, ``"rows_x"``, ``"rows_y"``), made once."""
        if field not in self._totals:
            self._totals[field] = float(getattr(self, field).sum()) + 1e-9
        return self._totals[field]

    def rows(self, theta_sq):
        """The field of the ink to take row profiles of (:meth:`Rectifier._wide_row_energy`) for the page made
        straight by ``theta_sq``: the ink at :data:`_ROWS_SHRINK` th of its size along the input axis that the
        output's rows run along (x, or y for a page turned a quarter). A row's sum hardly depends on how finely
        it is sampled along the row."""
        if _ROWS_SHRINK <= 1 or min(self.ink.shape) < 8 * _ROWS_SHRINK:
            return "ink"
        return "rows_x" if abs(theta_sq[0, 0]) >= abs(theta_sq[1, 0]) else "rows_y"

    def _shrunk(self, axis):
        import cv2

        h, w = self.ink.shape
        size = (max(1, round(w / _ROWS_SHRINK)), h) if axis == 1 else (w, max(1, round(h / _ROWS_SHRINK)))
        return cv2.resize(self.ink, size, interpolation=cv2.INTER_AREA)

    @functools.cached_property
    def rows_x(self):
        return self._shrunk(1)

    @functools.cached_property
    def rows_y(self):
        return self._shrunk(0)

    def _stroke_field(self):
        """How much darker than the local mean the page is (lighter, for light text on dark: the middle of the
        page mostly dark), 0 where it is not: the strokes alone (float32)."""
        from .pageview import light_on_dark

        g = self._small_grey
        return np.maximum(g - self._local if light_on_dark(g) else self._local - g, 0.0)

    @functools.cached_property
    def strokes_u8(self):
        """The strokes for the line ends (:func:`_line_ends`): :meth:`_stroke_field` smoothed by a Gaussian of
        :data:`_LINE_ENDS_BLUR` pixels, scaled to 0 .. 255 (its maximum) and rounded, uint8 (warped at twice
        the size into a quarter of the bytes of float32).

        The difference from the local mean either way also lights up the paper just beside dark strokes,
        which is lighter than a local mean that the strokes darken: a halo whose reach depends on what else
        is near, so the runs of ink along rows ended at its edge rather than the strokes'. Beside a table's
        ruled border with text in its cells, those ends lined up at a shear 0.007 off the page's; without
        the halo, 0.003 (the page's residual rotation 0.33° -> 0.08°). Validation pages (seeds 7 and 11, 61
        a split): sheared scans' median 0.0084° -> 0.0066° and 0.0121° -> 0.0087° (p90 0.042° -> 0.035° and
        0.084° -> 0.070°). Without the smoothing, crisp rendered pages were worse (clean sheared median
        0.0064° -> 0.0077°).
        """
        import cv2

        strokes = self._strokes if self._strokes is not None else self._stroke_field()
        strokes = cv2.GaussianBlur(strokes, (0, 0), _LINE_ENDS_BLUR)
        top = float(strokes.max())
        return cv2.convertScaleAbs(strokes, alpha=255.0 / top if top > 0 else 0.0)

    @functools.cached_property
    def mass(self):
        """For the column profile's shear (made when first asked): everything that differs from the paper at
        the border (text blocks, the page's edges)."""
        import cv2

        from .pageview import border_value

        g = self._small_grey
        return cv2.GaussianBlur(np.abs(g - border_value(g)), (0, 0), 0.8)


def _sums(a, axis: int) -> np.ndarray:
    """The sums of a float32 image along ``axis`` (1: each row's), float64: ``a.sum(axis, dtype=np.float64)``,
    a third of the time (OpenCV's reduction, summing in float64 in another order)."""
    import cv2

    return cv2.reduce(a, axis, cv2.REDUCE_SUM, dtype=cv2.CV_64F).ravel()


def _coverage(ink, theta_sq, axis, hw=None, span=None):
    """How much of each output row (``axis`` 1) or column (``axis`` 0) of the ink warped by θ lies inside the
    image, in pixels: the length of the line's intersection with the image's rectangle (θ affine). ``hw``:
    the size of the image warped (the ink's by default); ``span``: ``(start, stop)``, only that part of each
    line (output pixels ``start <= i < stop`` along it)."""
    from .pageview import page_theta
    from .transforms import pixel_map_from_theta

    hw = ink.ink.shape if hw is None else hw
    m = pixel_map_from_theta(page_theta(theta_sq[:2], ink.hw), hw, hw)  # input pixel from output pixel
    n_lines, length = hw[1 - axis], hw[axis]
    lo = np.full(n_lines, -0.5 if span is None else span[0] - 0.5)
    hi = np.full(n_lines, length - 0.5 if span is None else span[1] - 0.5)
    lo, hi = _inside_spans(m, hw, axis, lo, hi, 0.5)
    return np.maximum(hi - lo, 0.0)


def _inside_spans(m, in_hw, axis, lo, hi, edge):
    """``(lo, hi)``: the part ``lo <= s <= hi`` of each output row (``axis`` 1; column, ``axis`` 0) read through
    the pixel map ``m`` (input pixel from output pixel, affine) that lies inside the input image of size
    ``in_hw`` grown by ``edge`` pixels (0.5: to its pixels' outer edges; 0: to its outer pixel centres, where
    every bilinear tap is inside), within the given ``lo`` and ``hi``; ``s`` in output pixels along the line.
    A line that misses the image gets ``hi == lo`` or ``hi < lo``."""
    t = np.arange(len(lo), dtype=np.float64)
    along, across = (0, 1) if axis == 1 else (1, 0)  # the output coordinate that runs along each line
    for c, size in ((0, in_hw[1]), (1, in_hw[0])):  # input x, then input y, each within [-edge, size - 1 + edge]
        a = m[c, along]
        b = m[c, across] * t + m[c, 2]
        if abs(a) < 1e-12:
            out = (b < -edge) | (b > size - 1 + edge)
            hi = np.where(out, lo, hi)
            continue
        u, v = (-edge - b) / a, (size - 1 + edge - b) / a
        lo, hi = np.maximum(lo, np.minimum(u, v)), np.minimum(hi, np.maximum(u, v))
    return lo, hi


def _strip_cuts(width, strips):
    """``[(start, stop), ...]``: ``strips`` runs of output columns side by side across ``width`` (one: all)."""
    cuts = [round(k * width / strips) for k in range(strips + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _checks_halves(width) -> bool:
    """Whether a fine image ``width`` pixels wide gets the two-halves check (each half :data:`_STRIP_MIN` wide)."""
    return width >= _STRIPS * _STRIP_MIN


def _line_energy(sums, cover, length):
    """``(energy, inside, cover)`` of a profile: the sum of ``sums² / cover`` over the lines at least a tenth
    inside the image (``cover >= length / 10``), and ``cover`` with 1 where a line is not."""
    inside = cover >= 0.1 * length
    cover = np.where(inside, cover, 1.0)
    return float((np.where(inside, sums ** 2 / cover, 0.0)).sum()), inside, cover


def _line_ends(ink, spans, gap):
    """``(starts, ends)``: where the runs of ink along the rows of a page made straight start and end, each
    ``(x, y)`` float arrays of output pixels. ``ink``: uint8, 0 .. 255 (:attr:`_Ink.strokes_u8`, warped).

    The ink is binarised (Otsu's threshold) and closed along rows over ``gap`` pixels, so the letters and
    words of a line make one run. Each end is placed where the ink, interpolated linearly between the pixel
    centres either side of it, crosses the threshold. ``spans``: ``(lo, hi)``, the columns of each row that
    read the image with every bilinear tap (:func:`_inside_spans`); ends less than about ``gap / 2 + 2``
    pixels inside those of their own and the neighbouring rows (text cut off by the edge, not a margin) are
    left out.
    """
    import cv2

    if not cv2.countNonZero(ink):
        empty = (np.zeros(0), np.zeros(0))
        return empty, empty
    # Otsu's threshold from every other pixel of every other row (a quarter of the time, much the same value)
    thr, _ = cv2.threshold(np.ascontiguousarray(ink[::2, ::2]), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, runs = cv2.threshold(ink, thr, 1, cv2.THRESH_BINARY)
    crossing = float(thr) + 0.5  # between the last value below the threshold and the first above it
    runs = cv2.morphologyEx(runs, cv2.MORPH_CLOSE, np.ones((1, gap), np.uint8))  # 0 or 1
    # what an erosion of the inside by 3 rows and gap + 4 columns would keep: within each row's span, less
    # `left` columns from its start and `right` from its end, in that row and the ones above and below
    lo, hi = (np.asarray(a, dtype=np.float64) for a in spans)
    lo3, hi3 = lo.copy(), hi.copy()
    lo3[1:] = np.maximum(lo3[1:], lo[:-1])
    lo3[:-1] = np.maximum(lo3[:-1], lo[1:])
    hi3[1:] = np.minimum(hi3[1:], hi[:-1])
    hi3[:-1] = np.minimum(hi3[:-1], hi[1:])
    left = (gap + 4) // 2
    right = gap + 4 - 1 - left
    # a run starts or ends between two pixels of a row where one is ink and the other is not
    change = cv2.bitwise_xor(runs[:, 1:], runs[:, :-1])
    y, x = np.divmod(np.flatnonzero(change.view(bool)), change.shape[1])  # np.nonzero's order, a seventh of its time
    opens = runs[y, x + 1].view(bool)  # ink on the right: a run starts at x + 1; else one ends at x
    out = []
    for y, x, step in ((y[opens], x[opens] + 1, -1), (y[~opens], x[~opens], 1)):
        keep = (x - left >= lo3[y]) & (x + right <= hi3[y])
        y, x = y[keep], x[keep]
        inked = ink[y, x].astype(np.float64)
        paper = ink[y, x + step].astype(np.float64)
        frac = np.clip((inked - crossing) / np.maximum(inked - paper, 1e-9), 0.0, 1.0)
        out.append((x + step * frac, y.astype(np.float64)))
    return out[0], out[1]


def _column_energy_of_points(points, m, width):
    """Sum of squares of the column histogram of the points ``(x, y)`` moved to ``x' = m[0] · (x, y, 1)``,
    over columns ``0 <= x' < width``: each point shared linearly between its two nearest columns (so the
    energy changes smoothly with ``m``), then smoothed by [1, 2, 1] / 4. The spec of one shear:
    :func:`_column_energies` computes a whole sweep and is tested against it."""
    x, y = points
    pos = m[0] * x + m[1] * y + m[2]
    left = np.floor(pos)
    frac = pos - left
    left = left.astype(np.int64)
    keep = (left >= 0) & (left < width - 1)
    left, frac = left[keep], frac[keep]
    h = np.bincount(left, 1.0 - frac, minlength=width) + np.bincount(left + 1, frac, minlength=width)
    h = np.convolve(h, [0.25, 0.5, 0.25], mode="same")
    return float(h @ h)


def _sweep_reach(point_sets, slope, reach) -> int:
    """Whole pixels beyond either side of the frame that the points ``(x, y)`` of ``point_sets`` may move
    to at offsets ``|d| <= reach`` of :func:`_column_energies` (``x + d · (slope · (x, y, 1))``), plus the two
    columns a point and the smoothing spread over."""
    move = [np.abs(slope[0] * x + slope[1] * y + slope[2]).max() for x, y in point_sets if len(x)]
    return int(math.ceil(max(move, default=0.0) * reach)) + 2


def _column_energies(points, slope, offsets, width):
    """:func:`_column_energy_of_points` of the points ``(x, y)`` moved to ``x + d · (slope · (x, y, 1))``, for
    each ``d`` of ``offsets`` (an x shear moves points along their rows, linearly in the shear): a whole sweep
    in one compiled loop (:func:`stntool._histograms.column_energies`), with the histograms' own sums."""
    from ._histograms import column_energies

    x, y = (np.ascontiguousarray(a, dtype=np.float64) for a in points)
    out = np.empty(len(offsets))
    column_energies(x, y, np.ascontiguousarray(slope, dtype=np.float64),
                    np.ascontiguousarray(offsets, dtype=np.float64), int(width), out)
    return out


class _Lines:
    """A page's text lines as the upright head reads them (:func:`stntool.pageview.page_line_profile`),
    its :data:`~stntool.pageview.UPRIGHT_WORK`-pixel working image made once, when first asked."""

    def __init__(self, img, backend: str, grey=None):
        self.img, self.backend, self.grey, self.work, self.seen = img, backend, grey, None, {}

    def upright_work(self):
        """The page's :data:`~stntool.pageview.UPRIGHT_WORK`-pixel working image, made when first asked."""
        from .pageview import UPRIGHT_WORK, working_image

        if self.work is None:
            self.work = working_image(self.img, UPRIGHT_WORK, grey=self.grey)
        return self.work

    def net_work(self):
        """The net's working image (:data:`~stntool.pageview.WORK` pixels): for a page larger than
        :data:`~stntool.pageview.UPRIGHT_WORK`, halved from this page's upright working image (made now, a
        box filter of 2x2), which takes a fifth of the time of making it from the page again."""
        import cv2

        from .pageview import UPRIGHT_WORK, WORK, square_side, working_image

        if WORK * 2 != UPRIGHT_WORK or square_side(self.img.shape[:2]) <= UPRIGHT_WORK:
            return working_image(self.img, grey=self.grey)
        return cv2.resize(self.upright_work(), (WORK, WORK), interpolation=cv2.INTER_AREA)

    def profile(self, theta_sq, bins=None):
        from .pageview import LINE_BINS, page_line_profile

        key = (np.asarray(theta_sq, dtype=np.float64).tobytes(), bins or LINE_BINS)
        if key not in self.seen:
            self.seen[key] = page_line_profile(self.img, theta_sq, key[1], self.backend, work=self.upright_work())
        return self.seen[key]


class Rectifier:
    """Estimates and applies the θ that straightens a page (see the module docstring).

    Parameters
    ----------
    model : ``"text"`` (shipped), a path to a model from ``stntool train``, or a LocNet
    family : ``"rotation"``, ``"similarity"`` (the same as rotation here: scale and position are kept),
        ``"affine"`` (rotation and shear) or ``"projective"``; default the model's
    refine : refine the angle (and shear) through the sampler
    min_confidence : below it, the identity
    iterations : how many times the net looks again at its own result
    """

    def __init__(self, model="text", family=None, refine: bool = True, min_confidence: float = 0.5,
                 iterations: int = 2, backend: str = "cpu"):
        from .locnet import LocNet
        from .sampling import BACKENDS

        if not isinstance(model, (str, os.PathLike, LocNet)):
            raise InvalidArgumentError(f"model must be 'text', a path to a model or a LocNet, got {model!r}")
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)):
            raise InvalidArgumentError(f"min_confidence must be a number in [0, 1], got {min_confidence!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise InvalidArgumentError(f"iterations must be a whole number >= 1, got {iterations!r}")
        if backend not in BACKENDS:
            raise InvalidArgumentError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.net = load_model(model)
        self.family = family or self.net.family
        if self.family not in ("rotation", "similarity", "affine", "projective"):
            raise InvalidArgumentError(f"unknown family {self.family!r}")
        if self.family == "projective" and self.net.family != "projective":
            raise InvalidArgumentError(f"family 'projective' needs a projective model; this one is {self.net.family}")
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidArgumentError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.refine = as_flag(refine, "refine")
        self.min_confidence, self.iterations, self.backend = min_confidence, iterations, backend
        from .pageview import SIZE

        if self.net.input_shape != (3, SIZE, SIZE):
            raise InvalidArgumentError(f"the model reads {self.net.input_shape} inputs; rectify gives (3, {SIZE}, "
                                       f"{SIZE}) (a model from an incompatible stntool version?)")
        # a model trained without quarter turns (`stntool train --no-quarter-turns`) has a quarter head that
        # never learnt: it is not asked, and pages are taken to be within 45° of upright
        self.quarter_head = self.net.quarter_turns_trained

    def kernels(self, mode: str = "bilinear", padding: str = "zeros") -> list:
        """The ``(family, mode, padding, dtype)`` of the CPU kernels a page goes through (``dtype`` None: the
        image's own, for the final warp): the net's (border padding) and the refinement's float32 warps of the
        grey working image (a fifth value, True: one channel), the backward pass when refining, and the warp
        that writes the output (not for the projective family, whose pages may need either kernel). Used to
        compile kernels ahead on a first run (:mod:`stntool._compile_ahead`), never to choose one."""
        family = "projective" if self.family == "projective" else "affine"
        # the refinement's ink warps are affine (zeros padding); the net's views and the upright head's line
        # profiles are warped by the family's θ with border padding, whose kernels are their own (a kernel named
        # here that a page never runs is claimed by the second process on every run, and never saved)
        out = [("affine", "bilinear", "zeros", "float32", True), (family, "bilinear", "border", "float32", True)]
        if self.refine:
            out.append(("backward", "bilinear", "zeros", "float64"))
        if self.family != "projective":  # a projective model's pages come out projective or affine, page by page
            out.append((family, mode, padding, None))
        return out

    # ------------------------------------------------------------------ the net

    def _net(self, view):
        from .locnet import softmax
        from .pageview import net_input

        theta, logits = self.net.predict(net_input(view)[None])
        return to_3x3(theta[0]), softmax(logits.astype(np.float64))[0]

    def _quarter_probabilities(self, work):
        """The quarter head asked about the view turned 0-3 times, its answers combined consistently.

        If the view is ``k`` turns off, the view turned ``j`` more times is ``k + j`` off: the log
        probabilities of the four answers are added for each ``k`` (a product of experts), then normalised.
        """
        from .locnet import softmax
        from .pageview import net_inputs_turned

        if not self.quarter_head:
            return np.array([1.0, 0.0, 0.0, 0.0])
        views = net_inputs_turned(work)
        _, logits = self.net.predict(views)
        logp = np.log(softmax(logits.astype(np.float64)) + 1e-12)
        score = np.array([sum(logp[j, (k + j) % 4] for j in range(4)) for k in range(4)])
        score = np.exp((score - score.max()) / 4.0)
        return score / score.sum()

    def _net_estimate(self, work, prob=None, k=None, lines=None):
        """``(k, probabilities, theta_sq 3x3)`` from the working image (``k`` forced when given; otherwise,
        given the page's :class:`_Lines` and a model with an upright head, the head takes a second look)."""
        from .pageview import quarter_theta

        prob = self._quarter_probabilities(work) if prob is None else prob
        forced = k is not None
        k = int(np.argmax(prob)) if k is None else k
        q = to_3x3(quarter_theta(-k))
        view = np.ascontiguousarray(np.rot90(work, -k))
        acc = np.eye(3)
        for _ in range(self.iterations):
            seen = view if np.array_equal(acc, np.eye(3)) else self._warp_view(view, acc)
            t, _ = self._net(seen)
            acc = acc @ self._reduce(t)
        theta_sq = q @ acc
        if self.net.upright_head is not None and not forced and lines is not None:
            k, prob, theta_sq = self._second_look(lines, k, prob, theta_sq)
        return k, prob, theta_sq

    def _warp_view(self, view, theta_sq):
        from . import api

        return api.warp(view, theta_sq[:2] if self.family != "projective" else theta_sq, padding="border",
                        backend=self.backend)

    def _second_look(self, lines, k, prob, theta_sq):
        """The upright head's second look: is the page, made straight by ``theta_sq``, upside down?

        Its log-odds (from the text lines' ink profile), times :data:`_UPRIGHT_WEIGHT`, are added to the
        quarter head's for ``k`` against ``k + 2`` (a product of experts), and the page is turned half round
        when they say so: the same θ, read from the opposite corner (``θ · diag(-1, -1, 1)``).

        The quarter head is overconfident about half turns: validation pages came back upside down 13 times
        in 1,830 (seeds 7, 11 and 13, every split) with the two heads' log-odds counted alike; in the five
        looked at, the quarter head gave the wrong turn 0.85-1.0 and the upright head said upside down. With
        the upright head's counted twice over each way (its odds to the fourth power), 7 (none on rendered
        pages; on scans, 7 before and after); three times over, the same 7.

        The head reads the mean profile of the page's text lines, which on a page of few lines (a receipt,
        a title page, a sparse form) is a noisy mean: there it said "upside down" with log-odds of -1 to -4
        about straight pages whose quarter head was 0.9-0.98 sure and right. Its log-odds count in full
        from :data:`_UPRIGHT_LINES` text-line runs (``count``, each line once per strip it is read in) and in
        proportion below. Pages turned a random quarter turn (0-3) and up to ±30°, rendered in the training
        fonts (800, half of them scans): 10 upside down before, 7 after; validation pages (seeds 7, 11, 13,
        17, every split, 2,439 cases): 27 before, 14 after (the same from 150 to 400 lines); the held-out
        pages (1,010 cases): 4 before, 3 after.
        """
        profile, count = lines.profile(theta_sq, self.net.upright_head.bins)
        if not count:
            return k, prob, theta_sq
        s = min(max(float(self.net.upright_logit(profile[None])[0]), -60.0), 60.0)
        weight = _UPRIGHT_WEIGHT * min(1.0, count / _UPRIGHT_LINES)
        prob = np.array(prob, dtype=np.float64)
        prob[k] *= math.exp(weight * s)
        prob[(k + 2) % 4] *= math.exp(-weight * s)
        prob /= prob.sum()
        if prob[(k + 2) % 4] > prob[k]:
            return (k + 2) % 4, prob, theta_sq @ np.diag([-1.0, -1.0, 1.0])
        return k, prob, theta_sq

    def _reduce(self, t):
        """The part of a net θ a page shows, by family (square frame, 3x3)."""
        ang, shear = _angle_shear(t[:2, :2] / (t[2, 2] if t.shape == (3, 3) else 1.0))
        if self.family in ("rotation", "similarity"):
            return _shape_theta(ang, 0.0)
        if self.family == "affine":
            return _shape_theta(ang, shear)
        out = np.array(t, dtype=np.float64)
        out[:2, 2] = 0.0
        return out / out[2, 2]

    # ------------------------------------------------------------------ refinement through the sampler

    def _warp_ink(self, ink, theta_sq, out_hw, grad=None, field="ink", row_shift: float = 0.0):
        """``field`` of the ink warped by θ into ``out_hw`` (or, given ``grad``, dE/dθ_page through the
        sampler); ``row_shift``: the output's rows read that many of its pixels lower."""
        from . import api
        from .pageview import page_theta

        tp = page_theta(theta_sq[:2], ink.hw)
        if row_shift:
            tp = tp @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0 * row_shift / out_hw[0]], [0.0, 0.0, 1.0]])
        a = getattr(ink, field)
        if grad is None:
            return api.warp(a, tp, out_hw=out_hw, padding="zeros", backend=self.backend)
        _, g_page = api.warp_backward(a, tp, grad, out_hw=out_hw, padding="zeros", backend=self.backend,
                                      input_grad=False)
        return g_page

    def _profile_energy(self, ink, theta_sq, field, axis, want_grad, rows_per_pixel: int = 1, strips: int = 1):
        """Energy of the profile (sums along ``axis``) of ``field`` warped by θ, each sum divided by how much
        of its row (column) lies inside the image (:func:`_coverage`), and dE/dθ_page through the sampler
        when asked (the division's own dependence on θ, a matter of the image's outline, is left out).
        ``rows_per_pixel`` > 1 (rows, no gradient): the profile read that many times per pixel
        (:meth:`_fine_row_energy`); ``strips`` > 1 (with it): the sum of the energies of that many strips
        side by side, each row's sum and coverage taken within its strip (:meth:`_strip_row_energy`).

        Without that division, text cut off at the image's edge ends in a straight edge, and the profile is
        sharpest when that edge, not the text, is level: on held-out scans turned up to ±30°, that put the
        median residual rotation at 0.13° and p90 at 2.2°; with it, 0.045° and 0.93°. Rows less than a
        tenth inside are left out.
        """
        out_hw = getattr(ink, field).shape
        length = out_hw[axis]
        scale = out_hw[1 - axis] * length / ink.total(field) ** 2
        if rows_per_pixel > 1:
            if axis != 1 or want_grad:
                raise ValueError("rows_per_pixel > 1 is for row profiles without a gradient")
            w = out_hw[1]
            segments = _strip_cuts(w, strips)
            sums = self._fine_sums(ink, theta_sq, field, rows_per_pixel, segments)
            scale /= rows_per_pixel
            e = 0.0
            for a, b in segments:  # one strip: the whole rows
                part = _coverage(ink, theta_sq, axis, out_hw, (a, b))
                e += _line_energy(sums[a, b], np.repeat(part, rows_per_pixel), b - a)[0] * scale
            return e
        sums = _sums(self._warp_ink(ink, theta_sq, out_hw, field=field), axis)
        e, inside, cover = _line_energy(sums, _coverage(ink, theta_sq, axis, out_hw), length)
        e *= scale
        if not want_grad:
            return e
        per_ink = np.where(inside, 2.0 * sums / cover, 0.0) * scale
        grad = np.expand_dims(per_ink, axis) * np.ones(out_hw)
        return e, self._warp_ink(ink, theta_sq, out_hw, grad, field=field)

    def _fine_sums(self, ink, theta_sq, field, rows_per_pixel, segments):
        """``{(a, b): row sums}`` of ``field`` warped by θ at ``rows_per_pixel`` rows per pixel, over the output
        columns ``a <= j < b`` of each of ``segments``. One warp serves both the whole rows and the two-halves
        check's strips (:meth:`_strip_row_energy`): the check's climb starts where the whole rows' did, in the
        same steps, so most of its angles were warped already; the sums are kept per ink and θ."""
        h, w = getattr(ink, field).shape
        cache = ink.__dict__.setdefault("_fine_sums", {})
        key = (theta_sq.tobytes(), field, rows_per_pixel)
        sums = cache.get(key)
        if sums is None or any(seg not in sums for seg in segments):
            warped = self._warp_ink(ink, theta_sq, (rows_per_pixel * h, w), field=field,
                                    row_shift=_FINE_SHIFT * rows_per_pixel)
            wanted = set(segments) | set(_strip_cuts(w, 1))
            if _checks_halves(w):
                wanted |= set(_strip_cuts(w, _STRIPS))
            sums = {(a, b): _sums(warped[:, a:b], 1) for a, b in sorted(wanted)}
            cache[key] = sums
        return sums

    def _row_energy(self, ink, theta_sq, want_grad=False):
        """Energy of the row profile of the ink warped by θ (sharpest when text lines are horizontal), and
        dE/dθ_page through the sampler when asked (:meth:`_profile_energy`)."""
        return self._profile_energy(ink, theta_sq, "ink", 1, want_grad)

    def _fine_row_energy(self, ink, theta_sq):
        """:meth:`_row_energy` with the profile read at :data:`_FINE_ROWS` rows per pixel, on the pixel rows and
        half way between them (:data:`_FINE_SHIFT`): for the searches on the fine image, which set the angle.

        Bilinear sampling blurs a profile less when the output rows fall on the image's pixel rows (a turn by a
        multiple of 90°, and by anything within about a pixel over a row's length of it) than when they cross
        them, so a profile read one row per pixel is sharpest there: a page scanned 0.1-0.2° off came back
        turned exactly upright (held-out pages skewed U[-1°, 1°] at a random sub-pixel offset: median / p90
        residual rotation 0.016° / 0.131° clean, 0.024° / 0.154° scans). Rows read on and between the pixel
        rows are blurred on average about as much as rows that cross them, and those pages come back at
        0.010° / 0.070° and 0.015° / 0.094°. Reading a quarter pixel either side of each row instead blurs the
        aligned rows slightly more than crossing ones: straight pages then came back turned 0.06°.
        """
        return self._profile_energy(ink, theta_sq, "ink", 1, False, rows_per_pixel=_FINE_ROWS)

    def _strip_row_energy(self, ink, theta_sq):
        """:meth:`_fine_row_energy` summed over :data:`_STRIPS` strips side by side (the page's left and right
        halves): for pages in columns whose baselines are offset (an equation or a heading in one column moves
        all of its lines). A whole row then crosses both columns, and its profile is sharpest at the tilt that
        lines one column's baselines up with the other's (a straight two-column page came back turned 0.75°);
        within each strip the lines are level at the page's own angle."""
        return self._profile_energy(ink, theta_sq, "ink", 1, False, rows_per_pixel=_FINE_ROWS, strips=_STRIPS)

    def _wide_row_energy(self, ink, theta_sq, want_grad=False):
        """:meth:`_row_energy` of the ink at :data:`_ROWS_SHRINK` th of its size along the rows (:meth:`_Ink.rows`):
        for the wide first sweep, whose best point the following searches take up on the whole ink."""
        return self._profile_energy(ink, theta_sq, ink.rows(theta_sq), 1, want_grad)

    def _column_energy(self, ink, theta_sq, want_grad=False):
        """Energy of the column profile of the warped ink (sharpest when margins, justified edges and strokes
        are vertical), and its gradient."""
        return self._profile_energy(ink, theta_sq, "mass", 0, want_grad)

    def _margin_shear(self, ink, base, ang, shear0):
        """``(shear, prominence)``: the x shear of ``base · R(ang) · Sh(shear)`` that lines up the ends of
        the page's text lines.

        Left margins, indents, tab stops, table columns and justified right edges are vertical on the page;
        the words inside a line are not. So the starts (and the ends) of the runs of ink along the rows of
        the page made straight pile up in few columns when the shear is right. The runs are found once, at
        ``shear0`` (:func:`_line_ends`); another shear only moves each point along its row (an exact affine
        map of output pixels), so a wide sweep costs histograms, not warps. The energy is the sum of squares
        of the starts' and the ends' column histograms (lightly smoothed). ``prominence`` is the energy at the
        best shear over its median over the sweep: about 1 when nothing lines up (no margins, or no text).

        The runs are found in a frame :data:`_LINE_ENDS_DENSITY` times the fine image's size both ways (the
        ink as uint8, warped there): twice as many rows of ends, each placed more precisely. On validation
        pages the shear's error about halved: sheared pages' p90 residual rotation 0.119° -> 0.061° (clean)
        and 0.071° -> 0.045° (scans), seeds 7; 0.207° -> 0.158° and 0.120° -> 0.092°, seed 11; 1240x1750
        pages (30, seed 7) median 0.020° -> 0.010° (clean), 0.008° -> 0.006° (scans). At the fine size, or
        denser along one axis only, they were not. The wide sweep takes the ends of every other row.

        The fine sweep and the check for no shear count the ends in columns :data:`_MARGIN_FINE_BINS` of a
        frame pixel wide, the wide sweep in whole pixels: validation sheared pages' median 0.0093° -> 0.0064°
        (clean, seed 7), 0.0166° -> 0.0126° (clean, seed 11), 0.0148° -> 0.0121° (scans, seed 11), and an
        unsheared page no longer given a 0.0055 shear. Quarter-pixel columns everywhere made the wide sweep
        step over the best (p90 0.06° -> 0.77°); whole pixels to a fine image pixel, much worse medians.

        The column profile of the ink itself (:meth:`_column_energy`) is fooled by text cut off at the
        image's edge and by large bold blocks: on the held-out clean pages of the affine split, one in ten
        came back sheared by 0.03-0.1; lined-up line ends put nine in ten of those right.
        """
        from .pageview import page_theta
        from .transforms import pixel_map_from_theta

        in_hw = ink.ink.shape
        hw = (_LINE_ENDS_DENSITY * in_hw[0], _LINE_ENDS_DENSITY * in_hw[1])  # the frame the ends are found in
        t0 = base @ _shape_theta(ang, shear0)
        m0 = pixel_map_from_theta(page_theta(t0[:2], ink.hw), in_hw, hw)  # ink pixel from frame pixel at shear0
        m1 = pixel_map_from_theta(page_theta((base @ _shape_theta(ang, shear0 + 1.0))[:2], ink.hw), in_hw, hw)
        # closes the gaps between letters and words, not between columns
        gap = _LINE_ENDS_DENSITY * max(3, round(in_hw[1] / 64))
        spans = _inside_spans(m0, in_hw, 1, np.full(hw[0], -np.inf), np.full(hw[0], np.inf), 0.0)
        starts, ends = _line_ends(self._warp_ink(ink, t0, hw, field="strokes_u8"), spans, gap)
        if not len(starts[0]) + len(ends[0]):
            return shear0, 0.0
        # output x at shear s of an output pixel (x, y) at shear0: x + (s - shear0) · (slope · (x, y, 1)), exactly
        # (the two maps differ by a shear of the square frame, conjugated into output pixels)
        slope = np.linalg.solve(m1, m0)[0] - (1.0, 0.0, 0.0)
        span, step = _MARGIN_SWEEP
        # the histograms reach beyond the frame by as far as any shear tried moves a point (the sweeps stay
        # within span + step of shear0; the check for none goes to 0): a margin at the frame's edge keeps all
        # of its points at the shear that lines it up
        pad = _sweep_reach((starts, ends), slope, max(span + step, abs(shear0)))
        slope = slope - (0.0, 0.0, slope[0] * pad)  # the same moves of the points at x + pad
        starts, ends = ((p[0] + pad, p[1]) for p in (starts, ends))
        width = hw[1] + 2 * pad

        def energies_at(shears, points=(starts, ends), bin_width=1.0):  # columns bin_width frame pixels wide
            d = np.asarray(shears) - shear0
            return sum(_column_energies((p[0] / bin_width, p[1]), slope / bin_width, d, int(width / bin_width))
                       for p in points)

        def even_rows(p):
            keep = p[1] % 2 == 0
            return p[0][keep], p[1][keep]

        shears = shear0 + np.arange(-span, span + 1e-12, step)
        # the wide sweep (and the prominence) from the ends on every other row of the frame: half the time
        energies = energies_at(shears, (even_rows(starts), even_rows(ends)))
        best = int(np.argmax(energies))
        fine = shears[best] + np.arange(-step, step + 1e-12, step / 10)
        fine_e = energies_at(fine, bin_width=_MARGIN_FINE_BINS)
        i = int(np.argmax(fine_e))
        shear = _parabola_fit(fine, fine_e, i, _MARGIN_FIT)
        if shear != 0.0:  # pages are rarely sheared: none, when that lines the ends up (nearly) as well
            at_best, at_zero = energies_at([shear, 0.0], bin_width=_MARGIN_FINE_BINS)
            if at_zero >= _ZERO_SHEAR * at_best:
                shear = 0.0
        return shear, float(energies[best] / max(float(np.median(energies)), 1e-12))

    def _evidence(self, ink, theta_sq, lines):
        """Text evidence in [0, 1]: the share of the row profile's variance in line-sized oscillation.

        The profile of the ink warped by θ is high-passed (a Gaussian of about a line's height removed):
        rows of text lines and gaps put most of the profile's variance there (0.1 to 0.6 on pages), while a
        horizon, a gradient, a figure or noise do not (below 0.03). A page whose row profile oscillates no
        more than its column profile (a grid, a pattern, noise; both compared with their extremes clipped,
        :data:`_TRIM`) has no evidence either, unless its text
        lines show when read across (:meth:`_reads_as_lines`): columns of text have gutters, and a small
        page in a photo has edges, that make the column profile oscillate too.
        """
        import cv2

        h = ink.ink.shape[0]
        sigma = max(2.0, h / 60.0)  # passes line periods up to about 2.5 sigma (30 or more lines a page)

        warped = self._warp_ink(ink, theta_sq, ink.ink.shape)

        def high_passed(prof):
            """``(share of the profile's variance, the high-passed profile)``."""
            high = prof - cv2.GaussianBlur(prof[:, None], (1, 0), sigmaX=0, sigmaY=sigma)[:, 0]
            var = float(((prof - prof.mean()) ** 2).sum())
            return (float((high ** 2).sum()) / var if var > 0 else 0.0), high

        def trimmed(prof):
            """The profile with its highest and lowest :data:`_TRIM` percent clipped: the few columns (rows) of a
            scanner's dark border or of a page's edges on a desk, where the ink beside the page darkens, weigh as
            little as any other, while text lines, which are many, keep their oscillation."""
            lo, hi = np.percentile(prof, (_TRIM, 100.0 - _TRIM))
            return np.clip(prof, lo, hi)

        row_prof, col_prof = _sums(warped, 1), _sums(warped, 0)
        rows, row_wave = high_passed(row_prof)
        if max(ink.hw) < _PERIODIC[2] and not self._periodic(row_wave, lines, theta_sq):
            return 0.0
        rows_t, cols_t = high_passed(trimmed(row_prof))[0], high_passed(trimmed(col_prof))[0]
        if rows_t > 1.5 * cols_t or (rows > _EVIDENCE[0] and self._reads_as_lines(lines, theta_sq)):
            return rows
        return 0.0

    def _periodic(self, row_wave, lines, theta_sq):
        """Whether the rows of the page made straight by θ repeat as text lines do: the periodogram of the
        high-passed row profile ``row_wave`` has a peak (:data:`_PERIODIC`), or many more text lines read
        across than down. Noise makes a row profile with as much variance between neighbouring rows as text
        lines do, but spread over every frequency, and as many lines (runs of ink) read either way."""
        power = np.abs(np.fft.rfft(row_wave)) ** 2
        power = power[2:len(power) // 2]
        if len(power) and power.max() >= _PERIODIC[0] * (np.median(power) + 1e-300):
            return True
        return lines.profile(theta_sq)[1] >= _PERIODIC[1] * max(1, self._lines_down(lines, theta_sq))

    @staticmethod
    def _lines_down(lines, theta_sq):
        """Text lines (:func:`stntool.pageview.line_profile`) of the page made straight by θ read down: the
        page turned a quarter."""
        from .pageview import quarter_theta

        return lines.profile(theta_sq @ to_3x3(quarter_theta(1)))[1]

    def _reads_as_lines(self, lines, theta_sq):
        """Whether the page made straight by θ shows many text lines read across
        (:func:`stntool.pageview.line_profile`: runs of ink with an x-height band, counted in 16 strips) and
        few when turned a quarter: at least ``_LINES[0]``, and ``_LINES[1]`` times as many. Pages of text
        give 180-300 against 15-125; noise, charts and photos fewer than 30."""
        along = lines.profile(theta_sq)[1]
        if along < _LINES[0]:
            return False
        return along >= _LINES[1] * self._lines_down(lines, theta_sq)

    @staticmethod
    def _d_param(ink_hw, base, ang, shear, which):
        """d θ_page / d(angle in degrees or shear) for θ_sq = base · R(ang) · Sh(shear) (page frame, 2x3)."""
        from .pageview import page_theta

        eps = 1e-6
        if which == "angle":
            a, b = _shape_theta(ang + eps, shear), _shape_theta(ang - eps, shear)
        else:
            a, b = _shape_theta(ang, shear + eps), _shape_theta(ang, shear - eps)
        return (page_theta((base @ a)[:2], ink_hw) - page_theta((base @ b)[:2], ink_hw)) / (2 * eps)

    @staticmethod
    def _energies(energy, ink, base, ang, shear, which, xs):
        """``energy`` of the page made straight by ``base · R(ang) · Sh(shear)`` with the parameter ``which``
        (``"angle"`` or ``"shear"``) set to each value of ``xs`` in turn."""
        return [energy(ink, base @ _shape_theta(*_with(ang, shear, which, x))) for x in xs]

    def _ascend(self, energy, ink, base, ang, shear, which, step0):
        """Maximise ``energy`` over one parameter by gradient steps (dE/dθ from the sampler, chained to it),
        with a secant (quasi-Newton) step once two gradients are known. Returns the parameter."""
        x = ang if which == "angle" else shear
        prev = None
        step = step0
        best_x, best_e = x, None
        for _ in range(_ASCENT_STEPS):
            a, s = _with(ang, shear, which, x)
            e, g_page = energy(ink, base @ _shape_theta(a, s), want_grad=True)
            g = float((g_page * self._d_param(ink.hw, base, a, s, which)).sum())
            if best_e is None or e > best_e:
                best_x, best_e = x, e
            if prev is not None and g != prev[1]:
                new = x - g * (x - prev[0]) / (g - prev[1])
                if not np.isfinite(new) or abs(new - x) > 4 * step0:
                    new = x + math.copysign(step, g)
            else:
                new = x + math.copysign(step, g)
            if abs(new - x) < 1e-4 * step0:
                break
            prev = (x, g)
            x = new
            step *= 0.5
        if self._energies(energy, ink, base, ang, shear, which, [x])[0] >= best_e:
            best_x = x
        return best_x

    def _bracket(self, energy, ink, base, ang, shear, which, span, step, tries: int = 3):
        """The best point of an even sweep of one parameter (``x ± span`` in ``step``), swept again around
        it while it is on the sweep's edge (the net was further off than ``span``), at most ``tries`` times."""
        x = ang if which == "angle" else shear
        offsets = np.arange(-span, span + 1e-12, step)
        for _ in range(tries):
            es = self._energies(energy, ink, base, ang, shear, which, x + offsets)
            i = int(np.argmax(es))
            x += float(offsets[i])
            if 0 < i < len(offsets) - 1:
                break
        return x

    def _sweep(self, energy, ink, base, ang, shear, which, span, step):
        """The best of an even sweep of one parameter (``x ± span`` in ``step``), refined by a parabola."""
        x0 = ang if which == "angle" else shear
        xs = x0 + np.arange(-span, span + 1e-12, step)
        es = self._energies(energy, ink, base, ang, shear, which, xs)
        i = int(np.argmax(es))
        if 0 < i < len(xs) - 1:
            return _parabola_top(xs[i], step, es[i - 1], es[i], es[i + 1])
        return float(xs[i])

    def _climb(self, energy, ink, base, ang, shear, which, step, limit):
        """The maximum of ``energy`` over one parameter near its current value ``x``: evaluated at ``x`` and
        ``x ± step``, then a step further while the best is at an end (at most ``limit`` from ``x``); then the
        same in half steps from the best, and a parabola through the best and its neighbours half a step away.

        An even sweep spends most of its evaluations far from a maximum that is usually close, and cannot
        reach one beyond its span."""
        x0 = ang if which == "angle" else shear
        half = 0.5 * step
        reach = 2 * int(limit / step)
        seen = {}  # energy by position in half steps from x0

        def at(*ks):
            new = [k for k in ks if k not in seen and abs(k) <= reach]
            for k, e in zip(new, self._energies(energy, ink, base, ang, shear, which, [x0 + k * half for k in new])):
                seen[k] = e

        best = 0
        for unit in (2, 1):
            at(best - unit, best, best + unit)
            while True:
                best = max(seen, key=seen.get)
                if best + unit <= reach and best + unit not in seen:
                    at(best + unit)
                elif best - unit >= -reach and best - unit not in seen:
                    at(best - unit)
                else:
                    break
        x = x0 + best * half
        if best - 1 in seen and best + 1 in seen:
            return _parabola_top(x, half, seen[best - 1], seen[best], seen[best + 1])
        return float(x)

    def _climb_on(self, energy, fine, base, start, shear):
        """The angle of :meth:`_climb` (steps of 0.05°, :data:`_FINE_LIMIT` at most) on the fine image from
        ``start``, climbed again from its best while that lay at the climb's reach, :data:`_FINE_CLIMBS` climbs
        at most: the coarse sweeps can end more than the reach from the lines, drawn to a two-column page's
        tilt (the halves' energy, whose best then lies at the page's own angle) or misled on a small page's
        coarse image. Validation pages (seeds 7, 11, 13, 610 a seed): 14 changed, 12 came back nearer (from
        0.05-0.44° off to 0.00-0.09°; a straight page among them now exactly straight), two farther (0.002° ->
        0.009°, 0.019° -> 0.021°)."""
        ang = start
        for _ in range(_FINE_CLIMBS):
            reach_from = ang
            ang = self._climb(energy, fine, base, reach_from, shear, "angle", 0.05, _FINE_LIMIT)
            if abs(ang - reach_from) < _FINE_LIMIT - 1e-9:
                break
        return ang

    def _strips_win(self, fine, base, ang, strip_ang, shear):
        """Whether the strips' angle ``strip_ang`` is the page's rather than the whole rows' ``ang``: whether
        the strips lose more of their energy at ``ang`` than the whole rows lose of theirs at ``strip_ang``
        (each energy's ratio). On a page in columns whose baselines are offset, the whole rows' best is a
        tilt that lines one column's baselines up with the other's, where each column's own lines, read in
        its strip, are blurred; on a page of one column the strips' angle is only a less precise one (half
        rows), which costs the whole rows more than ``ang`` costs the strips. One warp at each angle serves
        both energies (:meth:`_fine_sums`): two warps at most, as both angles are parabola tops the climbs
        did not warp (the straight-page check reads ``ang`` from the same cache)."""
        e_rows = self._energies(self._fine_row_energy, fine, base, ang, shear, "angle", (ang, strip_ang))
        e_strips = self._energies(self._strip_row_energy, fine, base, ang, shear, "angle", (ang, strip_ang))
        return e_strips[0] * e_rows[0] < e_rows[1] * e_strips[1]

    def _refine(self, img, theta_sq, lines, grey=None):
        """``(theta_sq, evidence)``: the angle after the coarse sweeps and the climb on the fine image; then the
        shear (see the module docstring).

        Gradient steps on the angle after the coarse sweeps (through the sampler, on the 512 px image) moved
        it on a tenth of the validation pages, by a median of 0.016°, which the fine climb then overrode:
        without them every held-out summary stayed the same but three 90th percentiles (within 0.003°: one
        better, two worse), and a page took about a tenth less time. The shear's fallback (where no line ends
        line up) still takes gradient steps."""
        lin = theta_sq[:2, :2] / theta_sq[2, 2]
        ang0, shear0 = _angle_shear(lin)
        base = theta_sq @ np.linalg.inv(_shape_theta(ang0, shear0))  # the quarter turn (and projective part)
        if self.family != "projective":  # exactly the quarter turn: the net's two composed looks leave some scale
            # (about 1e-5, and 1% after shears of 0.18 on a page unlike its training pages): the families have none
            base = _nearest_quarter_turn(base)
        shear0 = float(np.clip(shear0, -_MAX_SHEAR, _MAX_SHEAR))  # the searches start within the shears pages show
        fine = _Ink(img, _REFINE_LONG, blur=0.0, grey=grey, enlarge=True, strokes=True)
        coarse = _Ink(img, _GRADIENT_LONG, grey=grey, larger=fine)
        ang = self._bracket(self._wide_row_energy, coarse, base, ang0, shear0, "angle", _SWEEP, _SWEEP_STEP)
        ang = self._sweep(self._row_energy, coarse, base, ang, shear0, "angle", _SWEEP_STEP, _SWEEP_STEP / 4)
        evidence = self._evidence(coarse, base @ _shape_theta(ang, shear0), lines)
        start = ang
        ang = self._climb_on(self._fine_row_energy, fine, base, start, shear0)
        judge = self._fine_row_energy  # the energy that compares this angle with the second opinion's (below)
        if _checks_halves(fine.ink.shape[1]):
            # columns with offset baselines pull whole rows to a tilt; the strips see each column's own lines
            strip_ang = self._climb_on(self._strip_row_energy, fine, base, start, shear0)
            if abs(strip_ang - ang) > _STRIP_DISAGREE and self._strips_win(fine, base, ang, strip_ang, shear0):
                ang = strip_ang
                judge = self._strip_row_energy
        if abs(ang - ang0) > _SECOND_OPINION_AFTER:
            # far from the net's angle: small print can leave the coarse image without text lines (only the
            # blocks' outline), so the net's neighbourhood is searched on the fine image too, and the sharper wins
            near = self._sweep(self._fine_row_energy, fine, base, ang0, shear0, "angle", *_SECOND_OPINION)
            near = self._climb(self._fine_row_energy, fine, base, near, shear0, "angle", 0.05, _FINE_LIMIT)
            energy = self._energies(judge, fine, base, ang, shear0, "angle", (ang, near))
            ang = near if energy[1] > energy[0] else ang
        # a net far off (text unlike the pages it learnt from: a stroke font) can leave the searches on a lesser
        # peak of the row profile's energy: a straight page of OpenCV's Hershey text came back turned 4.4°. Where
        # the page's square is sharper than the angle found, the angle is climbed from the square instead
        square = 90.0 * round(ang / 90.0)
        if abs(ang - square) > _SQUARE_CHECK:
            at_best, at_square = self._energies(judge, fine, base, ang, shear0, "angle", (ang, square))
            if at_square > at_best:
                ang = self._climb(self._fine_row_energy, fine, base, square, shear0, "angle", 0.05, _FINE_LIMIT)
        # pages are often exactly straight: none of the turn when it would move a row's far end by half a pixel
        # or less and the profile without it is (nearly) as sharp; a straight page's output is then its input.
        # Pixels of the fine image: for a page smaller than it, that is less than half a pixel of the page
        square = 90.0 * round(ang / 90.0)  # the nearest turn that leaves the page square to the image
        drift = math.radians(abs(ang - square)) * fine.ink.shape[1]
        if ang != square and drift <= _STRAIGHT[1]:
            at_best, at_square = self._energies(self._fine_row_energy, fine, base, ang, shear0, "angle",
                                                (ang, square))
            if at_square >= _STRAIGHT[0] * at_best:
                ang = square
        shear = shear0
        if self.family in ("affine", "projective"):
            shear, prominence = self._margin_shear(fine, base, ang, shear0)
            if prominence < _MARGIN_MIN_PROMINENCE:  # no aligned line ends: the column profile's energy
                shear = self._sweep(self._column_energy, coarse, base, ang, shear0, "shear", 0.06, 0.01)
                shear = self._ascend(self._column_energy, coarse, base, ang, shear, "shear", 0.0125)
                shear = self._sweep(self._column_energy, fine, base, ang, shear, "shear", 0.015, 0.0025)
        return base @ _shape_theta(ang, shear), evidence

    # ------------------------------------------------------------------ public

    def estimate(self, img, details: bool = False):
        """``(theta, confidence)`` for one image (``(theta, confidence, info)`` with ``details``).

        ``theta`` is the page's 2x3 (3x3 for the projective family) θ; ``info`` holds ``quarter_turns``,
        ``quarter_probability``, ``text_evidence``, ``reason`` (why the identity, or None), ``timings`` in
        seconds and ``theta_square``, the θ in the page's square frame (3x3;
        :func:`stntool.pageview.page_theta_between` makes ``theta`` of it).
        """
        from .pageview import _grey01, quarter_theta

        img = _page_image(img)
        hw = img.shape[:2]
        t0 = time.perf_counter()
        grey = _stretched(_grey01(img))  # made once: the working images and the ink images all start from it
        lines = _Lines(img, self.backend, grey=grey)
        work = lines.net_work()
        k, prob, theta_sq = self._net_estimate(work, lines=lines)
        p_k = float(prob[k])
        t1 = time.perf_counter()
        if k % 2 and max(hw) >= _ELONGATED * min(hw):
            # a long page turned sideways (a receipt, a banner): in the input's shape the turned page shows a
            # piece of itself as long as the input is short, too little to refine or to read its lines, so it
            # is settled turned upright (exactly, np.rot90) and its θ turned back
            q = to_3x3(quarter_theta(-k))
            upright = np.ascontiguousarray(np.rot90(img, -k))
            grey_up = np.ascontiguousarray(np.rot90(grey, -k))
            theta_up, evidence, n_lines = self._settle(upright, np.linalg.solve(q, theta_sq),
                                                       _Lines(upright, self.backend, grey=grey_up), grey_up)
            theta_sq = q @ theta_up
        else:
            theta_sq, evidence, n_lines = self._settle(img, theta_sq, lines, grey)
        t2 = time.perf_counter()
        text = float(np.clip((evidence - _EVIDENCE[0]) / (_EVIDENCE[1] - _EVIDENCE[0]), 0.0, 1.0))
        confidence = float(p_k * text)
        reason = None
        if confidence < self.min_confidence:  # at 0, every θ is taken as found (what the benchmarks measure)
            shown = math.floor(confidence * 100.0) / 100.0  # rounded down: never "0.30 < 0.3"
            reason = (f"low confidence {shown:.2f} < {self.min_confidence:g} (text evidence {evidence:.2f}, "
                      f"text lines {n_lines}, quarter turn probability {p_k:.2f})")
            theta_sq = np.eye(3)
            k = 0
        theta = self._page_theta(theta_sq, hw, hw)
        if not details:
            return theta, confidence
        info = {"quarter_turns": k, "quarter_probability": p_k, "text_evidence": float(evidence), "reason": reason,
                "timings": {"net": t1 - t0, "refine": t2 - t1}, "theta_square": theta_sq}
        return theta, confidence, info

    def _settle(self, img, theta_sq, lines, grey):
        """``(theta_sq, evidence, n_lines)``: the net's square-frame θ refined (with :attr:`refine`), the text
        evidence, and the text lines on the page as the net made it straight (0 evidence when there or on the
        refined page there are too few)."""
        # text lines (runs with an x-height band) on the page the net made straight: a chart's bars, a
        # pattern or a logo have rows of ink, not lines of text
        n_lines = lines.profile(theta_sq)[1]
        if min(img.shape[:2]) < _THIN:  # a strip of noise 8 px high read as text lines at 0.65-0.88 confidence
            return theta_sq, 0.0, n_lines
        if self.refine:
            theta_sq, evidence = self._refine(img, theta_sq, lines, grey)
        else:
            evidence = self._evidence(_Ink(img, _GRADIENT_LONG, grey=grey), theta_sq, lines)
        if n_lines < _MIN_LINES or (evidence > 0 and self.refine and lines.profile(theta_sq)[1] < _MIN_LINES):
            evidence = 0.0
        return theta_sq, evidence, n_lines

    def _page_theta(self, theta_sq, in_hw, out_hw):
        """The page θ (2x3; 3x3 for the projective family) of a square-frame θ, from an output of ``out_hw``."""
        from .pageview import page_theta_between

        theta = page_theta_between(theta_sq, in_hw, out_hw)
        return theta if self.family == "projective" else theta[:2]

    def spec(self, img, padding: str = "auto", fill=None, mode: str = "bilinear", upright_size: bool = False):
        """``(WarpSpec, confidence, info)``: the record that straightens ``img`` (output size = input size).

        ``padding="auto"`` pads with the page's own border colour (paper, not black). ``upright_size``: a
        page found turned an odd number of quarter turns comes back in its upright shape, the input's width
        and height swapped (the square frame keeps its scale), so that nothing of it is cut off.
        """
        from .records import WarpSpec

        theta, confidence, info = self.estimate(img, details=True)
        out_hw = img.shape[:2]
        if upright_size and info["quarter_turns"] % 2:
            out_hw = (out_hw[1], out_hw[0])
            theta = self._page_theta(info["theta_square"], img.shape[:2], out_hw)
        if padding == "auto":
            padding = "constant"
            if fill is None:
                fill = _paper_fill(img)
        spec = WarpSpec(theta=tuple(map(tuple, np.asarray(theta).tolist())), mode=mode, padding=padding, fill=fill,
                        out_hw=out_hw)
        return spec, confidence, info

    def __call__(self, img, **options):
        """The straightened image and its ``(spec, confidence, info)``."""
        from .records import apply_spec

        spec, confidence, info = self.spec(img, **options)
        return apply_spec(img, spec, self.backend), (spec, confidence, info)


def _stretched(grey) -> np.ndarray:
    """``grey`` (0 .. 1) with its levels stretched to 0 .. 1 when the page has little contrast: a 12-bit scan
    stored in 16 bits, a faint page. Text lines are told from paper by an ink level of their own, so such a
    page read as having no text. Its levels between the 0.5th and 99.5th percentiles (of every 8th pixel
    each way) are stretched when they span less than :data:`_FAINT` and at least :data:`_FLAT` (a blank
    page's noise is not stretched); other pages are left as they are.

    Nor is the noise of a blank scan that spans more (a sensor's noise of 3 grey levels spans about 0.06):
    stretched, it read as text lines, and one blank page in fifty came back turned half round, sheared, at
    confidence 0.7-0.8. Smoothing (the page at half size, then a Gaussian of a pixel) keeps most of the span
    of strokes, which are a few pixels wide, and about a seventh of the span of pixel noise: a page whose
    smoothed span is less than :data:`_NOISE_SPAN` of its own is left as it is."""
    import cv2

    sample = grey[::8, ::8]
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if not _FLAT <= hi - lo < _FAINT:
        return grey
    h, w = grey.shape
    smooth = cv2.GaussianBlur(cv2.resize(grey, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA),
                              (0, 0), 1.0)
    s_lo, s_hi = (float(v) for v in np.percentile(smooth[::4, ::4], (0.5, 99.5)))
    if s_hi - s_lo < _NOISE_SPAN * (hi - lo):
        return grey
    return np.clip((grey - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0).astype(np.float32)


def _page_image(img) -> np.ndarray:
    """``img`` as rectify reads it, or :class:`InvalidArgumentError`: (H, W) or (H, W, C) with 1 to 4 channels,
    at least 8x8, uint8, uint16 or float (in native byte order; float values finite, 0 .. 1 being black to
    white)."""
    img = host_array(img, "image")
    if img.ndim not in (2, 3):
        raise InvalidArgumentError(f"rectify takes one image, (H, W) or (H, W, C); got shape {img.shape}"
                                   + (" (a batch: one call per page)" if img.ndim == 4 else ""))
    if min(img.shape[:2]) < 8:
        raise InvalidArgumentError(f"rectify needs an image of at least 8x8 pixels, got {img.shape[1]}x{img.shape[0]}")
    if img.ndim == 3 and not 1 <= img.shape[2] <= 4:
        raise InvalidArgumentError(f"rectify reads grey, grey+alpha, colour or colour+alpha pages (1 to 4 channels), "
                                   f"got {img.shape[2]}")
    dt = img.dtype
    if not (dt.kind == "f" or (dt.kind == "u" and dt.itemsize in (1, 2))):
        raise InvalidArgumentError(f"rectify reads uint8, uint16 or float pages, got {dt}")
    if not dt.isnative:  # '>u2' from FITS or TIFF readers: the same values in this machine's byte order
        img = img.astype(dt.newbyteorder("="))
    if dt.kind == "f" and not np.isfinite(img).all():
        raise InvalidArgumentError("the image contains NaN or infinite values")
    return img


def _paper_fill(img):
    """The page's border colour as fill values in the image's channel order and range (median of the edge)."""
    a = np.asarray(img)
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).reshape(-1, 1 if a.ndim == 2 else a.shape[2])
    return tuple(float(v) for v in np.median(edge, axis=0))
