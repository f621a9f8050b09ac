"""WarpSpec / TpsPoints records: round trips, validation, fill parsing, apply_spec against oracles."""

import json
import os
import re

import numpy as np
import pytest

import stntool
from stntool.errors import InvalidArgumentError
from stntool.records import SCHEMA_VERSION, TpsPoints, WarpSpec, apply_spec, fill_values, parse_fill, parse_numbers

TPS = TpsPoints([[0, 0], [7, 0], [0, 5], [7, 5]], [[0.5, 0], [7, 0.5], [0, 5], [6.5, 5]], regularization=0.1)


@pytest.mark.parametrize("spec", [
    WarpSpec(theta=((1, 0, 0.5), (0, 1, 0))),
    WarpSpec(theta=((1, 0, 0), (0, 1, 0), (0.3, 0, 1)), mode="bicubic", padding="border", out_hw=(10, 20)),
    WarpSpec(tps=TPS, mode="nearest", padding="reflection", align_corners=True, in_hw=(6, 8)),
    WarpSpec(theta=((0.7, 0.2, 0.1), (-0.2, 0.7, 0)), padding="constant", fill="#ff000080", in_hw=(6, 8),
             out_hw=(3, 4), name="a_0001.png"),
    WarpSpec(theta=((0.7, 0.2, 0.1), (-0.2, 0.7, 0)), padding="constant", fill=(0.0, 0.0, 255.0)),
])
def test_record_round_trip_through_json(spec):
    rec = json.loads(json.dumps(spec.to_record()))
    assert rec["schema"] == 1 and rec["version"] == stntool.__version__
    assert WarpSpec.from_record(rec) == spec


def test_record_key_order_and_sizes():
    s = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), in_hw=(6, 8), out_hw=(3, 4))
    rec = s.to_record()
    assert list(rec) == ["in_size", "size", "theta", "mode", "padding", "align_corners", "version", "schema"]
    assert rec["in_size"] == [8, 6] and rec["size"] == [4, 3]  # [W, H]
    rec = s.replace(in_hw=None).to_record()  # failed input: geometry first, size after it
    assert list(rec)[:2] == ["theta", "size"] and rec["size"] == [4, 3]
    assert WarpSpec(theta=((1, 0, 0), (0, 1, 0)), in_hw=(6, 8)).to_record()["size"] == [8, 6]
    assert WarpSpec().to_record()["theta"] is None and WarpSpec().to_record()["size"] is None


def test_record_of_0_1_manifest_line_reads():
    line = {"input": "a.png", "output": "o/a.png", "status": "ok", "error": None, "in_size": [8, 6],
            "size": [8, 6], "theta": [[0.9, 0.1, 0.05], [-0.1, 0.9, 0.0]], "mode": "bilinear", "padding": "constant",
            "align_corners": False, "fill": [255, 0, 0, 128], "version": "0.1.0"}
    s = WarpSpec.from_record(line)
    assert s.theta == ((0.9, 0.1, 0.05), (-0.1, 0.9, 0.0)) and s.fill == (255.0, 0.0, 0.0, 128.0)
    assert s.in_hw == (6, 8) and s.out_hw == (6, 8) and s.name is None


@pytest.mark.parametrize("rec, msg", [
    ({"status": "error"}, "neither"),
    ({"theta": [[1, 0, 0], [0, 1]]}, "2 or 3 rows of 3 numbers, got 2 rows of 3, 2"),
    ({"theta": [[1, 0, "x"], [0, 1, 0]]}, "not a number"),
    ({"theta": [[1, 0, 1e400], [0, 1, 0]]}, "not finite"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "mode": "area"}, "unknown mode"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "padding": "wrap"}, "unknown padding"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "align_corners": "yes"}, "align_corners"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "size": [0, 4]}, "positive"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "size": [4.5, 4]}, "[width, height]"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "fill": "red"}, "#RRGGBB"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "schema": SCHEMA_VERSION + 1}, "newer"),
    ({"tps": {"src": [[0, 0], [1, 0]], "dst": [[0, 0], [1, 0]]}}, "at least 3"),
    ({"tps": {"src": [[0, 0], [1, 0], [0, 1]], "dst": [[0, 0], [1, 0]]}}, "3 points but"),
    ({"tps": {"src": [[0, 0], [1, 0], [0, float("nan")]], "dst": [[0, 0], [1, 0], [0, 1]]}}, "not finite"),
    ({"tps": {"src": [[0, 0], [1, 0], [0, 1]], "dst": [[0, 0], [1, 0], [0, 1]], "regularization": -1}},
     "regularization"),
    ({"tps": [1, 2]}, "expected an object"),
    ({"tps": {"src": [[0, 0], [1, 0], [0, 1]], "dst": [[0, 0], [1, 0], [0, 1]], "normalized": "false"}},
     "normalized"),
    ({"tps": {"src": [[0, 0], [1, 0], [0, 1]], "dst": [[0, 0], [1, 0], [0, 1]], "normalized": 1}}, "normalized"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "padding": "border", "fill": "#ffffff"}, "only to padding 'constant'"),
    ({"theta": [[1, 0, 0], [0, 1, 0]], "name": "a\0.png"}, "without NUL"),
])
def test_from_record_rejects_with_library_error(rec, msg):
    with pytest.raises(InvalidArgumentError, match=msg.replace("[", r"\[")):
        WarpSpec.from_record(rec)


