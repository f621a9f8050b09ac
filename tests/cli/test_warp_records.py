"""Output naming of explicit files, and --params replay of the records warp writes (and of named records,
several per input, as other commands write them)."""

import json
import os

import numpy as np

import stntool
from stntool.io import decode_image

from cli_helpers import SHIFT, encode, small_rgb, write


def read(path):
    return decode_image(open(path, "rb").read())


def test_explicit_files_map_to_base_names_folders_and_lists_mirror(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("good/deep")
    write(tmp_path / "good" / "a.png", encode(small_rgb(), ".png"))
    write(tmp_path / "good" / "deep" / "b.png", encode(small_rgb(seed=1), ".png"))
    r = run("--theta", SHIFT, "good/a.png", "good/deep/b.png", "-o", "out/", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir("out")) == ["a.png", "b.png"]  # like cp and mogrify -path
    r = run("--theta", SHIFT, "-r", "good", "-o", "scan", "-q")
    assert sorted(os.listdir("scan")) == ["a.png", "deep"] and os.listdir("scan/deep") == ["b.png"]
    r = run("--theta", SHIFT, "--files-from", "-", "-o", "listed", "-q", input="good/deep/b.png\n")
    assert os.listdir("listed/good/deep") == ["b.png"]


def test_two_explicit_files_with_one_base_name_second_fails(tmp_path, run):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        write(tmp_path / d / "same.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, str(tmp_path / "x" / "same.png"), str(tmp_path / "y" / "same.png"),
            "-o", str(tmp_path / "out"), "--manifest", "-")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (f"stntool: error: {tmp_path / 'y' / 'same.png'}: output "
                                        f"{tmp_path / 'out' / 'same.png'} would also be written by "
                                        f"{tmp_path / 'x' / 'same.png'}")
    assert [json.loads(line)["status"] for line in r.stdout.splitlines()] == ["ok", "error"]
    assert os.listdir(tmp_path / "out") == ["same.png"]


def test_hex_fill_replays_bit_for_bit(tmp_path, run):
    d = tmp_path / "in"
    d.mkdir()
    rgba = np.random.default_rng(0).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    write(d / "rgba.png", encode(rgba, ".png"))
    write(d / "rgb16.png", encode(np.random.default_rng(1).integers(0, 65535, (9, 11, 3), dtype=np.uint16), ".png"))
    write(d / "gray.png", encode(rgba[..., 0], ".png"))
    man = tmp_path / "m.jsonl"
    r = run("--theta", "0.7,0.2,0.3,-0.2,0.7,0", "--padding", "constant", "--fill", "#FF800040", str(d),
            "-o", str(tmp_path / "a"), "--manifest", str(man), "-q")
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in man.read_text().splitlines()]
    assert {rec["fill"] for rec in recs} == {"#ff800040"} and {rec["schema"] for rec in recs} == {1}
    r = run("--params", str(man), "-o", str(tmp_path / "b"), "-q")
    assert r.exit_code == 0, r.stderr
    for name in ("rgba.png", "rgb16.png", "gray.png"):
        # absolute inputs listed in --params map to their base name
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    out = read(tmp_path / "a" / "rgb16.png")
    assert out[-1, -1].tolist() == [0, 128 * 257, 255 * 257]  # the colour outside, BGR, 16-bit scale


