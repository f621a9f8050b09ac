"""stntool augment: names, reproducibility (seeds independent of jobs, order and batch), replay, presets, errors."""

import json
import os
import shlex

import pytest
from click.testing import CliRunner

from stntool.cli import cli
from stntool.commands.augment import variant_names

from cli_helpers import encode, small_rgb, write


@pytest.fixture
def aug():
    runner = CliRunner()

    def invoke(*args, input=None, command="augment"):
        return runner.invoke(cli, [command, *args], input=input, catch_exceptions=False)

    return invoke


def tree(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


@pytest.fixture
def inputs(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write(src / "a.png", encode(small_rgb(30, 40, 1), ".png"))
    write(src / "b.jpg", encode(small_rgb(24, 24, 2), ".jpg"))
    write(src / "sub" / "c.png", encode(small_rgb(20, 36, 3), ".png"))
    return src


FAMILIES = {
    "affine": ["--rotate", "-20:20", "--scale", "0.8:1.2", "--shear", "-5:5", "--translate", "0.1", "--hflip", "0.5"],
    "projective": ["--rotate", "-10:10", "--perspective", "0.08"],
    "tps": ["--tps", "0.05", "--tps-grid", "3"],
    "elastic": ["--rotate", "-5:5", "--elastic", "20,4", "--keep-inside"],
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_replay_through_warp_params_is_bit_exact(tmp_path, aug, inputs, family):
    out, replay, man = tmp_path / "out", tmp_path / "replay", tmp_path / "aug.jsonl"
    r = aug("-r", str(inputs), "-o", str(out), "--count", "3", "--seed", "9", "--manifest", str(man), "-q",
            *FAMILIES[family])
    assert r.exit_code == 0, r.stderr
    files = tree(out)
    assert sorted(files) == sorted(f"{stem}_{k:03d}{ext}" for stem, ext in (("a", ".png"), ("b", ".jpg"),
                                                                              (os.path.join("sub", "c"), ".png"))
                                   for k in range(3))
    lines = [json.loads(x) for x in open(man)]
    assert len(lines) == 9 and all(x["status"] == "ok" and x["seed"] == 9 for x in lines)
    assert sorted(x["variant"] for x in lines) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert {x["name"] for x in lines} == {p.replace(os.sep, "/") for p in files}
    key = {"affine": "theta", "projective": "theta", "tps": "tps", "elastic": "elastic"}[family]
    assert all(key in x for x in lines)
    r = aug("--params", str(man), "-o", str(replay), "-q", command="warp")
    assert r.exit_code == 0, r.stderr
    assert tree(replay) == files


def test_outputs_do_not_depend_on_jobs_order_or_the_other_inputs(tmp_path, aug, inputs):
    args = ["--count", "2", "--seed", "5", "--rotate", "-30:30", "--elastic", "10,3", "-q"]
    assert aug(str(inputs), "-o", str(tmp_path / "j1"), "-j", "1", *args).exit_code == 0
    assert aug(str(inputs), "-o", str(tmp_path / "j2"), "-j", "2", *args).exit_code == 0
    assert aug(str(inputs), "-o", str(tmp_path / "again"), "-j", "2", *args).exit_code == 0
    assert aug(str(inputs / "b.jpg"), str(inputs / "a.png"), "-o", str(tmp_path / "alone"), *args).exit_code == 0
    j1 = tree(tmp_path / "j1")
    assert len(j1) == 4 and j1 == tree(tmp_path / "j2") == tree(tmp_path / "again") == tree(tmp_path / "alone")
    assert aug(str(inputs), "-o", str(tmp_path / "s6"), *args[:3], "6", *args[4:]).exit_code == 0
    assert tree(tmp_path / "s6") != j1  # another seed, other variants


def test_without_seed_one_is_drawn_and_said(tmp_path, aug, inputs):
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--rotate", "-9:9", "--manifest", str(tmp_path / "m"))
    assert r.exit_code == 0
    said = [x for x in r.stderr.splitlines() if "seed" in x]
    seed = json.loads(open(tmp_path / "m").readline())["seed"]
    assert said == [f"stntool: augment seed {seed} (pass --seed {seed} to repeat this run)"]


def test_variant_names_are_zero_padded():
    assert variant_names("out/a.png", 2) == ["out/a_000.png", "out/a_001.png"]
    assert variant_names("o/x.y.jpg", 1001)[-1] == "o/x.y_1000.jpg"
    assert variant_names("o/x.jpg", 1001)[0] == "o/x_0000.jpg"


def test_show_preset_prints_flags_that_give_the_same_outputs(tmp_path, aug, inputs):
    r = aug("--show-preset", "medium")
    assert r.exit_code == 0 and r.stdout.startswith("--rotate -15:15")
    flags = shlex.split(r.stdout)
    a = aug(str(inputs), "-o", str(tmp_path / "p"), "--seed", "1", "--count", "2", "--preset", "medium", "-q")
    b = aug(str(inputs), "-o", str(tmp_path / "f"), "--seed", "1", "--count", "2", "-q", *flags)
    assert a.exit_code == b.exit_code == 0
    assert tree(tmp_path / "p") == tree(tmp_path / "f")
    doc = aug("--show-preset", "document").stdout
    assert "--padding constant --fill '#ffffff'" in doc
    assert aug("--show-preset", "nope").exit_code == 2


def test_flags_override_a_preset_and_padding_replaces_its_fill(tmp_path, aug, inputs):
    man = tmp_path / "m.jsonl"
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--preset", "document", "--rotate", "40",
            "--padding", "border", "--seed", "1", "--manifest", str(man), "-q")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(open(man).readline())
    assert rec["padding"] == "border" and "fill" not in rec
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o2"), "--preset", "document", "--seed", "1",
            "--manifest", str(man), "-q")
    rec = json.loads(open(man).readline())
    assert rec["padding"] == "constant" and rec["fill"] == "#ffffff"


@pytest.mark.parametrize("args,message", [
    (["--rotate", "5:1"], "LO must not exceed HI"),
    (["--scale", "x"], "--scale"),
    (["--elastic", "3"], "--elastic"),
    (["--elastic", "3,0"], "SIGMA > 0"),
    (["--perspective", "0.7"], "--perspective"),
    (["--fill", "#ffffff"], "--fill needs --padding constant"),
    (["--count", "0"], "--count"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, aug, inputs, args, message):
    r = aug(str(inputs), "-o", str(tmp_path / "o"), "--seed", "1", *args)
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_several_variants_cannot_go_to_stdout(tmp_path, aug, inputs):
    r = aug(str(inputs / "a.png"), "-o", "-", "--count", "2", "--seed", "1")
    assert r.exit_code == 2 and "one output image" in r.stderr
    r = aug(str(inputs / "a.png"), "-o", "-", "--seed", "1", "--rotate", "90")
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\x89PNG")


def test_a_bad_input_fails_alone_and_leaves_nothing(tmp_path, aug, inputs):
    write(inputs / "bad.png", b"\x89PNG\r\n\x1a\n broken")
    r = aug(str(inputs), "-o", str(tmp_path / "o"), "--count", "2", "--seed", "1", "--rotate", "10",
            "--manifest", str(tmp_path / "m.jsonl"))
    assert r.exit_code == 1
    errors = [x for x in r.stderr.splitlines() if "error" in x]
    assert len(errors) == 1 and "bad.png" in errors[0]
    names = sorted(tree(tmp_path / "o"))
    assert names == ["a_000.png", "a_001.png", "b_000.jpg", "b_001.jpg"]
    recs = [json.loads(x) for x in open(tmp_path / "m.jsonl")]
    assert [x["status"] for x in recs].count("error") == 1


def test_skip_existing_resumes_only_missing_variants(tmp_path, aug, inputs):
    args = [str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--count", "3", "--seed", "4", "--rotate", "-9:9", "-q"]
    assert aug(*args).exit_code == 0
    first = tree(tmp_path / "o")
    os.remove(tmp_path / "o" / "a_001.png")
    r = aug(*args, "--skip-existing", "--manifest", "-")
    assert r.exit_code == 0
    assert [json.loads(x)["status"] for x in r.stdout.splitlines()] == ["skipped", "ok", "skipped"]
    assert tree(tmp_path / "o") == first
