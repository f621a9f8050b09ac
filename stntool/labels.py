"""Labels that move with the pixels: keypoints, boxes and masks under a warp record.

A :class:`~stntool.records.WarpSpec` says where each output pixel reads the input
(``in_from_out``, :func:`stntool.maps.in_from_out`). Labels need the other direction: where an
input point lands in the output. :func:`out_from_in` computes it for every record kind, and
:func:`transform_labels` moves a :class:`Labels` record (keypoints and boxes) with it;
:func:`warp_mask` warps a segmentation mask with the same record and nearest sampling.

Convention
----------
All label coordinates are **pixel coordinates** of :mod:`stntool.coords`: points are ``(x, y)``,
``x`` to the right, ``y`` down, and the centre of pixel ``img[i, j]`` is at ``(x, y) = (j, i)``.

* A **keypoint** is a point ``(x, y)`` in that frame (real-valued; ``(3, 2)`` is the centre of
  ``img[2, 3]``).
* A **box** ``[x_min, y_min, x_max, y_max]`` is an *extent* in the same frame: the box covering
  the whole ``W x H`` image is ``[-0.5, -0.5, W - 0.5, H - 0.5]``; the box covering exactly
  pixel ``img[i, j]`` is ``[j - 0.5, i - 0.5, j + 0.5, i + 0.5]``. So a box's width in pixels is
  ``x_max - x_min``, with no ``+ 1``.
* A keypoint is **visible** when it is finite and inside the output's extent,
  ``-0.5 <= x <= W - 0.5`` and ``-0.5 <= y <= H - 0.5`` (and, when the input says so, was visible
  there: an occluded keypoint stays occluded). Mapped points and box edges within
  :data:`EDGE_TOL` pixels of an edge of that extent are put on it: a point on the input's border,
  mapped by a resize or an identity, comes back a few ulps off it, and is still on the border.

How each record kind is inverted
--------------------------------
* θ, affine or projective: exactly, by inverting the 3x3 ``in_pix_from_out_pix`` matrix
  (:func:`stntool.transforms.pixel_map_from_theta`). A projective map shows the input plane
  "in front of" its horizon on one side of the output's horizon line (the side of the output's
  centre) and a mirrored copy of the plane behind it on the other; input points behind (or on)
  the horizon have no place in the front view and map to NaN. A singular θ (one that collapses the
  output onto a line) has no inverse: every point maps to NaN.
* Thin-plate splines and elastic fields: numerically, by damped Newton iterations on
  ``in_from_out(p_out) = p_in`` with a finite-difference Jacobian, started from the best affine
  fit of the inverse over the output. Points that do not converge from there (a map that folds
  over itself, as strong elastic fields do) start again from a grid of the map sampled around
  them: from the grid triangles whose images contain the point, then from the samples nearest it.
  A point counts as converged when its residual is at most ``tol`` input pixels (default 0.001);
  others come back NaN. Where a folded map shows a point in several places, one inside the output
  is preferred. Outside the output (where no pixel is read) an elastic field is held at its value
  on the output's edge and the record's θ or spline continues, so labels that leave the image move
  on sensibly instead of following the lattice's cubic extrapolation.

Files
-----
* JSON sidecar (``photo.json`` beside ``photo.jpg``), :func:`read_labels_json` /
  :func:`write_labels_json`::

    {
      "coords": "pixel",                      optional; the only value for now
      "size": [W, H],                         optional; the image's size (checked when known)
      "keypoints": [[x, y], ...]              or [{"x": x, "y": y, "label": L, "visible": true}, ...]
      "boxes": [[x0, y0, x1, y1], ...]        or [{"box": [x0, y0, x1, y1], "label": L}, ...]
      "schema": 1                             optional; this layout's version
    }

  Both keys are optional (a missing key means none); the two forms may be mixed within a list.
  Labels ``L`` are strings or integers. A keypoint written as ``{"x": null, "y": null}`` is one
  whose position is unknown (a point that left the view of a projective warp keeps its place in
  the list this way). Other keys are refused, so a misspelt key is an error, not an empty list.
  The writer uses the object forms and writes ``size``, ``schema`` and ``visible`` for every
  keypoint.
* YOLO ``.txt`` (:func:`read_yolo` / :func:`write_yolo`): one line ``class cx cy w h`` per box,
  ``class`` an integer >= 0 and the rest in ``[0, 1]`` as fractions of the image's extent, so
  ``x_min = (cx - w / 2) * W - 0.5`` in the pixel frame above. Blank lines are skipped; an empty
  file has no boxes. The writer clips boxes to the image and writes six decimals.
* Masks: ``(H, W)`` or ``(H, W, C)`` uint8 / uint16 / bool arrays of the image's size
  (:func:`check_mask`), warped by :func:`warp_mask`.

Every reader raises :class:`stntool.errors.InvalidArgumentError` with a one-line reason that
names the file and, where there is one, the entry (``keypoints[3]``, ``line 7``).

Example
-------
>>> from stntool.records import WarpSpec
>>> from stntool.labels import Labels, transform_labels
>>> spec = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)))             # mirror left-right
>>> lab = Labels(keypoints=[[0, 1]], boxes=[[-0.5, -0.5, 1.5, 0.5]], box_labels=["cat"])
>>> out, info = transform_labels(lab, spec, in_hw=(3, 4))
>>> out.keypoints.tolist(), out.boxes.tolist(), out.box_labels
([[3.0, 1.0]], [[1.5, -0.5, 3.5, 0.5]], ('cat',))
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .errors import InvalidArgumentError

__all__ = [
    "LABELS_SCHEMA",
    "Labels",
    "LabelsInfo",
    "out_from_in",
    "transform_labels",
    "read_labels_json",
    "write_labels_json",
    "parse_labels_json",
    "labels_json_text",
    "read_yolo",
    "write_yolo",
    "yolo_text",
    "labels_from_yolo_text",
    "check_mask",
    "warp_mask",
]

#: Version of the JSON sidecar layout written by :func:`write_labels_json`.
LABELS_SCHEMA = 1
#: Outline points per box side for maps that do not keep lines straight (splines, elastic fields).
OUTLINE_POINTS_PER_SIDE = 32
#: Largest label file read, in bytes.
MAX_LABEL_FILE_BYTES = 64 << 20
#: Pixels from an edge of the output's extent within which a mapped keypoint or box edge is put on it (rounding).
EDGE_TOL = 1e-6

#: Finite-difference step (output pixels) of the Newton iterations' Jacobian.
_FD_STEP = 1e-3

_KEYPOINT_KEYS = ("x", "y", "label", "visible")
_BOX_KEYS = ("box", "label")
_TOP_KEYS = ("coords", "size", "keypoints", "boxes", "schema")


# --------------------------------------------------------------------------- the record

class LabelSizeError(InvalidArgumentError):
    """A label file's ``size`` is not its image's: the file is labels, for another image (or frame).
    ``turned``: its width and height are the image's swapped."""

    def __init__(self, message, turned: bool = False):
        super().__init__(message)
        self.turned = turned


def _check_label(v, what):
    import numbers

    if v is None or isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    raise InvalidArgumentError(f"{what}: a label must be a string or an integer, got {v!r}")


def _labels_tuple(values, n, what):
    if values is None:
        return None
    try:
        t = tuple(values)
    except TypeError:
        raise InvalidArgumentError(f"{what} must be a sequence of labels") from None
    if len(t) != n:
        raise InvalidArgumentError(f"{what} has {len(t)} entries for {n} items")
    return tuple(_check_label(v, f"{what}[{i}]") for i, v in enumerate(t))


