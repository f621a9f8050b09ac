import json
import os

import cv2
import numpy as np
import pytest

import stntool
from stntool.io import decode_image

from cli_helpers import SAMPLES, SHIFT, encode, small_rgb, write


def read(path):
    with open(path, "rb") as f:
        return decode_image(f.read())


def test_identity_png_is_exact(tmp_path, run):
    img = small_rgb()
    src = write(tmp_path / "a.png", encode(img, ".png"))
    r = run("--theta", "1,0,0,0,1,0", str(src), "-o", str(tmp_path / "out"), "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert np.array_equal(read(tmp_path / "out" / "a.png"), img)


def test_matches_library_and_manifest(tmp_path, run):
    img = small_rgb()
    write(tmp_path / "in.png", encode(img, ".png"))
    r = run("--theta", SHIFT, "--mode", "nearest", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"),
            "--manifest", "-")
    assert r.exit_code == 0
    rec = json.loads(r.stdout)
    assert rec["status"] == "ok" and rec["error"] is None and rec["mode"] == "nearest"
    assert rec["theta"] == [[1, 0, 0.5], [0, 1, 0]] and rec["size"] == [16, 12]
    assert rec["version"] == stntool.__version__ and rec["align_corners"] is False
    expect = stntool.warp(img, [[1, 0, 0.5], [0, 1, 0]], mode="nearest")
    assert np.array_equal(read(tmp_path / "o.png"), expect)
    assert "1 ok, 0 skipped, 0 failed" in r.stderr


def test_matrix_equals_theta_from_cv2(tmp_path, run):
    img = small_rgb()
    write(tmp_path / "in.png", encode(img, ".png"))
    r = run("--matrix", "1,0,3.3,0,1,-2.2", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "-q")
    assert r.exit_code == 0
    theta = stntool.theta_from_cv2(np.array([[1, 0, 3.3], [0, 1, -2.2]]), (12, 16))
    assert np.array_equal(read(tmp_path / "o.png"), stntool.warp(img, theta.tolist()))


def test_matrix_with_align_corners_moves_pixels_as_opencv_says(tmp_path, run):
    img = small_rgb()
    write(tmp_path / "in.png", encode(img, ".png"))
    for extra in ((), ("--align-corners",)):
        m = tmp_path / f"m{len(extra)}.jsonl"
        r = run("--matrix", "1,0,3,0,1,-2", *extra, str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"),
                "--overwrite", "--manifest", str(m), "-q")
        assert r.exit_code == 0, r.stderr
        want = np.zeros_like(img)
        want[:-2, 3:] = img[2:, :-3]  # content 3 px right and 2 px up, zeros where nothing lands
        assert np.array_equal(read(tmp_path / "o.png"), want)
        assert json.loads(m.read_text())["align_corners"] == bool(extra)
        r = run("--params", str(m), "-o", str(tmp_path / f"replay{len(extra)}"), "-q")  # the replay too
        assert r.exit_code == 0 and np.array_equal(read(tmp_path / f"replay{len(extra)}" / "o.png"), want)


def test_tps_file(tmp_path, run):
    img = small_rgb()
    write(tmp_path / "in.png", encode(img, ".png"))
    pts = [[0, 0], [15, 0], [0, 11], [15, 11], [8, 6]]
    dst = [[0, 0], [15, 0], [0, 11], [15, 11], [9, 5]]
    (tmp_path / "p.json").write_text(json.dumps({"src": pts, "dst": dst}))
    r = run("--tps", str(tmp_path / "p.json"), str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "-q")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(read(tmp_path / "o.png"), stntool.warp_tps(img, pts, dst))


def test_params_replay_manifest_bit_for_bit(tmp_path, run):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        write(d / f"{i}.png", encode(small_rgb(seed=i), ".png"))
    man = tmp_path / "m.jsonl"
    r = run("--matrix", "0.9,0.1,1,-0.1,0.9,2", "--mode", "bicubic", "--size", "10x8", str(d),
            "-o", str(tmp_path / "a"), "--manifest", str(man), "-q")
    assert r.exit_code == 0
    r = run("--params", str(man), "-o", str(tmp_path / "b"), "-q")
    assert r.exit_code == 0, r.stderr
    for i in range(3):
        a = (tmp_path / "a" / f"{i}.png").read_bytes()
        assert a == (tmp_path / "b" / f"{i}.png").read_bytes()
        assert read(tmp_path / "a" / f"{i}.png").shape == (8, 10, 3)


def test_stdin_to_stdout(tmp_path, run):
    img = small_rgb()
    r = run("--theta", "1,0,0,0,1,0", "-", "-o", "-", "-q", input=encode(img, ".png"))
    assert r.exit_code == 0
    assert np.array_equal(decode_image(r.stdout_bytes), img)


def test_dir_mirror_recursive_format_suffix(tmp_path, run):
    (tmp_path / "in" / "x").mkdir(parents=True)
    (tmp_path / "in" / "y").mkdir()
    (tmp_path / "in" / "dir.png").mkdir()  # a folder named like an image
    for sub in ("x", "y"):
        write(tmp_path / "in" / sub / "same.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, "-r", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--format", "jpg",
            "--suffix", "_w", "--quality", "80", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["x", "y"]
    assert os.listdir(tmp_path / "out" / "x") == ["same_w.jpg"]
    # not recursive: nothing found, warning
    r = run("--theta", SHIFT, str(tmp_path / "in"), "-o", str(tmp_path / "o2"))
    assert "no images" in r.stderr


def test_files_from_null(tmp_path, run):
    names = ["a b.png", "ü.png", "-lead.png", "new\nline.png"]
    for n in names:
        write(tmp_path / n, encode(small_rgb(), ".png"))
    lst = b"\0".join(os.fsencode(str(tmp_path / n)) for n in names) + b"\0"
    r = run("--theta", SHIFT, "--files-from", "-", "--null", "-o", str(tmp_path / "out"), "-q", input=lst)
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(names)


def test_fidelity_depth_channels_and_alpha(tmp_path, run):
    r = run("--theta", SHIFT, "--padding", "border", SAMPLES, "-o", str(tmp_path / "out"), "-q")
    assert r.exit_code == 0, r.stderr
    g16 = read(tmp_path / "out" / "gray16.png")
    assert g16.dtype == np.uint16 and g16.ndim == 2
    icon = read(tmp_path / "out" / "icon_rgba.png")
    assert icon.shape == (128, 128, 4)


def test_alpha_premultiplied_no_dark_fringe(tmp_path, run):
    rgba = np.zeros((4, 8, 4), np.uint8)
    rgba[:, :4] = (0, 0, 255, 255)  # opaque red left half, transparent black right half
    write(tmp_path / "a.png", encode(rgba, ".png"))
    # x_in = x_out + 0.125 (normalized) = half a pixel: the boundary pixel mixes both halves
    r = run("--theta", "1,0,0.125,0,1,0", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.png")
    assert out[0, 3, 3] in (127, 128)
    assert tuple(out[0, 3, :3]) == (0, 0, 255)  # straight alpha: still pure red, not dark red


def test_alpha_fill_and_palette(tmp_path, run):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    write(tmp_path / "a.png", encode(rgba, ".png"))
    r = run("--theta", "1,0,1,0,1,0", "--padding", "constant", "--fill", "#ff000080", str(tmp_path / "a.png"),
            "-o", str(tmp_path / "o.png"), "-q")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.png")
    assert tuple(out[0, -1]) == (0, 0, 255, 128)
    # --fill alone means --padding constant; with another padding it is a usage error
    r = run("--theta", "1,0,1,0,1,0", "--fill", "#ff000080", str(tmp_path / "a.png"), "-o", str(tmp_path / "p.png"),
            "-q")
    assert r.exit_code == 0 and np.array_equal(read(tmp_path / "p.png"), out), r.stderr
    r = run("--theta", "1,0,1,0,1,0", "--fill", "#ff000080", "--padding", "border", str(tmp_path / "a.png"), "-o",
            str(tmp_path / "b.png"))
    assert r.exit_code == 2 and "--fill needs --padding constant" in r.stderr


def test_fill_beyond_the_images_range_fails_that_image_alone(tmp_path, run):
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a.png", encode(np.zeros((8, 8, 3), np.uint8), ".png"))
    write(tmp_path / "in" / "b.png", encode(np.zeros((8, 8), np.uint16), ".png"))
    r = run("--theta", "1,0,1,0,1,0", "--padding", "constant", "--fill", "990000", str(tmp_path / "in"),
            "-o", str(tmp_path / "out"), "-q")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 2 and "a.png: fill 990000 lies outside" in r.stderr and "'#990000'" in r.stderr
    r = run("--theta", "1,0,1,0,1,0", "--padding", "constant", "--fill", "60000", str(tmp_path / "in"),
            "-o", str(tmp_path / "out2"), "-q")
    assert r.exit_code == 1 and "a.png: fill 60000 lies outside the range of the image's samples (0-255)" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["b.png"]
    assert read(tmp_path / "out2" / "b.png")[0, -1] == 60000


def test_exif_orientation(tmp_path, run):
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :8] = 255
    jpg = encode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    # APP1 Exif with orientation 6 (rotate 90 cw)
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\0\0\0\0"
    app1 = b"Exif\x00\x00" + tiff
    jpg = jpg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpg[2:]
    write(tmp_path / "e.jpg", jpg)
    r = run("--theta", "1,0,0,0,1,0", str(tmp_path / "e.jpg"), "-o", str(tmp_path / "o.png"), "-q")
    assert read(tmp_path / "o.png").shape == (16, 8, 3)
    r = run("--theta", "1,0,0,0,1,0", "--ignore-orientation", str(tmp_path / "e.jpg"), "-o",
            str(tmp_path / "p.png"), "-q")
    assert r.exit_code == 0
    assert read(tmp_path / "p.png").shape == (8, 16, 3)


def test_manifest_folder_is_created_like_the_output_folder(tmp_path, run):
    """``--manifest out/run.jsonl -o out/``: the manifest may go into the folder the run creates; a path that
    cannot be a folder is still one clear usage error."""
    write(tmp_path / "in.png", encode(small_rgb(), ".png"))
    out = tmp_path / "out"
    r = run("--theta", SHIFT, str(tmp_path / "in.png"), "-o", str(out), "--manifest", str(out / "logs" / "run.jsonl"),
            "-q")
    assert r.exit_code == 0, r.stderr
    rec = json.loads((out / "logs" / "run.jsonl").read_text())
    assert rec["status"] == "ok" and (out / "in.png").exists()
    (tmp_path / "file").write_text("x")
    r = run("--theta", SHIFT, str(tmp_path / "in.png"), "-o", str(tmp_path / "o2"), "--manifest",
            str(tmp_path / "file" / "run.jsonl"), "-q")
    assert r.exit_code == 2 and "--manifest" in r.stderr and "Traceback" not in r.stderr
    assert "file is a file, not a folder" in r.stderr and "File exists" not in r.stderr  # it said "File exists"
    assert not (tmp_path / "o2").exists()


def test_a_source_given_twice_is_a_usage_error(tmp_path, run):
    img = tmp_path / "a.png"
    write(img, encode(small_rgb(), ".png"))
    for flag, value in (("--theta", SHIFT), ("--matrix", "1,0,2,0,1,0")):
        r = run(flag, value, flag, value, str(img), "-o", str(tmp_path / "o.png"))
        assert r.exit_code == 2 and "given 2 times" in r.output
    assert not (tmp_path / "o.png").exists()


def test_an_empty_files_from_list_is_an_empty_batch_like_an_empty_folder(tmp_path, run):
    (tmp_path / "none.txt").write_text("")
    (tmp_path / "empty").mkdir()
    r = run("--theta", SHIFT, "--files-from", str(tmp_path / "none.txt"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 0 and "warning: no inputs in --files-from" in r.output and "0 ok" in r.output
    r = run("--theta", SHIFT, str(tmp_path / "empty"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 0 and "warning: no images in folder" in r.output


@pytest.mark.parametrize("fill", ["", ",", " "])
def test_an_empty_fill_is_a_usage_error(tmp_path, run, fill):
    write(tmp_path / "a.png", encode(np.zeros((8, 8, 3), np.uint8), ".png"))
    r = run("--theta", "0.5,0,0,0,0.5,0", "--padding", "constant", "--fill", fill, str(tmp_path / "a.png"),
            "-o", str(tmp_path / "out"))
    assert r.exit_code == 2 and "Traceback" not in r.stderr and "give a colour" in r.stderr
    assert not (tmp_path / "out").exists()


def test_format_names_jpeg_tiff_and_bmp(tmp_path, run):
    # -o out.jpeg and -o d.bmp worked while --format jpeg, tiff and bmp were refused
    write(tmp_path / "a.png", encode(np.zeros((6, 8, 3), np.uint8), ".png"))
    for fmt, ext in (("jpeg", ".jpg"), ("tiff", ".tif"), ("bmp", ".bmp")):
        r = run("--theta", "1,0,0,0,1,0", str(tmp_path / "a.png"), "-o", str(tmp_path / fmt), "--format", fmt, "-q")
        assert r.exit_code == 0, r.stderr
        assert os.listdir(tmp_path / fmt) == ["a" + ext]
        assert read(tmp_path / fmt / ("a" + ext)).shape == (6, 8, 3)
    for fmt, name in (("jpeg", "o.jpeg"), ("jpg", "o.jpe"), ("tiff", "o.tiff"), ("tif", "o.TIFF")):
        r = run("--theta", "1,0,0,0,1,0", str(tmp_path / "a.png"), "-o", str(tmp_path / name), "--format", fmt, "-q")
        assert r.exit_code == 0 and read(tmp_path / name).shape == (6, 8, 3), (fmt, name, r.stderr)
    r = run("--theta", "1,0,0,0,1,0", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "--format", "jpeg")
    assert r.exit_code == 2 and "does not end in .jpg (--format jpeg)" in r.stderr
