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
    code, captured = out[0].split(" ", 1)
    lists = eval(captured)  # noqa: S307 - the script's own repr of two lists of str
    assert code == "0" and len(lists) == 2 and all(x and set(x) == {"libfoo: C-level noise"} for x in lists)
    assert "warning" not in p.stdout.split("\n", 1)[1]  # no manifest line blames a decoder


HELD = textwrap.dedent(r"""
    import os, sys
    import numpy as np
    from stntool import batch, io
    root = sys.argv[1]
    os.makedirs(f"{root}/in")
    for n in "abc":
        open(f"{root}/in/{n}.png", "wb").write(io.encode_image(np.zeros((3, 4), np.uint8), "png"))
    before = os.fstat(2)

    def process(img, item):
        os.write(2, f"libbar: stray {item.index}\n".encode())  # C-level, outside any capture
        return batch.Output(img)

    items, f = batch.discover([f"{root}/in"])
    batch.plan_outputs(items, f"{root}/out", folders=f)
    s = batch.run_batch(items, process, jobs=1, manifest=batch.Manifest(f"{root}/m.jsonl"), quiet=True)
    after = os.fstat(2)
    os.write(2, b"after the batch\n")
    print(s.exit_code, (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino))
    print(open(f"{root}/m.jsonl").read())
""")


def test_lines_written_between_captures_of_a_batch_reach_the_real_stderr(tmp_path):
    """In a batch fd 2 stays on the scratch file between captures; what C code writes there outside a
    capture is no decoder's: it reaches the real stderr (by the batch's end), and fd 2 points back after.
    One job: a line written while another thread's capture is open would be that capture's."""
    p = subprocess.run([sys.executable, "-c", HELD, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    err = p.stderr.splitlines()
    assert sorted(x for x in err if x.startswith("libbar")) == ["libbar: stray 0", "libbar: stray 1",
                                                               "libbar: stray 2"], p.stderr
    assert err[-1] == "after the batch", p.stderr
    out = p.stdout.split("\n", 1)
    assert out[0] == "0 True" and "libbar" not in out[1] and "warning" not in out[1], p.stdout


CAPTURES = textwrap.dedent(r"""
    import os, threading
    from stntool.io import STDERR_LOCK
    inside = threading.Barrier(2, timeout=10)
    got = {}

    def decoder(name, noise):
        with STDERR_LOCK.capture() as said:
            inside.wait()  # both captures are open at once (they used to run one at a time)
            if noise:
                os.write(2, noise)
            inside.wait()
        got[name] = (list(said), said.unclear)

    ts = [threading.Thread(target=decoder, args=("a", b"libfoo: from a\n")), threading.Thread(target=decoder,
                                                                                              args=("b", b""))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(got["a"], got["b"])
    with STDERR_LOCK.capture() as said:  # alone: the lines are its own
        os.write(2, b"libfoo: lone\n")
    print(list(said), said.unclear)
    with STDERR_LOCK.capture(alone=True) as said:
        os.write(2, b"libfoo: alone\n")
    print(list(said), said.unclear)
    os.write(2, b"real stderr\n")
""")


def test_captures_overlap_and_say_when_their_lines_may_be_mixed():
    p = subprocess.run([sys.executable, "-c", CAPTURES], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "real stderr\n", p.stderr
    assert p.stdout.splitlines() == ["(['libfoo: from a'], True) (['libfoo: from a'], True)",
                                     "['libfoo: lone'] False", "['libfoo: alone'] False"]


def test_decodes_in_threads_keep_each_decoders_own_message():
    import struct
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    from stntool.errors import ImageReadError

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def short_png(seed):  # valid chunks, too little image data: libpng complains on fd 2
        img = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        raw = b"".join(b"\0" + img[i].tobytes() for i in range(32))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    good = io.encode_image(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8), "png")
    blobs = [short_png(i) if i % 3 == 0 else good for i in range(24)]

    def one(data):
        said = []
        try:
            io.decode_image(data, warnings=said)
            return "ok" if not said else f"warned: {said}"  # no other decoder's message lands here
        except ImageReadError as e:
            return str(e)

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, blobs))
    bad = "cannot decode PNG data (corrupt or unsupported; libpng error: Not enough image data)"
    assert results == [bad if i % 3 == 0 else "ok" for i in range(24)]


def test_ctrl_c_inside_sigint_deferred_arrives_when_the_block_ends():
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    # Python's own handler, whatever an earlier test in this process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        handler = signal.getsignal(signal.SIGINT)
        steps = []
        with pytest.raises(KeyboardInterrupt):
            with io.sigint_deferred():
                # Ctrl-C between writing a record and counting it: what the interpreter does when one arrives
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
                steps.append("counted")
            steps.append("never")
        assert steps == ["counted"] and signal.getsignal(signal.SIGINT) is handler
        with io.sigint_deferred():
            steps.append("quiet")
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("alone", [False, True])
def test_ctrl_c_held_back_while_a_capture_opens_leaves_no_capture_open(monkeypatch, alone):
    """A Ctrl-C during a capture's set-up (fd 2 swapped with Ctrl-C held back) is raised as that block ends,
    before the caller's code runs: the capture is closed all the same and fd 2 points back, so the next
    writer (the batch's summary line) does not wait for it forever."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    guard = io._Fd2Guard()
    real = guard._redirect

    def redirect_then_ctrl_c():
        done = real()
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # arrives while held back
        return done

    monkeypatch.setattr(guard, "_redirect", redirect_then_ctrl_c)
    before = fd2_identity()
    ran = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with guard.capture(alone=alone):
                ran.append("body")
        assert ran == [] and guard._open == [] and fd2_identity() == before
        entered = threading.Event()

        def writer():
            with guard:
                entered.set()

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        assert entered.wait(5.0), "a writer waits for a capture that was never closed"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_a_kernel_loads_from_the_cache_arrives_once_it_is_loaded(monkeypatch):
    """llvmlite calls back into Python while the JIT takes machine code in; a KeyboardInterrupt raised in that
    callback was printed ("Exception ignored on calling ctypes callback") and dropped, and the run went on
    to exit 0. Loading holds Ctrl-C back, so it arrives when the load is done."""
    import signal
    import threading

    from stntool.sampling import _kernel_cache

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread only")
    cls = _kernel_cache._cpu_cache_class()
    steps = []

    def light(self, sig, target_context):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # Ctrl-C arrives while the machine code loads
        steps.append("loaded")
        return "compile result"

    monkeypatch.setattr(cls, "_load_light", light)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            object.__new__(cls).load_overload(None, None)
        assert steps == ["loaded"]
    finally:
        signal.signal(signal.SIGINT, previous)