@dataclass(frozen=True, eq=False)
class Labels:
    """Keypoints and boxes of one image, in stntool pixel coordinates (see the module docstring).

    Attributes
    ----------
    keypoints : (K, 2) float64, read-only
        ``(x, y)`` points; a row of NaN is a keypoint whose position is unknown.
    boxes : (B, 4) float64, read-only
        ``[x_min, y_min, x_max, y_max]`` extents, finite, ``x_min <= x_max`` and ``y_min <= y_max``.
    keypoint_labels, box_labels : tuple or None
        One label (a string, an integer or None) per keypoint / box, or None for no labels.
    visible : (K,) bool, read-only, or None
        Whether each keypoint lies inside the image it belongs to (set by :func:`transform_labels`
        and the JSON reader when the file says so).

    Equality compares values (NaN equal to NaN). The record is immutable; build a new one to change it.
    """

    keypoints: object = ()
    boxes: object = ()
    keypoint_labels: tuple | None = None
    box_labels: tuple | None = None
    visible: object = None

    def __post_init__(self):
        import numpy as np

        def as_points(value, cols, what):
            from .coords import host_array

            raw = host_array(value, what)  # (a tensor that requires grad: said so)
            try:
                if raw.dtype.kind in "bcSU" and raw.size:  # booleans, complex numbers, strings: no points
                    raise TypeError
                a = np.array(raw, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"{what} must be numbers, shape (n, {cols})") from None
            if a.size == 0:
                a = a.reshape(0, cols)
            if a.ndim != 2 or a.shape[1] != cols:
                raise InvalidArgumentError(f"{what} must have shape (n, {cols}), got {a.shape}")
            a.setflags(write=False)
            return a

        kp = as_points(self.keypoints, 2, "keypoints")
        bad = ~np.isfinite(kp)
        if np.any(np.isinf(kp)) or np.any(bad[:, 0] != bad[:, 1]):
            i = int(np.flatnonzero(np.isinf(kp).any(1) | (bad[:, 0] != bad[:, 1]))[0])
            raise InvalidArgumentError(f"keypoints[{i}] must be finite (or NaN in both coordinates), got "
                                       f"{kp[i].tolist()}")
        bx = as_points(self.boxes, 4, "boxes")
        if not np.all(np.isfinite(bx)):
            i = int(np.flatnonzero(~np.isfinite(bx).all(1))[0])
            raise InvalidArgumentError(f"boxes[{i}] must be finite, got {bx[i].tolist()}")
        flipped = (bx[:, 2] < bx[:, 0]) | (bx[:, 3] < bx[:, 1])
        if np.any(flipped):
            i = int(np.flatnonzero(flipped)[0])
            raise InvalidArgumentError(f"boxes[{i}] must be [x_min, y_min, x_max, y_max] with min <= max, got "
                                       f"{bx[i].tolist()}")
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "boxes", bx)
        object.__setattr__(self, "keypoint_labels", _labels_tuple(self.keypoint_labels, len(kp), "keypoint_labels"))
        object.__setattr__(self, "box_labels", _labels_tuple(self.box_labels, len(bx), "box_labels"))
        if self.visible is not None:
            v = np.array(self.visible)
            if v.dtype != bool or v.shape != (len(kp),):
                raise InvalidArgumentError(f"visible must be {len(kp)} booleans, got {v.dtype} {v.shape}")
            v.setflags(write=False)
            object.__setattr__(self, "visible", v)

    def __eq__(self, other):
        import numpy as np

        if not isinstance(other, Labels):
            return NotImplemented
        same_vis = (self.visible is None and other.visible is None) or (
            self.visible is not None and other.visible is not None and np.array_equal(self.visible, other.visible))
        return (np.array_equal(self.keypoints, other.keypoints, equal_nan=True)
                and np.array_equal(self.boxes, other.boxes) and self.keypoint_labels == other.keypoint_labels
                and self.box_labels == other.box_labels and same_vis)

    __hash__ = None

    def __repr__(self):
        return (f"Labels({len(self.keypoints)} keypoints, {len(self.boxes)} boxes"
                f"{', labelled' if self.keypoint_labels or self.box_labels else ''})")

    # ------------------------------------------------------------------ records

    def to_record(self, image_hw=None) -> dict:
        """The JSON sidecar object (schema in the module docstring); ``image_hw`` adds ``size`` and ``visible``.

        ``visible`` comes from :attr:`visible` when set, else from ``image_hw``; unknown keypoints
        are written as ``null`` coordinates.
        """
        rec = {"coords": "pixel"}
        vis = self.visible
        if image_hw is not None:
            from .coords import as_hw

            h, w = as_hw(image_hw)
            rec["size"] = [w, h]
            if vis is None:
                vis = _inside(self.keypoints, (h, w))
        kps = []
        for i, (x, y) in enumerate(self.keypoints.tolist()):
            finite = math.isfinite(x)
            item = {"x": x if finite else None, "y": y if finite else None}
            if self.keypoint_labels is not None and self.keypoint_labels[i] is not None:
                item["label"] = self.keypoint_labels[i]
            if vis is not None:
                item["visible"] = bool(vis[i])
            kps.append(item)
        boxes = []
        for i, b in enumerate(self.boxes.tolist()):
            item = {"box": b}
            if self.box_labels is not None and self.box_labels[i] is not None:
                item["label"] = self.box_labels[i]
            boxes.append(item)
        rec["keypoints"], rec["boxes"], rec["schema"] = kps, boxes, LABELS_SCHEMA
        return rec

    @classmethod
    def from_record(cls, doc, image_hw=None) -> "Labels":
        """Labels from a parsed JSON sidecar object; :class:`InvalidArgumentError` naming the bad entry.

        With ``image_hw``, a ``size`` in the file must match it.
        """
        if not isinstance(doc, dict):
            raise InvalidArgumentError(f"expected a JSON object with \"keypoints\" and/or \"boxes\", got "
                                       f"{_json_type(doc)}")
        unknown = [k for k in doc if k not in _TOP_KEYS]
        if unknown:
            raise InvalidArgumentError(f"unknown key {unknown[0]!r} (expected {', '.join(_TOP_KEYS)})")
        schema = doc.get("schema", LABELS_SCHEMA)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise InvalidArgumentError(f'"schema" must be a version number, got {schema!r}')
        if schema > LABELS_SCHEMA:
            raise InvalidArgumentError(f"labels schema {schema} is newer than this stntool reads ({LABELS_SCHEMA})")
        coords = doc.get("coords", "pixel")
        if coords != "pixel":
            raise InvalidArgumentError(f'"coords" must be "pixel" (the only frame supported), got {coords!r}')
        if "size" in doc:
            size = doc["size"]
            if (not isinstance(size, list) or len(size) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
                raise InvalidArgumentError(f'"size" must be [width, height] in pixels, got {size!r}')
            if image_hw is not None:
                from .coords import as_hw

                h, w = as_hw(image_hw)
                if size != [w, h]:
                    raise LabelSizeError(f"labels are for a {size[0]}x{size[1]} image but the image is {w}x{h}",
                                         turned=size == [h, w])
        kps, kp_labels, vis = _read_keypoints(doc.get("keypoints", []))
        boxes, box_labels = _read_boxes(doc.get("boxes", []))
        return cls(keypoints=kps, boxes=boxes,
                   keypoint_labels=kp_labels if any(v is not None for v in kp_labels) else None,
                   box_labels=box_labels if any(v is not None for v in box_labels) else None,
                   visible=vis)


def _json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(v), type(v).__name__)


def _number(v, what) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidArgumentError(f"{what} is not a number (got {_json_type(v)}: {_short(v)})")
    try:
        v = float(v)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{what} is not finite")
    return v


def _short(v) -> str:
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_keypoints(items):
    if not isinstance(items, list):
        raise InvalidArgumentError(f'"keypoints" must be a list, got {_json_type(items)}')
    pts, labels, vis = [], [], []
    for i, it in enumerate(items):
        where = f"keypoints[{i}]"
        label, visible = None, None
        if isinstance(it, list):
            if len(it) != 2:
                raise InvalidArgumentError(f"{where} must be [x, y], got {len(it)} values")
            x, y = (_number(v, f"{where}[{k}]") for k, v in enumerate(it))
        elif isinstance(it, dict):
            unknown = [k for k in it if k not in _KEYPOINT_KEYS]
            if unknown:
                raise InvalidArgumentError(f"{where}: unknown key {unknown[0]!r} (expected x, y, label, visible)")
            if "x" not in it or "y" not in it:
                raise InvalidArgumentError(f'{where} needs "x" and "y"')
            if it["x"] is None and it["y"] is None:
                x = y = math.nan
            else:
                x, y = _number(it["x"], f"{where}.x"), _number(it["y"], f"{where}.y")
            label = _check_label(it.get("label"), f"{where}.label")
            if "visible" in it:
                visible = it["visible"]
                if not isinstance(visible, bool):
                    raise InvalidArgumentError(f"{where}.visible must be true or false, got {_short(visible)}")
        else:
            raise InvalidArgumentError(f'{where} must be [x, y] or {{"x": x, "y": y}}, got {_json_type(it)}')
        pts.append((x, y))
        labels.append(label)
        vis.append(visible)
    if all(v is None for v in vis):
        vis = None
    else:  # a keypoint without the flag (the list form has none) is visible
        vis = [True if v is None else v for v in vis]
    return pts, tuple(labels), vis


