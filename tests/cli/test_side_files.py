"""Files beside the images (manifests, contact sheets, training curves, label sidecars) never destroy an
input, and reruns into or beside the inputs neither read their own outputs nor fail on them."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stntool
from cli_helpers import SHIFT, encode, small_rgb, write


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for k in range(3):
        write(d / f"im{k}.png", encode(small_rgb(24, 32, seed=k), ".png"))
    return d


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def digests(folder):
    return {p: digest(os.path.join(folder, p)) for p in sorted(os.listdir(folder))}


@pytest.mark.parametrize("command", [["warp", "--theta", SHIFT], ["augment", "--seed", "1", "--rotate", "5"]])
def test_a_manifest_onto_an_input_or_an_output_is_a_usage_error(tmp_path, cli_run, folder, command):
    before = digests(folder)
    r = cli_run(*command, str(folder), "-o", str(tmp_path / "out"), "--manifest", str(folder / "im1.png"))
    assert r.exit_code == 2 and "is an input file" in r.output
    r = cli_run(*command, str(folder), "-o", str(tmp_path / "out"), "--manifest-append",
               "--manifest", str(folder / "im2.png"))
    assert r.exit_code == 2 and "is an input file" in r.output
    assert digests(folder) == before and not (tmp_path / "out").exists()
    if command[0] == "warp":
        r = cli_run(*command, str(folder), "-o", str(tmp_path / "out"), "--manifest", str(tmp_path / "out" / "im0.png"))
        assert r.exit_code == 2 and "is also the output of" in r.output


def test_a_preview_never_replaces_an_input_and_an_existing_one_needs_overwrite(tmp_path, cli_run, folder):
    before = digests(folder)
    base = ["augment", str(folder / "im0.png"), "-o", str(tmp_path / "aug"), "--seed", "1", "--rotate", "5", "-q"]
    for extra in ([], ["--overwrite"], ["--skip-existing"]):
        r = cli_run(*base, "--preview", str(folder / "im0.png"), *extra)
        assert r.exit_code == 2 and ("is an input file" in r.output or "exists" in r.output), r.output
        assert digests(folder) == before
    sheet = tmp_path / "sheet.png"
    assert cli_run(*base, "--preview", str(sheet)).exit_code == 0
    first = digest(sheet)
    r = cli_run(*base, "--preview", str(sheet), "--skip-existing")
    assert r.exit_code == 0 and digest(sheet) == first  # resuming keeps it
    write(sheet, b"not a sheet")
    r = cli_run(*base, "--preview", str(sheet), "--skip-existing")
    assert r.exit_code == 0 and open(sheet, "rb").read() == b"not a sheet"
    r = cli_run(*base, "--preview", str(sheet))
    assert r.exit_code == 2 and "exists (use --overwrite" in r.output
    assert cli_run(*base, "--preview", str(sheet), "--overwrite").exit_code == 0 and digest(sheet) == first


def test_a_preview_that_cannot_be_written_is_refused_first_and_stdout_is_no_preview(tmp_path, cli_run, folder):
    """A sheet whose folder has a file in the way failed after every variant was written (exit 1); it is a
    usage error before the batch."""
    base = ["augment", str(folder / "im0.png"), "-o", str(tmp_path / "aug"), "--seed", "1", "--rotate", "5", "-q"]
    write(tmp_path / "file.txt", b"a file, not a folder")
    r = cli_run(*base, "--preview", str(tmp_path / "file.txt" / "sheet.png"))
    assert r.exit_code == 2 and "file.txt is a file, not a folder" in r.output, r.output
    assert not (tmp_path / "aug").exists()
    # a sheet kept as it is (it exists, --skip-existing) is not written: its folder need not take files
    from stntool import io as sio

    sheet = tmp_path / "kept.png"
    write(sheet, b"a sheet")
    real = sio.folder_problem
    sio.folder_problem = lambda path: "read-only"
    try:
        r = cli_run(*base, "--preview", str(sheet), "--skip-existing")
        assert r.exit_code == 0 and sheet.read_bytes() == b"a sheet", r.output
        r = cli_run(*base, "--preview", str(sheet), "--overwrite")
        assert r.exit_code == 2 and "read-only" in r.output
    finally:
        sio.folder_problem = real
    r = cli_run(*base, "--preview", "-", "--overwrite")
    assert r.exit_code == 2 and "written to a file" in r.output and not (Path.cwd() / "-").exists()


def test_the_training_curve_is_never_written_onto_an_input(tmp_path, cli_run, folder):
    before = digests(folder)
    r = cli_run("train", str(folder), "--out", str(folder / "im1.npz"), "--steps", "1", "--batch", "2",
               "--val-split", "0")
    assert r.exit_code == 2 and "training curve" in r.output and "is an input file" in r.output
    assert digests(folder) == before


def test_a_rerun_into_a_folder_inside_the_input_does_not_read_its_outputs(tmp_path, cli_run, folder):
    out = folder / "out"
    assert cli_run("warp", "--theta", SHIFT, "-r", str(folder), "-o", str(out), "-q").exit_code == 0
    written = digests(out)
    assert sorted(written) == ["im0.png", "im1.png", "im2.png"]
    r = cli_run("warp", "--theta", SHIFT, "-r", str(folder), "-o", str(out), "--skip-existing")
    assert r.exit_code == 0 and "0 ok, 3 skipped, 0 failed" in r.output
    assert digests(out) == written and not (out / "out").exists()


def test_a_resumed_run_into_its_own_folder_with_a_suffix_skips_its_earlier_outputs(tmp_path, cli_run, folder):
    assert cli_run("warp", "--theta", SHIFT, str(folder), "-o", str(folder), "--suffix", "_w", "-q").exit_code == 0
    after = digests(folder)
    assert len(after) == 6
    r = cli_run("warp", "--theta", SHIFT, str(folder), "-o", str(folder), "--suffix", "_w", "--skip-existing")
    assert r.exit_code == 0 and "0 ok, 6 skipped, 0 failed" in r.output
    assert digests(folder) == after  # no im0_w_w.png
    for extra in ([], ["--overwrite"]):  # without resuming: refused, and the earlier outputs skipped
        r = cli_run("warp", "--theta", SHIFT, str(folder), "-o", str(folder), "--suffix", "_w", *extra)
        assert r.exit_code == 1 and "which is among the inputs (an earlier run's output?" in r.output
        assert "0 ok, 3 skipped, 3 failed" in r.output
        assert digests(folder) == after


def test_an_image_that_looks_like_an_earlier_output_is_never_written_onto(tmp_path, cli_run):
    """x.png beside x.jpg, --format png into their own folder: x.png is x.jpg's planned output, and may be an image
    of its own: skipped as an input, and never replaced, --overwrite or not. The same for augment's variants."""
    src = tmp_path / "src"
    src.mkdir()
    write(src / "x.jpg", encode(small_rgb(24, 32, 1), ".jpg"))
    write(src / "x.png", encode(small_rgb(24, 32, 2), ".png"))
    write(src / "y.png", encode(small_rgb(24, 32, 3), ".png"))
    write(src / "y_000.png", encode(small_rgb(24, 32, 4), ".png"))
    before = digests(src)
    for extra in ([], ["--overwrite"]):
        r = cli_run("warp", "--theta", SHIFT, str(src / "x.jpg"), str(src / "x.png"), "-o", str(src), "--format",
                    "png", *extra)
        assert r.exit_code == 1 and f"refusing to write onto {src / 'x.png'}, which is among the inputs" in r.output
        r = cli_run("augment", str(src / "y.png"), str(src / "y_000.png"), "-o", str(src), "--seed", "1", "--rotate",
                    "3", "--count", "2", *extra)
        assert r.exit_code == 1 and "which is among the inputs" in r.output
        assert digests(src) == before
    r = cli_run("augment", str(src / "y.png"), str(src / "y_000.png"), "-o", str(src), "--seed", "1", "--rotate",
                "3", "--count", "2", "--skip-existing", "--manifest", str(tmp_path / "m.jsonl"))
    assert r.exit_code == 0 and sorted(os.listdir(src)) == ["x.jpg", "x.png", "y.png", "y_000.png", "y_001.png"]
    recs = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [(os.path.basename(r["input"]), os.path.basename(r["output"]), r["status"]) for r in recs] == [
        ("y.png", "y_000.png", "skipped"), ("y.png", "y_001.png", "ok"),
        ("y_000.png", "y_000.png", "skipped")]  # one line for the earlier output: the file itself
    assert all(digests(src)[k] == v for k, v in before.items())


