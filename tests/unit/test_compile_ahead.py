"""Compiling a batch's missing kernels in a second process (stntool._compile_ahead) and the cache's wait hook."""

import io as _io
import os
import struct
import threading
import time
import zlib

import numba
import numpy as np
import pytest

from stntool import _compile_ahead as ca
from stntool import _compile_notice as cn
from stntool import batch, io
from stntool.records import Elastic, TpsPoints, WarpSpec
from stntool.sampling import _kernel_cache

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "samples")


def _chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png(depth, colour, extra=(), w=8, h=3):
    """A valid PNG of every colour type and bit depth (OpenCV writes only some), with extra chunks before IDAT."""
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row_bytes = (w * samples * depth + 7) // 8
    raw = b"".join(b"\0" + bytes((17 * (i + r)) % 256 for i in range(row_bytes)) for r in range(h))
    body = b"".join(_chunk(k, p) for k, p in extra)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)) + body
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _decoded_dtype(data: bytes) -> str:
    """The oracle: what the warp command really samples (stntool.io decodes; alpha images go to float32)."""
    img = io.decode_image(data)
    channels = 1 if img.ndim == 2 else img.shape[2]
    return "float32" if channels in (2, 4) else str(img.dtype)


PLTE = (b"PLTE", bytes(range(48)))
CASES = {
    "gray 8": _png(8, 0), "gray 16": _png(16, 0), "gray 1-bit": _png(1, 0), "gray 4-bit": _png(4, 0),
    "rgb 8": _png(8, 2), "rgb 16": _png(16, 2), "palette": _png(8, 3, [PLTE]), "palette 2-bit": _png(2, 3, [PLTE]),
    "gray+alpha 8": _png(8, 4), "gray+alpha 16": _png(16, 4), "rgba 8": _png(8, 6), "rgba 16": _png(16, 6),
    "palette + tRNS": _png(8, 3, [PLTE, (b"tRNS", bytes([0, 128, 255]))]),
    "rgb + tRNS": _png(8, 2, [(b"tRNS", b"\0\1\0\2\0\3")]),
    "rgb 16 + tRNS": _png(16, 2, [(b"tRNS", b"\0\1\0\2\0\3")]),
    "gray + tRNS": _png(8, 0, [(b"tRNS", b"\0\7")]), "gray 16 + tRNS": _png(16, 0, [(b"tRNS", b"\0\7")]),
    "rgb + text chunk first": _png(8, 2, [(b"tEXt", b"Comment\0" + b"x" * 5000)]),
    "jpeg gray": io.encode_image(np.zeros((8, 8), np.uint8), "jpg"),
    "jpeg colour": io.encode_image(np.zeros((8, 8, 3), np.uint8), "jpg"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_header_predicts_what_the_decoder_gives(name):
    data = CASES[name]
    assert ca.working_dtype(_io.BytesIO(data)) == _decoded_dtype(data)


@pytest.mark.parametrize("name", ["chart.png", "gray16.png", "icon_rgba.png", "photo.jpg", "text_page.png"])
def test_header_predicts_the_shipped_samples(name):
    path = os.path.join(SAMPLES, name)
    with open(path, "rb") as f:
        predicted = ca.working_dtype(f)
        f.seek(0)
        assert predicted == _decoded_dtype(f.read())


def test_other_formats_and_damaged_headers_are_not_predicted():
    for data in [io.encode_image(np.zeros((8, 8, 3), np.uint8), "tif"), io.encode_image(np.zeros((8, 8, 3), np.uint8),
                 "webp"), b"BM" + b"\0" * 60, b"", b"not an image at all", CASES["rgb 8"][:20],
                 CASES["rgb + text chunk first"][:200]]:  # RGB with the chunks before the data cut off: unknown
        assert ca.working_dtype(_io.BytesIO(data)) is None


def _items(tmp_path, names):
    paths = []
    for name in names:
        p = tmp_path / name
        p.write_bytes(open(os.path.join(SAMPLES, name), "rb").read())
        paths.append(str(p))
    items, _ = batch.discover(paths)
    batch.plan_outputs(items, str(tmp_path / "out"))
    return items


README = ["chart.png", "gray16.png", "icon_rgba.png", "photo.jpg", "text_page.png"]


def test_predict_in_input_order_and_within_limits(tmp_path):
    items = _items(tmp_path, README)
    assert [d for _, d, *_ in ca.predict(items)] == ["uint8", "uint16", "float32", "uint8", "uint8"]
    assert [d for _, d, *_ in ca.predict(items, files=2)] == ["uint8", "uint16"]
    assert ca.predict(items, seconds=-1) == []
    items[1].error = "output collides"
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / "icon_rgba.png").write_bytes(b"old")  # its output exists: skipped with --skip-existing
    assert [d for _, d, *_ in ca.predict(items, skip_existing=True)] == ["uint8", "uint8", "uint8"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.png")  # never opened for reading (it would block), not predicted
    (tmp_path / "folder.png").mkdir()
    odd, _ = batch.discover([str(tmp_path / "fifo.png"), str(tmp_path / "folder.png"), str(tmp_path / "none.png"),
                             str(tmp_path / "chart.png")])
    assert [d for _, d, *_ in ca.predict(odd)] == ["uint8"]
    stdin_items, _ = batch.discover(["-"])
    assert [d for _, d, *_ in ca.predict(stdin_items, stdin_bytes=CASES["rgba 8"])] == ["float32"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_header_predicts_one_channel_images(name):
    data = CASES[name]
    img = io.decode_image(data)
    # nearest warps take an alpha image in its decoded dtype (not premultiplied in float32)
    assert ca.working_kind(_io.BytesIO(data)) == (_decoded_dtype(data), img.ndim == 2, str(img.dtype))


def test_a_jpeg_frame_is_found_past_other_segments():
    """A progressive frame (SOF2), an EXIF segment and fill bytes, or markers without a length (TEM, RST0)
    before it; a stream cut before its frame header is colour (not predicted as one channel)."""
    import cv2

    grey = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    colour = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    exif = b"\xff\xe1" + (2 + 3000).to_bytes(2, "big") + b"Exif\0\0" + b"\0" * 2994
    for data, one in ((grey, True), (colour, False)):
        assert ca.working_kind(_io.BytesIO(data)) == ("uint8", one, "uint8")
        assert ca.working_kind(_io.BytesIO(data[:2] + exif + b"\xff\xff" + data[2:])) == ("uint8", one, "uint8")
        no_lengths = data[:2] + b"\xff\x01\xff\xd0" + data[2:]
        assert ca.working_kind(_io.BytesIO(no_lengths)) == ("uint8", one, "uint8")
        assert ca.working_kind(_io.BytesIO(data[:30])) == ("uint8", False, "uint8")


def test_needed_names_one_channel_signatures_of_the_points_kernels(tmp_path):
    """One-channel images are kernel signatures of their own for projective warps, grids and TPS, not for
    affine warps; a fixed-dtype kernel on one-channel arrays says so with a fifth value."""
    items = _items(tmp_path, README)
    grey = [d for _, d, g, _ in ca.predict(items) if g]
    assert grey  # the samples have one-channel images
    theta3 = WarpSpec(theta=((0.9, -0.2, 0.0), (0.2, 0.9, 0.0), (0.1, 0.05, 1.0)))
    want = []
    for _, d, g, _ in ca.predict(items):
        key = ("projective", "bilinear", "zeros", d + (" grey" if g else ""))
        if key not in want:
            want.append(key)
    assert ca.needed(ca.predict(items), lambda item: theta3.kernels()) == want
    affine = WarpSpec(theta=((0.9, -0.25, 0.05), (0.25, 0.9, 0)))
    assert all(" " not in k[3] for k in ca.needed(ca.predict(items), lambda item: affine.kernels()))
    fixed = [("projective", "bilinear", "border", "float32", True), ("affine", "bilinear", "border", "float32", True),
             ("grid", "bilinear", "zeros", "float32")]
    assert ca.needed(ca.predict(items[:1]), lambda item: fixed) == [
        ("projective", "bilinear", "border", "float32 grey"), ("affine", "bilinear", "border", "float32"),
        ("grid", "bilinear", "zeros", "float32")]


def test_needed_is_ordered_by_first_need_once_per_kernel_and_dtype(tmp_path):
    items = _items(tmp_path, README)
    spec = WarpSpec(theta=((0.9, -0.25, 0.05), (0.25, 0.9, 0)))
    assert ca.needed(ca.predict(items), lambda item: spec.kernels()) == [
        ("affine", "bilinear", "zeros", "uint8"), ("affine", "bilinear", "zeros", "uint16"),
        ("affine", "bilinear", "zeros", "float32")]
    assert ca.needed(ca.predict(items), lambda item: []) == []


def test_nearest_kernels_of_alpha_images_are_the_images_own_dtype(tmp_path):
    """Nearest warps mix no pixels and do not premultiply alpha (records.apply_spec): an RGBA PNG needs the
    uint8 (16-bit: uint16) nearest kernel, and the float32 one only for the modes that mix pixels."""
    paths = []
    for name in ("rgba 8", "rgba 16", "gray+alpha 8", "rgb 8"):
        path = tmp_path / (name.replace(" ", "_").replace("+", "_") + ".png")
        path.write_bytes(CASES[name])
        paths.append(str(path))
    items, _ = batch.discover(paths)
    batch.plan_outputs(items, str(tmp_path / "out"))
    nearest = WarpSpec(theta=((0.9, -0.2, 0.0), (0.2, 0.9, 0.0), (0.1, 0.05, 1.0)), mode="nearest")
    assert ca.needed(ca.predict(items), lambda item: nearest.kernels()) == [
        ("projective", "nearest", "zeros", "uint8"), ("projective", "nearest", "zeros", "uint16")]
    bilinear = nearest.replace(mode="bilinear")
    assert ca.needed(ca.predict(items), lambda item: bilinear.kernels()) == [
        ("projective", "bilinear", "zeros", "float32"), ("projective", "bilinear", "zeros", "uint8")]


def test_needed_takes_fixed_dtypes_from_the_kernel_list(tmp_path):
    """Kernels on arrays of their own dtype (rectify's float32 warps, the float64 backward pass) keep it;
    ``None`` takes the image's predicted dtype. Border padding runs kernels of its own, so the float32
    image's border kernel is a task of its own beside the float32 zeros-padding one."""
    items = _items(tmp_path, README)
    fixed = [("affine", "bilinear", "zeros", "float32"), ("backward", "bilinear", "zeros", "float64"),
             ("affine", "bilinear", "border", None)]
    assert ca.needed(ca.predict(items), lambda item: fixed) == [
        ("affine", "bilinear", "zeros", "float32"), ("backward", "bilinear", "zeros", "float64"),
        ("affine", "bilinear", "border", "uint8"), ("affine", "bilinear", "border", "uint16"),
        ("affine", "bilinear", "border", "float32")]
    # reflection shares border's kernels; zeros and constant padding share theirs
    both = [("affine", "bilinear", "border", "uint8"), ("affine", "bilinear", "reflection", "uint8"),
            ("affine", "bilinear", "zeros", "uint8"), ("affine", "bilinear", "constant", "uint8")]
    assert ca.needed(ca.predict(items[:1]), lambda item: both) == [both[0], both[2]]


def test_rectifier_kernels_name_what_a_page_runs_through():
    from stntool.rectify import Rectifier

    assert Rectifier().kernels() == [("affine", "bilinear", "zeros", "float32", True),
                                     ("affine", "bilinear", "border", "float32", True),
                                     ("backward", "bilinear", "zeros", "float64"),
                                     ("affine", "bilinear", "zeros", None)]
    assert Rectifier(refine=False).kernels("nearest") == [("affine", "bilinear", "zeros", "float32", True),
                                                          ("affine", "bilinear", "border", "float32", True),
                                                          ("affine", "nearest", "zeros", None)]


def test_a_page_runs_through_the_kernels_the_rectifier_names():
    """The float32 entry kernels a page runs through are those :meth:`Rectifier.kernels` names, no more and
    no fewer (the border-padded views included: they have entry kernels of their own). In a fresh process,
    where only what the page runs has signatures."""
    import json
    import subprocess
    import sys

    code = f"""
import json
from stntool.io import read_image
from stntool.rectify import Rectifier
from stntool.sampling import MODES, _cpu
from stntool._compile_ahead import signature
from stntool.sampling._kernel_cache import claim_key, image_dtype
rect = Rectifier()
rect.estimate(read_image({os.path.join(SAMPLES, "text_page.png")!r})[0])
ran = sorted([f, m, k.py_func.__name__.endswith("_padded"), claim_key(s)]
             for table in (_cpu.ENTRIES, _cpu.PADDED_ENTRIES)
             for (f, m), k in table.items() for s in k.signatures if image_dtype(s) == "float32")
named = sorted([f, MODES[m], p in ("border", "reflection"), signature(d, bool(grey and grey[0]), f)]
               for f, m, p, d, *grey in rect.kernels() if d == "float32" and f != "backward")
print(json.dumps([ran, named]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ran, named = json.loads(out.strip().splitlines()[-1])
    assert ran == named


@pytest.mark.slow
def test_a_projective_models_pages_run_through_the_kernels_the_rectifier_names(tmp_path):
    """The same for the projective family, with a (barely) trained projective model: views warped by
    projective θ, ink by affine θ; nothing named that the pages do not run."""
    import json
    import shutil
    import subprocess
    import sys

    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("text_page.png", "photo.jpg"):
        shutil.copy(os.path.join(SAMPLES, name), pages / name)
    model = tmp_path / "proj.npz"
    subprocess.run([sys.executable, "-m", "stntool", "train", str(pages), "--out", str(model), "--family", "projective",
                    "--steps", "2", "--batch", "2", "--val-split", "0", "-q"], check=True, capture_output=True)
    code = f"""
import glob, json
from stntool.io import read_image
from stntool.rectify import Rectifier
from stntool.sampling import MODES, _cpu
from stntool._compile_ahead import signature
from stntool.sampling._kernel_cache import claim_key, image_dtype
rect = Rectifier({str(model)!r}, family="projective")
for name in sorted(glob.glob({str(SAMPLES)!r} + "/*.png") + glob.glob({str(SAMPLES)!r} + "/*.jpg")):
    rect.estimate(read_image(name)[0])
ran = sorted([f, m, k.py_func.__name__.endswith("_padded"), claim_key(s)]
             for table in (_cpu.ENTRIES, _cpu.PADDED_ENTRIES)
             for (f, m), k in table.items() for s in k.signatures if image_dtype(s) == "float32")
named = sorted([f, MODES[m], p in ("border", "reflection"), signature(d, bool(grey and grey[0]), f)]
               for f, m, p, d, *grey in rect.kernels() if d == "float32" and f != "backward")
finals = [k for k in rect.kernels() if k[3] is None]  # projective or affine, page by page: not named
print(json.dumps([ran, named, finals]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ran, named, finals = json.loads(out.strip().splitlines()[-1])
    assert ran == named == [["affine", 1, False, "float32"], ["projective", 1, True, "float32 grey"]]
    assert finals == []


def test_backward_entry_is_the_backward_kernel_and_its_cache_is_asked():
    """After a float64 backward pass the backward kernel's float64 signature is known; float32 images are
    converted to float64 before it, so that signature never exists."""
    from stntool import api
    from stntool.sampling import _cpu

    backward = ca.entry("backward", "bilinear")
    assert backward is _cpu._grid_sample_backward_parts
    api.warp_backward(np.zeros((4, 5, 3)), [[1, 0, 0], [0, 1, 0]], np.ones((4, 5, 3)), backend="cpu")
    assert ca.is_cached(backward, "float64")
    assert not ca.is_cached(backward, "float32")


def test_spec_kernels():
    assert WarpSpec(theta=((0.9, 0, 0), (0, 1, 0)), mode="bicubic").kernels() == [("affine", "bicubic", "zeros")]
    assert WarpSpec(theta=((1, 0, 0.1), (0, 1, 0), (0, 0, 1))).kernels() == [("affine", "bilinear", "zeros")]
    # identities, flips and quarter turns about the centre are copies (stntool.sampling._copies): no kernel
    for theta in (((1, 0, 0), (0, 1, 0)), ((-1, 0, 0), (0, 1, 0), (0, 0, 1)), ((0, -1, 0), (1, 0, 0))):
        assert WarpSpec(theta=theta).kernels() == []
    assert WarpSpec(theta=((1, 0, 0), (0, 1, 0), (0.1, 0, 1)), padding="border").kernels() == [
        ("projective", "bilinear", "border")]
    assert WarpSpec().kernels() == []
    spline = WarpSpec(tps=TpsPoints(src=((0, 0), (9, 0), (0, 9)), dst=((1, 0), (9, 1), (0, 8))), mode="nearest")
    assert spline.kernels() == [("tps", "nearest", "zeros")]
    field = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), elastic=Elastic(5.0, 2.0, 1), padding="reflection")
    assert field.kernels() == [("tps", "bilinear", "reflection")]


@pytest.mark.parametrize("kind", ["tps", "elastic"])
def test_splines_and_elastic_records_run_the_lattice_kernels_they_name(tmp_path, kind):
    """A thin-plate spline's and an elastic record's images (the shipped samples: 8 and 16 bits, grey, RGBA)
    run through the lattice kernels' signatures that :func:`needed` names from their headers and the
    spec's :meth:`~WarpSpec.kernels`, no more and no fewer. In a fresh process, where only what the
    records run has signatures."""
    import json
    import subprocess
    import sys

    items = _items(tmp_path, README)
    if kind == "tps":
        spec = WarpSpec(tps=TpsPoints(src=((-0.8, -0.8), (0.8, -0.8), (0.0, 0.8)), dst=((-0.7, -0.8), (0.8, -0.7),
                                                                                         (0.1, 0.7)), normalized=True))
    else:
        spec = WarpSpec(theta=((0.95, 0.1, 0.0), (-0.1, 0.95, 0.0)), elastic=Elastic(4.0, 3.0, 7))
    named = sorted(list(k) for k in ca.needed(ca.predict(items), lambda item: spec.kernels()))
    assert len(named) == 4  # uint8 and uint8 grey, uint16 grey, float32 (the RGBA icon, premultiplied)
    code = f"""
import json
from stntool.io import read_image
from stntool.records import WarpSpec, apply_spec
from stntool.sampling import MODES, PADDINGS, _cpu
from stntool.sampling._kernel_cache import claim_key
spec = WarpSpec.from_record(json.loads({json.dumps(json.dumps(spec.to_record()))}))
for name in {[it.input for it in items]!r}:
    apply_spec(read_image(name)[0], spec)
names = {{v: k for k, v in MODES.items()}}
ran = sorted([f, names[m], "zeros", claim_key(s)] for (f, m), k in _cpu.ENTRIES.items() for s in k.signatures)
print(json.dumps(ran))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == named


# --------------------------------------------------------------------------- the switch and the decision

def test_switches(monkeypatch):
    monkeypatch.delenv(ca.ENV, raising=False)
    monkeypatch.delenv("NUMBA_DISABLE_JIT", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert ca.enabled("cpu")
    assert not ca.enabled("numpy") and not ca.enabled("cuda")
    for off in ["0", "no", "off", "false", "OFF"]:
        monkeypatch.setenv(ca.ENV, off)
        assert not ca.enabled("cpu")
    monkeypatch.setenv(ca.ENV, "1")
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert not ca.enabled("cpu")
    monkeypatch.delenv("NUMBA_DISABLE_JIT")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not ca.enabled("cpu")


@pytest.fixture
def launches(monkeypatch):
    """Background.launch recorded, not run; every signature reported missing from the cache."""
    seen = []

    class Fake:
        where = None

        def wait(self, name, dtype):
            return False

        def close(self):
            pass

    monkeypatch.setattr(ca.Background, "launch", classmethod(lambda cls, todo, backend="cpu": seen.append(todo)
                                                             or Fake()))
    monkeypatch.setattr(ca, "is_cached", lambda dispatcher, dtype: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    monkeypatch.delenv(ca.ENV, raising=False)
    cn._reset_for_tests()
    yield seen
    _kernel_cache.pending = None
    cn._reset_for_tests()


AFFINE = lambda item: [("affine", "bilinear", "zeros")]  # noqa: E731


def test_start_gives_the_second_process_the_later_half(tmp_path, launches):
    lines = []
    cn.set_compile_notice(lines.append)
    background = ca.start(_items(tmp_path, README), AFFINE, "cpu")
    assert launches == [[("affine", "bilinear", "zeros", "float32")]]
    assert _kernel_cache.pending == background.wait
    assert [line.split(" (")[0] for line in lines] == [
        "stntool: compiling kernels for float32 warp_affine_bilinear in a second process"]


def test_the_second_process_names_its_kernels_as_the_other_notices_do(tmp_path, launches):
    """A kernel whose function's name starts with an underscore (the backward pass) is named without it, as
    the compile notices of this process and `stntool warmup` name it."""
    lines = []
    cn.set_compile_notice(lines.append)
    kernels = lambda item: [("affine", "bilinear", "zeros"), ("backward", "bilinear", "zeros", "float64")]  # noqa: E731
    ca.start(_items(tmp_path, ["chart.png"]), kernels, "cpu")
    assert launches == [[("backward", "bilinear", "zeros", "float64")]]
    assert [line.split(" (")[0] for line in lines] == [
        "stntool: compiling kernels for float64 grid_sample_backward_parts in a second process"]


def test_start_does_nothing_without_two_missing_signatures(tmp_path, launches, monkeypatch):
    assert ca.start(_items(tmp_path, ["chart.png", "photo.jpg", "text_page.png"]), AFFINE, "cpu") is None
    assert ca.start(_items(tmp_path, README), lambda item: [], "cpu") is None
    monkeypatch.setattr(ca, "is_cached", lambda dispatcher, dtype: dtype != "float32")
    assert ca.start(_items(tmp_path, README), AFFINE, "cpu") is None
    monkeypatch.setattr(ca, "is_cached", lambda dispatcher, dtype: False)
    monkeypatch.setenv(ca.ENV, "0")
    assert ca.start(_items(tmp_path, README), AFFINE, "cpu") is None
    monkeypatch.delenv(ca.ENV)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    assert ca.start(_items(tmp_path, README), AFFINE, "cpu") is None
    assert launches == []


def test_is_cached_reads_the_index_of_the_kernel(tmp_path):
    """The README kernel is in the test run's cache once any test warped a uint8 image; float64 images of
    the nearest affine kernel are warped by no test."""
    from stntool import api

    api.warp(np.zeros((4, 4, 3), np.uint8), [[0.9, 0, 0], [0, 1, 0]], backend="cpu")  # sampled, not copied
    assert ca.is_cached(ca.entry("affine", "bilinear"), "uint8")
    fresh = ca.entry("affine", "nearest")
    if not any("float64" in str(sig) for sig in fresh.overloads):
        index = fresh._cache._cache_file._load_index()
        assert ca.is_cached(fresh, "float64") == any("float64" in str(k[0][0]) for k in index)
    assert ca.is_cached(object(), "uint8")  # anything unexpected: "cached", nothing compiled ahead


# --------------------------------------------------------------------------- waiting for the second process

class _FakeChild:
    """A stand-in for the second process: the test writes its report lines into a pipe."""

    def __init__(self):
        r, self.w = os.pipe()
        self.stdout = os.fdopen(r, "rb", buffering=0)
        self.stdin = None
        self.closed = False

    def say(self, line):
        os.write(self.w, line.encode() + b"\n")

    def die(self):
        os.close(self.w)

    def wait(self, timeout=None):
        self.closed = True

    def kill(self):
        pass


@pytest.fixture
def child():
    cn._reset_for_tests()
    fake = _FakeChild()
    yield fake
    try:
        os.close(fake.w)
    except OSError:
        pass
    cn._reset_for_tests()


def _later(seconds, fn, *args):
    t = threading.Timer(seconds, fn, args)
    t.start()
    return t


def test_wait_returns_when_the_child_reports_the_claimed_signature(child):
    bg = ca.Background(child, {("warp_affine_bilinear", "float32"): 0, ("warp_affine_bilinear", "uint16"): 1})
    assert bg.wait("warp_affine_bilinear", "uint8") is False  # not claimed: compile here, at once
    assert bg.wait("_store_fill", "float32") is False
    _later(0.3, child.say, "done 1")
    t0 = time.perf_counter()
    assert bg.wait("warp_affine_bilinear", "uint16") is True
    assert time.perf_counter() - t0 >= 0.25
    _later(0.1, child.say, "done 0")
    assert bg.wait("warp_affine_bilinear", "float32") is True
    waited = [c for c in cn.compiled() if c.label.endswith("(second process)")]
    assert [c.label for c in waited] == ["uint16 warp_affine_bilinear (second process)",
                                         "float32 warp_affine_bilinear (second process)"]
    assert cn.compile_seconds() >= 0.3  # waiting counts as compiling (left out of the batch's rate)


def test_wait_stops_when_the_child_fails_or_dies(child):
    bg = ca.Background(child, {("k", "uint8"): 0, ("k", "uint16"): 1, ("k", "float32"): 2})
    child.say("failed 0")
    assert bg.wait("k", "uint8") is False
    _later(0.2, child.die)
    t0 = time.perf_counter()
    assert bg.wait("k", "uint16") is False
    assert time.perf_counter() - t0 < 5
    assert bg.wait("k", "float32") is False and bg.gone


def test_wait_gives_up_after_the_limit(child, monkeypatch):
    monkeypatch.setattr(ca, "WAIT_LIMIT", 0.2)
    bg = ca.Background(child, {("k", "uint8"): 0})
    t0 = time.perf_counter()
    assert bg.wait("k", "uint8") is False
    assert 0.15 < time.perf_counter() - t0 < 3


def test_close_stops_the_real_process_and_unhooks_the_cache():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.buffer.read(); time.sleep(60)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    bg = ca.Background(proc, {})
    _kernel_cache.pending = bg.wait
    bg.close(timeout=0.5)  # the stand-in ignores its closed stdin: killed after the timeout
    assert proc.poll() is not None and _kernel_cache.pending is None


# --------------------------------------------------------------------------- the cache hook, with a real tiny kernel

def _probe(x):
    return x[0] + 1


@pytest.fixture
def probe_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))

    def dispatcher():
        d = numba.njit(_probe)
        d._cache = _kernel_cache.cpu_cache(_probe)
        return d

    yield dispatcher
    _kernel_cache.pending = None


def test_a_missing_signature_is_loaded_after_the_other_process_compiled_it(probe_cache):
    ours, theirs = probe_cache(), probe_cache()
    asked = []

    def pending(name, dtype):
        asked.append((name, dtype))
        if dtype == "uint16":
            _kernel_cache.pending = None  # "the other process" (no hook there) compiles and saves it meanwhile
            theirs(np.zeros(2, np.uint16))
            _kernel_cache.pending = pending
            return True
        return False

    _kernel_cache.pending = pending
    assert ours(np.zeros(2, np.uint16)) == 1
    assert ours.stats.cache_hits and not ours.stats.cache_misses  # loaded, not compiled here
    assert ours(np.zeros(2, np.uint8)) == 1  # not the other process's: compiled here
    assert ours.stats.cache_misses
    assert asked == [("_probe", "uint16"), ("_probe", "uint8")]
    assert os.path.exists(os.path.join(ours._cache.cache_path, _kernel_cache.LOCK_NAME))


def test_a_one_channel_signature_is_asked_for_by_its_own_name(probe_cache):
    """A one-channel image's signature (3-dimensional arrays, :data:`stntool.sampling._cpu.GREY`) is claimed
    apart from a colour image's."""
    ours = probe_cache()
    asked = []
    _kernel_cache.pending = lambda name, key: asked.append((name, key)) or False
    assert (ours(np.zeros((2, 3, 4), np.uint8)) == 1).all()
    assert (ours(np.zeros((2, 3, 4, 3), np.uint8)) == 1).all()
    assert asked == [("_probe", "uint8 grey"), ("_probe", "uint8")]


def test_a_claim_is_cached_only_with_its_own_signature(tmp_path):
    """A kernel that has a one-channel image's signature only, compiled here or in the cache's index, still
    needs its colour one compiled, and the other way round."""
    from types import SimpleNamespace

    grey, colour = (numba.typeof(np.zeros((1, 2, 2) + c, np.uint8)) for c in ((), (3,)))
    index = {}
    kernel = SimpleNamespace(overloads={(grey, numba.types.int64): None},
                             targetctx=SimpleNamespace(codegen=lambda: None),
                             _cache=SimpleNamespace(_index_key=lambda sig, codegen: (sig, "magic", "code"),
                                                    cache_path=str(tmp_path),
                                                    _cache_file=SimpleNamespace(_load_index=lambda: index)))
    assert _kernel_cache.claim_key((grey,)) == "uint8 grey" and _kernel_cache.claim_key((colour,)) == "uint8"
    assert not ca.is_cached(kernel, "uint8")
    index[((grey, numba.types.int64), "magic", "code")] = "file"
    assert not ca.is_cached(kernel, "uint8")
    index[((colour, numba.types.int64), "magic", "code")] = "file"
    assert ca.is_cached(kernel, "uint8")
    assert ca.is_cached(kernel, "uint8 grey")
    kernel.overloads = {(colour, numba.types.int64): None}
    index.clear()
    assert ca.is_cached(kernel, "uint8") and not ca.is_cached(kernel, "uint8 grey")


def test_the_folder_lock_excludes_writers(tmp_path):
    if _kernel_cache.fcntl is None:
        pytest.skip("no fcntl")
    order = []

    def reader():
        with _kernel_cache.folder_lock(str(tmp_path), exclusive=False):
            order.append("read")

    with _kernel_cache.folder_lock(str(tmp_path), exclusive=True):
        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)
        order.append("written")
    t.join(5)
    assert order == ["written", "read"]
    with _kernel_cache.folder_lock(str(tmp_path / "missing"), exclusive=True):
        pass  # no folder: no lock, no error
