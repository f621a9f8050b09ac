"""The command line ends with os._exit after numba loaded, keeps scipy out of its process and skips numba's
entry-point scan. Each shortcut is held to what a normal interpreter exit guarantees."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np

import stntool

PKG = pathlib.Path(stntool.__file__).parent

SCRIPT = r"""
import atexit, sys, threading, time
out = sys.argv[1]

def at_exit():
    with open(out + "/atexit.txt", "w") as f:      # like a checkpoint written at exit
        f.write("numba loaded: %s\n" % ("numba" in sys.modules))
        f.write("x" * 100000)

atexit.register(at_exit)

def late_writer():                                # a non-daemon thread still working when the command returns
    time.sleep(0.5)
    with open(out + "/thread.txt", "w") as f:
        f.write("done")

threading.Thread(target=late_writer).start()
sys.argv = ["stntool", "warp", "--theta", "0.9,0.1,0,-0.1,0.9,0", out + "/in", "-o", out + "/o",
            "--manifest", out + "/m.jsonl", "-q"]
from stntool.cli import main
main()
"""


def test_cli_exit_runs_atexit_joins_threads_and_leaves_complete_files(tmp_path):
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(tmp_path / "in" / f"{i}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    (tmp_path / "in" / "3.png").write_bytes(b"not a png")
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr  # one bad input: the exit status survives os._exit
    assert p.stderr.startswith(f"stntool: error: {tmp_path / 'in' / '3.png'}: ")
    text = (tmp_path / "atexit.txt").read_text()
    assert text.startswith("numba loaded: True\n") and len(text) == 19 + 100000  # the os._exit path was taken
    assert (tmp_path / "thread.txt").read_text() == "done"
    raw = (tmp_path / "m.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    recs = [json.loads(line) for line in raw.decode().splitlines()]
    assert [r["status"] for r in recs] == ["ok", "ok", "ok", "error"]
    assert sorted(os.listdir(tmp_path / "o")) == ["0.png", "1.png", "2.png"]


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _jitted_functions(tree):
    """Functions decorated with a numba decorator (jit_*, njit, cuda.jit, vectorize...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                src = ast.unparse(d)
                if "jit" in src or "vectorize" in src or "stencil" in src:
                    yield node
                    break


def test_no_stntool_code_needs_scipy():
    """The CLI puts None for scipy in sys.modules: stntool must never import it, and no jitted function may use
    np.linalg (numba implements it with SciPy's LAPACK bindings)."""
    sources = sorted(PKG.rglob("*.py"))
    assert len(sources) > 10
    jitted = 0
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not [m for m in _imports(tree) if m.split(".")[0] == "scipy"], path
        for fn in _jitted_functions(tree):
            jitted += 1
            names = {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
            names |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            assert "linalg" not in names and "scipy" not in names, f"{path}:{fn.name}"
    assert jitted > 10  # the scan does see the kernels


def test_entry_point_scan_skip_loses_no_extension_stntool_uses():
    """The CLI marks numba's entry-point scan done: only third-party numba extensions are skipped, and none of
    the packages stntool runs on registers one (numba-cuda is found by import, not by entry point)."""
    from importlib.metadata import entry_points

    ours = {"numba", "numba-cuda", "numba_cuda", "stntool", "numpy", "opencv-python-headless", "click", "tqdm"}
    for ep in entry_points(group="numba_extensions"):
        dist = getattr(ep, "dist", None)
        assert dist is None or dist.metadata["Name"] not in ours, ep
    code = ("import sys; sys.modules.setdefault('scipy', None)\n"
            "from stntool import _runtime; _runtime.cli_process = True\n"
            "import numpy as np, stntool, numba.core.entrypoints as e\n"
            "out = stntool.warp(np.arange(12, dtype=np.uint8).reshape(3, 4), [[-1, 0, 0], [0, 1, 0]], backend='cpu')\n"
            "print(e._already_initialized, out[0].tolist())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.split() == ["True", "[3,", "2,", "1,", "0]"], p.stderr


def test_cli_exit_stops_thread_pools_started_on_the_main_thread(tmp_path):
    """A pool (the CPU kernels' row pool) started by the main thread must not keep the exit waiting forever."""
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8))
    script = (
        "import sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "pool = ThreadPoolExecutor(1)\n"
        "pool.submit(lambda: None).result()          # an idle non-daemon worker, as a kernel pool leaves\n"
        f"sys.argv = ['stntool', 'augment', {str(tmp_path / 'in')!r}, '-o', {str(tmp_path / 'o')!r}, '--seed', '1',\n"
        f"            '--rotate', '10', '--preview', {str(tmp_path / 's.png')!r}, '-q']\n"
        "from stntool.cli import main\n"
        "main()\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "s.png").exists() and (tmp_path / "o" / "a_000.png").exists()