def test_a_label_sidecar_left_without_its_image_is_named_and_a_resume_replaces_it(tmp_path, cli_run):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    write(src / "im.png", encode(small_rgb(24, 32), ".png"))
    (src / "im.json").write_text('{"keypoints": [[10, 12]]}')
    (out / "im_001.json").write_text("{}")  # what a run stopped between the sidecar and its image leaves
    args = ["augment", str(src), "-o", str(out), "--seed", "1", "--rotate", "3", "--count", "2"]
    r = cli_run(*args)
    assert r.exit_code == 1 and "exists (use --overwrite or --skip-existing)" in r.output
    # which of the input's outputs, and the file in its way
    assert f"{out / 'im_001.png'}: {out / 'im_001.json'}, written beside it, exists" in r.output
    r = cli_run(*args, "--skip-existing", "-q")
    assert r.exit_code == 0
    assert sorted(os.listdir(out)) == ["im_000.json", "im_000.png", "im_001.json", "im_001.png"]
    assert (out / "im_001.json").read_text() != "{}"


def test_an_input_failing_at_its_second_variant_leaves_no_output(tmp_path, cli_run):
    """Its first variant and label file were written, then removed; the manifest has the error line only."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src / "a.png", encode(small_rgb(24, 32), ".png"))
    write(src / "b.png", encode(small_rgb(24, 32), ".png"))
    (src / "a.json").write_text('{"keypoints": [[10, 12]]}')
    (out / "a_001.png").mkdir(parents=True)  # the second variant cannot be written: a folder is in the way
    r = cli_run("augment", str(src), "-o", str(out), "--seed", "1", "--rotate", "3", "--count", "3", "--overwrite",
                "--manifest", str(tmp_path / "m.jsonl"))
    assert r.exit_code == 1 and f"{src / 'a.png'}: {out / 'a_001.png'}: output exists and is not a regular file" \
        in r.output
    assert sorted(os.listdir(out)) == ["a_001.png", "b_000.png", "b_001.png", "b_002.png"]
    recs = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [(os.path.basename(r["output"]), r["status"], r.get("removed")) for r in recs] == [
        ("a_000.png", "error", True), ("a_001.png", "error", None), ("b_000.png", "ok", None),
        ("b_001.png", "ok", None), ("b_002.png", "ok", None)]
    assert r.output.count("stntool: error:") == 1  # one line for the failed input
    for name in os.listdir(out):
        shutil.rmtree(out / name) if (out / name).is_dir() else os.remove(out / name)
    (out / "a_000.json").mkdir()  # the label file of the only variant: that file is named
    r = cli_run("augment", str(src / "a.png"), "-o", str(out), "--seed", "1", "--rotate", "3", "--overwrite")
    assert r.exit_code == 1 and f"{src / 'a.png'}: {out / 'a_000.json'}: output exists and is not a regular file" \
        in r.output
    assert os.listdir(out) == ["a_000.json"]


def test_an_appended_manifest_replays_what_is_on_disk_after_a_failed_rerun(tmp_path, cli_run):
    """Run twice into one folder with one manifest; the second run's input fails at its third variant and removes
    the two it wrote (replacing the first run's): their removed lines cancel the first run's records, so a replay
    writes no a_000, a_001 (a_002's own error line is a failed write: the first run's record stands)."""
    src, out, man = tmp_path / "src", tmp_path / "out", tmp_path / "m.jsonl"
    src.mkdir()
    write(src / "a.png", encode(small_rgb(24, 32), ".png"))
    args = ["augment", str(src), "-o", str(out), "--rotate", "-5:5", "--count", "4", "--manifest", str(man), "-q"]
    assert cli_run(*args, "--seed", "1").exit_code == 0
    os.remove(out / "a_002.png")
    (out / "a_002.png").mkdir()
    r = cli_run(*args, "--seed", "2", "--overwrite", "--manifest-append")
    assert r.exit_code == 1 and sorted(os.listdir(out)) == ["a_002.png", "a_003.png"]
    r = cli_run("warp", "--params", str(man), "-o", str(tmp_path / "replay"), "-q")
    assert r.exit_code == 0 and sorted(os.listdir(tmp_path / "replay")) == ["a_002.png", "a_003.png"]
    assert digest(tmp_path / "replay" / "a_003.png") == digest(out / "a_003.png")


def test_warp_params_refuses_sampling_options_its_records_give(tmp_path, cli_run, folder):
    man = tmp_path / "m.jsonl"
    assert cli_run("warp", "--theta", SHIFT, str(folder), "-o", str(tmp_path / "a"), "--manifest", str(man),
                  "-q").exit_code == 0
    for extra in (["--mode", "nearest"], ["--size", "8x8"], ["--padding", "border"], ["--align-corners"]):
        r = cli_run("warp", "--params", str(man), "-o", str(tmp_path / "b"), *extra)
        assert r.exit_code == 2 and "cannot be used with --params" in r.output, extra
    assert not (tmp_path / "b").exists()
    assert cli_run("warp", "--params", str(man), "-o", str(tmp_path / "b"), "-q").exit_code == 0


def test_tiny_scales_are_a_usage_error(tmp_path, cli_run, folder):
    for scale in ("1e-300", "0:1", "1:1e300"):
        r = cli_run("augment", str(folder), "-o", str(tmp_path / "a"), "--seed", "1", "--scale", scale)
        assert r.exit_code == 2 and "scale must be between" in r.output, (scale, r.output)


def test_rectify_beside_dot_and_dotdot_never_inside(tmp_path, cli_run, folder):
    cwd = os.getcwd()
    try:
        os.chdir(folder)
        assert cli_run("rectify", ".", "-q", "--min-confidence", "1").exit_code == 0
        assert (tmp_path / "in_rectified").is_dir() and not any(n.startswith(".") for n in os.listdir(folder))
        sub = folder / "sub"
        sub.mkdir()
        os.chdir(sub)
        assert cli_run("rectify", "..", "-q", "--min-confidence", "1", "--overwrite").exit_code == 0
        assert sorted(os.listdir(sub)) == []
    finally:
        os.chdir(cwd)


def test_numpy_warnings_stay_off_stderr(tmp_path, folder):
    """A degenerate or huge θ reads the fill (as grid_sample's grid would); the shell sees no Python warning."""
    for theta in ("1,0,0,0,1,0,0,0,0", "1e308,0,0,0,1e308,0"):
        p = subprocess.run([sys.executable, "-m", "stntool", "warp", "--theta", theta, str(folder / "im0.png"), "-o",
                            str(tmp_path / f"o{len(theta)}.png"), "-q"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", p.stderr


def test_a_tps_file_with_an_unknown_key_is_a_usage_error(tmp_path, cli_run, folder):
    doc = '{"src": [[0, 0], [10, 0], [0, 10]], "dst": [[0, 0], [10, 0], [0, 10]], "normalised": true}'
    (tmp_path / "t.json").write_text(doc)
    r = cli_run("warp", "--tps", str(tmp_path / "t.json"), str(folder), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and "unknown key 'normalised'" in r.output


def test_the_manifest_may_not_be_a_file_the_command_reads(tmp_path, cli_run, folder):
    # a --files-from list, TPS points, a parameter file or a model named as --manifest were replaced by its lines
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in sorted(folder.iterdir())))
    pts = '{"src": [[0, 0], [10, 0], [0, 10], [10, 10]], "dst": [[1, 1], [10, 0], [0, 10], [10, 10]]}'
    (tmp_path / "t.json").write_text(pts)
    r = cli_run("warp", "--theta", SHIFT, str(folder), "-o", str(tmp_path / "a"), "--manifest",
                str(tmp_path / "m.jsonl"), "-q")
    assert r.exit_code == 0
    cases = [
        (["--theta", SHIFT, "--files-from", str(tmp_path / "list.txt")], tmp_path / "list.txt", "--files-from"),
        (["--tps", str(tmp_path / "t.json"), str(folder)], tmp_path / "t.json", "--tps"),
        (["--params", str(tmp_path / "m.jsonl")], tmp_path / "." / "m.jsonl", "--params"),
    ]
    for args, manifest, what in cases:
        before = manifest.read_bytes()
        for append in ([], ["--manifest-append"]):
            r = cli_run("warp", *args, "-o", str(tmp_path / "o"), "--manifest", str(manifest), *append)
            assert r.exit_code == 2 and f"is the {what} file; refusing to write onto it" in r.output, r.output
            assert manifest.read_bytes() == before and not (tmp_path / "o").exists()
    model = tmp_path / "mine.npz"
    model.write_bytes((Path(stntool.__file__).parent / "models" / "text.npz").read_bytes())
    before = model.read_bytes()
    r = cli_run("rectify", str(folder), "-o", str(tmp_path / "r"), "--model", str(model), "--manifest", str(model))
    assert r.exit_code == 2 and "is the --model file" in r.output and model.read_bytes() == before
    r = cli_run("augment", str(folder), "-o", str(tmp_path / "g"), "--count", "1", "--preview",
                str(tmp_path / "p.png"), "--manifest", str(tmp_path / "p.png"))
    assert r.exit_code == 2 and "both name" in r.output and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_inputs_that_fail_take_no_row_of_the_preview(tmp_path, cli_run, jobs):
    # rows went to the first four inputs by index: two of them failing (a bad YOLO file) left a sheet of two
    good, every = tmp_path / "good", tmp_path / "every"
    good.mkdir()
    every.mkdir()
    for k, name in enumerate("abcdefg"):
        img = encode(small_rgb(24, 32, seed=k), ".png")
        write(every / f"{name}.png", img)
        if name in "bd":
            (every / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2 7\n")  # six columns: not a YOLO line
        elif name in "acef":
            write(good / f"{name}.png", img)
    r = cli_run("augment", str(every), "-o", str(tmp_path / "o1"), "--count", "2", "--seed", "3", "--preview",
                str(tmp_path / "p1.png"), "-j", jobs, "-q")
    assert r.exit_code == 1 and r.output.count("stntool: error") == 2, r.output
    r = cli_run("augment", str(good), "-o", str(tmp_path / "o2"), "--count", "2", "--seed", "3", "--preview",
                str(tmp_path / "p2.png"), "-j", jobs, "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p1.png").read_bytes() == (tmp_path / "p2.png").read_bytes()


def test_an_input_failing_after_its_variants_were_drawn_takes_no_row_of_the_preview(tmp_path, cli_run):
    # the sheet was drawn as variants were warped: an input that then failed (an output it could not write)
    # kept its row, captioned with files that were removed or never written
    for k, name in enumerate("ab"):
        write(tmp_path / f"{name}.png", encode(small_rgb(24, 32, seed=k), ".png"))
    (tmp_path / "out" / "a_001.png").mkdir(parents=True)  # a folder in the way of a's second variant
    args = ["--count", "3", "--seed", "1", "--rotate", "-20:20", "--overwrite", "-q", "--labels", "none"]
    r = cli_run("augment", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out"), *args,
                "--preview", str(tmp_path / "p1.png"))
    assert r.exit_code == 1 and "a_001.png" in r.output
    assert sorted(os.listdir(tmp_path / "out")) == ["a_001.png", "b_000.png", "b_001.png", "b_002.png"]
    r = cli_run("augment", str(tmp_path / "b.png"), "-o", str(tmp_path / "out2"), *args, "--preview",
                str(tmp_path / "p2.png"))
    assert r.exit_code == 0 and (tmp_path / "p1.png").read_bytes() == (tmp_path / "p2.png").read_bytes()


def test_a_preview_that_would_replace_a_mask_or_cannot_hold_a_sheet_is_a_usage_error(tmp_path, cli_run):
    import numpy as np

    write(tmp_path / "a.png", encode(small_rgb(24, 32), ".png"))
    (tmp_path / "m").mkdir()
    write(tmp_path / "m" / "a.png", encode(np.ones((24, 32), np.uint8), ".png"))
    mask = (tmp_path / "m" / "a.png").read_bytes()
    base = ["augment", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--seed", "1", "--rotate", "5", "-q",
            "--labels", "none"]
    r = cli_run(*base, "--masks", str(tmp_path / "m"), "--preview", str(tmp_path / "m" / "a.png"), "--overwrite")
    assert r.exit_code == 2 and "a file read with an input" in r.output, r.output
    assert (tmp_path / "m" / "a.png").read_bytes() == mask
    for ext, why in ((".pgm", "pgm stores one grey channel"), (".hdr", "hdr stores three 32-bit float")):
        r = cli_run(*base, "--preview", str(tmp_path / f"s{ext}"))
        assert r.exit_code == 2 and f"cannot write the sheet as '{ext}' ({why}" in r.output, r.output
        assert "--format" not in r.output
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        r = cli_run(*base, "--preview", str(tmp_path / "fifo"), "--overwrite")
        assert r.exit_code == 2 and "is not a regular file" in r.output
    assert not (tmp_path / "out").exists()  # refused before anything was written
    r = cli_run(*base)
    assert r.exit_code == 0
    r = cli_run(*base, "--skip-existing", "--preview", str(tmp_path / "s.png"))  # nothing new: said, not silent
    assert r.exit_code == 0 and "no contact sheet written" in r.output and not (tmp_path / "s.png").exists()
