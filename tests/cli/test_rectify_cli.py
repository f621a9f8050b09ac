"""stntool rectify: outputs, the sibling folder, manifest replay, bad inputs and models."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from stntool.cli import cli
from stntool.rectify import MODELS

from cli_helpers import SAMPLES, encode, write

pytestmark = pytest.mark.skipif(not os.path.exists(MODELS["text"]), reason="the shipped model is not built")


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(command, *args):
        return runner.invoke(cli, [command, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def pages(tmp_path):
    import stntool
    from stntool.io import read_image

    page = read_image(os.path.join(SAMPLES, "text_page.png"))[0]
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    write(folder / "a.png", encode(stntool.warp(page, [[0.97, -0.24, 0], [0.24, 0.97, 0]], padding="border"), ".png"))
    write(folder / "sub" / "b.png", encode(np.ascontiguousarray(np.rot90(page)), ".png"))
    write(folder / "blank.png", encode(np.full((200, 150), 250, np.uint8), ".png"))
    return folder


def test_outputs_keep_sizes_and_the_manifest_replays_bit_for_bit(tmp_path, run, pages):
    man = tmp_path / "r.jsonl"
    r = run("rectify", "-r", str(pages), "-o", str(tmp_path / "out"), "--manifest", str(man), "-q")
    assert r.exit_code == 0, r.stderr
    recs = {os.path.basename(x["input"]): x for x in map(json.loads, open(man))}
    assert set(recs) == {"a.png", "b.png", "blank.png"}
    assert recs["b.png"]["quarter_turns"] == 1 and recs["a.png"]["confidence"] > 0.3
    assert recs["blank.png"]["reason"].startswith("low confidence")
    assert recs["blank.png"]["theta"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    for x in recs.values():
        assert x["status"] == "ok" and x["in_size"] == x["size"] and len(x["theta"]) == 2
        assert set(x["timings"]) == {"estimate", "warp"}
    r = run("warp", "--params", str(man), "-o", str(tmp_path / "replay"), "-q")
    assert r.exit_code == 0, r.stderr
    for name in ("a.png", "sub/b.png", "blank.png"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "replay" / name).read_bytes(), name


def test_upright_size_gives_a_sideways_page_its_own_shape_and_replays(tmp_path, run, pages):
    """--upright-size: the page on its side (b.png, the sample turned a quarter) comes back in the sample's
    own shape and pixels (a straight page: an exact quarter turn); the others keep their sizes; the
    manifest replays bit for bit."""
    from stntool.io import read_image

    man = tmp_path / "r.jsonl"
    r = run("rectify", "-r", str(pages), "-o", str(tmp_path / "out"), "--manifest", str(man), "--upright-size", "-q")
    assert r.exit_code == 0, r.stderr
    recs = {os.path.basename(x["input"]): x for x in map(json.loads, open(man))}
    b = recs["b.png"]
    assert b["quarter_turns"] == 1 and b["size"] == b["in_size"][::-1]
    assert b["theta"] == [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
    page = read_image(os.path.join(SAMPLES, "text_page.png"))[0]
    assert np.array_equal(read_image(str(tmp_path / "out" / "sub" / "b.png"))[0], page)
    assert recs["a.png"]["size"] == recs["a.png"]["in_size"] and recs["blank.png"]["size"] == [150, 200]
    r = run("warp", "--params", str(man), "-o", str(tmp_path / "replay"), "-q")
    assert r.exit_code == 0, r.stderr
    for name in ("a.png", "sub/b.png", "blank.png"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "replay" / name).read_bytes(), name


def test_without_output_a_sibling_folder_is_made(tmp_path, run, pages):
    r = run("rectify", str(pages), "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "scans_rectified")) == ["a.png", "blank.png"]
    assert sorted(os.listdir(pages)) == ["a.png", "blank.png", "sub"]  # inputs untouched
    r = run("rectify", str(pages / "a.png"), str(pages / "blank.png"))
    assert r.exit_code == 2 and "-o" in r.stderr


def test_bad_inputs_fail_alone_and_bad_models_are_usage_errors(tmp_path, run, pages):
    write(pages / "bad.png", b"\x89PNG\r\n\x1a\ntruncated")
    r = run("rectify", str(pages), "-o", str(tmp_path / "o"))
    assert r.exit_code == 1
    errors = [x for x in r.stderr.splitlines() if x.startswith("stntool: error")]
    assert len(errors) == 1 and "bad.png" in errors[0]
    assert sorted(os.listdir(tmp_path / "o")) == ["a.png", "blank.png"]
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a model")
    r = run("rectify", str(pages), "-o", str(tmp_path / "o2"), "--model", str(junk))
    assert r.exit_code == 2 and "junk.npz" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o2").exists()


def test_one_input_to_one_output_file_replays_under_its_own_name(tmp_path, run, pages):
    # the record's name was "." (the output relative to itself), and replay wrote a file called "..png"
    man = tmp_path / "r.jsonl"
    r = run("rectify", str(pages / "a.png"), "-o", str(tmp_path / "one.png"), "--manifest", str(man), "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads(open(man).readline())["name"] == "one.png"
    r = run("warp", "--params", str(man), "-o", str(tmp_path / "replay"), "-q")
    assert r.exit_code == 0, r.stderr
    assert os.listdir(tmp_path / "replay") == ["one.png"]
    assert (tmp_path / "replay" / "one.png").read_bytes() == (tmp_path / "one.png").read_bytes()


def test_the_low_confidence_reason_never_reads_as_a_contradiction(monkeypatch):
    """A confidence of 0.2996 under --min-confidence 0.3 is said as 0.29, not "0.30 < 0.3"."""
    import stntool
    from stntool.io import read_image
    from stntool.rectify import Rectifier

    page = read_image(os.path.join(SAMPLES, "text_page.png"))[0]
    rect = Rectifier("text", refine=False, min_confidence=0.3)
    monkeypatch.setattr(rect, "_quarter_probabilities", lambda work: np.array([0.2996, 0.2335, 0.2335, 0.2334]))
    monkeypatch.setattr(rect, "_second_look", lambda lines, k, prob, theta_sq: (k, prob, theta_sq))
    theta, conf, info = rect.estimate(stntool.warp(page, [[0.99, -0.1, 0], [0.1, 0.99, 0]]), details=True)
    assert conf == pytest.approx(0.2996, abs=1e-9)
    assert info["reason"].startswith("low confidence 0.29 < 0.3")


def test_help_lists_only_options_that_apply(run):
    text = run("rectify", "--help").output
    assert "--mode" in text and "--padding" in text
    assert "--align-corners" not in text and "--size" not in text  # always usage errors here


def test_a_family_the_model_cannot_give_is_blamed_on_family(tmp_path, run, pages):
    r = run("rectify", str(pages / "a.png"), "-o", str(tmp_path / "o.png"), "--family", "projective")
    assert r.exit_code == 2 and "Invalid value for --family: needs a projective model" in r.stderr


def test_the_confidence_bounds_keep_records_true_to_themselves(tmp_path, run, pages):
    # --min-confidence 1 recorded "confidence": 1.0 beside "low confidence 0.99 < 1"
    r = run("rectify", str(pages / "a.png"), "-o", str(tmp_path / "o1"), "--min-confidence", "1", "--manifest", "-",
            "-q")
    rec = json.loads(r.stdout)
    assert rec["reason"].startswith("low confidence") and rec["confidence"] < 1.0
    # the help says what the padding is unless told otherwise: the page's paper colour, not zeros
    help_text = " ".join(run("rectify", "--help").output.split())
    assert "[default: (the page's paper colour)]" in help_text


def test_a_folder_given_as_dir_dot_gets_its_sibling_and_the_root_needs_o(tmp_path, run, pages):
    """``scans/.`` wrote ``scans/._rectified/`` inside the input folder; ``/`` planned ``/_rectified/``."""
    from stntool.commands.rectify import _sibling_output

    for spelled in (f"{pages}/.", f"{pages}/./", str(pages)):
        assert _sibling_output([spelled]) == f"{pages}_rectified{os.sep}", spelled
    for root in ("/", "//"):
        with pytest.raises(Exception, match="the input is the root folder"):
            _sibling_output([root])
    r = run("rectify", f"{pages}/.", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "scans_rectified")) == ["a.png", "blank.png"]
    assert sorted(os.listdir(pages)) == ["a.png", "blank.png", "sub"]


def test_min_confidence_nan_names_its_option(tmp_path, run, pages):
    r = run("rectify", str(pages), "-o", str(tmp_path / "o"), "--min-confidence", "nan")
    assert r.exit_code == 2 and "'--min-confidence': expected a number, got nan" in r.stderr, r.stderr


def test_fill_alone_pads_with_that_colour(tmp_path, run, pages):
    # --fill without --padding means --padding constant (it was a usage error: "--fill needs --padding constant")
    man = tmp_path / "r.jsonl"
    r = run("rectify", str(pages / "a.png"), "-o", str(tmp_path / "out"), "--fill", "#ff0000", "--manifest", str(man),
            "-q")
    assert r.exit_code == 0, r.stderr
    (rec,) = map(json.loads, open(man))
    assert rec["padding"] == "constant" and rec["fill"] == "#ff0000", rec


def test_no_inputs_says_so(run):
    # it asked for -o ("the default, a folder beside the input, needs exactly one input") as if inputs were given
    r = run("rectify")
    assert r.exit_code == 2 and "no inputs (give files, folders, --files-from or -)" in r.stderr, r.stderr


def test_without_output_a_list_of_inputs_says_the_default_is_for_one_argument(tmp_path, run, pages):
    # "the default ... needs exactly one input", said of a list of one input
    r = CliRunner().invoke(cli, ["rectify", "--files-from", "-"], input=str(pages / "a.png") + "\n")
    assert r.exit_code == 2 and "not for --files-from" in r.stderr, r.stderr


def test_a_file_where_the_default_folder_goes_is_one_usage_error(tmp_path, run, pages):
    """It failed every page, each on a line of its own."""
    write(tmp_path / "scans_rectified", b"notes")
    r = run("rectify", str(pages))
    assert r.exit_code == 2 and r.stderr.count("Error:") == 1
    assert f"the default output folder {pages}_rectified is a file: move it, or give -o/--output" in r.stderr
    assert (tmp_path / "scans_rectified").read_bytes() == b"notes"
