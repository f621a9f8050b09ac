"""The scalar sampling maths, written once for every compiled target.

These are plain Python functions of floats and ints: padding (border clamp, reflection), round
half to even, Keys' cubic and Catmull-Rom weights, the padding rule's derivative, the
thin-plate radial term, unnormalization and the integer store's rounding and saturation. They
are the per-pixel building blocks of :mod:`stntool.sampling._cpu` and
:mod:`stntool.sampling._cuda`; :mod:`stntool.sampling._reference` is their vectorised spec.

Each backend compiles them with :func:`compile_for`: the CPU backend with ``numba.njit``, the
CUDA backend with ``cuda.jit(device=True)``. Calls between these functions resolve to the
compiled twins of the same target, so a fix here lands in both backends at once.

Two names are *target primitives*, bound by :func:`compile_for` per target rather than written
here: ``floor`` and ``fmod`` (float in, float out). Plain Python gets :mod:`math`'s. The CPU
target binds ``numpy.floor`` / ``numpy.fmod`` (they stay float64 for any magnitude); the CUDA
target binds :mod:`math`'s, which numba-cuda maps to libdevice.

Compiled kernels are cached on disk keyed on the source of this module too (see
:mod:`stntool.sampling._kernel_cache`), so editing a function here recompiles every kernel that
uses it. This module imports neither numba nor numpy.
"""

from __future__ import annotations

import math
import types
from math import floor, fmod  # noqa: F401  (target primitives; rebound per target by compile_for)

NEAREST, BILINEAR, BICUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION, CONSTANT = 0, 1, 2, 3
CUBIC_A = -0.75
#: Relative distance from a half integer within which nearest rounding treats a coordinate as a tie
#: (:func:`rint`): about 2**12 units in the last place, far below any coordinate step of a real warp.
TIE_TOL = 2.0 ** -40


def unnormalize(coord, size, align_corners):
    """Normalized -> pixel coordinate along an axis of ``size`` pixels (:mod:`stntool.coords`)."""
    if align_corners:
        return (coord + 1.0) / 2.0 * (size - 1)
    return ((coord + 1.0) * size - 1.0) / 2.0


def reflect(x, twice_low, twice_high):
    """Reflect ``x`` into ``[twice_low / 2, twice_high / 2]`` (PyTorch ``reflect_coordinates``)."""
    if twice_low == twice_high:
        return 0.0
    lo = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    x = abs(x - lo)
    # fmod(x, span), without the call where a subtraction gives its exact value: x itself below span, x -
    # span below twice it (exact: span <= x < 2 span)
    if x < span:
        extra = x
    elif x < 2.0 * span:
        extra = x - span
    else:
        extra = fmod(x, span)
    flips = floor(x / span)
    if flips - 2.0 * floor(flips * 0.5) == 0.0:  # fmod(flips, 2.0) == 0.0: flips even (NaN for inf and NaN)
        return extra + lo
    return span - extra + lo


def pad_coord(x, size, pad, align_corners):
    """PyTorch ``compute_coordinates``: border clipping or reflection of a pixel coordinate."""
    if pad == BORDER:
        return min(max(x, 0.0), size - 1.0)
    if pad == REFLECTION:
        if align_corners:
            x = reflect(x, 0.0, 2.0 * (size - 1))
        else:
            x = reflect(x, -1.0, 2.0 * size - 1.0)
        return min(max(x, 0.0), size - 1.0)
    return x


def pad_coord_grad(x, size, pad, align_corners):
    """Padding rule and its derivative ``(x', dx'/dx)`` (PyTorch ``compute_coordinates_set_grad``)."""
    mult = 1.0
    if pad == REFLECTION:
        if align_corners:
            twice_low = 0.0
            twice_high = 2.0 * (size - 1)
        else:
            twice_low = -1.0
            twice_high = 2.0 * size - 1.0
        if twice_low == twice_high:
            return 0.0, 0.0
        lo = twice_low / 2.0
        span = (twice_high - twice_low) / 2.0
        d = x - lo
        if d < 0.0:
            mult = -1.0
            d = -d
        extra = fmod(d, span)
        flips = floor(d / span)
        if fmod(flips, 2.0) == 0.0:
            x = extra + lo
        else:
            x = span - extra + lo
            mult = -mult
    if pad == BORDER or pad == REFLECTION:
        if x <= 0.0:
            return 0.0, 0.0
        if x >= size - 1.0:
            return size - 1.0, 0.0
    return x, mult


