"""Atomic writes (`stntool.io.write_atomic`): an unnamed file linked in when complete, or a named temporary
file renamed; either way the target appears whole or not at all, is never clobbered without `overwrite`,
and no other file is left in the folder."""

import errno
import os
import stat
import sys

import pytest

from stntool import io as sio
from stntool.errors import ImageWriteError

unnamed_here = pytest.mark.skipif(not sio._UNNAMED[0], reason="no O_TMPFILE on this platform")


@pytest.fixture
def fresh_flag(monkeypatch):
    monkeypatch.setattr(sio, "_UNNAMED", [sio._UNNAMED[0]])


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


@unnamed_here
def test_new_files_are_written_through_an_unnamed_file(tmp_path, monkeypatch, fresh_flag):
    def no_named_temp(*a, **k):
        raise AssertionError("a named temporary file was made")

    monkeypatch.setattr(sio.tempfile, "mkstemp", no_named_temp)
    target = tmp_path / "sub" / "a.bin"
    sio.write_atomic(str(target), b"payload")
    assert target.read_bytes() == b"payload"
    assert _mode(target) == 0o666 & ~_umask()
    assert os.listdir(tmp_path / "sub") == ["a.bin"]
    with pytest.raises(ImageWriteError, match="output exists"):
        sio.write_atomic(str(target), b"other")
    assert target.read_bytes() == b"payload"
    assert sio._UNNAMED[0]


def test_named_temporary_file_when_unnamed_files_are_not_available(tmp_path, monkeypatch, fresh_flag):
    monkeypatch.setattr(sio, "_UNNAMED", [False])
    target = tmp_path / "b.bin"
    sio.write_atomic(str(target), b"one")
    assert target.read_bytes() == b"one" and _mode(target) == 0o666 & ~_umask()
    with pytest.raises(ImageWriteError, match="output exists"):
        sio.write_atomic(str(target), b"two")
    sio.write_atomic(str(target), b"three", overwrite=True)
    assert target.read_bytes() == b"three"
    assert os.listdir(tmp_path) == ["b.bin"]


@unnamed_here
def test_a_refused_link_falls_back_to_a_named_file_from_then_on(tmp_path, monkeypatch, fresh_flag):
    real_link = os.link
    calls = []

    def link(src, dst, *a, **k):
        calls.append(src)
        if str(src).startswith("/proc/"):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(sio.os, "link", link)
    sio.write_atomic(str(tmp_path / "c.bin"), b"c")
    sio.write_atomic(str(tmp_path / "d.bin"), b"d")
    assert (tmp_path / "c.bin").read_bytes() == b"c" and (tmp_path / "d.bin").read_bytes() == b"d"
    assert sorted(os.listdir(tmp_path)) == ["c.bin", "d.bin"]
    assert sum(str(s).startswith("/proc/") for s in calls) == 1  # tried once, then named files
    assert not sio._UNNAMED[0]


@unnamed_here
def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch, fresh_flag):
    from stn_testing import disk_full_fdopen, disk_full_write

    monkeypatch.setattr(sio.os, "fdopen", disk_full_fdopen(os.fdopen))  # named temporary files
    monkeypatch.setattr(sio.os, "write", disk_full_write(os.write, tmp_path))  # unnamed ones
    with pytest.raises(ImageWriteError, match="No space left"):
        sio.write_atomic(str(tmp_path / "e.bin"), b"abcdef")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux file-descriptor checks")
def test_no_descriptor_is_left_open(tmp_path, fresh_flag):
    before = len(os.listdir("/proc/self/fd"))
    for k in range(20):
        sio.write_atomic(str(tmp_path / f"f{k}.bin"), b"x")
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # the one shared root descriptor


