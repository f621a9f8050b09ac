"""Input kinds beyond plain gray/BGR: palette, gray+alpha, CMYK, animated and multi-page files, float32 TIFF,
16-bit RGBA. The files are generated here: PNG and GIF bytes by hand, TIFF with OpenCV, CMYK JPEG and APNG with
Pillow when it is installed (it is not a stntool dependency)."""

import io
import json
import struct
import zlib

import cv2
import numpy as np
import pytest

import stntool
from stntool.io import decode_image, frame_count

from cli_helpers import SHIFT, encode, small_rgb, write

IDENTITY = "1,0,0,0,1,0"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w, h, depth, color_type, rows: bytes, extra=()):
    """A PNG from raw scanlines (filter byte 0 added per row); extra chunks go before IDAT."""
    stride = len(rows) // h
    raw = b"".join(b"\0" + rows[i * stride:(i + 1) * stride] for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    body = b"".join(png_chunk(k, d) for k, d in extra)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + body + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


PALETTE_RGB = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
INDICES = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)


def palette_png(trns=None):
    plte = bytes(v for rgb in PALETTE_RGB for v in rgb)
    extra = [(b"PLTE", plte)] + ([(b"tRNS", bytes(trns))] if trns else [])
    return png(4, 2, 8, 3, INDICES.tobytes(), extra)


def read(path):
    with open(path, "rb") as f:
        return decode_image(f.read())


def warp_one(run, tmp_path, name, data, out_name, *extra):
    src = write(tmp_path / name, data)
    r = run("--theta", IDENTITY, str(src), "-o", str(tmp_path / out_name), "--manifest", "-", *extra)
    return r