def _read_boxes(items):
    if not isinstance(items, list):
        raise InvalidArgumentError(f'"boxes" must be a list, got {_json_type(items)}')
    boxes, labels = [], []
    for i, it in enumerate(items):
        where = f"boxes[{i}]"
        label = None
        if isinstance(it, dict):
            unknown = [k for k in it if k not in _BOX_KEYS]
            if unknown:
                raise InvalidArgumentError(f"{where}: unknown key {unknown[0]!r} (expected box, label)")
            if "box" not in it:
                raise InvalidArgumentError(f'{where} needs "box": [x_min, y_min, x_max, y_max]')
            label = _check_label(it.get("label"), f"{where}.label")
            b, where = it["box"], where + ".box"
        else:
            b = it
        if not isinstance(b, list):
            raise InvalidArgumentError(f"{where} must be [x_min, y_min, x_max, y_max], got {_json_type(b)}")
        if len(b) != 4:
            raise InvalidArgumentError(f"{where} must be [x_min, y_min, x_max, y_max], got {len(b)} values")
        x0, y0, x1, y1 = (_number(v, f"{where}[{k}]") for k, v in enumerate(b))
        if x1 < x0 or y1 < y0:
            raise InvalidArgumentError(f"{where} has x_max < x_min or y_max < y_min: {b}")
        boxes.append((x0, y0, x1, y1))
        labels.append(label)
    return boxes, tuple(labels)


# --------------------------------------------------------------------------- files

def _read_text(path) -> str:
    import os
    import stat

    from .io import display

    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgumentError(f"cannot read {display(path)}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(f"cannot read {display(path)}: not a regular file")
        if st.st_size > MAX_LABEL_FILE_BYTES:
            raise InvalidArgumentError(f"cannot read {display(path)}: file too large ({st.st_size} bytes)")
        with open(path, "rb") as f:
            data = f.read(MAX_LABEL_FILE_BYTES + 1)
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {display(path)}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"{display(path)}: not UTF-8 text (byte {e.start})") from None


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed")


def parse_labels_json(text: str, image_hw=None) -> Labels:
    """:class:`Labels` from the text of a JSON sidecar (the reader without the file)."""
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:
        msg = str(e)
        if "not allowed" in msg:
            raise InvalidArgumentError(f"not valid JSON: {msg} (use numbers or null)") from None
        raise InvalidArgumentError(f"not valid JSON: {msg}") from None
    except RecursionError:
        raise InvalidArgumentError("not valid JSON: nested too deeply") from None
    return Labels.from_record(doc, image_hw)


def _read_with(parse, path, image_hw) -> Labels:
    """``parse(text, image_hw)`` of a file's text; its errors name the file."""
    from .io import display

    text = _read_text(path)
    try:
        return parse(text, image_hw)
    except InvalidArgumentError as e:
        again = type(e)(f"{display(path)}: {e}")  # (a LabelSizeError stays one)
        again.__dict__.update(e.__dict__)
        raise again from None


def read_labels_json(path, image_hw=None) -> Labels:
    """Read a JSON sidecar (schema in the module docstring).

    ``image_hw`` (H, W): the image the labels belong to; a ``size`` in the file must match it.
    Raises :class:`InvalidArgumentError` ``"<file>: <reason>"`` for an unreadable or bad file.
    """
    return _read_with(parse_labels_json, path, image_hw)


def labels_json_text(labels: Labels, image_hw) -> str:
    """The JSON sidecar text :func:`write_labels_json` writes (indented, ending in a newline)."""
    return json.dumps(labels.to_record(image_hw), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def write_labels_json(path, labels: Labels, image_hw, overwrite: bool = False):
    """Write ``labels`` as a JSON sidecar for an image of ``image_hw`` (H, W), atomically.

    Raises :class:`stntool.errors.ImageWriteError` when the file cannot be written (or exists and
    ``overwrite`` is False).
    """
    from .io import write_atomic

    write_atomic(path, labels_json_text(labels, image_hw).encode("utf-8"), overwrite=overwrite)


def labels_from_yolo_text(text: str, image_hw) -> Labels:
    """Boxes and classes from YOLO text (``class cx cy w h`` per line, see the module docstring)."""
    from .coords import as_hw

    h, w = as_hw(image_hw)
    boxes, classes = [], []
    for no, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            other = len(parts) >= 7  # a segmentation polygon, an oriented box, a pose: other YOLO tasks' lines
            raise InvalidArgumentError(f"line {no}: expected 5 values (class cx cy w h), got {len(parts)}" + (
                " (a YOLO segmentation, oriented-box or pose line? only boxes are read; masks go with --masks)"
                if other else ""))
        try:
            cls = int(parts[0])
        except ValueError:
            raise InvalidArgumentError(f"line {no}: class {parts[0]!r} is not a whole number") from None
        if cls < 0:
            raise InvalidArgumentError(f"line {no}: class {cls} is negative")
        vals = []
        for name, p in zip(("cx", "cy", "w", "h"), parts[1:]):
            try:
                v = float(p)
            except ValueError:
                raise InvalidArgumentError(f"line {no}: {name} {p!r} is not a number") from None
            if not 0.0 <= v <= 1.0:  # also refuses nan
                raise InvalidArgumentError(f"line {no}: {name} = {p} is outside [0, 1] (YOLO values are fractions "
                                           f"of the image size)")
            vals.append(v)
        cx, cy, bw, bh = vals
        boxes.append(((cx - bw / 2) * w - 0.5, (cy - bh / 2) * h - 0.5, (cx + bw / 2) * w - 0.5,
                      (cy + bh / 2) * h - 0.5))
        classes.append(cls)
    return Labels(boxes=boxes, box_labels=tuple(classes) if classes else None)


def read_yolo(path, image_hw) -> Labels:
    """Read a YOLO ``.txt`` file for an image of ``image_hw`` (H, W): boxes with integer class labels.

    Raises :class:`InvalidArgumentError` ``"<file>: line N: <reason>"`` for a bad file.
    """
    return _read_with(labels_from_yolo_text, path, image_hw)


def yolo_text(labels: Labels, image_hw) -> str:
    """YOLO text for the boxes of ``labels`` (clipped to the image; every box needs an integer class >= 0).

    Keypoints are not written (plain YOLO has no place for them).
    """
    import numpy as np

    from .coords import as_hw

    h, w = as_hw(image_hw)
    if len(labels.boxes) and labels.box_labels is None:
        raise InvalidArgumentError("YOLO needs a class for every box; these boxes have no labels")
    lines = []
    for i, b in enumerate(labels.boxes):
        cls = labels.box_labels[i]
        if isinstance(cls, bool) or not isinstance(cls, int) or cls < 0:
            raise InvalidArgumentError(f"boxes[{i}]: YOLO classes are integers >= 0, got {cls!r}")
        x0, x1 = np.clip([b[0], b[2]], -0.5, w - 0.5) + 0.5
        y0, y1 = np.clip([b[1], b[3]], -0.5, h - 0.5) + 0.5
        lines.append(f"{cls} {(x0 + x1) / (2 * w):.6f} {(y0 + y1) / (2 * h):.6f} {(x1 - x0) / w:.6f} "
                     f"{(y1 - y0) / h:.6f}\n")
    return "".join(lines)


def write_yolo(path, labels: Labels, image_hw, overwrite: bool = False):
    """Write the boxes of ``labels`` as a YOLO ``.txt`` file for an image of ``image_hw``, atomically."""
    from .io import write_atomic

    write_atomic(path, yolo_text(labels, image_hw).encode("utf-8"), overwrite=overwrite)


# --------------------------------------------------------------------------- masks

_MASK_DTYPES = ("uint8", "uint16", "bool")


def check_mask(mask, image_hw):
    """Check that ``mask`` is a (H, W) or (H, W, C) uint8 / uint16 / bool array of the image's size.

    Raises :class:`InvalidArgumentError`, e.g. ``"mask is 64x48 but the image is 640x480"`` (W x H).
    """
    import numpy as np

    from .coords import as_hw

    h, w = as_hw(image_hw)
    if not isinstance(mask, np.ndarray) or mask.ndim not in (2, 3) or mask.size == 0:
        shape = getattr(mask, "shape", None)
        raise InvalidArgumentError(f"a mask must be an (H, W) or (H, W, C) array, got {shape if shape else type(mask)}")
    if mask.dtype.name not in _MASK_DTYPES:
        raise InvalidArgumentError(f"a mask must be uint8, uint16 or bool, got {mask.dtype}")
    if mask.shape[:2] != (h, w):
        raise InvalidArgumentError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}")


