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


def test_a_usage_error_comes_without_the_seed_line(tmp_path, aug, inputs):
    (tmp_path / "plain").write_text("a file, not a folder")
    for bad in (["--manifest", str(tmp_path / "plain" / "m.jsonl")], ["--files-from", str(tmp_path / "missing.txt")]):
        r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--rotate", "-9:9", *bad)
        assert r.exit_code == 2 and "Error" in r.stderr and "seed" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


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
    # --fill alone means constant padding: with a preset, it keeps the preset's constant padding in its colour
    for extra in (["--preset", "document"], ["--rotate", "10"]):
        r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o3"), *extra, "--fill", "#000000", "--seed", "1",
                "--manifest", str(man), "-q", "--overwrite")
        assert r.exit_code == 0, r.stderr
        rec = json.loads(open(man).readline())
        assert rec["padding"] == "constant" and rec["fill"] == "#000000", rec


@pytest.mark.parametrize("args,message", [
    (["--rotate", "5:1"], "LO must not exceed HI"),
    (["--scale", "x"], "--scale"),
    (["--elastic", "3"], "--elastic"),
    (["--elastic", "3,0"], "SIGMA > 0"),
    (["--perspective", "0.7"], "--perspective"),
    (["--fill", "#ffffff", "--padding", "border"], "--fill needs --padding constant"),
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
    man = tmp_path / "m.jsonl"
    r = aug(str(inputs / "a.png"), "-o", "-", "--seed", "1", "--rotate", "90", "--manifest", str(man))
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\x89PNG")
    written = r.stdout_bytes
    (line,) = [json.loads(x) for x in open(man)]
    assert line["output"] == "-" and "name" not in line  # no file to name: a replay writes the input's name
    r = aug("--params", str(man), "-o", str(tmp_path / "replay"), "-q", command="warp")
    assert r.exit_code == 0 and tree(tmp_path / "replay") == {"a.png": written}


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


@pytest.mark.skipif(os.name == "nt" or os.uname().sysname == "Darwin",
                    reason="file names are bytes on Linux and BSDs; other systems refuse names that are not UTF-8")
def test_a_name_that_is_not_utf8_is_augmented_and_replayed(tmp_path, aug):
    src = tmp_path / "in"
    src.mkdir()
    name = os.fsdecode(b"x\xff\xfey.png")
    write(os.path.join(str(src), name), encode(small_rgb(20, 24, 5), ".png"))
    out, man = tmp_path / "out", tmp_path / "m.jsonl"
    r = aug(str(src), "-o", str(out), "--count", "2", "--seed", "3", "--rotate", "-9:9", "--manifest", str(man),
            "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(os.fsdecode(b"x\xff\xfey_00%d.png" % k) for k in (0, 1))
    r = aug("--params", str(man), "-o", str(tmp_path / "replay"), "-q", command="warp")
    assert r.exit_code == 0, r.stderr
    assert tree(tmp_path / "replay") == tree(out)


def test_skip_existing_resumes_only_missing_variants(tmp_path, aug, inputs):
    args = [str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--count", "3", "--seed", "4", "--rotate", "-9:9", "-q"]
    assert aug(*args).exit_code == 0
    first = tree(tmp_path / "o")
    os.remove(tmp_path / "o" / "a_001.png")
    r = aug(*args, "--skip-existing", "--manifest", "-")
    assert r.exit_code == 0
    assert [json.loads(x)["status"] for x in r.stdout.splitlines()] == ["skipped", "ok", "skipped"]
    assert tree(tmp_path / "o") == first


def dot_image(h, w, x, y, sigma=1.5):
    import numpy as np

    yy, xx = np.mgrid[0:h, 0:w]
    return np.clip(255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)), 0, 255).astype("uint8")


def centroid(img):
    import numpy as np

    a = img.astype(float)
    a = np.where(a > 0.2 * a.max(), a, 0)
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    return (a * xx).sum() / a.sum(), (a * yy).sum() / a.sum()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_json_labels_move_with_the_pixels(tmp_path, aug, family):
    """A keypoint on a rendered dot is written where the warped dot is; boxes and the manifest follow."""
    src = tmp_path / "in"
    src.mkdir()
    write(src / "dot.png", encode(dot_image(48, 64, 30.0, 20.0), ".png"))
    (src / "dot.json").write_text(json.dumps({"keypoints": [{"x": 30.0, "y": 20.0, "label": "eye"}],
                                              "boxes": [{"box": [20, 10, 40, 30], "label": "face"}]}))
    args = FAMILIES[family] if family != "elastic" else ["--elastic", "6,6"]
    r = aug(str(src), "-o", str(tmp_path / "o"), "--count", "3", "--seed", "2", "--manifest",
            str(tmp_path / "m.jsonl"), "-q", *args)
    assert r.exit_code == 0, r.stderr
    from stntool.io import decode_image

    checked = 0
    for k in range(3):
        out = decode_image(open(tmp_path / "o" / f"dot_{k:03d}.png", "rb").read())
        doc = json.loads((tmp_path / "o" / f"dot_{k:03d}.json").read_text())
        kp = doc["keypoints"][0]
        if not kp["visible"]:
            continue
        cx, cy = centroid(out)
        assert abs(cx - kp["x"]) < 0.35 and abs(cy - kp["y"]) < 0.35, (family, k, (cx, cy), kp)
        assert kp["label"] == "eye" and doc["boxes"][0]["label"] == "face"
        x0, y0, x1, y1 = doc["boxes"][0]["box"]
        assert x0 - 1 <= cx <= x1 + 1 and y0 - 1 <= cy <= y1 + 1
        checked += 1
    assert checked >= 2
    recs = [json.loads(x) for x in open(tmp_path / "m.jsonl")]
    assert [os.path.basename(x["labels"]) for x in recs] == [f"dot_{k:03d}.json" for k in range(3)]
    assert all(os.path.exists(x["labels"]) for x in recs)


def test_yolo_labels_and_masks(tmp_path, aug):
    import numpy as np

    from stntool.io import decode_image

    src, masks = tmp_path / "in", tmp_path / "masks"
    (src / "sub").mkdir(parents=True)
    (masks / "sub").mkdir(parents=True)
    img = small_rgb(40, 60, 1)
    write(src / "sub" / "a.png", encode(img, ".png"))
    (src / "sub" / "a.txt").write_text("3 0.5 0.5 0.5 0.5\n")
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 15:45] = 7
    write(masks / "sub" / "a.png", encode(mask, ".png"))
    r = aug("-r", str(src), "-o", str(tmp_path / "o"), "--count", "2", "--seed", "3", "--hflip", "1",
            "--masks", str(masks), "--mode", "nearest", "--manifest", str(tmp_path / "m.jsonl"), "-q")
    assert r.exit_code == 0, r.stderr
    for k in range(2):
        base = tmp_path / "o" / "sub" / f"a_{k:03d}"
        out = decode_image(open(f"{base}.png", "rb").read())
        assert np.array_equal(out, img[:, ::-1])
        assert np.array_equal(decode_image(open(f"{base}.mask.png", "rb").read()), mask[:, ::-1])
        cls, cx, cy, w, h = open(f"{base}.txt").read().split()
        assert cls == "3" and [float(v) for v in (cx, cy, w, h)] == pytest.approx([0.5, 0.5, 0.5, 0.5], abs=1e-6)
    recs = [json.loads(x) for x in open(tmp_path / "m.jsonl")]
    assert all(x["mask"].endswith(".mask.png") and x["labels"].endswith(".txt") for x in recs)


def test_masks_out_writes_a_mask_tree_named_as_the_images(tmp_path, aug):
    """A segmentation set's images/ and masks/ (the same stems, PNG masks), not a_000.mask.png among the images,
    which a loader globbing *.png takes for images and one pairing by stem cannot pair."""
    import numpy as np

    from stntool.io import decode_image

    src, masks = tmp_path / "images", tmp_path / "masks"
    (src / "sub").mkdir(parents=True)
    (masks / "sub").mkdir(parents=True)
    img = small_rgb(40, 60, 1)
    write(src / "sub" / "a.jpg", encode(img, ".png"))  # a .jpg name: the mask is a .png all the same
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 15:45] = 7
    write(masks / "sub" / "a.png", encode(mask, ".png"))
    r = aug("-r", str(src), "-o", str(tmp_path / "out" / "images"), "--count", "2", "--seed", "3", "--hflip", "1",
            "--masks", str(masks), "--masks-out", str(tmp_path / "out" / "masks"), "--mode", "nearest",
            "--manifest", str(tmp_path / "m.jsonl"), "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out" / "images" / "sub")) == ["a_000.jpg", "a_001.jpg"]
    assert sorted(os.listdir(tmp_path / "out" / "masks" / "sub")) == ["a_000.png", "a_001.png"]
    for k in range(2):
        got = decode_image(open(tmp_path / "out" / "masks" / "sub" / f"a_{k:03d}.png", "rb").read())
        assert np.array_equal(got, mask[:, ::-1])
    recs = [json.loads(x) for x in open(tmp_path / "m.jsonl")]
    assert [x["mask"] for x in recs] == [str(tmp_path / "out" / "masks" / "sub" / f"a_{k:03d}.png") for k in range(2)]
    for args, said in ((["--masks-out", str(tmp_path / "mo")], "--masks-out writes the masks that --masks reads"),
                       (["--masks", str(masks), "--masks-out", str(tmp_path / "o2")], "is -o: the masks would take"),
                       (["--masks", str(masks), "--masks-out", str(src / "sub" / "a.jpg")], "is a file")):
        r = aug(str(src / "sub" / "a.jpg"), "-o", str(tmp_path / "o2"), "--seed", "3", "--rotate", "5", *args)
        assert r.exit_code == 2 and said in r.stderr, r.stderr