def rint(x):
    """Round half to even, for finite ``x``; a coordinate within ``TIE_TOL * max(1, |x|)`` of a half
    integer is a tie.

    Pixel maps and grids are rounded float64 values: a coordinate that is exactly ``k + 1/2`` (an
    identity resize, a half-pixel shift) arrives a few units in the last place away from it, on
    either side, depending on how the map was evaluated. Taking those as ties makes every backend
    round them the same way, to even, as the exact coordinate would.
    """
    r = 1.0 * floor(x + 0.5)
    d = r - x
    tol = TIE_TOL * max(1.0, abs(x))
    if r - 2.0 * floor(0.5 * r) != 0.0:  # r odd (fmod(r, 2) != 0, without a library call: loops vectorize)
        if abs(d + 0.5) <= tol:
            r += 1.0
        elif abs(d - 0.5) <= tol:
            r -= 1.0
    return r


def cubic_near(x):
    """Keys' cubic convolution kernel (``A = -0.75``) for ``|x| <= 1``."""
    return ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0


def cubic_far(x):
    """Keys' cubic convolution kernel for ``1 < |x| < 2``."""
    return ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A


def cubic_weights(t):
    """Keys' weights of the taps at offsets -1, 0, 1, 2 from ``floor(x)``; ``t = x - floor(x)``."""
    return cubic_far(t + 1.0), cubic_near(t), cubic_near(1.0 - t), cubic_far(2.0 - t)


def cr_weights(t):
    """Catmull-Rom weights of the nodes at offsets -1, 0, 1, 2 for a position ``t`` in ``[0, 1]``."""
    t2 = t * t
    t3 = t2 * t
    return (-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2)


def tps_radial(d2):
    """The thin-plate radial term ``U = r² log r²`` from ``d2 = r²`` (0 at the centre)."""
    return d2 * math.log(d2) if d2 > 0.0 else 0.0


def saturate(v, maxv):
    """``v + 0.5`` clamped to ``[0, maxv]`` (NaN gives 0), for an integer output of range ``[0, maxv]``.

    Storing the result into an unsigned integer array truncates it, which completes the round
    half up: the stored value is ``floor(v + 0.5)`` saturated, as :func:`_reference.to_dtype`.
    """
    v = v + 0.5
    if not (v >= 0.0):
        v = 0.0
    elif v > maxv:
        v = maxv
    return v


#: Every function above, callees before callers (the order :func:`compile_for` compiles them in).
FUNCTIONS = ("unnormalize", "reflect", "pad_coord", "pad_coord_grad", "rint", "cubic_near", "cubic_far",
             "cubic_weights", "cr_weights", "tps_radial", "saturate")
#: Small functions a CPU caller wants inlined at the IR level (the per-pixel loops call them). Not
#: ``pad_coord``: inlined everywhere, it made every kernel's first compile about 0.4 s longer; only the
#: padded loops of :mod:`stntool.sampling._cpu` (kernels of border and reflection padding alone) inline it.
INLINE = frozenset({"rint", "cubic_near", "cubic_far", "cubic_weights", "cr_weights", "saturate"})


def compile_for(jit, jit_inline=None, **primitives) -> types.SimpleNamespace:
    """Compile every function of this module for one target.

    ``jit`` (and ``jit_inline`` for the names in :data:`INLINE`, default ``jit``) is the target's
    decorator; ``primitives`` rebinds the target primitives (``floor``, ``fmod``). Each function
    is rebuilt over a private copy of this module's globals in which the other functions are
    their compiled twins, so the module itself stays plain Python. Returns a namespace of the
    compiled functions and the constants.
    """
    unknown = set(primitives) - {"floor", "fmod"}
    if unknown:
        raise TypeError(f"unknown target primitives: {sorted(unknown)}")
    ns = dict(globals())
    ns.update(primitives)
    compiled = {}
    for name in FUNCTIONS:
        fn = globals()[name]
        clone = types.FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__, fn.__closure__)
        clone.__qualname__ = fn.__qualname__
        clone.__doc__ = fn.__doc__
        clone.__module__ = fn.__module__
        deco = jit_inline if (jit_inline is not None and name in INLINE) else jit
        ns[name] = compiled[name] = deco(clone)
    consts = {k: ns[k] for k in ("NEAREST", "BILINEAR", "BICUBIC", "ZEROS", "BORDER", "REFLECTION", "CONSTANT",
                                 "CUBIC_A", "TIE_TOL")}
    return types.SimpleNamespace(**compiled, **consts)
