"""A small localisation network in NumPy: layers, forward and backward, Adam, save and load.

The localisation network of a Spatial Transformer (Jaderberg et al., 2015, "Spatial Transformer
Networks", sect. 3.1) looks at an image and predicts the θ that samples it straight. Because the
sampler is differentiable (:func:`stntool.warp_backward`), the network can be trained through it;
:mod:`stntool.rectify` does that. This module is only the network: a sequential convolutional
trunk and two heads on the shared features,

- a θ head, ``Linear -> 6`` (affine ``(2, 3)``) or ``Linear -> 8`` (projective ``(3, 3)`` with
  ``θ[2, 2] = 1``), which starts at the identity transform: zero weights and the identity as bias,
  as in the STN paper, so an untrained network leaves every image as it is;
- a quarter-turn head, ``Linear -> 4`` logits for 0, 90, 180 and 270 degrees, trained with
  :func:`quarter_loss` (softmax cross-entropy);
- optionally (``orientation_bins > 0``) an **orientation branch** beside the trunk, which sets θ's
  linear part. Pooled convolutions place things to a few pixels; a page's skew is an orientation,
  and in a magnitude spectrum (an input channel) an orientation is a position on a circle. The
  branch reads that channel on rings about its zero frequency (:class:`PolarSample`, fixed, as in
  polar transformer networks), so that a rotation of the page becomes a circular shift; two
  circular convolutions along the orientations (:class:`CircularConv1d`) score every orientation,
  and a softmax over a window about upright (:class:`WindowedSoftArgmax`) gives the expected offset,
  below one bin. Text lines peak at 90 degrees (perpendicular to them) and strokes at 0, so the
  branch returns two angles, the directions of the output's x and y axes in the input (one angle, a
  rotation, for ``rotation`` and ``similarity``). The θ head then gives only the translation (and
  the projective row). The last convolution starts at zero, so every window's softmax is uniform,
  its expected offset exactly 0, and θ the identity.

>>> import numpy as np
>>> from stntool.locnet import LocNet
>>> net = LocNet({"in_channels": 1, "in_size": 32, "conv_channels": [4, 8]}, seed=0)
>>> theta, quarter_logits = net.predict(np.zeros((1, 1, 32, 32), np.float32))
>>> theta.shape, quarter_logits.shape, bool(np.all(theta[0] == [[1, 0, 0], [0, 1, 0]]))
((1, 2, 3), (1, 4), True)

Convention
----------
- Images enter as ``(N, C, S, S)`` floating-point arrays, channels first as in PyTorch, already
  preprocessed (downscaled to ``S x S`` and normalised; the model's metadata says how).
- θ is PyTorch's ``affine_grid`` θ: it maps output normalized ``(x, y)`` to input normalized
  ``(x, y)`` (:mod:`stntool.coords`).
- Quarter-turn class ``k`` means ``k`` quarter turns; the sense of a turn is the training code's and
  is recorded in the model's metadata.
- Inside, the layers work channels major, ``(C, N, H, W)``: every channel is one contiguous stack
  of images, so a convolution is a single matrix product whose result is already in the next
  layer's layout. Weights keep PyTorch's layouts.
- Every layer computes in the dtype of its parameters: float32 for training and inference, float64
  for gradient checks (:meth:`LocNet.astype`). ``forward(x, train=True)`` keeps what ``backward``
  needs; ``backward(grad)`` adds to the parameter gradients (call ``zero_grad`` between steps) and
  returns the gradient with respect to the layer's input.

Hot loops are BLAS matrix products: a convolution copies the input shifted by each kernel tap into
the rows of a ``(k·k·C_in, N·H·W)`` matrix (im2col; whole image rows at a time) and multiplies it by
the ``(C_out, k·k·C_in)`` weight matrix. Channels last with the same product was 2-3x slower in the
first layer (C_in = 2 makes runs of two numbers to gather); tap-by-tap products were slower again.
These matrices are small: on a machine busy with other work, BLAS threads that wait for each other
can cost 10-20x, so a trainer or command sharing cores should run BLAS on one thread
(``OPENBLAS_NUM_THREADS=1`` or ``OMP_NUM_THREADS=1`` set before NumPy is first imported).
"""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np

from ._version import __version__
from .errors import InvalidArgumentError

__all__ = [
    "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "PolarSample", "CircularConv1d", "WindowedSoftArgmax",
    "UprightHead", "LocNet", "Adam", "DEFAULT_ARCH", "FAMILIES",
    "quarter_loss", "softmax", "FORMAT", "FORMAT_VERSION",
]

FORMAT = "stntool-locnet"
FORMAT_VERSION = 1

# transform family -> number of θ numbers the head predicts
FAMILIES = {"rotation": 6, "similarity": 6, "affine": 6, "projective": 8}

DEFAULT_ARCH = {
    "in_channels": 2,            # C of the (N, C, S, S) input
    "in_size": 96,               # S; the trunk halves it once per conv block
    "conv_channels": [8, 16, 32, 32],  # one block each: 3x3 conv, 2x2 max pool, leaky ReLU
    "kernel": 3,
    "fc": 128,                   # width of the shared fully connected layer
    "relu_slope": 0.01,          # negative slope of the leaky ReLUs (0 for a plain ReLU)
    "family": "affine",          # sets the θ head: 6 numbers, or 8 for "projective"
    # The orientation branch (off when orientation_bins is 0): see :class:`LocNet`.
    "orientation_bins": 0,       # orientations over 180 degrees
    "orientation_channel": 1,    # the input channel holding a centred magnitude spectrum
    "orientation_centre": None,  # its zero frequency, in pixels from the first pixel's centre (None: the middle)
    "orientation_radius": [0.1, 0.95],  # rings from / to this fraction of in_size / 2
    "orientation_rings": 16,
    "orientation_hidden": 8,     # channels between the branch's two circular convolutions
    "orientation_kernel": 7,     # their width in orientations
    "orientation_window": 45.0,  # degrees either side of upright that each orientation is looked for
    "orientation_follow": False,  # look for strokes about the lines' normal, not about vertical
    # The upright head (off when upright_bins is 0): see :class:`UprightHead`.
    "upright_bins": 0,           # bins of the text-line profile it reads (stntool.pageview.LINE_BINS)
}


# ---------------------------------------------------------------------------------------------
# layers