def test_bad_sidecars_and_masks_fail_their_input_only(tmp_path, aug):
    import numpy as np

    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    for name in ("good", "badjson", "badmask", "nomask"):
        write(src / f"{name}.png", encode(small_rgb(20, 30), ".png"))
    for name in ("good", "badjson"):
        write(masks / f"{name}.png", encode(np.zeros((20, 30), np.uint8), ".png"))
    write(masks / "badmask.png", encode(np.zeros((21, 30), np.uint8), ".png"))
    (src / "badjson.json").write_text('{"keypoints": [[1, "x"]]}')
    r = aug(str(src), "-o", str(tmp_path / "o"), "--count", "2", "--seed", "1", "--masks", str(masks))
    assert r.exit_code == 1
    errors = sorted(x for x in r.stderr.splitlines() if x.startswith("stntool: error"))
    assert len(errors) == 3, r.stderr
    assert "badjson.json" in errors[0] and "not a number" in errors[0]
    assert "badmask.png" in errors[1] and "mask is 30x21 but the image is 30x20" in errors[1]
    assert "nomask.png" in errors[2] and "no mask" in errors[2]
    assert sorted(os.listdir(tmp_path / "o")) == ["good_000.mask.png", "good_000.png", "good_001.mask.png",
                                                  "good_001.png"]


def test_inputs_sharing_a_base_name_cannot_share_their_label_files(tmp_path, aug):
    src, out = tmp_path / "in", tmp_path / "o"
    src.mkdir()
    write(src / "a.png", encode(small_rgb(30, 40, 1), ".png"))
    write(src / "a.jpg", encode(small_rgb(60, 80, 2), ".jpg"))
    (src / "a.json").write_text('{"keypoints": [[5, 5]]}')
    for extra in ([], ["--overwrite"]):  # never one label file for both, even when overwriting is allowed
        r = aug(str(src), "-o", str(out), "--seed", "0", "--rotate", "-10:10", "--manifest", str(tmp_path / "m.jsonl"),
                *extra)
        assert r.exit_code == 1
        errors = [x for x in r.stderr.splitlines() if x.startswith("stntool: error")]
        assert errors == [f"stntool: error: {src / 'a.png'}: output {out / 'a_000.json'} would also be written by "
                          f"{src / 'a.jpg'}"], r.stderr
        assert sorted(os.listdir(out)) == ["a_000.jpg", "a_000.json"]
        assert json.load(open(out / "a_000.json"))["size"] == [80, 60]  # a.jpg's