def test_a_format_this_opencv_cannot_encode_is_refused_clearly_and_same_falls_back_to_png(tmp_path, monkeypatch):
    """``.exr`` is in the list of writable extensions, but OpenCV builds without OpenEXR have no encoder for it:
    writing one gave OpenCV's own error ("could not find encoder ..."), and ``--format same`` planned ``.exr``."""
    import numpy as np

    from stntool import batch
    from stntool import io as sio
    from stntool.errors import InvalidArgumentError

    monkeypatch.setitem(sio._CAN_WRITE, ".exr", False)
    with pytest.raises(InvalidArgumentError, match="cannot write '.exr' files \\(this OpenCV build has no encoder"):
        sio.encode_image(np.zeros((2, 3, 3), np.float32), ".exr")
    (tmp_path / "a.exr").write_bytes(b"")
    (tmp_path / "b.tif").write_bytes(b"")
    items, _ = batch.discover([str(tmp_path / "a.exr"), str(tmp_path / "b.tif")])
    batch.plan_outputs(items, str(tmp_path / "out") + "/")
    assert [os.path.basename(it.output) for it in items] == ["a.png", "b.tif"]
    assert batch._writable_or_png("exr") == "png" and batch._writable_or_png("tif") == "tif"
    monkeypatch.setitem(sio._CAN_WRITE, ".exr", True)
    assert sio.can_write(".EXR") and not sio.can_write(".gif")


def test_overwrite_replaces_files_but_not_a_pipe_or_a_device(tmp_path):
    fifo = tmp_path / "p.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageWriteError, match="not a regular file"):
        sio.write_atomic(str(fifo), b"data", overwrite=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["p.png"]
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageWriteError, match="not a regular file"):
        sio.write_atomic(str(tmp_path / "d.png"), b"data", overwrite=True)
    (tmp_path / "f.png").write_bytes(b"old")
    sio.write_atomic(str(tmp_path / "f.png"), b"new", overwrite=True)
    assert (tmp_path / "f.png").read_bytes() == b"new"


def test_overwrite_keeps_the_replaced_files_permissions(tmp_path):
    old = tmp_path / "f.png"
    old.write_bytes(b"old")
    os.chmod(old, 0o444)
    sio.write_atomic(str(old), b"new", overwrite=True)
    assert old.read_bytes() == b"new" and stat.S_IMODE(os.stat(old).st_mode) == 0o444
    sio.write_atomic(str(tmp_path / "g.png"), b"new")
    assert stat.S_IMODE(os.stat(tmp_path / "g.png").st_mode) == 0o666 & ~sio._umask()


def test_overwrite_gives_another_users_file_the_usual_permissions(tmp_path, monkeypatch):
    """The new file is ours: another user's 0600 would lock that user out of it."""
    old = tmp_path / "f.png"
    old.write_bytes(b"old")
    os.chmod(old, 0o600)
    monkeypatch.setattr(sio, "_uid", lambda: os.stat(old).st_uid + 1)  # as if the file were someone else's
    sio.write_atomic(str(old), b"new", overwrite=True)
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o666 & ~sio._umask()


def test_a_folder_that_cannot_be_made_is_the_one_named(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    real = os.mkdir

    def read_only_ro(name, *args, **kwargs):  # as in a folder ro without write permission (root ignores it)
        if os.path.basename(os.path.dirname(os.fspath(name))) == "ro":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only_ro)
    with pytest.raises(ImageWriteError, match=r"cannot create folder \S*/ro/out: Permission denied"):
        sio.write_atomic(str(tmp_path / "ro" / "out" / "a" / "x.png"), b"data")


