"""Hostile option values: an empty or blank file name, a device where a folder goes, a manifest path that names
someone's notes, amounts that overflow: each a usage error (exit 2) on one line that names the option, and
nothing written."""

import os
import subprocess
import sys

import pytest

from cli_helpers import SHIFT, encode, small_rgb, write


@pytest.fixture
def one(tmp_path):
    (tmp_path / "in").mkdir()
    return str(write(tmp_path / "in" / "a.png", encode(small_rgb(), ".png")))


@pytest.mark.parametrize("args, option", [
    (["-o", ""], "'-o' / '--output'"),
    (["-o", "   "], "'-o' / '--output'"),
    (["-o", "OUT", "--manifest", ""], "'--manifest'"),
    (["-o", "OUT", "--files-from", ""], "'--files-from'"),
    (["-o", "OUT", "--labels-out", " "], "'--labels-out'"),
    (["-o", "OUT", "--preview", ""], "'--preview'"),
])
def test_an_empty_or_blank_name_is_a_usage_error(one, tmp_path, cli_run, monkeypatch, args, option):
    monkeypatch.chdir(tmp_path)  # `-o ""` wrote into the current folder
    before = sorted(os.listdir(tmp_path))
    r = cli_run("augment", one, "-n", "1", "--seed", "1", "--rotate", "5", *args)
    assert r.exit_code == 2 and f"Invalid value for {option}: " in r.output
    assert "is empty (an unset shell variable?)" in r.output or "is only spaces" in r.output
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("command, args", [
    ("warp", ["--theta", SHIFT, "--tps", ""]), ("warp", ["--params", ""]), ("rectify", ["--model", ""]),
])
def test_an_empty_file_option_is_named(one, tmp_path, cli_run, command, args):
    r = cli_run(command, one, "-o", str(tmp_path / "out"), *args)
    assert r.exit_code == 2 and f"Invalid value for '{args[-2]}': is empty" in r.output
    assert not (tmp_path / "out").exists()


def test_train_refuses_an_empty_out(one, cli_run):
    r = cli_run("train", os.path.dirname(one), "--out", "")
    assert r.exit_code == 2 and "Invalid value for '--out': is empty" in r.output


@pytest.mark.parametrize("option", ["--labels-dir", "--masks"])
def test_a_device_is_not_a_folder(one, tmp_path, cli_run, option):
    r = cli_run("augment", one, "-o", str(tmp_path / "out"), "-n", "1", "--seed", "1", option, os.devnull)
    assert r.exit_code == 2 and f"{os.devnull} is not a folder" in r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("append", [False, True])
def test_a_manifest_path_naming_another_file_is_not_replaced(one, tmp_path, run, append):
    notes = write(tmp_path / "notes.txt", b"my notes\nimportant\n")
    r = run("--theta", SHIFT, one, "-o", str(tmp_path / "out"), "--manifest", str(notes),
            *(["--manifest-append"] if append else []))
    assert r.exit_code == 2 and "notes.txt exists and is not a manifest" in r.output
    assert notes.read_bytes() == b"my notes\nimportant\n" and not (tmp_path / "out").exists()


def test_a_manifest_cut_in_its_first_line_is_still_one(one, tmp_path, run):
    cut = write(tmp_path / "m.jsonl", b'{"input": "a.pn')
    r = run("--theta", SHIFT, one, "-o", str(tmp_path / "out"), "--manifest", str(cut), "--manifest-append", "-q")
    assert r.exit_code == 0 and cut.read_text().count("\n") == 1 and cut.read_text().startswith('{"input": ')
    r = run("--theta", SHIFT, one, "-o", str(tmp_path / "out"), "--manifest", str(cut), "--overwrite", "-q")
    assert r.exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--translate", "1e307:1e307"], "--translate must be within ±1e+06 (image sizes), got 1e+307"),
    (["--translate", "0:1e308"], "--translate must be within ±1e+06"),
    (["--rotate", "-1e308:1e308"], "--rotate: the range -1e+308:1e+308 is too wide (its width overflows)"),
    (["--shear-y", "89"], "--shear-y must stay within (-89, 89) degrees"),
])
def test_amounts_that_overflow_are_usage_errors_naming_the_option(one, tmp_path, cli_run, args, message):
    r = cli_run("augment", one, "-o", str(tmp_path / "out"), "-n", "1", "--seed", "1", *args)
    assert r.exit_code == 2 and f"Error: {message}" in r.output


