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

Everything here is plain NumPy and OpenCV, deterministic, and shared by training and inference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WORK", "SIZE", "square_side", "working_image", "net_input", "crop_origin", "spectrum_centre",
           "page_theta", "square_theta", "quarter_theta"]

#: Side of the working image (pixels).
WORK = 512
#: Side of each input channel of the net (pixels).
SIZE = 96
_SPECTRUM = 256


def square_side(hw) -> int:
    return int(max(hw[0], hw[1]))


def _grey01(img) -> np.ndarray:
    import cv2

    a = np.asarray(img)
    if a.ndim == 3:
        if a.shape[2] in (2, 4):
            a = a[..., :-1] if a.shape[2] == 4 else a[..., :1]
        a = a[..., 0] if a.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGR2GRAY)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def border_value(grey: np.ndarray) -> float:
    """The page's border colour: the median of its outermost pixels."""
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge))


def working_image(img, work: int | None = None) -> np.ndarray:
    """The page padded to its square frame (with its border colour) and resized to ``work x work`` grey float32
    (default :data:`WORK`)."""
    import cv2

    work = WORK if work is None else work
    g = _grey01(img)
    h, w = g.shape
    side = square_side((h, w))
    top, left = (side - h) // 2, (side - w) // 2
    sq = np.full((side, side), border_value(g), np.float32)
    sq[top:top + h, left:left + w] = g
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
    small = cv2.resize(work_img, (_SPECTRUM, _SPECTRUM), interpolation=cv2.INTER_AREA)
    spec = np.abs(np.fft.fftshift(np.fft.fft2((small - small.mean()) * _hann(_SPECTRUM))))
    spec = np.log1p(spec).astype(np.float32)
    c, r = _SPECTRUM // 2, size * 2 // 3
    spec = cv2.resize(spec[c - r:c + r, c - r:c + r], (size, size), interpolation=cv2.INTER_AREA)
    top, left = crop_origin(work, size) if crop is None else crop
    centre = work_img[top:top + size, left:left + size]
    return np.stack([_standardise(whole), _standardise(spec), _standardise(centre)])


def spectrum_centre(size: int = SIZE) -> float:
    """Where channel 1 of :func:`net_input` has its zero frequency: pixels from its first pixel's centre,
    along either axis (the crop of ``2 size / 3`` frequencies each side, resized to ``size``)."""
    r = size * 2 // 3
    return (r + 0.5) * size / (2 * r) - 0.5


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