def warp_mask(mask, spec, backend: str = "auto", image_hw=None):
    """Warp a segmentation mask with the same record as its image: nearest sampling, constant fill 0.

    ``mask`` is (H, W) or (H, W, C) uint8 / uint16 / bool; the record's mode, padding and fill are
    replaced by ``nearest``, ``constant`` and 0, so every output value is an input value or 0 (no
    blending of class ids). Channels are warped independently (no alpha handling). ``image_hw``
    (or ``spec.in_hw``) is the image's size, which the mask must have (:func:`check_mask`).
    Returns the warped mask, ``spec.out_hw`` (or the mask's size), same dtype and layout.
    """
    import numpy as np

    from .records import apply_spec

    hw = image_hw if image_hw is not None else spec.in_hw
    check_mask(mask, hw if hw is not None else mask.shape[:2])
    nearest = spec.replace(mode="nearest", padding="constant", fill=(0.0,))
    work = mask.view(np.uint8) if mask.dtype == bool else mask
    if work.ndim == 3 and work.shape[2] in (2, 4):  # apply_spec would treat the last channel as alpha
        out = np.stack([apply_spec(np.ascontiguousarray(work[..., k]), nearest, backend=backend)
                        for k in range(work.shape[2])], axis=-1)
    else:
        out = apply_spec(np.ascontiguousarray(work), nearest, backend=backend)
    return out.astype(bool) if mask.dtype == bool else out


# --------------------------------------------------------------------------- where points land