def test_spec_validation_in_constructor():
    with pytest.raises(InvalidArgumentError, match="not both"):
        WarpSpec(theta=((1, 0, 0), (0, 1, 0)), tps=TPS)
    with pytest.raises(InvalidArgumentError, match="2x3 or 3x3"):
        WarpSpec(theta=((1, 0, 0),))
    with pytest.raises(InvalidArgumentError, match="no theta or tps"):
        apply_spec(np.zeros((2, 2), np.uint8), WarpSpec())


def test_constructor_rejects_what_a_record_could_not_carry():
    theta = ((1, 0, 0), (0, 1, 0))
    with pytest.raises(InvalidArgumentError, match="only to padding 'constant'"):
        WarpSpec(theta=theta, padding="zeros", fill=(255.0,))  # to_record would drop it: no equal round trip
    for hw in ((2.7, 3), (2.0, 3), (True, 3), ("2", 3)):
        with pytest.raises(InvalidArgumentError, match="whole pixels"):
            WarpSpec(theta=theta, in_hw=hw)
        with pytest.raises(InvalidArgumentError, match="whole pixels"):
            WarpSpec(theta=theta, out_hw=hw)
    assert WarpSpec(theta=theta, in_hw=(np.int64(2), 3)).in_hw == (2, 3)  # NumPy integers are integers
    for flag in ("false", 0, None):
        with pytest.raises(InvalidArgumentError, match="normalized"):
            TpsPoints(TPS.src, TPS.dst, normalized=flag)
    pts = {"src": [list(p) for p in TPS.src], "dst": [list(p) for p in TPS.dst]}
    assert TpsPoints.from_record(dict(pts, normalized=True)).normalized is True


def test_parse_fill_and_numbers():
    assert parse_fill("#FF000080") == "#ff000080" and parse_fill("20c0ff") == "#20c0ff"
    assert parse_fill("255") == (255.0,) and parse_fill("0, 0,255") == (0.0, 0.0, 255.0)
    assert parse_fill("123456") == (123456.0,)  # all digits: a number, not a colour
    for text in ("009900", "00990000"):  # ... unless it has a colour's digits and a leading zero (9900 was taken)
        with pytest.raises(InvalidArgumentError, match=f"a colour is written '#{text}'"):
            parse_fill(text)
    for text, msg in (("1,x", "not a number"), ("nan", "NaN"), ("1e999", "infinite"), ("", "give a colour"),
                      (" , ", "give a colour"), ("#ff", "six or eight hexadecimal digits"),  # said "not a number"
                      ("#fff", "'#RRGGBB' or '#RRGGBBAA'"), ("#gg0000", "hexadecimal")):
        with pytest.raises(InvalidArgumentError, match=msg):
            parse_fill(text)
    with pytest.raises(InvalidArgumentError, match="expected 6 or 9 numbers, got 2"):
        parse_numbers("1 2", "--theta", (6, 9))