def test_a_replay_encodes_at_the_quality_the_records_were_written_at(tmp_path, run):
    # a JPEG written at --quality 80 came back at the default 95 (other bytes) unless --quality 80 was given again
    d = tmp_path / "in"
    d.mkdir()
    write(d / "a.jpg", encode(small_rgb(), ".jpg"))
    write(d / "b.png", encode(small_rgb(seed=1), ".png"))
    man = tmp_path / "m.jsonl"
    r = run("--theta", SHIFT, str(d), "-o", str(tmp_path / "a"), "--quality", "80", "--manifest", str(man), "-q")
    assert r.exit_code == 0, r.stderr
    assert [json.loads(line)["quality"] for line in man.read_text().splitlines()] == [80, 80]
    r = run("--params", str(man), "-o", str(tmp_path / "b"), "-q")
    assert r.exit_code == 0, r.stderr
    for name in ("a.jpg", "b.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    r = run("--params", str(man), "-o", str(tmp_path / "c"), "--quality", "95", "-q")  # given: it wins
    assert r.exit_code == 0 and (tmp_path / "c" / "a.jpg").read_bytes() != (tmp_path / "a" / "a.jpg").read_bytes()
    # each output as its own line says: the last line of an output wins, lines of other inputs do not matter
    again = tmp_path / "again.jsonl"
    r = run("--theta", SHIFT, str(d / "a.jpg"), "-o", str(tmp_path / "a"), "--quality", "40", "--overwrite",
            "--manifest", str(man), "--manifest-append", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("--theta", SHIFT, str(d / "a.jpg"), "-o", str(tmp_path / "a40"), "--quality", "40", "-q")
    lines = man.read_text().splitlines()
    assert [json.loads(line)["quality"] for line in lines] == [80, 80, 40]
    again.write_text(lines[0] + "\n" + json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "quality"})
                     + "\n" + lines[2] + "\n")
    r = run("--params", str(again), "-o", str(tmp_path / "d"), "--manifest", str(tmp_path / "d.jsonl"), "-q")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "d" / "a.jpg").read_bytes() == (tmp_path / "a40" / "a.jpg").read_bytes()
    assert (tmp_path / "d" / "b.png").read_bytes() != (tmp_path / "a" / "b.png").read_bytes()  # the default level
    assert [json.loads(line).get("quality") for line in (tmp_path / "d.jsonl").read_text().splitlines()] == [40, None]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(dict(json.loads(lines[0]), quality=True)) + "\n")
    r = run("--params", str(bad), "-o", str(tmp_path / "e"), "-q")
    assert r.exit_code == 2 and 'line 1: "quality" must be an integer 0-100, got true' in r.stderr
    assert run("--params", str(bad), "-o", str(tmp_path / "e"), "--quality", "70", "-q").exit_code == 0


def test_params_records_with_names_give_several_outputs(tmp_path, run):
    img = small_rgb()
    src = write(tmp_path / "a.png", encode(img, ".png"))
    lines = [{"input": str(src), "name": f"a_{k}.png", "theta": [[1, 0, 0], [0, 1, 0]] if k == 0 else
              [[-1, 0, 0], [0, 1, 0]], "schema": 1} for k in range(2)]
    lines.append({"input": str(src), "status": "error", "error": "no geometry here"})  # skipped
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = run("--params", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "out"), "--manifest", "-", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a_0.png", "a_1.png"]
    assert np.array_equal(read(tmp_path / "out" / "a_0.png"), img)
    assert np.array_equal(read(tmp_path / "out" / "a_1.png"), stntool.warp(img, [[-1, 0, 0], [0, 1, 0]]))
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["name"] for rec in recs] == ["a_0.png", "a_1.png"]


def test_params_errors_are_usage_errors(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    for body, msg in (('{"theta": [[1, 0, 0], [0, 1, 0]]}', 'line 1: missing "input"'),
                      ('{"input": "a.png", "theta": [[1, 0, 0], [0, 1]]}',
                       "line 1: \"theta\" must be 2 or 3 rows of 3 numbers"),
                      ('{"input": "a.png", "theta": [[1, 0, 0], [0, 1, 0]], "schema": 99}', "line 1: record schema 99"),
                      ("not json", "line 1: not JSON")):
        (tmp_path / "p.jsonl").write_text(body + "\n")
        r = run("--params", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "o"))
        assert r.exit_code == 2 and msg in r.stderr and "Traceback" not in r.stderr, (body, r.stderr)