def test_palette_png_expands_to_bgr_with_its_colours(tmp_path, run):
    r = warp_one(run, tmp_path, "p.png", palette_png(), "o.png", "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == "" and json.loads(r.stdout)["status"] == "ok"
    out = read(tmp_path / "o.png")
    assert out.dtype == np.uint8 and out.shape == (2, 4, 3)
    expect_bgr = np.array([rgb[::-1] for rgb in PALETTE_RGB], np.uint8)[INDICES]
    assert np.array_equal(out, expect_bgr)


def test_palette_png_with_transparency_expands_to_bgra(tmp_path, run):
    r = warp_one(run, tmp_path, "p.png", palette_png(trns=[255, 128, 0, 255]), "o.png", "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.png")
    assert out.shape == (2, 4, 4)
    assert out[0, :, 3].tolist() == [255, 128, 0, 255]
    assert out[0, 0, :3].tolist() == [0, 0, 255] and out[0, 1, :3].tolist() == [0, 255, 0]  # straight colour kept
    assert out[0, 3, :3].tolist() == [30, 20, 10]


@pytest.mark.parametrize("depth", [8, 16])
def test_gray_alpha_png_keeps_two_channels(tmp_path, run, depth):
    dt = np.uint8 if depth == 8 else np.dtype(">u2")
    gray = (np.arange(12).reshape(3, 4) * (20 if depth == 8 else 5000)).astype(dt)
    alpha = np.full((3, 4), 100 if depth == 8 else 40000, dt)
    alpha[0, 0] = 0
    la = np.dstack([gray, alpha]).astype(dt)  # dstack gives native byte order; PNG wants big-endian
    data = png(4, 3, depth, 4, la.tobytes())
    assert decode_image(data).shape == (3, 4, 2)
    r = warp_one(run, tmp_path, "la.png", data, "o.png", "-q")
    assert r.exit_code == 0, r.stderr
    raw = (tmp_path / "o.png").read_bytes()
    assert raw[24:26] == bytes([depth, 4])  # written as gray+alpha, same depth
    out = read(tmp_path / "o.png")
    assert out.dtype == (np.uint8 if depth == 8 else np.uint16) and out.shape == (3, 4, 2)
    assert np.array_equal(out[..., 1], alpha.astype(out.dtype))
    assert np.array_equal(out[1:, :, 0], gray[1:].astype(out.dtype))  # identity, opaque enough to round-trip
    assert out[0, 0, 0] == 0  # fully transparent: colour undefined, written as 0


def test_gray_alpha_shift_and_tif_output(tmp_path, run):
    la = np.dstack([np.full((4, 8), 200, np.uint8), np.full((4, 8), 255, np.uint8)])
    write(tmp_path / "la.png", png(8, 4, 8, 4, la.tobytes()))
    r = run("--theta", SHIFT, str(tmp_path / "la.png"), "-o", str(tmp_path / "o.tif"), "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.tif")  # TIFF has no gray+alpha layout in OpenCV: the same pixels as BGRA
    assert out.shape == (4, 8, 4)
    assert out[0, 0].tolist() == [200, 200, 200, 255] and out[0, -1].tolist() == [0, 0, 0, 0]
    r = run("--theta", SHIFT, str(tmp_path / "la.png"), "-o", str(tmp_path / "o.jpg"), "-q")
    assert r.exit_code == 1 and "alpha" in r.stderr and not (tmp_path / "o.jpg").exists()


def test_cmyk_jpeg_converts_to_bgr(tmp_path, run):
    Image = pytest.importorskip("PIL.Image")
    img = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # red
    img.paste((255, 0, 255, 0), (8, 0, 16, 8))  # green right half
    b = io.BytesIO()
    img.save(b, "JPEG", quality=100)
    r = warp_one(run, tmp_path, "cmyk.jpg", b.getvalue(), "o.png", "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.png").astype(int)
    assert out.shape == (8, 16, 3)
    assert np.abs(out[4, 2] - [0, 0, 255]).max() <= 6  # red in BGR
    assert np.abs(out[4, 13] - [0, 255, 0]).max() <= 6  # green


def gif_two_frames():
    """An 8x4 GIF89a with a red and a blue frame (global palette, one literal code per pixel)."""
    def lzw_raw(indices):  # code size 2: clear=4, end=5; emit clear before every 2 codes so width stays 3 bits
        bits, nbits, out = 0, 0, bytearray()
        codes = []
        for i, v in enumerate(indices):
            if i % 2 == 0:
                codes.append(4)
            codes.append(v)
        codes.append(5)
        for c in codes:
            bits |= c << nbits
            nbits += 3
            while nbits >= 8:
                out.append(bits & 0xFF)
                bits >>= 8
                nbits -= 8
        if nbits:
            out.append(bits & 0xFF)
        return bytes(out)

    palette = bytes([255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0])  # 4 entries: red, blue, black, black
    head = b"GIF89a" + struct.pack("<HHBBB", 8, 4, 0x81, 0, 0) + palette
    frames = b""
    for idx in (0, 1):
        data = lzw_raw([idx] * 32)
        sub = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255))
        frames += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 0.1 s
        frames += b"\x2c" + struct.pack("<HHHHB", 0, 0, 8, 4, 0) + b"\x02" + sub + b"\x00"
    return head + frames + b"\x3b"


def test_an_output_file_of_a_format_that_cannot_be_written_is_a_usage_error(tmp_path, run):
    # every input would fail the same way ("cannot write '.gif' files", exit 1): known before any is read
    write(tmp_path / "a.png", encode(np.zeros((6, 8, 3), np.uint8), ".png"))
    r = run("--theta", "-1,0,0,0,1,0", str(tmp_path / "a.png"), "-o", str(tmp_path / "e.gif"))
    assert r.exit_code == 2 and "cannot write '.gif' files" in r.stderr, r.stderr
    assert not (tmp_path / "e.gif").exists()


def test_animated_gif_first_frame_and_warning(tmp_path, run):
    data = gif_two_frames()
    assert frame_count(data) == 2
    r = warp_one(run, tmp_path, "anim.gif", data, "o.png")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["status"] == "ok" and rec["frames"] == 2 and "only the first" in rec["warning"]
    assert "stntool: warning: " in r.stderr and "anim.gif: has 2 frames" in r.stderr
    out = read(tmp_path / "o.png")
    assert out[..., :3].reshape(-1, 3).tolist() == [[0, 0, 255]] * 32  # the red first frame
    # --quiet silences the warning; the manifest still records it
    r = run("--theta", IDENTITY, str(tmp_path / "anim.gif"), "-o", str(tmp_path / "q.png"), "-q", "--manifest", "-")
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout)["frames"] == 2