def _inside(pts, out_hw):
    import numpy as np

    h, w = out_hw
    with np.errstate(invalid="ignore"):
        return ((pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
                & np.isfinite(pts).all(axis=1))


def _onto_edges(v, sizes):
    """``v`` (pixel coordinates, a column per axis of ``sizes`` pixels: ``[W, H]`` for points, ``[W, H, W, H]``
    for box extents) with values within :data:`EDGE_TOL` of an edge of the extent ``[-0.5, size - 0.5]`` put
    on it."""
    import numpy as np

    lo, hi = -0.5, np.asarray(sizes, dtype=np.float64) - 0.5
    with np.errstate(invalid="ignore"):
        v = np.where(np.abs(v - lo) <= EDGE_TOL, lo, v)
        return np.where(np.abs(v - hi) <= EDGE_TOL, hi, v)


class _ThetaInverse:
    """Exact ``out_pix_from_in_pix`` of a θ record, with its projective horizon."""

    def __init__(self, spec, in_hw, out_hw):
        import numpy as np

        from .transforms import pixel_map_from_theta

        m = pixel_map_from_theta(np.array(spec.theta, dtype=np.float64), in_hw, out_hw, spec.align_corners)
        self.projective = len(spec.theta) == 3 and (spec.theta[2][0] != 0 or spec.theta[2][1] != 0)
        lin = m[:2, :2] if not self.projective else m
        sv = np.linalg.svd(lin, compute_uv=False)
        self.inv = None
        if np.all(np.isfinite(m)) and sv[-1] > 1e-12 * sv[0]:
            self.inv = np.linalg.inv(m)
        # the front sheet: the side of the horizon where the output's centre is
        centre = np.array([(out_hw[1] - 1) / 2.0, (out_hw[0] - 1) / 2.0, 1.0])
        self.front = -1.0 if m[2] @ centre < 0 else 1.0

    def homogeneous(self, pts):
        """``(u, v, s)`` with ``s`` signed so that points in front have ``s > 0``."""
        h = pts @ self.inv[:2, :2].T + self.inv[:2, 2]
        s = pts @ self.inv[2, :2] + self.inv[2, 2]
        return h * self.front, s * self.front

    def __call__(self, pts):
        import numpy as np

        if self.inv is None:
            return np.full(pts.shape, np.nan)
        uv, s = self.homogeneous(pts)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = uv / s[:, None]
        q[~(s > 0)] = np.nan
        return q


class _NumericInverse:
    """``out_pix_from_in_pix`` of a spline or elastic record by damped Newton iterations (vectorized)."""

    def __init__(self, spec, in_hw, out_hw, tol):
        import numpy as np

        from .maps import base_map, lattice_map, lattice_plan

        self.out_hw = out_hw
        self.tol = tol
        base = base_map(spec, in_hw, out_hw)
        self.spacing = None  # the scale (output px) on which the map varies, for restarts
        self.field_reach = 0.0  # the largest elastic displacement (input px)
        if spec.elastic is None:
            self.f = base
        else:
            plan = lattice_plan(spec, in_hw)
            # the lattice's nodes sit at output pixels ((b - 1) step, (a - 1) step) (maps.elastic_displacement)
            hc, wc = plan.lattice.shape[:2]
            ys, xs = np.meshgrid((np.arange(hc) - 1.0) * plan.step, (np.arange(wc) - 1.0) * plan.step, indexing="ij")
            d = plan.lattice.reshape(-1, 2) - base(np.stack([xs.ravel(), ys.ravel()], -1))
            self.spacing, self.field_reach = float(plan.step), float(np.hypot(d[:, 0], d[:, 1]).max())
            lat = plan.lattice  # the Jacobian at the nodes, by central differences
            jx = (lat[1:-1, 2:] - lat[1:-1, :-2]) / (2.0 * plan.step)
            jy = (lat[2:, 1:-1] - lat[:-2, 1:-1]) / (2.0 * plan.step)
            self._dets = (jx[..., 0] * jy[..., 1] - jx[..., 1] * jy[..., 0]).ravel()
            ny, nx = jx.shape[:2]
            ys, xs = np.meshgrid(np.arange(ny) * float(plan.step), np.arange(nx) * float(plan.step), indexing="ij")
            self._det_at = np.stack([xs.ravel(), ys.ravel()], -1)
            hi = np.array([out_hw[1] - 0.5, out_hw[0] - 0.5])

            def elastic_map(p):
                good = np.isfinite(p).all(1)
                if not good.all():
                    q = np.full(p.shape, np.nan)
                    if good.any():
                        q[good] = elastic_map(p[good])
                    return q
                c = np.clip(p, -0.5, hi)
                q = lattice_map(plan, c)
                out = np.any(c != p, axis=1)
                if np.any(out):
                    q[out] += base(p[out]) - base(c[out])
                return q

            self.f = elastic_map
        self._fit = None
        self._folds = None

    def folds(self):
        """``(F, 2)`` output points near which the map may fold over itself (its Jacobian changes sign or
        comes near to), on a grid over the output: the elastic lattice's nodes, or 33 x 33 points."""
        import numpy as np

        if self._folds is None:
            if self.spacing is None:  # a spline: its Jacobian on a grid over the output
                h, w = self.out_hw
                ys, xs = np.meshgrid(np.linspace(-0.5, h - 0.5, 33), np.linspace(-0.5, w - 0.5, 33), indexing="ij")
                q = np.stack([xs.ravel(), ys.ravel()], -1)
                v = self.f(np.concatenate([q, q + [_FD_STEP, 0.0], q + [0.0, _FD_STEP]])).reshape(3, -1, 2)
                jx, jy = (v[1] - v[0]) / _FD_STEP, (v[2] - v[0]) / _FD_STEP
                self._dets, self._det_at = jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0], q
            d = self._dets
            finite = np.isfinite(d)
            typical = float(np.median(np.abs(d[finite]))) if finite.any() else 0.0
            sign = 1.0 if np.sum(d[finite]) >= 0 else -1.0
            self._folds = self._det_at[~finite | (sign * d < 0.1 * typical)]
        return self._folds

    def _affine_fit(self):
        """``(C (3, 2), reach)``: the least-squares affine ``out ≈ [in, 1] @ C`` over the output, and how far
        (output px) a point's solution may lie from it."""
        import numpy as np

        if self._fit is None:
            h, w = self.out_hw
            ys, xs = np.meshgrid(np.linspace(-0.5, h - 0.5, 17), np.linspace(-0.5, w - 0.5, 17), indexing="ij")
            q = np.stack([xs.ravel(), ys.ravel()], -1)
            p = self.f(q)
            ok = np.isfinite(p).all(1)
            if ok.sum() >= 3:
                design = np.hstack([p[ok], np.ones((int(ok.sum()), 1))])
                coef = np.linalg.lstsq(design, q[ok], rcond=None)[0]
                dev = float(np.hypot(*(design @ coef - q[ok]).T).max())
                reach = 1.5 * dev + np.linalg.norm(coef[:2], 2) * self.field_reach
            else:
                coef, reach = np.full((3, 2), np.nan), np.nan
            self._fit = (coef, reach)
        return self._fit

    def _local_starts(self, targets, centres, tries=4, fine=False):
        """``(P, tries, 2)`` starting points (NaN: none) for points that Newton's first run left on a fold.

        The map is sampled on a grid around each point's affine start, as far as its solution may lie
        (``reach``) and within the output and a margin; every grid cell whose mapped triangles contain the
        target gives a start (its linear interpolation there), and the grid points whose values come
        nearest the target fill the remaining places. The grid's step is twice the map's scale
        (``spacing``), or half of it when ``fine``.
        """
        import numpy as np

        reach = self._affine_fit()[1]
        h, w = self.out_hw
        spacing = self.spacing or max(1.0, max(h, w) / 64.0)
        half = max(reach, 0.0) + 2.0 * spacing
        margin = 2.0 * spacing
        lo_lim = np.array([-0.5 - margin, -0.5 - margin])
        hi_lim = np.array([w - 0.5 + margin, h - 0.5 + margin])
        lo = np.clip(centres - half, lo_lim, hi_lim)
        hi = np.clip(centres + half, lo_lim, hi_lim)
        # the grid's size from the window before clipping, the same for every point: a point's starts do not
        # depend on the other points of the call (the largest clipped window set it, and a point solved alone
        # could come out otherwise than among others)
        k = int(min(65, max(3, math.ceil(2.0 * half / max((0.5 if fine else 2.0) * spacing, 0.5)) + 1)))
        t = np.linspace(0.0, 1.0, k)
        out = np.full((len(targets), tries, 2), np.nan)
        chunk = max(1, 250_000 // (k * k))  # about 30 MB of temporaries
        with np.errstate(all="ignore"):
            for a in range(0, len(targets), chunk):
                tg, l0, l1 = targets[a:a + chunk], lo[a:a + chunk], hi[a:a + chunk]
                n = len(tg)
                gx = l0[:, 0, None] + (l1[:, 0] - l0[:, 0])[:, None] * t  # (n, k)
                gy = l0[:, 1, None] + (l1[:, 1] - l0[:, 1])[:, None] * t
                grid = np.stack(np.broadcast_arrays(gx[:, None, :], gy[:, :, None]), -1)  # (n, k, k, 2) [y][x]
                val = self._on_grid(grid, l0 == l1)
                cand = np.full((n, tries, 2), np.nan)
                filled = np.zeros(n, np.int64)
                # cells whose two triangles (00, 10, 11) and (00, 11, 01) contain the target
                v00, v10, v01, v11 = val[:, :-1, :-1], val[:, :-1, 1:], val[:, 1:, :-1], val[:, 1:, 1:]
                g00, g10, g01, g11 = grid[:, :-1, :-1], grid[:, :-1, 1:], grid[:, 1:, :-1], grid[:, 1:, 1:]
                tp = tg[:, None, None, :]
                found_at, found = [], []
                for va, vb, vc, ga, gb, gc in ((v00, v10, v11, g00, g10, g11), (v00, v11, v01, g00, g11, g01)):
                    e1, e2, r = vb - va, vc - va, tp - va
                    det = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
                    u = (r[..., 0] * e2[..., 1] - r[..., 1] * e2[..., 0]) / det
                    v = (e1[..., 0] * r[..., 1] - e1[..., 1] * r[..., 0]) / det
                    inside = (u >= 0) & (v >= 0) & (u + v <= 1) & np.isfinite(det) & (det != 0)
                    pts, cells = np.nonzero(inside.reshape(n, -1))
                    if pts.size:
                        found_at.append(pts)
                        found.append((ga + u[..., None] * (gb - ga) + v[..., None] * (gc - ga)).reshape(n, -1, 2)[
                            pts, cells])
                if found_at:
                    # a point's starts: those inside the output first (where it is seen), the nearest to its
                    # affine start first (a finer grid finds more cells, the first in raster order were
                    # often all in the margin)
                    pts, est = np.concatenate(found_at), np.concatenate(found)
                    outside = self._outside_by(est) > 0
                    near_start = np.hypot(*(est - centres[a:a + chunk][pts]).T)
                    order = np.lexsort((near_start, outside, pts))
                    pts, est = pts[order], est[order]
                    first = np.r_[0, np.flatnonzero(pts[1:] != pts[:-1]) + 1]
                    rank = np.arange(len(pts)) - np.repeat(first, np.diff(np.r_[first, len(pts)]))
                    keep = rank < tries
                    cand[pts[keep], rank[keep]] = est[keep]
                    np.add.at(filled, pts[keep], 1)
                d2 = ((val - tp) ** 2).sum(-1).reshape(n, -1)
                d2[~np.isfinite(d2)] = np.inf
                m = min(tries, d2.shape[1])
                near = np.argpartition(d2, m - 1, axis=1)[:, :m]
                near = np.take_along_axis(near, np.take_along_axis(d2, near, 1).argsort(1), 1)
                nearest = np.take_along_axis(grid.reshape(n, -1, 2), near[..., None], 1)
                for j in range(m):
                    take = filled < tries
                    cand[take, filled[take]] = nearest[take, j]
                    filled[take] += 1
                out[a:a + chunk] = cand
        return out

    def _on_grid(self, grid, flat):
        """The map at ``grid`` ``(n, k, k, 2)`` (``[y][x]``), evaluated once per distinct point of a window that
        clipping flattened (``flat[i]``: x, y lie at the edge of the output and margin): each of its k x k
        points is then one of k, or one, and a far point's window (a sidecar coordinate of 1e7 px, a whole
        box outline of them) costs as little."""
        import numpy as np

        val = np.empty(grid.shape)
        fx, fy = flat[:, 0], flat[:, 1]
        for pick, sub in ((~fx & ~fy, lambda g: g), (fy & ~fx, lambda g: g[:, :1]), (fx & ~fy, lambda g: g[:, :, :1]),
                          (fx & fy, lambda g: g[:, :1, :1])):
            if pick.any():
                part = sub(grid[pick])
                val[pick] = self.f(part.reshape(-1, 2)).reshape(part.shape)
        return val

    def _newton(self, target, x, max_iter=30):
        """Damped Newton on ``f(x) = target`` from ``x`` ``(P, 2)``: ``(x, residual)`` (inf where ``f`` failed).

        Each step is halved until the residual shrinks (up to 8 times); a point stops when it cannot
        improve, or when it gained less than 10 % over its last 4 steps (stalled on a fold of the map).
        """
        import numpy as np

        f = self.f
        x = x.copy()
        with np.errstate(all="ignore"):
            r = f(x) - target
            err = np.hypot(r[:, 0], r[:, 1])
            err[~np.isfinite(err)] = np.inf
            stuck = ~np.isfinite(x).all(1)
            span = 4.0 * max(self.out_hw)
            history = np.full((4, len(x)), np.inf)
            for it in range(max_iter):
                act = np.flatnonzero((err > 1e-3 * self.tol) & ~stuck)
                if act.size == 0:
                    break
                xa, ra, ta = x[act], r[act], target[act]
                n = len(act)
                fa = ra + ta  # forward differences: the maps are smooth on the pixel scale
                probe = f(np.concatenate([xa + [_FD_STEP, 0.0], xa + [0.0, _FD_STEP]]))
                jx, jy = (probe[:n] - fa) / _FD_STEP, (probe[n:] - fa) / _FD_STEP
                det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
                step = np.stack([(-jy[:, 1] * ra[:, 0] + jy[:, 0] * ra[:, 1]) / det,
                                 (jx[:, 1] * ra[:, 0] - jx[:, 0] * ra[:, 1]) / det], -1)
                length = np.hypot(step[:, 0], step[:, 1])
                step *= np.minimum(1.0, span / np.where(length > 0, length, 1.0))[:, None]
                t = np.ones(n)
                pending = np.isfinite(step).all(1)
                improved = np.zeros(n, bool)
                for _ls in range(8):
                    idx = np.flatnonzero(pending)
                    if idx.size == 0:
                        break
                    xn = xa[idx] + t[idx, None] * step[idx]
                    rn = f(xn) - ta[idx]
                    en = np.hypot(rn[:, 0], rn[:, 1])
                    good = np.isfinite(en) & (en < err[act[idx]])
                    gi = idx[good]
                    x[act[gi]], r[act[gi]], err[act[gi]] = xn[good], rn[good], en[good]
                    improved[gi] = True
                    pending[gi] = False
                    t[idx[~good]] *= 0.5
                stalled = err[act] > 0.9 * history[it % 4, act]
                history[it % 4, act] = err[act]
                stuck[act[~improved | stalled]] = True
        return x, err

    def _outside_by(self, x):
        """How far (output px) points lie outside the output's extent (0 inside)."""
        import numpy as np

        h, w = self.out_hw
        dx = np.maximum(np.maximum(-0.5 - x[:, 0], x[:, 0] - (w - 0.5)), 0.0)
        dy = np.maximum(np.maximum(-0.5 - x[:, 1], x[:, 1] - (h - 0.5)), 0.0)
        return np.hypot(dx, dy)

    def __call__(self, pts):
        """Output points for input points ``(P, 2)``.

        A map that folds has several solutions for some points; one inside the output (where the
        point is seen) is preferred: converged solutions outside it, but near enough that the map may
        also bring the point inside, are searched again like points that did not converge.
        """
        import numpy as np

        out = np.full(pts.shape, np.nan)
        todo = np.flatnonzero(np.isfinite(pts).all(1))
        if todo.size == 0:
            return out
        coef, reach = self._affine_fit()
        x0 = pts[todo] @ coef[:2] + coef[2]
        x, err = self._newton(pts[todo], x0)

        def rank(x, err):  # 0: solved inside, 1: solved outside but maybe seen inside too, 2: solved outside, 3: not
            with np.errstate(invalid="ignore"):
                by = self._outside_by(x)
            r = np.where(by > 0, np.where(by <= 2.0 * reach, 1, 2), 0)
            return np.where(err <= self.tol, r, 3)

        level = rank(x, err)
        near = np.flatnonzero(level == 1)
        if near.size:  # a second solution inside needs a fold of the map nearby
            folds = self.folds()
            h, w = self.out_hw
            limit = 2.0 * reach + 2.0 * (self.spacing or max(h, w) / 32.0)
            keep = np.zeros(near.size, bool)
            chunk = max(1, 1_000_000 // max(1, len(folds)))
            for a in range(0, near.size if len(folds) else 0, chunk):
                xs = x[near[a:a + chunk]]
                d2 = (xs[:, :1] - folds[:, 0]) ** 2 + (xs[:, 1:] - folds[:, 1]) ** 2
                keep[a:a + chunk] = d2.min(1) <= limit * limit
            level[near[~keep]] = 2
        for fine in (False, True):  # search again from a local grid of samples (folded maps)
            rest = np.flatnonzero(((level == 1) | (level == 3)) & np.isfinite(x0).all(1))
            if rest.size == 0:
                break
            starts = self._local_starts(pts[todo[rest]], x0[rest], 16, fine)
            ri, ti = np.nonzero(np.isfinite(starts).all(-1))
            if ri.size == 0:
                continue
            x2, err2 = self._newton(pts[todo[rest[ri]]], starts[ri, ti])  # every start at once
            lv2 = rank(x2, err2)
            order = np.lexsort((err2, lv2, ri))  # per point, the best of its starts first
            first = order[np.r_[True, ri[order][1:] != ri[order][:-1]]]
            idx, x2, err2, lv2 = rest[ri[first]], x2[first], err2[first], lv2[first]
            better = (lv2 < level[idx]) & ((lv2 != 1) | (level[idx] == 3)) | ((lv2 == 3) & (err2 < err[idx]))
            x[idx[better]], err[idx[better]], level[idx[better]] = x2[better], err2[better], lv2[better]
        ok = err <= self.tol
        out[todo[ok]] = x[ok]
        return out


def _inverse_map(spec, in_hw, tol):
    from .maps import record_in_hw

    in_hw = record_in_hw(spec, in_hw)
    out_hw = spec.out_hw or in_hw
    if spec.theta is None and spec.tps is None:
        raise InvalidArgumentError("the warp record has no theta or tps yet")
    if spec.tps is None and spec.elastic is None:
        return _ThetaInverse(spec, in_hw, out_hw), out_hw
    return _NumericInverse(spec, in_hw, out_hw, tol), out_hw


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol <= 1:
        raise InvalidArgumentError(f"tol must be a number in (0, 1] pixels, got {tol!r}")
    return float(tol)


def out_from_in(spec, pts_in, in_hw=None, tol: float = 1e-3):
    """Where input pixel points ``pts_in`` land in the output of ``spec`` (inverse of :func:`stntool.maps.in_from_out`).

    Parameters
    ----------
    spec : WarpSpec
        Any record: θ (affine or projective), thin-plate spline, either with an elastic field.
    pts_in : (..., 2) array_like
        ``(x, y)`` points in the input's pixel frame (:mod:`stntool.coords`).
    in_hw : (H, W), optional
        The input's size (default ``spec.in_hw``; when both are given they must agree). The
        output's is ``spec.out_hw``, default the same.
    tol : float
        For splines and elastic fields: the largest residual ``|in_from_out(p_out) - p_in|`` in input
        pixels accepted as converged.

    Returns float64 ``(..., 2)`` output pixel points; NaN for points with no place in the output
    (behind a projective horizon, a singular θ, or a numerical inverse that did not converge).
    θ records are inverted exactly; see the module docstring for the rest.

    Example
    -------
    >>> from stntool.records import WarpSpec
    >>> out_from_in(WarpSpec(theta=((0.5, 0, 0), (0, 0.5, 0))), [[0.0, 0.0]], (4, 4)).tolist()  # zoom x2
    [[-1.5, -1.5]]
    """
    import numpy as np

    inv, _ = _inverse_map(spec, in_hw, _check_tol(tol))
    try:
        p = np.array(pts_in, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("points must be numbers, shape (..., 2)") from None
    if p.ndim < 1 or p.shape[-1] != 2:
        raise InvalidArgumentError(f"points must have shape (..., 2), got {p.shape}")
    flat = p.reshape(-1, 2)
    return inv(flat).reshape(p.shape)


# --------------------------------------------------------------------------- boxes and labels

@dataclass(frozen=True)
class LabelsInfo:
    """What :func:`transform_labels` did.

    Attributes
    ----------
    keypoints_visible : int
        Keypoints inside the output.
    keypoints_lost : int
        Keypoints with no place in the output (NaN: behind a projective horizon, or not converged).
    boxes_kept : tuple of int
        Indices (into the input boxes) of the boxes kept, in order.
    box_visibility : tuple of float
        For each kept box, clipped area / unclipped area of its warped extent.
    boxes_dropped : int
        Boxes below ``min_visibility`` or with nothing left inside the output.
    """

    keypoints_visible: int
    keypoints_lost: int
    boxes_kept: tuple
    box_visibility: tuple
    boxes_dropped: int

    def to_record(self) -> dict:
        return {"keypoints_visible": self.keypoints_visible, "keypoints_lost": self.keypoints_lost,
                "boxes_kept": list(self.boxes_kept), "box_visibility": list(self.box_visibility),
                "boxes_dropped": self.boxes_dropped}


def _outline(boxes, n):
    """``(B, 4 n, 2)`` points around each box's edge, ``n`` per side, counter-clockwise from (x0, y0)."""
    import numpy as np

    t = np.arange(n) / n
    x0, y0, x1, y1 = (boxes[:, k:k + 1] for k in range(4))
    xs = np.concatenate([x0 + (x1 - x0) * t, np.broadcast_to(x1, (len(boxes), n)), x1 - (x1 - x0) * t,
                         np.broadcast_to(x0, (len(boxes), n))], axis=1)
    ys = np.concatenate([np.broadcast_to(y0, (len(boxes), n)), y0 + (y1 - y0) * t,
                         np.broadcast_to(y1, (len(boxes), n)), y1 - (y1 - y0) * t], axis=1)
    return np.stack([xs, ys], -1)


def _clip_front(poly, s, delta):
    """Sutherland-Hodgman: the part of convex polygon ``poly (M, 2)`` where ``s >= delta`` (``s``: per vertex)."""
    import numpy as np

    out = []
    m = len(poly)
    for i in range(m):
        p, q, sp, sq = poly[i], poly[(i + 1) % m], s[i] - delta, s[(i + 1) % m] - delta
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            out.append(p + (q - p) * (sp / (sp - sq)))
    return np.array(out).reshape(-1, 2)


def _horizon_shares(boxes, inv, out_hw):
    """``{i: share}`` for the boxes a projective horizon crosses (their warped area is infinite): the share of
    box ``i``'s own area that lands in front of the horizon and inside the output's extent, found in the input
    by clipping the box to the half-planes (linear in input coordinates) where ``s > 0`` and the output's four
    edges hold."""
    import numpy as np

    if not (isinstance(inv, _ThetaInverse) and inv.projective and inv.inv is not None) or len(boxes) == 0:
        return {}
    h, w = out_hw
    a = inv.inv * inv.front  # rows: u, v, s as linear functions of (x, y, 1)
    planes = (a[2], a[0] + 0.5 * a[2], (w - 0.5) * a[2] - a[0], a[1] + 0.5 * a[2], (h - 0.5) * a[2] - a[1])
    corners = _outline(boxes, 1)
    shares = {}
    for i, poly in enumerate(corners):
        s = poly @ a[2, :2] + a[2, 2]
        whole = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        if not (np.any(s > 0) and np.any(s <= 0)) or not (np.isfinite(whole) and whole > 0):
            continue
        part = poly
        for k, pl in enumerate(planes):
            vals = part @ pl[:2] + pl[2]
            part = _clip_front(part, vals, 1e-9 * float(np.abs(s).max()) if k == 0 else 0.0)
            if len(part) < 3:
                break
        area = float(_areas(part[None], np.array([len(part)]))[0]) if len(part) >= 3 else 0.0
        shares[i] = min(1.0, area / whole)
    return shares


def _warped_outlines(boxes, inv) -> list:
    """Each box's outline in the output: a polygon ``(M, 2)``, or ``(0, 2)`` where the box has no place there
    (its corners for θ, which keeps lines straight, and for a projective θ whose horizon crosses the box, the part
    of the box in front of it; :data:`OUTLINE_POINTS_PER_SIDE` points per side for splines, and at least one
    per lattice cell for elastic fields, of which those with a place in the output)."""
    import numpy as np

    none = np.zeros((0, 2))
    if len(boxes) == 0:
        return []
    if isinstance(inv, _ThetaInverse):
        if inv.inv is None:
            return [none] * len(boxes)
        corners = _outline(boxes, 1)  # (B, 4, 2): a line stays a line
        if not inv.projective:
            return list(inv(corners.reshape(-1, 2)).reshape(corners.shape))
        uv, s = inv.homogeneous(corners.reshape(-1, 2))
        uv, s = uv.reshape(len(boxes), 4, 2), s.reshape(len(boxes), 4)
        polys = [none] * len(boxes)
        for i in range(len(boxes)):
            if np.all(s[i] > 0):
                polys[i] = uv[i] / s[i][:, None]
            elif np.any(s[i] > 0):  # a horizon crosses the box: its part in front
                delta = 1e-9 * float(np.abs(s[i]).max())
                part = _clip_front(corners[i], s[i], delta)
                if len(part):  # else nothing in front of the horizon by more than rounding: no place in the output
                    u2, s2 = inv.homogeneous(part)
                    polys[i] = u2 / np.maximum(s2, delta)[:, None]
        return polys
    n = np.full(len(boxes), OUTLINE_POINTS_PER_SIDE)
    if inv.spacing:  # an elastic field: at least one outline point per lattice cell (up to 256 per side), box by box
        with np.errstate(over="ignore", invalid="ignore"):
            side = np.max(boxes[:, 2:] - boxes[:, :2], axis=1)  # inf for a box wider than float64 can say
            n = np.where(side < 8 * n * inv.spacing, np.maximum(n, np.ceil(side / inv.spacing)), 8 * n).astype(int)
    rings = [None] * len(boxes)  # each box's outline, whatever the other boxes of the call
    for k in np.unique(n):
        idx = np.flatnonzero(n == k)
        for i, ring in zip(idx, _outline(boxes[idx], int(k))):
            rings[i] = ring
    pts = inv(np.concatenate(rings))
    out, at = [], 0
    for ring in rings:
        p = pts[at:at + len(ring)]
        at += len(ring)
        out.append(p[np.isfinite(p).all(-1)])
    return out


def _padded(polys):
    """Polygons of several lengths as one array ``(B, M, 2)`` (rows padded with their first vertex) and each one's
    vertex count ``(B,)``."""
    import numpy as np

    n = np.array([len(p) for p in polys], dtype=np.int64)
    m = int(n.max()) if len(n) else 0
    out = np.zeros((len(polys), max(m, 1), 2))
    for i, p in enumerate(polys):
        if len(p):
            out[i, :len(p)] = p
            out[i, len(p):] = p[0]
    return out, n


def _next_vertex(n, m):
    """``(B, m)``: the index of each vertex's successor around its polygon of ``n`` vertices (0 past the last)."""
    import numpy as np

    k = np.arange(m)[None, :]
    return np.where(k + 1 < n[:, None], k + 1, 0)


def _clip_to_image(polys, n, w, h):
    """Sutherland-Hodgman, for every polygon at once (``polys (B, M, 2)``, ``n`` vertices each, see
    :func:`_padded`): the part of each inside the output's extent ``[-0.5, w - 0.5] x [-0.5, h - 0.5]``, as
    ``(polygons, counts)``. The region is convex, so any polygon clips right: where a concave one leaves the image
    and comes back, the parts are joined along the edge, which adds no area and no extent."""
    import numpy as np

    for axis, bound, sign in ((0, -0.5, 1.0), (0, w - 0.5, -1.0), (1, -0.5, 1.0), (1, h - 0.5, -1.0)):
        b, m = polys.shape[:2]
        if b == 0 or not n.any():
            break
        valid = np.arange(m)[None, :] < n[:, None]
        q = np.take_along_axis(polys, _next_vertex(n, m)[..., None], axis=1)
        d, dq = sign * (polys[..., axis] - bound), sign * (q[..., axis] - bound)  # >= 0 inside
        inside = (d >= 0) & valid
        cross = ((d >= 0) != (dq >= 0)) & valid
        t = np.where(cross, d / np.where(cross, d - dq, 1.0), 0.0)
        at = polys + (q - polys) * t[..., None]
        at[..., axis] = np.where(cross, bound, at[..., axis])  # on the edge exactly
        keep = np.stack([inside, cross], axis=2).reshape(b, 2 * m)  # each vertex, then where its edge crosses
        both = np.stack([polys, at], axis=2).reshape(b, 2 * m, 2)
        order = np.argsort(~keep, axis=1, kind="stable")  # the kept ones first, in order
        n = keep.sum(1)
        polys = np.take_along_axis(both, order[..., None], axis=1)[:, :max(1, int(n.max()))]
    return polys, n


def _areas(polys, n):
    """``(B,)``: the area each polygon encloses (shoelace; 0 with fewer than three vertices)."""
    import numpy as np

    b, m = polys.shape[:2]
    polys = polys - polys[:, :1]  # about the first vertex: far from the origin the products would cancel or overflow
    q = np.take_along_axis(polys, _next_vertex(n, m)[..., None], axis=1)
    terms = polys[..., 0] * q[..., 1] - polys[..., 1] * q[..., 0]
    # summed in order (a running sum read at each polygon's last vertex): the same bits whatever the other
    # polygons of the call pad the rows to (a pairwise sum groups a row's terms by its length)
    running = np.cumsum(np.where(np.arange(m)[None, :] < n[:, None], terms, 0.0), axis=1)
    total = running[np.arange(b), np.maximum(n, 1) - 1]
    return np.where(n >= 3, 0.5 * np.abs(total), 0.0)


def _extents(polys, n):
    """``(B, 4)``: each polygon's axis-aligned extent ``x0, y0, x1, y1`` (NaN for one without vertices)."""
    import numpy as np

    valid = (np.arange(polys.shape[1])[None, :] < n[:, None])[..., None]
    lo = np.where(valid, polys, np.inf).min(1)
    hi = np.where(valid, polys, -np.inf).max(1)
    ext = np.concatenate([lo, hi], axis=1)
    ext[n == 0] = np.nan
    return ext


def transform_labels(labels: Labels, spec, in_hw=None, min_visibility: float = 0.0, tol: float = 1e-3):
    """Move keypoints and boxes with the pixels of ``spec``: ``(Labels in the output, LabelsInfo)``.

    Parameters
    ----------
    labels : Labels
        In the input's pixel frame (see the module docstring).
    spec : WarpSpec
    in_hw : (H, W), optional
        The input's size (default ``spec.in_hw``); the output's is ``spec.out_hw`` (default the same).
    min_visibility : float in [0, 1]
        Boxes whose visible fraction (below) is under this are dropped.
    tol : float
        As in :func:`out_from_in`.

    Keypoints: every keypoint is kept, in order, at :func:`out_from_in`'s answer (NaN when it has
    no place in the output, or one too far for float64), with ``visible`` set when it lies inside the
    output and the input's ``visible`` (when given) says it was visible.

    Boxes: the box's outline is mapped (its corners for θ, which keeps lines straight; 32 points per
    side for splines and elastic fields; for a projective θ whose horizon crosses the box, the part
    of the box in front of it), the polygon they make is clipped to the output's extent
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, and the box is the axis-aligned extent of what is left: the
    part of the object in the image, not the image's part of the whole object's extent (a box turned 45°
    across an edge). Its visibility is the polygon's area inside the output over its whole area (for a box a
    projective horizon crosses, whose warped area has no bound, the share of the box's own area that lands in
    front of the horizon and inside the output); where that
    area says nothing (a box of no area, an outline an elastic field folds across itself, coordinates too
    large for float64), the share of its extent's area inside (for a line along an axis, of its length;
    for a point: 1 when it touches the output, else 0). Boxes with visibility 0 or below ``min_visibility``
    are dropped; box labels follow their boxes.
    """
    import numpy as np

    if not isinstance(labels, Labels):
        raise InvalidArgumentError(f"labels must be a Labels record, got {type(labels).__name__}")
    mv = min_visibility
    if isinstance(mv, bool) or not isinstance(mv, (int, float)) or not 0.0 <= mv <= 1.0:
        raise InvalidArgumentError(f"min_visibility must be a number in [0, 1], got {mv!r}")
    inv, out_hw = _inverse_map(spec, in_hw, _check_tol(tol))
    h, w = out_hw
    with np.errstate(over="ignore", invalid="ignore"):
        kp = inv(labels.keypoints) if len(labels.keypoints) else np.zeros((0, 2))
    kp = np.where(np.isfinite(kp).all(1, keepdims=True), kp, np.nan)  # beyond float64 (inf): no place either
    kp = _onto_edges(kp, [w, h])
    visible = _inside(kp, out_hw)
    if labels.visible is not None:
        visible &= labels.visible

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        polys, n = _padded(_warped_outlines(labels.boxes, inv))
        polys = _onto_edges(polys, [w, h])
        area, ext = _areas(polys, n), _extents(polys, n)
        inside, m = _clip_to_image(polys, n, w, h)
        area_in, ext_in = _areas(inside, m), _extents(inside, m)
        edges = [w - 0.5, h - 0.5, w - 0.5, h - 0.5]
        share = np.where(m > 0, area_in / np.where(area > 0, area, 1.0), 0.0)
        # where the polygon's area says nothing (a line; an outline that an elastic field folds across itself,
        # whose parts cancel; one too large for float64), the share of its extent's area inside, as for a line
        by_extent = ~(np.isfinite(area) & (area > 0) & np.isfinite(share) & (share <= 1.0 + 1e-9))
        ext_c = np.clip(ext, -0.5, edges)
        ext_area = (ext[:, 2] - ext[:, 0]) * (ext[:, 3] - ext[:, 1])
        ext_share = ((ext_c[:, 2] - ext_c[:, 0]) * (ext_c[:, 3] - ext_c[:, 1])) / np.where(ext_area > 0, ext_area, 1.0)
        touches = (np.isfinite(ext).all(1) & (ext[:, 2] >= -0.5) & (ext[:, 0] <= w - 0.5) & (ext[:, 3] >= -0.5)
                   & (ext[:, 1] <= h - 0.5))
        # an extent of no area: a line along an axis, by the share of its length inside; a point, where it touches
        ext_len = (ext[:, 2] - ext[:, 0]) + (ext[:, 3] - ext[:, 1])
        len_share = ((ext_c[:, 2] - ext_c[:, 0]) + (ext_c[:, 3] - ext_c[:, 1])) / np.where(ext_len > 0, ext_len, 1.0)
        ext_share = np.where(ext_area > 0, ext_share, np.where(ext_len > 0, len_share, touches.astype(float)))
        vis = np.where(by_extent, np.where(touches, ext_share, 0.0), np.minimum(1.0, share))
        vis = np.where(np.isfinite(vis), vis, 0.0)
        for i, shown in _horizon_shares(labels.boxes, inv, out_hw).items():
            vis[i] = shown if m[i] > 0 else 0.0
        clipped = np.where(((m > 0) & np.isfinite(ext_in).all(1))[:, None], np.clip(ext_in, -0.5, edges), ext_c)
    keep = np.flatnonzero((vis > 0) & (vis >= mv))
    out = Labels(keypoints=kp, boxes=clipped[keep],
                 keypoint_labels=labels.keypoint_labels,
                 box_labels=None if labels.box_labels is None else tuple(labels.box_labels[i] for i in keep),
                 visible=visible)
    info = LabelsInfo(keypoints_visible=int(visible.sum()), keypoints_lost=int((~np.isfinite(kp).all(1)).sum()),
                      boxes_kept=tuple(int(i) for i in keep), box_visibility=tuple(float(vis[i]) for i in keep),
                      boxes_dropped=int(len(labels.boxes) - len(keep)))
    return out, info