def test_parse_matrix_takes_numbers_or_the_rows_python_json_and_numpy_print():
    from stntool.records import parse_matrix

    theta = [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]
    flat = [0.9, -0.25, 0.05, 0.25, 0.9, 0.0]
    for text in ("0.9,-0.25,0.05,0.25,0.9,0", str(theta), json.dumps(theta), str(np.array(theta)),
                 repr(np.array(theta))[6:-1], " [ [0.9 -0.25 0.05] , [0.25 0.9 0] ] "):
        assert parse_matrix(text, "--theta") == flat, text
    assert parse_matrix(str(np.eye(3).tolist()), "--matrix") == np.eye(3).ravel().tolist()
    for text, msg in (("[[1, 2], [3, 4, 5, 6]]", "row 1: expected 3 numbers, got 2"),
                      ("[[1, 2, 3]]", "expected 2 or 3 rows, got 1"),
                      ("[[1, 2, 3], [4, 5, 6]", "rows in brackets"), ("[1, 2, 3, 4, 5, 6]", "rows in brackets"),
                      ("[[1, 2, x], [4, 5, 6]]", "row 1: value 3 ('x') is not a number"),
                      ("1, 2, 3", "expected 6 or 9 numbers, got 3")):
        with pytest.raises(InvalidArgumentError, match=re.escape(msg)):
            parse_matrix(text, "--theta")
    # rows without commas and no closing bracket: the pattern took time exponential in the rows (18 rows, a minute)
    with pytest.raises(InvalidArgumentError, match="rows in brackets"):
        parse_matrix("[" + " ".join(["[0. 0. 0.]"] * 60), "--theta")


def test_fill_values_layouts_and_ranges():
    assert fill_values("#ff8000", 3, 255.0) == [0.0, 128.0, 255.0]  # BGR
    assert fill_values("#ff800040", 4, 65535.0) == [0.0, 128 * 257.0, 255 * 257.0, 64 * 257.0]
    assert fill_values("#ffffff", 1, 0.0) == pytest.approx([1.0])  # float images: 0-1
    assert fill_values("#000000", 2, 255.0) == [0.0, 255.0]
    assert fill_values((1.0, 2.0), 2, 255.0) == [1.0, 2.0] and fill_values(None, 3, 255.0) is None
    assert fill_values((990000.0, -3.0), 2, 0.0) == [990000.0, -3.0]  # float images: any value
    with pytest.raises(InvalidArgumentError, match="fill 123456789 lies outside"):  # not 1.23457e+08
        fill_values((123456789.0,), 1, 255.0)


def test_numpy_numbers_are_fills_like_python_ones():
    # np.float32(255) was "not a number"
    spec = WarpSpec(theta=((1, 0, 0.5), (0, 1, 0)), padding="constant", fill=np.float32(255))
    assert spec.fill == (255.0,) and type(spec.fill[0]) is float
    ints = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), padding="constant", fill=(np.uint8(3), np.int64(4)))
    assert ints.fill == (3.0, 4.0)
    with pytest.raises(InvalidArgumentError, match="not a number"):
        WarpSpec(theta=((1, 0, 0), (0, 1, 0)), padding="constant", fill=(np.bool_(True),))
    with pytest.raises(InvalidArgumentError, match="fill must have 1 value, got 3"):  # was "1 or 1 values"
        stntool.warp(np.zeros((4, 4), np.uint16), [[1, 0, 0], [0, 1, 0]], padding="constant", fill=[0, 0, 256])


@pytest.mark.parametrize("fill, maxv, hint", [((990000.0,), 255.0, True), ((300.0,), 255.0, False),
                                              ((1.0, -1.0, 2.0), 255.0, False), ((70000.0,), 65535.0, False)])
def test_fill_numbers_outside_an_integer_range_are_refused(fill, maxv, hint):
    # they saturated: --fill 990000, meant as the colour #990000, came out white
    with pytest.raises(InvalidArgumentError, match=f"outside the range of the image's samples \\(0-{maxv:g}\\)") as e:
        fill_values(fill, len(fill), maxv)
    assert ("'#990000'" in str(e.value)) is hint


def test_apply_spec_matches_warp_and_warp_tps():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    spec = WarpSpec(theta=((0.9, 0.1, 0.05), (-0.1, 0.9, 0)), mode="bicubic", padding="constant",
                    fill=(10.0, 20.0, 30.0), out_hw=(5, 7))
    want = stntool.warp(img, [[0.9, 0.1, 0.05], [-0.1, 0.9, 0]], out_hw=(5, 7), mode="bicubic",
                        padding="constant", fill=[10, 20, 30], backend="numpy")
    assert np.array_equal(apply_spec(img, spec, backend="numpy"), want)
    spec = WarpSpec(tps=TPS, padding="border")
    want = stntool.warp_tps(img, [list(p) for p in TPS.src], [list(p) for p in TPS.dst], padding="border",
                            regularization=0.1, backend="numpy")
    assert np.array_equal(apply_spec(img, spec, backend="numpy"), want)


