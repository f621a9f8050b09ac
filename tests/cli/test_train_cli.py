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


TINY = ("--steps", "2", "--batch", "2", "-q")


@pytest.mark.parametrize("case", ["perspective", "out_under_a_file", "curve_is_a_folder", "curve_exists",
                                  "model_exists", "stdin"])
def test_what_would_fail_or_replace_a_file_at_the_end_is_a_usage_error_at_the_start(tmp_path, train, upright, case):
    out, args = tmp_path / "m.npz", []
    if case == "perspective":  # a rotation, similarity or affine net cannot undo it: a traceback at the first step
        args = ["--family", "affine", "--perspective", "0.1"]
    elif case == "out_under_a_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "m.npz"
    elif case == "curve_is_a_folder":
        (tmp_path / "m.png").mkdir()
    elif case == "curve_exists":  # a picture of the user's beside --out: replaced silently before
        (tmp_path / "m.png").write_bytes(b"mine")
    elif case == "model_exists":
        out.write_bytes(b"mine")
    r = train(str(upright) if case != "stdin" else "-", "--out", str(out), *args, *TINY)
    assert r.exit_code == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: ") and {"perspective": "projective family", "out_under_a_file": "is a file",
                                           "curve_is_a_folder": "is a folder", "curve_exists": "--overwrite",
                                           "model_exists": "--overwrite", "stdin": "stdin"}[case] in line
    assert "--resume" not in line
    if case == "curve_exists":
        assert (tmp_path / "m.png").read_bytes() == b"mine" and not out.exists()
        r = train(str(upright), "--out", str(out), "--overwrite", *TINY)
        assert r.exit_code == 0 and (tmp_path / "m.png").read_bytes() != b"mine"


def test_a_validation_split_keeps_a_page_to_train_on(tmp_path, train, upright):
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--val-split", "0.9", "--steps", "2", "--batch", "2")
    assert r.exit_code == 0, r.stderr
    assert "2 steps on 1 images (3 held out)" in r.stderr


def test_resume_refuses_options_that_the_checkpoint_cannot_follow(tmp_path, train, upright):
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "4", "--batch", "2", "--checkpoint-every", "2",
              "-q")
    assert r.exit_code == 0, r.stderr
    ckpt = str(tmp_path / "m.checkpoint.npz")
    for args, said in [(["--no-upright-head"], "upright head"), (["--no-orientation-branch"], "orientation branch"),
                       (["--no-quarter-turns"], "quarter turns"), (["--steps", "3"], "at step 4, past --steps 3"),
                       (["--family", "rotation"], "m.checkpoint.npz is a model of the affine family; this run trains "
                                                  "rotation (give --family affine to resume it)")]:
        r = train(str(upright), "--out", str(tmp_path / "n.npz"), "--resume", ckpt, "--batch", "2", *args, "-q")
        assert r.exit_code == 2 and said in r.stderr, (args, r.stderr)
    # resuming from the model --out names: it is replaced only with --overwrite, as any file in the way
    model = tmp_path / "m.npz"
    before = model.read_bytes()
    r = train(str(upright), "--out", str(model), "--resume", str(model), "--steps", "6", "--batch", "2", "-q")
    assert r.exit_code == 2 and "m.npz exists (use --overwrite" in r.stderr and model.read_bytes() == before
    # resuming into the run's own name: its checkpoint is the one read, not a file in the way
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--resume", ckpt, "--steps", "6", "--batch", "2",
              "--overwrite", "-q")
    assert r.exit_code == 0, r.stderr


