"""stntool._malloc: image-sized buffers stop costing page faults once the allocator is primed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAULTS = """
import resource, sys
import numpy as np
import stntool._malloc as m
print(m.prime(), m.prime())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # three image-sized buffers written (256 pages each), then all freed
    bufs = [np.ones(1 << 20, np.uint8) for _ in range(3)]
    del bufs
step()
before = faults()
for _ in range(40):
    step()
print(faults() - before)
"""


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, faults = r.stdout.split("\n")[:2]
    return first, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_primed_allocator_keeps_image_sized_buffers_in_the_heap():
    import stntool._malloc as m

    if not m._glibc():
        pytest.skip("not glibc")
    first, primed = _run({})
    assert first == "True False"  # once per process
    off, unprimed = _run({"STNTOOL_PRIME_MALLOC": "0"})
    assert off == "False False"
    assert unprimed > 40 * 200, unprimed  # the heap gives them back: faulted in anew, step after step
    assert primed < 40 * 20, primed  # reused from the heap
