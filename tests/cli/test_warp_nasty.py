"""Bad inputs: each gives one stderr line, an error manifest line, no output, and the batch goes on."""

import json
import os
import socket
import struct
import zlib

import cv2
import numpy as np
import pytest

from cli_helpers import SHIFT, encode, small_rgb, write


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    # a few KB of zlib that would inflate to gigapixels
    comp = zlib.compressobj(9)
    body = comp.compress(b"\0" * (1 << 20)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = encode(small_rgb(), ".png")
    jpg = encode(small_rgb(64, 64), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90])
    bad = {
        "zero.png": b"",
        "half.jpg": jpg[: len(jpg) // 2],
        "trunc.png": good[: len(good) - 20],
        "corrupt.png": good[:40] + b"\xff" * 30 + good[70:],
        "text.jpg": b"hello, I am not an image\n" * 10,
        "bomb.png": huge_png(100000, 100000),
    }
    for name, data in bad.items():
        write(d / name, data)
    oks = {
        "ok.png": good,
        "one.png": encode(np.full((1, 1, 3), 7, np.uint8), ".png"),
        "row.png": encode(np.arange(9, dtype=np.uint8).reshape(1, 9), ".png"),
        "g16.png": encode(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000, ".png"),
        "full.jpg": jpg,
    }
    for name, data in oks.items():
        write(d / name, data)
    os.symlink("ok.png", d / "link.png")
    os.symlink("missing.png", d / "dangling.png")
    os.symlink("loop.png", d / "loop.png")
    os.mkfifo(d / "fifo.png")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(d / "sock.png"))
    except OSError:
        pass
    (d / "folder.png").mkdir()
    os.mkdir(d / "dup")
    write(d / "dup" / "ok.png", good)
    yield d, set(bad) | {"dangling.png", "loop.png", "fifo.png", "sock.png"} & set(os.listdir(d)), set(oks) | {
        "link.png"}
    s.close()


def test_corpus(tmp_path, corpus, run):
    d, bad, ok = corpus
    out = tmp_path / "out"
    r = run("--theta", SHIFT, str(d), "-o", str(out), "--manifest", "-", "--quiet")
    assert r.exit_code == 1
    recs = {os.path.basename(json.loads(line)["input"]): json.loads(line) for line in r.stdout.splitlines()}
    assert {k for k, v in recs.items() if v["status"] == "ok"} == ok, (r.stdout, r.stderr)
    assert {k for k, v in recs.items() if v["status"] == "error"} == bad
    err_lines = r.stderr.strip().splitlines()
    assert len(err_lines) == len(bad)
    assert all("Traceback" not in line for line in err_lines)
    for name in bad:
        assert any(name in line for line in err_lines)
        assert recs[name]["error"]
    assert "truncated JPEG" in recs["half.jpg"]["error"]
    assert "too large" in recs["bomb.png"]["error"]
    assert sorted(os.listdir(out)) == sorted(ok)  # nothing for the bad ones, no temp files
    assert cv2.imdecode(np.fromfile(out / "g16.png", np.uint8), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_non_utf8_name(tmp_path, run):
    name = b"caf\xe9.png"
    d = os.fsencode(str(tmp_path))
    with open(os.path.join(d, name), "wb") as f:
        f.write(encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, str(tmp_path), "-o", str(tmp_path / "out"), "-q")
    assert r.exit_code == 0, r.stderr
    assert os.listdir(os.fsencode(str(tmp_path / "out"))) == [name]


def test_existing_outputs_and_inputs(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    write(tmp_path / "b.png", encode(small_rgb(), ".png"))
    # output folder == input folder without a suffix: a usage error (every input failed with it, exit 1)
    r = run("--theta", SHIFT, str(tmp_path), "-o", str(tmp_path), "-q")
    assert r.exit_code == 2 and "every input would write onto an input file (use another -o or --suffix)" in r.stderr
    r = run("--theta", SHIFT, str(tmp_path), "-o", str(tmp_path), "--suffix", "_w", "-q")
    assert r.exit_code == 0
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "a_w.png"))
    assert r.exit_code == 1 and f"output {tmp_path / 'a_w.png'} exists" in r.stderr  # the file, not only the input
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "a_w.png"), "--skip-existing")
    assert r.exit_code == 0 and "1 skipped" in r.stderr
    # duplicate base names given as files -> collision is an error for the second
    (tmp_path / "x").mkdir()
    write(tmp_path / "x" / "a.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), str(tmp_path / "x" / "a.png"), "-o", str(tmp_path / "o"),
            "-q")
    assert r.exit_code == 1 and "would also be written" in r.stderr


def test_skip_existing_does_not_count_a_folder_or_a_broken_link_as_an_output(tmp_path, run):
    # both were reported skipped (exit 0, a "skipped" manifest line) though no image was ever there
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    (tmp_path / "dd" / "a.png").mkdir(parents=True)
    (tmp_path / "dl").mkdir()
    os.symlink(tmp_path / "nowhere.png", tmp_path / "dl" / "a.png")
    for out in ("dd", "dl"):
        m = tmp_path / f"{out}.jsonl"
        r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / out), "--skip-existing",
                "--manifest", str(m))
        assert r.exit_code == 1 and "0 skipped, 1 failed" in r.stderr, r.stderr
        assert f"output {tmp_path / out / 'a.png'} exists and is not a regular file" in r.stderr
        assert json.loads(m.read_text())["status"] == "error"
    assert (tmp_path / "dd" / "a.png").is_dir()
    assert os.readlink(tmp_path / "dl" / "a.png") == str(tmp_path / "nowhere.png")
    os.symlink(tmp_path / "a.png", tmp_path / "dl" / "b.png")  # a link to an image is an output that exists
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "dl" / "b.png"), "--skip-existing")
    assert r.exit_code == 0 and "1 skipped" in r.stderr


