"""Through the installed entry point: real exit codes, start-up imports, SIGINT and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_helpers import SHIFT, encode, write


def test_help_does_not_import_numba_or_cv2():
    code = ("import sys; from stntool.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "try:\n    cli(['warp', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('numba' in sys.modules, 'cv2' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.strip().splitlines()[-1] == "False False"
    assert "Examples" in p.stdout


def test_python_m_and_exit_codes(tmp_path):
    p = subprocess.run([sys.executable, "-m", "stntool", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "stntool" in p.stdout
    p = subprocess.run(["stntool", "warp", "--theta", "1,2"], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_no_codec_noise_on_fd2(tmp_path):
    jpg = encode(np.zeros((64, 64, 3), np.uint8), ".jpg")
    write(tmp_path / "half.jpg", jpg[: len(jpg) // 2])
    write(tmp_path / "bad.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    write(tmp_path / "junk.jpg", b"\xff\xd8\xff" + b"\x12" * 200 + b"\xff\xda\0\2" + b"\xff\xd9")
    p = subprocess.run(["stntool", "warp", "--theta", SHIFT, str(tmp_path), "-o", str(tmp_path / "o"), "-q"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("stntool: error: ") for line in lines), p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_batch_records_every_file_and_resumes(tmp_path, sig, status):
    """Ctrl-C, and SIGTERM (which ended the process between a file and its record, or left a temp file), wind
    the batch down: every output written is whole and recorded, no temp file is left, a rerun finishes it."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        write(src / f"{i:03d}.png", encode(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), ".png"))
    out = tmp_path / "out"
    man = tmp_path / "m.jsonl"
    cmd = ["stntool", "warp", "--theta", SHIFT, str(src), "-o", str(out), "--jobs", "2", "-q"]
    p = subprocess.Popen(cmd + ["--manifest", str(man)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and len(os.listdir(out)) >= 3):
        time.sleep(0.05)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    assert b"Traceback" not in err and b"interrupted" in err
    names = os.listdir(out)
    assert not [n for n in names if n.startswith(".stntool-tmp-")]
    recorded = {os.path.basename(json.loads(line)["output"]) for line in man.read_text().splitlines()
                if json.loads(line)["status"] == "ok"}
    assert recorded == set(names) and 0 < len(names) < 60
    for n in names:  # every output is complete
        from stntool.io import decode_image
        decode_image((out / n).read_bytes())
    p = subprocess.run(cmd + ["--skip-existing"], capture_output=True, text=True)
    assert p.returncode == 0
    assert len(os.listdir(out)) == 60


def test_sigterm_is_taken_as_a_ctrl_c_and_held_back_as_one():
    """SIGTERM ended the process at once: between an output and its manifest record (a replay then missed the
    output, with exit 0), or with a temp file left. It now runs SIGINT's handler of the moment: held back inside
    sigint_deferred (a file and its record), a KeyboardInterrupt after it, and status 143 from the command line."""
    code = """
import os, signal, sys
from stntool import _interrupts
_interrupts.sigterm_as_sigint()
held = []
try:
    with _interrupts.sigint_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        held.append("block finished")
except KeyboardInterrupt:
    held.append("interrupted after the block")
print(held, _interrupts.terminated)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
_interrupts.sigterm_as_sigint()  # a handler set by whoever started the process is kept
print(signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job started with & by a script: Ctrl-C winds nothing down,
_interrupts.sigterm_as_sigint()               # so SIGTERM keeps ending it at once
print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines() == ["['block finished', 'interrupted after the block'] True", "True", "True"], \
        p.stderr


def test_closed_standard_streams_are_no_tracebacks(tmp_path):
    # a shell's >&- or <&- leaves Python's sys.stdout (stdin) None: flushing it at the end turned a run that
    # wrote every output into a traceback and exit 1, --manifest - and -o - into tracebacks mid-batch
    for name in ("a", "b"):
        write(tmp_path / f"{name}.png", encode(np.full((6, 8, 3), 40 * len(name), np.uint8), ".png"))

    def stntool(*args, close):
        return subprocess.run([sys.executable, "-m", "stntool", *args], text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, preexec_fn=lambda: os.close(close))

    out = tmp_path / "o"
    p = stntool("warp", "--theta", SHIFT, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "-q",
                close=1)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]
    # records or image bytes for a closed stdout would go nowhere ("1 ok", exit 0): usage errors
    p = stntool("warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "m"), "--manifest", "-",
                close=1)
    assert p.returncode == 2 and "- writes the records to stdout, which is closed (>&-)" in p.stderr, p.stderr
    p = stntool("warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o", "-", close=1)
    assert p.returncode == 2 and "writes the image's bytes to stdout, which is closed (>&-)" in p.stderr, p.stderr
    assert not (tmp_path / "m").exists()
    p = stntool("warp", "--theta", SHIFT, "-", "-o", str(tmp_path / "s.png"), close=0)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "<stdin>: empty" in p.stderr, p.stderr
    p = stntool("warp", "--params", "-", "-o", str(tmp_path / "p"), close=0)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr


def test_a_reader_leaving_stdout_partway_fails_the_image(tmp_path):
    # a buffered write to a pipe whose reader left returned the bytes the pipe took and no error: "1 ok", exit 0
    # and an "ok" manifest line for an image cut after 64 KiB
    img = np.random.default_rng(0).integers(0, 256, (400, 500, 3), dtype=np.uint8)  # a PNG of about 600 KB
    write(tmp_path / "a.png", encode(img, ".png"))
    man = tmp_path / "m.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "stntool", "warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o",
                          "-", "--manifest", str(man)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(p.stdout.read(10)) == 10
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1 and "Traceback" not in err, err
    rec = json.loads(man.read_text())
    assert rec["status"] == "error" and rec["error"] == "stdout was closed before the image was written (broken pipe)"
    assert "a.png: stdout was closed before the image was written (broken pipe)" in err and "Errno" not in err


def test_ctrl_c_before_the_batch_exits_130_with_one_line(tmp_path, monkeypatch):
    # Click's own handling said "Aborted!" and exit 1 for a Ctrl-C while a command set up (imports, planning)
    from click.testing import CliRunner

    from stntool import batch
    from stntool.cli import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "discover", interrupted)
    write(tmp_path / "a.png", encode(np.zeros((6, 8, 3), np.uint8), ".png"))
    r = CliRunner().invoke(cli, ["warp", "--theta", SHIFT, str(tmp_path / "a.png"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 130 and r.output.strip() == "stntool: interrupted", r.output