def test_a_model_trained_without_quarter_turns_does_not_turn_pages(tmp_path, train, upright):
    from stntool.rectify import Rectifier

    r = train(str(upright), "--out", str(tmp_path / "nq.npz"), "--no-quarter-turns", *TINY)
    assert r.exit_code == 0, r.stderr
    rect = Rectifier(str(tmp_path / "nq.npz"), refine=False, min_confidence=0.0)
    assert not rect.quarter_head and Rectifier("text").quarter_head
    page = np.zeros((160, 200), np.uint8)
    assert rect._quarter_probabilities(page).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_the_summary_speaks_of_this_run_and_of_the_heads_it_trained(tmp_path, train, upright):
    """A resumed run that held nothing out said the earlier run's validation figures; a run without quarter
    turns said its untrained quarter head was 100% right (no validation page was turned)."""
    from stntool.locnet import LocNet

    first = tmp_path / "a.npz"
    r = train(str(upright), "--out", str(first), "--steps", "4", "--batch", "2", "--val-split", "0.5")
    assert r.exit_code == 0 and "validation median rotation error" in r.stderr, r.stderr
    r = train(str(upright), "--out", str(tmp_path / "b.npz"), "--steps", "6", "--batch", "2", "--val-split", "0",
              "--resume", str(first))
    assert r.exit_code == 0, r.stderr
    assert "6 steps" in r.stderr and "validation" not in r.stderr and "quarter turns" not in r.stderr
    r = train(str(upright), "--out", str(tmp_path / "nq.npz"), "--steps", "2", "--batch", "2", "--val-split", "0.5",
              "--no-quarter-turns")
    assert r.exit_code == 0 and "validation median rotation error" in r.stderr and "quarter turns" not in r.stderr
    history = LocNet.load(tmp_path / "nq.npz").metadata["training_state"]["history"]
    assert [rec["val_quarter_accuracy"] for rec in history if "val_rotation_median" in rec] == [None]


def test_out_resume_and_model_names_are_said_as_what_they_are(tmp_path, train, upright):
    (tmp_path / "dir.npz").mkdir()
    r = train(str(upright), "--out", str(tmp_path / "dir.npz"), "--steps", "2", "--batch", "2")
    assert r.exit_code == 2 and "dir.npz is a folder" in r.stderr and "ending in .npz" not in r.stderr
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--batch", "2", "--resume", "text")
    assert r.exit_code == 2 and "model text does not exist (a .npz file from stntool train)" in r.stderr, r.stderr


def test_out_is_checked_before_any_image_is_read(tmp_path, train, upright):
    """An existing --out was a usage error only after every image had been read (and each bad one reported)."""
    write(upright / "bad.png", b"not an image")
    (tmp_path / "d.npz").write_bytes(b"x")
    r = train(str(upright), "--out", str(tmp_path / "d.npz"), "--steps", "2", "--batch", "2")
    assert r.exit_code == 2 and "exists (use --overwrite to replace it)" in r.stderr
    assert "bad.png" not in r.stderr


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (a folder no file can be made in)")
def test_a_folder_no_file_can_be_made_in_is_a_usage_error_before_training(tmp_path, train, upright):
    # a read-only folder (here /proc) was found at the first checkpoint, after minutes of training
    r = train(str(upright), "--out", "/proc/stntool-model.npz", "--steps", "2", "--batch", "2")
    assert r.exit_code == 2 and "cannot write /proc/stntool-model.npz" in r.stderr, r.stderr


def test_batch_has_an_upper_bound(tmp_path, train):
    r = train("--synthetic-pages", "3", "--batch", "1000000000000", "--steps", "1", "--out", str(tmp_path / "x.npz"))
    assert r.exit_code == 2 and "--batch" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("after_steps", [False, True])
def test_a_ctrl_c_names_what_it_left(tmp_path, train, upright, monkeypatch, after_steps):
    """A Ctrl-C after the last step (fitting the upright head, writing the model) said "nothing written" while
    the final checkpoint was on disk."""
    from stntool import train as lib

    out = tmp_path / "m.npz"

    def interrupted(pages, config, out_path, **kwargs):
        if after_steps:
            (tmp_path / "m.checkpoint.npz").write_bytes(b"the steps")
        raise KeyboardInterrupt

    monkeypatch.setattr(lib, "train", interrupted)
    r = train(str(upright), "--out", str(out), "--steps", "2", "--batch", "2")
    assert r.exit_code == 130
    if after_steps:
        assert "interrupted after the last step; the steps are in" in r.stderr and "m.checkpoint.npz" in r.stderr
        assert "(finish it with --resume " in r.stderr
    else:
        assert "interrupted before a step finished; nothing written" in r.stderr