class Layer:
    """Base of the layers: ``params`` and ``grads`` are dicts of arrays with the same keys."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def zero_grad(self):
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def astype(self, dtype):
        """Cast parameters (and zero the gradients) in place; returns the layer."""
        self.params = {name: p.astype(dtype) for name, p in self.params.items()}
        self.zero_grad()
        self._cache = None
        return self

    def _take_cache(self):
        if self._cache is None:
            raise InvalidArgumentError(f"{type(self).__name__}.backward needs a forward(x, train=True) first")
        cache, self._cache = self._cache, None
        return cache


class Conv2d(Layer):
    """2-D convolution (cross-correlation, like ``torch.nn.Conv2d``) with ``kernel // 2`` zero padding.

    Channels major: ``(C_in, N, H, W) -> (C_out, N, H_out, W_out)`` with
    ``H_out = (H + 2·(k // 2) - k) // stride + 1``, so an odd kernel with stride 1 keeps the size.
    Parameters in PyTorch's layout: ``weight`` ``(C_out, C_in, k, k)`` (He-normal initialisation),
    ``bias`` ``(C_out,)`` (zeros). With ``input_grad=False`` (a first layer) ``backward`` skips the
    input gradient and returns None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 rng: np.random.Generator | None = None, dtype=np.float32, input_grad: bool = True):
        super().__init__()
        rng = np.random.default_rng(0) if rng is None else rng
        self.kernel, self.stride, self.pad = int(kernel), int(stride), int(kernel) // 2
        self.input_grad = input_grad
        fan_in = in_channels * kernel * kernel
        weight = rng.standard_normal((out_channels, in_channels, kernel, kernel)) * math.sqrt(2.0 / fan_in)
        self.params = {"weight": weight.astype(dtype), "bias": np.zeros(out_channels, dtype)}
        self.zero_grad()

    def _out_size(self, size: int) -> int:
        return (size + 2 * self.pad - self.kernel) // self.stride + 1

    def _taps(self, h_out: int, w_out: int):
        """``(ky, kx, rows, cols)``: per kernel tap, the slices of the padded input its outputs read."""
        k, s = self.kernel, self.stride
        for ky in range(k):
            for kx in range(k):
                yield ky, kx, slice(ky, ky + s * (h_out - 1) + 1, s), slice(kx, kx + s * (w_out - 1) + 1, s)

    def _weight_matrix(self) -> np.ndarray:
        """The weight as ``(C_out, k·k·C_in)``, columns ordered ``(ky, kx, C_in)`` like the im2col rows."""
        weight = self.params["weight"]
        return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)

    def forward(self, x, train=True):
        c, n, h, w = x.shape
        k, p = self.kernel, self.pad
        h_out, w_out = self._out_size(h), self._out_size(w)
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        # im2col: row (ky, kx, c) holds, for every output pixel, the input pixel that tap reads
        cols = np.empty((k, k, c, n, h_out, w_out), x.dtype)
        for ky, kx, rows, columns in self._taps(h_out, w_out):
            cols[ky, kx] = x_pad[:, :, rows, columns]
        cols = cols.reshape(k * k * c, n * h_out * w_out)
        out = self._weight_matrix() @ cols
        out += self.params["bias"][:, None]
        if train:
            self._cache = (cols, x.shape)
        return out.reshape(-1, n, h_out, w_out)

    def backward(self, grad):
        cols, (c, n, h, w) = self._take_cache()
        k, p = self.kernel, self.pad
        c_out, h_out, w_out = grad.shape[0], grad.shape[2], grad.shape[3]
        grad_out = grad.reshape(c_out, -1)
        self.grads["weight"] += (grad_out @ cols.T).reshape(c_out, k, k, c).transpose(0, 3, 1, 2)
        self.grads["bias"] += grad_out.sum(axis=1)
        if not self.input_grad:
            return None
        grad_cols = (self._weight_matrix().T @ grad_out).reshape(k, k, c, n, h_out, w_out)
        # col2im: every tap adds its rows back to the input pixels it read
        grad_pad = np.zeros((c, n, h + 2 * p, w + 2 * p), grad_cols.dtype)
        for ky, kx, rows, columns in self._taps(h_out, w_out):
            grad_pad[:, :, rows, columns] += grad_cols[ky, kx]
        return grad_pad[:, :, p:p + h, p:p + w]


class ReLU(Layer):
    """Leaky ReLU: ``x`` where ``x > 0``, ``slope · x`` elsewhere (``slope=0``: a plain ReLU)."""

    def __init__(self, slope: float = 0.0):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x, train=True):
        positive = x > 0
        if train:
            self._cache = positive
        return np.where(positive, x, x * x.dtype.type(self.slope))

    def backward(self, grad):
        positive = self._take_cache()
        return np.where(positive, grad, grad * grad.dtype.type(self.slope))


class MaxPool2d(Layer):
    """2x2 max pooling with stride 2, channels major: ``(C, N, H, W) -> (C, N, H // 2, W // 2)``.

    An odd last row or column is dropped, as in ``torch.nn.MaxPool2d(2)``; the gradient goes to the
    first maximum of each window in row-major order, as in PyTorch (blank regions give ties).
    """

    @staticmethod
    def _quarters(x, h_out, w_out):
        """The four pixels of every window, row-major: top-left, top-right, bottom-left, bottom-right."""
        return [x[:, :, dy:2 * h_out:2, dx:2 * w_out:2] for dy in (0, 1) for dx in (0, 1)]

    def forward(self, x, train=True):
        h_out, w_out = x.shape[2] // 2, x.shape[3] // 2
        quarters = self._quarters(x, h_out, w_out)
        out = np.maximum(np.maximum(quarters[0], quarters[1]), np.maximum(quarters[2], quarters[3]))
        if train:
            # index of the first maximum: 3, then overwritten by earlier quarters that reach the maximum
            winner = np.full(out.shape, 3, np.uint8)
            for i in (2, 1, 0):
                winner[quarters[i] == out] = i
            self._cache = (winner, x.shape)
        return out

    def backward(self, grad):
        winner, shape = self._take_cache()
        grad_x = np.zeros(shape, grad.dtype)
        zero = grad.dtype.type(0)
        for i, quarter in enumerate(self._quarters(grad_x, grad.shape[2], grad.shape[3])):
            quarter[...] = np.where(winner == i, grad, zero)
        return grad_x


class Flatten(Layer):
    """Channels major ``(C, N, H, W)`` to ``(N, C·H·W)``, in the order of ``torch.flatten(x_nchw, 1)``."""

    def forward(self, x, train=True):
        if train:
            self._cache = x.shape
        return x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)

    def backward(self, grad):
        c, n, h, w = self._take_cache()
        return grad.reshape(n, c, h, w).transpose(1, 0, 2, 3)


