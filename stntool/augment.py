"""Random geometric augmentation that draws warp records: reproducible, replayable, batched.

An :class:`Augmenter` holds ranges in readable units (the names of ``stntool augment``'s flags)
and draws one :class:`~stntool.records.WarpSpec` per image from a ``numpy.random.Generator``;
the record is the whole truth about the variant, so it can be logged, replayed with ``stntool
warp --params`` and applied to labels (:mod:`stntool.labels`).

>>> import numpy as np
>>> from stntool.augment import Augmenter
>>> aug = Augmenter(rotate=(-10, 10), scale=(0.9, 1.1), translate=0.05, hflip=0.5)
>>> img = np.zeros((48, 64, 3), np.uint8)
>>> res = aug(img, np.random.default_rng(0))
>>> res.image.shape, res.spec.theta is not None
((48, 64, 3), True)

Geometry
--------
Every amount is measured in output pixels, so rotations stay rotations on non-square images and
when ``out_hw`` differs from the input size. The forward pixel map of a variant is ::

    out_from_in = Z · P · T(c_out + t) · R(rotate) · Sh(shear, shear_y) · S(scale, aspect) · F · S0 · T(-c_in)

``c_in`` and ``c_out`` are the image centres, ``S0`` stretches the input's extent onto the output's
(the identity for equal sizes), ``F`` the flips, ``S`` scales x by ``scale·sqrt(aspect)`` and y by
``scale/sqrt(aspect)``, ``R`` turns counter-clockwise as displayed (:func:`stntool.transforms.rotate`),
``t`` is the translation (fractions of the output width and height), ``P`` moves the output's four
corners by up to ``perspective`` of its size (a projective map), ``Z`` zooms about the output centre
for ``keep_inside``. A ``tps`` amount moves a ``tps_grid x tps_grid`` lattice of output points by up
to that fraction of the size; the record is then a thin-plate spline through the lattice points and
their sources under the map above (exact for the affine part, which a spline reproduces). An
``elastic`` ``(alpha, sigma)`` adds Albumentations-style elastic displacement (:mod:`stntool.maps`).

Randomness and reproducibility
------------------------------
:meth:`Augmenter.sample` uses only ``rng.random()`` (PCG64's raw doubles, stable across NumPy
versions) in a fixed order: rotate, scale, aspect, shear, shear_y, translate x, translate y, hflip,
vflip, the 8 perspective jitters, the elastic seed, then ``2·tps_grid²`` TPS jitters when ``tps`` >
0. Each amount is drawn whether or not its range is empty, so narrowing one range never changes
the others' values. ``stntool augment`` draws variant ``k`` of an input from
:func:`variant_rng` ``(seed, relative path, k)``: outputs depend on nothing else (not ``--jobs``, the
order, or the other files). In a PyTorch ``DataLoader`` do the same: derive the generator from the
sample's index (``variant_rng(seed, str(index), epoch)``), never from the worker id, and the
augmentation is independent of ``num_workers``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import operator
from dataclasses import dataclass

from .coords import _axis_scale_offset, _norm_from_pixel, _pixel_from_norm, as_hw
from .errors import InvalidArgumentError
from .records import Elastic, TpsPoints, WarpSpec, parse_numbers

__all__ = ["Augmenter", "Augmented", "PRESETS", "variant_rng", "parse_range"]

#: Named option sets for common needs (``stntool augment --preset``; ``--show-preset`` prints them).
PRESETS = {
    "light": dict(rotate=(-5.0, 5.0), scale=(0.95, 1.05), translate=(-0.02, 0.02)),
    "medium": dict(rotate=(-15.0, 15.0), scale=(0.85, 1.15), aspect=(0.9, 1.1), shear=(-5.0, 5.0),
                   translate=(-0.05, 0.05), hflip=0.5, perspective=0.03),
    "heavy": dict(rotate=(-30.0, 30.0), scale=(0.7, 1.3), aspect=(0.8, 1.25), shear=(-10.0, 10.0),
                  shear_y=(-5.0, 5.0), translate=(-0.1, 0.1), hflip=0.5, perspective=0.06, tps=0.02),
    "document": dict(rotate=(-3.0, 3.0), scale=(0.9, 1.1), shear=(-3.0, 3.0), translate=(-0.03, 0.03),
                     perspective=0.02, padding="constant", fill="#ffffff"),
    "ocr": dict(rotate=(-2.0, 2.0), scale=(0.95, 1.05), aspect=(0.9, 1.1), shear=(-8.0, 8.0),
                translate=(-0.02, 0.02), tps=0.01, padding="constant", fill="#ffffff"),
}

_RANGES = ("rotate", "scale", "aspect", "shear", "shear_y", "translate")
#: The least area the two shears together may leave (``1 - tan(shear) tan(shear_y)``, the determinant of their
#: matrix): below it a variant is squashed towards a line, at 0 the map is singular, below 0 mirrored.
_MIN_SHEAR_AREA = 0.1


#: The smallest and largest scale and aspect factor a variant may have.
_FACTOR_LIMITS = (1e-6, 1e6)
#: The largest shift a variant may have, in image sizes (one size already moves the picture out of view;
#: beyond about 1e307 the matrices overflow).
_TRANSLATE_LIMIT = 1e6


def parse_range(text, what: str, symmetric: bool = False) -> tuple:
    """``"LO:HI"`` -> ``(LO, HI)``; a single value ``V`` -> ``(V, V)`` (``(-V, V)`` when ``symmetric``)."""
    s = str(text).strip()
    if s.count(":") > 1:
        raise InvalidArgumentError(f"{what}: expected LO:HI with two numbers, got {text!r}")
    if ":" in s:
        lo, _, hi = s.partition(":")
        a = parse_numbers(lo, what, (1,))[0] if lo.strip() else None
        b = parse_numbers(hi, what, (1,))[0] if hi.strip() else None
        if a is None or b is None:
            raise InvalidArgumentError(f"{what}: expected LO:HI with two numbers, got {text!r}")
        if a > b:
            raise InvalidArgumentError(f"{what}: LO must not exceed HI, got {text!r}")
        return (a, b)
    v = parse_numbers(s, what, (1,))[0]
    return (-abs(v), abs(v)) if symmetric else (v, v)


def _as_range(value, what: str, symmetric: bool = False) -> tuple:
    if isinstance(value, str):
        lo, hi = parse_range(value, what, symmetric)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        lo, hi = (-abs(v), abs(v)) if symmetric else (v, v)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{what} must be a number or a (lo, hi) pair, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InvalidArgumentError(f"{what} must be finite with lo <= hi, got {value!r}")
    if not math.isfinite(hi - lo):  # a width that overflows (-1e308, 1e308) draws infinities
        raise InvalidArgumentError(f"{what}: the range {_span((lo, hi))} is too wide (its width overflows)")
    return (lo, hi)


def _span(r) -> str:
    """A range as the command line writes it: ``LO:HI``, or one value."""
    return f"{r[0]:g}" if r[0] == r[1] else f"{r[0]:g}:{r[1]:g}"


def variant_rng(seed: int, key: str, index: int):
    """The generator of variant ``index`` of the input named ``key`` (its relative path, ``/``-separated).

    ``PCG64(SeedSequence([seed, index, blake2b-128(key's bytes) as four 32-bit words]))`` (the bytes:
    :func:`_key_bytes`): the same three values give the same stream on every machine and NumPy version;
    different keys or indices give independent streams.
    """
    import numpy as np

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)  # a NumPy integer too (a DataLoader worker's seed)
    try:  # an integer, a NumPy one, or a 0-d integer array or tensor (a DataLoader's epoch)
        k = None if isinstance(index, bool) else operator.index(index)
    except TypeError:
        k = None
    if k is None or k < 0:
        raise InvalidArgumentError(f"the variant index must be an integer >= 0, got {index!r}")
    digest = hashlib.blake2b(_key_bytes(str(key)), digest_size=16).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, k, *words])))


def _key_bytes(key: str) -> bytes:
    """``key`` in UTF-8. A file name that is not valid UTF-8 reaches Python with its undecodable bytes as
    lone surrogates (``os.fsdecode``): they become those bytes again, so the name's own bytes are hashed;
    other lone surrogates (only a Python caller can pass them) are encoded as such."""
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


@dataclass
class Augmented:
    """One augmented image: ``image``, the ``spec`` that made it, and the labels moved with it."""

    image: object
    spec: object
    keypoints: object = None
    boxes: object = None
    mask: object = None
    labels: object = None
    info: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Augmenter:
    """Ranges to draw warp records from (see the module docstring for the geometry).

    Parameters
    ----------
    rotate : degrees, counter-clockwise as displayed; ``(lo, hi)`` or a fixed value
    scale, aspect : factors; ``(lo, hi)`` or a fixed value
    shear, shear_y : degrees of x shear (``x += tan(shear)·y``) and y shear
    translate : fraction of the output size per axis; a single ``F`` means ``(-F, F)``
    hflip, vflip : probabilities of a mirror
    perspective : each output corner moves by up to this fraction of the size (0: affine; from 0.25 on two
        corners can cross, and a draw fold the image through its horizon)
    tps, tps_grid : control-point jitter (fraction of the size) on a ``tps_grid x tps_grid`` lattice
    elastic : ``(alpha, sigma)`` in pixels, as Albumentations' ``ElasticTransform``, or None
    keep_inside : zoom in (and, if that cannot, pull the translation back) so no padding shows,
        where possible
    mode, padding, fill, align_corners : sampling options of the records (see :func:`stntool.warp`); ``padding``
        defaults to ``"zeros"``, or ``"constant"`` where a ``fill`` is given (as ``--fill`` alone on the command line)
    """

    rotate: tuple = (0.0, 0.0)
    scale: tuple = (1.0, 1.0)
    aspect: tuple = (1.0, 1.0)
    shear: tuple = (0.0, 0.0)
    shear_y: tuple = (0.0, 0.0)
    translate: tuple = (0.0, 0.0)
    hflip: float = 0.0
    vflip: float = 0.0
    perspective: float = 0.0
    tps: float = 0.0
    tps_grid: int = 4
    elastic: tuple | None = None
    keep_inside: bool = False
    mode: str = "bilinear"
    padding: str | None = None
    fill: object = None
    align_corners: bool = False

    def __post_init__(self):
        import numpy as np

        if self.padding is None:
            object.__setattr__(self, "padding", "zeros" if self.fill is None else "constant")

        for name in _RANGES:
            object.__setattr__(self, name, _as_range(getattr(self, name), name, symmetric=name == "translate"))
        for name in ("scale", "aspect"):  # beyond these a variant's matrix and its inverse overflow or vanish
            lo, hi = getattr(self, name)
            if not (_FACTOR_LIMITS[0] <= lo and hi <= _FACTOR_LIMITS[1]):
                raise InvalidArgumentError(f"{name} must be between {_FACTOR_LIMITS[0]:g} and {_FACTOR_LIMITS[1]:g}, "
                                           f"got {_span((lo, hi))}")
        if max(abs(v) for v in self.translate) > _TRANSLATE_LIMIT:
            raise InvalidArgumentError(f"translate must be within ±{_TRANSLATE_LIMIT:g} (image sizes), got "
                                       f"{_span(self.translate)}")
        for name in ("shear", "shear_y"):
            if max(abs(v) for v in getattr(self, name)) >= 89.0:
                raise InvalidArgumentError(f"{name} must stay within (-89, 89) degrees")
        # together the shears scale areas by 1 - tan(shear) tan(shear_y): at 1 they fold the image onto a line
        # (45° and 45°: a singular map), beyond it they mirror it; draws may not shrink it below _MIN_SHEAR_AREA
        fold = max(math.tan(math.radians(a)) * math.tan(math.radians(b)) for a in self.shear for b in self.shear_y)
        if 1.0 - fold < _MIN_SHEAR_AREA:
            raise InvalidArgumentError(f"the shears ({_span(self.shear)}° in x, {_span(self.shear_y)}° in y) "
                                       f"together can fold the image (1 - tan(x) tan(y) reaches {1.0 - fold:.3g}, "
                                       f"under {_MIN_SHEAR_AREA:g}); narrow one of them")
        for name in ("hflip", "vflip"):
            p = getattr(self, name)
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
                raise InvalidArgumentError(f"{name} is a probability in [0, 1], got {p!r}")
            object.__setattr__(self, name, float(p))
        for name in ("perspective", "tps"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not 0.0 <= v < 0.5:
                raise InvalidArgumentError(f"{name} is a fraction of the size in [0, 0.5), got {v!r}")
            object.__setattr__(self, name, float(v))
        if not isinstance(self.keep_inside, (bool, np.bool_)):  # "no" and None turned it on (any truthy value)
            raise InvalidArgumentError(f"keep_inside is True or False, got {self.keep_inside!r}")
        object.__setattr__(self, "keep_inside", bool(self.keep_inside))
        g = self.tps_grid
        if isinstance(g, (bool, np.bool_)) or not isinstance(g, numbers.Integral) or not 2 <= g <= 16:
            raise InvalidArgumentError(f"tps_grid must be an integer in [2, 16], got {g!r}")
        object.__setattr__(self, "tps_grid", int(g))
        if self.elastic is not None:
            try:
                alpha, sigma = (float(v) for v in self.elastic)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"elastic must be (alpha, sigma), got {self.elastic!r}") from None
            from .records import Elastic

            Elastic(alpha, sigma, 0)  # the record's limits
            object.__setattr__(self, "elastic", (alpha, sigma))
        # the sampling options, checked once as a record would check them
        WarpSpec(theta=((1, 0, 0), (0, 1, 0)), mode=self.mode, padding=self.padding, fill=self.fill,
                 align_corners=self.align_corners)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "Augmenter":
        """An augmenter from a named preset (:data:`PRESETS`), with some options replaced. ``padding`` or ``fill``
        replaces both (as ``--padding`` or ``--fill`` does: the document presets' white fill goes with their
        constant padding); a ``fill`` without ``padding`` pads with that constant colour."""
        if name not in PRESETS:
            raise InvalidArgumentError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        base = dict(PRESETS[name])
        if "padding" in overrides or "fill" in overrides:  # (a fill alone: constant padding, as in the constructor)
            base.pop("padding", None), base.pop("fill", None)
        return cls(**{**base, **overrides})

    @property
    def is_identity(self) -> bool:
        """Whether every record this draws is the identity map (no range, flip, perspective, TPS or elastic field):
        at the input's own size every variant is the input."""
        return (self.rotate == (0.0, 0.0) and self.scale == (1.0, 1.0) and self.aspect == (1.0, 1.0)
                and self.shear == (0.0, 0.0) and self.shear_y == (0.0, 0.0) and self.translate == (0.0, 0.0)
                and self.hflip == 0.0 and self.vflip == 0.0 and self.perspective == 0.0 and self.tps == 0.0
                and self.elastic is None)

    def options(self) -> dict:
        """The options as keyword arguments (JSON-ready lists for ranges)."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    # ------------------------------------------------------------------ drawing

    def _draws(self, rng):
        u = rng.random(18)
        v = u.tolist()  # Python floats: the same values, and arithmetic on them is quicker than on NumPy scalars

        def lerp(rg, x):
            return rg[0] + (rg[1] - rg[0]) * x

        d = {name: lerp(getattr(self, name), v[i]) for i, name in enumerate(("rotate", "scale", "aspect", "shear",
                                                                            "shear_y"))}
        d["tx"], d["ty"] = lerp(self.translate, v[5]), lerp(self.translate, v[6])
        d["hflip"], d["vflip"] = v[7] < self.hflip, v[8] < self.vflip
        d["corners"] = (u[9:17].reshape(4, 2) * 2.0 - 1.0) * self.perspective if self.perspective > 0 else None
        d["elastic_seed"] = int(v[17] * float(1 << 53))
        d["tps"] = (rng.random((self.tps_grid * self.tps_grid, 2)) * 2.0 - 1.0) * self.tps if self.tps > 0 else None
        return d

    def _affine(self, d, in_hw, out_hw, t_factor=1.0, zoom=1.0):
        """``(l00, l01, l10, l11, b0, b1)``: the affine part ``Z · T(c_out + t) · R · Sh · S · F · S0 · T(-c_in)``
        of ``out_pix_from_in_pix`` (linear part ``L``, offset ``b``), in Python floats, each entry by the
        same few operations on every machine (no matrix products, whose rounding depends on BLAS)."""
        (hi, wi), (ho, wo) = in_hw, out_hw
        root = math.sqrt(d["aspect"])
        # S · F · S0, diagonal
        dx = d["scale"] * root * (-1.0 if d["hflip"] else 1.0) * (wo / wi)
        dy = d["scale"] / root * (-1.0 if d["vflip"] else 1.0) * (ho / hi)
        a = math.radians(d["rotate"])
        c, s = math.cos(a), math.sin(a)
        if float(d["rotate"]) % 90.0 == 0.0:  # exact quarter turns, as transforms.rotate
            c, s = round(c), round(s)
        tx, ty = math.tan(math.radians(d["shear"])), math.tan(math.radians(d["shear_y"]))
        # R · Sh · diag(dx, dy), R = [[c, s], [-s, c]], Sh = [[1, tx], [ty, 1]]
        l00, l01 = (c + s * ty) * dx, (c * tx + s) * dy
        l10, l11 = (c * ty - s) * dx, (c - s * tx) * dy
        cxi, cyi = (wi - 1) / 2.0, (hi - 1) / 2.0
        cxo, cyo = (wo - 1) / 2.0, (ho - 1) / 2.0
        b0 = cxo + t_factor * d["tx"] * wo - (l00 * cxi + l01 * cyi)
        b1 = cyo + t_factor * d["ty"] * ho - (l10 * cxi + l11 * cyi)
        if zoom != 1.0:  # about the output centre
            l00, l01, l10, l11 = zoom * l00, zoom * l01, zoom * l10, zoom * l11
            b0, b1 = zoom * (b0 - cxo) + cxo, zoom * (b1 - cyo) + cyo
        return l00, l01, l10, l11, b0, b1

    def _in_from_out(self, d, in_hw, out_hw, t_factor=1.0, zoom=1.0):
        """``in_pix_from_out_pix`` (3x3 nested tuples of Python floats) of one set of draws: the inverse of the
        affine part in closed form, after the inverse of the perspective (output extent -> its moved
        corners, :func:`_quad_from_square`), each entry by the same operations on every machine."""
        l00, l01, l10, l11, b0, b1 = self._affine(d, in_hw, out_hw, t_factor)
        v00, v01, v10, v11 = _inverse2(l00, l01, l10, l11)
        inv_affine = ((v00, v01, -(v00 * b0 + v01 * b1)), (v10, v11, -(v10 * b0 + v11 * b1)), (0.0, 0.0, 1.0))
        ho, wo = out_hw
        if self.perspective <= 0:
            back = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
        else:  # the moved corners back to the extent's: unit square from quad (adjugate), extent from unit square
            quad = [(x + float(dx) * wo, y + float(dy) * ho)
                    for (x, y), (dx, dy) in zip(((-0.5, -0.5), (wo - 0.5, -0.5), (wo - 0.5, ho - 0.5), (-0.5, ho - 0.5)),
                                                d["corners"].tolist())]
            back = _mul3(((wo, 0.0, -0.5), (0.0, ho, -0.5), (0.0, 0.0, 1.0)), _adjugate3(_quad_from_square(quad)))
        if zoom != 1.0:  # about the output centre
            cx, cy = (wo - 1) / 2.0, (ho - 1) / 2.0
            back = _mul3(back, ((1.0 / zoom, 0.0, cx - cx / zoom), (0.0, 1.0 / zoom, cy - cy / zoom), (0.0, 0.0, 1.0)))
        return _mul3(inv_affine, back)

    def _affine_theta(self, d, in_hw, out_hw, t_factor, zoom):
        """θ (2x3 tuple, ``in_norm_from_out_norm``) of an affine variant: ``N_in · m⁻¹ · P_out`` in closed form."""
        l00, l01, l10, l11, b0, b1 = self._affine(d, in_hw, out_hw, t_factor, zoom)
        ac = bool(self.align_corners)
        (hi, wi), (ho, wo) = in_hw, out_hw
        sxo, oxo = _axis_scale_offset(wo, ac)  # out pixel = s · norm + o
        syo, oyo = _axis_scale_offset(ho, ac)
        sxi, oxi = _axis_scale_offset(wi, ac)
        syi, oyi = _axis_scale_offset(hi, ac)
        v00, v01, v10, v11 = _inverse2(l00, l01, l10, l11)  # m⁻¹'s linear part
        px, py = oxo - b0, oyo - b1  # the output pixel of normalized (0, 0), less the offset

        def over(a, b):  # a / b, and 0 on an input axis with no extent (one pixel, align_corners), as coords does
            return a / b + 0.0 if b else 0.0  # (+ 0.0: no negative zeros in records)

        # input pixel = m⁻¹ · output pixel, output pixel = s_out · norm + o_out, input norm = (pixel - o_in) / s_in
        return ((v00 * over(sxo, sxi) + 0.0, v01 * over(syo, sxi) + 0.0, over(v00 * px + v01 * py - oxi, sxi)),
                (v10 * over(sxo, syi) + 0.0, v11 * over(syo, syi) + 0.0, over(v10 * px + v11 * py - oyi, syi)))

    def _tps_lattice(self, d, out_hw):
        """``(dst, moved)``: a TPS variant's lattice of output pixels and where its jitters move them. The record's
        spline sends ``moved`` to ``in_from_out(dst)``."""
        dst = _lattice(out_hw, self.tps_grid)
        ho, wo = out_hw
        return dst, dst + d["tps"] * [wo, ho]

    def _spec(self, d, in_hw, out_hw, t_factor=1.0, zoom=1.0):
        opts = dict(mode=self.mode, padding=self.padding, fill=self.fill, align_corners=self.align_corners,
                    out_hw=out_hw)
        elastic = None if self.elastic is None else Elastic(self.elastic[0], self.elastic[1], d["elastic_seed"])
        if d["tps"] is None and self.perspective <= 0:
            return WarpSpec(theta=self._affine_theta(d, in_hw, out_hw, t_factor, zoom), elastic=elastic, **opts)
        import numpy as np

        from . import transforms as tf

        if d["tps"] is not None:
            dst, moved = self._tps_lattice(d, out_hw)
            src = tf.apply_matrix(np.array(self._in_from_out(d, in_hw, out_hw, t_factor, zoom)), dst)
            return WarpSpec(tps=TpsPoints(src.tolist(), moved.tolist()), elastic=elastic, **opts)
        # θ = in_norm_from_out_norm = N_in · in_from_out · P_out, scaled to θ[2][2] = 1
        ac = bool(self.align_corners)
        theta = _mul3(_mul3(_norm_from_pixel(in_hw, ac).tolist(), self._in_from_out(d, in_hw, out_hw, t_factor, zoom)),
                      _pixel_from_norm(out_hw, ac).tolist())
        last = theta[2][2]
        return WarpSpec(theta=tuple(tuple(v / last + 0.0 for v in row) for row in theta), elastic=elastic, **opts)

    def sample(self, rng, in_hw, out_hw=None):
        """One :class:`~stntool.records.WarpSpec` for an input of ``in_hw`` (output ``out_hw``, default the same).

        ``rng`` is a ``numpy.random.Generator``; only ``rng.random`` is called (see the module docstring).
        """
        if not callable(getattr(rng, "random", None)):
            raise InvalidArgumentError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), got "
                                       f"{type(rng).__name__}")
        in_hw = as_hw(in_hw)
        out_hw = in_hw if out_hw is None else as_hw(out_hw)
        d = self._draws(rng)
        if self.elastic is not None and d["corners"] is not None and d["tps"] is None:
            self._clear_lattice(d, in_hw, out_hw)
        if not self.keep_inside:
            return self._spec(d, in_hw, out_hw)
        return self._inside(d, in_hw, out_hw)

    def _clear_lattice(self, d, in_hw, out_hw):
        """Scale a perspective draw's corner jitters down (halved, up to eight times, then none) until its horizon
        keeps clear of the elastic field's lattice, which reaches half a sigma beyond the output
        (:func:`stntool.maps.horizon_clear_of_lattice`; the record could not be warped). Draws that keep clear,
        all of them at the sizes of the presets, are left as they are; a zoom (``keep_inside``) only moves the
        horizon farther out."""
        from . import maps

        corners = d["corners"]
        for k in range(9):
            d["corners"] = corners * 0.5 ** k
            if maps.horizon_clear_of_lattice(self._spec(d, in_hw, out_hw), in_hw):
                return
        d["corners"] = corners * 0.0

    def _inside(self, d, in_hw, out_hw):
        """The smallest zoom (>= 1) about the output centre with which every output pixel centre reads a point
        within the input's pixel centres (so bilinear sampling never reads padding); when no zoom up to 16x
        does, the translation is pulled back (halved, quartered, then dropped). Else the draws as they are.

        The check reads the output's corners for affine and projective draws (their maps are straight) and every
        border pixel for splines and fields. A spline's record sends its moved lattice to the lattice's sources
        under the rest of the map, and a spline is linear in the values it interpolates, so the points it reads
        are one matrix (:meth:`~stntool.tps.ThinPlateSpline.basis`) times those sources: the matrix is made once
        and each zoom tried costs a product. Within the output the spline can read beyond what its border reads
        only where it folds (the image of a region's inside lies within the image of its outline wherever the
        map is one to one): the pixels of folds (:func:`_fold_pixels`) are checked too. A field can fold anywhere:
        the zoom its border allows is checked by warping a white image (:func:`_shows_no_padding`), and raised
        until no padding shows where that is not enough. A field's reads need not clear steadily as the zoom
        grows (one can show padding at 1, 12 and 16 and none from 2.5 to 9), so its searches try zooms 1.25x
        apart for the first that clears, then bisect below it. With a perspective the record's spline is not
        the spline under it: the fold pixels kept are the hull corners of the record's spline at zooms 1, 4 and
        16 and translations 1 and 0 as well, which can miss a corner of a zoom between them."""
        import numpy as np

        from . import maps
        from . import transforms as tf

        # splines and fields bend between points: every pixel centre of the outline, not points between them
        edge = _border_pixels(out_hw) if (self.tps > 0 or self.elastic is not None) else _centre_corners(out_hw)
        hi, wi = in_hw
        # TPS kernels read their spline within 0.01 px, elastic ones their field through a lattice likewise
        margin = 0.01 if (self.tps > 0 or self.elastic is not None) else -1e-9
        # bicubic reads a pixel beyond its cell: a pixel's margin more, where the input has room for one
        frame = 1 if self.mode == "bicubic" and min(in_hw) >= 4 else 0
        margin += frame
        disp = basis = None
        if self.elastic is not None:  # the field does not depend on the zoom: evaluate it once
            base = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), elastic=self._spec(d, in_hw, out_hw).elastic,
                            out_hw=out_hw, align_corners=self.align_corners)
            disp = maps.in_from_out(base, edge, out_hw) - edge
        if d["tps"] is not None:
            from .tps import ThinPlateSpline

            dst, moved = self._tps_lattice(d, out_hw)
            unfold = ThinPlateSpline(moved, dst)  # the record's spline is the rest of the map after this one
            values = []  # with a perspective, the record's spline is not this one under it: its hull corners too
            if self.perspective > 0:
                values = [tf.apply_matrix(np.array(self._in_from_out(d, in_hw, out_hw, t, z)), dst)
                          for t in (1.0, 0.0) for z in (1.0, 4.0, 16.0)]
            points = edge if disp is not None else np.concatenate([edge, _fold_pixels(unfold, out_hw, values)])
            basis = unfold.basis(points)

        def inside(t_factor, zoom):
            if basis is None and disp is None:  # four corners: as the record reads them
                p = maps.in_from_out(self._spec(d, in_hw, out_hw, t_factor, zoom), edge, in_hw)
            else:  # the record's map in pixels (a field's check is settled by a warp below)
                m = np.array(self._in_from_out(d, in_hw, out_hw, t_factor, zoom))
                p = tf.apply_matrix(m, edge) if basis is None else basis @ tf.apply_matrix(m, dst)
            if disp is not None:
                p = p + disp
            return bool(np.all(np.isfinite(p)) and np.all(p >= margin) and np.all(p[:, 0] <= wi - 1 - margin)
                        and np.all(p[:, 1] <= hi - 1 - margin))

        def clear(t_factor, zoom):  # a field can fold: its record warps a white image with no padding showing
            return disp is None or _shows_no_padding(self._spec(d, in_hw, out_hw, t_factor, zoom), in_hw, frame)

        def least(check, t_factor, start, steps):
            """The least zoom above ``start`` (where ``check`` fails) up to 16 where ``check(t_factor, zoom)``
            holds, bisected to 30 halvings; None where none does. ``steps``: the check need not hold steadily as
            the zoom grows (a field's), so zooms 1.25x apart are tried for the first that holds, else 16 alone."""
            lo = hi_z = start
            if steps:
                while hi_z < 16.0:
                    lo, hi_z = hi_z, min(16.0, 1.25 * hi_z)
                    if check(t_factor, hi_z):
                        break
                else:
                    return None
            else:
                hi_z = 16.0
                if not check(t_factor, hi_z):
                    return None
            for _ in range(30):
                mid = 0.5 * (lo + hi_z)
                lo, hi_z = (lo, mid) if check(t_factor, mid) else (mid, hi_z)
            return hi_z

        def settle(t_factor, zoom):  # the least zoom from ``zoom`` up that the whole output reads clear at
            if not clear(t_factor, zoom):
                zoom = least(clear, t_factor, zoom, steps=True)
            return None if zoom is None else self._spec(d, in_hw, out_hw, t_factor, zoom)

        affine = self.tps <= 0 and self.elastic is None and self.perspective <= 0
        for t_factor in (1.0, 0.5, 0.25, 0.0):
            if affine:  # the least zoom in closed form, checked as the search below would check it
                zoom = self._least_zoom(d, in_hw, out_hw, t_factor, margin)
                if zoom is None:
                    continue
                if inside(t_factor, zoom):
                    return self._spec(d, in_hw, out_hw, t_factor, zoom)
            zoom = 1.0 if inside(t_factor, 1.0) else least(inside, t_factor, 1.0, steps=disp is not None)
            if zoom is None:
                continue
            spec = settle(t_factor, zoom)
            if spec is not None:
                return spec
        return self._spec(d, in_hw, out_hw)

    def _least_zoom(self, d, in_hw, out_hw, t_factor, margin, most=16.0):
        """The least zoom ``z`` in ``[1, most]`` with which an affine variant's four corner pixel centres (so all
        of them) read input points within ``margin .. size - 1 - margin``; None when there is none.

        With the zoom about the output centre ``c``, corner ``q`` reads ``P + V / z``, ``P = m⁻¹(c)`` and
        ``V = L⁻¹ (q - c)``: each bound gives ``z >= V / (bound - P)`` when ``V`` points at it."""
        l00, l01, l10, l11, b0, b1 = self._affine(d, in_hw, out_hw, t_factor)
        v00, v01, v10, v11 = _inverse2(l00, l01, l10, l11)
        (hi, wi), (ho, wo) = in_hw, out_hw
        cx, cy = (wo - 1) / 2.0, (ho - 1) / 2.0
        px, py = v00 * (cx - b0) + v01 * (cy - b1), v10 * (cx - b0) + v11 * (cy - b1)
        zoom = 1.0
        for p, size, row in ((px, wi, (v00, v01)), (py, hi, (v10, v11))):
            lo, top = margin, size - 1 - margin
            if not lo <= p <= top:
                return None
            for qx, qy in ((-cx, -cy), (cx, -cy), (cx, cy), (-cx, cy)):
                v = row[0] * qx + row[1] * qy
                room = top - p if v > 0 else lo - p
                if v != 0:
                    if room == 0:
                        return None
                    zoom = max(zoom, v / room)
        return zoom if zoom <= most else None

    # ------------------------------------------------------------------ applying

    def __call__(self, img, rng, out_hw=None, keypoints=None, boxes=None, mask=None, labels=None,
                 min_visibility: float = 0.0, backend: str = "auto") -> Augmented:
        """Draw one record for ``img`` and apply it (:func:`stntool.records.apply_spec`).

        Labels move with the pixels: ``keypoints (K, 2)`` and ``boxes (B, 4)`` in pixel coordinates
        (or a :class:`stntool.labels.Labels` as ``labels``), and a ``mask`` (warped with nearest
        sampling and fill 0); see :mod:`stntool.labels`.
        """
        from .records import apply_spec

        if getattr(img, "ndim", None) not in (2, 3):
            raise InvalidArgumentError(f"an Augmenter call takes one image (H, W) or (H, W, C), got shape "
                                       f"{getattr(img, 'shape', None)}; use .batch(images, rng) for (N, H, W, C)")
        spec = self.sample(rng, img.shape[:2], out_hw)
        res = Augmented(apply_spec(img, spec, backend), spec)
        _move_labels(res, spec, img.shape[:2], keypoints, boxes, mask, labels, min_visibility, backend)
        return res

    def batch(self, images, rng, out_hw=None, backend: str = "auto"):
        """Draw one record per image of ``images`` ``(N, H, W[, C])`` and warp them all; returns ``(out, specs)``.

        Affine records are warped in one fused kernel call (per-image θ), projective ones in another;
        splines and elastic records one by one. Each output is identical to ``apply_spec(image, spec)``.
        """
        import numpy as np

        from . import api
        from .records import _unsigned_max, apply_spec, fill_values

        try:
            images = np.asarray(images)
        except ValueError:  # a list of images of different sizes
            raise InvalidArgumentError("batch takes images of one size (N, H, W[, C]); warp others one by one") \
                from None
        if images.ndim not in (3, 4) or len(images) == 0:
            raise InvalidArgumentError(f"batch takes images (N, H, W) or (N, H, W, C), got shape {images.shape}")
        if not images.dtype.isnative:  # outputs in native order, whichever kernel warps each image
            images = images.astype(images.dtype.newbyteorder("="))
        in_hw = images.shape[1:3]
        specs = [self.sample(rng, in_hw, out_hw) for _ in range(len(images))]
        o_hw = specs[0].out_hw
        # the kernels see (N, H, W, C); a gray batch (N, H, W) is viewed with one channel
        batch4 = images if images.ndim == 4 else images[..., None]
        c = batch4.shape[3]
        out4 = None
        groups = {2: [], 3: []}
        alone = []  # records warped one by one: splines, elastic fields, alpha channels
        for i, s in enumerate(specs):
            if s.theta is not None and s.elastic is None and c not in (2, 4):
                groups[len(s.theta)].append(i)
            else:
                alone.append(i)
        is_int = images.dtype.kind == "u"
        maxv = _unsigned_max(images.dtype) if is_int else 0.0
        fill = fill_values(specs[0].fill, c, maxv) if self.padding == "constant" else None  # the records' form
        for rows, idx in groups.items():
            theta = np.array([specs[i].theta for i in idx])
            if rows == 3 and idx:  # a horizon through pixel centres samples the grid path (see stntool.warp)
                fused = np.array([not api._horizon_on_pixels(t[None], o_hw, self.align_corners) for t in theta])
                alone += [i for i, f in zip(idx, fused) if not f]  # those one by one
                idx, theta = [i for i, f in zip(idx, fused) if f], theta[fused]
            if not idx:
                continue
            every = len(idx) == len(images)  # one fused call for the whole batch: its result is the output
            warped = api.warp(batch4 if every else batch4[idx], theta, out_hw=o_hw, mode=self.mode,
                              padding=self.padding, align_corners=self.align_corners, fill=fill, backend=backend)
            if every:
                out4 = warped
            else:
                if out4 is None:
                    out4 = np.empty((len(images),) + tuple(o_hw) + (c,), images.dtype)
                out4[idx] = warped
        if out4 is None:
            out4 = np.empty((len(images),) + tuple(o_hw) + (c,), images.dtype)
        for i in sorted(alone):
            out4[i] = apply_spec(batch4[i], specs[i], backend)
        out = out4 if images.ndim == 4 else out4[..., 0]
        return out, specs


def _move_labels(res, spec, in_hw, keypoints, boxes, mask, labels, min_visibility, backend):
    if keypoints is None and boxes is None and mask is None and labels is None:
        return
    from . import labels as lb

    if keypoints is not None or boxes is not None:
        if labels is not None:
            raise InvalidArgumentError("give labels, or keypoints and boxes, not both")
        labels = lb.Labels(keypoints=() if keypoints is None else keypoints, boxes=() if boxes is None else boxes)
    if labels is not None:
        moved, info = lb.transform_labels(labels, spec, in_hw, min_visibility=min_visibility)
        res.labels, res.info = moved, info.to_record()
        res.keypoints, res.boxes = moved.keypoints, moved.boxes
    if mask is not None:
        lb.check_mask(mask, in_hw)
        res.mask = lb.warp_mask(mask, spec, backend)


def _inverse2(l00, l01, l10, l11):
    """The inverse of the 2x2 ``[[l00, l01], [l10, l11]]`` (an affine variant's linear part, whose determinant
    is positive: positive scales, shears that keep ``1 - tan(shear) tan(shear_y)`` at least
    :data:`_MIN_SHEAR_AREA`), entry by entry: its adjugate over its determinant."""
    det = l00 * l11 - l01 * l10
    return l11 / det, -l01 / det, -l10 / det, l00 / det


def _mul3(a, b):
    """``a @ b`` of two 3x3 nested sequences of Python floats, as nested tuples (sums in index order)."""
    return tuple(tuple(a[r][0] * b[0][c] + a[r][1] * b[1][c] + a[r][2] * b[2][c] for c in range(3)) for r in range(3))


def _adjugate3(m):
    """The adjugate of a 3x3 (its inverse times its determinant: the same projective map's inverse)."""
    (a, b, c), (d, e, f), (g, h, i) = m
    return ((e * i - f * h, c * h - b * i, b * f - c * e),
            (f * g - d * i, a * i - c * g, c * d - a * f),
            (d * h - e * g, b * g - a * h, a * e - b * d))


def _quad_from_square(quad):
    """The projective map (3x3) taking the unit square's corners (0, 0), (1, 0), (1, 1), (0, 1) to ``quad``'s
    four ``(x, y)`` in that order, in closed form (Heckbert's). Raises :class:`stntool.errors.DegenerateError`
    when three of the corners are collinear."""
    from .errors import DegenerateError

    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    g = (sx * dy2 - dx2 * sy) / den if den else math.inf
    h = (dx1 * sy - sx * dy1) / den if den else math.inf
    m = ((x1 - x0 + g * x1, x3 - x0 + h * x3, x0), (y1 - y0 + g * y1, y3 - y0 + h * y3, y0), (g, h, 1.0))
    ok = all(math.isfinite(v) for row in m for v in row)
    det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) \
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    if not ok or not abs(det) > 1e-12 * max(1.0, max(abs(v) for row in m for v in row if math.isfinite(v))) ** 2:
        raise DegenerateError("the moved corners do not determine a projective map (three of them collinear)")
    return m


def _centre_corners(hw):
    import numpy as np

    h, w = hw
    return np.array([[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]])


def _extent_corners(hw):
    import numpy as np

    h, w = hw
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


def _border_pixels(hw):
    """The pixel centres of the output's outermost rows and columns, each once."""
    import numpy as np

    h, w = hw
    if h <= 2 or w <= 2:  # every pixel is on the border
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], -1)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(1, h - 1, dtype=np.float64)
    return np.concatenate([np.stack([xs, np.zeros(w)], -1), np.stack([xs, np.full(w, h - 1.0)], -1),
                           np.stack([np.zeros(h - 2), ys], -1), np.stack([np.full(h - 2, w - 1.0), ys], -1)])


def _shows_no_padding(spec, in_hw, frame: int = 0) -> bool:
    """Whether ``spec`` warps a white float32 image of ``in_hw`` (bilinear, zeros padding) to exactly white: no
    output pixel gives padding any weight (float32 bilinear interpolates as ``a + (b - a) t``, exactly 1 between
    white pixels). ``frame``: pixels at the image's edges made black first, so that every bilinear read stays
    that far inside (1: bicubic's taps, a pixel beyond a bilinear cell's, stay in the image)."""
    import numpy as np

    from .records import apply_spec

    plain = spec.replace(mode="bilinear", padding="zeros", fill=None)
    white = np.ones(tuple(in_hw), np.float32)
    if frame:
        white[:frame] = white[-frame:] = 0.0
        white[:, :frame] = white[:, -frame:] = 0.0
    # the CPU kernels on every machine (the CUDA ones sum the weights, which need not give exactly 1)
    return bool((apply_spec(white, plain, "cpu") == 1.0).all())


#: Pixels whose points a fold check evaluates at a time (each costs a row of radial terms per control point).
_FOLD_CHUNK = 4096


def _fold_pixels(spline, hw, values=()):
    """The output pixels, ``(M, 2)`` ``(x, y)``, where ``spline`` may fold (turn the output over) and read beyond
    what its border reads: those of the cells of a lattice (about four per spline cell, at most 64 a side) whose
    corners it turns over or squeezes to a tenth of their area, and of their neighbours, and of the two rings
    just inside the border (a fold can be narrower than a cell there); of them, the ones whose points are corners
    of the points' convex hull (the rest can read no farther in any direction). None: an empty array. ``values``:
    other sets of values at the spline's centres (the record's sources under a perspective, at a few zooms and
    translations), whose splines' hull corners are kept too."""
    import cv2
    import numpy as np

    h, w = hw
    n = min(65, max(9, 4 * (int(round(math.sqrt(len(spline.centres)))) - 1) + 1))
    ny, nx = min(n, h), min(n, w)
    ys, xs = np.linspace(0.0, h - 1.0, ny), np.linspace(0.0, w - 1.0, nx)
    if ny < 2 or nx < 2:
        return np.zeros((0, 2))
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    g = spline(np.stack([gx, gy], -1))
    a, b, c, e = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]

    def turn(o, p, q):  # the cross product (p - o) x (q - o): positive where the cell keeps its orientation
        return (p[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (p[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])

    squeezed = 0.1 * (ys[1] - ys[0]) * (xs[1] - xs[0])
    over = (turn(a, b, c) <= squeezed) | (turn(e, c, b) <= squeezed)
    rings = [_border_pixels((h - 2 * k, w - 2 * k)) + k for k in (1, 2) if 2 * k < min(h, w)]
    pixels = np.concatenate([np.zeros((0, 2))] + rings)
    if over.any():
        grown = over.copy()  # and the neighbouring cells: a fold's edge can pass just outside the cells it turns
        grown[1:] |= over[:-1]
        grown[:-1] |= over[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        mask = np.zeros((h, w), bool)
        for i, j in zip(*np.nonzero(grown)):
            mask[int(ys[i]):int(math.ceil(ys[i + 1])) + 1, int(xs[j]):int(math.ceil(xs[j + 1])) + 1] = True
        py, px = np.nonzero(mask)
        pixels = np.concatenate([pixels, np.stack([px, py], -1).astype(np.float64)])

    def hull_corners(points, read):  # the points whose reads are corners of the reads' convex hull
        hull = cv2.convexHull(read.astype(np.float32).reshape(-1, 1, 2), returnPoints=False)
        return points[hull.ravel()]

    def chunk_corners(points):  # each chunk's hull corners, for the spline and each of ``values``
        corners = []
        for k in range(0, len(points), _FOLD_CHUNK):
            part = points[k:k + _FOLD_CHUNK]
            corners.append(hull_corners(part, spline(part)))
            if values:
                basis = spline.basis(part)
                corners += [hull_corners(part, basis @ v) for v in values]
        return np.unique(np.concatenate(corners), axis=0) if corners else np.zeros((0, 2))

    corners = chunk_corners(pixels)
    while len(corners) > _FOLD_CHUNK:  # the hull corners of the chunks' hull corners, chunk by chunk again
        fewer = chunk_corners(corners)
        if len(fewer) == len(corners):
            break
        corners = fewer
    return chunk_corners(corners)


def _lattice(hw, k: int):
    """``k x k`` output pixel points from corner pixel centre to corner pixel centre, row by row."""
    import numpy as np

    h, w = hw
    ys, xs = np.meshgrid(np.linspace(0.0, h - 1.0, k), np.linspace(0.0, w - 1.0, k), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], -1)