def test_a_run_stopped_after_its_last_step_is_finished_by_resuming(tmp_path, train, upright, monkeypatch):
    """A Ctrl-C while the upright head was fitted or the model written leaves the last step's checkpoint; resuming
    it with the same --steps was refused ("nothing left to train"): it finishes the run now, with the model a
    run that was not stopped writes."""
    from stntool import locnet
    from stntool import train as lib

    args = ("--steps", "2", "--batch", "2", "--checkpoint-every", "1", "--seed", "3", "-q")
    whole = tmp_path / "whole.npz"
    r = train(str(upright), "--out", str(whole), *args)
    assert r.exit_code == 0, r.stderr
    real_fit = lib.fit_upright

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lib, "fit_upright", stopped)
    out = tmp_path / "m.npz"
    r = train(str(upright), "--out", str(out), *args)
    assert r.exit_code == 130 and not out.exists() and "finish it with --resume" in r.stderr, r.stderr
    monkeypatch.setattr(lib, "fit_upright", real_fit)
    r = train(str(upright), "--out", str(out), "--resume", str(tmp_path / "m.checkpoint.npz"), "--overwrite", *args)
    assert r.exit_code == 0, r.stderr
    a, b = locnet.LocNet.load(str(whole)), locnet.LocNet.load(str(out))
    assert all(np.array_equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert a.metadata["upright_head"] == b.metadata["upright_head"]


def test_a_checkpoint_with_a_broken_training_or_optimizer_state_is_refused_before_any_image_is_read(
        tmp_path, train, upright):
    # the optimizer's state was read only after every image (exit 1, the file unnamed, a traceback for t < 0),
    # and a training state of the wrong types raised ValueError, AttributeError or TypeError
    from stntool.locnet import Adam, LocNet

    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--batch", "2", "--checkpoint-every",
              "2", "-q")
    assert r.exit_code == 0, r.stderr
    write(upright / "broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    good = LocNet.load(str(tmp_path / "m.checkpoint.npz"))
    name = next(iter(good.parameters()))

    def broken(kind):
        opt = Adam(good.parameters())
        opt.load_state_dict(good.optimizer_state)
        meta = json.loads(json.dumps(good.metadata))
        if kind == "t":
            opt.t = -5
        elif kind == "v":
            opt.v[name] = -np.ones_like(opt.v[name])
        elif kind == "m":
            opt.m[name] = np.full_like(opt.m[name], np.nan)
        else:
            meta["training_state"] = {"step": "abc"} if kind == "step" else [1] if kind == "list" else \
                {"step": 1, "history": 5}
        path = tmp_path / f"bad-{kind}.npz"
        good.save(str(path), metadata=meta, optimizer=opt)
        return path

    for kind, said in (("t", "optimizer state t is -5"), ("v", f"optimizer state v.{name} holds values"),
                       ("m", f"optimizer state m.{name} holds values"), ("step", "training state"),
                       ("list", "training state"), ("history", "training state")):
        path = broken(kind)
        r = train(str(upright), "--out", str(tmp_path / "n.npz"), "--resume", str(path), "--steps", "4", "--batch",
                  "2", "-q")
        assert r.exit_code == 2 and said in r.stderr and path.name in r.stderr, (kind, r.stderr)
        assert "broken.png" not in r.stderr and "Traceback" not in r.stderr


def test_a_ctrl_c_while_the_curve_is_written_says_the_model_is_whole(tmp_path, train, upright, monkeypatch):
    # it said "the model was not written (finish it with --resume ...)", and that resume was refused: the model
    # existed
    from stntool import train as lib

    def interrupted(history, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(lib, "write_curve", interrupted)
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "2", "--batch", "2")
    assert r.exit_code == 130
    assert "interrupted while writing the training curve; the model is in" in r.stderr and "m.npz" in r.stderr
    assert "--resume" not in r.stderr and (tmp_path / "m.npz").exists()


@pytest.fixture
def diverging(monkeypatch):
    """``diverging(True)``: the training batches' targets are huge (as a range too wide for the pages draws them),
    so the first step's loss and gradients overflow; ``diverging(False)``: as they are."""
    import stntool.train as T

    real = T.make_batch
    on = [False]

    def make_batch(pages, indices, *args, **kwargs):
        b = real(pages, indices, *args, **kwargs)
        if on[0] and not set(np.atleast_1d(indices).tolist()) <= set(np.atleast_1d(pages.val).tolist()):
            b["theta_true"] = np.full_like(b["theta_true"], 1e300)
        return b

    monkeypatch.setattr(T, "make_batch", make_batch)
    return lambda value: on.__setitem__(0, value)


def test_a_run_that_diverges_says_at_which_step_and_not_that_it_went_on(tmp_path, train, upright, diverging):
    # "gradients contain NaN or infinity; step skipped": no step was skipped, the run had stopped
    diverging(True)
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "3", "--batch", "2", "-q")
    assert r.exit_code == 1
    assert ("step 1: gradients contain NaN or infinity (nothing updated): training diverged (a range too wide for "
            "the pages, or --lr too high?); nothing was written") in r.stderr and "skipped" not in r.stderr
    assert not (tmp_path / "m.npz").exists()
    # resumed into another --out, before its own first checkpoint: it named that one, never written
    diverging(False)
    r = train(str(upright), "--out", str(tmp_path / "a.npz"), "--steps", "2", "--batch", "2", "--checkpoint-every",
              "1", "-q")
    assert r.exit_code == 0, r.stderr
    diverging(True)
    r = train(str(upright), "--out", str(tmp_path / "b.npz"), "--resume", str(tmp_path / "a.checkpoint.npz"),
              "--steps", "4", "--batch", "2", "-q")
    assert r.exit_code == 1 and "nothing was written (it went on from step 2 of" in r.stderr, r.stderr
    assert "b.checkpoint.npz" not in r.stderr and not (tmp_path / "b.checkpoint.npz").exists()