def test_a_label_file_left_by_a_stopped_run_fails_its_input_before_anything_is_written(tmp_path, aug):
    src, out = tmp_path / "in", tmp_path / "o"
    src.mkdir()
    out.mkdir()
    write(src / "b.png", encode(small_rgb(30, 40, 1), ".png"))
    (src / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (out / "b_001.txt").write_text("left over\n")
    r = aug(str(src), "-o", str(out), "--seed", "0", "--count", "3", "--rotate", "5")
    assert r.exit_code == 1
    assert f"{out / 'b_001.png'}: {out / 'b_001.txt'}, written beside it, exists (use --overwrite or --skip-existing)" \
        in r.stderr
    assert os.listdir(out) == ["b_001.txt"]  # no variant written before the refusal
    r = aug(str(src), "-o", str(out), "--seed", "0", "--count", "3", "--rotate", "5", "--skip-existing", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(out)) == [f"b_{k:03d}{e}" for k in range(3) for e in (".png", ".txt")]
    assert (out / "b_001.txt").read_text() != "left over\n"


def test_palette_masks_keep_their_indices_and_their_palette(tmp_path, aug):
    import numpy as np
    from PIL import Image

    from stntool.labels import warp_mask
    from stntool.records import WarpSpec

    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    write(src / "a.png", encode(small_rgb(30, 40, 1), ".png"))
    ids = np.zeros((30, 40), np.uint8)
    ids[5:15, 10:30], ids[20:25, 5:10], ids[22:28, 25:35] = 1, 2, 3
    # indices 1 and 3 share a colour and the palette is padded with black (as Pillow and VOC tools write it):
    # only the indices tell the classes apart
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 0, 0] + [0] * (3 * 252)
    im = Image.fromarray(ids, "P")
    im.putpalette(palette)
    im.save(masks / "a.png")
    r = aug(str(src), "-o", str(tmp_path / "o"), "--seed", "4", "--count", "2", "--rotate", "-20:20",
            "--masks", str(masks), "--manifest", str(tmp_path / "m.jsonl"), "-q")
    assert r.exit_code == 0, r.stderr
    for k, rec in enumerate(json.loads(x) for x in open(tmp_path / "m.jsonl")):
        got = Image.open(tmp_path / "o" / f"a_{k:03d}.mask.png")
        assert got.mode == "P" and got.getpalette()[:12] == palette[:12]
        want = warp_mask(ids, WarpSpec.from_record(rec), image_hw=(30, 40))
        assert np.array_equal(np.array(got), want) and set(np.unique(want)) == {0, 1, 2, 3}


