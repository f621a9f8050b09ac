"""Packaging promises: no numba at import, kernels cached across processes."""

import subprocess
import sys

import pytest

import stntool


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_version():
    import re

    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", stntool.__version__)  # PEP 440: a release or a dev build


def test_import_does_not_import_numba():
    out = _run("import sys, stntool, stntool.cli; print('numba' in sys.modules, 'cv2' in sys.modules)")
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("given", [None, "ACTIVE"])
def test_kernels_load_with_passive_openmp_waits_unless_the_user_says_otherwise(given, monkeypatch):
    # spinning OpenMP workers slowed kernels about 20x on a loaded 2-core machine
    monkeypatch.delenv("KMP_BLOCKTIME", raising=False)
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    out = _run("import os, stntool.sampling._cpu, numba; print(os.environ['OMP_WAIT_POLICY'], "
               "os.environ['KMP_BLOCKTIME'])")
    assert out.split() == [given or "PASSIVE", "0"]


def test_second_process_loads_kernels_from_cache():
    code = (
        "import numpy as np, stntool\n"
        "stntool.warp(np.zeros((4, 5, 3), np.uint8), [[0.9, 0.1, 0], [0, 1, 0]], backend='cpu')\n"  # not a copy
        "from stntool.sampling import _cpu\n"
        "s = _cpu.warp_affine_bilinear.stats\n"
        "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))\n"
    )
    _run(code)  # may compile and write the cache
    hits, misses = (int(v) for v in _run(code).split())
    assert hits >= 1 and misses == 0


def test_doctests_in_public_modules():
    import doctest

    import stntool.api
    import stntool.grids
    import stntool.tps
    import stntool.transforms

    for mod in (stntool.api, stntool.grids, stntool.tps, stntool.transforms):
        result = doctest.testmod(mod)
        assert result.failed == 0, mod.__name__


def test_the_readme_python_api_block_runs_as_shown(monkeypatch):
    """The README's Python API block is copied and pasted by new users: it ran only with names filled in."""
    import os
    import re

    import numpy as np

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Python API"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(root)  # it reads samples/photo.jpg
    names = {}
    exec(compile(block, "README.md", "exec"), names)
    assert np.array_equal(names["same"].shape, (256, 256, 3))
    assert names["grad_src"].shape == (5, 2) and np.all(np.isfinite(names["grad_theta"]))
