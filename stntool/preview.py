"""Contact sheets: each input beside its warped variants, with the sampling grid drawn over them.

A sheet has one row per input: the input's tile first, then one tile per variant. Every tile is the
image scaled to fit a ``tile`` x ``tile`` square (aspect kept; ``cv2.INTER_AREA`` when shrinking,
nearest when enlarging, so small images show their pixels), centred in its cell, with a caption
band under it.

The grid shows what a record did to the input's geometry. A pattern the size of the input (the
border, ``grid_lines`` evenly spaced lines per axis, and a filled triangle in the input's top-left
corner so that flips and rotations read unambiguously, see :func:`grid_pattern`) is warped by the
*same* record through :func:`stntool.records.apply_spec` (bilinear, zeros padding, the record's own
``align_corners``) and blended over the variant in ``grid_colour``. Because it goes through the
engine, θ (affine and projective), thin-plate spline and elastic records are drawn alike, exactly
as the pixels were moved. The unwarped pattern is blended lightly over the input tile.

Layout (all in sheet pixels, ``cap`` = the caption band, see :class:`SheetLayout`)::

    width  = gap + n_cols * (tile + gap)         n_cols = 1 + the most variants of any row
    height = gap + n_rows * (tile + cap + gap)   cap = lines * line_height + 2 * text_pad

Display conversion (:func:`display_bgr`): images are stntool's ``(H, W)`` / ``(H, W, C)`` in
OpenCV's BGR(A) channel order, and stay BGR. uint8 is shown as is, uint16 as ``v >> 8``, float
clipped to [0, 1] (NaN as 0) and scaled to 255; grey is repeated over three channels; grey+alpha
and BGRA are composited over a light checkerboard (after scaling, premultiplied, so the squares are
crisp and edges have no dark fringes).

Example
-------
>>> import numpy as np
>>> from stntool.records import WarpSpec
>>> from stntool.preview import contact_sheet
>>> img = np.full((48, 64, 3), 90, np.uint8)
>>> flip = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)))
>>> sheet = contact_sheet([("photo.jpg", img, [(flip, img[:, ::-1], "0: hflip")])], tile=64, backend="numpy")
>>> sheet.shape, sheet.dtype
((102, 152, 3), dtype('uint8'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["contact_sheet", "input_tile", "variant_tile", "sheet_of_tiles", "grid_pattern", "warped_grid",
           "display_bgr", "fit_hw", "SheetLayout"]

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX (kept numeric so importing this module does not import cv2)
_TEXT_PAD = 3
_CHECKER = 8  # checkerboard square, sheet pixels
#: Defaults of :func:`contact_sheet` (and of the tiles it is made of): tile side, grid lines per axis, BGR colours
#: and opacities of the grid over variants and over inputs, BGR colours of boxes and keypoints.
TILE, GRID_LINES, GRID_COLOUR, GRID_ALPHA, INPUT_GRID_ALPHA = 256, 8, (255, 0, 255), 0.9, 0.35
BOX_COLOUR, KEYPOINT_COLOUR = (0, 200, 0), (255, 255, 0)
_ASCII = {"°": " deg", "θ": "theta", "×": "x", "…": "...", "−": "-", "–": "-", "—": "-", "±": "+-", "σ": "sigma",
          "α": "alpha"}


# --------------------------------------------------------------------------- geometry of the sheet

def fit_hw(hw, tile: int) -> tuple:
    """``(h, w)``: the size ``hw`` scaled to fit a ``tile`` x ``tile`` square, aspect kept (each side >= 1).

    >>> fit_hw((100, 400), 256), fit_hw((10, 5), 64)
    ((64, 256), (64, 32))
    """
    h, w = hw
    s = min(tile / h, tile / w)
    return max(1, min(tile, round(h * s))), max(1, min(tile, round(w * s)))


def _line_height(font_scale: float) -> int:
    import cv2

    (_, th), base = cv2.getTextSize("Ag", _FONT, font_scale, 1)
    return th + base + 2


@dataclass(frozen=True)
class SheetLayout:
    """Where the cells of a contact sheet lie.

    ``cell(r, c)`` is the ``(y, x)`` of the top-left corner of the ``tile`` x ``tile`` square of row
    ``r``, column ``c`` (column 0 is the input); the caption band of ``caption`` pixels follows under it.
    """

    n_rows: int
    n_cols: int
    tile: int
    caption: int
    gap: int

    @property
    def shape(self) -> tuple:
        return (self.gap + self.n_rows * (self.tile + self.caption + self.gap),
                self.gap + self.n_cols * (self.tile + self.gap), 3)

    def cell(self, r: int, c: int) -> tuple:
        return self.gap + r * (self.tile + self.caption + self.gap), self.gap + c * (self.tile + self.gap)

    def image_box(self, r: int, c: int, hw) -> tuple:
        """``(y0, x0, h, w)`` of an image of size ``hw`` (already fitted) centred in cell ``(r, c)``."""
        y, x = self.cell(r, c)
        h, w = hw
        return y + (self.tile - h) // 2, x + (self.tile - w) // 2, h, w


# --------------------------------------------------------------------------- the grid

def grid_pattern(hw, grid_lines: int = 8, thickness: int = 1) -> np.ndarray:
    """The grid drawn over an input of size ``hw``: float32 ``(H, W)``, 1 on the lines, 0 elsewhere.

    The border (``thickness`` pixels inside the edge), ``grid_lines`` vertical lines at
    ``x = round(k (W - 1) / (grid_lines + 1))`` and horizontal ones likewise, for
    ``k = 1 .. grid_lines`` (each ``thickness`` wide, starting ``thickness // 2`` before), and a filled
    right triangle in the top-left corner (legs 0.6 of a grid cell, or of a sixth of the shorter side
    with fewer than 5 lines, and at least ``4 * thickness``)
    that tells the input's corner (0, 0) apart from the others after flips and rotations.
    """
    h, w = hw
    grid_lines = _whole(grid_lines, "grid_lines", 0)
    t = int(thickness)
    if t < 1:
        raise InvalidArgumentError(f"grid thickness must be >= 1, got {thickness!r}")
    pat = np.zeros((h, w), np.float32)
    pat[:t, :] = pat[-t:, :] = 1.0
    pat[:, :t] = pat[:, -t:] = 1.0
    for k in range(1, grid_lines + 1):
        x = round(k * (w - 1) / (grid_lines + 1)) - t // 2
        y = round(k * (h - 1) / (grid_lines + 1)) - t // 2
        pat[:, max(0, x):max(0, x + t)] = 1.0
        pat[max(0, y):max(0, y + t), :] = 1.0
    leg = max(4 * t, round(0.6 * min(h, w) / (max(grid_lines, 5) + 1)))
    yy, xx = np.mgrid[0:min(leg, h), 0:min(leg, w)]
    pat[:yy.shape[0], :yy.shape[1]][xx + yy < leg] = 1.0
    return pat


def warped_grid(spec, in_hw, grid_lines: int = 8, thickness: int = 1, backend: str = "auto") -> np.ndarray:
    """:func:`grid_pattern` of an input of ``in_hw`` warped by the record ``spec``: float32 ``(Ho, Wo)`` in [0, 1].

    The record's geometry (θ, spline, elastic field, ``align_corners``, output size) is kept; the
    sampling is bilinear with zeros padding, so the lines fade out where the record reads outside
    the input. The pattern is warped as 8-bit, so values are multiples of 1/255.
    """
    from .records import apply_spec

    in_hw = tuple(in_hw)
    if spec.in_hw is not None and tuple(spec.in_hw) != in_hw:
        raise InvalidArgumentError(f"the record is for an input of {spec.in_hw[1]}x{spec.in_hw[0]}, "
                                   f"not {in_hw[1]}x{in_hw[0]}")
    grid_spec = spec.replace(mode="bilinear", padding="zeros", fill=None, name=None)
    # warped as 8-bit (0 or 255): a fraction of the float32 memory traffic on large inputs
    pattern = (grid_pattern(in_hw, grid_lines, thickness) * 255).astype(np.uint8)
    return apply_spec(pattern, grid_spec, backend=backend).astype(np.float32) / np.float32(255)


# --------------------------------------------------------------------------- display

def _checker(hw) -> np.ndarray:
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    return np.where(((yy // _CHECKER) + (xx // _CHECKER)) % 2 == 0, 255.0, 204.0).astype(np.float32)[..., None]


def _resize(a: np.ndarray, hw) -> np.ndarray:
    import cv2

    if a.shape[:2] == tuple(hw):
        return a
    shrink = hw[0] <= a.shape[0] and hw[1] <= a.shape[1]
    out = cv2.resize(a, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_NEAREST)
    return out.reshape(tuple(hw) + a.shape[2:])


def _unit_float(img: np.ndarray) -> np.ndarray:
    """The image as float32 in [0, 255] by the display rules (uint8 as is, uint16 >> 8, float clipped to [0, 1])."""
    if img.dtype == np.uint8:
        return img.astype(np.float32)
    return _to_uint8(img).astype(np.float32)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """The image as uint8 by the display rules (uint8 as is, uint16 >> 8, float clipped to [0, 1] and scaled)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if img.dtype.kind == "f":
        v = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.rint(np.clip(v, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise InvalidArgumentError(f"cannot show an image of dtype {img.dtype} (use uint8, uint16 or float)")


def display_bgr(img, hw=None) -> np.ndarray:
    """``img`` as a uint8 ``(h, w, 3)`` BGR picture, scaled to ``hw`` (default: its own size).

    See the module docstring for the dtype and channel rules. Raises :class:`InvalidArgumentError`
    for other dtypes, more than 4 channels or other dimensions.
    """
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise InvalidArgumentError(f"an image must be (H, W) or (H, W, C) with C in 1..4, got shape {img.shape}")
    hw = img.shape[:2] if hw is None else tuple(hw)
    c = img.shape[2]
    if c in (1, 3):  # no alpha: converted to 8 bits first, then scaled (cheap for large photos)
        out = _resize(_to_uint8(img), hw).reshape(tuple(hw) + (c,))
        return np.repeat(out, 3, axis=2) if c == 1 else np.ascontiguousarray(out)
    v = _unit_float(img)
    alpha = v[..., -1:] / 255.0
    colour = v[..., :-1] * alpha
    both = _resize(np.concatenate([colour, alpha], axis=2), hw).reshape(tuple(hw) + (c,))
    colour, alpha = both[..., :-1], both[..., -1:]
    if c == 2:
        colour = np.repeat(colour, 3, axis=2)
    out = colour + (1.0 - alpha) * _checker(hw)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _blend(tile_bgr: np.ndarray, mask: np.ndarray, colour, alpha: float) -> np.ndarray:
    a = (alpha * mask)[..., None]
    out = tile_bgr.astype(np.float32) * (1.0 - a) + np.asarray(colour, np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _ascii(text) -> str:
    s = "".join(_ASCII.get(ch, ch) for ch in str(text))
    return s.encode("ascii", "replace").decode("ascii")


def _fit_text(text: str, width: int, font_scale: float) -> str:
    import cv2

    if cv2.getTextSize(text, _FONT, font_scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "..", _FONT, font_scale, 1)[0][0] > width:
        text = text[:-1]
    return text + ".."


# --------------------------------------------------------------------------- the sheet

def _grid_thickness(in_hw, shown_hw) -> int:
    """Line width in input pixels so a line stays at least one sheet pixel wide after scaling."""
    return max(1, math.ceil(max(in_hw[0] / shown_hw[0], in_hw[1] / shown_hw[1]) - 1e-9))


def _whole(value, name: str, least: int) -> int:
    """``value`` as an int (NumPy's integers too; not a bool or a float) of at least ``least``, else
    :class:`InvalidArgumentError` naming ``name``."""
    import operator

    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer >= {least}, got {value!r}") from None
    if v < least:
        raise InvalidArgumentError(f"{name} must be an integer >= {least}, got {value!r}")
    return v


def _colour(value, name: str) -> tuple:
    """A BGR colour: three numbers in 0 .. 255, else :class:`InvalidArgumentError` naming ``name``."""
    try:
        c = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        c = None
    if c is None or c.shape != (3,) or not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 255:
        raise InvalidArgumentError(f"{name} must be three numbers 0-255 (B, G, R), got {value!r}")
    return tuple(int(round(x)) for x in c)


def contact_sheet(rows, *, tile: int = TILE, grid_lines: int = GRID_LINES, grid_colour=GRID_COLOUR,
                  grid_alpha: float = GRID_ALPHA, input_grid_alpha: float = INPUT_GRID_ALPHA, gap: int = 8,
                  background=(236, 236, 236), text_colour=(40, 40, 40), font_scale: float = 0.4,
                  max_caption_lines: int = 3, box_colour=BOX_COLOUR, keypoint_colour=KEYPOINT_COLOUR,
                  backend: str = "auto") -> np.ndarray:
    """A contact sheet of inputs and their warped variants with each record's sampling grid drawn over them.

    Parameters
    ----------
    rows : list of ``(title, input_image, variants)`` or ``(title, input_image, variants, labels)``
        ``input_image`` is ``(H, W)`` or ``(H, W, C)`` (C = 1..4, BGR(A) order; uint8, uint16 or
        float). ``variants`` is a list of ``(spec, output_image, caption)`` or ``(spec, output_image,
        caption, labels)``: ``spec`` the :class:`~stntool.records.WarpSpec` that made ``output_image`` from
        the input (``output_image`` None: warped here by :func:`~stntool.records.apply_spec`), ``caption`` a
        short text (``\\n`` starts a new line; non-ASCII characters are spelt out or shown as ``?``).
        ``title`` is the input tile's caption. ``labels`` (a :class:`~stntool.labels.Labels`, or None) are
        drawn over their image: box outlines and visible keypoints, so a sheet shows them moving with the
        pixels.
    tile : int
        Side of the square each image is fitted into, in sheet pixels.
    grid_lines : int
        Lines per axis inside the border (see :func:`grid_pattern`).
    grid_colour, grid_alpha, input_grid_alpha
        BGR colour of the grid and its opacity over the variants and over the input.
    box_colour, keypoint_colour
        BGR colours of the labels' boxes and keypoints.
    gap, background, text_colour, font_scale, max_caption_lines
        Spacing between cells, sheet and text colours (BGR), caption size (``cv2.FONT_HERSHEY_SIMPLEX``
        scale) and the most caption lines shown (longer lines are cut with ``..``).
    backend : str
        Sampling backend for the grid warps (as for :func:`stntool.warp`).

    Returns
    -------
    np.ndarray
        uint8 ``(height, width, 3)``, BGR (write it with ``cv2.imwrite``); size as in the module docstring.

    Raises :class:`InvalidArgumentError` for an empty ``rows``, a record whose input size or output
    size does not match its images, or images that cannot be shown.
    """
    import cv2

    rows = list(rows)
    if not rows:
        raise InvalidArgumentError("a contact sheet needs at least one input")
    tile, gap = _whole(tile, "tile", 8), _whole(gap, "gap", 0)
    grid_lines = _whole(grid_lines, "grid_lines", 0)
    max_caption_lines = _whole(max_caption_lines, "max_caption_lines", 0)
    grid_colour, background, text_colour, box_colour, keypoint_colour = (
        _colour(c, name) for c, name in ((grid_colour, "grid_colour"), (background, "background"),
                                         (text_colour, "text_colour"), (box_colour, "box_colour"),
                                         (keypoint_colour, "keypoint_colour")))
    parsed = []
    for i, row in enumerate(rows):
        try:
            title, img, variants, *rest = row
            if len(rest) > 1:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"row {i}: expected (title, input_image, [(spec, output_image, caption), ...]"
                                       "[, labels])") from None
        img = np.asarray(img)
        vs = []
        for j, v in enumerate(variants):
            try:
                spec, out, cap, *more = v
                if len(more) > 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"row {i}, variant {j}: expected (spec, output_image, caption[, labels])")\
                    from None
            vs.append((spec, out, cap, _as_labels(more[0] if more else None, f"row {i}, variant {j}")))
        parsed.append((title, img, vs, _as_labels(rest[0] if rest else None, f"row {i}")))

    style = dict(tile=tile, grid_lines=grid_lines, grid_colour=grid_colour, box_colour=box_colour,
                 keypoint_colour=keypoint_colour)
    tiles = []
    for r, (title, img, vs, labels_in) in enumerate(parsed):
        where = f"row {r} ({title})"
        pic_in = input_tile(img, labels_in, input_grid_alpha=input_grid_alpha, where=where, **style)
        pictures = []
        for c, (spec, out, cap, labels_out) in enumerate(vs):
            if out is None:
                from .records import apply_spec

                out = apply_spec(img, spec, backend=backend)
            pictures.append((variant_tile(spec, out, img.shape[:2], labels_out, grid_alpha=grid_alpha,
                                          backend=backend, where=f"{where}, variant {c}", **style), cap))
        tiles.append((title, pic_in, pictures))
    return sheet_of_tiles(tiles, tile=tile, gap=gap, background=background, text_colour=text_colour,
                          font_scale=font_scale, max_caption_lines=max_caption_lines)


def input_tile(img, labels=None, *, tile: int = TILE, grid_lines: int = GRID_LINES, grid_colour=GRID_COLOUR,
               input_grid_alpha: float = INPUT_GRID_ALPHA, box_colour=BOX_COLOUR, keypoint_colour=KEYPOINT_COLOUR,
               where: str = "input") -> np.ndarray:
    """An input's picture on a sheet (:func:`contact_sheet`, whose arguments these are): the image fitted to
    the tile, the unwarped grid blended lightly over it, its labels drawn. uint8 BGR, at most ``tile`` a side."""
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise InvalidArgumentError(f"{where}: an image must be (H, W) or (H, W, C), got {img.shape}")
    in_hw = img.shape[:2]
    shown = fit_hw(in_hw, tile)
    pic = display_bgr(img, shown)
    if input_grid_alpha > 0:
        t = _grid_thickness(in_hw, shown)
        pic = _blend(pic, _resize(grid_pattern(in_hw, grid_lines, t), shown), grid_colour, input_grid_alpha)
    return _draw_labels(pic, labels, in_hw, box_colour, keypoint_colour)


def variant_tile(spec, out, in_hw, labels=None, *, tile: int = TILE, grid_lines: int = GRID_LINES,
                 grid_colour=GRID_COLOUR, grid_alpha: float = GRID_ALPHA, box_colour=BOX_COLOUR,
                 keypoint_colour=KEYPOINT_COLOUR, backend: str = "auto", where: str = "variant") -> np.ndarray:
    """A variant's picture on a sheet (:func:`contact_sheet`, whose arguments these are): ``out``, made by
    ``spec`` from an input of size ``in_hw``, fitted to the tile, the record's warped grid blended over it, its
    labels drawn. uint8 BGR, at most ``tile`` a side."""
    in_hw = tuple(in_hw)
    spec_out_hw = spec.out_hw or in_hw
    out = np.asarray(out)
    if out.ndim not in (2, 3) or tuple(out.shape[:2]) != tuple(spec_out_hw):
        raise InvalidArgumentError(
            f"{where}: the record makes a {spec_out_hw[1]}x{spec_out_hw[0]} "
            f"output but the image is {out.shape[1] if out.ndim > 1 else '?'}x{out.shape[0]}")
    shown_out = fit_hw(spec_out_hw, tile)
    pic = display_bgr(out, shown_out)
    if grid_alpha > 0:
        try:
            g = warped_grid(spec, in_hw, grid_lines, _grid_thickness(in_hw, fit_hw(in_hw, tile)), backend=backend)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{where}: {e}") from None
        pic = _blend(pic, _resize(g, shown_out), grid_colour, grid_alpha)
    return _draw_labels(pic, labels, spec_out_hw, box_colour, keypoint_colour)


def sheet_of_tiles(rows, *, tile: int = TILE, gap: int = 8, background=(236, 236, 236), text_colour=(40, 40, 40),
                   font_scale: float = 0.4, max_caption_lines: int = 3) -> np.ndarray:
    """The sheet of pictures made by :func:`input_tile` and :func:`variant_tile` (same ``tile``): ``rows`` is a
    list of ``(title, input_picture, [(variant_picture, caption), ...])``; the rest as for :func:`contact_sheet`."""
    import cv2

    captions = [str(t) for t, _, _ in rows] + [str(c) for _, _, vs in rows for _, c in vs]
    lines = min(max_caption_lines, max(1, max(len(c.split("\n")) for c in captions)))
    line_h = _line_height(font_scale)
    layout = SheetLayout(len(rows), 1 + max(len(vs) for _, _, vs in rows), tile, lines * line_h + 2 * _TEXT_PAD, gap)
    sheet = np.empty(layout.shape, np.uint8)
    sheet[:] = np.asarray(background, np.uint8)

    def put(r, c, picture, caption):
        y0, x0, h, w = layout.image_box(r, c, picture.shape[:2])
        sheet[y0:y0 + h, x0:x0 + w] = picture
        y, x = layout.cell(r, c)
        for k, text in enumerate(str(caption).split("\n")[:lines]):
            text = _fit_text(_ascii(text), tile - 2, font_scale)
            base = y + tile + _TEXT_PAD + (k + 1) * line_h - 3
            cv2.putText(sheet, text, (x + 1, base), _FONT, font_scale, tuple(int(v) for v in text_colour), 1,
                        cv2.LINE_AA)

    for r, (title, pic, vs) in enumerate(rows):
        put(r, 0, pic, title)
        for c, (pic, cap) in enumerate(vs, 1):
            put(r, c, pic, cap)
    return sheet


def _as_labels(value, where: str):
    """A row's or variant's labels: None or a :class:`~stntool.labels.Labels`."""
    if value is None:
        return None
    from .labels import Labels

    if not isinstance(value, Labels):
        raise InvalidArgumentError(f"{where}: labels must be a stntool.labels.Labels, got {type(value).__name__}")
    return value


def _draw_labels(pic: np.ndarray, labels, image_hw, box_colour, keypoint_colour) -> np.ndarray:
    """``pic`` (the image of size ``image_hw`` shown at ``pic``'s size) with the boxes' outlines and the visible
    keypoints drawn in: an extent ``[-0.5, W - 0.5]`` fills the shown width (stntool's pixel frame)."""
    if labels is None or (len(labels.boxes) == 0 and len(labels.keypoints) == 0):
        return pic
    import cv2

    pic = np.array(pic, order="C")  # a copy: the shown picture may be the caller's image itself
    h, w = image_hw
    sy, sx = pic.shape[0] / h, pic.shape[1] / w
    shift = 4  # cv2's fixed-point drawing: sub-pixel corners and centres
    one = 1 << shift

    def at(x, y):
        return (int(round(((x + 0.5) * sx - 0.5) * one)), int(round(((y + 0.5) * sy - 0.5) * one)))

    lo_x, hi_x, lo_y, hi_y = -1.0, w, -1.0, h  # the image's extent and half a pixel more: a box's clipped sides
    for x0, y0, x1, y1 in labels.boxes:  # clipped to the picture (a sidecar's box may reach 1e308)
        x0, x1 = min(max(x0, lo_x), hi_x), min(max(x1, lo_x), hi_x)
        y0, y1 = min(max(y0, lo_y), hi_y), min(max(y1, lo_y), hi_y)
        if x1 >= x0 and y1 >= y0 and x1 > lo_x and x0 < hi_x and y1 > lo_y and y0 < hi_y:  # a line is a box too
            cv2.rectangle(pic, at(x0, y0), at(x1, y1), tuple(int(v) for v in box_colour), 1, cv2.LINE_AA, shift)
    visible = labels.visible if labels.visible is not None else np.ones(len(labels.keypoints), bool)
    for (x, y), seen in zip(labels.keypoints, visible):
        if seen and -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5:  # in the picture (NaN is not)
            cv2.circle(pic, at(x, y), 2 * one, tuple(int(v) for v in keypoint_colour), -1, cv2.LINE_AA, shift)
    return pic