def test_a_masks_folder_that_does_not_exist_is_a_usage_error(tmp_path, aug, inputs):
    r = aug(str(inputs), "-o", str(tmp_path / "o"), "--seed", "0", "--masks", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "does not exist" in r.stderr and not (tmp_path / "o").exists()


def test_labels_on_the_border_survive_a_resize(tmp_path, aug):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "a.png", encode(small_rgb(48, 64, 1), ".png"))
    (src / "a.json").write_text('{"keypoints": [[63.5, 47.5], [-0.5, -0.5]], "boxes": [[-0.5, -0.5, 63.5, 47.5]]}')
    write(src / "b.png", encode(small_rgb(48, 64, 2), ".png"))
    (src / "b.txt").write_text("0 0.5 0.5 1 1\n")
    r = aug(str(src), "-o", str(tmp_path / "o"), "--seed", "0", "--size", "30x20", "--min-visibility", "1", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.load(open(tmp_path / "o" / "a_000.json"))
    assert [(p["x"], p["y"], p["visible"]) for p in doc["keypoints"]] == [(29.5, 19.5, True), (-0.5, -0.5, True)]
    assert [b["box"] for b in doc["boxes"]] == [[-0.5, -0.5, 29.5, 19.5]]
    assert (tmp_path / "o" / "b_000.txt").read_text().split() == ["0", "0.500000", "0.500000", "1.000000", "1.000000"]


def test_a_text_file_beside_a_scan_that_is_not_yolo_is_left_out_or_named(tmp_path, aug):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("scan", "line"):
        write(src / f"{name}.png", encode(small_rgb(30, 40, 1), ".png"))
    # OCR transcripts, found by their names: words are no YOLO boxes, so they are left out, said once (every input
    # of an OCR set failed: "line 1: expected 5 values")
    (src / "scan.txt").write_text("The quick brown fox\nTotal amount due this month\n")
    (src / "line.txt").write_text("Total amount due this month\n")  # five words
    r = aug(str(src), "-o", str(tmp_path / "o"), "--seed", "0", "--rotate", "3")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.count("holds words, not YOLO boxes") == 1 and "--labels yolo" in r.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["line_000.png", "scan_000.png"]
    # numbers in the wrong layout, or five fields with a class name, may be broken labels: an error, with the way to
    # leave the file alone
    (src / "scan.txt").write_text("0 0.5 0.5 0.2\n")
    r = aug(str(src), "-o", str(tmp_path / "o1"), "--seed", "0", "--rotate", "3")
    assert r.exit_code == 1
    assert "scan.txt: line 1: expected 5 values" in r.stderr and "pass --labels none" in r.stderr
    (src / "scan.txt").write_text("person 0.5 0.5 0.2 0.2\n")
    r = aug(str(src), "-o", str(tmp_path / "o4"), "--seed", "0", "--rotate", "3")
    assert r.exit_code == 1 and "class 'person' is not a whole number" in r.stderr
    # labels written with a byte-order mark are labels
    (src / "scan.txt").write_bytes(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n")
    r = aug(str(src), "-o", str(tmp_path / "o5"), "--seed", "0", "--rotate", "3", "-q")
    assert r.exit_code == 0 and (tmp_path / "o5" / "scan_000.txt").exists(), r.stderr
    r = aug(str(src), "-o", str(tmp_path / "o3"), "--seed", "0", "--rotate", "3", "--labels", "none", "-q")
    assert r.exit_code == 0 and sorted(os.listdir(tmp_path / "o3")) == ["line_000.png", "scan_000.png"]
    r = aug(str(src), "-o", str(tmp_path / "o2"), "--seed", "0", "--labels", "yolo")  # asked for: read, no hint
    assert r.exit_code == 1 and "--labels none" not in r.stderr
    assert "line.txt: line 1: class 'Total' is not a whole number" in r.stderr


def test_keep_inside_checks_warp_only_once_the_batch_counts_compiles(tmp_path, aug, inputs, monkeypatch):
    """A field's keep-inside check warps a white image: never before the batch runs (its first compile would be
    neither announced nor left out of the summary's rate)."""
    import stntool.augment
    import stntool.batch

    started, early = [], []
    run_batch, shows = stntool.batch.run_batch, stntool.augment._shows_no_padding

    def counting_run_batch(*args, **kwargs):
        started.append(True)
        return run_batch(*args, **kwargs)

    def watched(*args):
        if not started:
            early.append(args)
        return shows(*args)

    monkeypatch.setattr(stntool.batch, "run_batch", counting_run_batch)
    monkeypatch.setattr(stntool.augment, "_shows_no_padding", watched)
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--seed", "1", "--elastic", "20,4", "--keep-inside",
            "-q")
    assert r.exit_code == 0 and started and not early


@pytest.mark.parametrize("ignore", [False, True])
def test_a_tiff_mask_turns_with_its_tiff_image(tmp_path, aug, ignore):
    """A TIFF's orientation tag turns the image unless --ignore-orientation; its mask must be read the same way
    (read always as stored, a mask of a turned non-square image was refused as the wrong size, and a square one
    came out misaligned)."""
    import io

    import numpy as np
    from PIL import Image

    from stntool.io import apply_orientation, decode_image

    def tiff(arr):
        exif = Image.Exif()
        exif[0x0112] = 6
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "TIFF", exif=exif.tobytes())
        return buf.getvalue()

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (8, 12), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    write(tmp_path / "in" / "a.tif", tiff(img))
    write(tmp_path / "masks" / "a.tif", tiff(mask))
    r = aug(str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--seed", "1", "--rotate", "0", "--masks",
            str(tmp_path / "masks"), "--mode", "nearest", *(["--ignore-orientation"] if ignore else []), "-q")
    assert r.exit_code == 0, r.stderr
    out = decode_image(open(tmp_path / "o" / "a_000.tif", "rb").read())
    got = decode_image(open(tmp_path / "o" / "a_000.mask.png", "rb").read())
    turn = 1 if ignore else 6
    assert np.array_equal(out, apply_orientation(img[..., ::-1], turn))
    assert np.array_equal(got, apply_orientation(mask, turn))


@pytest.mark.parametrize("args, msg", [(["--min-visibility", "nan"], "--min-visibility': expected a number, got nan"),
                                       (["--preview", "sheet.txt"], "cannot write '.txt' files"),
                                       (["--preview", "sheet.png.bogus"], "cannot write '.bogus' files"),
                                       (["--preview", ""], "is empty (an unset shell variable?)"),
                                       (["--preview", "IN/a.png/sheet.png"], "a.png is a file, not a folder"),
                                       (["--preview", "/proc/sheet.png"], "cannot create a file in /proc")])
def test_options_refused_before_any_work(tmp_path, aug, inputs, args, msg):
    """--min-visibility nan failed only the inputs with labels (exit 1), a preview name OpenCV cannot write failed
    after the whole batch was written, and an empty one was ignored."""
    args = [a.replace("IN", str(inputs)) for a in args]  # a sheet where a folder is wanted and a file is
    r = aug(str(inputs), "-o", str(tmp_path / "o"), "--seed", "1", *args)
    assert r.exit_code == 2 and msg in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_no_range_says_every_variant_is_its_input(tmp_path, aug, inputs):
    # it wrote identical copies without a word
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--count", "2", "--seed", "1")
    assert r.exit_code == 0 and r.stderr.count("every variant is its input unchanged") == 1, r.stderr
    for args in (["--rotate", "5"], ["--preset", "light"], ["--hflip", "0.5"], ["--size", "8x8"]):
        r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "p"), "--count", "2", "--seed", "1", "--overwrite", *args)
        assert r.exit_code == 0 and "unchanged" not in r.stderr, (args, r.stderr)
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "q"), "--count", "2", "--seed", "1", "-q")
    assert r.exit_code == 0 and r.stderr == "", r.stderr  # --quiet drops the warnings, this one too


@pytest.mark.parametrize("args, line", [
    (["--rotate", "abc"], "Error: Invalid value for '--rotate': value 1 ('abc') is not a number"),
    (["--scale", "0"], "Error: --scale must be between 1e-06 and 1e+06, got 0"),  # said "got 0:0"
    (["--elastic", "3"], "Error: Invalid value for '--elastic': ALPHA,SIGMA: expected 2 numbers, got 1"),
])
def test_range_errors_name_the_option_once_and_the_value_as_given(tmp_path, aug, inputs, args, line):
    r = aug(str(inputs), "-o", str(tmp_path / "o"), "--seed", "1", *args)
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1] == line, r.stderr