def test_resume_with_manifest_append_keeps_earlier_records(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("in")
    for i in range(3):
        write(tmp_path / "in" / f"{i}.png", encode(small_rgb(seed=i), ".png"))
    theta = "0.9,0.1,0,-0.1,0.9,0"
    assert run("--theta", theta, "in", "-o", "out", "--manifest", "m.jsonl", "-q").exit_code == 0
    first = [json.loads(x) for x in open("m.jsonl")]
    os.remove("out/1.png")  # as if the run had been interrupted before it
    r = run("--theta", theta, "in", "-o", "out", "--manifest", "m.jsonl", "--manifest-append", "--skip-existing",
            "-q")
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(x) for x in open("m.jsonl")]
    assert recs[:3] == first  # earlier records kept, the resumed run's lines after them
    assert [(r["output"], r["status"]) for r in recs[3:]] == [("out/0.png", "skipped"), ("out/1.png", "ok"),
                                                               ("out/2.png", "skipped")]
    r = run("--params", "m.jsonl", "-o", "replay", "-q")  # every input still replays from the appended file
    assert r.exit_code == 0 and sorted(os.listdir("replay")) == ["0.png", "1.png", "2.png"]  # the outputs' names
    assert all(open(f"replay/{n}", "rb").read() == open(f"out/{n}", "rb").read() for n in os.listdir("out"))
    run("--theta", theta, "in", "-o", "out", "--manifest", "m.jsonl", "--skip-existing", "-q")
    assert len(open("m.jsonl").readlines()) == 3  # without the flag the manifest is replaced, as before
    for args, said in ((["--manifest-append"], "--manifest-append needs --manifest FILE"),
                       (["--manifest", "-", "--manifest-append"], "--manifest-append cannot append to stdout")):
        r = run("--theta", theta, "in", "-o", "out", "--skip-existing", *args)
        assert r.exit_code == 2 and said in r.stderr


def test_error_lines_are_not_replayed(tmp_path, run, monkeypatch):
    """A run refused because its outputs exist appends error lines carrying its own θ: replaying the manifest
    must give the outputs the first run made, not that θ."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("s")
    write(tmp_path / "s" / "a.png", encode(small_rgb(seed=3), ".png"))
    assert run("--theta", "-1,0,0,0,1,0", "s", "-o", "e", "--manifest", "e.jsonl", "-q").exit_code == 0
    r = run("--theta", "1,0,0,0,-1,0", "s", "-o", "e", "--manifest", "e.jsonl", "--manifest-append", "-q")
    assert r.exit_code == 1 and json.loads(open("e.jsonl").readlines()[-1])["status"] == "error"
    with open("e.jsonl", "a") as f:
        f.write('{"input": "s/a.png", "sta')  # and a line cut by a killed run, then resumed
    r = run("--theta", "-1,0,0,0,1,0", "s", "-o", "e", "--manifest", "e.jsonl", "--manifest-append",
            "--skip-existing", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("--params", "e.jsonl", "-o", "r", "-q")
    assert r.exit_code == 0, r.stderr
    assert open("r/a.png", "rb").read() == open("e/a.png", "rb").read()


def test_records_name_their_outputs_so_a_replay_gives_the_same_names(tmp_path, run, monkeypatch):
    """A warp record carries its output's name under -o (folders mirrored, --suffix and --format applied, or the
    file's own name for -o FILE): the replay writes the same relative names, bit for bit."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("in/sub")
    write(tmp_path / "in" / "a.png", encode(small_rgb(seed=1), ".png"))
    write(tmp_path / "in" / "sub" / "b.jpg", encode(small_rgb(seed=2), ".jpg"))
    theta = "0.9,0.1,0,-0.1,0.9,0"
    r = run("--theta", theta, "-r", "in", "-o", "out", "--suffix", "_w", "--format", "png", "--manifest", "m.jsonl",
            "-q")
    assert r.exit_code == 0, r.stderr
    assert [json.loads(x)["name"] for x in open("m.jsonl")] == ["a_w.png", "sub/b_w.png"]
    assert run("--params", "m.jsonl", "-o", "replay", "-q").exit_code == 0
    for name in ("a_w.png", "sub/b_w.png"):
        assert open(f"replay/{name}", "rb").read() == open(f"out/{name}", "rb").read()
    r = run("--theta", theta, "in/a.png", "-o", "page.png", "--manifest", "one.jsonl", "-q")
    assert r.exit_code == 0 and json.loads(open("one.jsonl").read())["name"] == "page.png"
    assert run("--params", "one.jsonl", "-o", "r1", "-q").exit_code == 0 and os.listdir("r1") == ["page.png"]


