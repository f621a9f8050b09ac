"""stntool train: a short run from the command line, and one clear line for each kind of bad input."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from stntool.cli import cli

from cli_helpers import encode, write

pytest.importorskip("PIL")


@pytest.fixture
def train():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["train", *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def upright(tmp_path):
    from stntool.pages import render_page

    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(4):
        write(folder / f"p{i}.png", encode(render_page((1, i), size=(200, 160)), ".png"))
    return folder


def test_a_short_run_writes_model_curve_and_checkpoint(tmp_path, train, upright):
    out = tmp_path / "m.npz"
    r = train(str(upright), "--out", str(out), "--steps", "4", "--batch", "4", "--checkpoint-every", "2",
              "--family", "rotation", "--rotate", "-10:10", "--val-split", "0.25")
    assert r.exit_code == 0, r.stderr
    assert out.exists() and (tmp_path / "m.png").exists() and (tmp_path / "m.checkpoint.npz").exists()
    assert "stntool train: 4 steps on 3 images (1 held out)" in r.stderr
    from stntool.locnet import LocNet

    meta = LocNet.load(out).metadata
    assert meta["family"] == "rotation" and meta["ranges"]["rotate"] == [-10.0, 10.0]
    assert meta["command"].startswith("stntool train") and "4 images" in meta["data"]
    r = train(str(upright), "--out", str(tmp_path / "m2.npz"), "--steps", "6", "--batch", "4", "--family",
              "rotation", "--rotate", "-10:10", "--val-split", "0.25", "--resume", str(tmp_path / "m.checkpoint.npz"),
              "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""


def test_synthetic_pages_alone(tmp_path, train):
    r = train("--synthetic-pages", "3", "--out", str(tmp_path / "s.npz"), "--steps", "2", "--batch", "2", "-q")
    assert r.exit_code == 0, r.stderr
    from stntool.locnet import LocNet

    assert "3 synthetic pages" in LocNet.load(tmp_path / "s.npz").metadata["data"]


def test_unreadable_and_small_images_are_reported_and_skipped(tmp_path, train, upright):
    write(upright / "bad.png", b"\x89PNG\r\n\x1a\nnot really")
    write(upright / "tiny.png", encode(np.zeros((20, 30), np.uint8), ".png"))
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--batch", "2")
    assert r.exit_code == 1
    errors = sorted(x for x in r.stderr.splitlines() if x.startswith("stntool: error"))
    assert len(errors) == 2 and "bad.png" in errors[0] and "tiny.png" in errors[1] and "too small" in errors[1]
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("case", ["empty", "only_bad", "nothing", "bad_out"])
def test_no_usable_images_is_a_usage_error(tmp_path, train, case):
    folder = tmp_path / "in"
    folder.mkdir()
    if case == "only_bad":
        write(folder / "x.png", b"junk")
    args = {"empty": [str(folder)], "only_bad": [str(folder)], "nothing": [], "bad_out": [str(folder)]}[case]
    out = str(tmp_path / ("m.txt" if case == "bad_out" else "m.npz"))
    r = train(*args, "--out", out, "--steps", "2")
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("Error:")
    assert not os.path.exists(out)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"not a zip at all"])
def test_corrupt_or_foreign_resume_files(tmp_path, train, upright, content):
    bad = tmp_path / "bad.npz"
    if content == b"":
        np.savez(bad, weights=np.zeros(3))  # a foreign npz
    else:
        bad.write_bytes(content)
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--resume", str(bad))
    assert r.exit_code == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "--resume" in last and "bad.npz" in last and "Traceback" not in r.stderr
    assert not (tmp_path / "m.npz").exists()


def test_model_metadata_is_json(tmp_path, train, upright):
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--batch", "2", "-q")
    assert r.exit_code == 0
    header = json.loads(str(np.load(tmp_path / "m.npz")["header"]))
    assert header["metadata"]["input"]["channels"] == ["page", "log spectrum", "crop"]
    assert header["arch"]["orientation_bins"] == 180 and header["arch"]["orientation_channel"] == 1
    assert header["arch"]["upright_bins"] == 24 and "upright_head" in header["metadata"]
    r = train(str(upright), "--out", str(tmp_path / "plain.npz"), "--steps", "2", "--batch", "2", "-q",
              "--no-orientation-branch", "--no-upright-head")
    assert r.exit_code == 0
    header = json.loads(str(np.load(tmp_path / "plain.npz")["header"]))
    assert header["arch"]["orientation_bins"] == 0 and header["arch"]["upright_bins"] == 0
    assert "upright_head" not in header["metadata"]
    assert not any(k.startswith(("param.orient", "param.upright")) for k in np.load(tmp_path / "plain.npz").files)


def test_a_bad_resume_file_is_refused_before_any_image_is_read(tmp_path, train, upright):
    write(upright / "broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--resume", str(tmp_path / "nosuch.npz"))
    assert r.exit_code == 2 and "does not exist" in r.output
    assert "broken.png" not in r.output  # the images were not read first