def test_more_synthetic_pages_than_memory_holds_is_a_usage_error(tmp_path, train, upright, monkeypatch):
    """A page count past the machine's memory grew until the system stopped the run; it is refused at once. (The
    memory is made 1 GB here: were the check gone, 600 pages would render, not fill the machine.)"""
    import stntool.commands.train as cmd

    monkeypatch.setattr(cmd, "_memory_bytes", lambda: 10 ** 9)
    r = train("--synthetic-pages", "600", "--out", str(tmp_path / "m.npz"), "--steps", "1")
    assert r.exit_code == 2 and "Invalid value for --synthetic-pages: 600 pages would hold about 1.32 GB" in r.stderr
    assert "in memory while training, and this machine has 1 GB" in r.stderr and not (tmp_path / "m.npz").exists()
    monkeypatch.setattr(cmd, "_memory_bytes", lambda: None)  # where memory cannot be told: no check, no refusal
    r = train(str(upright), "--out", str(tmp_path / "m.npz"), "--steps", "1", "--batch", "2", "-q")
    assert r.exit_code == 0, r.stderr


def test_the_memory_is_the_smaller_of_the_machines_and_a_containers(monkeypatch):
    import builtins
    import io

    import stntool.commands.train as cmd

    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2 ** 20}[name])  # 4 GiB
    real_open = builtins.open
    limits = {"/sys/fs/cgroup/memory.max": "1073741824\n"}

    def fake_open(path, *args, **kwargs):
        if str(path).startswith("/sys/fs/cgroup/"):
            if path not in limits:
                raise FileNotFoundError(path)
            return io.StringIO(limits[path])
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert cmd._memory_bytes() == 2 ** 30
    limits["/sys/fs/cgroup/memory.max"] = "max\n"
    assert cmd._memory_bytes() == 2 ** 32
    monkeypatch.setattr(os, "sysconf", lambda name: -1)  # "cannot tell", and no limit either
    assert cmd._memory_bytes() is None