def test_the_preview_draws_the_labels(tmp_path, aug):
    # the sheet drew the grid only
    import cv2
    import numpy as np

    src = tmp_path / "in"
    src.mkdir()
    write(src / "a.png", encode(np.full((60, 80, 3), 128, np.uint8), ".png"))
    (src / "a.json").write_text(json.dumps({"boxes": [{"box": [9.5, 9.5, 49.5, 39.5]}],
                                            "keypoints": [{"x": 60, "y": 30}]}))
    sheet = tmp_path / "sheet.png"
    r = aug(str(src), "-o", str(tmp_path / "o"), "--count", "2", "--seed", "1", "--rotate", "-20:20",
            "--preview", str(sheet), "-q")
    assert r.exit_code == 0, r.stderr
    img = cv2.imread(str(sheet)).astype(int)
    green = (img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80)  # the boxes (0, 200, 0)
    cyan = (img[..., 0] > 200) & (img[..., 1] > 200) & (img[..., 2] < 80)  # the keypoints (255, 255, 0)
    tile = img.shape[1] // 3
    for c in range(3):  # the input and its two variants
        assert green[:, c * tile:(c + 1) * tile].sum() > 40 and cyan[:, c * tile:(c + 1) * tile].any(), c


def yolo_dataset(root, boxes: dict, hw):
    """A YOLO dataset's layout under ``root``: ``images/REL.png`` (an RGB image of ``hw``) and ``labels/REL.txt``
    (the line ``boxes[REL]``) for each relative name."""
    for rel, box in boxes.items():
        for kind in ("images", "labels"):
            (root / kind / rel).parent.mkdir(parents=True, exist_ok=True)
        write(root / "images" / f"{rel}.png", encode(small_rgb(*hw), ".png"))
        (root / "labels" / f"{rel}.txt").write_text(box + "\n")
    return root


def test_labels_from_and_to_folders_of_their_own(tmp_path, aug):
    # a YOLO dataset keeps images/ and labels/ apart: --labels-dir reads them by relative path, --labels-out writes
    # each variant's beside its name there; the labels are those of the same run with the files side by side
    import shutil

    ds = yolo_dataset(tmp_path / "ds", {"a": "0 0.4 0.4 0.3 0.5", "sub/b": "1 0.5 0.5 0.2 0.2"}, (30, 40))
    args = ("--count", "2", "--seed", "4", "--rotate", "-20:20", "-q")
    r = aug(str(ds / "images"), "-r", "-o", str(tmp_path / "aug" / "images"), "--labels-dir", str(ds / "labels"),
            "--labels-out", str(tmp_path / "aug" / "labels"), "--manifest", str(tmp_path / "m.jsonl"), *args)
    assert r.exit_code == 0, r.stderr
    got = sorted(str(p.relative_to(tmp_path / "aug")) for p in (tmp_path / "aug").rglob("*") if p.is_file())
    assert got == [f"{kind}/{rel}_{k:03d}.{ext}" for kind, ext in (("images", "png"), ("labels", "txt"))
                   for rel in ("a", "sub/b") for k in range(2)]
    recs = [json.loads(line) for line in open(tmp_path / "m.jsonl")]
    assert [rec["labels"] for rec in recs] == [str(tmp_path / "aug" / "labels" / f"{rel}_{k:03d}.txt")
                                               for rel in ("a", "sub/b") for k in range(2)]
    side = tmp_path / "side"  # the same files beside each other
    shutil.copytree(ds / "images", side)
    for rel in ("a", "sub/b"):
        shutil.copy(ds / "labels" / f"{rel}.txt", side / f"{rel}.txt")
    r = aug(str(side), "-r", "-o", str(tmp_path / "o"), *args)
    assert r.exit_code == 0, r.stderr
    for rel in ("a", "sub/b"):
        for k in range(2):
            name, out = f"{rel}_{k:03d}", tmp_path / "aug"
            assert (out / "labels" / f"{name}.txt").read_text() == (tmp_path / "o" / f"{name}.txt").read_text()
            assert (out / "images" / f"{name}.png").read_bytes() == (tmp_path / "o" / f"{name}.png").read_bytes()
    r = aug(str(ds / "images"), "-o", str(tmp_path / "x"), "--labels", "none", "--labels-dir", str(ds / "labels"))
    assert r.exit_code == 2 and "not --labels none" in r.stderr


def test_a_variants_label_file_never_replaces_a_label_file_read_with_an_input(tmp_path, aug):
    # a.png's first variant's labels (a_000.txt) would replace a_000.png's own labels, which were read with it: with
    # --skip-existing or --overwrite they did (its class 1 became a.png's class 0)
    ds = yolo_dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2", "a_000": "1 0.3 0.3 0.1 0.1"}, (20, 30))
    for flag in ("--skip-existing", "--overwrite"):
        r = aug(str(ds / "images"), "-o", str(tmp_path / "out"), "--labels-dir", str(ds / "labels"), "--labels-out",
                str(ds / "labels"), "--seed", "1", "--rotate", "10", flag)
        assert r.exit_code == 1, r.stderr
        assert f"a.png: refusing to write onto {ds / 'labels' / 'a_000.txt'}, a file read with an input" in r.stderr
        assert (ds / "labels" / "a_000.txt").read_text() == "1 0.3 0.3 0.1 0.1\n"
        assert (tmp_path / "out" / "a_000_000.png").exists() and not (tmp_path / "out" / "a_000.png").exists()
    # beside the images, the same
    side = tmp_path / "side"
    side.mkdir()
    write(side / "a.png", encode(small_rgb(20, 30), ".png"))
    write(side / "a_000.jpg", encode(small_rgb(20, 30), ".jpg"))
    (side / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (side / "a_000.txt").write_text("1 0.3 0.3 0.1 0.1\n")
    r = aug(str(side), "-o", str(side), "--seed", "1", "--rotate", "10", "--skip-existing")
    assert r.exit_code == 1 and "a file read with an input" in r.stderr, r.stderr
    assert (side / "a_000.txt").read_text() == "1 0.3 0.3 0.1 0.1\n"


def test_an_input_without_a_label_file_in_the_labels_folder_is_said_once(tmp_path, aug):
    # a list's entries keep their whole path: DIR/ds/images/a.txt was looked for, and nothing said so
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b", "c"):
        write(tmp_path / "images" / f"{name}.png", encode(small_rgb(20, 30), ".png"))
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    r = aug(str(tmp_path / "images"), "-o", str(tmp_path / "o"), "--labels-dir", str(tmp_path / "labels"), "--seed",
            "1", "--rotate", "5", "-q")
    assert r.exit_code == 0 and r.stderr.count("no label file in --labels-dir") == 1, r.stderr
    # said once for all of them, before the batch, even with --quiet (each variant goes out unlabelled)
    assert (f"2 of 3 inputs have no label file in --labels-dir (for {tmp_path / 'images' / 'b.png'} it looked for "
            f"{tmp_path / 'labels' / 'b.json'} or {tmp_path / 'labels' / 'b.txt'}); their variants have none"
            in r.stderr), r.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["a_000.png", "a_000.txt", "b_000.png", "c_000.png"]


def test_label_folders_that_cannot_serve_are_usage_errors(tmp_path, aug, inputs):
    (tmp_path / "labels").mkdir()
    (tmp_path / "afile").write_text("")
    for args, message in ((["-o", "-", "--labels-dir", str(tmp_path / "labels")], "not -o -"),
                          (["-o", "-", "--labels-out", str(tmp_path / "labels")], "not -o -"),
                          (["-o", str(tmp_path / "o"), "--labels-out", str(tmp_path / "afile")], "is a file"),
                          (["-o", str(tmp_path / "o"), "--labels", "none", "--labels-dir", str(tmp_path / "labels")],
                           "not --labels none")):
        r = aug(str(inputs / "a.png"), *args, "--seed", "1", "--rotate", "5")
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)
        assert not (tmp_path / "o").exists()


