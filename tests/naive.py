"""Slow, obviously-correct per-pixel implementations, written from PyTorch's definitions.

They share nothing with stntool's code: the reference backend is tested against these.
"""

import math

import numpy as np


def unnormalize(v, size, align_corners):
    if align_corners:
        return (v + 1) / 2 * (size - 1)
    return ((v + 1) * size - 1) / 2


def reflect(v, twice_low, twice_high):
    if twice_low == twice_high:
        return 0.0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    v = abs(v - lo)
    extra = math.fmod(v, span)
    flips = math.floor(v / span)
    return extra + lo if flips % 2 == 0 else span - extra + lo


def pad_coord(v, size, padding, align_corners):
    if padding == "border":
        return min(max(v, 0.0), size - 1.0)
    if padding == "reflection":
        v = reflect(v, 0, 2 * (size - 1)) if align_corners else reflect(v, -1, 2 * size - 1)
        return min(max(v, 0.0), size - 1.0)
    return v


def pixel(img, n, yy, xx, c, fill):
    h, w = img.shape[1:3]
    if 0 <= xx <= w - 1 and 0 <= yy <= h - 1:
        return float(img[n, int(yy), int(xx), c])
    return fill


def cubic(t):
    a = -0.75
    def k(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0
    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def sample_one(img, n, gx, gy, c, mode, padding, align_corners, fill=0.0):
    h, w = img.shape[1:3]
    if not (math.isfinite(gx) and math.isfinite(gy)):
        return fill
    x = unnormalize(gx, w, align_corners)
    y = unnormalize(gy, h, align_corners)
    if mode == "bicubic":
        x0, y0 = math.floor(x), math.floor(y)
        wx, wy = cubic(x - x0), cubic(y - y0)
        total = 0.0
        for a in range(4):
            for b in range(4):
                xx = pad_coord(x0 - 1 + b, w, padding, align_corners)
                yy = pad_coord(y0 - 1 + a, h, padding, align_corners)
                total += wx[b] * wy[a] * pixel(img, n, yy, xx, c, fill)
        return total
    x = pad_coord(x, w, padding, align_corners)
    y = pad_coord(y, h, padding, align_corners)
    if mode == "nearest":
        return pixel(img, n, round(y), round(x), c, fill)  # Python's round is half-to-even
    x0, y0 = math.floor(x), math.floor(y)
    tx, ty = x - x0, y - y0
    return ((1 - tx) * (1 - ty) * pixel(img, n, y0, x0, c, fill) + tx * (1 - ty) * pixel(img, n, y0, x0 + 1, c, fill)
            + (1 - tx) * ty * pixel(img, n, y0 + 1, x0, c, fill) + tx * ty * pixel(img, n, y0 + 1, x0 + 1, c, fill))


def grid_sample(img, grid, mode, padding, align_corners, fill=0.0):
    """img (N, H, W, C), grid (N, Ho, Wo, 2) -> float64 (N, Ho, Wo, C)."""
    n_, ho, wo, _ = grid.shape
    c_ = img.shape[3]
    out = np.zeros((n_, ho, wo, c_))
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                for c in range(c_):
                    out[n, i, j, c] = sample_one(img, n, float(grid[n, i, j, 0]), float(grid[n, i, j, 1]), c,
                                                 mode, padding, align_corners, fill)
    return out


def affine_grid(theta, h, w, align_corners):
    """theta (2, 3) -> (h, w, 2), from torch's definition."""
    def base(n):
        if n <= 1:
            return [0.0] * n
        v = [-1 + 2 * k / (n - 1) for k in range(n)]
        return v if align_corners else [t * (n - 1) / n for t in v]
    xs, ys = base(w), base(h)
    g = np.zeros((h, w, 2))
    for i in range(h):
        for j in range(w):
            g[i, j, 0] = theta[0][0] * xs[j] + theta[0][1] * ys[i] + theta[0][2]
            g[i, j, 1] = theta[1][0] * xs[j] + theta[1][1] * ys[i] + theta[1][2]
    return g
