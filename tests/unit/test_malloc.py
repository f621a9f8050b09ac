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
SIZE, COUNT = int(sys.argv[1]), int(sys.argv[2])
def step():  # COUNT image-sized buffers written (SIZE / 4096 pages each), then all freed
    bufs = [np.ones(SIZE, np.uint8) for _ in range(COUNT)]
    del bufs
step()
before = faults()
for _ in range(40):
    step()
print(faults() - before)
"""


def _run(env_extra, size=1 << 20, count=3):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", FAULTS, str(size), str(count)], env=env, capture_output=True, text=True,
                       timeout=120)
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_batch_sized_buffer_stays_in_the_heap_too():
    """A batch's output (32 512x512x3 uint8 images, 25 MB: above the 16 MiB that priming once set, below
    glibc's 32 MiB ceiling) is reused, not mapped, faulted in and zeroed again on every call (the heap keeps
    up to twice the threshold free: one such buffer at a time)."""
    import stntool._malloc as m

    if not m._glibc():
        pytest.skip("not glibc")
    size = 32 * 512 * 512 * 3
    _, primed = _run({}, size, 1)
    _, unprimed = _run({"STNTOOL_PRIME_MALLOC": "0"}, size, 1)
    assert primed * 10 < unprimed, (primed, unprimed)