@pytest.mark.parametrize("maxval, dtype", [(1023, ">u2"), (100, "u1"), (255, "u1"), (65535, ">u2")])
def test_a_pgm_of_another_maxval_keeps_its_samples_and_says_so(tmp_path, run, maxval, dtype):
    # a 10-bit PGM came back as a 16-bit one with the same numbers: 64 times darker, without a word
    from stntool.io import pnm_maxval

    samples = (np.arange(12).reshape(3, 4) * (maxval // 11)).astype(dtype)
    data = b"P5\n# made by hand\n4 3\n%d\n" % maxval + samples.tobytes()
    assert pnm_maxval(data) == maxval
    r = warp_one(run, tmp_path, "a.pgm", data, "o.pgm", "--mode", "nearest")
    assert r.exit_code == 0, r.stderr
    assert read(tmp_path / "o.pgm").tolist() == samples.astype(np.uint16).tolist()  # kept as stored
    rec = json.loads(r.stdout)
    if maxval in (255, 65535):
        assert "warning" not in rec and r.stderr.count("warning") == 0
    else:
        said = f"its maxval is {maxval}: the samples are kept as stored (0-{maxval}), not scaled to "
        assert rec["warning"].startswith(said) and f"a.pgm: {said}" in r.stderr


def test_apng_first_frame_and_warning(tmp_path, run):
    Image = pytest.importorskip("PIL.Image")
    frames = [Image.new("RGB", (6, 4), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    b = io.BytesIO()
    frames[0].save(b, "PNG", save_all=True, append_images=frames[1:])
    assert b"acTL" in b.getvalue() and frame_count(b.getvalue()) == 3
    r = warp_one(run, tmp_path, "anim.png", b.getvalue(), "o.png")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == 3 and "has 3 frames" in r.stderr
    assert read(tmp_path / "o.png").reshape(-1, 3).tolist() == [[0, 0, 255]] * 24


def test_multipage_tiff_first_page_and_warning(tmp_path, run):
    pages = [np.full((4, 6, 3), (255, 0, 0), np.uint8), np.full((5, 7, 3), (0, 0, 255), np.uint8)]
    assert cv2.imwritemulti(str(tmp_path / "pages.tif"), pages)
    assert frame_count((tmp_path / "pages.tif").read_bytes()) == 2
    r = run("--theta", IDENTITY, str(tmp_path / "pages.tif"), "-o", str(tmp_path / "o.tif"), "--manifest", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == 2 and "has 2 frames or pages" in r.stderr
    assert np.array_equal(read(tmp_path / "o.tif"), pages[0])
    single = encode(pages[0], ".tif")
    assert frame_count(single) == 1


@pytest.mark.parametrize("channels", [1, 3])
def test_float32_tiff_in_and_out(tmp_path, run, channels):
    rng = np.random.default_rng(1)
    shape = (6, 8) if channels == 1 else (6, 8, 3)
    img = (rng.random(shape, dtype=np.float32) * 4 - 1).astype(np.float32)  # values outside [0, 1] survive
    write(tmp_path / "f.tif", encode(img, ".tif"))
    r = run("--theta", SHIFT, "--padding", "border", str(tmp_path / "f.tif"), "-o", str(tmp_path / "o.tif"), "-q")
    assert r.exit_code == 0, r.stderr
    raw = cv2.imdecode(np.frombuffer((tmp_path / "o.tif").read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.float32 and raw.shape == img.shape
    expect = stntool.warp(img, [[1, 0, 0.5], [0, 1, 0]], padding="border")
    assert np.array_equal(raw, expect)
    # formats of 8 or 16 bits refuse float samples (OpenCV wrote the Netpbm ones as 8 bits without a word)
    for ext in ("png", "pnm") + (("pgm",) if channels == 1 else ("ppm",)):
        r = run("--theta", SHIFT, str(tmp_path / "f.tif"), "-o", str(tmp_path / f"o.{ext}"), "-q")
        assert r.exit_code == 1 and f"{ext} cannot store 32-bit float samples" in r.stderr, r.stderr
        assert not (tmp_path / f"o.{ext}").exists()


def test_rgba16_png(tmp_path, run):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 65536, (5, 8, 4), dtype=np.uint16)
    img[..., 3] = 65535
    write(tmp_path / "a.png", encode(img, ".png"))
    r = run("--theta", IDENTITY, str(tmp_path / "a.png"), "-o", str(tmp_path / "id.png"), "-q")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(read(tmp_path / "id.png"), img)
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "s.png"), "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "s.png")
    assert out.dtype == np.uint16 and out.shape == img.shape
    # opaque: colour equals the plain warp of the colour channels (to rounding), alpha is 0 where outside
    expect = stntool.warp(img[..., :3].astype(np.float64), [[1, 0, 0.5], [0, 1, 0]])
    inside = out[..., 3] == 65535
    assert inside[:, :4].all() and not inside[:, -1].any()
    assert np.abs(out[..., :3][inside].astype(np.float64) - expect[inside]).max() <= 1.0
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "s.jpg"), "-q")
    assert r.exit_code == 1 and "jpg cannot store 16-bit samples without loss" in r.stderr
    # the way out fits a file output (--format png with -o s.jpg is itself a usage error)
    assert "write png instead (--format png, or an output file named .png)" in r.stderr


def test_tps_points_too_far_out_are_a_usage_error(tmp_path, run):
    # squared distances of 1e300 overflowed in Python floats: an OverflowError traceback stopped the batch; the
    # points are the option's, so they are refused once, before any input is read
    for name in ("a", "b"):
        write(tmp_path / f"{name}.png", encode(np.zeros((20, 30, 3), np.uint8), ".png"))
    (tmp_path / "t.json").write_text('{"src": [[0, 0], [10, 0], [0, 10], [3, 7]], '
                                     '"dst": [[0, 0], [1e300, 0], [0, 10], [3, 7]]}')
    r = run("--tps", str(tmp_path / "t.json"), str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
            str(tmp_path / "o"))
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("control points lie beyond") == 1 and "--tps" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("points, reason", [
    ([[0, 0], [10, 10], [20, 20], [35, 35]], "collinear"),
    ([[0, 0], [10, 0], [0, 10], [0, 0]], "duplicate control points: #0 and #3"),
])
def test_tps_points_that_determine_no_spline_are_a_usage_error(tmp_path, run, points, reason):
    # they determine no spline at any image size: one usage error, not the same error for every input
    for name in ("a", "b"):
        write(tmp_path / f"{name}.png", encode(np.zeros((20, 30, 3), np.uint8), ".png"))
    (tmp_path / "t.json").write_text(json.dumps({"src": points, "dst": points}))
    r = run("--tps", str(tmp_path / "t.json"), str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
            str(tmp_path / "o"))
    assert r.exit_code == 2 and r.stderr.count(reason) == 1 and "--tps" in r.stderr, r.stderr
    assert f"{tmp_path / 't.json'}: " in r.stderr, r.stderr  # the file that holds them
    assert "stntool: error" not in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("doc, reason", [
    ({"src": [[1, 2]], "dst": 5}, '"dst" must be a list of [x, y] pairs'),
    ([1], "expected an object"),
    ({"src": [[1, 2]], "dst": [[1, 2]], "normalised": True}, "unknown key 'normalised'"),
])
def test_a_bad_tps_file_is_named_in_its_error(tmp_path, run, doc, reason):
    # every reason a points file is refused names the file (only a misspelt key did)
    write(tmp_path / "a.png", encode(np.zeros((20, 30, 3), np.uint8), ".png"))
    (tmp_path / "t.json").write_text(json.dumps(doc))
    r = run("--tps", str(tmp_path / "t.json"), str(tmp_path / "a.png"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and f"{tmp_path / 't.json'}: {reason}" in r.stderr, r.stderr


def test_a_singular_forward_matrix_is_a_usage_error_and_an_inverse_one_warps(tmp_path, run):
    img = small_rgb()
    for name in ("a", "b"):
        write(tmp_path / f"{name}.png", encode(img, ".png"))
    inputs = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    r = run("--matrix", "1,2,0,2,4,0", *inputs, "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and r.stderr.count("singular") == 1 and "--matrix" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
    # as cv2.WARP_INVERSE_MAP, the same matrix maps output pixels to input pixels: it collapses the image onto a
    # line of the input, which is a warp like any other
    r = run("--matrix", "1,2,0,2,4,0", "--inverse-map", *inputs, "-o", str(tmp_path / "i"), "-q")
    assert r.exit_code == 0, r.stderr
    theta = stntool.theta_from_cv2(np.array([[1.0, 2, 0], [2, 4, 0]]), img.shape[:2], inverse_map=True)
    assert np.array_equal(read(tmp_path / "i" / "a.png"), stntool.warp(img, theta))


def test_a_gif_to_stdout_with_format_same_is_a_png(tmp_path, run):
    frames = np.zeros((2, 12, 16, 3), np.uint8)
    frames[0, :, :8] = 255
    from PIL import Image

    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(tmp_path / "a.gif", save_all=True, append_images=ims[1:])
    r = run("--theta", "-1,0,0,0,1,0", str(tmp_path / "a.gif"), "-o", "-", "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes[:4] == b"\x89PNG"  # OpenCV writes no GIF: PNG, as for a folder's outputs


def test_a_pnm_on_stdin_comes_back_in_its_own_format(tmp_path, run):
    # --format same wrote a PNG to stdout for a PGM or PPM read from stdin (its format was not recognised)
    from stntool.io import decode_image

    for img, ext, magic in ((np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000, ".pgm", b"P5"),
                            (np.arange(144, dtype=np.uint8).reshape(6, 8, 3), ".ppm", b"P6")):
        r = run("--theta", "1,0,0,0,1,0", "-", "-o", "-", "-q", input=encode(img, ext))
        assert r.exit_code == 0, r.stderr
        assert r.stdout_bytes[:2] == magic
        out = decode_image(r.stdout_bytes)
        assert out.dtype == img.dtype and np.array_equal(out, img)


def test_theta_and_matrix_take_bracketed_rows(tmp_path, run):
    # θ pasted from Python (theta.tolist()) or NumPy: "value 1 ('[[0.9') is not a number" before
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    for option, flat, rows in (("--theta", "0.9,-0.25,0.05,0.25,0.9,0", "[[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]"),
                               ("--matrix", "1,0,2,0,1,1,0,0,1", "[[1. 0. 2.]\n [0. 1. 1.]\n [0. 0. 1.]]")):
        outs = []
        for k, value in enumerate((flat, rows)):
            r = run(option, value, str(tmp_path / "a.png"), "-o", str(tmp_path / f"{k}.png"), "-q", "--overwrite")
            assert r.exit_code == 0, r.stderr
            outs.append((tmp_path / f"{k}.png").read_bytes())
        assert outs[0] == outs[1]


def test_size_alone_says_how_to_resize(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    r = run("--size", "8x8", str(tmp_path / "a.png"), "-o", str(tmp_path / "r.png"))
    assert r.exit_code == 2 and "to resize only: --theta 1,0,0,0,1,0 --size WxH" in r.stderr, r.stderr


def test_a_radiance_hdr_folder_keeps_its_format(tmp_path, run):
    # --format same turned .hdr into .png, which cannot store float32: every .hdr input of a folder failed
    from stntool.io import decode_image

    img = (np.random.default_rng(0).random((12, 16, 3)) * 4).astype(np.float32)
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "sky.hdr", encode(img, ".hdr"))
    stored = decode_image((folder / "sky.hdr").read_bytes())
    r = run("--theta", "1,0,0,0,1,0", str(folder), "-o", str(tmp_path / "out"), "-q")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(decode_image((tmp_path / "out" / "sky.hdr").read_bytes()), stored)  # RGBE again: as read
    r = run("--theta", "1,0,0,0,1,0", "-", "-o", "-", "-q", input=(folder / "sky.hdr").read_bytes())
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"#?RADIANCE"), r.stderr  # it came back as PNG: failed
    assert np.array_equal(decode_image(r.stdout_bytes), stored)
    write(tmp_path / "g.png", encode(np.zeros((4, 5), np.uint8), ".png"))
    r = run("--theta", "1,0,0,0,1,0", str(tmp_path / "g.png"), "-o", str(tmp_path / "g.hdr"))
    assert r.exit_code == 1 and "hdr stores three 32-bit float channels, not 8-bit samples" in r.stderr
    assert not (tmp_path / "g.hdr").exists()
