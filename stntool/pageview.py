"""How the localisation net sees a page: the square frame, the working image and the net's input.

The square frame
----------------
A rotation in a page's normalized coordinates is not a rotation in pixels unless the page is
square (x and y are scaled by different widths). The net therefore works in the page's **square
frame**: the page centred in an ``L x L`` square, ``L = max(H, W)``, whose normalized coordinates
(:mod:`stntool.coords`, ``align_corners=False``) are the page's pixel offsets from its centre
divided by ``L / 2``. A θ in the square frame (``theta_sq``) is a rotation when it is one in pixels;
:func:`page_theta` turns it into the page's own θ (PyTorch's ``affine_grid`` convention, output
size = input size) and :func:`square_theta` goes back:
``page_norm = D · square_norm`` with ``D = diag(L / W, L / H)``, so
``theta_page = D · theta_sq · D⁻¹``.

The working image and the net's input
-------------------------------------
:func:`working_image` pads the page to its square (with the page's own border colour) and resizes it
to ``WORK x WORK`` grey float32 in [0, 1]. :func:`net_input` makes ``(3, S, S)`` float32 from it:

0. the whole page, area-downscaled to ``S`` and standardised;
1. the log magnitude spectrum of the page (Hann window, 256 px), its central ``2 S / 3`` frequencies
   resized to ``S``: text lines are a strong peak perpendicular to them, whatever the content;
2. ``S x S`` pixels of the working image at full resolution, standardised: glyphs large enough to
   tell ascenders from descenders (which way is up). The window is the centre's by default; training
   moves it up to 80 pixels either way at random.

Text lines, read across
-----------------------
:func:`line_profile` looks at a straightened view (text lines horizontal, up to a few degrees;
:func:`page_line_profile` makes it from a page and its square-frame θ, at :data:`UPRIGHT_WORK`
pixels, where a text line's x-height spans several rows): the ink (the page minus its paper, by a
morphological closing, binarised by Otsu's threshold), cut into vertical strips, gives each text
line's row profile; each profile is resampled about the line's core band (the rows at least half as
inked as its busiest row: the x-height) and the mean over all lines is returned. Which way is up
shows there: Latin text has more ink above its core (ascenders, capitals, accents) than below it
(descenders), whatever the layout; the net's upright head (:class:`stntool.locnet.UprightHead`)
reads it.

Everything here is plain NumPy and OpenCV, deterministic, and shared by training and inference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WORK", "SIZE", "UPRIGHT_WORK", "LINE_BINS", "square_side", "working_image", "net_input",
           "net_inputs_turned", "crop_origin",
           "spectrum_centre", "line_profile", "page_line_profile", "page_theta", "page_theta_between",
           "square_theta", "quarter_theta"]

#: Side of the working image (pixels).
WORK = 512
#: Side of each input channel of the net (pixels).
SIZE = 96
_SPECTRUM = 256
#: Side of the working image whose text lines :func:`page_line_profile` reads.
UPRIGHT_WORK = 1024
#: Bins of :func:`line_profile`: a text line's rows from one core height above its core to one below.
LINE_BINS = 24
_LINE_STRIPS = 16      # vertical strips the profiles are taken in (a residual skew blurs each strip less)
_LINE_CLOSE = 15       # closing that finds the paper under the strokes (pixels of the working image)
_LINE_MIN_INK = 20     # ink (of 255) below which nothing is ink, whatever Otsu's threshold


def square_side(hw) -> int:
    return int(max(hw[0], hw[1]))


def _grey01(img) -> np.ndarray:
    """The page as grey float32 in [0, 1]; an image with alpha as it shows over white paper (a page of black
    text on a transparent background is black RGB everywhere: its text is in the alpha alone)."""
    import cv2

    a = np.asarray(img)
    alpha = None
    if a.ndim == 3:
        if a.shape[2] in (2, 4):
            alpha = _unit(a[..., -1])
            a = a[..., :-1] if a.shape[2] == 4 else a[..., :1]
        if a.shape[2] == 1:
            a = a[..., 0]
        else:  # OpenCV converts uint8, uint16 and float32 colour only
            a = a if a.dtype in (np.uint8, np.uint16, np.float32) else a.astype(np.float32)
            a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGR2GRAY)
    grey = _unit(a)
    if alpha is not None and not np.all(alpha == 1.0):  # opaque pages keep their bits
        grey = grey * alpha + (np.float32(1.0) - alpha)
    return grey


def _unit(a) -> np.ndarray:
    """Samples as float32 in [0, 1]: 8 and 16 bits scaled, floats clipped."""
    if a.dtype == np.uint8:  # float32 division in one pass (astype, then divide: two)
        return np.divide(a, np.float32(255.0), dtype=np.float32)
    if a.dtype == np.uint16:
        return np.divide(a, np.float32(65535.0), dtype=np.float32)
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def border_value(grey: np.ndarray) -> float:
    """The page's border colour: the median of its outermost pixels."""
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge))


