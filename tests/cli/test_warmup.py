"""`stntool warmup` and the first-compile line of the command line."""

import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stntool import warmup as lib
from stntool.cli import cli
from stntool.errors import InvalidArgumentError

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SAMPLES = os.path.join(ROOT, "samples")
LINE = re.compile(r"^stntool: compiling kernels for (\S+(?: grey)?) (\S+)(?: in a second process)? "
                  r"\(first run only, cached in (.+)\)$")


def invoke(*args):
    return CliRunner().invoke(cli, ["warmup", *args], catch_exceptions=False)


# --------------------------------------------------------------------------- planning (no compiling)

def test_plan_defaults_are_what_warp_runs_by_default():
    tasks = lib.plan()
    assert [t.name for t in tasks] == ["affine uint8 bilinear", "affine uint16 bilinear", "affine float32 bilinear"]
    assert all(t.paddings == ("zeros",) for t in tasks)


def test_plan_all_and_restrictions():
    everything = lib.plan(everything=True)
    # 4 sampling families x 4 dtypes x 3 modes, plus one backward task (bilinear float64 only)
    assert len(everything) == 4 * 4 * 3 + 1
    assert {t.paddings for t in everything} == {lib.PADDINGS}
    some = lib.plan(families=["tps", "backward"], modes=["nearest"], dtypes=["uint8"], everything=True)
    assert [t.name for t in some] == ["tps uint8 nearest", "backward float64 bilinear"]
    assert some[0].paddings == lib.PADDINGS


@pytest.mark.parametrize("kw", [dict(modes=["linear"]), dict(dtypes=["int8"]), dict(families=[])])
def test_plan_rejects_unknown_names(kw):
    with pytest.raises(InvalidArgumentError):
        lib.plan(**kw)


def test_bundles_split_the_work_without_compiling_a_signature_twice():
    tasks = lib.plan(families=["affine", "tps"], modes=["bilinear", "nearest"], dtypes=["uint8", "uint16"])
    bundles = lib._bundles(tasks, 2)
    assert sorted(map(repr, (t for b in bundles for t in b))) == sorted(map(repr, tasks))  # each task once
    # the first dtype's TPS tasks together and first (they build the float64 plan kernels), the others' last
    assert [(t.family, t.dtype) for t in bundles[0]] == [("tps", "uint8")] * 2
    assert [(t.family, t.dtype) for b in bundles[-2:] for t in b] == [("tps", "uint16")] * 2
    assert all(len(b) == 1 for b in bundles[1:])  # one dtype alone still keeps two processes busy
    one_dtype = lib.plan(families=["projective"], modes=["bilinear", "nearest", "bicubic"], dtypes=["uint8"])
    assert len(lib._bundles(one_dtype, 2)) == 3 and len(lib._bundles(tasks, 1)) == 1


# --------------------------------------------------------------------------- command line

def test_help_has_examples_and_defaults():
    r = invoke("--help")
    assert r.exit_code == 0
    assert "stntool warmup --all" in r.output and "NUMBA_CACHE_DIR" in r.output and "Defaults:" in r.output


@pytest.mark.parametrize("args, word", [(["--modes", "linear"], "linear is not one of"),
                                         (["--dtypes", ""], "give one or more of"),
                                         (["--modes", "linear,cubic"], "linear, cubic are not one of"),
                                         (["--jobs", "0"], "--jobs"), (["--kernels", "affine,warp"], "--kernels")])
def test_usage_errors_exit_2(args, word):
    r = invoke(*args)
    assert r.exit_code == 2 and word in r.stderr and "Traceback" not in r.stderr


def test_cuda_without_a_gpu_is_a_usage_error():
    from stntool.sampling import cuda_available

    if cuda_available():
        pytest.skip("a GPU is usable here")
    r = invoke("--device", "cuda")
    assert r.exit_code == 2 and "cuda" in r.stderr


def test_warmup_in_process_reports_calls_and_cache():
    # uint8 affine bilinear is the kernel every CLI test uses, so it is normally cached already
    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    summary = r.stderr.splitlines()[-1]
    assert summary.startswith("stntool warmup: 8 calls ok, ") and "; cache: " in summary


@pytest.mark.parametrize("cache_env", [None, "/ro/cache"])
def test_warmup_without_a_writable_cache_says_nothing_was_cached(monkeypatch, cache_env):
    """No folder the user can write: the kernels compiled in memory only, and the summary must not name a cache
    folder as if they were kept there."""
    if cache_env is None:
        monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("NUMBA_CACHE_DIR", cache_env)
    monkeypatch.setattr(lib, "run", lambda *a, **k: lib.Result(calls=8, uncached=True, seconds=1.0))
    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu")
    assert r.exit_code == 1, r.stderr  # a Docker or CI step that warms a cache must see that it kept nothing
    summary = r.stderr.splitlines()[-1]
    assert summary.startswith("stntool warmup: 8 calls ok, ") and "; cache: none: " in summary
    assert "compiles them again" in summary
    assert (f"NUMBA_CACHE_DIR={cache_env} is not writable" in summary) == (cache_env is not None)
    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu", "-q")  # exit 1 with --quiet too, and why
    assert r.exit_code == 1 and r.stderr.startswith("stntool: error: warmup: nothing was cached ("), r.stderr


