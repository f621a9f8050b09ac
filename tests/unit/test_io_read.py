"""Reading input files: the bytes of a regular file, whatever ``fstat`` said its size was."""

import os
import struct

import cv2
import numpy as np
import pytest

from stntool import io as sio
from stntool.errors import ImageReadError


@pytest.mark.parametrize("told", [0, 1, 999, 1000, 1001, 5000])
def test_a_file_is_read_to_its_end_whatever_its_size_was_said_to_be(tmp_path, told):
    """``_read_all`` reads to the end of the file also when it grew or shrank after ``fstat`` (``told``),
    and stops at ``max_bytes + 1`` bytes."""
    data = os.urandom(1000)
    (tmp_path / "f.bin").write_bytes(data)
    fd = os.open(tmp_path / "f.bin", os.O_RDONLY)
    try:
        assert sio._read_all(fd, told, 1 << 20) == data
        os.lseek(fd, 0, os.SEEK_SET)
        assert sio._read_all(fd, told, 99) == data[:100]  # one byte past the limit: the caller says "too large"
    finally:
        os.close(fd)


def test_read_file_bytes_gives_the_bytes_and_refuses_what_is_not_a_file(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "big.jpg").write_bytes(data)
    assert sio.read_file_bytes(str(tmp_path / "big.jpg")) == data
    with pytest.raises(ImageReadError, match="file too large"):
        sio.read_file_bytes(str(tmp_path / "big.jpg"), max_bytes=1 << 20)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        sio.read_file_bytes(str(tmp_path / "empty.jpg"))
    with pytest.raises(ImageReadError, match="is a directory"):
        sio.read_file_bytes(str(tmp_path))


