"""The README's first command on an empty kernel cache, with and without the second compiling process."""

import os
import subprocess
import sys

import pytest

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "samples")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
THETA = "0.9,-0.25,0.05,0.25,0.9,0"


def _processes_using(cache: str) -> list:
    """Processes (other than this one) whose environment names this cache folder."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"NUMBA_CACHE_DIR={cache}".encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _cold_runs(tmp_path, *args) -> dict:
    """``stntool ARGS -o OUT`` on an empty kernel cache with the second process on ("1") and off ("0"):
    ``{ahead: ({file: bytes}, [compile lines])}``; each run must succeed and leave no process behind."""
    results = {}
    for ahead in ("1", "0"):
        cache = str(tmp_path / f"cache{ahead}")
        out = tmp_path / f"out{ahead}"
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, STNTOOL_COMPILE_AHEAD=ahead,
                   PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
        env.pop("NUMBA_DISABLE_JIT", None)
        env.pop("NUMBA_NUM_THREADS", None)
        p = subprocess.run([sys.executable, "-m", "stntool", *args, "-o", str(out)],
                           env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        assert p.stdout == ""
        assert _processes_using(cache) == []  # the second process is gone with the command
        said = [line.split(" (first run")[0] for line in p.stderr.splitlines() if "compiling kernels for" in line]
        results[ahead] = ({n: (out / n).read_bytes() for n in sorted(os.listdir(out))}, said)
    return results


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="needs 2 CPUs and /proc")
def test_cold_readme_command_same_outputs_with_and_without_the_second_process(tmp_path):
    results = _cold_runs(tmp_path, "warp", "--theta", THETA, SAMPLES)
    assert results["1"][0] == results["0"][0] and len(results["1"][0]) == 5
    assert sorted(results["0"][1]) == sorted(f"stntool: compiling kernels for {d} warp_affine_bilinear"
                                             for d in ("uint8", "uint16", "float32"))
    # the second process compiled exactly the signature the batch then loaded: no compile of it here
    assert sorted(results["1"][1]) == sorted([
        "stntool: compiling kernels for float32 warp_affine_bilinear in a second process",
        "stntool: compiling kernels for uint8 warp_affine_bilinear",
        "stntool: compiling kernels for uint16 warp_affine_bilinear"])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="needs 2 CPUs and /proc")
def test_cold_rectify_same_outputs_with_and_without_the_second_process(tmp_path):
    """rectify's kernels (float32 warps, the float64 backward pass, the output warp in the image's dtype):
    the second process takes the last of them, and the outputs and manifest θ do not change. The sample page
    is turned 3° first: straight, it would come back unturned, its output a copy that needs no warp."""
    import cv2

    page = cv2.imread(os.path.join(SAMPLES, "text_page.png"), cv2.IMREAD_UNCHANGED)
    h, w = page.shape[:2]
    turn = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 3.0, 1.0)
    skewed = str(tmp_path / "text_page_3deg.png")
    cv2.imwrite(skewed, cv2.warpAffine(page, turn, (w, h), borderMode=cv2.BORDER_REPLICATE))
    results = _cold_runs(tmp_path, "rectify", skewed, os.path.join(SAMPLES, "photo.jpg"))
    assert results["1"][0] == results["0"][0] and len(results["1"][0]) == 2
    assert "stntool: compiling kernels for uint8 warp_affine_bilinear in a second process" in results["1"][1]
    assert "stntool: compiling kernels for uint8 warp_affine_bilinear" not in results["1"][1]
    assert "stntool: compiling kernels for uint8 warp_affine_bilinear" in results["0"][1]
