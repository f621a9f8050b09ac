"""Typed warp records: the per-image parameters that cross the manifest boundary.

A :class:`WarpSpec` says how one output image is made from one input image: a θ (2x3 affine or
3x3 projective, ``in_norm_from_out_norm`` as PyTorch's ``affine_grid``) or a thin-plate spline
(:class:`TpsPoints`), the sampling options, and the input and output sizes. It is the contract
between commands: ``warp``, ``augment`` and ``rectify`` write it as one JSON line of a manifest
(:meth:`WarpSpec.to_record`), and ``warp --params`` reads it back (:meth:`WarpSpec.from_record`)
to reproduce the outputs bit for bit. :func:`apply_spec` applies a record to an image.

Manifest line schema (``SCHEMA_VERSION`` = 2), the keys :meth:`WarpSpec.to_record` writes, in order::

    in_size      [W, H] of the input (present once the input was read and warped)
    size         [W, H] of the output, or null when not known yet
    theta        [[a, b, c], [d, e, f]] or 3 rows (projective)    | exactly one of the two
    tps          {"src", "dst", "normalized", "regularization"}   |
    elastic      {"alpha", "sigma", "seed"}: a random displacement added to the map above
                 (only when present; see :mod:`stntool.maps`)
    mode         "bilinear" | "nearest" | "bicubic"
    padding      "zeros" | "border" | "reflection" | "constant"
    align_corners  true | false
    fill         "#rrggbb[aa]" or [v, ...] in the image's channel order and range (padding "constant" only)
    name         output file name relative to the output folder (only when the writer chose one)
    version      stntool version that wrote the line
    schema       this layout's version: 1, or 2 for a line with ``elastic`` (which older readers
                 must refuse rather than replay without it); lines without it come from stntool 0.1
                 and read the same, except that a list ``fill`` there may also have been a colour
                 (kept as values)

Without ``in_size``, ``size`` follows ``theta``/``tps`` (the order of lines for inputs that failed).
Everything here is NumPy-free at import; errors are :class:`stntool.errors.InvalidArgumentError`.

Example
-------
>>> import numpy as np
>>> from stntool.records import WarpSpec, apply_spec
>>> spec = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)))                # mirror left-right
>>> img = np.arange(12, dtype=np.uint8).reshape(3, 4)
>>> bool(np.array_equal(apply_spec(img, spec, backend="numpy"), img[:, ::-1]))
True
>>> WarpSpec.from_record(spec.to_record()) == spec
True
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
import re
from dataclasses import dataclass

from ._version import __version__
from .coords import finite_number as _finite
from .errors import InvalidArgumentError

#: Version of the manifest line layout written by :meth:`WarpSpec.to_record` (2 only for lines with ``elastic``).
SCHEMA_VERSION = 2
MODES = ("bilinear", "nearest", "bicubic")
PADDINGS = ("zeros", "border", "reflection", "constant")

_HEX = re.compile(r"#?[0-9a-f]{6}([0-9a-f]{2})?")


def parse_numbers(text: str, what: str, counts=None) -> list:
    """Comma/space separated finite floats from ``text``; ``counts`` lists the allowed lengths.

    Raises :class:`InvalidArgumentError` naming ``what`` and the bad value.
    """
    parts = re.split(r"\s*,\s*|\s+", text.strip()) if text.strip() else []
    while parts and not parts[-1]:  # a trailing comma
        parts.pop()
    values = []
    for i, p in enumerate(parts, 1):
        if not p:
            raise InvalidArgumentError(f"{what}: value {i} is empty")
        try:
            if "_" in p:  # Python reads 1_0 as 10; a typo here should not be a number
                raise ValueError(p)
            v = float(p)
        except ValueError:
            raise InvalidArgumentError(f"{what}: value {i} ({p!r}) is not a number") from None
        if math.isnan(v):
            raise InvalidArgumentError(f"{what}: value {i} is NaN")
        if math.isinf(v):
            raise InvalidArgumentError(f"{what}: value {i} ({p!r}) is infinite or overflows")
        values.append(v)
    if counts is not None and len(values) not in counts:
        if not values:
            raise InvalidArgumentError(f"{what}: is empty (an unset shell variable?)")
        want = " or ".join(str(c) for c in counts)
        raise InvalidArgumentError(f"{what}: expected {want} number{'s' * (want != '1')}, got {len(values)}")
    return values


def parse_matrix(text: str, what: str) -> list:
    """The 6 or 9 numbers of a 2x3 or 3x3 matrix, row by row: :func:`parse_numbers`' flat list, or rows in
    brackets as Python, JSON and NumPy print them (``[[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]``, ``[[0.9 -0.25
    0.05]\n [0.25 0.9 0.]]``), each row of 3. Raises :class:`InvalidArgumentError` naming ``what``."""
    t = text.strip()
    if "[" not in t and "]" not in t:
        return parse_numbers(t, what, (6, 9))
    # [ row (,) row ... ]: one way to read each separator, so a string that does not match fails at once
    outer = re.fullmatch(r"\[\s*((?:\[[^\[\]]*\](?:\s*,)?\s*)+)\]", t)
    if outer is None:
        raise InvalidArgumentError(f"{what}: expected numbers, or rows in brackets like [[a, b, c], [d, e, f]]")
    rows = re.findall(r"\[([^\[\]]*)\]", outer.group(1))
    if len(rows) not in (2, 3):
        raise InvalidArgumentError(f"{what}: expected 2 or 3 rows, got {len(rows)}")
    return [v for k, row in enumerate(rows, 1) for v in parse_numbers(row, f"{what} row {k}", (3,))]


def parse_fill(text: str):
    """A fill colour from text: ``'#RRGGBB[AA]'`` (8-bit scale, kept as a lower-case string) or numbers.

    Numbers (``'255'``, ``'0,0,255'``) are in the image's own channel order and range and come
    back as a tuple of floats. Raises :class:`InvalidArgumentError`.

    >>> parse_fill('#FF000080'), parse_fill('0, 0, 255')
    ('#ff000080', (0.0, 0.0, 255.0))
    """
    v = text.strip().lower()
    if _HEX.fullmatch(v) and (v.startswith("#") or not v.isdigit()):
        return "#" + v.lstrip("#")
    if v.startswith("#"):  # '#ff', '#fff', '#gg0000': not numbers either
        raise InvalidArgumentError(f"--fill {text.strip()}: a colour is written '#RRGGBB' or '#RRGGBBAA' (six or "
                                   "eight hexadecimal digits)")
    if v.isdigit() and len(v) in (6, 8) and v.startswith("0"):  # 009900 is not the number 9900
        raise InvalidArgumentError(f"--fill {text.strip()}: a colour is written '#{v}' (a number, without its "
                                   "leading zeros)")
    values = tuple(parse_numbers(text, "--fill"))
    if not values:
        raise InvalidArgumentError(f"--fill {text.strip()!r}: give a colour ('#RRGGBB') or one or more numbers")
    return values


def _check_fill(fill):
    if fill is None:
        return None
    if isinstance(fill, str):
        v = fill.strip().lower()
        if not (_HEX.fullmatch(v) and v.startswith("#")):
            raise InvalidArgumentError(f"fill colour must look like '#RRGGBB' or '#RRGGBBAA', got {fill!r}")
        return v
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        fill = (fill,)
    try:
        vals = tuple(_finite(x, "fill") for x in fill)
    except TypeError:
        raise InvalidArgumentError(f"fill must be a colour string or numbers, got {fill!r}") from None
    if not vals:
        raise InvalidArgumentError("fill needs at least one value")
    return vals


def fill_values(fill, channels: int, maxv: float):
    """Per-channel fill values for an image with ``channels`` channels and integer maximum ``maxv``.

    ``fill`` is what :func:`parse_fill` returns. A colour (RGB(A), 0-255) is converted to the image's
    layout (gray: luma; gray+alpha; BGR; BGRA) and range (``maxv / 255``; ``maxv = 0`` for float
    images means the range 0-1). Numbers are returned as given; for an integer image they must lie in its
    range (:class:`InvalidArgumentError` otherwise: ``--fill 990000`` meant as a colour would come out white).
    ``None`` gives ``None``.
    """
    if fill is None:
        return None
    if not isinstance(fill, str):
        vals = list(fill)
        for v in vals:
            if maxv and not 0.0 <= v <= maxv:
                hint = f"; a colour is written '#{int(v)}'" if v == int(v) and len(str(int(v))) in (6, 8) else ""
                raise InvalidArgumentError(f"fill {v:.15g} lies outside the range of the image's samples "
                                           f"(0-{maxv:g}){hint}")
        return vals
    h = fill.lstrip("#")
    vals = [int(h[i:i + 2], 16) for i in range(0, len(h), 2)]
    scale = (maxv / 255.0) if maxv else (1.0 / 255.0)
    r, g, b = vals[:3]
    a = vals[3] if len(vals) == 4 else 255
    if channels == 1:
        return [(0.299 * r + 0.587 * g + 0.114 * b) * scale]
    if channels == 2:
        return [(0.299 * r + 0.587 * g + 0.114 * b) * scale, a * scale]
    if channels == 3:
        return [b * scale, g * scale, r * scale]
    return [b * scale, g * scale, r * scale, a * scale]




def _float_rows(theta) -> bool:
    """Whether ``theta`` is already what validation makes of it: 2 or 3 tuples of 3 finite floats."""
    return (type(theta) is tuple and 2 <= len(theta) <= 3
            and all(type(r) is tuple and len(r) == 3 and all(type(x) is float and x - x == 0.0 for x in r)
                    for r in theta))


def _hw(value, what):
    if value is None:
        return None
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 1 <= value[0] <= _MAX_SIDE and 1 <= value[1] <= _MAX_SIDE:
        return value  # already validated
    try:
        h, w = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be (H, W), got {value!r}") from None
    if not all(_is_int(v) for v in (h, w)):
        raise InvalidArgumentError(f"{what} must be (H, W) in whole pixels, got {value!r}")
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise InvalidArgumentError(f"{what} must be positive, got {h}x{w} (HxW)")
    if h > _MAX_SIDE or w > _MAX_SIDE:
        shown = "x".join(str(v) if v < 10 ** 12 else f"({len(str(v))} digits)" for v in (h, w))
        raise InvalidArgumentError(f"{what} must be at most {_MAX_SIDE} pixels a side, got {shown} (HxW)")
    return h, w


#: The longest side an image may have (what OpenCV and image files store: a 32-bit signed size).
_MAX_SIDE = (1 << 31) - 1


def _is_int(v) -> bool:
    """A whole number given as an integer (Python or NumPy), never a bool or a float."""
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _wh_from_record(value, key):
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise InvalidArgumentError(f'"{key}" must be [width, height] in pixels, got {value!r}')
    return _hw((value[1], value[0]), key)


@dataclass(frozen=True)
class TpsPoints:
    """Thin-plate spline control points: input points ``src`` land on output points ``dst``.

    ``src`` and ``dst`` are tuples of ``(x, y)``, in pixels (pixel centres at integers) or in
    normalized [-1, 1] coordinates when ``normalized``; ``regularization`` is Bookstein's λ. The
    spline is solved in the frame of the points (see :func:`stntool.warp_tps`).
    """

    src: tuple
    dst: tuple
    normalized: bool = False
    regularization: float = 0.0

    def __post_init__(self):
        pts = {}
        for key in ("src", "dst"):
            v = getattr(self, key)
            try:
                rows = [tuple(p) for p in v]
            except TypeError:
                raise InvalidArgumentError(f'"{key}" must be a list of [x, y] pairs') from None
            if not all(len(p) == 2 for p in rows):
                raise InvalidArgumentError(f'"{key}" must be a list of [x, y] pairs')
            pts[key] = tuple((_finite(a, f'"{key}"'), _finite(b, f'"{key}"')) for a, b in rows)
        if len(pts["src"]) != len(pts["dst"]):
            raise InvalidArgumentError(f'"src" has {len(pts["src"])} points but "dst" has {len(pts["dst"])}')
        if len(pts["src"]) < 3:
            raise InvalidArgumentError("a thin-plate spline needs at least 3 point pairs")
        reg = _finite(self.regularization, '"regularization"')
        if not reg >= 0:
            raise InvalidArgumentError('"regularization" must be a finite number >= 0')
        object.__setattr__(self, "src", pts["src"])
        object.__setattr__(self, "dst", pts["dst"])
        if not isinstance(self.normalized, bool):
            raise InvalidArgumentError(f'"normalized" must be true or false, got {self.normalized!r}')
        object.__setattr__(self, "regularization", float(reg))

    def to_record(self) -> dict:
        return {"src": [list(p) for p in self.src], "dst": [list(p) for p in self.dst],
                "normalized": self.normalized, "regularization": self.regularization}

    def spline(self):
        """The :func:`stntool.grids.make_tps` spline of the points, in their own frame (the same whatever the
        image); :class:`~stntool.errors.DegenerateError` for points that determine none."""
        import numpy as np

        from .grids import make_tps

        return make_tps(np.array(self.src, dtype=np.float64), np.array(self.dst, dtype=np.float64),
                        self.regularization)

    @classmethod
    def load(cls, path) -> "TpsPoints":
        """Points from a JSON file (the ``--tps`` format); :class:`InvalidArgumentError` when unreadable or bad."""
        import json

        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            raise InvalidArgumentError(f"cannot read {path}: {e.strerror}") from None
        except ValueError as e:
            raise InvalidArgumentError(f"{path} is not JSON: {e}") from None
        except RecursionError:
            raise InvalidArgumentError(f"{path} is not JSON: nested too deeply") from None
        try:
            return cls.from_record(doc)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{path}: {e}") from None

    @classmethod
    def from_record(cls, doc) -> "TpsPoints":
        """From ``{"src": [[x, y], ...], "dst": [...], "normalized": false, "regularization": 0.0}``."""
        if not isinstance(doc, dict) or "src" not in doc or "dst" not in doc:
            raise InvalidArgumentError('expected an object {"src": [[x, y], ...], "dst": [[x, y], ...]}')
        unknown = sorted(set(doc) - {"src", "dst", "normalized", "regularization"})
        if unknown:  # a misspelt "normalized" would otherwise be ignored
            raise InvalidArgumentError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                                       "(expected src, dst, normalized, regularization)")
        for key in ("src", "dst"):
            v = doc[key]
            if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 for p in v):
                raise InvalidArgumentError(f'"{key}" must be a list of [x, y] pairs')
        return cls(doc["src"], doc["dst"], doc.get("normalized", False), doc.get("regularization", 0.0))


@dataclass(frozen=True)
class Elastic:
    """A smooth random displacement field (see :mod:`stntool.maps`), added to a record's θ or spline.

    ``alpha`` scales it (pixels), ``sigma`` is its Gaussian smoothing in pixels (> 0), as in
    Albumentations' ``ElasticTransform``; ``seed`` (an integer in [0, 2**53), exact in JSON) draws
    the noise, so the record alone reproduces the field.
    """

    alpha: float
    sigma: float
    seed: int

    #: The largest alpha and the smallest and largest sigma (pixels) a field may have: beyond them its
    #: lattice and smoothing taps overflow, and no image shows a difference.
    ALPHA_MAX, SIGMA_RANGE = 1e6, (0.01, 1e5)

    def __post_init__(self):
        a = _finite(self.alpha, "elastic alpha")
        sg = _finite(self.sigma, "elastic sigma")
        if not (0 <= a <= self.ALPHA_MAX and self.SIGMA_RANGE[0] <= sg <= self.SIGMA_RANGE[1]):
            raise InvalidArgumentError(f"elastic needs 0 <= alpha <= {self.ALPHA_MAX:g} and {self.SIGMA_RANGE[0]:g} <= "
                                       f"sigma <= {self.SIGMA_RANGE[1]:g}, got {a!r}, {sg!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 1 << 53:
            raise InvalidArgumentError(f"elastic seed must be an integer in [0, 2**53), got {self.seed!r}")
        object.__setattr__(self, "alpha", a)
        object.__setattr__(self, "sigma", sg)
        object.__setattr__(self, "seed", int(self.seed))

    def to_record(self) -> dict:
        return {"alpha": self.alpha, "sigma": self.sigma, "seed": self.seed}

    @classmethod
    def from_record(cls, doc) -> "Elastic":
        if not isinstance(doc, dict) or not {"alpha", "sigma", "seed"} <= set(doc):
            raise InvalidArgumentError('"elastic" must be {"alpha": A, "sigma": S, "seed": N}')
        return cls(doc["alpha"], doc["sigma"], doc["seed"])


@dataclass(frozen=True)
class WarpSpec:
    """How one output image is made from one input image (see the module docstring for the record).

    Attributes
    ----------
    theta : tuple of 2 or 3 rows of 3 floats, or None
        θ ``in_norm_from_out_norm`` (PyTorch ``affine_grid``), affine (2x3) or projective (3x3).
    tps : TpsPoints or None
        A thin-plate spline instead of θ. Neither θ nor TPS means "not known yet" (an OpenCV matrix
        converted once the image size is known): such a spec can be recorded but not applied.
    mode, padding, align_corners
        Sampling options as in :func:`stntool.warp`.
    fill : str, tuple of float or None
        With ``padding="constant"``: ``'#rrggbb[aa]'`` or values (see :func:`fill_values`).
    in_hw, out_hw : (H, W) or None
        Input size (known once read) and output size (None: the input size; set to ``in_hw`` when
        that is given).
    name : str or None
        Output file name relative to the output folder, when the command that wrote the record chose it.
    elastic : Elastic or None
        A random displacement field added to the θ or spline (augmentation's elastic warps).
    """

    theta: tuple | None = None
    tps: TpsPoints | None = None
    mode: str = "bilinear"
    padding: str = "zeros"
    align_corners: bool = False
    fill: object = None
    in_hw: tuple | None = None
    out_hw: tuple | None = None
    name: str | None = None
    elastic: Elastic | None = None

    def __post_init__(self):
        if self.theta is not None and self.tps is not None:
            raise InvalidArgumentError("a warp record has either theta or tps, not both")
        if self.theta is not None and not _float_rows(self.theta):
            try:
                rows = [list(r) for r in self.theta]
            except TypeError:
                raise InvalidArgumentError("theta must be 2 or 3 rows of 3 numbers") from None
            if len(rows) not in (2, 3) or not all(len(r) == 3 for r in rows):
                raise InvalidArgumentError(f"theta must be 2x3 or 3x3, got {len(rows)} rows")
            object.__setattr__(self, "theta", tuple(tuple(_finite(x, "theta") for x in r) for r in rows))
        if self.tps is not None and not isinstance(self.tps, TpsPoints):
            raise InvalidArgumentError("tps must be a TpsPoints")
        if self.mode not in MODES:
            raise InvalidArgumentError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.padding not in PADDINGS:
            raise InvalidArgumentError(f"unknown padding {self.padding!r}; choose one of {', '.join(PADDINGS)}")
        if not isinstance(self.align_corners, bool):
            raise InvalidArgumentError(f"align_corners must be true or false, got {self.align_corners!r}")
        object.__setattr__(self, "fill", _check_fill(self.fill))
        if self.fill is not None and self.padding != "constant":
            raise InvalidArgumentError(f"fill applies only to padding 'constant', not {self.padding!r}")
        object.__setattr__(self, "in_hw", _hw(self.in_hw, "in_hw"))
        object.__setattr__(self, "out_hw", _hw(self.out_hw, "out_hw") or self.in_hw)
        if self.name is not None and (not isinstance(self.name, str) or not self.name or "\0" in self.name):
            raise InvalidArgumentError(f"name must be a non-empty string without NUL characters, got {self.name!r}")
        if self.elastic is not None:
            if not isinstance(self.elastic, Elastic):
                raise InvalidArgumentError("elastic must be an Elastic")
            if self.theta is None and self.tps is None:
                raise InvalidArgumentError("an elastic field is added to a theta or tps; the record has neither")

    # ------------------------------------------------------------------ building

    def replace(self, **changes) -> "WarpSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_cv2(cls, matrix, in_hw, out_hw=None, inverse_map: bool = False, **options) -> "WarpSpec":
        """A spec from an OpenCV pixel matrix (as for ``cv2.warpAffine``/``warpPerspective``) and the image size.

        ``options`` are the other fields (mode, padding, align_corners, fill, ...). See
        :func:`stntool.transforms.theta_from_cv2` for the conversion.
        """
        import numpy as np

        from .transforms import theta_from_cv2

        in_hw = _hw(in_hw, "in_hw")
        out_hw = _hw(out_hw, "out_hw") or in_hw
        theta = theta_from_cv2(np.array(matrix, dtype=np.float64), in_hw, out_hw, inverse_map=inverse_map,
                               align_corners=bool(options.get("align_corners", False)))
        return cls(theta=tuple(map(tuple, theta.tolist())), out_hw=out_hw, **options)

    def kernels(self) -> list:
        """The ``(family, mode, padding)`` of the CPU kernel :func:`apply_spec` runs, as far as the spec tells.

        ``"affine"`` for a 2x3 θ or a 3x3 θ whose last row starts with two zeros, ``"projective"``
        for other 3x3 θ (a horizon crossing the output samples a grid instead), ``"tps"`` for thin-plate
        splines and elastic records (both warp through the lattice kernels); empty for not-yet-converted
        specs. Used to compile kernels ahead (:mod:`stntool._compile_ahead`), never to choose one.
        """
        if self.tps is not None or self.elastic is not None:
            return [("tps", self.mode, self.padding)]
        if self.theta is None:
            return []
        projective = len(self.theta) == 3 and (self.theta[2][0] != 0 or self.theta[2][1] != 0)
        if not projective and _flip_or_turn(self.theta):
            return []  # most likely a copy, no kernel (stntool.sampling._copies); else compiled when first needed
        return [("projective" if projective else "affine", self.mode, self.padding)]

    # ------------------------------------------------------------------ records

    def to_record(self) -> dict:
        """The manifest fields of this spec (JSON-ready, keys in the documented order)."""
        rec = {}
        if self.in_hw is not None:
            out_hw = self.out_hw or self.in_hw
            rec["in_size"] = [self.in_hw[1], self.in_hw[0]]
            rec["size"] = [out_hw[1], out_hw[0]]
        if self.tps is not None:
            rec["tps"] = self.tps.to_record()
        else:
            rec["theta"] = None if self.theta is None else [list(r) for r in self.theta]
        if self.elastic is not None:
            rec["elastic"] = self.elastic.to_record()
        if self.in_hw is None:
            rec["size"] = None if self.out_hw is None else [self.out_hw[1], self.out_hw[0]]
        rec["mode"], rec["padding"], rec["align_corners"] = self.mode, self.padding, self.align_corners
        if self.padding == "constant" and self.fill is not None:
            rec["fill"] = self.fill if isinstance(self.fill, str) else list(self.fill)
        if self.name is not None:
            rec["name"] = self.name
        rec["version"] = __version__
        rec["schema"] = 2 if self.elastic is not None else 1
        return rec

    @classmethod
    def from_record(cls, rec: dict) -> "WarpSpec":
        """A spec from a manifest line (this schema or the 0.1 layout without ``schema``).

        Keys that are not part of the spec (input, output, status, error, frames, ...) are ignored.
        Raises :class:`InvalidArgumentError` for a line without θ or TPS, or with bad values.
        """
        if not isinstance(rec, dict):
            raise InvalidArgumentError("a warp record must be a JSON object")
        schema = rec.get("schema", 0)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 0:
            raise InvalidArgumentError(f'"schema" must be a version number, got {schema!r}')
        if schema > SCHEMA_VERSION:
            raise InvalidArgumentError(f"record schema {schema} is newer than this stntool reads "
                                       f"({SCHEMA_VERSION}); upgrade stntool")
        theta = tps = None
        if rec.get("theta") is not None and rec.get("tps") is not None:
            raise InvalidArgumentError('the record has both "theta" and "tps"; a warp is one or the other')
        if rec.get("theta") is not None:
            t = rec["theta"]
            if not isinstance(t, list) or not all(isinstance(r, list) for r in t):
                raise InvalidArgumentError('"theta" must be 2 or 3 rows of 3 numbers')
            flat = [x for r in t for x in r]
            if len(flat) not in (6, 9) or not all(len(r) == 3 for r in t):
                rows = ", ".join(str(len(r)) for r in t)
                raise InvalidArgumentError(f'"theta" must be 2 or 3 rows of 3 numbers, got {len(t)} row'
                                           f'{"s" if len(t) != 1 else ""} of {rows}')
            theta = tuple(tuple(_finite(x, '"theta"') for x in r) for r in t)
        elif rec.get("tps") is not None:
            tps = TpsPoints.from_record(rec["tps"])
        else:
            raise InvalidArgumentError('the record has neither "theta" nor "tps"')
        fill = rec.get("fill")
        if isinstance(fill, list):
            fill = tuple(fill)
        opts = {}
        for key, default in (("mode", "bilinear"), ("padding", "zeros"), ("align_corners", False)):
            opts[key] = default if rec.get(key) is None else rec[key]
        elastic = None if rec.get("elastic") is None else Elastic.from_record(rec["elastic"])
        return cls(theta=theta, tps=tps, fill=fill, in_hw=_wh_from_record(rec.get("in_size"), "in_size"),
                   out_hw=_wh_from_record(rec.get("size"), "size"), name=rec.get("name"), elastic=elastic, **opts)


def _flip_or_turn(theta) -> bool:
    """θ is an identity, a flip or a quarter turn about the centre: its linear part is a signed permutation and
    it does not move the centre (the warps that :mod:`stntool.sampling._copies` copies at matching sizes)."""
    (a, b, tx), (c, d, ty) = theta[0], theta[1]
    if tx != 0 or ty != 0 or (len(theta) == 3 and tuple(theta[2]) != (0, 0, 1)):
        return False
    return {abs(a), abs(d)} == {1} and b == c == 0 or {abs(b), abs(c)} == {1} and a == d == 0


@functools.lru_cache(maxsize=None)
def _unsigned_max(dtype) -> float:
    import numpy as np

    return float(np.iinfo(dtype).max)


def _one_pixel_each(spec: WarpSpec, in_hw) -> bool:
    """Whether every output pixel of ``spec`` reads one input pixel or the fill: nearest sampling, or an affine θ
    whose pixel map lands on whole pixels (:func:`stntool.sampling._copies.pixel_steps`)."""
    if spec.mode == "nearest":
        return True
    if spec.theta is None or spec.elastic is not None:
        return False
    import numpy as np

    from .sampling._copies import pixel_steps
    from .transforms import pixel_map_from_theta

    out_hw = spec.out_hw or in_hw
    try:
        m = pixel_map_from_theta(np.array(spec.theta, dtype=np.float64), in_hw, out_hw, spec.align_corners)
    except (InvalidArgumentError, ValueError, ZeroDivisionError):
        return False
    return pixel_steps(m, out_hw[0], out_hw[1]) is not None


def apply_spec(img, spec: WarpSpec, backend: str = "auto"):
    """Warp one image (H, W) or (H, W, C) by a :class:`WarpSpec`; returns the same dtype and layout.

    Images with alpha (2 or 4 channels) are warped premultiplied: colour is multiplied by alpha
    before sampling and divided after, so transparent pixels leave no dark fringes; integer results
    are rounded (half up, as the kernels round) and clipped. That arithmetic runs in float32, in
    float64 for float64 images. The fill (``spec.fill``) is converted to the image's channel order and
    range with :func:`fill_values`, and premultiplied like the pixels. Warps whose every output pixel
    is one input pixel (or the fill) mix nothing and are not premultiplied: ``nearest``, and θ that
    reads whole pixels (identity, flips, quarter turns, whole-pixel shifts), whose outputs are then the
    input's pixels exactly (colour under alpha 0 included). ``spec.out_hw`` None keeps the input size.
    """
    import numpy as np

    from . import api

    if spec.theta is None and spec.tps is None:
        raise InvalidArgumentError("the warp record has no theta or tps yet (an OpenCV matrix needs the image size)")
    if getattr(img, "ndim", None) not in (2, 3):
        raise InvalidArgumentError("apply_spec takes one image (H, W) or (H, W, C), got shape "
                                   f"{getattr(img, 'shape', None)}")
    is_int = img.dtype.kind == "u"
    maxv = _unsigned_max(img.dtype) if is_int else 0.0
    c = 1 if img.ndim == 2 else img.shape[2]
    fill = fill_values(spec.fill, c, maxv) if spec.padding == "constant" else None
    out_hw = spec.out_hw

    def run(a, f):
        if spec.elastic is not None:
            from .maps import lattice_plan

            return api.warp_plan(a, lattice_plan(spec, a.shape[:2]), out_hw or a.shape[:2], mode=spec.mode,
                                 padding=spec.padding, align_corners=spec.align_corners, fill=f, backend=backend)
        if spec.tps is not None:
            t = spec.tps
            return api.warp_tps(a, [list(p) for p in t.src], [list(p) for p in t.dst], out_hw=out_hw,
                                mode=spec.mode, padding=spec.padding, align_corners=spec.align_corners, fill=f,
                                normalized=t.normalized, regularization=t.regularization, backend=backend)
        return api.warp(a, spec.theta, out_hw=out_hw, mode=spec.mode, padding=spec.padding,
                        align_corners=spec.align_corners, fill=f, backend=backend)

    if c not in (2, 4) or _one_pixel_each(spec, img.shape[:2]):
        return run(img, fill)
    from .sampling import ImageBatch

    ImageBatch(img)  # what the kernels refuse (bool, int16, complex ...) is refused here too, in the same words
    # colour times alpha in float32 (enough for 8 and 16 bits), in float64 for float64 (and wider) images
    work = img.astype(np.float64 if img.dtype.kind == "f" and img.dtype.itemsize >= 8 else np.float32)
    a_scale = maxv if is_int else 1.0
    a = work[..., -1:] / a_scale
    work[..., :-1] *= a
    f = None
    if fill is not None:
        f = list(fill) if len(fill) > 1 else [fill[0]] * c
        fa = f[-1] / a_scale
        f = [v * fa for v in f[:-1]] + [f[-1]]
    out = run(work, f)
    del work, a
    # in place, with the values of ``np.where(a_out > 1e-6, colour / a_out, 0)``, then rounded half up and clipped as
    # the kernels round (it was half to even): an RGBA image's arrays at a time took 72 bytes a pixel, this 38
    a_out = out[..., -1:] / a_scale
    seen = a_out > 1e-6
    colour = out[..., :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(colour, a_out, out=colour, where=seen)
    np.copyto(colour, 0.0, where=~seen)
    del a_out, seen, colour
    if is_int:
        out += 0.5
        np.floor(out, out=out)
        np.clip(out, 0, maxv, out=out)
    return out.astype(img.dtype)


def _same_name(a, b) -> bool:
    """Whether two records' output names name one output (``x.png`` and ``./x.png``; None: the unnamed one)."""
    return a == b or (a is not None and b is not None and os.path.normpath(a) == os.path.normpath(b))


def read_warp_records(path, qualities: dict | None = None, warn=None) -> dict:
    """``{input: [WarpSpec, ...]}`` from a JSONL manifest or parameter file (``-`` = stdin), in file order.

    Each line needs ``"input"`` (a path; the lines of one path are one input however they spell it: ``./in/a.png``,
    ``in/a.png``, its absolute path, keyed by the first spelling: :func:`stntool.batch.path_key`); a manifest's
    error lines (``"status": "error"``: no output was made, whatever record they carry) and its lines for outputs
    skipped or not made (``"skipped"``, ``"interrupted"``) without ``theta`` or ``tps`` are passed over; any other
    line without either is an error (a misspelt key); and a ``"removed": true`` line (an output written, then
    removed as its input failed) drops the records before it of its ``name``. Of the records of an input, the last
    one of each ``name`` (its own output file; a resumed run's manifest names one twice) and the last one without a
    name are kept, each with its ``in_size`` (``in_hw``), which the replay compares with the image it reads.
    ``qualities``, when given, maps ``id(spec)`` of each spec returned to the ``--quality`` its output was encoded
    at (the line's ``"quality"``, checked; None where it names none). A last line cut short (a run stopped while
    writing it) is left out, and ``warn`` (a function, when given) told so. Raises :class:`InvalidArgumentError`
    naming the bad line, or when the file cannot be read.
    """
    from .io import display, read_jsonl

    cut = []
    try:
        line_numbers = []  # each record's line in the file (blank lines are skipped)
        lines = read_jsonl(path, cut, line_numbers)
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {path}: {e.strerror}") from None
    if cut and warn is not None:
        warn(f"{display(path)} line {cut[0]}: cut short (a run stopped while writing it?); left out")
    from .batch import _OutputReal, path_key

    where = "stdin" if path == "-" else display(path)
    table = {}
    spellings = {}  # path key -> the key of that path: its first spelling (in/a.png, ./in/a.png, /abs/in/a.png)
    folders = _OutputReal()
    recorded, only_skipped = set(), {}  # outputs with a record to replay; outputs with only "skipped" lines (shown)
    for no, rec in zip(line_numbers, lines):
        if "input" not in rec:
            raise InvalidArgumentError(f'{where} line {no}: missing "input"')
        if not isinstance(rec["input"], str):
            raise InvalidArgumentError(f'{where} line {no}: "input" must be a path (a string), got '
                                       f'{json.dumps(rec["input"])[:40]}')
        if not rec["input"]:
            raise InvalidArgumentError(f'{where} line {no}: "input" is empty')
        # one key per path however it was spelled (a resumed run named in/a.png as ./in/a.png or by its absolute
        # path): the last line of each output wins. Its folder's real path, not the text: link/../a.png is not
        # a.png; a link among the inputs stays an input of its own
        key = rec["input"] if rec["input"] == "-" else spellings.setdefault(path_key(rec["input"], folders),
                                                                            rec["input"])
        if rec.get("removed") is True and isinstance(rec.get("name"), str):  # written, then removed: no output
            specs = table.get(key, [])
            if qualities is not None:
                for s in specs:
                    if _same_name(s.name, rec["name"]):
                        qualities.pop(id(s), None)
            specs[:] = [s for s in specs if not _same_name(s.name, rec["name"])]
            continue
        if rec.get("status") == "error":
            continue
        out = path_key(rec["output"], folders) if isinstance(rec.get("output"), str) and rec["output"] != "-" else None
        if rec.get("theta") is None and rec.get("tps") is None:
            if rec.get("status") in ("skipped", "interrupted"):
                if rec.get("status") == "skipped" and out is not None and out not in recorded:
                    only_skipped.setdefault(out, rec["output"])
                continue
            raise InvalidArgumentError(f'{where} line {no}: no "theta" or "tps" (a warp record needs one)')
        if out is not None:
            recorded.add(out)
            only_skipped.pop(out, None)
        try:
            spec = WarpSpec.from_record(rec)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{where} line {no}: {e}") from None
        specs = table.setdefault(key, [])
        for s in specs:
            if _same_name(s.name, spec.name) and qualities is not None:
                qualities.pop(id(s), None)
        specs[:] = [s for s in specs if not _same_name(s.name, spec.name)]  # a later record of the same output wins
        specs.append(spec)
        if qualities is not None:
            q = rec.get("quality")
            if q is not None and not (_is_int(q) and 0 <= q <= 100):
                raise InvalidArgumentError(f'{where} line {no}: "quality" must be an integer 0-100, got '
                                           f'{json.dumps(q)}')
            qualities[id(spec)] = None if q is None else int(q)
    if only_skipped and warn is not None:  # a run resumed into a new manifest: the records are in the earlier one
        n = len(only_skipped)
        example = display(min(only_skipped.values()))
        warn(f"{where}: {n} output{'s' * (n != 1)} (e.g. {example}) recorded only as "
             "skipped (an earlier run wrote them; its manifest holds their records): not replayed")
    return table