def test_sample_types_are_said_in_bits():
    import numpy as np

    assert [sio.sample_words(t) for t in (np.uint8, np.uint16, np.float32, np.float64, np.int32, np.uint32, bool,
                                          np.complex64)] == [
        "8-bit", "16-bit", "32-bit float", "64-bit float", "32-bit signed integer", "32-bit unsigned integer",
        "true/false", "complex"]
    with pytest.raises(ImageWriteError, match="jpg cannot store 16-bit samples without loss"):  # "uint16 samples"
        sio.encode_image(np.zeros((4, 4), np.uint16), "jpg")
    with pytest.raises(ImageWriteError, match="png cannot store 32-bit float samples"):
        sio.encode_image(np.zeros((4, 4), np.float32), "png")
    # PGM takes grey, PPM colour, PNM either: the reason, not "cannot encode pgm"
    for ext, channels, ok in ((".pgm", "one grey channel", (1,)), (".ppm", "three colour channels", (3,)),
                              (".pnm", "one grey or three colour channels", (1, 3))):
        for c in (1, 2, 3, 4):
            img = np.zeros((4, 5, c), np.uint8)
            if c in ok:
                assert sio.encode_image(img, ext)[:2] == (b"P5" if c == 1 else b"P6")
            else:
                with pytest.raises(ImageWriteError, match=f"{ext[1:]} stores {channels}, not {c} channel"):
                    sio.encode_image(img, ext)
    assert sio.display("") == "''"
    tif = sio.encode_image(np.zeros((4, 4), np.float32), "tif")
    import cv2

    ok, int32 = cv2.imencode(".tif", np.zeros((4, 4), np.int32))
    if ok:
        with pytest.raises(sio.ImageReadError, match=r"32-bit signed integer samples are not supported"):
            sio.decode_image(int32.tobytes())
    assert sio.decode_image(tif).dtype == np.float32


@unnamed_here
def test_a_folder_removed_before_its_file_is_linked_fails_that_file_only(tmp_path, monkeypatch, fresh_flag):
    # ENOENT at the link was taken for "no /proc": every later file of the process took a named temporary
    # file, which a killed process leaves behind
    real_link = os.link

    def link_after_the_folder_went(src, dst, *a, **k):
        if os.path.basename(os.path.dirname(dst)) == "gone":
            os.rmdir(os.path.dirname(dst))
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(sio.os, "link", link_after_the_folder_went)
    (tmp_path / "gone").mkdir()
    with pytest.raises(ImageWriteError, match="No such file or directory"):
        sio.write_atomic(str(tmp_path / "gone" / "a.bin"), b"a")
    assert sio._UNNAMED[0]  # the next file is still written through an unnamed file
    sio.write_atomic(str(tmp_path / "b.bin"), b"b")
    assert sorted(os.listdir(tmp_path)) == ["b.bin"]


def test_a_failed_overwrite_leaves_no_image_without_the_side_files_it_replaced(tmp_path, monkeypatch):
    # --overwrite on a full disk: the new labels replaced the old, the image failed, the new labels were removed,
    # and the old image stayed without labels (a YOLO image turned background without a word)
    from stntool import batch

    (tmp_path / "a_000.png").write_bytes(b"old image")
    (tmp_path / "a_000.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n")
    real = sio.write_atomic

    def disk_full_for_images(path, data, overwrite=False):
        if path.endswith(".png"):
            raise ImageWriteError("cannot write: No space left on device")
        return real(path, data, overwrite=overwrite)

    monkeypatch.setattr(sio, "write_atomic", disk_full_for_images)
    with pytest.raises(ImageWriteError, match="No space left"):
        batch._write_with_files(str(tmp_path / "a_000.png"), b"new image",
                                {str(tmp_path / "a_000.txt"): b"1 0.5 0.5 0.1 0.1\n"}, True, set(), os.path.realpath)
    assert os.listdir(tmp_path) == []  # the input's output is gone whole, not half
    # without an earlier output's side files replaced, an existing image is not touched
    (tmp_path / "b_000.png").write_bytes(b"old image")
    with pytest.raises(ImageWriteError):
        batch._write_with_files(str(tmp_path / "b_000.png"), b"new", {str(tmp_path / "b_000.txt"): b"x"}, True, set(),
                                os.path.realpath)
    assert os.listdir(tmp_path) == ["b_000.png"]