def test_params_inputs_match_however_their_paths_are_spelled(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("in")
    write(tmp_path / "in" / "a.png", encode(small_rgb(seed=1), ".png"))
    assert run("--theta", "0.9,0,0,0,0.9,0", "in", "-o", "o", "--manifest", "m.jsonl", "-q").exit_code == 0
    r = run("--params", "m.jsonl", "./in/a.png", "-o", "r", "-q")  # the record says in/a.png
    assert r.exit_code == 0, r.stderr
    assert open("r/a.png", "rb").read() == open("o/a.png", "rb").read()


def test_options_that_cannot_apply_are_usage_errors(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.png", encode(small_rgb(seed=1), ".png"))
    for args, said in [(["a.png", "-o", "x.png", "--suffix", "_w"], "-o x.png names the output itself"),
                       (["a.png", "-o", "-", "--suffix", "_w"], "-o - names the output itself")]:
        r = run("--theta", "1,0,0,0,1,0", *args)
        assert r.exit_code == 2 and said in r.stderr, r.stderr
    r = run("--params", "-", "-", "-o", "x.png", input=b"")
    assert r.exit_code == 2 and "stdin cannot carry both --params - and image bytes" in r.stderr
    r = run("--theta", "1,0,0,0,1,0", "a.png", "-o", "u", "--manifest", "-", "--manifest-append")
    assert r.exit_code == 2 and "--manifest-append cannot append to stdout (--manifest -)" in r.stderr  # "needs"
    r = run("--params", "-", "--files-from", "-", "-o", "out", input=b'{"input": "a.png", "theta": [[1,0,0],[0,1,0]]}')
    assert r.exit_code == 2 and "stdin cannot carry both --params - and --files-from -" in r.stderr  # "no inputs"


def test_a_replay_says_when_the_image_is_not_the_size_its_record_was_made_from(tmp_path, run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.png", encode(small_rgb(24, 32, seed=1), ".png"))
    assert run("--theta", "0.9,0,0,0,0.9,0", "a.png", "-o", "o/", "--manifest", "m.jsonl", "-q").exit_code == 0
    r = run("--params", "m.jsonl", "-o", "r/")
    assert r.exit_code == 0 and "warning" not in r.stderr
    write(tmp_path / "a.png", encode(small_rgb(32, 24, seed=1), ".png"))  # another picture under that name
    r = run("--params", "m.jsonl", "-o", "r2/", "--manifest", "r2.jsonl")
    assert r.exit_code == 0
    assert "warning: a.png: the record was made from a 32x24 image; this one is 24x32" in r.stderr
    assert "made from a 32x24" in json.loads(open("r2.jsonl").read())["warning"]


def test_a_replay_of_one_input_spelled_two_ways_uses_its_last_record(tmp_path, run, monkeypatch):
    """A resumed run that named in/a.png as ./in/a.png: the newer record is the one whose output is on disk, and the
    replay made the older one (exit 0), or failed the newer as a second claim on the output."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("in")
    write(tmp_path / "in" / "a.png", encode(small_rgb(seed=4), ".png"))
    assert run("--theta", "0.5,0,0,0,0.5,0", "in/a.png", "-o", "sp", "--manifest", "m.jsonl", "-q").exit_code == 0
    r = run("--theta", "-1,0,0,0,1,0", "./in/a.png", "-o", "sp", "--manifest", "m.jsonl", "--manifest-append",
            "--overwrite", "-q")
    assert r.exit_code == 0, r.stderr
    for inputs in ([], ["in/a.png"], ["./in/a.png"]):
        r = run("--params", "m.jsonl", *inputs, "-o", "r", "--overwrite", "-q")
        assert r.exit_code == 0, (inputs, r.stderr)
        assert open("r/a.png", "rb").read() == open("sp/a.png", "rb").read(), inputs


def test_outputs_larger_than_max_pixels_are_refused_before_they_are_made(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    (tmp_path / "p.jsonl").write_text(json.dumps({"input": str(tmp_path / "a.png"), "theta": [[1, 0, 0], [0, 1, 0]],
                                                  "size": [2147483647, 2]}) + "\n")
    r = run("--params", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 1 and "output size 2147483647x2 is more pixels than --max-pixels" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "--size", "100x100",
            "--max-pixels", "5000")
    assert r.exit_code == 2 and "100x100 is more pixels than --max-pixels (5000)" in r.stderr


def test_a_params_file_with_nothing_to_replay_says_so(tmp_path, run):
    (tmp_path / "p.jsonl").write_text(json.dumps({"input": "a.png", "status": "error", "error": "x"}) + "\n")
    r = run("--params", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and "no record to replay" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_records_of_one_file_are_one_input_however_the_manifest_spells_it(tmp_path, run, monkeypatch):
    # a resumed run given the absolute path: its record was refused at replay ("would also be written by") and
    # the first run's stale record replayed; a "removed" line or a name spelled ./x.png did not meet its record
    monkeypatch.chdir(tmp_path)
    os.makedirs("in")
    write(tmp_path / "in" / "c.png", encode(small_rgb(24, 32, seed=2), ".png"))
    r = run("--theta", "0.9,0,0,0,0.9,0", "in/c.png", "-o", "r", "--manifest", "m.jsonl", "-q")
    assert r.exit_code == 0, r.stderr
    os.remove("r/c.png")
    r = run("--theta", "-1,0,0,0,1,0", str(tmp_path / "in" / "c.png"), "-o", "r", "--manifest", "m.jsonl",
            "--manifest-append", "--skip-existing", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("--params", "m.jsonl", "-o", "replay", "-q")
    assert r.exit_code == 0, r.stderr
    assert os.listdir("replay") == ["c.png"] and open("replay/c.png", "rb").read() == open("r/c.png", "rb").read()
    theta = [[1, 0, 0.1], [0, 1, 0]]
    lines = [{"input": "in/c.png", "name": "x.png", "theta": [[1, 0, 0], [0, 1, 0]]},
             {"input": "./in/c.png", "name": "./x.png", "theta": theta},
             {"input": "in/c.png", "name": "y.png", "theta": theta},
             {"input": str(tmp_path / "in" / "c.png"), "name": "./y.png", "status": "error", "removed": True}]
    with open("n.jsonl", "w") as f:
        f.writelines(json.dumps(x) + "\n" for x in lines)
    r = run("--params", "n.jsonl", "-o", "named", "-q")
    assert r.exit_code == 0, r.stderr
    assert os.listdir("named") == ["x.png"]
    assert np.array_equal(read("named/x.png"), stntool.warp(read("in/c.png"), theta))


def test_a_record_through_a_link_and_dotdot_replays_the_file_it_was_made_from(tmp_path, run, monkeypatch):
    # link/../a.png was read as a.png (its text tidied), another file, with only a size warning
    monkeypatch.chdir(tmp_path)
    os.makedirs("real/deep")
    write(tmp_path / "real" / "a.png", encode(small_rgb(24, 32, seed=3), ".png"))
    write(tmp_path / "a.png", encode(small_rgb(24, 32, seed=4), ".png"))
    os.symlink("real/deep", "link")
    r = run("--theta", "0.9,0,0,0,0.9,0", "--files-from", "-", "-o", "o", "--manifest", "m.jsonl", "-q",
            input="link/../a.png\n")
    assert r.exit_code == 0, r.stderr
    r = run("--params", "m.jsonl", "-o", "r")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    made = [os.path.join(d, f) for d, _, fs in os.walk("o") for f in fs]
    again = [os.path.join(d, f) for d, _, fs in os.walk("r") for f in fs]
    assert len(made) == len(again) == 1
    assert open(made[0], "rb").read() == open(again[0], "rb").read()


def test_a_folder_holding_a_link_to_another_input_replays_both(tmp_path, run, monkeypatch):
    # keyed by real path, in/b.png (a link to a.png) and in/a.png were one input with both records, each
    # written twice: "output r/a.png would also be written by in/a.png"
    monkeypatch.chdir(tmp_path)
    os.makedirs("in")
    write(tmp_path / "in" / "a.png", encode(small_rgb(24, 32, seed=5), ".png"))
    write(tmp_path / "in" / "c.png", encode(small_rgb(24, 32, seed=6), ".png"))
    os.symlink("a.png", "in/b.png")
    r = run("--theta", "0.9,0.1,0,-0.1,0.9,0", "in", "-o", "out", "--manifest", "m.jsonl", "-q")
    assert r.exit_code == 0, r.stderr
    for args in (["in"], []):  # the folder given again, or the manifest's own inputs
        r = run(*args, "--params", "m.jsonl", "-o", "r" + str(len(args)), "-q")
        assert r.exit_code == 0, r.stderr
        for name in ("a.png", "b.png", "c.png"):
            assert open(f"r{len(args)}/{name}", "rb").read() == open(f"out/{name}", "rb").read()
    r = run("in/b.png", "--params", "m.jsonl", "-o", "one", "-q")  # the link: its own record
    assert r.exit_code == 0 and os.listdir("one") == ["b.png"], r.stderr
    # a link made after the run, beside the file it leads to: a new input without records, not a second a.png
    os.symlink("c.png", "in/d.png")
    r = run("in", "--params", "m.jsonl", "-o", "later")
    assert r.exit_code == 1 and sorted(os.listdir("later")) == ["a.png", "b.png", "c.png"]
    errors = [x for x in r.stderr.splitlines() if "error" in x]
    assert len(errors) == 1 and "in/d.png: no entry for this input in --params" in errors[0], r.stderr
    r = run("in/d.png", "--params", "m.jsonl", "-o", "alone", "-q")  # given alone, a link takes its file's record
    assert r.exit_code == 0 and os.listdir("alone") == ["c.png"], r.stderr


def test_a_manifest_cut_inside_its_last_line_or_with_a_byte_order_mark_still_replays(tmp_path, run, monkeypatch):
    # a run stopped while writing its last line (kill -9, a full disk), or a file saved with a BOM: --params
    # refused the whole file
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.png", encode(small_rgb(24, 32, seed=1), ".png"))
    write(tmp_path / "b.png", encode(small_rgb(24, 32, seed=2), ".png"))
    r = run("--theta", "0.9,0,0,0,0.9,0", "a.png", "b.png", "-o", "o", "--manifest", "m.jsonl", "-q")
    assert r.exit_code == 0, r.stderr
    text = open("m.jsonl").read()
    open("cut.jsonl", "w").write(text[:-20])
    r = run("--params", "cut.jsonl", "-o", "r")
    assert r.exit_code == 0, r.stderr
    assert "cut.jsonl line 2: cut short" in r.stderr and os.listdir("r") == ["a.png"]
    assert open("r/a.png", "rb").read() == open("o/a.png", "rb").read()
    open("mid.jsonl", "w").write(text.replace("}\n", "\n", 1))  # a broken line that is not the last
    r = run("--params", "mid.jsonl", "-o", "r2")
    assert r.exit_code == 2 and "line 1: not JSON" in r.stderr
    open("bom.jsonl", "w", encoding="utf-8-sig").write(text)
    r = run("--params", "bom.jsonl", "-o", "r3", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir("r3")) == ["a.png", "b.png"]