def test_a_mask_is_the_one_found_as_the_batch_was_planned(tmp_path, aug):
    # b.png's variant b_000.png, written into the masks folder, was read later as b_000.jpg's mask (.png first)
    import numpy as np

    from stntool.io import read_image

    (tmp_path / "in").mkdir()
    masks = tmp_path / "masks"
    masks.mkdir()
    write(tmp_path / "in" / "b.png", encode(small_rgb(24, 32), ".png"))
    write(tmp_path / "in" / "b_000.jpg", encode(small_rgb(24, 32), ".jpg"))
    write(masks / "b.png", encode(np.full((24, 32), 1, np.uint8), ".png"))
    write(masks / "b_000.jpg", encode(np.full((24, 32), 2, np.uint8), ".jpg"))
    r = aug(str(tmp_path / "in"), "-o", str(masks), "--masks", str(masks), "--rotate", "5", "--seed", "1", "-j", "1",
            "-q")
    assert r.exit_code == 0, r.stderr
    got = read_image(str(masks / "b_000_000.mask.png"))[0]
    assert got.shape == (24, 32) and set(np.unique(got)) <= {0, 2}


def test_a_yolo_file_with_a_bad_line_or_a_header_fails_its_input(tmp_path, aug):
    # one box in a file makes it labels: a bad line or a header fails the input (they were left out as words)
    src = tmp_path / "in"
    src.mkdir()
    for name, text in (("a", "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1,\n"), ("b", "class x y w h\n0 0.5 0.5 0.2 0.2\n")):
        write(src / f"{name}.png", encode(small_rgb(20, 30), ".png"))
        (src / f"{name}.txt").write_text(text)
    r = aug(str(src), "-o", str(tmp_path / "o"), "--rotate", "5", "--seed", "1")
    assert r.exit_code == 1 and "holds words" not in r.stderr, r.stderr
    assert "a.txt: line 2: h '0.1,' is not a number" in r.stderr and "b.txt: line 1:" in r.stderr


