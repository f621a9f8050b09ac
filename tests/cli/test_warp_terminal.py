"""Progress bar on a real terminal (a pseudo-terminal on stderr), never on a pipe; stdout carries data only.
And the output location errors that root cannot bypass (a parent that is a file, /proc, /dev/full)."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from cli_helpers import SHIFT, encode, small_rgb, write


def make_inputs(folder, n=3):
    folder.mkdir()
    for i in range(n):
        write(folder / f"{i}.png", encode(small_rgb(seed=i), ".png"))
    return folder


def run_with_pty_stderr(args, columns=100):
    """Run stntool with stderr on a pseudo-terminal and stdout on a pipe; returns (rc, stdout, terminal text).

    ``columns=0`` leaves the terminal size unset (0x0), as fresh pseudo-terminals and some CI runners report.
    """
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    p = subprocess.Popen(["stntool", *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO once the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    out = p.stdout.read()
    p.wait(timeout=120)
    os.close(master)
    return p.returncode, out.decode(), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(tmp_path):
    src = make_inputs(tmp_path / "in")
    args = ["warp", "--theta", SHIFT, str(src), "-o", str(tmp_path / "out"), "--manifest", "-"]
    rc, out, term = run_with_pty_stderr(args)
    assert rc == 0, term
    assert "/3 [" in term and "img" in term  # tqdm's counter "k/3 [elapsed..., img/s]"
    assert "stntool warp: 3 ok, 0 skipped, 0 failed" in term
    assert "\r" in term.split("stntool warp:")[0]  # the bar redraws in place before the summary
    recs = [json.loads(line) for line in out.splitlines()]  # stdout: the manifest and nothing else
    assert [r["status"] for r in recs] == ["ok"] * 3

    # a terminal that reports 0 columns still gets a (fixed-width) bar
    rc, out, term = run_with_pty_stderr(args[:-3] + [str(tmp_path / "out0"), "--manifest", "-"], columns=0)
    assert rc == 0 and "/3 [" in term and len(out.splitlines()) == 3

    # --quiet on the same terminal: no bar, no summary
    rc, out, term = run_with_pty_stderr(args[:-2] + ["-o", str(tmp_path / "out2"), "-q", "--manifest", "-"])
    assert rc == 0 and term.strip() == "" and len(out.splitlines()) == 3

    # stderr on a pipe: only the summary line, no bar, no carriage returns
    p = subprocess.run(["stntool", *args[:-4], "-o", str(tmp_path / "out3"), "--manifest", "-"],
                       capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("stntool warp: 3 ok") and "\r" not in p.stderr
    assert [json.loads(line)["status"] for line in p.stdout.splitlines()] == ["ok"] * 3


def test_no_progress_bar_and_no_tqdm_import_without_terminal(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    code = ("import sys\nfrom stntool.cli import cli\n"
            f"try:\n    cli(['warp', '--theta', '{SHIFT}', {str(tmp_path / 'a.png')!r}, '-o', "
            f"{str(tmp_path / 'o.png')!r}])\nexcept SystemExit:\n    pass\n"
            "print('tqdm' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.strip() == "False" and "1 ok" in p.stderr


# ---------------------------------------------------------------- output locations that fail for root too

def test_output_under_a_regular_file(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    write(tmp_path / "b.png", encode(small_rgb(seed=1), ".png"))
    (tmp_path / "plainfile").write_text("not a folder")
    # a single file target whose parent is a regular file
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "plainfile" / "o.png"), "--manifest", "-")
    assert r.exit_code == 1
    rec = json.loads(r.stdout)
    assert rec["status"] == "error" and "cannot create folder" in rec["error"]
    lines = r.stderr.splitlines()
    assert lines[0].startswith("stntool: error: ") and "a.png" in lines[0] and "in the way" in lines[0]
    assert "Traceback" not in r.stderr and "0 ok, 0 skipped, 1 failed" in lines[-1]
    # a folder target: -o is an existing file -> usage error, nothing written
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "plainfile"))
    assert r.exit_code == 2 and "exists and is not a folder" in r.stderr and r.stdout == ""
    # mirrored sub-folder collides with a file: that input fails, the other proceeds
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").write_text("")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    write(tmp_path / "in" / "sub" / "x.png", encode(small_rgb(), ".png"))
    write(tmp_path / "in" / "y.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, "-r", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--manifest", "-")
    assert r.exit_code == 1
    status = {os.path.basename(json.loads(line)["input"]): json.loads(line)["status"] for line in r.stdout.splitlines()}
    assert status == {"x.png": "error", "y.png": "ok"}
    assert (tmp_path / "out" / "y.png").exists()
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".stntool-tmp-")]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs procfs")
def test_output_into_proc_is_refused(tmp_path, run):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", "/proc/self/stntool-test.png")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("stntool: error: ") and "a.png" in r.stderr and "cannot write" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_device_manifest_and_stdout(tmp_path):
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    # image bytes to a full stdout
    with open("/dev/full", "wb") as full:
        p = subprocess.run(["stntool", "warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o", "-", "-q"],
                           stdout=full, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "a.png: cannot write to stdout: No space left on device" in p.stderr  # said "OSError: [Errno 28] ..."
    # the manifest to a full device
    p = subprocess.run(["stntool", "warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o",
                        str(tmp_path / "o.png"), "-q", "--manifest", "/dev/full"], capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("stntool: error: cannot write manifest /dev/full: No space left on device")
    assert "1 output written without a record removed" in p.stderr
    assert not (tmp_path / "o.png").exists()  # written before its record failed, then removed


def test_disk_full_while_writing_an_output(tmp_path, run, monkeypatch):
    """ENOSPC in the middle of writing the temp file: an error for that input, no output and no temp file."""
    import stntool.io
    from stn_testing import disk_full_fdopen, disk_full_write

    monkeypatch.setattr(stntool.io.os, "fdopen", disk_full_fdopen(os.fdopen))  # named temporary files
    monkeypatch.setattr(stntool.io.os, "write", disk_full_write(os.write, tmp_path / "out"))  # unnamed ones
    write(tmp_path / "a.png", encode(small_rgb(), ".png"))
    r = run("--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--manifest", "-")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"] == f"{tmp_path / 'out' / 'a.png'}: cannot write: No space left on device"
    assert r.stderr.splitlines()[0].endswith("a.png: cannot write: No space left on device")
    assert os.listdir(tmp_path / "out") == []