def working_image(img, work: int | None = None, grey=None) -> np.ndarray:
    """The page padded to its square frame (with its border colour) and resized to ``work x work`` grey float32
    (default :data:`WORK`). ``grey``: the page's ``_grey01(img)`` when the caller has it already."""
    import cv2

    work = WORK if work is None else work
    g = _grey01(img) if grey is None else grey
    h, w = g.shape
    side = square_side((h, w))
    top, left = (side - h) // 2, (side - w) // 2
    sq = cv2.copyMakeBorder(np.ascontiguousarray(g, np.float32), top, side - h - top, left, side - w - left,
                            cv2.BORDER_CONSTANT, value=border_value(g))
    interp = cv2.INTER_AREA if side > work else cv2.INTER_LINEAR
    return cv2.resize(sq, (work, work), interpolation=interp)


def _standardise(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    return (a / (a.std() + 1e-3)).astype(np.float32)


_HANN = {}


def _hann(n: int) -> np.ndarray:
    if n not in _HANN:
        w = np.hanning(n).astype(np.float32)
        _HANN[n] = np.outer(w, w)
    return _HANN[n]


def crop_origin(work: int = WORK, size: int = SIZE, offset=(0, 0)) -> tuple[int, int]:
    """Top-left pixel of channel 2's window in a ``work x work`` image: the centre moved by ``offset`` (rows,
    columns), kept inside."""
    o = (work - size) // 2
    return tuple(int(min(max(o + int(d), 0), work - size)) for d in offset)


def net_input(work_img: np.ndarray, size: int = SIZE, crop=None) -> np.ndarray:
    """``(3, size, size)`` float32 channels of a working image (see the module docstring); ``crop`` is
    channel 2's top-left pixel (default :func:`crop_origin`: the centre)."""
    import cv2

    work = work_img.shape[0]
    whole = cv2.resize(work_img, (size, size), interpolation=cv2.INTER_AREA)
    top, left = crop_origin(work, size) if crop is None else crop
    centre = work_img[top:top + size, left:left + size]
    return np.stack([_standardise(whole), _standardise(_spectrum_channel(_spectrum(work_img), size)),
                     _standardise(centre)])


def _spectrum(work_img: np.ndarray) -> np.ndarray:
    """The log magnitude of the working image's spectrum (:data:`_SPECTRUM` square, zero frequency at
    ``_SPECTRUM // 2``), float32."""
    import cv2

    small = cv2.resize(work_img, (_SPECTRUM, _SPECTRUM), interpolation=cv2.INTER_AREA)
    spec = np.abs(np.fft.fftshift(np.fft.fft2((small - small.mean()) * _hann(_SPECTRUM))))
    return np.log1p(spec).astype(np.float32)


def _spectrum_channel(spec: np.ndarray, size: int) -> np.ndarray:
    """Channel 1 of :func:`net_input`: the low frequencies of :func:`_spectrum`, resized to ``size``."""
    import cv2

    c, r = _SPECTRUM // 2, size * 2 // 3
    return cv2.resize(spec[c - r:c + r, c - r:c + r], (size, size), interpolation=cv2.INTER_AREA)


def net_inputs_turned(work_img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """``(4, 3, size, size)``: :func:`net_input` of the working image turned ``j = 0 .. 3`` quarter turns
    (``np.rot90(work_img, j)``), with its resizes and its spectrum made once and turned.

    The Hann window is symmetric under a quarter turn, and the spectrum's magnitude turns with the image:
    the turned image's spectrum at ``(u, v)`` is the image's at ``(v, -u)``, which in the centred array is
    ``np.rot90`` followed by a roll of one row (the zero frequency sits at ``_SPECTRUM // 2``, the
    frequencies run ``-_SPECTRUM / 2 .. _SPECTRUM / 2 - 1``). The result equals ``net_input`` of each
    turned image to float32 rounding (the resizes and the FFT sum in another order)."""
    import cv2

    whole = cv2.resize(work_img, (size, size), interpolation=cv2.INTER_AREA)
    spec = _spectrum(work_img)
    top, left = crop_origin(work_img.shape[0], size)
    out = []
    for j in range(4):
        view = np.rot90(work_img, j)
        out.append(np.stack([_standardise(np.rot90(whole, j)), _standardise(_spectrum_channel(spec, size)),
                             _standardise(view[top:top + size, left:left + size])]))
        spec = np.roll(np.rot90(spec), 1, axis=0)
    return np.stack(out)


def spectrum_centre(size: int = SIZE) -> float:
    """Where channel 1 of :func:`net_input` has its zero frequency: pixels from its first pixel's centre,
    along either axis (the crop of ``2 size / 3`` frequencies each side, resized to ``size``)."""
    r = size * 2 // 3
    return (r + 0.5) * size / (2 * r) - 0.5


def _median_below_half(a: np.ndarray) -> bool:
    """``np.median(a) < 0.5`` without sorting: more than half the values below 0.5, or exactly half and the
    mean of the two middle values (the largest below and the smallest at or above) below it."""
    v = a.ravel()
    n = v.size
    below = int(np.count_nonzero(v < 0.5))
    if n % 2 or below != n // 2:
        return below > n // 2
    lo = v[v < 0.5].max()
    hi = v[v >= 0.5].min()
    return bool((lo + hi) / 2 < 0.5)


def light_on_dark(g: np.ndarray) -> bool:
    """Whether a grey image in [0, 1] shows light text on dark: the middle of it (half its height and width)
    mostly below 0.5 (paper, not ink, fills most of a page's middle)."""
    h, w = g.shape
    return _median_below_half(g[h // 4:3 * h // 4, w // 4:3 * w // 4])


def line_profile(view: np.ndarray, bins: int = LINE_BINS) -> tuple[np.ndarray, int]:
    """``(profile, lines)``: the mean ink profile across the text lines of a straightened view.

    ``view`` is grey float in [0, 1] (a working image warped straight). Each line's profile (the ink of
    each of its rows, in one of the vertical strips) is normalised to sum 1 and binned from one core
    height above its core band to one below it (``bins / 3`` bins per core height, top to bottom);
    ``profile`` is their mean (float64, zeros when no line was found) and ``lines`` how many there were.
    Dark text on light paper and light on dark are both read (the view's middle says which).
    """
    import cv2

    g = np.asarray(view, dtype=np.float32)
    h, w = g.shape
    if light_on_dark(g):
        g = 1.0 - g
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (_LINE_CLOSE, _LINE_CLOSE))
    paper = cv2.morphologyEx(g, cv2.MORPH_CLOSE, kernel)
    # clip(rint((paper - g) 255), 0, 255) as uint8, in one pass: OpenCV rounds half to even and saturates
    ink8 = cv2.multiply(cv2.subtract(paper, g), 255.0, dtype=cv2.CV_8U)
    otsu, _ = cv2.threshold(ink8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # 1 where ink8 > the threshold, else 0: faint marks (noise, shading) are not ink
    ink = cv2.threshold(ink8, max(otsu, _LINE_MIN_INK), 1, cv2.THRESH_BINARY)[1]
    # rows[s, y]: the ink of row y in strip s; a strip's text lines are its runs of rows with ink (whole
    # counts, summed by OpenCV in a tenth of NumPy's time)
    step = w // _LINE_STRIPS
    strips = np.ascontiguousarray(ink[:, :step * _LINE_STRIPS]).reshape(h * _LINE_STRIPS, step)
    rows = cv2.reduce(strips, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).reshape(h, _LINE_STRIPS).T.astype(np.float64)
    floor = np.array([0.08 * np.percentile(r[r > 0], 90) if r.any() else np.inf for r in rows])
    on = np.zeros((_LINE_STRIPS, h + 2), np.int8)
    on[:, 1:-1] = rows > floor[:, None]
    edges = np.diff(on, axis=1)
    strip, a = np.nonzero(edges == 1)  # strip by strip, top to bottom: starts and ends pair up
    e = np.nonzero(edges == -1)[1]
    keep = (e - a >= 3) & (e - a <= h // 4)  # not a speck, not a block
    strip, a, n = strip[keep], a[keep], (e - a)[keep]
    if not len(n):
        return np.zeros(bins), 0
    # every run's rows, one after another: run[i] says whose, off[i] which row of it, q[i] its ink
    run = np.repeat(np.arange(len(n)), n)
    first = np.cumsum(n) - n
    off = np.arange(n.sum()) - first[run]
    q = rows[strip[run], a[run] + off]
    # the core band: from the first to the last row at least half as inked as the run's busiest
    core = q >= 0.5 * np.maximum.reduceat(q, first)[run]
    c0 = np.minimum.reduceat(np.where(core, off, h), first)
    c1 = np.maximum.reduceat(np.where(core, off, -1), first) + 1
    good = c1 - c0 >= 2
    total = np.add.reduceat(q, first)
    use = good[run]
    q, off, run = q[use], off[use], run[use]
    # each row, at its centre, shared linearly between the two nearest bin centres: turning the view
    # upside down reverses the profile exactly (a row's centre y goes to 1 - y)
    y = (off + 0.5 - c0[run]) / (c1 - c0)[run]  # 0 .. 1 across the core
    pos = (y + 1.0) * bins / 3.0 - 0.5  # in bins, from the first bin's centre
    lo = np.floor(pos).astype(np.intp)
    frac = pos - lo
    share = q / total[run]
    acc = np.zeros(bins)
    for idx, wts in ((lo, 1.0 - frac), (lo + 1, frac)):
        inside = (idx >= 0) & (idx < bins)
        acc += np.bincount(idx[inside], share[inside] * wts[inside], bins)
    lines = int(good.sum())
    return (acc / lines if lines else acc), lines


def page_line_profile(img, theta_sq, bins: int = LINE_BINS, backend: str = "cpu", work=None) -> tuple[np.ndarray, int]:
    """:func:`line_profile` of a page made straight by ``theta_sq`` (its square-frame θ, 2x3 or 3x3): the
    page's :data:`UPRIGHT_WORK`-pixel working image (``work``, made here when not given) warped by it
    (bilinear, border padding)."""
    from . import api

    t = np.asarray(theta_sq, dtype=np.float64)
    t = t[:2] if t.shape == (3, 3) and np.array_equal(t[2], [0.0, 0.0, 1.0]) else t
    work = working_image(img, UPRIGHT_WORK) if work is None else work
    view = api.warp(work, t, padding="border", backend=backend)
    return line_profile(view, bins)


def _d(hw) -> np.ndarray:
    h, w = hw
    side = float(max(h, w))
    return np.diag([side / w, side / h, 1.0])


def page_theta(theta_sq, hw) -> np.ndarray:
    """A square-frame θ as the page's θ (output size = input size ``hw``); 2x3 stays 2x3."""
    t = np.asarray(theta_sq, dtype=np.float64)
    t3 = np.vstack([t, [0.0, 0.0, 1.0]]) if t.shape == (2, 3) else t
    d = _d(hw)
    out = d @ t3 @ np.linalg.inv(d)
    return out[:2] if t.shape == (2, 3) else out / out[2, 2]


def page_theta_between(theta_sq, in_hw, out_hw) -> np.ndarray:
    """A square-frame θ as a page θ from an output of ``out_hw`` to an input of ``in_hw`` with the same long
    side (:func:`page_theta` when they are equal; a page turned a quarter and shown in its upright shape when
    they are swapped). Each entry is the square-frame one times a ratio of sizes, so a signed permutation stays
    one exactly (a quarter turn between swapped sizes is ``[[0, ±1], [∓1, 0]]``). 3x3 in, 3x3 out."""
    t = np.asarray(theta_sq, dtype=np.float64)
    t3 = np.vstack([t, [0.0, 0.0, 1.0]]) if t.shape == (2, 3) else t
    if max(in_hw) != max(out_hw):
        raise ValueError(f"in_hw {tuple(in_hw)} and out_hw {tuple(out_hw)} must have the same long side")
    side = float(max(in_hw))
    ins = (float(in_hw[1]), float(in_hw[0]))  # x, y sizes
    outs = (float(out_hw[1]), float(out_hw[0]))
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):  # d_in[i] * t[i, j] / d_out[j] with d = (side / w, side / h, 1), in one division
            if i < 2 and j < 2:
                ratio = outs[j] / ins[i]
            elif i < 2:
                ratio = side / ins[i]
            else:
                ratio = outs[j] / side if j < 2 else 1.0
            out[i, j] = t3[i, j] * ratio
    return out / out[2, 2]


def square_theta(theta_page, hw) -> np.ndarray:
    """The page's θ in its square frame (inverse of :func:`page_theta`)."""
    t = np.asarray(theta_page, dtype=np.float64)
    t3 = np.vstack([t, [0.0, 0.0, 1.0]]) if t.shape == (2, 3) else t
    d = _d(hw)
    out = np.linalg.inv(d) @ t3 @ d
    return out[:2] if t.shape == (2, 3) else out / out[2, 2]


def quarter_theta(k: int) -> np.ndarray:
    """Square-frame θ (2x3) of the view turned ``k`` quarter turns counter-clockwise (``np.rot90(img, k)``)."""
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k % 4]
    return np.array([[c, -s, 0.0], [s, c, 0.0]], dtype=np.float64)  # k = 1: output (x, y) reads input (-y, x)