class Linear(Layer):
    """Fully connected layer ``y = x · weightᵀ + bias``: ``(N, in) -> (N, out)``, weight ``(out, in)``.

    ``init="he"`` draws He-normal weights and zero biases; ``init="zero"`` gives zero weights and
    zero biases (the θ head sets its bias to the identity afterwards).
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator | None = None,
                 dtype=np.float32, init: str = "he"):
        super().__init__()
        if init == "zero":
            weight = np.zeros((out_features, in_features))
        else:
            rng = np.random.default_rng(0) if rng is None else rng
            weight = rng.standard_normal((out_features, in_features)) * math.sqrt(2.0 / in_features)
        self.params = {"weight": weight.astype(dtype), "bias": np.zeros(out_features, dtype)}
        self.zero_grad()

    def forward(self, x, train=True):
        if train:
            self._cache = x
        out = x @ self.params["weight"].T
        out += self.params["bias"]
        return out

    def backward(self, grad):
        x = self._take_cache()
        self.grads["weight"] += grad.T @ x
        self.grads["bias"] += grad.sum(axis=0)
        return grad @ self.params["weight"]


class PolarSample(Layer):
    """Fixed resampling of one input channel onto polar rings: ``(C, N, S, S) -> (R, N, A)``.

    Output ``[i, n, j]`` is channel ``channel`` of image ``n`` read bilinearly on ring ``i`` (radius
    ``radii[i]`` pixels about ``centre``) at orientation ``φ_j = j · 180° / A`` (``x = centre + r cos φ``
    along columns, ``y = centre + r sin φ`` along rows), averaged over ``sub`` points across the bin and
    over ``φ`` and ``φ + 180°``. A magnitude spectrum is symmetric about its centre, so the average is
    the same reading and a centre misplaced by a fraction of a pixel moves no orientation. The
    layer has no parameters; it is a fixed linear map, kept as gathered taps and weights.
    """

    def __init__(self, size: int, channel: int, centre: float, radii, bins: int, sub: int = 2):
        super().__init__()
        self.size, self.channel, self.bins = int(size), int(channel), int(bins)
        self.rings = len(radii)
        step = math.pi / bins
        phi = (np.arange(bins)[:, None] + (np.arange(sub)[None, :] + 0.5) / sub - 0.5) * step  # (A, sub)
        phi = np.concatenate([phi, phi + math.pi], axis=1)  # (A, 2 sub)
        r = np.asarray(radii, np.float64)[:, None, None]
        x = np.clip(centre + r * np.cos(phi), 0.0, size - 1.0)  # (R, A, 2 sub)
        y = np.clip(centre + r * np.sin(phi), 0.0, size - 1.0)
        x0 = np.minimum(np.floor(x), size - 2).astype(np.int64)
        y0 = np.minimum(np.floor(y), size - 2).astype(np.int64)
        fx, fy = x - x0, y - y0
        idx = [y0 * size + x0, y0 * size + x0 + 1, (y0 + 1) * size + x0, (y0 + 1) * size + x0 + 1]
        wts = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
        taps = phi.shape[1]
        self.index = np.concatenate(idx, axis=-1).reshape(self.rings * bins, 4 * taps)
        self.weight = (np.concatenate(wts, axis=-1) / taps).reshape(self.rings * bins, 4 * taps)
        self._weight_as = {}  # the weights cast to each input dtype, once

    def forward(self, x, train=True):
        c, n = x.shape[:2]
        flat = x[self.channel].reshape(n, -1)
        weight = self._weight_as.get(x.dtype)
        if weight is None:
            weight = self._weight_as[x.dtype] = self.weight.astype(x.dtype)
        out = (flat[:, self.index] * weight).sum(axis=-1)  # (N, R·A)
        if train:
            self._cache = x.shape
        return np.ascontiguousarray(out.reshape(n, self.rings, self.bins).transpose(1, 0, 2))

    def backward(self, grad):
        shape = self._take_cache()
        n = shape[1]
        g = grad.transpose(1, 0, 2).reshape(n, -1)  # (N, R·A)
        grad_x = np.zeros(shape, grad.dtype)
        for i in range(n):
            spread = (g[i][:, None] * self.weight).ravel()
            grad_x[self.channel, i] = np.bincount(self.index.ravel(), spread, self.size * self.size).reshape(
                self.size, self.size)
        return grad_x


class CircularConv1d(Layer):
    """1-D convolution over a circular axis (orientations): ``(C_in, N, A) -> (C_out, N, A)``.

    Like ``torch.nn.Conv1d(..., padding=k // 2, padding_mode="circular")`` (cross-correlation, odd
    ``k``); weight ``(C_out, C_in, k)``, He-normal or (``init="zero"``) zeros, bias zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, rng: np.random.Generator | None = None,
                 dtype=np.float32, init: str = "he"):
        super().__init__()
        self.kernel, self.pad = int(kernel), int(kernel) // 2
        if init == "zero":
            weight = np.zeros((out_channels, in_channels, kernel))
        else:
            rng = np.random.default_rng(0) if rng is None else rng
            weight = rng.standard_normal((out_channels, in_channels, kernel)) * math.sqrt(2.0 / (in_channels * kernel))
        self.params = {"weight": weight.astype(dtype), "bias": np.zeros(out_channels, dtype)}
        self.zero_grad()

    def _weight_matrix(self):
        w = self.params["weight"]
        return w.transpose(0, 2, 1).reshape(w.shape[0], -1)  # columns ordered (tap, C_in) like the rows below

    def forward(self, x, train=True):
        c, n, a = x.shape
        p = self.pad
        wrapped = np.concatenate([x[..., a - p:], x, x[..., :p]], axis=-1) if p else x
        cols = np.stack([wrapped[..., t:t + a] for t in range(self.kernel)]).reshape(self.kernel * c, n * a)
        out = self._weight_matrix() @ cols
        out += self.params["bias"][:, None]
        if train:
            self._cache = (cols, x.shape)
        return out.reshape(-1, n, a)

    def backward(self, grad):
        cols, (c, n, a) = self._take_cache()
        k, p = self.kernel, self.pad
        c_out = grad.shape[0]
        grad_out = grad.reshape(c_out, -1)
        self.grads["weight"] += (grad_out @ cols.T).reshape(c_out, k, c).transpose(0, 2, 1)
        self.grads["bias"] += grad_out.sum(axis=1)
        grad_cols = (self._weight_matrix().T @ grad_out).reshape(k, c, n, a)
        grad_wrapped = np.zeros((c, n, a + 2 * p), grad.dtype)
        for t in range(k):
            grad_wrapped[..., t:t + a] += grad_cols[t]
        grad_x = grad_wrapped[..., p:p + a].copy()
        if p:
            grad_x[..., a - p:] += grad_wrapped[..., :p]
            grad_x[..., :p] += grad_wrapped[..., a + p:]
        return grad_x