def test_the_words_check_reads_a_long_file_with_a_byte_order_mark_as_labels(tmp_path):
    from stntool.commands.augment import _holds_words

    line = b"0 5.000000000000000000e-01 5.000000000000000000e-01 2.0e-01 2.0e-01\n"
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + line * 2000)  # cut inside a number at 64 KB
    assert not _holds_words(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfTotal amount due this month\r\n\r\n")
    assert _holds_words(tmp_path / "b.txt")
    (tmp_path / "c.txt").write_text("Invoice\n2019 2020 2021 2022 2023\n")  # numbers, but no YOLO box
    assert _holds_words(tmp_path / "c.txt")
    (tmp_path / "d.txt").write_text("0 0.5 0.5 0.2 0.2 0.1 0.1 2\nnotes\n")  # a pose line, and a word
    assert not _holds_words(tmp_path / "d.txt")


def test_the_labels_dir_warning_names_an_input_that_is_there(tmp_path, aug):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("b", "c"):
        write(tmp_path / "images" / f"{name}.png", encode(small_rgb(20, 30), ".png"))
    (tmp_path / "labels" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    r = aug(str(tmp_path / "images" / "nope.png"), str(tmp_path / "images" / "b.png"),
            str(tmp_path / "images" / "c.png"), "-o", str(tmp_path / "o"), "--labels-dir", str(tmp_path / "labels"),
            "--rotate", "5", "--seed", "1", "-q")
    assert r.exit_code == 1 and "nope.png: no such file" in r.stderr
    assert f"1 of 2 inputs have no label file in --labels-dir (for {tmp_path / 'images' / 'b.png'} it" in r.stderr


def test_a_labels_dir_where_no_input_finds_its_label_file_is_a_usage_error(tmp_path, aug):
    """``--labels-dir ds/labels`` for ``ds/images/val`` looks for ds/labels/a.txt, not ds/labels/val/a.txt: every
    label was lost, exit 0, with one warning."""
    (tmp_path / "ds" / "images" / "val").mkdir(parents=True)
    (tmp_path / "ds" / "labels" / "val").mkdir(parents=True)
    for name in ("a", "b"):
        write(tmp_path / "ds" / "images" / "val" / f"{name}.png", encode(small_rgb(20, 30), ".png"))
        (tmp_path / "ds" / "labels" / "val" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    r = aug(str(tmp_path / "ds" / "images" / "val"), "-o", str(tmp_path / "o"), "--labels-dir",
            str(tmp_path / "ds" / "labels"), "--rotate", "5", "--seed", "1")
    assert r.exit_code == 2 and "Invalid value for --labels-dir: no input has a label file in " in r.stderr
    assert f"it looked for {tmp_path / 'ds' / 'labels' / 'a.json'} or" in r.stderr and not (tmp_path / "o").exists()
    r = aug(str(tmp_path / "ds" / "images" / "val"), "-o", str(tmp_path / "o"), "--labels-dir",
            str(tmp_path / "ds" / "labels" / "val"), "--rotate", "5", "--seed", "1", "-q")
    assert r.exit_code == 0 and sorted(os.listdir(tmp_path / "o")) == ["a_000.png", "a_000.txt", "b_000.png",
                                                                       "b_000.txt"]
    # background images (YOLO gives them no label file): one alone, or a batch where the folder has no labels
    r = aug(str(tmp_path / "ds" / "images" / "val" / "a.png"), "-o", str(tmp_path / "o1"), "--labels-dir",
            str(tmp_path / "ds" / "labels"), "--rotate", "5", "--seed", "1")
    assert r.exit_code == 0 and "1 of 1 inputs have no label file in --labels-dir" in r.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "classes.txt").write_text("cat\ndog\n")  # a dataset's class names: no input's labels
    r = aug(str(tmp_path / "ds" / "images" / "val"), "-o", str(tmp_path / "o2"), "--labels-dir",
            str(tmp_path / "empty"), "--rotate", "5", "--seed", "1")
    assert r.exit_code == 0 and "2 of 2 inputs have no label file in --labels-dir" in r.stderr


def test_the_labels_dir_warning_is_said_once_between_threads_and_not_for_stdin_or_words(tmp_path, aug):
    import io

    (tmp_path / "in").mkdir()
    (tmp_path / "labels").mkdir()
    for k in range(8):
        write(tmp_path / "in" / f"i{k}.png", encode(small_rgb(20, 30), ".png"))
    (tmp_path / "labels" / "i7.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    r = aug(str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--labels-dir", str(tmp_path / "labels"), "--rotate",
            "5", "--seed", "1", "-j", "4", "-q")
    assert r.exit_code == 0 and r.stderr.count("no label file in --labels-dir") == 1, r.stderr  # once per thread
    (tmp_path / "labels" / "i7.txt").unlink()
    (tmp_path / "labels" / "stdin.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "i0.txt").write_text("Hello world\n")  # words: its own note, not "no label file"
    runner_input = io.BytesIO(encode(small_rgb(20, 30), ".png"))
    from click.testing import CliRunner

    from stntool.cli import cli

    res = CliRunner().invoke(cli, ["augment", "-", "-o", str(tmp_path / "o2"), "--labels-dir", str(tmp_path / "labels"),
                                   "--rotate", "5", "--seed", "1", "-q"], input=runner_input)
    assert res.exit_code == 0 and "no label file" not in res.stderr, res.stderr
    r = aug(str(tmp_path / "in" / "i0.png"), "-o", str(tmp_path / "o3"), "--labels-dir", str(tmp_path / "labels"),
            "--rotate", "5", "--seed", "1", "-q")
    assert r.exit_code == 0 and "holds words" in r.stderr and "no label file" not in r.stderr, r.stderr


def test_one_file_named_twice_has_the_mask_of_each_relative_path(tmp_path, aug):
    import numpy as np

    from stntool.io import read_image

    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "masks" / "sub").mkdir(parents=True)
    write(tmp_path / "in" / "sub" / "a.png", encode(small_rgb(20, 30), ".png"))
    write(tmp_path / "masks" / "sub" / "a.png", encode(np.full((20, 30), 1, np.uint8), ".png"))
    write(tmp_path / "masks" / "a.png", encode(np.full((20, 30), 2, np.uint8), ".png"))
    r = aug("-r", str(tmp_path / "in"), str(tmp_path / "in" / "sub" / "a.png"), "-o", str(tmp_path / "out"), "--masks",
            str(tmp_path / "masks"), "--seed", "1", "--rotate", "3", "-j", "1", "-q")
    assert r.exit_code == 0, r.stderr
    assert set(np.unique(read_image(str(tmp_path / "out" / "a_000.mask.png"))[0])) <= {0, 2}
    assert set(np.unique(read_image(str(tmp_path / "out" / "sub" / "a_000.mask.png"))[0])) <= {0, 1}


def test_labels_of_a_photo_before_its_orientation_tag_say_how_to_read_them(tmp_path, aug):
    # a JSON sidecar sized for a JPEG's stored pixels (its EXIF turns them a quarter): the error said to pass
    # --labels none, as if the file were not labels
    import io

    import numpy as np
    from PIL import Image

    pil = Image.fromarray(np.zeros((24, 32, 3), np.uint8))
    exif = pil.getexif()
    exif[0x0112] = 6  # shown turned a quarter: 24 wide, 32 high
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif)
    write(tmp_path / "p.jpg", buf.getvalue())
    (tmp_path / "p.json").write_text(json.dumps({"size": [32, 24], "keypoints": [{"x": 3, "y": 4}]}))
    r = aug(str(tmp_path / "p.jpg"), "-o", str(tmp_path / "out"), "--count", "1", "--rotate", "5")
    assert r.exit_code == 1
    assert ("labels are for a 32x24 image but the image is 24x32 (labels of the file's stored pixels, before its "
            "orientation tag turned them a quarter? --ignore-orientation reads those)") in r.stderr
    assert "--labels none" not in r.stderr
    r = aug(str(tmp_path / "p.jpg"), "-o", str(tmp_path / "out2"), "--count", "1", "--rotate", "5",
            "--ignore-orientation", "-q")
    assert r.exit_code == 0, r.stderr
    # the hint only where an orientation tag turned the picture: not for a PNG, nor with --ignore-orientation
    write(tmp_path / "q.png", encode(np.zeros((32, 24, 3), np.uint8), ".png"))
    (tmp_path / "q.json").write_text(json.dumps({"size": [32, 24]}))
    (tmp_path / "p.json").write_text(json.dumps({"size": [24, 32]}))
    for args in (["q.png"], ["p.jpg", "--ignore-orientation"]):
        r = aug(str(tmp_path / args[0]), *args[1:], "-o", str(tmp_path / "out3"), "--count", "1", "--rotate", "5")
        assert r.exit_code == 1 and "labels are for a" in r.stderr
        assert "orientation tag" not in r.stderr and "--labels none" not in r.stderr, r.stderr


def test_a_gray_mask_with_a_transparent_level_stays_one_channel_of_classes(tmp_path, aug):
    # a class-id mask saved with PIL's transparency=0 gained an alpha channel (gray PNGs' tRNS read as alpha)
    import io

    import numpy as np
    from PIL import Image

    from stntool.io import decode_image

    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    write(tmp_path / "in" / "a.png", encode(small_rgb(20, 30, 1), ".png"))
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 3
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "PNG", transparency=0)
    write(tmp_path / "masks" / "a.png", buf.getvalue())
    assert decode_image(buf.getvalue()).shape == (20, 30, 2)  # as an image: gray and alpha
    r = aug(str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--count", "1", "--hflip", "1",
            "--masks", str(tmp_path / "masks"), "--mode", "nearest", "-q")
    assert r.exit_code == 0, r.stderr
    out = decode_image((tmp_path / "o" / "a_000.mask.png").read_bytes())
    assert out.shape == (20, 30) and np.array_equal(out, mask[:, ::-1])


