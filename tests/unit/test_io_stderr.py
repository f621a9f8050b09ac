"""stntool.io's fd-2 capture: C-level codec output is captured, Python's own stderr never is, and
fd 2 always points back where it was, whatever interrupts the swap."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from stntool import batch, io


def fd2_identity():
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def test_interrupt_right_after_fd2_is_redirected_restores_it(monkeypatch):
    data = io.encode_image(np.zeros((4, 4, 3), np.uint8), "png")
    before = fd2_identity()
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    real = os.dup2
    calls = []

    def dup2(a, b, *k):
        r = real(a, b, *k)
        calls.append((a, b))
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C lands after fd 2 was pointed at the scratch file
        return r

    monkeypatch.setattr(os, "dup2", dup2)
    with pytest.raises(KeyboardInterrupt):
        io.decode_image(data)
    monkeypatch.setattr(os, "dup2", real)
    assert len(calls) == 2 and fd2_identity() == before
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds  # the copy of fd 2 was closed too
    assert io.decode_image(data).shape == (4, 4, 3)  # the guard is usable afterwards


def test_run_batch_gives_sys_stderr_back_and_leaves_tqdm_settings(tmp_path):
    from tqdm import tqdm

    os.makedirs(tmp_path / "in")
    (tmp_path / "in" / "a.png").write_bytes(io.encode_image(np.zeros((2, 3), np.uint8), "png"))
    items, folders = batch.discover([str(tmp_path / "in")])
    batch.plan_outputs(items, str(tmp_path / "out"), folders=folders)
    before, interval = sys.stderr, tqdm.monitor_interval
    seen = []
    s = batch.run_batch(items, lambda img, it: seen.append(sys.stderr) or batch.Output(img), quiet=True,
                        progress=True)
    assert s.exit_code == 0 and sys.stderr is before and tqdm.monitor_interval == interval
    assert len(seen) == 1


SCRIPT = textwrap.dedent(r"""
    import os, sys, threading, warnings
    import numpy as np
    from stntool import batch, io
    root = sys.argv[1]
    os.makedirs(f"{root}/in")
    for n in "ab":
        open(f"{root}/in/{n}.png", "wb").write(io.encode_image(np.zeros((3, 4), np.uint8), "png"))
    captured = []

    def process(img, item):
        held, done = threading.Event(), threading.Event()

        def other_decoder():  # another thread's decoder capturing fd 2 right now
            with io.STDERR_LOCK.capture() as said:
                held.set()
                done.wait(5)
                os.write(2, b"libfoo: C-level noise\n")
            captured.append(said)

        t = threading.Thread(target=other_decoder)
        t.start()
        held.wait(5)
        print(f"MY-LINE {os.path.basename(item.input)}", file=sys.stderr, flush=True)
        warnings.warn(f"user warning {item.index}")
        done.set()
        t.join()
        return batch.Output(img)

    items, f = batch.discover([f"{root}/in"])
    batch.plan_outputs(items, f"{root}/out", folders=f)
    s = batch.run_batch(items, process, jobs=2, manifest=batch.Manifest(f"{root}/m.jsonl"), quiet=True)
    print(s.exit_code, captured)
    print(open(f"{root}/m.jsonl").read())
""")


def test_python_stderr_from_any_thread_is_never_captured(tmp_path):
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    err = p.stderr.splitlines()
    assert sorted(x for x in err if x.startswith("MY-LINE")) == ["MY-LINE a.png", "MY-LINE b.png"], p.stderr
    assert sum("UserWarning: user warning" in x for x in err) == 2, p.stderr
    assert "libfoo" not in p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "0 [['libfoo: C-level noise'], ['libfoo: C-level noise']]"
    assert "warning" not in p.stdout.split("\n", 1)[1]  # no manifest line blames a decoder