def test_apply_spec_from_cv2_matches_theta_from_cv2():
    img = np.random.default_rng(1).random((6, 8)).astype(np.float32)
    spec = WarpSpec.from_cv2([[1, 0, 2], [0, 1, 0]], in_hw=img.shape, out_hw=(6, 8))
    out = apply_spec(img, spec, backend="numpy")
    assert np.allclose(out[:, 2:], img[:, :-2], atol=1e-6) and np.all(out[:, :2] == 0)  # content moves right 2 px


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_a_cv2_matrix_moves_pixels_as_opencv_says_whatever_align_corners(align_corners, mode):
    # align_corners changes θ's frame and the padding, never where a pixel matrix sends a pixel: with True
    # taken for False (or the other way) in the conversion, every pixel moved by a fraction of a pixel
    img = np.random.default_rng(3).random((6, 9)).astype(np.float32)
    for matrix, want in (([[1, 0, 2], [0, 1, 1]], np.pad(img, ((1, 0), (2, 0)))[:6, :9]),
                         ([[-1, 0, 8], [0, 1, 0]], img[:, ::-1]), ([[1, 0, 0], [0, -1, 5]], img[::-1])):
        spec = WarpSpec.from_cv2(matrix, in_hw=img.shape, mode=mode, align_corners=align_corners)
        assert spec.align_corners == align_corners
        np.testing.assert_allclose(apply_spec(img, spec, backend="numpy"), want, atol=2e-6)


def test_premultiplied_alpha_against_numpy_half_pixel_average():
    """A half-pixel shift averages neighbours: colour = (c1 a1 + c2 a2) / (a1 + a2), alpha = (a1 + a2) / 2."""
    rng = np.random.default_rng(2)
    img = rng.random((5, 8, 4)).astype(np.float32)
    img[1, 2:5, 3] = 0.0  # fully transparent pixels (their colour must not leak)
    spec = WarpSpec(theta=((1, 0, 0.125), (0, 1, 0)))  # x_in = x_out + 0.5 px for W = 8
    out = apply_spec(img, spec, backend="numpy")
    a1, a2 = img[:, :-1, 3:], img[:, 1:, 3:]
    c1, c2 = img[:, :-1, :3], img[:, 1:, :3]
    alpha = (a1 + a2) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        colour = np.where(alpha > 1e-6, (c1 * a1 + c2 * a2) / (a1 + a2), 0.0)
    assert np.allclose(out[:, :-1, 3:], alpha, atol=1e-6)
    assert np.allclose(out[:, :-1, :3], colour, atol=1e-5)
    assert np.all(out[1, 2:4, :3] == 0)  # both neighbours transparent: colour 0, no fringe


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_premultiplied_float64_keeps_float64_precision(backend):
    # the premultiplied arithmetic ran in float32 for every dtype: a float64 image with alpha came back off by
    # float32's rounding (3e-8) where one without alpha is exact
    rng = np.random.default_rng(3)
    img = rng.random((5, 8, 4))
    img[..., 3] = rng.uniform(0.25, 1.0, (5, 8))
    same = apply_spec(img, WarpSpec(theta=((1, 0, 0), (0, 1, 0))), backend=backend)
    assert same.dtype == np.float64 and np.abs(same - img).max() <= 1e-15
    out = apply_spec(img, WarpSpec(theta=((1, 0, 0.125), (0, 1, 0))), backend=backend)  # half a pixel
    a1, a2 = img[:, :-1, 3:], img[:, 1:, 3:]
    colour = (img[:, :-1, :3] * a1 + img[:, 1:, :3] * a2) / (a1 + a2)
    assert np.abs(out[:, :-1, 3:] - (a1 + a2) / 2).max() <= 1e-14
    assert np.abs(out[:, :-1, :3] - colour).max() <= 1e-13


def test_premultiplied_fill_gives_the_fill_colour_outside():
    img = np.full((4, 6, 4), 200, np.uint8)
    img[..., 3] = 255
    spec = WarpSpec(theta=((1, 0, 2.0), (0, 1, 0)), padding="constant", fill="#ff000080")  # all outside
    out = apply_spec(img, spec, backend="numpy")
    assert np.all(out == np.array([0, 0, 255, 128], np.uint8))
    out16 = apply_spec(img.astype(np.uint16) * 257, spec, backend="numpy")
    assert np.all(out16 == np.array([0, 0, 65535, 128 * 257], np.uint16))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [bool, np.int16, np.int32, np.complex64])