def test_warmup_says_when_numba_passed_numba_cache_dir_over(monkeypatch, tmp_path):
    """numba goes on to the package's own folder when NUMBA_CACHE_DIR cannot be written: the summary named that
    folder only, so a Docker step warming NUMBA_CACHE_DIR looked fine and left it empty."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "wanted"))
    monkeypatch.setattr(lib, "run", lambda *a, **k: lib.Result(calls=8, seconds=1.0,
                                                               cache_dirs=[str(tmp_path / "elsewhere")]))
    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu")
    assert r.exit_code == 0 and f"NUMBA_CACHE_DIR={tmp_path / 'wanted'} is not writable" in r.stderr, r.stderr
    monkeypatch.setattr(lib, "run", lambda *a, **k: lib.Result(calls=8, seconds=1.0,
                                                               cache_dirs=[str(tmp_path / "wanted" / "sampling_x")]))
    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu")
    assert r.exit_code == 0 and "not writable" not in r.stderr, r.stderr


def test_run_tasks_reports_an_uncached_process(monkeypatch):
    from stntool import _compile_notice as cn

    monkeypatch.setattr(cn, "UNCACHED", True)
    assert lib.run_tasks([], "cpu").uncached
    monkeypatch.setattr(cn, "UNCACHED", False)
    assert not lib.run_tasks([], "cpu").uncached
    merged = lib.Result()
    merged.merge(lib.Result(uncached=True))
    assert merged.uncached


# --------------------------------------------------------------------------- fresh caches (compiles for real)

def _stntool(args, cache, timeout=900):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(ROOT), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "stntool", *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p


def _compile_lines(stderr, cache):
    lines = [LINE.match(l) for l in stderr.splitlines() if l.startswith("stntool: compiling")]
    assert all(lines), stderr
    assert all(m.group(3).startswith(str(cache)) for m in lines), stderr
    labels = [(m.group(1), m.group(2)) for m in lines]
    assert len(labels) == len(set(labels)), f"a kernel was announced twice:\n{stderr}"
    return labels


@pytest.mark.slow
def test_warmup_then_warp_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    p = _stntool(["warmup", "--device", "cpu", "-j", "2"], cache)
    assert p.returncode == 0, p.stderr
    labels = _compile_lines(p.stderr, cache)
    assert {dtype for dtype, _ in labels} == {"uint8", "uint16", "float32"}
    assert "kernels compiled" in p.stderr.splitlines()[-1]

    p = _stntool(["warp", "--theta", "0.9,-0.25,0.05,0.25,0.9,0", SAMPLES, "-o", str(tmp_path / "out")], cache)
    assert p.returncode == 0, p.stderr
    assert "compiling" not in p.stderr
    assert p.stderr.splitlines()[-1].endswith("images/s)")  # the summary counts no compile time

    p = _stntool(["warmup", "--device", "cpu", "-j", "1"], cache)
    assert p.returncode == 0 and "compiling" not in p.stderr and "nothing to compile" in p.stderr


@pytest.mark.slow
def test_cold_warp_says_each_kernel_once_and_excludes_compile_time(tmp_path):
    cache = tmp_path / "cache"
    p = _stntool(["warp", "--theta", "0.9,-0.25,0.05,0.25,0.9,0", SAMPLES, "-o", str(tmp_path / "out")], cache)
    assert p.returncode == 0, p.stderr
    labels = _compile_lines(p.stderr, cache)
    # the samples are uint8, uint16 and RGBA (warped premultiplied in float32)
    assert {dtype for dtype, _ in labels} == {"uint8", "uint16", "float32"}
    summary = p.stderr.splitlines()[-1]
    assert re.search(r"\(\d+\.\d images/s excluding \d+\.\d s compiling kernels\)$", summary), summary
    err_lines = p.stderr.splitlines()
    assert all(l.startswith(("stntool: compiling", "stntool warp: ")) for l in err_lines), p.stderr


def test_quiet_warmup_prints_nothing_and_leaves_the_notice_as_it_was():
    from stntool import _runtime

    r = invoke("--dtypes", "uint8", "-j", "1", "--device", "cpu", "-q")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert _runtime.compile_notice is False  # a library process keeps its default


def test_ctrl_c_stops_the_compiling_processes_and_exits_130(tmp_path):
    """Ctrl-C reaches every process of the terminal's group: a worker interrupted between tasks waited for work
    forever and the command for it (seen once in seven tries), and one interrupted inside a compile printed
    LLVM's clean-up traceback. Workers now ignore it and the command ends them."""
    import signal
    import time

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.Popen(["stntool", "warmup", "--kernels", "grid", "--dtypes", "uint8,float32", "-j", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    time.sleep(1.5)  # the two workers started, compiling
    os.killpg(p.pid, signal.SIGINT)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert "Traceback" not in err, err
    if p.returncode == 0:  # the box was fast enough to finish first: nothing to check
        return
    assert p.returncode == 130 and err.strip().splitlines()[-1].startswith("stntool warmup: interrupted"), err
    deadline = time.time() + 10
    while time.time() < deadline:  # the workers are gone too (they were in the command's process group)
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a compiling process outlived the command")