class WindowedSoftArgmax(Layer):
    """Per channel, the expected orientation offset in a window: ``(C, N, A) scores -> (N, C)`` radians.

    Channel ``c`` looks at the ``2 K + 1`` orientations ``centres[c] + k · 180° / A`` (``|k| <= K``),
    takes the softmax of its scores there and returns ``Σ_k p_k · k · 180° / A``: a differentiable,
    sub-bin estimate of where the channel peaks, relative to ``centres[c]`` (a bin index). Equal
    scores give exactly 0 (the terms cancel in symmetric pairs).

    With ``follow[c] = f`` (an earlier channel), channel ``c``'s window is centred, per image, on
    ``centres[c]`` moved by channel ``f``'s estimate rounded to a bin (a constant for the gradient),
    and the offset returned includes that move. A flat channel then reads as "where ``f`` is": the
    strokes of a page whose strokes show weakly are taken square to its lines (no shear), not upright.
    """

    def __init__(self, bins: int, centres, half_width: int, follow=None):
        super().__init__()
        self.bins, self.half = int(bins), int(half_width)
        self.centres = [int(c) for c in centres]
        self.follow = list(follow) if follow is not None else [None] * len(self.centres)
        self.step = math.pi / self.bins
        self.k = np.arange(-self.half, self.half + 1)
        self.offsets = self.k * self.step

    def forward(self, x, train=True):
        half, n = self.half, x.shape[1]
        outs, probs, windows = [], [], []
        rows = np.arange(n)[:, None]
        for c, centre in enumerate(self.centres):
            f = self.follow[c]
            shift = np.zeros(n, np.int64) if f is None else np.rint(outs[f] / self.step).astype(np.int64)
            window = (centre + shift[:, None] + self.k[None, :]) % self.bins  # (N, 2K + 1)
            s = x[c][rows, window]
            s = s - s.max(axis=1, keepdims=True)
            e = np.exp(s)
            p = e / e.sum(axis=1, keepdims=True)
            # Σ p_k · k · step, in symmetric pairs (exactly 0 for equal scores)
            within = ((p[:, half + 1:] - p[:, half - 1::-1]) * self.offsets[half + 1:]).sum(axis=1)
            outs.append(within + shift * self.step)
            probs.append(p)
            windows.append(window)
        out = np.stack(outs, axis=1)
        if train:
            self._cache = (probs, windows, out, x.shape)
        return out

    def backward(self, grad):
        probs, windows, out, shape = self._take_cache()
        grad_x = np.zeros(shape, grad.dtype)
        rows = np.arange(shape[1])[:, None]
        for c, (window, p) in enumerate(zip(windows, probs)):
            mean = (p * self.offsets[None, :]).sum(axis=1, keepdims=True)  # the offset within the window
            grad_x[c][rows, window] = grad[:, c:c + 1] * p * (self.offsets[None, :] - mean)
        return grad_x