def test_apply_spec_refuses_what_warp_refuses_with_or_without_alpha(channels, dtype):
    # the premultiplied path (2 and 4 channels) converted any dtype to float32 and warped it
    img = np.ones((6, 7, channels), dtype)
    with pytest.raises(InvalidArgumentError) as warp_said:
        stntool.warp(img, [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(InvalidArgumentError) as spec_said:
        apply_spec(img, WarpSpec(theta=((1, 0, 0), (0, 1, 0))))
    assert str(spec_said.value) == str(warp_said.value)


def test_an_alpha_image_is_warped_in_about_forty_bytes_a_pixel():
    """Premultiplied warps of RGBA images held six float32 arrays the size of the image at once (72 bytes a pixel,
    4.9 GB for an 8000x8000 PNG); the division and rounding run in place."""
    import tracemalloc

    import numpy as np

    from stntool.records import WarpSpec, apply_spec

    img = np.random.default_rng(0).integers(0, 256, (400, 500, 4), dtype=np.uint8)
    spec = WarpSpec(theta=((0.9, 0.1, 0.0), (-0.1, 0.9, 0.0)))
    apply_spec(img[:8, :8].copy(), spec)  # kernels loaded before measuring
    tracemalloc.start()
    try:
        out = apply_spec(img, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == img.shape and out.dtype == np.uint8
    assert peak / img.shape[0] / img.shape[1] < 45


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_warps_that_read_single_pixels_give_an_alpha_image_its_own_pixels(dtype):
    """Nearest sampling and whole-pixel θ (flips, quarter turns, shifts) mix no pixels: premultiplying and
    dividing again only lost the float colours' last bits (a float32 RGBA TIFF flipped was off by 6e-8) and the
    colour under alpha 0."""
    import numpy as np

    import stntool
    from stntool.records import WarpSpec, apply_spec

    rng = np.random.default_rng(1)
    scale = {"uint8": 255, "uint16": 65535, "float32": 1}[dtype]
    img = (rng.random((10, 10, 4)) * scale).astype(dtype)
    img[2, 3, 3] = 0  # a transparent pixel with a colour
    for theta in (((-1, 0, 0), (0, 1, 0)), ((0, 1, 0), (-1, 0, 0)), ((1, 0, 0.2), (0, 1, 0))):
        for mode in ("bilinear", "bicubic"):
            assert np.array_equal(apply_spec(img, WarpSpec(theta=theta, mode=mode)),
                                  stntool.warp(img, theta, mode="nearest"))
    theta = ((0.9, 0.2, 0.05), (-0.2, 0.9, 0.0))
    assert np.array_equal(apply_spec(img, WarpSpec(theta=theta, mode="nearest")),
                          stntool.warp(img, theta, mode="nearest"))
    assert not np.array_equal(apply_spec(img, WarpSpec(theta=theta)), stntool.warp(img, theta))  # premultiplied


def test_records_that_were_silently_misread_are_refused():
    """From a review of hand-written params files: both theta and tps (tps was dropped), a misspelt key inside
    tps (ignored, while --tps refuses it), a size of 10**400 (an OverflowError per input)."""
    theta = [[1, 0, 0], [0, 1, 0]]
    pts = {"src": [[0, 0], [9, 0], [0, 9]], "dst": [[0, 0], [9, 0], [0, 9]]}
    with pytest.raises(InvalidArgumentError, match='both "theta" and "tps"'):
        WarpSpec.from_record({"theta": theta, "tps": pts})
    with pytest.raises(InvalidArgumentError, match="unknown key 'normalised'"):
        WarpSpec.from_record({"tps": {**pts, "normalised": True}})
    for size in ([10 ** 400, 5], [5, 2 ** 31]):
        with pytest.raises(InvalidArgumentError, match="at most 2147483647 pixels a side"):
            WarpSpec.from_record({"theta": theta, "size": size})
    assert WarpSpec.from_record({"theta": theta, "size": [2 ** 31 - 1, 1]}).out_hw == (1, 2 ** 31 - 1)


def test_outputs_recorded_only_as_skipped_are_said_once(tmp_path):
    """A run resumed with --skip-existing into a new manifest records the outputs an earlier run wrote as skipped,
    without their θ: replaying that manifest passed over them without a word."""
    from stntool.records import read_warp_records

    theta = [[0.5, 0, 0], [0, 0.5, 0]]
    lines = [{"input": "a.png", "output": "o/a.png", "status": "skipped"},
             {"input": "b.png", "output": "o/b.png", "status": "ok", "theta": theta},
             {"input": "b.png", "output": "./o/b.png", "status": "skipped"},  # resumed again: its record is here
             {"input": "c.png", "output": "o/c.png", "status": "skipped"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    said = []
    t = read_warp_records(str(tmp_path / "m.jsonl"), warn=said.append)
    assert list(t) == ["b.png"]
    assert said == [f"{tmp_path / 'm.jsonl'}: 2 outputs (e.g. o/a.png) recorded only as skipped (an earlier run wrote "
                    "them; its manifest holds their records): not replayed"]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines[1:3]))
    said.clear()
    read_warp_records(str(tmp_path / "m.jsonl"), warn=said.append)
    assert said == []
    # a resumed run that named the output folder by its absolute path: the same outputs
    again = [lines[1], dict(lines[2], output=os.path.abspath("o/b.png"))]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in again))
    read_warp_records(str(tmp_path / "m.jsonl"), warn=said.append)
    assert said == []


def test_params_lines_key_inputs_by_path_and_refuse_records_without_a_warp(tmp_path):
    from stntool.records import read_warp_records

    def table(*lines):
        (tmp_path / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return read_warp_records(str(tmp_path / "p.jsonl"))

    old, new = [[0.5, 0, 0], [0, 0.5, 0]], [[-1, 0, 0], [0, 1, 0]]
    t = table({"input": "in/a.png", "theta": old}, {"input": "./in/a.png", "theta": new})
    assert list(t) == ["in/a.png"] and [s.theta for s in t["in/a.png"]] == [((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))]
    t = table({"input": "in/a.png", "status": "skipped"}, {"input": "in/b.png", "status": "interrupted"},
              {"input": "in/c.png", "status": "error", "error": "x"})
    assert t == {}
    with pytest.raises(InvalidArgumentError, match='line 2: no "theta" or "tps"'):
        table({"input": "a.png", "theta": old}, {"input": "b.png", "Theta": old})
    with pytest.raises(InvalidArgumentError, match='line 1: "input" is empty'):
        table({"input": "", "theta": old})
    # the lines of the file, blank ones counted (they were numbered among the records: "line 2" for line 4)
    good = json.dumps({"input": "a.png", "theta": old})
    bad = json.dumps({"input": "b.png", "theta": [[1, 0], [0, 1, 0, 0]]})
    (tmp_path / "blank.jsonl").write_text(good + "\n\n  \n" + bad + "\n")
    with pytest.raises(InvalidArgumentError, match=r'line 4: "theta" must be 2 or 3 rows of 3 numbers, got 2 rows '
                                                   r'of 2, 4'):
        read_warp_records(str(tmp_path / "blank.jsonl"))
    (tmp_path / "blank.jsonl").write_text("\n" + good + "\n\n" + json.dumps({"input": 5, "theta": old}) + "\n")
    with pytest.raises(InvalidArgumentError, match='line 4: "input" must be a path \\(a string\\), got 5'):
        read_warp_records(str(tmp_path / "blank.jsonl"))
    (tmp_path / "deep.jsonl").write_text('{"input": "a.png", "x": ' + "[" * 5000 + "]" * 5000 + "}\n")
    with pytest.raises(InvalidArgumentError, match="line 1: not JSON \\(nested too deeply\\)"):
        read_warp_records(str(tmp_path / "deep.jsonl"))
    (tmp_path / "deep.json").write_text('{"src": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        TpsPoints.load(str(tmp_path / "deep.json"))


def test_an_alpha_image_rounds_halves_up_as_the_kernels_do():
    """The premultiplied path rounded half to even (np.rint), the kernels and the whole-pixel path half up: a fill of
    10.5 gave 10 under a rotation and 11 under a shift."""
    import numpy as np

    from stntool.records import WarpSpec, apply_spec

    img = np.full((8, 8, 4), 255, np.uint8)
    fill = (10.5, 20.5, 30.5, 255)
    for theta in (((1, 0, 3), (0, 1, 0)), ((0.866, -0.5, 3), (0.5, 0.866, 0))):
        out = apply_spec(img, WarpSpec(theta=theta, padding="constant", fill=fill))
        assert out[0, -1].tolist() == [11, 21, 31, 255], theta
