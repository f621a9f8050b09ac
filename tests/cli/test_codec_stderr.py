"""Codec libraries write to fd 2 themselves (libpng, libjpeg, libtiff, libwebp): stderr must carry only
stntool's own lines, one per bad input, whatever the decoder and however many threads decode."""

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from cli_helpers import SHIFT, encode, write


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def short_idat_png(seed=0):
    """Valid chunks and CRCs, IEND present, but the IDAT stream holds only half the rows."""
    img = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    raw = b"".join(b"\0" + img[i].tobytes() for i in range(32))
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def rgb(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def cut(data):
    return data[: len(data) // 2]


BAD = {
    "short_idat.png": lambda: short_idat_png(),
    "cut_scan.jpg": lambda: cut(encode(rgb(), ".jpg")) + b"\xff\xd9",  # EOI present, scan data cut
    "cut.tif": lambda: cut(encode(rgb(), ".tif")),
    "cut.webp": lambda: cut(encode(rgb(), ".webp")),
}


def own_lines(stderr):
    """stderr lines without the first-compile notice (a cold kernel cache prints it once per kernel)."""
    return [line for line in stderr.splitlines() if not line.startswith("stntool: compiling kernels")]


def stntool(*args):
    return subprocess.run(["stntool", "warp", "--theta", SHIFT, *args], capture_output=True, text=True)


@pytest.mark.parametrize("name", sorted(BAD))
def test_only_stntool_lines_on_stderr(tmp_path, name):
    src = write(tmp_path / name, BAD[name]())
    p = stntool(str(src), "-o", str(tmp_path / "o"))
    lines = own_lines(p.stderr)
    assert len(lines) == 2 and lines[1].startswith("stntool warp: "), p.stderr
    if name.endswith(".jpg"):  # libjpeg fills the missing data and warns: a stntool warning, status ok
        assert p.returncode == 0 and lines[0].startswith(f"stntool: warning: {src}: decoder said: Corrupt JPEG data")
        assert "damaged" not in p.stderr
    else:
        assert p.returncode == 1 and lines[0].startswith(f"stntool: error: {src}: cannot decode"), p.stderr
    assert "libpng error" not in p.stderr.replace("; libpng error", "")  # only inside stntool's own line


def test_png_decoder_message_joins_stntool_line(tmp_path):
    src = write(tmp_path / "a.png", short_idat_png())
    p = stntool(str(src), "-o", str(tmp_path / "o"), "-q")
    assert p.stderr == (f"stntool: error: {src}: cannot decode PNG data "
                        "(corrupt or unsupported; libpng error: Not enough image data)\n")


def test_many_threads_no_line_lost_no_noise(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(12):
        write(d / f"bad{i:02d}.png", short_idat_png(i))
        write(d / f"ok{i:02d}.png", encode(rgb(i)[:16, :16], ".png"))
        write(d / f"warn{i:02d}.jpg", cut(encode(rgb(i), ".jpg")) + b"\xff\xd9")
    p = stntool(str(d), "-o", str(tmp_path / "o"), "-j", "4")
    lines = own_lines(p.stderr)
    assert p.returncode == 1
    assert sorted(line.split(": ")[2].split("/")[-1] for line in lines[:-1]) == sorted(
        [f"bad{i:02d}.png" for i in range(12)] + [f"warn{i:02d}.jpg" for i in range(12)]), p.stderr
    assert all(line.startswith("stntool: ") for line in lines[:-1]), p.stderr
    assert lines[-1].startswith("stntool warp: 24 ok, 0 skipped, 12 failed")


def test_capture_holds_stntool_lines_back_instead_of_swallowing_them():
    """A line written while another thread captures fd 2 waits, then reaches the real stderr."""
    code = r"""
import os, threading, time
from stntool import batch
from stntool.io import STDERR_LOCK
started = threading.Event()
def decoder():
    with STDERR_LOCK.capture() as said:
        started.set()
        os.write(2, b"libfoo: noise\n")
        time.sleep(0.3)
    print("captured", said)
t = threading.Thread(target=decoder)
t.start()
started.wait()
batch.say("stntool: error: x.png: mine")
t.join()
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stderr == "stntool: error: x.png: mine\n"
    assert p.stdout.strip() == "captured ['libfoo: noise']"