def test_unwritable_output(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("root ignores permissions; test_warp_terminal.py covers targets that fail for root too")
        r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(ro / "o.png"))
        assert r.exit_code == 1 and "a.png" in r.stderr and "Traceback" not in r.stderr
    finally:
        os.chmod(ro, 0o700)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_device_stdout(tmp_path):
    import subprocess

    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    with open("/dev/full", "wb") as full:
        p = subprocess.run(["stntool", "warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o", "-", "-q"],
                           stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 1 and b"Traceback" not in p.stderr


@pytest.mark.parametrize("theta,msg", [
    ("1,0,0,0,1", "expected 6 or 9 numbers, got 5"),
    ("1,0,0,0,1,nan", "NaN"),
    ("1,0,0,0,1,inf", "infinite"),
    ("1,0,0,0,1,1e999", "infinite or overflows"),
    ("1,0,0,0,1,x", "not a number"),
])
def test_bad_theta_exit_2(tmp_path, run, theta, msg):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    r = run("--theta", theta, str(tmp_path / "a.png"), "-o", str(tmp_path / "out"))
    assert r.exit_code == 2 and msg in r.stderr and r.stdout == ""
    assert not (tmp_path / "out").exists()


def test_usage_errors(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    a, x = str(tmp_path / "a.png"), str(tmp_path / "x.png")
    assert run(a, "-o", x).exit_code == 2
    assert run("--theta", "1,0,0,0,1,0", "--matrix", "1,0,0,0,1,0", a, "-o", x).exit_code == 2
    assert run("--theta", "1,0,0,0,1,0", "--fill", "3", "--padding", "border", a, "-o", x).exit_code == 2
    assert not os.path.exists(x)
    r = run("--theta", "1,0,0,0,1,0", "--device", "cuda", a, "-o", str(tmp_path / "c.png"))
    if r.exit_code != 0:  # no GPU: a one-line usage error, never a silent CPU run
        assert r.exit_code == 2 and "cuda" in r.stderr and not (tmp_path / "c.png").exists()


def test_suffix_with_a_path_separator_and_image_name_for_many_inputs_are_usage_errors(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    write(tmp_path / "b.png", encode(small_rgb(seed=1), ".png"))
    r = run("--theta", SHIFT, "a.png", "-o", "out", "--suffix", "/../../x")
    assert r.exit_code == 2 and "--suffix" in r.stderr and "path separator" in r.stderr, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"] and not os.path.exists("/x.png")
    r = run("--theta", SHIFT, "a.png", "b.png", "-o", "two.png")
    assert r.exit_code == 2 and "several inputs" in r.stderr and not (tmp_path / "two.png").exists()


def _denied(monkeypatch, names, what):
    """``os.<what>`` raises PermissionError for paths ending in one of ``names`` (as for a non-root user after
    chmod 000; the tests may run as root, whom permissions do not stop)."""
    real = getattr(os, what)

    def fake(path, *args, **kwargs):
        if any(os.fspath(path).rstrip(os.sep).endswith(n) for n in names):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, what, fake)


def test_a_folder_that_cannot_be_listed_fails_at_its_place_and_the_batch_goes_on(tmp_path, run, monkeypatch):
    # with -r, a sub-folder os.scandir refused was left out without a word: exit 0, its images never warped
    d = tmp_path / "in"
    for rel in ("a.png", "sub/b.png", "zz/c.png", "sub.png"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        write(d / rel, encode(small_rgb(), ".png"))
    _denied(monkeypatch, [os.sep + "sub"], "scandir")
    r = run("--theta", SHIFT, "-r", str(d), "-o", str(tmp_path / "o"), "--manifest", "-")
    assert r.exit_code == 1
    errors = [x for x in r.stderr.splitlines() if x.startswith("stntool: error")]
    assert errors == [f"stntool: error: {d / 'sub'}: cannot read this folder: Permission denied"], r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["input"], x["output"], x["status"]) for x in recs] == [
        (str(d / "a.png"), str(tmp_path / "o" / "a.png"), "ok"), (str(d / "sub"), None, "error"),
        (str(d / "sub.png"), str(tmp_path / "o" / "sub.png"), "ok"),  # the folder plans no output of its own
        (str(d / "zz" / "c.png"), str(tmp_path / "o" / "zz" / "c.png"), "ok")]
    assert "3 ok, 0 skipped, 1 failed" in r.stderr
    # the folder given itself: one failed input, no "no images" warning
    r = run("--theta", SHIFT, str(d / "sub"), "-o", str(tmp_path / "o2"))
    assert r.exit_code == 1 and "cannot read this folder" in r.stderr and "no images" not in r.stderr, r.stderr


def test_an_unreadable_file_named_on_the_command_line_fails_alone(tmp_path, run, monkeypatch):
    # Click refused the whole command (exit 2, nothing written) when os.access said a named input was unreadable
    for name in ("a.png", "b.png"):
        write(tmp_path / name, encode(small_rgb(), ".png"))
    _denied(monkeypatch, ["b.png"], "access")
    _denied(monkeypatch, ["b.png"], "open")
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert f"stntool: error: {tmp_path / 'b.png'}: Permission denied" in r.stderr.splitlines(), r.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["a.png"]
