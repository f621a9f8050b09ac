"""stntool.batch on its own: discovery, output planning, the manifest writer, the runner and interrupts."""

import json
import os
import signal
import time

import numpy as np
import pytest

from stntool import batch
from stntool.errors import ImageWriteError, InvalidArgumentError, StnError
from stntool.io import decode_image, encode_image


def png(path, img=None):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) if img is None else img
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(encode_image(img, "png"))
    return str(path)


@pytest.fixture
def tree(tmp_path):
    png(tmp_path / "in" / "b.png")
    png(tmp_path / "in" / "a.png")
    png(tmp_path / "in" / "sub" / "c.png")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    png(tmp_path / "other" / "a.png")
    return tmp_path


def rels(items):
    return [(it.rel, it.source) for it in items]


# --------------------------------------------------------------------------- discovery

def test_discover_folder_sorted_and_recursive(tree):
    items, folders = batch.discover([str(tree / "in")])
    assert rels(items) == [("a.png", "folder"), ("b.png", "folder")] and folders == 1
    items, _ = batch.discover([str(tree / "in")], recursive=True)
    assert [r for r, _ in rels(items)] == ["a.png", "b.png", os.path.join("sub", "c.png")]
    assert [it.index for it in items] == [0, 1, 2]


def test_discover_leaves_hidden_files_and_folders_out_of_folder_scans(tree):
    """As a shell's ``*``: macOS's ``._a.png`` (a resource fork, not an image: one error line each and exit 1),
    a notebook's ``.ipynb_checkpoints`` copies (duplicate outputs under -r). A hidden file named on the command
    line is read."""
    (tree / "in" / "._a.png").write_bytes(b"\0\5\26\7 not an image")
    png(tree / "in" / ".ipynb_checkpoints" / "a-checkpoint.png")
    png(tree / "in" / ".shown.png")
    items, _ = batch.discover([str(tree / "in")], recursive=True)
    assert [r for r, _ in rels(items)] == ["a.png", "b.png", os.path.join("sub", "c.png")]
    items, _ = batch.discover([str(tree / "in" / ".shown.png")])
    assert rels(items) == [(".shown.png", "file")]