def test_the_interrupted_line_imports_nothing():
    """Ctrl-C can stop NumPy's import half-way; the line that reports it must not import it again."""
    code = ("import sys; from stntool.cli import _say_interrupted; _say_interrupted(); "
            "print(sorted(m for m in ('numpy', 'cv2', 'numba', 'stntool.io', 'stntool.batch') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stderr == "stntool: interrupted\n" and p.stdout.strip() == "[]"


@pytest.mark.parametrize("option, value, message", [
    ("--theta", "1,0,0", "Invalid value for '--theta': expected 6 or 9 numbers, got 3"),  # "Invalid value: --theta:"
    ("--theta", "", "Invalid value for '--theta': is empty (an unset shell variable?)"),
    ("--matrix", "1,0", "Invalid value for '--matrix': expected 6 or 9 numbers, got 2"),
])
def test_matrix_values_are_said_as_other_options_are(one, tmp_path, run, option, value, message):
    r = run(option, value, one, "-o", str(tmp_path / "o.png"))
    assert r.exit_code == 2 and message in r.output


def test_an_empty_range_and_one_number_read_well(one, tmp_path, cli_run):
    r = cli_run("augment", one, "-o", str(tmp_path / "o"), "--rotate", "")
    assert r.exit_code == 2 and "Invalid value for '--rotate': is empty (an unset shell variable?)" in r.output
    r = cli_run("augment", one, "-o", str(tmp_path / "o"), "--rotate", "1,2")
    assert r.exit_code == 2 and "expected 1 number, got 2" in r.output  # "expected 1 numbers"


def test_params_errors_name_the_file_and_an_empty_file_says_so(one, tmp_path, run):
    bad = write(tmp_path / "g.jsonl", b'{"input": "a.png", "theta": [1, 0, 0, 0, 1]}\n')
    r = run("--params", str(bad), "-o", str(tmp_path / "r"))
    assert r.exit_code == 2 and f"{bad} line 1: " in r.output
    empty = write(tmp_path / "e.jsonl", b"")
    r = run("--params", str(empty), "-o", str(tmp_path / "r"))
    assert r.exit_code == 2 and f"--params {empty}: no record to replay (the file is empty)" in r.output


def test_rectify_says_align_corners_does_not_apply_and_what_a_model_is(one, tmp_path, cli_run):
    r = cli_run("rectify", one, "-o", str(tmp_path / "r"), "--align-corners")
    assert r.exit_code == 2 and "--align-corners does not apply" in r.output
    r = cli_run("rectify", one, "-o", str(tmp_path / "r"), "--model", "textt")
    assert r.exit_code == 2 and "model textt does not exist (a model is 'text', the shipped one, or a .npz" in r.output
    assert "stntool train)" in r.output and "(a .npz file from stntool train) (" not in r.output


def test_a_driver_failure_is_said_without_its_exception_class():
    from stntool.sampling import _cuda

    class CudaSupportError(Exception):
        pass

    assert _cuda._said(CudaSupportError("Error at driver init:\n  no driver")) == "Error at driver init: no driver"
    assert _cuda._said(CudaSupportError()) == "CudaSupportError"


def test_fill_errors_name_the_option_once(one, tmp_path, run):
    r = run("--theta", SHIFT, one, "-o", str(tmp_path / "o"), "--fill", "009900")
    assert r.exit_code == 2 and "Invalid value for '--fill': 009900: a colour is written '#009900'" in r.output
    r = run("--theta", SHIFT, one, "-o", str(tmp_path / "o"), "--fill", "abc")
    assert r.exit_code == 2 and "Invalid value for '--fill': value 1 ('abc') is not a number" in r.output