def _packed_rows(values, depth):
    """The rows of ``values`` (H, W) packed at ``depth`` (1, 2, 4 or 8) bits, big end first, as PNG packs them."""
    h, w = values.shape
    per = 8 // depth
    padded = np.zeros((h, -(-w // per) * per), np.int64)
    padded[:, :w] = values
    packed = np.zeros((h, padded.shape[1] // per), np.int64)
    for k in range(per):
        packed |= padded[:, k::per] << (8 - depth * (k + 1))
    return packed


def _indexed_png(ids, palette_rgb, depth=8, filters=(0,), interlace=0):
    """An indexed PNG written here, independently of the reader: rows packed at ``depth`` bits and filtered
    with ``filters[y % len(filters)]`` (PNG's five filters on one byte per step)."""
    import struct
    import zlib

    import numpy as np

    h, w = ids.shape
    packed = _packed_rows(ids, depth)
    out, prev = [], np.zeros(packed.shape[1], np.int64)
    for y in range(h):
        row, f = packed[y], filters[y % len(filters)]
        left = np.concatenate([[0], row[:-1]])
        up_left = np.concatenate([[0], prev[:-1]])
        if f == 0:
            pred = np.zeros_like(row)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - up_left
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - up_left)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, up_left))
        out.append(bytes([f]) + bytes(((row - pred) % 256).astype(np.uint8)))
        prev = row

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, 3, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"PLTE", bytes(palette_rgb))
            + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_indexed_pngs_give_their_indices_for_every_filter_and_depth(depth):
    import numpy as np

    rng = np.random.default_rng(depth)
    n = 1 << depth
    ids = rng.integers(0, n, (23, 37)).astype(np.uint8)
    ids[5:15, 3:30] = n - 1  # runs, where the filters' predictions matter
    colours = rng.integers(0, 256, 3 * n).tolist()
    colours[3:6] = colours[0:3]  # indices 0 and 1 share a colour: only the indices tell them apart
    data = _indexed_png(ids, colours, depth, filters=(0, 1, 2, 3, 4))
    got, (plte, trns) = sio.decode_indexed_png(data)
    assert got.dtype == np.uint8 and np.array_equal(got, ids)
    assert list(plte) == colours and trns is None
    again, _ = sio.decode_indexed_png(sio.encode_indexed_png(got, (plte, trns)))
    assert np.array_equal(again, ids)


def test_indexed_png_refusals():
    import numpy as np

    ids = np.zeros((4, 5), np.uint8)
    with pytest.raises(ImageReadError, match="interlaced"):
        sio.decode_indexed_png(_indexed_png(ids, [0, 0, 0, 255, 255, 255], interlace=1))
    with pytest.raises(ImageReadError, match="not an indexed"):
        sio.decode_indexed_png(sio.encode_image(ids, "png"))
    with pytest.raises(Exception, match="beyond the palette"):
        sio.encode_indexed_png(ids + 2, (bytes(6), None))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_undone_as_pillow_undoes_it(tmp_path, orientation):
    import io

    import numpy as np
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    img = np.kron(rng.integers(0, 256, (3, 4, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 24x32 blocks: JPEG-safe
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=100, exif=exif)
    data = buf.getvalue()
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))[..., ::-1]  # RGB -> BGR
    got = sio.decode_image(data)
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 8  # the same blocks (decoders round alike-ish)


def _pil_tiff(arr, mode=None, orientation=None, big=False):
    import io

    from PIL import Image

    pil = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    kw = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    buf = io.BytesIO()
    pil.save(buf, "TIFF", big_tiff=big, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("big", [False, True])
def test_rgba_tiff_colour_is_read_as_stored_not_premultiplied(big):
    """Most programs mark a TIFF's alpha unassociated (ExtraSamples 2); OpenCV's decoder premultiplied such
    8-bit colour, and every warp wrote it back darkened as straight colour."""
    rgba = np.random.default_rng(0).integers(0, 256, (20, 40, 4), dtype=np.uint8)
    data = _pil_tiff(rgba, big=big)
    got = sio.decode_image(data)
    assert np.array_equal(got, rgba[..., [2, 1, 0, 3]])  # BGRA, exactly as stored
    assert sio._tiff_for_decoder(data, True) != data and sio.decode_image(data).dtype == np.uint8


def _rgba_tiff(arr, extra, endian="<"):
    """An uncompressed one-strip RGBA TIFF of ``arr`` ``(H, W, 4)`` uint8 or uint16 whose ExtraSamples is ``extra``
    (Pillow writes 2 only, OpenCV none)."""
    import struct

    h, w, _ = arr.shape
    bits = arr.dtype.itemsize * 8
    pixels = arr.astype(arr.dtype.newbyteorder(endian)).tobytes()
    n_tags = 11
    bps_at = 8 + 2 + 12 * n_tags + 4
    data_at = bps_at + 8
    tags = [(256, 4, w), (257, 4, h), (258, 3, bps_at), (259, 3, 1), (262, 3, 2), (273, 4, data_at), (277, 3, 4),
            (278, 4, h), (279, 4, len(pixels)), (284, 3, 1), (338, 3, extra)]
    out = (b"II" if endian == "<" else b"MM") + struct.pack(endian + "HIH", 42, 8, n_tags)
    for tag, kind, v in tags:
        count = 4 if tag == 258 else 1
        out += struct.pack(endian + ("HHIHH" if kind == 3 and count == 1 else "HHII"), tag, kind, count,
                           *((v, 0) if kind == 3 and count == 1 else (v,)))
    return out + struct.pack(endian + "I4H", 0, bits, bits, bits, bits) + pixels


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_associated_alpha_tiff_colour_is_divided_by_its_alpha(dtype, endian):
    """A TIFF whose alpha is marked associated (ExtraSamples 1) stores colour premultiplied; OpenCV gives it as
    stored, and warps took it for straight colour (darkened where partly transparent)."""
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(1)
    straight = rng.integers(0, top + 1, (6, 7, 4)).astype(dtype)
    straight[0, :, 3] = [0, 1, 2, top // 2, top - 1, top, 3]
    a = straight[..., 3:].astype(np.float64)
    stored = np.floor(straight[..., :3] * a / top + 0.5).astype(dtype)  # premultiplied, rounded
    stored = np.concatenate([stored, straight[..., 3:]], -1)
    stored[0, 2, :3] = [3, 2, 1]  # colour above its alpha (2 -> 3): not premultiplied, saturates
    got = sio.decode_image(_rgba_tiff(stored, 1, endian))
    want = np.floor(np.minimum(stored[..., :3], stored[..., 3:]) * float(top) / np.maximum(a, 1) + 0.5)
    want = np.where(a > 0, want, 0).astype(dtype)
    assert got.dtype == np.dtype(dtype) and np.array_equal(got[..., 3], stored[..., 3])
    assert np.array_equal(got[..., :3], want[..., ::-1])  # BGR
    assert np.array_equal(got[0, 0, :3], [0, 0, 0])
    assert np.array_equal(got[0, 2, :3], [(top + 1) // 2, top, top])  # B: 1 / 2 rounds up
    # the round trip is within what premultiplying lost: half a step of alpha's quantum
    keep = a[..., 0] >= top // 2
    assert np.abs(got[..., :3][keep].astype(np.int64) - straight[..., 2::-1][keep]).max() <= 2
    # unassociated (2) and unspecified (0) alpha: as stored
    for extra in (0, 2):
        assert np.array_equal(sio.decode_image(_rgba_tiff(stored, extra, endian)), stored[..., [2, 1, 0, 3]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_and_ignore_orientation_keeps_the_stored_pixels(orientation):
    """OpenCV applies a TIFF's Orientation tag itself, IMREAD_IGNORE_ORIENTATION or not: ``apply_exif=False``
    (``--ignore-orientation``) must still give the stored pixels, and the default the page turned upright, as
    for JPEG."""
    from stntool.io import apply_orientation

    rgb = np.random.default_rng(orientation).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    data = _pil_tiff(rgb, orientation=orientation)
    stored = rgb[..., ::-1]
    assert np.array_equal(sio.decode_image(data, apply_exif=False), stored)
    assert np.array_equal(sio.decode_image(data), apply_orientation(stored, orientation))


def test_grey_alpha_tiff_is_refused_not_read_without_its_alpha():
    la = np.random.default_rng(0).integers(0, 256, (9, 9, 2), dtype=np.uint8)
    with pytest.raises(ImageReadError, match="grey \\+ alpha TIFF: OpenCV's decoder drops its alpha"):
        sio.decode_image(_pil_tiff(la, "LA"))


def test_tiff_patching_leaves_other_tiffs_and_the_input_bytes_alone():
    ok, enc = cv2.imencode(".tif", np.zeros((5, 6, 4), np.uint16))
    data = enc.tobytes()
    assert sio._tiff_for_decoder(data, False) is data  # no ExtraSamples, no Orientation: nothing to change
    cut = b"II*\x00\xff\xff\xff\x7f"  # a directory beyond the end: no tags, nothing patched, no error
    assert sio._tiff_ifd0(cut) == {"endian": "<"} and sio._tiff_for_decoder(cut, True) is cut
    rgba = _pil_tiff(np.zeros((4, 4, 4), np.uint8), orientation=6)
    patched = sio._tiff_for_decoder(rgba, False)  # ExtraSamples 2 -> 0 and Orientation 6 -> 1, in a copy
    assert len(patched) == len(rgba) and sum(a != b for a, b in zip(patched, rgba)) == 2


@pytest.mark.parametrize("shape,dtype,compression", [((30, 40), "uint8", 1), ((25, 17, 3), "uint16", 5),
                                                     ((3000, 3000), "uint8", 8)])
def test_tiff_sizes_are_read_from_the_header(shape, dtype, compression):
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".tif", np.zeros(shape, dtype), [cv2.IMWRITE_TIFF_COMPRESSION, compression])
    assert sio.header_info(buf.tobytes()) == ("tif", shape[1], shape[0])
    if shape[0] * shape[1] > 1 << 20:  # refused from the header, before a byte is decoded
        with pytest.raises(ImageReadError, match="header declares 3000x3000"):
            sio.decode_image(buf.tobytes(), max_pixels=1 << 20)
    assert sio.header_info(b"II*\x00\xff\xff\xff\x7f") == ("tif", None, None)  # an IFD past the end


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_with_bytes_after_its_end_is_read_and_a_cut_one_is_refused(progressive):
    # phones append a video or a depth map after the photo's end-of-image marker: an FF DA among those bytes
    # (after the photo's last FF D9) made about half of such photos "truncated"
    img = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)] + ([] if progressive else
                                                                [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    data = cv2.imencode(".jpg", img, flags)[1].tobytes()
    expect = sio.decode_image(data)
    for trailer in (b"\xff\xda\x00\x0c" + bytes(64), bytes(np.random.default_rng(1).integers(0, 256, 4096,
                                                                                            dtype=np.uint8))):
        assert np.array_equal(sio.decode_image(data + trailer), expect)
    for cut in range(len(data) // 3, len(data) - 1, 53):  # scan data cut short, with or without an FF DA after it
        for tail in (b"", b"\xff\xda"):
            with pytest.raises(ImageReadError, match="truncated JPEG"):
                sio.decode_image(data[:cut] + tail)


def test_pnm_sizes_are_checked_from_the_header_and_a_cut_file_is_called_pnm():
    ok, enc = cv2.imencode(".pgm", np.arange(12, dtype=np.uint8).reshape(3, 4))
    data = enc.tobytes()
    assert sio.header_info(data) == ("pnm", 4, 3)
    assert sio.header_info(b"P6\n# a comment 9 9\n 640\t480\n255\n") == ("pnm", 640, 480)
    assert sio.header_info(b"P5x") == (None, None, None)
    with pytest.raises(ImageReadError, match="header declares 100000x100000"):  # before any decoding
        sio.decode_image(b"P5\n100000 100000\n255\n" + bytes(100))
    with pytest.raises(ImageReadError, match="cannot decode PNM data"):  # it was "not an image"
        sio.decode_image(data[:-5])


def test_hdr_pam_and_long_commented_pnm_sizes_are_checked_from_the_header():
    # a Radiance HDR (run-length coded: 9 MB declared 12000x12000) and a PAM were decoded in full before their size
    # was checked; a PGM whose first 4 KB were a comment was "cannot decode" instead of "too large"
    ok, enc = cv2.imencode(".hdr", np.full((30, 40, 3), 0.5, np.float32))
    hdr = enc.tobytes()
    assert sio.header_info(hdr) == ("hdr", 40, 30)
    assert b"-Y 30 +X 40\n" in hdr
    with pytest.raises(ImageReadError, match="header declares 40000x30000"):  # "image too large: 40000x30000" after
        sio.decode_image(hdr.replace(b"-Y 30 +X 40\n", b"-Y 30000 +X 40000\n"))
    assert sio.header_info(hdr.replace(b"-Y 30 +X 40\n", b"+X 40 -Y 30\n"))[1:] == (40, 30)  # columns first
    assert sio.header_info(hdr.replace(b"\n\n", b"\n"))[1:] == (None, None)  # no resolution line
    pam = b"P7\nWIDTH 7\nHEIGHT 6\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n" + bytes(range(42))
    assert sio.header_info(pam) == ("pam", 7, 6)
    assert np.array_equal(sio.decode_image(pam), np.arange(42, dtype=np.uint8).reshape(6, 7))
    with pytest.raises(ImageReadError, match="header declares 100000x100000"):
        sio.decode_image(b"P7\nWIDTH 100000\nHEIGHT 100000\nDEPTH 1\nMAXVAL 255\nENDHDR\n" + bytes(100))
    assert sio.pnm_maxval(b"P6 2 2 4095\n") == 4095 and sio.pnm_maxval(b"P4 8 1\n\0") is None
    assert sio.pnm_maxval(b"P7\nWIDTH 1\n") is None and sio.pnm_maxval(b"P5 2 2") is None
    long = b"P5\n#" + b"x" * 5000 + b"\n30000 30000\n255\n" + bytes(100)
    assert sio.header_info(long) == ("pnm", 30000, 30000) and sio.pnm_maxval(long) == 255
    with pytest.raises(ImageReadError, match="header declares 30000x30000"):
        sio.decode_image(long)


def test_a_large_file_declaring_too_many_pixels_is_refused_from_its_head(tmp_path, monkeypatch):
    # the whole file was read (a 72 MB 16-bit scan took 72 MB per job) before its header was checked
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 40000, 30000, 16, 2, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
           + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + b"\0" * (3 * sio.HEAD_BYTES))
    (tmp_path / "big.png").write_bytes(png)

    def no_whole_read(*args):
        raise AssertionError("read whole")

    monkeypatch.setattr(sio, "_read_all", no_whole_read)
    with pytest.raises(sio.ImageReadError, match=r"image too large: header declares 40000x30000 = 1200000000 pixels"):
        sio.read_file_bytes(str(tmp_path / "big.png"), max_pixels=1 << 27)
    with pytest.raises(sio.ImageReadError, match="image too large"):
        sio.read_image(str(tmp_path / "big.png"))
    with pytest.raises(AssertionError, match="read whole"):  # within the limit, or without one: read as before
        sio.read_file_bytes(str(tmp_path / "big.png"), max_pixels=1 << 31)
    with pytest.raises(AssertionError, match="read whole"):
        sio.read_file_bytes(str(tmp_path / "big.png"))

    # a TIFF whose directory is written last (as libtiff writes it): found where it is, not read whole
    tif = tmp_path / "big.tif"
    monkeypatch.undo()
    cv2.imwrite(str(tif), np.random.default_rng(0).integers(0, 65536, (300, 400, 3), dtype=np.uint16))  # no LZW gain
    data = tif.read_bytes()
    assert len(data) > 3 * sio.HEAD_BYTES and int.from_bytes(data[4:8], "little") > sio.HEAD_BYTES
    monkeypatch.setattr(sio, "_read_all", no_whole_read)
    with pytest.raises(sio.ImageReadError, match=r"header declares 400x300 = 120000 pixels \(limit 1000"):
        sio.read_file_bytes(str(tif), max_pixels=1000)


def _os2_bitmap(pixels, bpp, palette=b""):
    """An OS/2 bitmap (12-byte BITMAPCOREHEADER) of ``pixels`` (rows top down: BGR triples or palette indices)."""
    h, w = pixels.shape[:2]
    stride = (w * bpp // 8 + 3) // 4 * 4
    rows = b"".join(pixels[i].tobytes() + b"\0" * (stride - w * bpp // 8) for i in range(h - 1, -1, -1))
    start = 14 + 12 + len(palette)
    return (b"BM" + struct.pack("<IHHI", start + len(rows), 0, 0, start) + struct.pack("<IHHHH", 12, w, h, 1, bpp)
            + palette + rows)


def test_os2_bitmaps_are_sized_from_their_16_bit_header_and_keep_their_colours():
    # the 12-byte header holds 16-bit width and height: read as the 32-bit ones of the other headers, a 40x30
    # bitmap declared 1966120x1572865 pixels and was refused as too large; and OpenCV reads every OS/2 bitmap as
    # grey when asked for the image unchanged
    rng = np.random.default_rng(0)
    h, w = 30, 40
    bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (h, w), dtype=np.uint8)
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    greys = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    for data, want in ((_os2_bitmap(bgr, 24), bgr), (_os2_bitmap(index, 8, colours.tobytes()), colours[index]),
                       (_os2_bitmap(index, 8, greys.tobytes()), index)):
        assert sio.header_info(data) == ("bmp", w, h)
        got = sio.decode_image(data, max_pixels=w * h)
        assert got.shape == want.shape and np.array_equal(got, want)
        with pytest.raises(ImageReadError, match="1200"):
            sio.decode_image(data, max_pixels=w * h - 1)
    windows = cv2.imencode(".bmp", bgr)[1].tobytes()  # a 40-byte header: as OpenCV reads it
    assert np.array_equal(sio.decode_image(windows), bgr)


def _grey_png(levels, depth, transparent=None):
    """A gray PNG written here (rows packed at ``depth`` bits, filter 0), with a ``tRNS`` chunk for ``transparent``."""
    import zlib

    h, w = levels.shape
    if depth == 16:
        raw = b"".join(b"\0" + levels[i].astype(">u2").tobytes() for i in range(h))
    else:
        packed = _packed_rows(levels, depth)
        raw = b"".join(b"\0" + packed[i].astype(np.uint8).tobytes() for i in range(h))

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    trns = b"" if transparent is None else chunk(b"tRNS", struct.pack(">H", transparent))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)) + trns
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_a_gray_png_with_a_transparent_level_is_gray_and_alpha(depth):
    # OpenCV drops a gray PNG's tRNS chunk: the transparent pixels came out opaque
    rng = np.random.default_rng(depth)
    levels = rng.integers(0, 1 << depth, (9, 13))
    key = int(levels[4, 6])
    scale = 65535 // ((1 << depth) - 1) if depth == 16 else 255 // ((1 << depth) - 1)
    dtype = np.uint16 if depth == 16 else np.uint8
    grey = (levels * (1 if depth == 16 else scale)).astype(dtype)
    plain = sio.decode_image(_grey_png(levels, depth))
    assert plain.dtype == dtype and np.array_equal(plain, grey)
    got = sio.decode_image(_grey_png(levels, depth, key))
    assert got.shape == (9, 13, 2) and got.dtype == dtype
    assert np.array_equal(got[..., 0], grey)
    assert np.array_equal(got[..., 1], np.where(levels == key, 0, np.iinfo(dtype).max))


def test_a_cmyk_tiff_is_bgr_without_the_decoders_opaque_alpha():
    # OpenCV converts CMYK to BGR and adds an alpha channel, all opaque: the image gained an alpha it never had
    # (warped premultiplied, refused as JPEG)
    pil = pytest.importorskip("PIL.Image")
    import io as _io

    cmyk = np.random.default_rng(3).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    buf = _io.BytesIO()
    pil.fromarray(cmyk, mode="CMYK").save(buf, format="TIFF")
    got = sio.decode_image(buf.getvalue())
    rgb = np.asarray(pil.open(_io.BytesIO(buf.getvalue())).convert("RGB"))
    assert got.shape == (6, 7, 3) and got.dtype == np.uint8
    assert np.abs(got[..., ::-1].astype(int) - rgb).max() <= 1  # Pillow's conversion, within rounding
    rgba = np.random.default_rng(4).integers(0, 256, (6, 7, 4), dtype=np.uint8)  # a true alpha is kept
    assert sio.decode_image(sio.encode_image(rgba, "tif")).shape == (6, 7, 4)


def _tiff_of_samples(samples, h=8, w=8):
    """An uncompressed 8-bit TIFF of ``samples`` samples per pixel (gray plus unspecified extra samples)."""
    pix = (np.arange(h * w * samples) % 251).astype(np.uint8).tobytes()
    n = 11
    bits_at = 8 + 2 + 12 * n + 4
    extra_at = bits_at + 2 * samples
    data_at = extra_at + 2 * (samples - 1)

    def entry(tag, kind, count, value):
        return struct.pack("<HHIHH" if kind == 3 and count == 1 else "<HHII", tag, kind, count, value,
                           *((0,) if kind == 3 and count == 1 else ()))

    entries = [entry(256, 3, 1, w), entry(257, 3, 1, h), entry(258, 3, samples, bits_at), entry(259, 3, 1, 1),
               entry(262, 3, 1, 1), entry(273, 4, 1, data_at), entry(277, 3, 1, samples), entry(278, 3, 1, h),
               entry(279, 4, 1, len(pix)), entry(284, 3, 1, 1), entry(338, 3, samples - 1, extra_at)]
    return (b"II*\0" + struct.pack("<IH", 8, n) + b"".join(entries) + struct.pack("<I", 0)
            + struct.pack(f"<{samples}H", *[8] * samples) + struct.pack(f"<{samples - 1}H", *[0] * (samples - 1)) + pix)


def test_a_tiff_opencv_cannot_decode_says_why():
    # OpenCV's log (silenced) held the reason; the error said only "corrupt or unsupported"
    with pytest.raises(ImageReadError, match=r"cannot decode TIF data \(corrupt or unsupported; Unsupported number "
                                             r"of channels: .* 'channels' is 5\)"):
        sio.decode_image(_tiff_of_samples(5))  # (the reason shows OpenCV read the file's header as written)


def test_display_escapes_each_byte_and_control_character_once():
    # a name with both a byte that is not UTF-8 and a control character had its \\xff escaped twice (\\\\xff)
    assert sio.display(os.fsdecode(b"bad\xff\x1b[31m.png")) == "bad\\xff\\x1b[31m.png"
    assert sio.display("a\nb\tc\r.png") == "a\\nb\\tc\\r.png"
    assert sio.display(os.fsdecode(b"caf\xc3\xa9 \xff.png")) == "café \\xff.png"
    assert sio.display("-") == "<stdin>"
    # C1 controls (\x9b opens a terminal sequence too) and line separators were printed as they are
    assert sio.display("x\x85y\u2028z\x9b[2J.png") == "x\\x85y\\u2028z\\x9b[2J.png"
    assert sio.display("日本 e\u0301.png") == "日本 e\u0301.png"
    # format characters that reorder or hide text around them (a right-to-left override) are escaped
    assert sio.display("invoice\u202egnp.exe") == "invoice\\u202egnp.exe"
    # spaces, joiners and new emoji print as they are (a macOS screenshot's name holds U+202F)
    for name in ("Screenshot 10.00.00\u202fAM.png", "a\xa0b.png", "\U0001f469\u200d\U0001f4bb.png", "\U0001fae9.png"):
        assert sio.display(name) == name


def test_file_orientation_reads_a_jpegs_exif_and_a_tiffs_directory(tmp_path):
    import io

    from PIL import Image

    img = np.zeros((6, 8, 3), np.uint8)
    (tmp_path / "t.tif").write_bytes(_pil_tiff(img, orientation=6))
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 8
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif)
    (tmp_path / "j.jpg").write_bytes(buf.getvalue())
    (tmp_path / "p.png").write_bytes(sio.encode_image(img, "png"))
    assert [sio.file_orientation(tmp_path / n) for n in ("t.tif", "j.jpg", "p.png", "missing.jpg")] == [6, 8, 1, 1]
    # EXIF after two 60 KB segments (ICC profiles, XMP): past the first 64 KB that were read
    big = b"\xff\xe2" + struct.pack(">H", 60002) + bytes(60000)
    (tmp_path / "late.jpg").write_bytes(buf.getvalue()[:2] + big + big + buf.getvalue()[2:])
    assert sio.file_orientation(tmp_path / "late.jpg") == 8
    assert sio.read_image(tmp_path / "late.jpg")[0].shape[:2] == (8, 6)