def test_discover_explicit_files_keep_base_name_lists_mirror(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items, folders = batch.discover(["in/sub/c.png", "-"], listed=["in/a.png", "../x/y.png", str(tree / "z.png")])
    assert rels(items) == [("c.png", "file"), ("stdin.png", "stdin"), (os.path.join("in", "a.png"), "list"),
                           ("y.png", "list"), ("z.png", "list")] and folders == 0


def test_discover_errors_and_warnings(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no inputs"):
        batch.discover([])
    with pytest.raises(InvalidArgumentError, match="only once"):
        batch.discover(["-", "-"])
    (tmp_path / "empty").mkdir()
    said = []
    items, folders = batch.discover([str(tmp_path / "empty")], warn=said.append)
    assert items == [] and folders == 1 and said == [f"no images in folder {tmp_path / 'empty'}"]


def test_a_folder_with_images_only_in_sub_folders_says_how_to_enter_them(tmp_path):
    # without -r such a folder gives nothing: the warning says why, unless the only sub-folder is left out
    sub = tmp_path / "in" / "sub"
    sub.mkdir(parents=True)
    (sub / "a.png").write_bytes(b"")
    (tmp_path / "in" / ".ipynb_checkpoints").mkdir()  # hidden: -r leaves it out too
    said = []
    batch.discover([str(tmp_path / "in")], warn=said.append)
    assert said == [f"no images in folder {tmp_path / 'in'} (it has sub-folders: -r enters them)"]
    said.clear()
    batch.discover([str(tmp_path / "in")], warn=said.append, leave_out=[str(sub)])
    assert said == [f"no images in folder {tmp_path / 'in'}"]
    said.clear()
    items, _ = batch.discover([str(tmp_path / "in")], recursive=True, warn=said.append)
    assert len(items) == 1 and said == []


def test_read_list_lines_crlf_and_nul(tmp_path):
    (tmp_path / "l.txt").write_bytes(b"a.png\r\n\nb c.png\n")
    assert batch.read_list(str(tmp_path / "l.txt")) == ["a.png", "b c.png"]
    (tmp_path / "l0").write_bytes(b"a\nb.png\0c.png\0")
    assert batch.read_list(str(tmp_path / "l0"), null=True) == ["a\nb.png", "c.png"]
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        batch.read_list(str(tmp_path / "missing"))


# --------------------------------------------------------------------------- output planning

def test_plan_mirrors_folder_scans_and_maps_files_to_base_names(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items, folders = batch.discover(["in"], recursive=True)
    assert batch.plan_outputs(items, "out", folders=folders) == "folder"
    assert [it.output for it in items] == [os.path.join("out", p) for p in ("a.png", "b.png", "sub/c.png")]
    items, folders = batch.discover(["in/sub/c.png"], listed=[])
    batch.plan_outputs(items, "out/", folders=folders)
    assert items[0].output == os.path.join("out", "c.png")


def test_plan_same_base_name_second_is_an_error(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items, folders = batch.discover(["in/a.png", "other/a.png"])
    batch.plan_outputs(items, "out", folders=folders)
    assert items[0].error is None and items[0].output == os.path.join("out", "a.png")
    assert items[1].error == f"output {os.path.join('out', 'a.png')} would also be written by in/a.png"


def test_plan_refuses_to_write_onto_an_input(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items, folders = batch.discover(["in"])
    # every output onto its own input: the command is wrong, not its inputs (it failed each input, exit 1)
    with pytest.raises(InvalidArgumentError, match="-o in: every input would write onto an input file"):
        batch.plan_outputs(items, "in", folders=folders)
    missing = [*batch.discover(["in"])[0], batch.Item(9, os.path.join("in", "gone.png"), "gone.png")]
    with pytest.raises(InvalidArgumentError, match="-o in: every input there is would write onto an input file"):
        batch.plan_outputs(missing, "in", folders=1)  # one not there: it would fail as it is read
    items, folders = batch.discover(["in"])
    batch.plan_outputs(items, "in", folders=folders, outputs=lambda it, p: [p if it.index == 0 else p + ".x.png"])
    assert items[0].error.startswith("refusing to write onto an input") and items[1].error is None  # one of them
    items, folders = batch.discover(["in"])
    batch.plan_outputs(items, "in", suffix="_w", folders=folders)
    assert [it.error for it in items] == [None, None]
    assert [os.path.basename(it.output) for it in items] == ["a_w.png", "b_w.png"]


def test_plan_suffix_format_and_unwritable_extensions(tmp_path):
    items = [batch.Item(0, "x/a.jpg", "a.jpg"), batch.Item(1, "x/b.gif", "b.gif"), batch.Item(2, "-", "stdin.png",
                                                                                           "stdin")]
    batch.plan_outputs(items, str(tmp_path / "o"), suffix="_s")
    assert [os.path.basename(it.output) for it in items] == ["a_s.jpg", "b_s.png", "stdin_s.png"]
    batch.plan_outputs(items, str(tmp_path / "o"), fmt="webp")
    assert [os.path.basename(it.output) for it in items] == ["a.webp", "b.webp", "stdin.webp"]


def test_plan_single_file_stdout_and_usage_errors(tmp_path):
    one = [batch.Item(0, "a.png", "a.png")]
    assert batch.plan_outputs(one, str(tmp_path / "x.jpg")) == "file" and one[0].output == str(tmp_path / "x.jpg")
    assert batch.plan_outputs(one, "-") == "stdout" and one[0].output == "-"
    with pytest.raises(InvalidArgumentError, match="does not end in .png"):
        batch.plan_outputs(one, str(tmp_path / "x.jpg"), fmt="png")
    two = one + [batch.Item(1, "b.png", "b.png")]
    with pytest.raises(InvalidArgumentError, match="exactly one input"):
        batch.plan_outputs(two, "-")
    with pytest.raises(InvalidArgumentError, match="exactly one input"):
        batch.plan_outputs(one, "-", folders=1)  # one image found in a folder is not "a single input"
    (tmp_path / "f").write_text("")
    with pytest.raises(InvalidArgumentError, match="is not a folder"):
        batch.plan_outputs(two, str(tmp_path / "f"))
    with pytest.raises(InvalidArgumentError, match="required"):
        batch.plan_outputs(two, None)


def test_plan_refuses_a_suffix_with_a_path_separator(tmp_path):
    items = [batch.Item(0, "a.png", "a.png")]
    for suffix in ("/../../x", "_w/x", "a" + os.sep + "b"):
        with pytest.raises(InvalidArgumentError, match="path separator"):
            batch.plan_outputs(items + [batch.Item(1, "b.png", "b.png")], str(tmp_path / "o"), suffix=suffix)
    assert not os.path.exists(tmp_path / "x.png") and not os.path.exists(tmp_path / "o")


def test_plan_an_image_file_name_for_several_inputs_is_a_usage_error(tmp_path):
    two = [batch.Item(0, "a.png", "a.png"), batch.Item(1, "b.png", "b.png")]
    with pytest.raises(InvalidArgumentError, match="several inputs"):
        batch.plan_outputs(two, str(tmp_path / "two.png"))
    with pytest.raises(InvalidArgumentError, match="several inputs"):
        batch.plan_outputs(two[:1], str(tmp_path / "one.png"), folders=1)  # found in a folder
    (tmp_path / "dir.png").mkdir()  # an existing folder named like an image is still a folder
    assert batch.plan_outputs(two, str(tmp_path / "dir.png")) == "folder"
    assert batch.plan_outputs(two, str(tmp_path / "new.png") + os.sep) == "folder"


def test_attach_payloads_named_and_missing():
    class P:
        def __init__(self, name):
            self.name = name

    items = [batch.Item(0, "a.png", "a.png"), batch.Item(1, "b.png", "b.png")]
    out = batch.attach_payloads(items, {"a.png": [P("a_0.png"), P("../../a_1.png")]}, missing="nothing for it")
    assert [(it.index, it.input, it.rel, it.error) for it in out] == [
        (0, "a.png", "a_0.png", None), (1, "a.png", "a_1.png", None), (2, "b.png", "b.png", "nothing for it")]



def test_attach_payloads_matches_an_input_named_another_way(tmp_path, monkeypatch):
    # a record of in/a.png matches ./in/a.png, the file's absolute path and a link to it; not another file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    (tmp_path / "in" / "b.png").write_bytes(b"")
    os.symlink(tmp_path / "in" / "a.png", tmp_path / "link.png")
    names = ["./in/a.png", str(tmp_path / "in" / "a.png"), "link.png", str(tmp_path / "in" / "b.png")]
    items = [batch.Item(k, name, os.path.basename(name)) for k, name in enumerate(names)]
    out = batch.attach_payloads(items, {"in/a.png": ["record"]}, missing="nothing for it")
    # the link beside the file itself: an input of its own, without records (it took them, and wrote the file's
    # output a second time)
    assert [(it.payload, it.error) for it in out] == [("record", None)] * 2 + [(None, "nothing for it")] * 2
    out = batch.attach_payloads(items[2:3], {"in/a.png": ["record"]}, missing="nothing for it")
    assert [(it.payload, it.error) for it in out] == [("record", None)]  # the link alone: the file's record
    # records of the same file under two names: the one naming it as the input does; else none (not both)
    payloads = {"in/a.png": ["by folder"], "link.png": ["by link"]}
    items = [batch.Item(k, name, os.path.basename(name)) for k, name in enumerate(
        [str(tmp_path / "in" / "a.png"), str(tmp_path / "link.png"), str(tmp_path / "in" / ".." / "link.png")])]
    out = batch.attach_payloads(items, payloads, missing="nothing for it")
    assert [it.payload for it in out] == ["by folder", "by link", "by link"]
    os.symlink(tmp_path / "in", tmp_path / "inlink")  # a folder reached through a link is that folder: in/a.png
    out = batch.attach_payloads([batch.Item(0, "inlink/a.png", "a.png")], payloads, missing="nothing for it")
    assert [(it.payload, it.error) for it in out] == [("by folder", None)]
    os.symlink(tmp_path / "in" / "a.png", tmp_path / "other.png")  # a third name, of neither record: not both
    out = batch.attach_payloads([batch.Item(0, "other.png", "other.png")], payloads, missing="nothing for it")
    assert [(it.payload, it.error) for it in out] == [(None, "nothing for it")]


# --------------------------------------------------------------------------- manifest

def test_manifest_flushes_every_line_and_closes(tmp_path):
    path = tmp_path / "m.jsonl"
    m = batch.Manifest(str(path))
    m.write({"input": "a", "x": np.float32(0.5), "p": "caf\udce9"})
    assert json.loads(path.read_text()) == {"input": "a", "x": 0.5, "p": "caf\udce9"}  # visible before close
    m.close()
    assert m.file is None
    made = batch.Manifest(str(tmp_path / "new" / "dir" / "m.jsonl"))  # a missing folder is created
    made.write({"input": "b"})
    made.close()
    assert json.loads((tmp_path / "new" / "dir" / "m.jsonl").read_text()) == {"input": "b"}
    with pytest.raises(ImageWriteError, match="cannot write"):
        batch.Manifest(str(path / "under" / "a" / "file.jsonl"))  # a file where a folder would be


# --------------------------------------------------------------------------- running

def flip(img, item):
    return batch.Output(img[:, ::-1].copy(), {"flipped": True})


def planned(tmp_path, names=("a.png", "b.png", "c.png"), **kw):
    for n in names:
        png(tmp_path / "in" / n, np.full((2, 3), ord(n[0]), np.uint8))
    items, folders = batch.discover([str(tmp_path / "in")])
    batch.plan_outputs(items, str(tmp_path / "out"), folders=folders, **kw)
    return items


def lines(path):
    return [json.loads(x) for x in open(path)]


def test_run_batch_writes_outputs_manifest_in_order_and_summary(tmp_path, capsys):
    png(tmp_path / "in" / "z_bad.png")
    (tmp_path / "in" / "z_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    items = planned(tmp_path)
    for it in items:
        it.fields = {"why": "recorded for failures"}
    s = batch.run_batch(items, flip, jobs=2, manifest=batch.Manifest(str(tmp_path / "m.jsonl")), command="t")
    assert (s.ok, s.failed, s.exit_code) == (3, 1, 1)
    recs = lines(tmp_path / "m.jsonl")
    assert [r["input"] for r in recs] == [it.input for it in items]
    assert recs[0] == {"input": items[0].input, "output": items[0].output, "status": "ok", "error": None,
                       "flipped": True}
    assert recs[3]["status"] == "error" and recs[3]["why"] == "recorded for failures"
    assert np.array_equal(decode_image((tmp_path / "out" / "a.png").read_bytes()), np.full((2, 3), 97, np.uint8))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"stntool: error: {items[3].input}: ")
    assert err[1].startswith("t: 3 ok, 0 skipped, 1 failed")


def test_workers_share_the_cpus_with_opencv_and_its_setting_comes_back(tmp_path, monkeypatch):
    import cv2

    monkeypatch.setattr(batch.os, "cpu_count", lambda: 4)
    before = cv2.getNumThreads()
    seen = []

    def record(img, item):
        seen.append(cv2.getNumThreads())
        return flip(img, item)

    try:
        cv2.setNumThreads(3)
        for jobs, during in ((2, 2), (4, 1), (1, 3)):  # one worker: OpenCV keeps its own setting
            seen.clear()
            items = planned(tmp_path / str(jobs))
            assert batch.run_batch(items, record, jobs=jobs, quiet=True).exit_code == 0
            assert seen == [during] * 3
            assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_run_batch_skip_existing_overwrite_and_exists_error(tmp_path, capsys):
    items = planned(tmp_path)
    assert batch.run_batch(items, flip, quiet=True).exit_code == 0
    s = batch.run_batch(items, flip, skip_existing=True, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    assert s.skipped == 3 and s.exit_code == 0
    assert lines(tmp_path / "m")[0] == {"input": items[0].input, "output": items[0].output, "status": "skipped",
                                        "error": None}
    s = batch.run_batch(items, flip, quiet=True)
    err = capsys.readouterr().err
    assert s.failed == 3 and f"{items[0].input}: output {items[0].output} exists (use --overwrite" in err, err
    assert batch.run_batch(items, lambda img, it: batch.Output(img * 0), overwrite=True, quiet=True).ok == 3
    assert decode_image((tmp_path / "out" / "a.png").read_bytes()).max() == 0


def variants(n):
    def outputs(item, path):
        stem, ext = os.path.splitext(path)
        return [f"{stem}_{k}{ext}" for k in range(n)]

    return outputs


def test_run_batch_several_outputs_per_input_and_errors_from_process(tmp_path):
    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(2))

    def two(img, item):
        if item.input.endswith("b.png"):
            item.fields = {"seed": 7}
            raise StnError("b is not wanted")
        return [batch.Output(img, {"k": k}, output=p) for k, p in enumerate(item.outputs)]

    s = batch.run_batch(items, two, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    recs = lines(tmp_path / "m")
    assert (s.ok, s.failed, s.total, s.outputs) == (1, 1, 2, 2)  # inputs and outputs counted apart
    assert [(os.path.basename(r["output"]), r["status"], r.get("k"), r.get("seed")) for r in recs] == [
        ("a_0.png", "ok", 0, None), ("a_1.png", "ok", 1, None), ("b_0.png", "error", None, 7)]
    assert sorted(os.listdir(tmp_path / "out")) == ["a_0.png", "a_1.png"]
    onto = batch.run_batch(items[:1], lambda img, it: batch.Output(img, output=items[1].input), quiet=True)
    assert onto.failed == 1  # an output that was not planned (here: an input) is refused


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_bug_in_process_goes_on_to_the_caller_with_every_file_written_recorded(tmp_path, jobs):
    """An error that is not an input's (a TypeError in ``process``) is raised to the caller; with jobs=2 the items
    already running wrote their outputs without records (a rerun with --skip-existing then skipped them, and
    --params could not replay them): what they wrote is recorded first."""
    import threading

    names = tuple(f"{i:02d}.png" for i in range(12))
    items = planned(tmp_path, names=names)
    others = threading.Barrier(2) if jobs == 2 else None

    def process(img, item):
        if item.index == 1:
            if others is not None:
                others.wait(timeout=10)  # item 2 runs meanwhile
            raise TypeError("a bug in process")
        if item.index == 2 and others is not None:
            others.wait(timeout=10)
            time.sleep(0.05)  # still writing as item 1 raises
        return batch.Output(img)

    with pytest.raises(TypeError, match="a bug in process"):
        batch.run_batch(items, process, jobs=jobs, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    recorded = sorted(os.path.basename(r["output"]) for r in lines(tmp_path / "m") if r["status"] == "ok")
    written = sorted(os.listdir(tmp_path / "out"))
    assert recorded == written and "01.png" not in written and "00.png" in written
    if jobs == 2:
        assert "02.png" in written


def test_an_image_opencv_cannot_process_fails_alone_in_one_line(tmp_path, capsys):
    # an OpenCV error (a float64 colour image turned grey, as rectify did) stopped the batch with a traceback
    import cv2

    items = planned(tmp_path)

    def grey(img, item):
        src = img.astype(np.float64) if item.input.endswith("b.png") else img
        return batch.Output(cv2.cvtColor(np.repeat(src[..., None], 3, axis=2), cv2.COLOR_BGR2GRAY))

    s = batch.run_batch(items, grey, manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.failed) == (2, 1)
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "c.png"]
    errors = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(errors) == 1 and "b.png: OpenCV cannot process this image: Unsupported depth" in errors[0], errors
    assert "CV_64F" in lines(tmp_path / "m")[1]["error"]


def test_a_generator_streams_its_outputs(tmp_path):
    """Each output a generator yields is written before the next is made; a failure part way removes them."""
    items = planned(tmp_path, names=("a.png",), outputs=variants(3))
    seen = []

    def three(img, item):
        for k, p in enumerate(item.outputs):
            seen.append(sorted(os.listdir(tmp_path / "out")) if (tmp_path / "out").exists() else [])
            if k == 2:
                raise StnError("the third is not wanted")
            yield batch.Output(img, {"k": k}, output=p)

    s = batch.run_batch(items, three, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    assert seen == [[], ["a_0.png"], ["a_0.png", "a_1.png"]]
    assert (s.ok, s.failed, s.outputs) == (0, 1, 0)
    recs = lines(tmp_path / "m")
    assert [(os.path.basename(r["output"]), r["status"], r.get("removed")) for r in recs] == [
        ("a_0.png", "error", True), ("a_1.png", "error", True), ("a_2.png", "error", None)]
    assert recs[0]["error"] == f"removed: the input failed at {tmp_path / 'out' / 'a_2.png'}"
    assert os.listdir(tmp_path / "out") == []  # a failed input leaves no output


def test_a_failed_input_removes_only_what_it_wrote(tmp_path):
    """The images and side files an input wrote before failing go; an earlier run's outputs it skipped stay."""
    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(4))
    out = tmp_path / "out"

    def fail_third(img, item):
        for k, p in enumerate(item.outputs):
            if k == 2 and item.input.endswith("a.png"):
                raise OSError(28, "No space left on device")
            yield batch.Output(img, {"k": k}, output=p, files={p + ".json": b"{}"})

    out.mkdir()
    (out / "a_0.png").write_bytes(b"an earlier run's")
    s = batch.run_batch(items, fail_third, skip_existing=True, quiet=True,
                        manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.failed, s.outputs) == (1, 1, 4)
    assert sorted(os.listdir(out)) == ["a_0.png"] + [f"b_{k}.png{e}" for k in range(4) for e in ("", ".json")]
    assert (out / "a_0.png").read_bytes() == b"an earlier run's"
    assert [(os.path.basename(r["output"]), r["status"]) for r in lines(tmp_path / "m")][:3] == [
        ("a_0.png", "skipped"), ("a_1.png", "error"), ("a_2.png", "error")]

    def bug(img, item):  # not a user error: raised, and the input's files are gone all the same
        yield batch.Output(img, output=item.outputs[0])
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        batch.run_batch(items[1:], bug, overwrite=True, jobs=1, quiet=True)
    assert not (out / "b_0.png").exists() and (out / "b_1.png").exists()


def test_planned_outputs_go_through_the_collision_and_onto_input_checks(tmp_path):
    items = [batch.Item(0, str(tmp_path / "a.png"), "a.png"), batch.Item(1, str(tmp_path / "b.png"), "b.png")]
    for it in items:
        open(it.input, "wb").close()
    batch.plan_outputs(items, str(tmp_path / "o"), outputs=lambda it, p: [p, str(tmp_path / "o" / "same.png")])
    assert items[0].error is None and items[0].outputs == [str(tmp_path / "o" / "a.png"),
                                                           str(tmp_path / "o" / "same.png")]
    assert items[1].error == f"output {tmp_path / 'o' / 'same.png'} would also be written by {items[0].input}"
    batch.plan_outputs(items[:1], str(tmp_path / "o"), outputs=lambda it, p: [p, str(tmp_path / "b.png")])
    assert items[0].error is None  # b.png is not an input of this batch
    with pytest.raises(InvalidArgumentError, match="every input would write onto an input file"):
        batch.plan_outputs(items, str(tmp_path / "o2"), outputs=lambda it, p: [p, str(tmp_path / "a.png")])
    with pytest.raises(InvalidArgumentError, match="one output"):
        batch.plan_outputs(items[:1], "-", outputs=variants(2))


def test_an_input_that_is_not_there_claims_no_output(tmp_path):
    """Two inputs of one base name: the first is missing (it fails as it is read), so the second is written."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "a.png").write_bytes(b"x")
    items = [batch.Item(0, str(tmp_path / "gone" / "a.png"), "a.png"), batch.Item(1, str(tmp_path / "b" / "a.png"),
                                                                                 "a.png")]
    batch.plan_outputs(items, str(tmp_path / "o"))
    assert [it.error for it in items] == [None, None]
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "a.png").write_bytes(b"x")  # there: the first claims the output, the second fails
    batch.plan_outputs(items, str(tmp_path / "o"))
    assert items[0].error is None and items[1].error.startswith("output ")
    (tmp_path / "b" / "x_w.png").write_bytes(b"x")
    items = [batch.Item(0, str(tmp_path / "b" / "x.png"), "x.png"), batch.Item(1, str(tmp_path / "b" / "x_w.png"),
                                                                             "x_w.png")]
    batch.plan_outputs(items, str(tmp_path / "b"), suffix="_w")  # x.png is not there: x_w.png is no output of it
    assert [(it.error, it.earlier_output) for it in items] == [(None, False), (None, False)]
    items = [batch.Item(0, str(tmp_path / "b" / "x_w.png"), "x_w.png"), batch.Item(1, str(tmp_path / "c" / "x_w.png"),
                                                                                 "x_w.png")]
    batch.plan_outputs(items, str(tmp_path / "c"))  # c/x_w.png is not there: no earlier output in the way
    assert [(it.error, it.earlier_output) for it in items] == [(None, False), (None, False)]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_output_real_paths_match_realpath_through_links(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    try:
        os.symlink(tmp_path / "in", tmp_path / "linked")  # a folder that is the input folder
        os.symlink(tmp_path / "in" / "a.png", tmp_path / "out" / "alias.png")  # a file that is an input
        os.symlink("missing.png", tmp_path / "out" / "dangling.png")
    except OSError:
        pytest.skip("symbolic links not permitted here")
    monkeypatch.chdir(tmp_path)
    real = batch._OutputReal()
    paths = ["linked/a.png", "linked/new.png", "out/alias.png", "out/dangling.png", "out/new.png", "new.png",
             "out/../linked/a.png", str(tmp_path / "linked" / "b.png"), "linked/..", "out/sub/x.png", "."]
    for _ in range(2):  # the second time from the folder cache
        assert [real(p) for p in paths] == [os.path.normcase(os.path.realpath(p)) for p in paths]
    assert real("linked/a.png") == real("out/alias.png") == os.path.normcase(str(tmp_path / "in" / "a.png"))


def test_several_outputs_resume_redo_a_missing_one_and_remove_what_a_failure_wrote(tmp_path):
    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(3))

    def three(img, item):
        return [batch.Output(img, {"k": k}, output=p) for k, p in enumerate(item.outputs)]

    assert batch.run_batch(items, three, quiet=True).outputs == 6
    s = batch.run_batch(items, three, skip_existing=True, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.skipped, s.failed, s.outputs) == (0, 2, 0, 0)
    assert [r["status"] for r in lines(tmp_path / "m")] == ["skipped"] * 6
    os.remove(tmp_path / "out" / "b_2.png")
    s = batch.run_batch(items, three, skip_existing=True, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.skipped, s.outputs) == (1, 1, 1) and (tmp_path / "out" / "b_2.png").exists()
    assert [(os.path.basename(r["output"]), r["status"]) for r in lines(tmp_path / "m")][3:] == [
        ("b_0.png", "skipped"), ("b_1.png", "skipped"), ("b_2.png", "ok")]
    s = batch.run_batch(items, three, quiet=True)  # neither --overwrite nor --skip-existing: every input fails
    assert (s.ok, s.failed) == (0, 2)

    def second_fails(img, item):
        outs = three(img, item)
        outs[1].image = img.astype(np.float64)  # PNG cannot store it: the second output fails
        return outs

    s = batch.run_batch(items[:1], second_fails, overwrite=True, quiet=True,
                        manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.failed, s.outputs) == (0, 1, 0)
    assert [(os.path.basename(r["output"]), r["status"], r.get("removed")) for r in lines(tmp_path / "m")] == [
        ("a_0.png", "error", True), ("a_1.png", "error", None)]
    # a_0 was replaced, then removed; a_1 and a_2 are the earlier run's, never reached
    assert sorted(os.listdir(tmp_path / "out")) == ["a_1.png", "a_2.png", "b_0.png", "b_1.png", "b_2.png"]


def test_summary_line_counts_inputs_never_negative():
    s = batch.Summary(command="t", ok=1, skipped=1, failed=0, total=2, outputs=6, interrupted=True)
    assert s.line().startswith("t: 1 ok, 1 skipped, 0 failed, 6 outputs written in ")
    assert "interrupted, 0 not done" in s.line()
    assert "outputs written" not in batch.Summary(ok=3, total=3, outputs=3).line()


def test_run_batch_interrupt_records_finished_items(tmp_path, capsys, monkeypatch):
    names = tuple(f"{c}.png" for c in "abcdefghijklmnop")
    items = planned(tmp_path, names=names)
    real = batch.Manifest.write
    seen = []

    def write(self, rec):  # Ctrl-C arrives in the main thread as it starts writing the third record
        if len(seen) == 2 and not getattr(write, "fired", False):
            write.fired = True
            raise KeyboardInterrupt
        real(self, rec)
        seen.append(rec)

    monkeypatch.setattr(batch.Manifest, "write", write)
    s = batch.run_batch(items, flip, jobs=2, manifest=batch.Manifest(str(tmp_path / "m")), quiet=True)
    assert s.interrupted and s.exit_code == 130
    recorded = [os.path.basename(r["output"]) for r in lines(tmp_path / "m")]
    written = set(os.listdir(tmp_path / "out"))
    assert len(recorded) == len(set(recorded))  # exactly once
    recorded = set(recorded)
    # every output on disk is in the manifest; nothing past the submission window (2 * jobs + 2) was started
    assert recorded == written and 3 <= len(written) <= 3 + 6 < len(names)
    assert not [n for n in written if n.startswith(".stntool-tmp-")]
    n_left = len(names) - len(written)
    assert f"interrupted, {n_left} not done (rerun with --skip-existing)" in capsys.readouterr().err
    monkeypatch.setattr(batch.Manifest, "write", real)
    s = batch.run_batch(items, flip, skip_existing=True, quiet=True)
    assert s.skipped == len(written) and s.ok == n_left


def test_run_batch_stops_when_the_manifest_cannot_be_written(tmp_path, capsys, monkeypatch):
    items = planned(tmp_path)

    def full(self, rec):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch.Manifest, "write", full)
    s = batch.run_batch(items, flip, manifest=batch.Manifest(str(tmp_path / "m")), jobs=1)
    assert s.stopped and s.exit_code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"stntool: error: cannot write manifest {tmp_path / 'm'}: No space left on "
                                        "device; stopped (1 output written without a record removed; finish with "
                                        "--skip-existing --manifest-append)"]
    assert os.listdir(tmp_path / "out") == []  # the output whose record failed is gone


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_manifest_that_fails_part_way_leaves_only_recorded_outputs_and_resumes(tmp_path, capsys, monkeypatch,
                                                                                 jobs):
    """Every output left on disk has its record (the others, written while the manifest failed, are removed), the
    file holds whole lines only, and a rerun with --skip-existing --manifest-append finishes the batch: each
    output then has an "ok" record, so the manifest replays every one."""
    names = tuple(f"{c}.png" for c in "abcdefgh")
    items = planned(tmp_path, names=names, outputs=variants(3))
    real = batch.Manifest.write

    def fails_at_the_fifth(self, rec):
        if len(getattr(self, "seen", [])) == 4:
            raise OSError(28, "No space left on device")
        real(self, rec)
        self.seen = [*getattr(self, "seen", []), rec]

    def slow_flip(img, item):  # other items run while the failing record is written
        time.sleep(0.02)
        return [batch.Output(img[:, ::-1].copy(), {"k": k}, output=p) for k, p in enumerate(item.outputs)]

    monkeypatch.setattr(batch.Manifest, "write", fails_at_the_fifth)
    s = batch.run_batch(items, slow_flip, jobs=jobs, manifest=batch.Manifest(str(tmp_path / "m")), quiet=True)
    assert s.stopped and s.exit_code == 1
    recorded = {os.path.basename(r["output"]) for r in lines(tmp_path / "m") if r["status"] == "ok"}
    assert len(recorded) == 4 and set(os.listdir(tmp_path / "out")) == recorded
    assert "written without a record removed" in capsys.readouterr().err
    monkeypatch.setattr(batch.Manifest, "write", real)
    items = planned(tmp_path, names=names, outputs=variants(3))
    s = batch.run_batch(items, slow_flip, jobs=jobs, skip_existing=True, quiet=True,
                        manifest=batch.Manifest(str(tmp_path / "m"), append=True))
    assert s.exit_code == 0 and len(os.listdir(tmp_path / "out")) == 3 * len(names)
    ok = {os.path.basename(r["output"]) for r in lines(tmp_path / "m") if r["status"] == "ok"}
    assert ok == set(os.listdir(tmp_path / "out"))


def test_a_manifest_line_cut_by_a_full_disk_is_taken_back(tmp_path, monkeypatch):
    from stn_testing import disk_full_write

    real = os.write
    man = batch.Manifest(str(tmp_path / "m" / "run.jsonl"))
    man.write({"input": "a.png", "status": "ok"})
    monkeypatch.setattr(batch.os, "write", disk_full_write(real, tmp_path / "m"))  # 3 bytes, then ENOSPC
    with pytest.raises(OSError):
        man.write({"input": "b.png", "status": "ok"})
    monkeypatch.setattr(batch.os, "write", real)
    man.write({"input": "c.png", "status": "ok"})  # a caller that goes on writes where the cut line began
    man.close()
    assert (tmp_path / "m" / "run.jsonl").read_bytes() == (b'{"input": "a.png", "status": "ok"}\n'
                                                          b'{"input": "c.png", "status": "ok"}\n')


def test_with_overwrite_a_failed_manifest_keeps_the_outputs_and_stdout_gets_its_own_advice(tmp_path, capsys,
                                                                                          monkeypatch):
    """Removing an output that replaced an earlier file lost both; --manifest-append cannot go with stdout."""
    items = planned(tmp_path)
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / "a.png").write_bytes(b"an earlier output")

    def full(self, rec):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch.Manifest, "write", full)
    s = batch.run_batch(items, flip, overwrite=True, manifest=batch.Manifest(str(tmp_path / "m")), jobs=1)
    assert s.stopped and os.listdir(tmp_path / "out") == ["a.png"]
    assert decode_image((tmp_path / "out" / "a.png").read_bytes()).shape == (2, 3)  # the new one
    assert capsys.readouterr().err.strip().endswith("stopped (1 output written without a record kept; finish by "
                                                    "running it again)")
    items = planned(tmp_path / "again", names=("d.png",))
    s = batch.run_batch(items, flip, manifest=batch.Manifest("-"), jobs=1)
    assert capsys.readouterr().err.strip().endswith("stopped (1 output written without a record removed; finish "
                                                    "with --skip-existing)")


def _another_run_writes_first(monkeypatch, name, data=b"the other run"):
    """``write_atomic`` as when another run writing the same outputs creates ``name`` just before this one."""
    import stntool.io

    real = stntool.io.write_atomic

    def racing(path, blob, overwrite=False):
        if os.path.basename(path) == name and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        return real(path, blob, overwrite=overwrite)

    monkeypatch.setattr(stntool.io, "write_atomic", racing)


def test_an_output_another_run_writes_meanwhile_is_skipped_when_resuming(tmp_path, monkeypatch):
    items = planned(tmp_path, names=("a.png",), outputs=variants(3))
    _another_run_writes_first(monkeypatch, "a_1.png")

    def with_labels(img, item):
        return [batch.Output(img, {"k": k}, output=p, files={p + ".txt": b"label %d" % k})
                for k, p in enumerate(item.outputs)]

    s = batch.run_batch(items, with_labels, skip_existing=True, quiet=True,
                        manifest=batch.Manifest(str(tmp_path / "m")))
    assert (s.ok, s.failed, s.outputs, s.exit_code) == (1, 0, 2, 0)
    assert [(os.path.basename(r["output"]), r["status"]) for r in lines(tmp_path / "m")] == [
        ("a_0.png", "ok"), ("a_1.png", "skipped"), ("a_2.png", "ok")]
    out = tmp_path / "out"
    assert (out / "a_1.png").read_bytes() == b"the other run"  # never removed or replaced
    assert sorted(os.listdir(out)) == sorted(["a_0.png", "a_1.png", "a_2.png", "a_0.png.txt", "a_1.png.txt",
                                              "a_2.png.txt"])


def test_an_output_another_run_writes_meanwhile_fails_the_input_named(tmp_path, monkeypatch):
    items = planned(tmp_path, names=("a.png",))
    _another_run_writes_first(monkeypatch, "a.png")
    s = batch.run_batch(items, flip, quiet=True, manifest=batch.Manifest(str(tmp_path / "m")))
    assert s.failed == 1
    rec = lines(tmp_path / "m")[0]
    assert rec["error"] == f"output {tmp_path / 'out' / 'a.png'} exists (use --overwrite or --skip-existing)"


def test_interrupt_while_reporting_a_multi_output_item_records_each_output_once(tmp_path, monkeypatch):
    items = planned(tmp_path, names=("a.png", "b.png", "c.png"), outputs=variants(3))
    real = batch.Manifest.write
    seen = []

    def write(self, rec):
        if len(seen) == 1 and not getattr(write, "fired", False):
            write.fired = True
            raise KeyboardInterrupt  # arrives as the second record of the first input starts
        real(self, rec)
        seen.append(rec)

    monkeypatch.setattr(batch.Manifest, "write", write)
    s = batch.run_batch(items, lambda img, it: [batch.Output(img, output=p) for p in it.outputs], jobs=1,
                        manifest=batch.Manifest(str(tmp_path / "m")), quiet=True)
    recorded = [os.path.basename(r["output"]) for r in lines(tmp_path / "m")]
    assert s.interrupted and len(recorded) == len(set(recorded))
    assert set(recorded) == set(os.listdir(tmp_path / "out"))
    assert recorded[:3] == ["a_0.png", "a_1.png", "a_2.png"] and s.ok + s.skipped + s.failed <= s.total


def test_interrupt_inside_an_item_on_the_callers_thread_records_its_outputs_so_far(tmp_path, capsys):
    """One job runs items on the caller's thread, where Ctrl-C arrives: an item stopped part-way (a streaming
    ``process`` making many outputs of one input) has its outputs written so far recorded, each once, and
    counts as not done; a resumed run (--skip-existing) writes the rest."""
    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(6))

    def stream(img, item):  # Ctrl-C arrives while the fourth output of the first input is being made
        for k, path in enumerate(item.outputs):
            if item.input.endswith("a.png") and k == 3 and not getattr(stream, "fired", False):
                stream.fired = True
                raise KeyboardInterrupt
            yield batch.Output(img, output=path)

    s = batch.run_batch(items, stream, jobs=1, manifest=batch.Manifest(str(tmp_path / "m")), quiet=True)
    assert s.interrupted and s.exit_code == 130 and (s.ok, s.failed, s.outputs) == (0, 0, 3)
    recorded = [(os.path.basename(r["output"]), r["status"]) for r in lines(tmp_path / "m")]
    assert recorded == [("a_0.png", "ok"), ("a_1.png", "ok"), ("a_2.png", "ok")]
    assert sorted(os.listdir(tmp_path / "out")) == ["a_0.png", "a_1.png", "a_2.png"]
    assert "interrupted, 2 not done" in capsys.readouterr().err
    s = batch.run_batch(items, stream, jobs=1, skip_existing=True, quiet=True,
                        manifest=batch.Manifest(str(tmp_path / "m"), append=True))
    assert (s.ok, s.outputs) == (2, 9) and len(os.listdir(tmp_path / "out")) == 12


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_interrupt_stops_items_in_worker_threads_between_their_outputs(tmp_path, capsys, monkeypatch):
    """Workers cannot be interrupted: after Ctrl-C each stops at its next output (not after all of its 400), and
    a second Ctrl-C while the batch records what they wrote changes nothing: every file on disk has its line,
    and the batch ends with its summary."""
    import threading

    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(400))
    main = threading.main_thread().ident
    fired = []
    real = batch.Manifest.write

    def stream(img, item):
        for k, path in enumerate(item.outputs):
            if k == 20 and item.input.endswith("a.png"):
                fired.append(True)
                signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C: the main thread waits for the first input
            yield batch.Output(img, output=path)

    def write(self, rec):  # and Ctrl-C again as the stopped batch writes its first record
        if fired == [True]:
            fired.append(True)
            signal.pthread_kill(main, signal.SIGINT)
        real(self, rec)

    say = batch.say

    def say_after_ctrl_c(message):  # and once more as the summary line is written
        if "interrupted" in message:
            fired.append(True)
            signal.pthread_kill(main, signal.SIGINT)
        say(message)

    monkeypatch.setattr(batch.Manifest, "write", write)
    monkeypatch.setattr(batch, "say", say_after_ctrl_c)
    s = batch.run_batch(items, stream, jobs=2, manifest=batch.Manifest(str(tmp_path / "m")))
    assert s.interrupted and s.exit_code == 130 and s.ok == 0 and len(fired) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C as before, after the batch
    recorded = [os.path.basename(r["output"]) for r in lines(tmp_path / "m")]
    written = os.listdir(tmp_path / "out")
    assert sorted(recorded) == sorted(written) and len(recorded) == len(set(recorded))
    assert 21 <= len(written) < 400  # both stopped early: together fewer than one input's 400
    assert "interrupted, 2 not done" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_ctrl_c_while_an_item_is_submitted_keeps_its_records(tmp_path, monkeypatch):
    """Ctrl-C inside the pool's submit (starting a worker thread can take a while): the item is queued and runs;
    its outputs are recorded all the same."""
    import concurrent.futures
    import threading

    items = planned(tmp_path, names=("a.png", "b.png"), outputs=variants(30))
    main = threading.main_thread().ident
    submit = concurrent.futures.ThreadPoolExecutor.submit
    b_writing = threading.Event()

    def interrupted_submit(self, fn, item):
        fut = submit(self, fn, item)
        if item.input.endswith("b.png"):
            b_writing.wait(10)  # b has started and written some of its outputs
            signal.pthread_kill(main, signal.SIGINT)
            sum(range(1000))  # Ctrl-C is raised here, before submit returns, unless held back
        return fut

    def stream(img, item):
        for k, path in enumerate(item.outputs):
            if k == 5 and item.input.endswith("b.png"):
                b_writing.set()
            yield batch.Output(img, output=path)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", interrupted_submit)
    s = batch.run_batch(items, stream, jobs=2, manifest=batch.Manifest(str(tmp_path / "m")), quiet=True)
    assert s.interrupted
    recorded = [os.path.basename(r["output"]) for r in lines(tmp_path / "m")]
    assert sorted(recorded) == sorted(os.listdir(tmp_path / "out")) and any(n.startswith("b_") for n in recorded)


def test_manifest_append_keeps_lines_and_drops_a_cut_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"input": "a"}\n{"input": "b", "sta')  # cut inside its last line
    with batch.Manifest(str(path), append=True) as m:
        m.write({"input": "c"})
    # the cut record is not JSON: kept, it made the file unreadable as JSON lines (warp --params, jq)
    assert path.read_text() == '{"input": "a"}\n{"input": "c"}\n'
    path.write_text('{"input": "a"}\n{"input": "b"}')  # a whole record, its newline missing: kept
    with batch.Manifest(str(path), append=True) as m:
        m.write({"input": "c"})
    assert path.read_text() == '{"input": "a"}\n{"input": "b"}\n{"input": "c"}\n'
    path.write_text('{"input": "b", "sta')  # the only line, cut
    with batch.Manifest(str(path), append=True) as m:
        m.write({"input": "c"})
    assert path.read_text() == '{"input": "c"}\n'
    with batch.Manifest(str(path), append=True) as m:
        m.write({"input": "d"})
    assert path.read_text().endswith('{"input": "c"}\n{"input": "d"}\n')
    with batch.Manifest(str(path)) as m:  # the default replaces the file
        m.write({"input": "e"})
    assert path.read_text() == '{"input": "e"}\n'
    # a last line longer than the MiB first looked at (a TPS record of many points): cut at its start, not
    # inside it (the fragment stayed, and the next record was glued onto it)
    long = '{"input": "t", "tps": {"src": [' + ", ".join(["[1.5, 2.5]"] * 250000) + "]}}"
    for tail, kept in ((long[:-10], ""), (long, long + "\n")):
        path.write_text('{"input": "a"}\n' + tail)
        with batch.Manifest(str(path), append=True) as m:
            m.write({"input": "c"})
        assert path.read_text() == '{"input": "a"}\n' + kept + '{"input": "c"}\n'
    path.write_text(long[:-10])  # the only line, longer than a MiB, cut
    with batch.Manifest(str(path), append=True) as m:
        m.write({"input": "c"})
    assert path.read_text() == '{"input": "c"}\n'


def test_image_bytes_are_not_written_to_a_terminal(tmp_path, monkeypatch):
    png(tmp_path / "in" / "a.png", np.zeros((2, 3), np.uint8))
    items, folders = batch.discover([str(tmp_path / "in" / "a.png")])
    monkeypatch.setattr(batch, "_stdout_is_terminal", lambda: True)
    with pytest.raises(InvalidArgumentError, match="stdout, which is a terminal"):
        batch.plan_outputs(items, "-", folders=folders)
    monkeypatch.setattr(batch, "_stdout_is_terminal", lambda: False)
    assert batch.plan_outputs(items, "-", folders=folders) == "stdout"


def test_an_input_given_twice_is_read_once(tmp_path):
    """``a.png in/`` (the file, and the folder it is in) and a list naming in/b.png and ./in/b.png planned one
    output twice, and failed the second as "would also be written by" itself."""
    for n in ("a.png", "b.png"):
        png(tmp_path / "in" / n, np.full((2, 3), ord(n[0]), np.uint8))
    said = []
    a, b = str(tmp_path / "in" / "a.png"), os.path.join(os.curdir, os.path.relpath(tmp_path / "in" / "b.png"))
    items, _ = batch.discover([a, str(tmp_path / "in")], warn=said.append)
    assert [os.path.basename(it.input) for it in items] == ["a.png", "b.png"] and [it.index for it in items] == [0, 1]
    assert said == [f"{tmp_path / 'in' / 'a.png'} given more than once: each is read once"]
    said.clear()
    items, _ = batch.discover(listed=[os.path.relpath(b), b, os.path.relpath(b)], warn=said.append)
    assert len(items) == 1 and said == [f"{b} and 1 more given more than once: each is read once"]
    batch.plan_outputs(items, str(tmp_path / "out"))
    assert batch.run_batch(items, flip, quiet=True).exit_code == 0
    # a link is an input of its own (its own name), and so is the same file under another relative path
    os.symlink(tmp_path / "in" / "a.png", tmp_path / "in" / "c.png")
    items, _ = batch.discover([str(tmp_path / "in")], listed=(), warn=said.append)
    assert [os.path.basename(it.input) for it in items] == ["a.png", "b.png", "c.png"]


def test_a_nul_separated_list_read_as_lines_says_to_give_null(tmp_path):
    """Each entry failed on its own ("ValueError: embedded null byte"); a binary file given as the list, likewise."""
    listing = tmp_path / "l"
    listing.write_bytes(b"in/a.png\0in/b.png\0")
    with pytest.raises(InvalidArgumentError, match=r"holds NUL bytes: a list from find -print0 needs -0/--null"):
        batch.read_list(str(listing))
    assert batch.read_list(str(listing), null=True) == ["in/a.png", "in/b.png"]