class UprightHead(Layer):
    """Log-odds that a straightened view is upright rather than upside down: ``(N, B) -> (N,)``.

    The input is a text-line profile (:func:`stntool.pageview.line_profile`: ``B`` bins, top to bottom,
    about each line's core). Turning a view upside down reverses its profile, so the head reads only
    the profile's odd part, ``p[:B/2] - p[::-1][:B/2]``, with weights ``(B/2,)`` and no bias: the
    upside-down view gets exactly the opposite answer, and a view with no text lines (a zero profile)
    gets 0, no opinion. Starts at zero; fitted by logistic regression (:func:`stntool.train.fit_upright`).
    """

    def __init__(self, bins: int, dtype=np.float32):
        super().__init__()
        self.bins = int(bins)
        self.params = {"weight": np.zeros(self.bins // 2, dtype)}
        self.zero_grad()

    def odd(self, profiles) -> np.ndarray:
        """The profiles' odd part ``(N, B/2)``: what the head reads."""
        p = np.asarray(profiles, dtype=self.params["weight"].dtype)
        if p.ndim != 2 or p.shape[1] != self.bins:
            raise InvalidArgumentError(f"the upright head reads (N, {self.bins}) profiles, got {p.shape}")
        half = self.bins // 2
        return p[:, :half] - p[:, ::-1][:, :half]

    def forward(self, x, train=True):
        odd = self.odd(x)
        if train:
            self._cache = odd
        return odd @ self.params["weight"]

    def backward(self, grad):
        odd = self._take_cache()
        grad = np.asarray(grad, dtype=odd.dtype)
        self.grads["weight"] += grad @ odd
        half = self.bins // 2
        g_odd = grad[:, None] * self.params["weight"][None, :]
        out = np.zeros((odd.shape[0], self.bins), odd.dtype)
        out[:, :half] += g_odd
        out[:, ::-1][:, :half] -= g_odd
        return out


# ---------------------------------------------------------------------------------------------
# the network


def _check_arch(arch) -> dict:
    """Fill defaults into an architecture dict and validate it; unknown keys are refused."""
    if arch is None:
        arch = {}
    if not isinstance(arch, dict):
        raise InvalidArgumentError(f"architecture must be a dict, got {type(arch).__name__}")
    unknown = sorted(set(arch) - set(DEFAULT_ARCH))
    if unknown:
        raise InvalidArgumentError(f"unknown architecture keys: {', '.join(map(str, unknown))}")
    full = {**DEFAULT_ARCH, **arch}
    for name in ("in_channels", "in_size", "kernel", "fc"):
        full[name] = _arch_int(name, full[name])
    if full["kernel"] % 2 == 0:
        raise InvalidArgumentError(f"architecture kernel must be odd, got {full['kernel']}")
    channels = full["conv_channels"]
    if not isinstance(channels, (list, tuple)) or not channels:
        raise InvalidArgumentError(f"architecture conv_channels must be a non-empty list, got {channels!r}")
    full["conv_channels"] = [_arch_int("conv_channels", c) for c in channels]
    if full["in_size"] >> len(channels) < 1:
        raise InvalidArgumentError(
            f"in_size {full['in_size']} is too small for {len(channels)} pooling blocks "
            f"(needs >= {1 << len(channels)})")
    slope = full["relu_slope"]
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
        raise InvalidArgumentError(f"architecture relu_slope must be in [0, 1), got {slope!r}")
    full["relu_slope"] = float(slope)
    if full["family"] not in FAMILIES:
        raise InvalidArgumentError(f"unknown transform family {full['family']!r}; choose from {', '.join(FAMILIES)}")
    _check_orientation(full)
    full["upright_bins"] = _arch_int("upright_bins", full["upright_bins"], low=0)
    if full["upright_bins"] % 2:
        raise InvalidArgumentError(f"architecture upright_bins must be 0 or even, got {full['upright_bins']}")
    return full


def _arch_int(name, value, low: int = 1) -> int:
    """An architecture integer at least ``low`` (1: positive, 0: non-negative), or one clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "positive" if low == 1 else "non-negative"
        raise InvalidArgumentError(f"architecture {name} must be a {kind} integer, got {value!r}")
    return int(value)


def _check_orientation(full):
    bins = full["orientation_bins"]
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 0 or bins % 4:
        raise InvalidArgumentError(f"architecture orientation_bins must be 0 or a positive multiple of 4, got {bins!r}")
    full["orientation_bins"] = int(bins)
    if not bins:
        return
    full["orientation_channel"] = _arch_int("orientation_channel", full["orientation_channel"], low=0)
    for name in ("orientation_rings", "orientation_hidden", "orientation_kernel"):
        full[name] = _arch_int(name, full[name])
    if full["orientation_channel"] >= full["in_channels"]:
        raise InvalidArgumentError(f"architecture orientation_channel {full['orientation_channel']} is not one of the "
                                   f"{full['in_channels']} input channels")
    if full["orientation_kernel"] % 2 == 0:
        raise InvalidArgumentError(f"architecture orientation_kernel must be odd, got {full['orientation_kernel']}")
    radius = full["orientation_radius"]
    if (not isinstance(radius, (list, tuple)) or len(radius) != 2
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in radius)
            or not 0 <= radius[0] <= radius[1] <= 1):
        raise InvalidArgumentError(f"architecture orientation_radius must be [inner, outer] with 0 <= inner <= outer <= 1, "
                                   f"got {radius!r}")
    full["orientation_radius"] = [float(radius[0]), float(radius[1])]
    centre = full["orientation_centre"]
    if centre is not None and (isinstance(centre, bool) or not isinstance(centre, (int, float))
                               or not 0 <= centre <= full["in_size"] - 1):
        raise InvalidArgumentError(f"architecture orientation_centre must be a pixel position inside the input, "
                                   f"got {centre!r}")
    window = full["orientation_window"]
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window < 90 \
            or int(window * bins / 180.0) < 1:
        raise InvalidArgumentError(f"architecture orientation_window must be in (0, 90) degrees and span a bin, "
                                   f"got {window!r}")
    full["orientation_window"] = float(window)
    if not isinstance(full["orientation_follow"], bool):
        raise InvalidArgumentError(f"architecture orientation_follow must be true or false, "
                                   f"got {full['orientation_follow']!r}")


def _orientation_count(family: str) -> int:
    """Orientations the branch finds: text lines, and strokes for the families with shear."""
    return 2 if family in ("affine", "projective") else 1


def _orientation_branch(a, rng, dtype) -> list:
    """The orientation branch's layers (see :class:`LocNet`)."""
    size, bins = a["in_size"], a["orientation_bins"]
    centre = (size - 1) / 2.0 if a["orientation_centre"] is None else float(a["orientation_centre"])
    inner, outer = a["orientation_radius"]
    radii = np.linspace(inner, outer, a["orientation_rings"]) * (size / 2.0)
    orientations = _orientation_count(a["family"])
    half = int(a["orientation_window"] * bins / 180.0)
    return [
        ("orient_polar", PolarSample(size, a["orientation_channel"], centre, radii, bins)),
        ("orient_conv0", CircularConv1d(a["orientation_rings"], a["orientation_hidden"], a["orientation_kernel"],
                                        rng=rng, dtype=dtype)),
        ("orient_relu", ReLU(a["relu_slope"])),
        ("orient_conv1", CircularConv1d(a["orientation_hidden"], orientations, a["orientation_kernel"], dtype=dtype,
                                        init="zero")),
        # text lines peak at 90 degrees in a spectrum (perpendicular to them), strokes at 0
        ("orient_argmax", WindowedSoftArgmax(bins, [bins // 2, 0][:orientations], half,
                                             follow=[None, 0][:orientations] if a["orientation_follow"] else None)),
    ]


def _identity_theta(n_theta: int) -> np.ndarray:
    """The identity as the θ head's output: ``[1, 0, 0, 0, 1, 0]`` (+ ``[0, 0]`` for projective)."""
    return np.array([1, 0, 0, 0, 1, 0, 0, 0][:n_theta], np.float64)


class LocNet:
    """Localisation network: conv blocks, one shared fully connected layer, a θ head and a quarter-turn head.

    Parameters
    ----------
    arch : dict, optional
        Architecture; missing keys take their value from :data:`DEFAULT_ARCH` (see there).
        The trunk is, per entry of ``conv_channels``: ``Conv2d(k x k) -> MaxPool2d(2) -> ReLU``
        (pooling before the ReLU gives the same result for less work), then ``Flatten ->
        Linear(fc) -> ReLU``; the heads read the ``fc`` features. With ``orientation_bins``, the
        orientation branch (module docstring) reads ``orientation_channel`` and gives θ's linear part.
    seed : int or numpy.random.Generator
        Initialisation; the same seed gives the same weights.
    dtype : float32 (default) or float64.

    Attributes
    ----------
    arch : the full architecture dict.  family : ``arch["family"]``.
    metadata : dict stored with :meth:`save` and restored by :meth:`load` (empty for a new net).
    optimizer_state : the :class:`Adam` state saved with the model, or None.
    """

    def __init__(self, arch: dict | None = None, seed=0, dtype=np.float32):
        self.arch = _check_arch(arch)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise InvalidArgumentError(f"LocNet computes in float32 or float64, not {self.dtype}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        a = self.arch
        self.n_theta = FAMILIES[a["family"]]
        layers: list[tuple[str, Layer]] = []
        channels_in, size = a["in_channels"], a["in_size"]
        for i, channels in enumerate(a["conv_channels"]):
            layers.append((f"conv{i}", Conv2d(channels_in, channels, a["kernel"], rng=rng, dtype=self.dtype,
                                              input_grad=i > 0)))
            layers.append((f"pool{i}", MaxPool2d()))
            layers.append((f"relu{i}", ReLU(a["relu_slope"])))
            channels_in, size = channels, size // 2
        layers.append(("flatten", Flatten()))
        layers.append(("fc", Linear(channels_in * size * size, a["fc"], rng=rng, dtype=self.dtype)))
        layers.append(("relu_fc", ReLU(a["relu_slope"])))
        self.trunk = layers
        if a["orientation_bins"]:
            # the θ head gives what the orientations do not: translation (and the projective row)
            self.theta_head = Linear(a["fc"], self.n_theta - 4, dtype=self.dtype, init="zero")
        else:
            self.theta_head = Linear(a["fc"], self.n_theta, dtype=self.dtype, init="zero")
            self.theta_head.params["bias"][:] = _identity_theta(self.n_theta)
        self.quarter_head = Linear(a["fc"], 4, rng=rng, dtype=self.dtype)
        self.quarter_head.params["weight"] *= self.dtype.type(0.1)  # start near uniform class probabilities
        self.orientation = _orientation_branch(a, rng, self.dtype) if a["orientation_bins"] else []
        self.upright_head = UprightHead(a["upright_bins"], self.dtype) if a["upright_bins"] else None
        self.metadata: dict = {}
        self.optimizer_state: dict | None = None

    @property
    def family(self) -> str:
        return self.arch["family"]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, S)`` of one input image."""
        return (self.arch["in_channels"], self.arch["in_size"], self.arch["in_size"])

    @property
    def quarter_turns_trained(self) -> bool:
        """Whether training taught the quarter head (False for a net trained with ``quarter_turns=False``, as
        ``stntool train --no-quarter-turns`` records in the metadata's ``config``; True when nothing says)."""
        config = self.metadata.get("config") if isinstance(self.metadata, dict) else None
        return not (isinstance(config, dict) and config.get("quarter_turns") is False)

    def _layers(self):
        yield from self.trunk
        yield "theta", self.theta_head
        yield "quarter", self.quarter_head
        yield from self.orientation
        if self.upright_head is not None:
            yield "upright", self.upright_head

    @property
    def _orientations(self) -> int:
        """How many orientations the branch finds (:func:`_orientation_count`)."""
        return _orientation_count(self.family)

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"conv0.weight": array, ...}``: the live parameter arrays (an optimiser updates them in place)."""
        return {f"{name}.{key}": p for name, layer in self._layers() for key, p in layer.params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """The accumulated gradients, same keys as :meth:`parameters`."""
        return {f"{name}.{key}": g for name, layer in self._layers() for key, g in layer.grads.items()}

    def parameter_count(self) -> int:
        return int(sum(p.size for p in self.parameters().values()))

    def zero_grad(self):
        for _, layer in self._layers():
            layer.zero_grad()

    def astype(self, dtype) -> LocNet:
        """A copy computing in ``dtype`` (float64 for gradient checks)."""
        net = LocNet.__new__(LocNet)
        net.__dict__.update(self.__dict__)
        net.dtype = np.dtype(dtype)
        net.trunk = [(name, _copy_layer(layer, dtype)) for name, layer in self.trunk]
        net.theta_head = _copy_layer(self.theta_head, dtype)
        net.quarter_head = _copy_layer(self.quarter_head, dtype)
        net.orientation = [(name, _copy_layer(layer, dtype)) for name, layer in self.orientation]
        net.upright_head = None if self.upright_head is None else _copy_layer(self.upright_head, dtype)
        net.metadata = json.loads(json.dumps(self.metadata))
        return net

    def _check_input(self, x) -> np.ndarray:
        from .coords import host_array

        x = host_array(x, "LocNet input")
        if x.ndim != 4 or x.shape[1:] != self.input_shape or len(x) == 0:
            c, s, _ = self.input_shape
            raise InvalidArgumentError(f"LocNet input must have shape (N, {c}, {s}, {s}) with N >= 1, got {x.shape}")
        if x.dtype.kind not in "fiu":
            raise InvalidArgumentError(f"LocNet input must be real numbers, got {x.dtype}")
        return x.astype(self.dtype, copy=False)

    def forward(self, x, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Predict θ and quarter-turn logits for a batch.

        Parameters
        ----------
        x : (N, C, S, S) array, preprocessed as the model's metadata says.
        train : keep what :meth:`backward` needs (False for inference, see :meth:`predict`).

        Returns
        -------
        theta : (N, 2, 3) for the affine families, (N, 3, 3) with ``θ[:, 2, 2] = 1`` for projective.
        quarter_logits : (N, 4), classes 0, 90, 180, 270 degrees.
        """
        x = self._check_input(x).transpose(1, 0, 2, 3)  # the layers work channels major
        features = x
        for _, layer in self.trunk:
            features = layer.forward(features, train)
        theta_numbers = self.theta_head.forward(features, train)
        logits = self.quarter_head.forward(features, train)
        n = theta_numbers.shape[0]
        if self.orientation:
            offsets = x
            for _, layer in self.orientation:
                offsets = layer.forward(offsets, train)
            return self._orientation_theta(offsets, theta_numbers), logits
        if self.n_theta == 8:
            theta = np.concatenate([theta_numbers, np.ones((n, 1), theta_numbers.dtype)], axis=1).reshape(n, 3, 3)
        else:
            theta = theta_numbers.reshape(n, 2, 3)
        return theta, logits

    def _orientation_theta(self, offsets, numbers):
        """θ from the branch's orientation offsets (radians) and the θ head's translation (and projective row).

        The text lines are found ``d0`` from horizontal and (affine, projective) the strokes ``d1`` from
        vertical, so the columns of θ's linear part, the directions in the input along which the output's
        x and y axes run, are ``(cos d0, sin d0)`` and ``(-sin d1, cos d1)``; one orientation (rotation,
        similarity) gives the rotation ``d1 = d0``. Scale is left at 1: a page does not show it.
        """
        n = offsets.shape[0]
        d0 = offsets[:, 0]
        d1 = offsets[:, 1] if offsets.shape[1] > 1 else d0
        theta = np.zeros((n, 3 if self.n_theta == 8 else 2, 3), numbers.dtype)
        theta[:, 0, 0], theta[:, 1, 0] = np.cos(d0), np.sin(d0)
        theta[:, 0, 1], theta[:, 1, 1] = -np.sin(d1), np.cos(d1)
        theta[:, 0, 2], theta[:, 1, 2] = numbers[:, 0], numbers[:, 1]
        if self.n_theta == 8:
            theta[:, 2, 0], theta[:, 2, 1], theta[:, 2, 2] = numbers[:, 2], numbers[:, 3], 1
        return theta

    def _orientation_backward(self, grad_theta):
        """``(grad_offsets, grad_numbers)`` from θ's gradient (the chain of :meth:`_orientation_theta`)."""
        offsets = self.orientation[-1][1]._cache[2]
        d0 = offsets[:, 0]
        d1 = offsets[:, 1] if offsets.shape[1] > 1 else d0
        g = grad_theta
        g_d0 = -g[:, 0, 0] * np.sin(d0) + g[:, 1, 0] * np.cos(d0)
        g_d1 = -g[:, 0, 1] * np.cos(d1) - g[:, 1, 1] * np.sin(d1)
        grad_offsets = np.stack([g_d0, g_d1], axis=1) if offsets.shape[1] > 1 else (g_d0 + g_d1)[:, None]
        numbers = [g[:, 0, 2], g[:, 1, 2]] + ([g[:, 2, 0], g[:, 2, 1]] if self.n_theta == 8 else [])
        return grad_offsets.astype(self.dtype), np.stack(numbers, axis=1).astype(self.dtype)

    def predict(self, x) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forward` without keeping anything for backward (inference)."""
        return self.forward(x, train=False)

    def upright_logit(self, profiles) -> np.ndarray:
        """``(N,)`` log-odds that straightened views are upright rather than upside down, from their
        text-line profiles ``(N, upright_bins)`` (:func:`stntool.pageview.line_profile`); the second look
        of the upright head. Raises for a net without one (``upright_bins`` 0)."""
        if self.upright_head is None:
            raise InvalidArgumentError("this model has no upright head (architecture upright_bins is 0)")
        return self.upright_head.forward(profiles, train=False)

    def backward(self, grad_theta=None, grad_logits=None, input_grad: bool = False):
        """Add the parameter gradients of ``sum(grad_theta · θ) + sum(grad_logits · logits)``.

        Needs the preceding ``forward(x, train=True)``. ``grad_theta`` has θ's shape (for projective
        θ the fixed ``θ[2, 2]`` gets no gradient); either gradient may be None (zero). Gradients add up
        across calls until :meth:`zero_grad`. Returns the gradient with respect to ``x`` when
        ``input_grad`` is True, else None.
        """
        features = self.quarter_head._cache  # both heads read the same (N, fc) features
        if features is None:
            raise InvalidArgumentError("LocNet.backward needs a forward(x, train=True) first")
        n = features.shape[0]
        if grad_theta is None:
            grad_numbers = np.zeros((n, self.n_theta), self.dtype)
        else:
            grad_theta = np.asarray(grad_theta, self.dtype)
            expected = (n, 3, 3) if self.n_theta == 8 else (n, 2, 3)
            if grad_theta.shape != expected:
                raise InvalidArgumentError(f"grad_theta must have shape {expected}, got {grad_theta.shape}")
            grad_numbers = grad_theta.reshape(n, -1)[:, :self.n_theta]
        grad_orientation = None
        if self.orientation:
            if grad_theta is None:
                grad_numbers = np.zeros((n, self.n_theta - 4), self.dtype)
                grad_orientation = np.zeros((n, self._orientations), self.dtype)
            else:
                grad_orientation, grad_numbers = self._orientation_backward(grad_theta)
        if grad_logits is None:
            grad_logits = np.zeros((n, 4), self.dtype)
        else:
            grad_logits = np.asarray(grad_logits, self.dtype)
            if grad_logits.shape != (n, 4):
                raise InvalidArgumentError(f"grad_logits must have shape {(n, 4)}, got {grad_logits.shape}")
        grad = self.theta_head.backward(grad_numbers) + self.quarter_head.backward(grad_logits)
        first_conv = self.trunk[0][1]
        first_conv.input_grad = input_grad
        for _, layer in reversed(self.trunk):
            grad = layer.backward(grad)
        first_conv.input_grad = False
        if self.orientation:
            for _, layer in reversed(self.orientation[1:]):
                grad_orientation = layer.backward(grad_orientation)
            polar = self.orientation[0][1]
            if input_grad:
                grad = grad + polar.backward(grad_orientation)
            else:
                polar._cache = None
        return None if grad is None else grad.transpose(1, 0, 2, 3)

    # -- save / load ---------------------------------------------------------------------------

    def save(self, path, metadata: dict | None = None, optimizer: Adam | None = None):
        """Write the model to one ``.npz`` (atomically: a temporary file, then a rename).

        ``metadata`` (JSON-serialisable; defaults to :attr:`metadata`) should describe the input size
        and preprocessing, the transform family, the training ranges and command and the data; the
        file also records the architecture, the stntool version and a format version. With
        ``optimizer`` its state is saved too, so training can resume (:attr:`optimizer_state`).
        Parameters are stored in float32.
        """
        from .io import write_atomic  # no OpenCV import; keeps `import stntool.locnet` light

        metadata = self.metadata if metadata is None else metadata
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stntool_version": __version__,
            "arch": self.arch,
            "parameter_count": self.parameter_count(),
            "optimizer": None if optimizer is None else optimizer.hyperparameters(),
            "metadata": metadata,
        }
        try:
            header_json = json.dumps(header, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"model metadata must be JSON-serialisable: {e}") from None
        arrays = {"header": np.array(header_json)}
        arrays.update({f"param.{name}": p.astype(np.float32) for name, p in self.parameters().items()})
        if optimizer is not None:
            arrays.update({f"adam.{key}": value for key, value in optimizer.state_dict().items()})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_atomic(os.fspath(path), buffer.getvalue(), overwrite=True)
        self.metadata = metadata

    @classmethod
    def load(cls, path, dtype=np.float32, what: str = "a .npz file from stntool train") -> LocNet:
        """Read a model written by :meth:`save`.

        Raises :class:`~stntool.errors.InvalidArgumentError` with a one-line reason for a missing,
        unreadable, truncated or corrupt file, an ``.npz`` that is not a stntool localisation net, a
        newer format version, or parameters that do not fit the recorded architecture. ``what``: what a
        model may be, said where the file does not exist (a caller that takes shipped names says so).
        """
        shown = os.fsdecode(path)
        arrays = _read_npz(path, shown, what)
        header = _parse_header(arrays, shown)
        try:
            net = cls(header["arch"], seed=0, dtype=dtype)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"model {shown}: {e}") from None
        except (MemoryError, ValueError):  # numpy's "array is too big" for sizes beyond any machine
            raise InvalidArgumentError(f"model {shown}: its architecture is too large for this machine's memory "
                                       "(a corrupt header?)") from None
        expected = net.parameters()
        stored_names = {k[len("param."):] for k in arrays if k.startswith("param.")}
        missing = sorted(set(expected) - stored_names)
        if missing:
            raise InvalidArgumentError(f"model {shown} lacks parameters: {', '.join(missing[:3])}"
                                       + (" ..." if len(missing) > 3 else ""))
        unused = sorted(stored_names - set(expected))
        if unused:  # parameters of another architecture than the header's: a mixed-up or edited file
            raise InvalidArgumentError(f"model {shown} has parameters its architecture does not use: "
                                       f"{', '.join(unused[:3])}" + (" ..." if len(unused) > 3 else ""))
        for name, p in expected.items():
            stored = arrays[f"param.{name}"]
            if stored.shape != p.shape or stored.dtype.kind != "f":
                raise InvalidArgumentError(f"model {shown}: parameter {name} is {stored.dtype}{list(stored.shape)}, "
                                           f"expected float{list(p.shape)}")
            if not np.all(np.isfinite(stored)):
                raise InvalidArgumentError(f"model {shown}: parameter {name} contains NaN or infinity")
            p[...] = stored
        net.metadata = header["metadata"] if isinstance(header["metadata"], dict) else {}
        if header.get("optimizer") is not None:
            state = {k[len("adam."):]: v for k, v in arrays.items() if k.startswith("adam.")}
            net.optimizer_state = {"hyperparameters": header["optimizer"], **state}
        return net


def _copy_layer(layer: Layer, dtype) -> Layer:
    new = type(layer).__new__(type(layer))
    new.__dict__.update(layer.__dict__)
    return new.astype(dtype)


def _read_npz(path, shown: str, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, read eagerly; any failure becomes one InvalidArgumentError line."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic[:4] != b"PK\x03\x04" and magic != b"\x93NUMPY":  # a zip (.npz) or a .npy array
            raise InvalidArgumentError(f"model {shown} is not a .npz archive (a stntool model, written by stntool "
                                       "train)")
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InvalidArgumentError(f"model {shown} is a single .npy array, not a .npz model")
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
        odd = next((key for key, v in arrays.items() if not isinstance(v, np.ndarray)), None)
        if odd is not None:  # np.load gives a member that is not a .npy array as its bytes
            raise InvalidArgumentError(f"model {shown} is not a stntool model (its member {odd!r} is not an array)")
        return arrays
    except InvalidArgumentError:
        raise
    except FileNotFoundError:
        raise InvalidArgumentError(f"model {shown} does not exist ({what})") from None
    except IsADirectoryError:
        raise InvalidArgumentError(f"model {shown} is a folder, not a .npz file") from None
    except OSError as e:
        raise InvalidArgumentError(f"cannot read model {shown}: {e.strerror or e}") from None
    except Exception as e:  # zipfile, zlib, the .npy header parser: any decoder failure means a bad file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidArgumentError(f"model {shown} is not a readable .npz file ({reason})") from None


def _parse_header(arrays: dict, shown: str) -> dict:
    raw = arrays.get("header")
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise InvalidArgumentError(f"{shown} is not a stntool localisation net (no header)")
    try:
        header = json.loads(str(raw))
    except (ValueError, RecursionError):
        raise InvalidArgumentError(f"model {shown} has a corrupt header (not JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidArgumentError(f"{shown} is not a stntool localisation net (format {header.get('format')!r})"
                                   if isinstance(header, dict) else f"{shown} is not a stntool localisation net")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(f"model {shown} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise InvalidArgumentError(
            f"model {shown} has format version {version}; this stntool ({__version__}) reads up to {FORMAT_VERSION}")
    for key in ("arch", "metadata"):
        if key not in header:
            raise InvalidArgumentError(f"model {shown} has no {key} in its header")
    return header


# ---------------------------------------------------------------------------------------------
# loss and optimiser


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits (stable: the row maximum is subtracted first)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def quarter_loss(logits: np.ndarray, labels) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of ``(N, 4)`` logits against integer labels in 0..3.

    Returns ``(loss, grad_logits)``, the gradient being ``(softmax - onehot) / N``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise InvalidArgumentError(
            f"quarter_loss takes (N, K) logits and (N,) labels, got {logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise InvalidArgumentError(f"quarter labels must be integers in 0..{logits.shape[1] - 1}")
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, labels].mean())
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1
    return loss, grad / n


class Adam:
    """Adam (Kingma & Ba, 2015) with decoupled weight decay (AdamW) and gradient clipping.

    Updates the arrays of ``params`` in place, exactly like ``torch.optim.Adam`` (``weight_decay=0``)
    or ``torch.optim.AdamW``. Weight decay applies only to arrays with two or more dimensions (weights,
    not biases: the θ head's bias holds the identity). ``clip_norm`` rescales the gradients when their
    global L2 norm exceeds it, like ``torch.nn.utils.clip_grad_norm_``.

    >>> net = LocNet({"in_channels": 1, "in_size": 16, "conv_channels": [4]})
    >>> opt = Adam(net.parameters(), lr=1e-3, clip_norm=5.0)
    >>> # per step: net.zero_grad(); net.forward(x); net.backward(g_theta, g_logits); opt.step(net.gradients())
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        if not lr > 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or not eps > 0 or weight_decay < 0 \
                or (clip_norm is not None and not clip_norm > 0):
            raise InvalidArgumentError("Adam needs lr > 0, betas in [0, 1), eps > 0, weight_decay >= 0, clip_norm > 0")
        self.params = params
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.weight_decay = float(weight_decay)
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.t = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> float:
        """One update from ``grads`` (same keys as the parameters); returns their global norm before clipping."""
        if set(grads) != set(self.params):
            raise InvalidArgumentError("Adam.step needs one gradient per parameter")
        norm = math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel().astype(np.float64)))
                             for g in grads.values()))
        if not math.isfinite(norm):
            raise InvalidArgumentError("gradients contain NaN or infinity (nothing updated)")
        scale = 1.0
        if self.clip_norm is not None and norm > self.clip_norm:
            scale = self.clip_norm / (norm + 1e-6)
        self.t += 1
        beta1, beta2 = self.betas
        bias1, bias2 = 1 - beta1 ** self.t, 1 - beta2 ** self.t
        for name, p in self.params.items():
            g = grads[name] * p.dtype.type(scale) if scale != 1.0 else grads[name]
            m, v = self.m[name], self.v[name]
            if self.weight_decay and p.ndim >= 2:
                p *= p.dtype.type(1 - self.lr * self.weight_decay)
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v) / p.dtype.type(math.sqrt(bias2))
            denom += p.dtype.type(self.eps)
            p -= p.dtype.type(self.lr / bias1) * m / denom
        return norm

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "clip_norm": self.clip_norm}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays to resume from: ``t``, ``m.<name>``, ``v.<name>``."""
        state = {"t": np.array(self.t, np.int64)}
        state.update({f"m.{name}": m for name, m in self.m.items()})
        state.update({f"v.{name}": v for name, v in self.v.items()})
        return state

    def load_state_dict(self, state: dict):
        """Restore the moments and step count from :meth:`state_dict` (or :attr:`LocNet.optimizer_state`)."""
        try:
            t = int(state["t"])
            moments = {kind: {name: np.asarray(state[f"{kind}.{name}"]) for name in self.params} for kind in "mv"}
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgumentError(f"optimizer state is incomplete ({e})") from None
        if t < 0:
            raise InvalidArgumentError(f"optimizer state t is {t}, not a step count")
        for kind in "mv":
            for name, p in self.params.items():
                a = moments[kind][name]
                if a.shape != p.shape:
                    raise InvalidArgumentError(f"optimizer state {kind}.{name} does not fit the parameter's shape")
                if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)) or (kind == "v" and np.any(a < 0)):
                    raise InvalidArgumentError(f"optimizer state {kind}.{name} holds values no step leaves there "
                                               "(not finite" + (", or negative)" if kind == "v" else ")"))
        self.t = t
        self.m = {name: moments["m"][name].astype(p.dtype) for name, p in self.params.items()}
        self.v = {name: moments["v"][name].astype(p.dtype) for name, p in self.params.items()}