def test_a_perspective_whose_corners_can_cross_is_warned_of(tmp_path, aug, inputs):
    # from 0.25 on a draw can fold the image through its horizon: a mirrored part showed without a word
    r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "o"), "--count", "1", "--seed", "1", "--perspective", "0.3")
    assert r.exit_code == 0 and r.stderr.count("can fold the image through its horizon") == 1, r.stderr
    for args in (["--perspective", "0.2"], ["--perspective", "0.3", "-q"]):
        r = aug(str(inputs / "a.png"), "-o", str(tmp_path / "p"), "--count", "1", "--seed", "1", "--overwrite", *args)
        assert r.exit_code == 0 and "horizon" not in r.stderr, (args, r.stderr)


def test_a_mask_is_found_whatever_the_letter_case_of_its_extension(tmp_path, aug):
    # inputs are recognised by their extension in any case (IMG_1.JPG); their masks were looked for in lower case
    # only, so IMG_1.PNG beside them failed the input with "no mask for this input"
    import numpy as np

    from stntool.io import read_image

    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    write(tmp_path / "in" / "IMG_1.JPG", encode(small_rgb(20, 30), ".jpg"))
    write(tmp_path / "in" / "b.png", encode(small_rgb(20, 30), ".png"))
    write(tmp_path / "masks" / "IMG_1.PNG", encode(np.full((20, 30), 3, np.uint8), ".png"))
    write(tmp_path / "masks" / "b.Tif", encode(np.full((20, 30), 4, np.uint8), ".tif"))
    write(tmp_path / "masks" / "b.bmp", encode(np.full((20, 30), 5, np.uint8), ".bmp"))  # .bmp ranks before .tif
    r = aug(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--masks", str(tmp_path / "masks"), "--seed", "1",
            "--rotate", "3", "-j", "1", "-q")
    assert r.exit_code == 0, r.stderr
    assert set(np.unique(read_image(str(tmp_path / "out" / "IMG_1_000.mask.png"))[0])) <= {0, 3}
    assert set(np.unique(read_image(str(tmp_path / "out" / "b_000.mask.png"))[0])) <= {0, 5}
    # label files likewise: IMG_1.JSON beside IMG_1.JPG, b.TXT (YOLO) beside b.png
    (tmp_path / "in" / "IMG_1.JSON").write_text(json.dumps({"keypoints": [[15, 10]]}))
    (tmp_path / "in" / "b.TXT").write_text("0 0.5 0.5 0.2 0.2\n")
    r = aug(str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--seed", "1", "--rotate", "3", "-j", "1", "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "out2" / "IMG_1_000.json").read_text())["keypoints"]
    assert (tmp_path / "out2" / "b_000.txt").read_text().startswith("0 ")


def test_yolo_boxes_with_comments_or_commas_are_labels_that_fail_not_words_left_out(tmp_path, aug):
    from stntool.commands.augment import _holds_words

    (tmp_path / "c.txt").write_text("0 0.5 0.5 0.2 0.2 # car\n")
    (tmp_path / "a.txt").write_text("0,0.5,0.5,0.2,0.2\n")
    (tmp_path / "s.txt").write_text("0; 0.5; 0.5; 0.2; 0.2\n")
    (tmp_path / "t.txt").write_text("Total due: 1,234.50\nThank you\n")  # a receipt's words, a number with a comma
    assert not _holds_words(tmp_path / "c.txt") and not _holds_words(tmp_path / "a.txt")
    assert not _holds_words(tmp_path / "s.txt") and _holds_words(tmp_path / "t.txt")
    src = tmp_path / "in"
    src.mkdir()
    for name, text in (("c", "0 0.5 0.5 0.2 0.2 # car\n"), ("a", "0,0.5,0.5,0.2,0.2\n")):
        write(src / f"{name}.png", encode(small_rgb(20, 30), ".png"))
        (src / f"{name}.txt").write_text(text)
    r = aug(str(src), "-o", str(tmp_path / "o"), "--rotate", "5", "--seed", "1", "-q")
    assert r.exit_code == 1 and "holds words" not in r.stderr, r.stderr
    assert "a.txt: line 1:" in r.stderr and "c.txt: line 1:" in r.stderr
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []
