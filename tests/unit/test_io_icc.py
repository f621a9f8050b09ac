"""ICC colour profiles: read from every format that holds one, carried to JPEG, PNG and WebP outputs.

Pillow (the test extra) is the independent reader and writer of the profiles."""

import io
import struct
import zlib

import numpy as np
import pytest

from stntool import io as sio

Image = pytest.importorskip("PIL.Image")


def _profile(space=b"RGB ", size=3000, seed=0):
    """Profile-shaped bytes: what is carried is copied, never parsed, past the colour space at bytes 16-20."""
    p = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    p[16:20] = space
    return bytes(p)


def _pillow_profile(blob):
    im = Image.open(io.BytesIO(blob))
    im.load()
    return im.info.get("icc_profile")


@pytest.mark.parametrize("fmt,quality", [("jpg", None), ("jpg", 80), ("png", None), ("png", 80), ("webp", None),
                                         ("webp", 80)])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_profiles_are_embedded_where_they_describe_the_pixels_and_the_pixels_stay(fmt, quality, channels):
    rng = np.random.default_rng(channels)
    img = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
    img = img[..., 0] if channels == 1 else img
    if fmt == "jpg" and channels in (2, 4):
        return  # jpg holds no alpha (refused either way)
    plain = sio.encode_image(img, fmt, quality)
    grey, rgb = _profile(b"GRAY"), _profile(b"RGB ", size=150_000)  # 150 KB: three JPEG segments
    for profile in (grey, rgb):
        blob = sio.encode_image(img, fmt, quality, icc=profile)
        fits = (profile is grey) == (channels <= 2) and not (fmt == "webp" and channels <= 2)  # WebP: RGB only
        assert _pillow_profile(blob) == (profile if fits else None)
        assert sio.icc_profile(blob) == (profile if fits else None)
        assert np.array_equal(sio.decode_image(blob), sio.decode_image(plain))
        assert blob == plain or fits


def test_profiles_written_by_pillow_are_read_from_every_format():
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    profile = _profile(size=70_000)
    for fmt, opts in (("JPEG", {"quality": 90}), ("PNG", {}), ("WEBP", {"lossless": True}), ("WEBP", {}),
                      ("TIFF", {}), ("TIFF", {"compression": "tiff_deflate"})):
        buf = io.BytesIO()
        img.save(buf, fmt, icc_profile=profile, **opts)
        assert sio.icc_profile(buf.getvalue()) == profile, fmt
        buf = io.BytesIO()
        img.save(buf, fmt, **opts)
        assert sio.icc_profile(buf.getvalue()) is None, fmt


def test_a_profile_that_cannot_be_read_is_none_never_an_error():
    profile = _profile()
    good = {f: sio.encode_image(np.zeros((8, 8, 3), np.uint8), f, icc=profile) for f in ("jpg", "png", "webp")}
    for f, blob in good.items():
        for cut in range(0, min(len(blob), 3200), 97):
            got = sio.icc_profile(blob[:cut])
            assert got is None or profile.startswith(got)  # cut in its profile: what is there, never more
    png = good["png"]
    at = png.index(b"iCCP") - 4
    n = struct.unpack(">I", png[at:at + 4])[0]
    bad = png[:at + 8] + b"x\x00\x00" + b"not zlib" + png[at + 8 + 11:]  # a corrupt iCCP stream
    assert sio.icc_profile(bad) is None
    bomb = zlib.compress(b"\x00" * (sio.MAX_ICC_BYTES + 1000))  # inflates beyond the limit: refused, not inflated
    chunk = sio._png_chunk(b"iCCP", b"p\x00\x00" + bomb)
    assert sio.icc_profile(png[:33] + chunk + png[at + 12 + n:]) is None
    assert sio.icc_profile(b"") is None and sio.icc_profile(b"II*\x00\x08\x00\x00\x00\x01\x00\x73\x87") is None


def test_png_outputs_carry_profiles_up_to_what_readers_take():
    # a 9 MB profile made a PNG that OpenCV (libpng's chunk limit) and Pillow (over 1 MB) would not read back
    img = np.zeros((10, 12, 3), np.uint8)
    for size, in_png in ((sio.MAX_PNG_ICC_BYTES, True), (sio.MAX_PNG_ICC_BYTES + 1, False), (9_000_000, False)):
        profile = _profile(size=size)
        png = sio.encode_image(img, "png", icc=profile)
        assert sio.icc_profile(png) == (profile if in_png else None)
        assert _pillow_profile(png) == (profile if in_png else None)
        assert sio.decode_image(png).shape == (10, 12, 3)
        assert sio.icc_profile(sio.encode_image(img, "jpg", icc=profile)) == profile  # JPEG and WebP hold it
        assert sio.icc_profile(sio.encode_image(img, "webp", icc=profile)) == profile
