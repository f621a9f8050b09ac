"""How the Numba CPU kernels are built and run: one entry per (family, mode), blocks of rows on threads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import stntool
from stntool.sampling import MODES, _cpu

ROOT = Path(__file__).resolve().parents[2]


def test_entries_cover_every_family_and_mode():
    assert set(_cpu.ENTRIES) == {(f, m) for f in ("affine", "projective", "grid", "tps") for m in MODES.values()}
    for kernel in _cpu.ENTRIES.values():
        assert not kernel.targetoptions.get("parallel")  # serial, GIL-free: threads run blocks of rows


def test_row_functions_are_for_kernels_only():
    with pytest.raises(NotImplementedError):
        _cpu.affine_rows(_cpu.BILINEAR, None, None, None, 0, 0, 0, False, None, False, 0.0)


@pytest.fixture
def split_small_calls(monkeypatch):
    """Run even tiny calls as several blocks, so block edges fall inside the test images."""
    monkeypatch.setattr(_cpu, "MIN_PARALLEL_WORK", 0)
    n = numba.get_num_threads()
    yield
    numba.set_num_threads(n)


def _threads(k):
    numba.set_num_threads(min(k, numba.config.NUMBA_NUM_THREADS))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_blocks_on_threads_give_the_same_bits_as_one_thread(rng, split_small_calls, mode):
    img = (rng.random((3, 17, 19, 3)) * 255).astype(np.uint8)
    theta = [[0.9, -0.3, 0.1], [0.35, 0.85, -0.05]]
    proj = [[1.05, 0.2, 0.05], [-0.1, 0.95, 0.1], [0.15, -0.2, 1.0]]
    grid = rng.uniform(-1.2, 1.2, (3, 9, 11, 2))
    src = [[0, 0], [18, 0], [0, 16], [18, 16], [9.3, 7.1]]
    dst = [[0.5, -0.5], [18.5, 1.0], [-1, 16.5], [18, 15], [10.2, 8.0]]
    calls = [
        lambda: stntool.warp(img, theta, (13, 21), mode=mode, padding="reflection", backend="cpu"),
        lambda: stntool.warp(img, proj, (13, 21), mode=mode, padding="border", backend="cpu"),
        lambda: stntool.grid_sample(img, grid, mode=mode, padding="zeros", backend="cpu"),
        lambda: stntool.warp_tps(img, src, dst, (37, 21), mode=mode, backend="cpu"),
    ]
    _threads(1)
    one = [c() for c in calls]
    _threads(2)
    two = [c() for c in calls]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
@pytest.mark.parametrize("projective", [False, True])
def test_a_batch_is_cut_into_shares_of_each_image(rng, split_small_calls, monkeypatch, projective):
    """A batch's rows are claimed in chunks of at most 1/(IMAGE_SHARES threads) of an image (so the
    threads sample every image together and prefetch the next one together), whatever the batch size,
    with the one-thread bits; a single image keeps the usual CHUNKS_PER_THREAD cut."""
    made = []
    schedule = _cpu._schedule
    monkeypatch.setattr(_cpu, "_schedule", lambda *a: made.append(schedule(*a)) or made[-1])
    theta = [[1.05, 0.2, 0.05], [-0.1, 0.95, 0.1], [0.15, -0.2, 1.0]] if projective else \
        [[0.9, -0.3, 0.1], [0.35, 0.85, -0.05]]
    for n, ho, want_chunk in ((40, 64, 64 // (_cpu.IMAGE_SHARES * 2)), (1, 64, 64 // (_cpu.CHUNKS_PER_THREAD * 2))):
        img = (rng.random((n, 30, 20, 3)) * 255).astype(np.uint8)
        _threads(1)
        one = stntool.warp(img, theta, (ho, 24), backend="cpu")
        _threads(2)
        two = stntool.warp(img, theta, (ho, 24), backend="cpu")
        np.testing.assert_array_equal(one, two)
        assert made[-1][_cpu.W_ITEMS] == n * ho and made[-1][_cpu.W_CHUNK] == want_chunk


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_backward_is_deterministic_across_thread_counts(rng, split_small_calls):
    img = rng.random((2, 9, 10, 2))
    grid = rng.uniform(-1.1, 1.1, (2, 7, 8, 2))
    go = rng.standard_normal((2, 7, 8, 2))
    _threads(1)
    gi1, gg1 = stntool.grid_sample_backward(img, grid, go, "reflection", backend="cpu")
    _threads(2)
    gi2, gg2 = stntool.grid_sample_backward(img, grid, go, "reflection", backend="cpu")
    np.testing.assert_array_equal(gi1, gi2)
    np.testing.assert_array_equal(gg1, gg2)


@pytest.mark.slow
def test_a_call_compiles_only_its_own_mode(tmp_path):
    """A nearest warp in a fresh cache compiles the nearest paths of its dtype and none of the bilinear or
    bicubic ones."""
    code = (
        "import json, numpy as np, stntool\n"
        "from stntool.sampling import _cpu\n"
        "stntool.warp(np.zeros((6, 7, 3), np.uint8), [[0.9, 0.1, 0], [0, 1, 0]], mode='nearest', backend='cpu')\n"
        "names = ['warp_affine_nearest', 'warp_affine_bilinear', 'warp_projective_nearest', '_general_nearest',\n"
        "         '_general_bilinear', '_general_bicubic', '_span_nearest_gather', '_span_nearest_copy',\n"
        "         '_span_bil_u8_3', '_span_bicubic_f64', '_run_bil_u8']\n"
        "print(json.dumps({n: len(getattr(_cpu, n).overloads) for n in names}))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    compiled = {k for k, v in json.loads(out.strip().splitlines()[-1]).items() if v}
    span = "_span_nearest_gather" if _cpu.fast_gathers() else "_span_nearest_copy"
    assert compiled == {"warp_affine_nearest", "_general_nearest", span}


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
def test_a_points_row_kernel_compiles_only_its_images_channel_loops(tmp_path, channels):
    """A colour TPS, projective or grid warp in a fresh cache compiles the colour loops only, a one-channel
    one the one-channel loops only (one-channel images reach the kernels as (N, H, W) arrays)."""
    code = (
        "import json, numpy as np, stntool\n"
        "from stntool.sampling import _cpu\n"
        f"img = np.zeros((20, 24, {channels}), np.uint8)\n"
        "stntool.warp_tps(img, [[2, 2], [20, 3], [3, 16], [21, 17]], [[3, 2], [19, 4], [2, 15], [20, 18]],"
        " backend='cpu')\n"
        "stntool.warp(img, [[0.9, 0.1, 0], [0, 1, 0], [0.1, 0, 1]], backend='cpu')\n"
        "stntool.grid_sample(img, stntool.affine_grid([[0.9, 0.1, 0], [0, 1, 0]], (20, 24)), backend='cpu')\n"
        "print(json.dumps({n: [str(s[0].ndim) for s in getattr(_cpu, n).overloads]\n"
        "                  for n in ['run_bilinear_grey', '_run_bil_u8', 'warp_tps_bilinear',\n"
        "                            'warp_projective_bilinear', 'sample_grid_bilinear']}))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT), STNTOOL_COMPILE_AHEAD="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    compiled = json.loads(out.strip().splitlines()[-1])
    entry_ndim = "3" if channels == 1 else "4"
    for name in ("warp_tps_bilinear", "warp_projective_bilinear", "sample_grid_bilinear"):
        assert compiled[name] == [entry_ndim], name
    assert bool(compiled["run_bilinear_grey"]) == (channels == 1)
    assert bool(compiled["_run_bil_u8"]) == (channels != 1)


def test_one_channel_points_rows_equal_a_colour_images_channel(rng):
    """The one-channel loops (uint8, uint16, float32, float64) give each channel's values of the colour loops,
    at pixels inside, on the edges and outside, for every padding; NaN and infinities included (a NaN's
    sign may differ: NumPy's comparison takes every NaN as equal)."""
    theta3 = [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0], [0.1, -0.05, 1.0]]
    for dtype, scale in (("uint8", 255), ("uint16", 65535), ("float32", 1.0), ("float64", 1.0)):
        img = (rng.random((45, 71, 3)) * scale).astype(dtype)
        if dtype.startswith("float"):
            img[10:12, 20:23] = np.nan
            img[30, 40:44] = np.inf
            img[33:35, 50] = -np.inf
        for padding in ("zeros", "border", "reflection"):
            opts = dict(padding=padding, backend="cpu")
            colour = [stntool.warp(img, theta3, **opts),
                      stntool.warp_tps(img, [[5, 5], [60, 6], [4, 40], [66, 41]], [[7, 4], [57, 8], [6, 38], [62, 44]],
                                       **opts)]
            for c in range(3):
                grey = [stntool.warp(img[..., c:c + 1], theta3, **opts),
                        stntool.warp_tps(img[..., c:c + 1], [[5, 5], [60, 6], [4, 40], [66, 41]],
                                         [[7, 4], [57, 8], [6, 38], [62, 44]], **opts)]
                for g, full in zip(grey, colour):
                    np.testing.assert_array_equal(g[..., 0], full[..., c], err_msg=f"{dtype} {padding} {c}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_blocks_on_a_pool_of_its_own(rng, split_small_calls):
    import multiprocessing

    img = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
    theta = [[0.9, -0.3, 0.1], [0.35, 0.85, -0.05]]
    _threads(2)
    want = stntool.warp(img, theta, backend="cpu")  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_warp_in_child, (img, theta)).get(timeout=120)
    np.testing.assert_array_equal(got, want)


def _warp_in_child(img, theta):
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    _cpu.MIN_PARALLEL_WORK = 0
    return stntool.warp(img, theta, backend="cpu")


def _affine_call(rng):
    img = (rng.random((1, 40, 30, 3)) * 255).astype(np.uint8)
    maps = np.array([[[0.9, -0.3, 3.0], [0.35, 0.85, -2.0]]])
    return img, maps, (0, False, np.zeros(3), True, 255.0)


def test_rows_are_claimed_by_whoever_comes(rng):
    """The caller alone does every chunk and closes the call; a helper arriving later does nothing; a
    helper arriving first does every chunk, and the caller then finds nothing left."""
    img, maps, opts = _affine_call(rng)
    kernel = _cpu.ENTRIES[("affine", _cpu.BILINEAR)]
    want = np.zeros((1, 40, 30, 3), np.uint8)
    _cpu.warp_matrix(img, maps, want, _cpu.BILINEAR, *opts, False)
    full = np.zeros_like(want)
    work = _cpu._schedule(40, 3)
    assert kernel(img, maps, full, work, _cpu.CALLER, *opts)
    np.testing.assert_array_equal(full, want)
    assert work[_cpu.W_JOINED] == 1 and work[_cpu.W_DONE] == 0  # closed, no helper joined
    late = np.zeros_like(full)
    assert kernel(img, maps, late, work, _cpu.HELPER, *opts)
    assert not late.any() and work[_cpu.W_JOINED] == 1 and work[_cpu.W_DONE] == 0
    work = _cpu._schedule(40, 3)
    early = np.zeros_like(full)
    assert kernel(img, maps, early, work, _cpu.HELPER, *opts)
    assert work[_cpu.W_JOINED] == 2 and work[_cpu.W_DONE] == 1
    assert kernel(img, maps, early, work, _cpu.CALLER, *opts)
    np.testing.assert_array_equal(early, want)


def test_the_caller_stops_spinning_on_a_helper_that_does_not_finish(rng):
    """A helper that joined and has not finished makes the caller return False after its spin limit
    (the Python side then waits on the helper's task)."""
    img, maps, opts = _affine_call(rng)
    kernel = _cpu.ENTRIES[("affine", _cpu.BILINEAR)]
    work = _cpu._schedule(40, 3)
    work[_cpu.W_JOINED] = 2  # one helper joined, none done
    out = np.zeros((1, 40, 30, 3), np.uint8)
    assert not kernel(img, maps, out, work, _cpu.CALLER, *opts)
    assert work[_cpu.W_NEXT] * 3 >= 40  # the caller still did every row


@pytest.mark.parametrize("back", [0, 1])
def test_the_caller_returns_whether_or_not_its_helper_is_back(rng, back):
    """A helper that joined and is done lets the caller return True, whether or not it has counted itself
    back in Python yet (the caller waits for that a bounded while only)."""
    img, maps, opts = _affine_call(rng)
    kernel = _cpu.ENTRIES[("affine", _cpu.BILINEAR)]
    work = _cpu._schedule(40, 3)
    work[_cpu.W_JOINED], work[_cpu.W_DONE], work[_cpu.W_BACK] = 2, 1, back
    out = np.zeros((1, 40, 30, 3), np.uint8)
    assert kernel(img, maps, out, work, _cpu.CALLER, *opts)
    want = np.zeros_like(out)
    _cpu.warp_matrix(img, maps, want, _cpu.BILINEAR, *opts, False)
    np.testing.assert_array_equal(out, want)


def test_a_watching_helper_sees_a_posted_call_once_its_caller_is_in_its_kernel(rng):
    """_watch gives up (-1) when no call is posted; after a post it returns the new count only once the
    posted schedule says its caller is inside its kernel, without the GIL (``W_CALLER``, which a caller's
    kernel sets first thing: before its prefetches and its first chunk)."""
    import threading

    board = np.zeros(2, np.int64)
    back = _cpu._schedule(10, 1)
    assert _cpu._watch(board, 0, 1000, back) == -1 and back[_cpu.W_BACK] == 1  # counted back first
    work = _cpu._schedule(40, 3)
    board[1] = work.__array_interface__["data"][0]
    board[0] = 5
    got = []
    watcher = threading.Thread(target=lambda: got.append(_cpu._watch(board, 0, 1 << 40, back)))
    watcher.start()
    watcher.join(0.2)
    assert watcher.is_alive() and not got  # posted, but the caller is not in its kernel yet
    work[_cpu.W_NEXT] = 1  # a helper that came first claimed a chunk: still not the caller
    watcher.join(0.2)
    assert watcher.is_alive() and not got
    work[_cpu.W_CALLER] = 1
    watcher.join(30)
    assert got == [5]
    img, maps, opts = _affine_call(rng)
    maps = np.concatenate([maps, [[[0.0, 0.0, 1.0]]]], axis=1)  # 3x3: the projective kernels' form too
    for family in ("affine", "projective"):
        work = _cpu._schedule(40, 3)
        assert _cpu.ENTRIES[(family, _cpu.BILINEAR)](img, maps, np.zeros((1, 40, 30, 3), np.uint8), work,
                                                     _cpu.CALLER, *opts)
        assert work[_cpu.W_CALLER] == 1  # the caller's kernel said so
        work = _cpu._schedule(40, 3)
        _cpu.ENTRIES[(family, _cpu.BILINEAR)](img, maps, np.zeros((1, 40, 30, 3), np.uint8), work, _cpu.HELPER,
                                              *opts)
        assert work[_cpu.W_CALLER] == 0  # a helper's does not


def test_helpers_run_the_same_with_or_without_watching(rng):
    """With STNTOOL_SPIN_US=0 helper threads sleep between calls, else they watch for the next one a while;
    both give the one-thread bits, call after call, and a bad setting falls back to the default."""
    code = (
        "import numba, numpy as np, stntool\n"
        "from stntool.sampling import _cpu\n"
        "_cpu.MIN_PARALLEL_WORK = 0\n"
        "rng = np.random.default_rng(3)\n"
        "img = (rng.random((4, 24, 20, 3)) * 255).astype(np.uint8)\n"
        "th = np.array([[0.9, -0.3, 0.1], [0.35, 0.85, -0.05]])\n"
        "numba.set_num_threads(1)\n"
        "want = [stntool.warp(img, th * s, backend='cpu') for s in (1.0, 0.9, 1.1)]\n"
        "numba.set_num_threads(2)\n"
        "made = []\n"
        "schedule = _cpu._schedule\n"
        "_cpu._schedule = lambda *a: made.append(schedule(*a)) or made[-1]\n"
        "k = seen = 0\n"
        "while k < 200 or (seen < 20 and k < 20000):  # on a busy machine the helper joins fewer calls\n"
        "    assert np.array_equal(stntool.warp(img, th * (1.0, 0.9, 1.1)[k % 3], backend='cpu'), want[k % 3])\n"
        "    seen += made[-1][_cpu.W_JOINED] >= 2\n"
        "    k += 1\n"
        "import time; time.sleep(0.5)\n"
        "joined = [w for w in made if w[_cpu.W_JOINED] >= 2]\n"
        "assert len(joined) >= 20, (k, len(joined))  # the helper took part (how often depends on the load)\n"
        "assert all(w[_cpu.W_BACK] >= w[_cpu.W_JOINED] >> 1 for w in joined)  # and counted itself back\n"
        "print(_cpu._spin_us())\n"
    )
    for setting, spin in (("0", 0.0), ("50", 50.0), ("soon", _cpu.SPIN_US)):
        env = dict(os.environ, STNTOOL_SPIN_US=setting, NUMBA_NUM_THREADS="2", PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert float(r.stdout.split()[-1]) == spin


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_three_channel_vector_loops_give_the_bits_of_the_scalar_loops(rng, dtype, mode):
    """The 3-channel interior loops (uint8 nearest in gathers of 16 pixels, uint8 and float32 bilinear and
    every bicubic in vector lanes) equal the scalar 4-channel loops channel by channel: on rows long
    enough for gathers, at exact half-pixel ties, with the last pixel of the last image sampled, in
    batches (the next image prefetched), and one pixel at a time (projective warps, grids)."""
    from stn_testing import random_image

    from stntool import transforms

    img4 = random_image(rng, (2, 37, 53, 4), dtype)
    img3 = np.ascontiguousarray(img4[..., :3])
    hw = (37, 53)
    thetas = [
        np.array([[1.0, 0, 0], [0, 1.0, 0]]),                                                  # identity
        transforms.theta_from_pixel_map(transforms.translate(0.5, -0.5), hw),                   # ties
        np.array([[0.9 * np.cos(0.17), -0.9 * np.sin(0.17), 0.02], [0.9 * np.sin(0.17), 0.9 * np.cos(0.17), -0.01]]),
        np.array([[-1.0, 0, 0], [0, 1.0, 0]]),                                                 # mirror
        np.array([[1.3, 0.1, 0.05], [-0.2, 1.25, 0.0]]),
    ]
    calls = [(theta, out_hw, False) for theta in thetas for out_hw in (hw, (41, 67))]
    # the last output pixel of the last image reads the last input pixel through the span's last tap
    # (nearest, bilinear in a full row of 64; bicubic), with align_corners
    calls += [(np.diag([0.985, 0.985, 1.0])[:2], (37, 64), True), (np.diag([0.96, 0.94, 1.0])[:2], (37, 64), True)]
    for theta, out_hw, align_corners in calls:
        three = stntool.warp(img3, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
        four = stntool.warp(img4, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
        np.testing.assert_array_equal(three, four[..., :3])
    # single interior pixels (projective rows, grids): the same taps one pixel at a time
    proj = [[1.05, 0.2, 0.05], [-0.1, 0.95, 0.1], [0.15, -0.2, 1.0]]
    grid = stntool.affine_grid(thetas[2], (29, 45)) + rng.uniform(-0.01, 0.01, (29, 45, 2))
    for f in (lambda im: stntool.warp(im, proj, (33, 47), mode, backend="cpu"),
              lambda im: stntool.grid_sample(im, grid, mode, backend="cpu")):
        np.testing.assert_array_equal(f(img3), f(img4)[..., :3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_spans_of_one_three_and_four_channels_give_the_bits_of_the_pixel_loop(rng, dtype, mode):
    """Nearest spans gather blocks of 16 pixels of 1, 3 or 4 channels (uint8, uint16, float32; words that
    read past a 1- or 3-channel pixel only where they stay inside the image), 1-channel bilinear and
    bicubic spans sample blocks of 16 pixels in vector lanes, and uint8 bilinear spans of 3 and 4 channels
    compute a pixel's channels in vector lanes: every channel count equals the first
    channels of a 5-channel image, which is sampled channel by channel, on rows long enough for gathers, at
    exact half-pixel ties, with the last input pixel read by the last output pixel, in batches; nearest
    also equals the NumPy reference."""
    from stn_testing import random_image

    from stntool import transforms

    img5 = random_image(rng, (2, 37, 53, 5), dtype)
    hw = (37, 53)
    calls = [(theta, out_hw, False) for theta in (
        np.array([[1.0, 0, 0], [0, 1.0, 0]]),
        transforms.theta_from_pixel_map(transforms.translate(0.5, -0.5), hw),
        np.array([[0.9 * np.cos(0.17), -0.9 * np.sin(0.17), 0.02], [0.9 * np.sin(0.17), 0.9 * np.cos(0.17), -0.01]]),
        np.array([[-1.0, 0, 0], [0, 1.0, 0]]),
        np.array([[1.3, 0.1, 0.05], [-0.2, 1.25, 0.0]])) for out_hw in (hw, (41, 67))]
    calls += [(np.diag([0.985, 0.985, 1.0])[:2], (37, 64), True), (np.diag([1.0, 1.0, 1.0])[:2], (37, 53), True)]
    for theta, out_hw, align_corners in calls:
        five = stntool.warp(img5, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
        for c in (1, 2, 3, 4):
            img = np.ascontiguousarray(img5[..., :c])
            got = stntool.warp(img, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
            np.testing.assert_array_equal(got, five[..., :c])
        if mode == "nearest":
            ref = stntool.warp(img5, theta, out_hw, mode, align_corners=align_corners, backend="numpy")
            np.testing.assert_array_equal(five, ref)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("dtype, hw", [(np.uint8, (520, 1400)), (np.float32, (400, 600))])
def test_large_images_read_ahead_and_keep_the_bits(rng, dtype, hw, mode):
    """Affine warps of inputs larger than ``PREFETCH_AHEAD_BYTES`` prefetch the taps of the rows ahead
    (:func:`_cpu._prefetch_row`, also at offsets outside the image, which it skips); the 3-channel vector
    loops keep the bits of the scalar 4-channel loop, for rotations, a mirror and a scale whose last pixel
    reads the last input pixel."""
    from stn_testing import random_image

    img4 = random_image(rng, hw + (4,), dtype)
    img3 = np.ascontiguousarray(img4[..., :3])
    assert img3.nbytes > _cpu.PREFETCH_AHEAD_BYTES
    c, s = np.cos(0.17), np.sin(0.17)
    calls = [(np.array([[c, -s, 0.02], [s, c, -0.01]]), hw, False),
             (np.array([[0.8 * c, 0.8 * s, 0.1], [-0.8 * s, 0.8 * c, 0.0]]), (hw[0] + 13, hw[1] - 7), False),
             (np.array([[-1.0, 0, 0], [0, 1.0, 0]]), hw, False),
             (np.diag([0.985, 0.985, 1.0])[:2], hw, True)]
    for theta, out_hw, align_corners in calls:
        three = stntool.warp(img3, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
        four = stntool.warp(img4, theta, out_hw, mode, align_corners=align_corners, backend="cpu")
        np.testing.assert_array_equal(three, four[..., :3])


@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_affine_rows_read_within_the_documented_fixed_point_drift(padding):
    """A float64 ramp (each pixel's value its column) read bilinearly gives back the x coordinate it was
    read at, so the difference from the reference is the coordinate's: an affine row steps its 32.32
    coordinate by the map's entry rounded to 2**-32 px, and pixel ``j`` of a row reads within
    ``(j + 1) 2**-33`` px of the float64 coordinate (README, "Backends and kernels"). A 100,000-pixel row
    read from 8 columns drifts by about a millionth of a pixel; a rounding of the step to fewer bits, or
    a drift that grows faster than the row, fails here."""
    w_in, w_out = 8, 100_000
    img = np.tile(np.arange(w_in, dtype=np.float64), (3, 1))
    theta = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    got = stntool.warp(img, theta, (3, w_out), padding=padding, backend="cpu")
    ref = stntool.warp(img, theta, (3, w_out), padding=padding, backend="numpy")
    j = np.arange(w_out)
    x = (j + 0.5) * w_in / w_out - 0.5  # where pixel j reads (align_corners=False)
    ramp = (x >= 0) & (x <= w_in - 1)  # both taps inside: the value is the coordinate (zeros fade it outside)
    err = np.abs(got - ref)[:, ramp]
    assert np.all(err <= (j[ramp] + 1) * 2.0 ** -33 + 1e-12)
    assert err.max() > 1e-9  # the drift is there to be bounded: the row's interior runs the fixed-point span


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.uint16])
@pytest.mark.parametrize("padding", ["zeros", "constant", "border", "reflection"])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_points_rows_do_not_depend_on_where_runs_start_and_end(rng, mode, padding, dtype):
    """A points row is written in runs (interior pixels, fill pixels, the careful path between them):
    every pixel comes out as it does alone in a row of one, and within a level of the reference."""
    scale = 255 if dtype == np.uint8 else (65535 if dtype == np.uint16 else 1)
    img = (rng.random((1, 9, 11, 3)) * scale).astype(dtype)
    kinds = [rng.uniform(-0.7, 0.7, 2), [-3.0, 0.2], [0.1, 4.0], [-1.0, 0.3], [1.02, -0.99], [np.nan, 0.0],
             [0.0, np.inf], [1e12, 0.5], [-1.2, -1.3], [-1.09, 0.5], [0.5, 1.1]]
    pattern = rng.integers(0, len(kinds), (5, 60))
    pattern[:, :8] = 0  # rows that start with a run
    grid = np.array([[kinds[k] if k else rng.uniform(-0.7, 0.7, 2) for k in row] for row in pattern])[None]
    fill = [10.0, 20.0, 30.0] if padding == "constant" else None
    whole = stntool.grid_sample(img, grid, mode=mode, padding=padding, fill=fill, backend="cpu")
    alone = np.concatenate([stntool.grid_sample(img, grid[:, :, j:j + 1], mode=mode, padding=padding, fill=fill,
                                                backend="cpu") for j in range(grid.shape[2])], axis=2)
    np.testing.assert_array_equal(whole, alone)
    ref = stntool.grid_sample(img, grid, mode=mode, padding=padding, fill=fill, backend="numpy")
    np.testing.assert_allclose(whole.astype(np.float64), ref.astype(np.float64), rtol=0,
                               atol=1.0 if scale > 1 else 1e-5)


def _padded_cases(cases, quick):
    """The cases of a padded-loop test, those not in ``quick`` marked slow (the full grid runs in the slow suite)."""
    return [c if c in quick else pytest.param(*c, marks=pytest.mark.slow) for c in cases]


def _points_row_kernel(mode):
    @numba.njit(cache=False)
    def row(img, xs, ys, pad, align_corners, fill, is_int, maxv):
        _, h, w, cc = img.shape
        out = np.empty((len(xs), cc), img.dtype)
        cells = np.empty(3 * len(xs), np.int64)
        _cpu.points_row(mode, img.reshape(img.size), 0, h, w, cc, xs, ys, len(xs), out.reshape(out.size), 0, pad,
                        align_corners, fill, is_int, maxv, cells)
        return out
    return row


# every mode's points row as the kernels for border and reflection padding run it (PADDED) and as the others do
_POINTS_ROWS = {(m, p): _points_row_kernel(m + (_cpu.PADDED if p else 0))
                for m in (_cpu.NEAREST, _cpu.BILINEAR, _cpu.BICUBIC) for p in (False, True)}


@pytest.mark.parametrize("mode, dtype, cc", _padded_cases(
    [("bilinear", dt, cc) for dt in (np.uint8, np.float32, np.float64) for cc in (1, 3, 4)]
    + [(m, dt, 3) for m in ("nearest", "bicubic") for dt in (np.uint8, np.float64)],
    [("bilinear", np.uint8, 3), ("nearest", np.uint8, 3), ("bicubic", np.float64, 3)]))
def test_border_and_reflection_points_rows_write_the_careful_path(rng, mode, dtype, cc):
    """Points rows (projective, grid, TPS) with border or reflection padding write their careful pixels in
    runs of their own (:data:`_cpu._PADDED`, in the kernels of those paddings): bit for bit what the careful
    path, pixel by pixel, writes at the coordinates it would take (32.32, or the float one when too large;
    nearest: the float one), and the fill value where a coordinate is not finite."""
    m = MODES[mode]
    h, w = 9, 12
    ints = np.dtype(dtype).kind == "u"
    img = ((rng.random((1, h, w, cc)) * 250).round() if ints else rng.random((1, h, w, cc))).astype(dtype)
    maxv = 255.0 if ints else 0.0
    special = [(-1.0, 0.5), (w, 3.0), (w - 1.0, h - 1.0), (-0.5, -0.5), (w - 0.5, 4.2), (1e12, 0.5), (3.0, -1e15),
               (np.nan, 1.0), (2.0, np.inf), (-np.inf, 0.0), (-37.3, 55.1), (2.5, 3.5)]
    pts = np.concatenate([rng.uniform(-3 * w, 4 * w, (400, 2)), rng.uniform(-1.5, w + 0.5, (200, 2)),
                          np.array(special * 3)])
    rng.shuffle(pts)
    xs, ys = np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])
    interior = _cells_of(xs, ys, h, w, cc, 1 if m == _cpu.BICUBIC else 0, 0)[:len(xs)] >= 0
    if m == _cpu.NEAREST:  # nearest's own cells: every point that rounds inside the image is an interior one
        interior = _nearest_cells_of(xs, ys, h, w, cc, 0)[:len(xs)] >= 0
    src = img.reshape(-1)
    want = np.empty(cc, dtype)
    compared = 0
    for pad_name in ("border", "reflection"):
        pad = stntool.sampling.PADDINGS[pad_name]
        for align_corners in (False, True):
            out = _POINTS_ROWS[m, True](img, xs, ys, pad, align_corners, np.zeros(cc), ints, maxv)
            # the kernels of the other paddings take the careful path pixel by pixel: the same bits
            np.testing.assert_array_equal(out, _POINTS_ROWS[m, False](img, xs, ys, pad, align_corners, np.zeros(cc),
                                                                       ints, maxv))
            for j, (x, y) in enumerate(pts):
                if interior[j]:
                    continue  # interior: the interior arithmetic
                if m != _cpu.NEAREST and abs(x) < _cpu.Q_LIMIT and abs(y) < _cpu.Q_LIMIT:
                    x, y = np.floor(x * _cpu.Q_ONE + 0.5) * _cpu.Q_INV, np.floor(y * _cpu.Q_ONE + 0.5) * _cpu.Q_INV
                _careful_pixel(m, src, h, w, cc, x, y, pad, align_corners, np.zeros(cc), ints, maxv, want)
                np.testing.assert_array_equal(out[j], want, err_msg=f"{pad_name} {align_corners} point {j} ({x}, {y})")
                compared += 1
    assert compared > 1000


@numba.njit(cache=False)
def _cells_of(xs, ys, h, w, cc, margin, sbase):
    cells = np.empty(3 * len(xs), np.int64)
    _cpu._row_cells(sbase, h, w, cc, xs, ys, len(xs), margin, cells)
    return cells


def _cells_oracle(x, y, h, w, cc, margin, sbase):
    """What a points row computes for one point, in Python integers: the 32.32 coordinates, the top-left
    tap of an interior cell, and whether no tap lies inside (the careful path's :func:`_cpu._beyond`)."""
    if not (abs(x) < _cpu.Q_LIMIT and abs(y) < _cpu.Q_LIMIT):
        return -2, None, None
    xq, yq = int(np.floor(x * _cpu.Q_ONE + 0.5)), int(np.floor(y * _cpu.Q_ONE + 0.5))
    ix, iy = xq >> 32, yq >> 32
    fx, fy = xq & _cpu.Q_MASK, yq & _cpu.Q_MASK
    if margin <= ix < w - 1 - margin and margin <= iy < h - 1 - margin:
        return sbase + iy * w * cc + ix * cc, fx, fy
    xc, yc = xq * _cpu.Q_INV, yq * _cpu.Q_INV
    reach = 2 * margin + 1
    beyond = xc < -reach or xc > w - 1 + reach or yc < -reach or yc > h - 1 + reach
    return (-2 if beyond else -1), fx, fy


def _row_cells8():
    """A fresh kernel (compiled now, with ``_cpu.CELLS8_ALLOWED`` as it is now) that runs the eight-lane cells
    alone (:func:`_cpu._row_cells8`) and returns how many pixels it did."""
    @numba.njit(cache=False)
    def run(xs, ys, h, w, cc, margin, sbase, cells):
        return _cpu._row_cells8(sbase, h, w, cc, xs, ys, len(xs), cells, margin)
    return run


@pytest.mark.parametrize("allowed", [True, False])
@pytest.mark.parametrize("margin", [0, 1])
def test_row_cells_in_eight_lanes_are_the_integer_arithmetic(rng, monkeypatch, margin, allowed):
    """The explicit eight-lane cells (where the target has AVX-512) give each point's integer arithmetic, as
    the loop does (:func:`test_row_cells_are_the_integer_arithmetic_of_each_point`'s points, shuffled so
    every kind falls in every lane), for the whole blocks of a row that is not a multiple of eight long;
    they leave every pixel to the loop without AVX-512 or when turned off."""
    from numba.core.registry import cpu_target

    monkeypatch.setattr(_cpu, "CELLS8_ALLOWED", allowed)
    h, w, cc, sbase = 9, 13, 3, 1000
    eps = 2.0 ** -33
    edges = [v + d for v in (-4.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 7.5, w - 2.0, w - 1.0, w, w + 2.0)
             for d in (-3 * eps, -eps, 0.0, eps, 3 * eps, -1e-9, 1e-9)]
    special = [1e12, -1e12, 2.0 ** 30, 2.0 ** 30 - 1.0, -(2.0 ** 30) + 1.0, np.inf, -np.inf, np.nan]
    xs = np.r_[rng.uniform(-5, w + 4, 400), np.repeat(edges, 3), special, [3.0] * len(special), 1.5, 2.5, 3.5]
    ys = np.r_[rng.uniform(-5, h + 4, 400), np.tile([2.0, -1.0 - eps, h - 1.0], len(edges)),
               [2.0] * len(special), special, 1.5, 2.5, 3.5]
    order = rng.permutation(len(xs))
    xs, ys = np.ascontiguousarray(xs[order]), np.ascontiguousarray(ys[order])
    n = len(xs)
    assert n % 8
    cells = np.full(3 * n, 7, np.int64)
    done = _row_cells8()(xs, ys, h, w, cc, margin, sbase, cells)
    want = n // 8 * 8 if allowed and "avx512f" in _cpu._target_features(cpu_target.target_context) else 0
    assert done == want
    for j in range(n):
        if j >= done:
            assert cells[j] == cells[n + j] == cells[2 * n + j] == 7
            continue
        off, fx, fy = _cells_oracle(xs[j], ys[j], h, w, cc, margin, sbase)
        assert cells[j] == off, (xs[j], ys[j])
        if off >= 0:
            assert (cells[n + j], cells[2 * n + j]) == (fx, fy), (xs[j], ys[j])
    if done:
        assert {-2, -1} <= set(cells[:done].tolist()) and (cells[:done] >= 0).sum() > 50


def _phases3():
    """A fresh kernel (compiled now, with ``_cpu.CELLS8_ALLOWED`` as it is now) running :func:`_cpu._phases3`."""
    @numba.njit(cache=False)
    def run(coef, whole, inv, xs, ys):
        return _cpu._phases3(coef, whole, inv, xs, ys)
    return run


@pytest.mark.parametrize("allowed", [True, False])
def test_step3_phases_in_eight_lanes_are_the_cubics_in_pixel_order(rng, monkeypatch, allowed):
    """A TPS row's coordinates for a lattice step of 3 (elastic records of sigma 6 and 7) computed eight cells
    at a time in vector lanes (where the target has AVX-512) are each cell's cubic at t = 0, 1/3, 2/3 in
    pixel order, with the bits of the scalar formula (NumPy's float64 operations in the same order), for
    the whole blocks of eight below ``whole`` and nothing past them; random coefficients, huge, infinite and
    NaN ones and negative zeros; nothing done without AVX-512 or when turned off."""
    from numba.core.registry import cpu_target

    monkeypatch.setattr(_cpu, "CELLS8_ALLOWED", allowed)
    vector = allowed and "avx512f" in _cpu._target_features(cpu_target.target_context)
    run = _phases3()
    inv = 1.0 / 3
    for whole in (0, 7, 8, 9, 17, 40, 170):
        coef = rng.normal(0, 50, (8, whole + 3))
        specials = [np.inf, -np.inf, np.nan, -0.0, 1e308, -1e-308]
        coef.flat[rng.integers(0, coef.size, 12)] = rng.choice(specials, 12)
        xs, ys = np.full(3 * whole + 5, 7.0), np.full(3 * whole + 5, 7.0)
        done = run(coef, whole, inv, xs, ys)
        assert done == (whole // 8 * 8 if vector else 0)
        for axis, out in enumerate((xs, ys)):
            c0, c1, c2, c3 = coef[4 * axis: 4 * axis + 4, :done]
            for k in range(3):
                t = k * inv
                with np.errstate(invalid="ignore", over="ignore"):
                    want = ((c3 * t + c2) * t + c1) * t + c0
                np.testing.assert_array_equal(out[k: 3 * done: 3], want)
                assert np.array_equal(np.signbit(out[k: 3 * done: 3]), np.signbit(want))
            assert (out[3 * done:] == 7.0).all()


@pytest.mark.parametrize("margin", [0, 1])
def test_row_cells_are_the_integer_arithmetic_of_each_point(rng, margin):
    """The vectorized cells of a points row (tap offset, 32.32 fractions, interior / careful / fill) equal the
    per-point integer arithmetic, at random points and at the hard ones: pixel edges and halves give or take
    one 32.32 step, negative fractions, the fill boundary, huge, infinite and NaN coordinates."""
    h, w, cc, sbase = 9, 13, 3, 1000
    eps = 2.0 ** -33
    edges = [v + d for v in (-4.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 7.5, w - 2.0, w - 1.0, w, w + 2.0)
             for d in (-3 * eps, -eps, 0.0, eps, 3 * eps, -1e-9, 1e-9)]
    special = [1e12, -1e12, 2.0 ** 30, 2.0 ** 30 - 1.0, -(2.0 ** 30) + 1.0, np.inf, -np.inf, np.nan]
    xs = np.r_[rng.uniform(-5, w + 4, 400), np.repeat(edges, 3), special, [3.0] * len(special)]
    ys = np.r_[rng.uniform(-5, h + 4, 400), np.tile([2.0, -1.0 - eps, h - 1.0], len(edges)),
               [2.0] * len(special), special]
    cells = _cells_of(xs, ys, h, w, cc, margin, sbase)
    n = len(xs)
    for j, (x, y) in enumerate(zip(xs, ys)):
        off, fx, fy = _cells_oracle(x, y, h, w, cc, margin, sbase)
        assert cells[j] == off, (x, y)
        if off >= 0:
            assert (cells[n + j], cells[2 * n + j]) == (fx, fy), (x, y)
    assert {-2, -1} <= set(cells[:n].tolist()) and (cells[:n] >= 0).sum() > 50


@numba.njit(cache=False)
def _small_ints(vs):
    out = np.empty(len(vs), np.int64)
    for k in range(len(vs)):
        out[k] = _cpu._small_int(vs[k])
    return out


def test_small_int_is_the_exact_integer_below_2_to_52(rng):
    """``_small_int`` (row loops' float -> int64 through the float's bits) gives ``int(v)`` for every
    integer-valued ``0 <= v < 2**52``: cell offsets and 32.32 fractions (below 2**32)."""
    vs = np.r_[0.0, 1.0, 2.0, 3.0, 2.0 ** 31 - 1, 2.0 ** 31, 2.0 ** 32 - 1, 2.0 ** 32, 2.0 ** 51, 2.0 ** 52 - 1,
               np.floor(rng.uniform(0, 2.0 ** 32, 500)), np.floor(rng.uniform(0, 2.0 ** 52, 500))]
    assert _small_ints(vs).tolist() == [int(v) for v in vs]


def _nearest_span_loop(span):
    @numba.njit(cache=False)
    def run(src, sbase, row, cc, xq, yq, dxq, dyq, j_stop, dst, dbase, coef):
        span(src, sbase, row, cc, xq, yq, dxq, dyq, _cpu._nearest_slack(j_stop), 0, j_stop, dst, dbase, coef)
    return run


_NEAREST_SPAN_LOOPS = {name: _nearest_span_loop(getattr(_cpu, name))
                       for name in ("_span_nearest_gather", "_span_nearest_copy")}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("cc", [1, 2, 3, 4, 5])
def test_nearest_span_loops_copy_the_rounded_pixels(rng, dtype, cc):
    """Both loops of a nearest span (gathers, used where the CPU gathers in hardware; vector offsets and a
    copy per pixel, used elsewhere: :func:`_cpu.fast_gathers`) write the pixels at the rounded coordinates
    and nothing past the span: rotated rows, rows of half-pixel steps (every other pixel at
    a tie, rounded from its float coordinate, ties to even), spans that end at the image's last pixel,
    spans of every length around the block size; 2 and 5 channels pixel by pixel."""
    from stn_testing import random_image

    h, w = 11, 40
    src = random_image(rng, (h, w, cc), dtype).ravel()
    row = w * cc
    q = float(1 << 32)
    rows = [(0.3, 1.2, 0.93, 0.21), (2.0, 3.5, 0.5, 0.0), (1.5, 9.0, 0.5, 0.125), (w - 1.0, h - 1.0, -0.5, -0.2)]
    for x0, y0, dx, dy in rows:
        for n in (1, 15, 16, 17, 31, 32, 33, 45):
            n = min(n, int((w - 1 - x0) / dx) + 1 if dx > 0 else int(x0 / -dx) + 1)
            if dy:
                n = min(n, int((h - 1 - y0) / dy) + 1 if dy > 0 else int(y0 / -dy) + 1)
            coef = (x0, 0.0, dx, y0, 0.0, dy)
            outs = {}
            for name, run in _NEAREST_SPAN_LOOPS.items():
                if name == "_span_nearest_gather" and dtype == np.float64:
                    continue  # not gathered: the pixel loop or the copies
                dst = np.full(n * cc + 8, 7, src.dtype)
                run(src, 0, row, cc, round(x0 * q), round(y0 * q), round(dx * q), round(dy * q), n, dst, 0, coef)
                outs[name] = dst
            img = src.reshape(h, w, cc)
            want = [img[int(np.rint(y0 + j * dy)), int(np.rint(x0 + j * dx))] for j in range(n)]
            for name, got in outs.items():
                np.testing.assert_array_equal(got[:n * cc].reshape(n, cc), want, err_msg=f"{name} {x0, y0, dx, dy} {n}")
                assert (got[n * cc:] == 7).all(), name


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("cc", [1, 3, 4])
def test_nearest_copy_blocks_round_near_halves_as_the_reference(rng, dtype, cc):
    """The copy loop's 16.16 blocks (:func:`_cpu._nearest_copy16`) against the reference's rounding of the
    float coordinate: fractions that drift through one half a few 1e-5 px a pixel (x, y, both, stepping
    backwards), fractions held 9-18 units of 2**-16 px from one half (either side of the blocks' 10-unit
    margin, inside their 8-unit rounding error), spans of several blocks and a remainder; and a row beyond
    16.16 coordinates (a 40,000-pixel-wide image), copied pixel by pixel past the 64 pixels of a mask."""
    from stn_testing import random_image
    from stntool.sampling._scalar import rint

    unit = 2.0 ** -16
    h, w = 12, 120
    src = random_image(rng, (h, w, cc), dtype).ravel()
    img = src.reshape(h, w, cc)
    run = _NEAREST_SPAN_LOOPS["_span_nearest_copy"]
    q = float(1 << 32)
    rows = [(0.5 - 8e-5, 2.0, 1.0 + 1e-5, 0.0), (3.0, 0.5 + 2e-4, 0.5, 1e-5), (0.5 + 3e-5, 1.5 - 4e-5, 0.75, 2e-5),
            (w - 1.5 + 9e-5, h - 1.5 + 5e-5, -1.0 - 1e-5, -1e-5)]
    rows += [(1.5 + sign * units * unit, 4.5 - sign * units * unit, 1.0, 0.0)
             for units in (9, 9.5, 10, 10.5, 11, 12, 18) for sign in (-1, 1)]
    # steps half a unit off 16.16 (the blocks' rounding error grows to 7.5 units at their last pixel), the
    # fraction sweeping past one half
    rows += [(1.5 + start * unit, 4.0, 1.0 + sign * (0.5 * unit + 2.0 ** -40), 0.0)
             for start in (3.5, -3.5, 12.0, -12.0, 30.0, -30.0) for sign in (-1, 1)]
    for x0, y0, dx, dy in rows:
        n = min(100, int((w - 1.5 - x0) / dx) + 1 if dx > 0 else int((x0 - 0.5) / -dx) + 1)
        if dy:
            n = min(n, int((h - 1.5 - y0) / dy) + 1 if dy > 0 else int((y0 - 0.5) / -dy) + 1)
        assert n >= 33
        coef = (x0, 0.0, dx, y0, 0.0, dy)
        dst = np.full(n * cc + 8, 7, src.dtype)
        run(src, 0, w * cc, cc, round(x0 * q), round(y0 * q), round(dx * q), round(dy * q), n, dst, 0, coef)
        want = [img[int(rint((dy * j + y0) + 0.0)), int(rint((dx * j + x0) + 0.0))] for j in range(n)]
        np.testing.assert_array_equal(dst[:n * cc].reshape(n, cc), want, err_msg=f"{x0, y0, dx, dy}")
        assert (dst[n * cc:] == 7).all()

    wide = random_image(rng, (1, 40000, cc), dtype).ravel()
    x0, dx, n = 33000.25, 0.75, 90
    dst = np.full(n * cc + 8, 7, wide.dtype)
    run(wide, 0, 40000 * cc, cc, round(x0 * q), 0, round(dx * q), 0, n, dst, 0, (x0, 0.0, dx, 0.0, 0.0, 0.0))
    want = [wide.reshape(40000, cc)[int(rint(dx * j + x0))] for j in range(n)]
    np.testing.assert_array_equal(dst[:n * cc].reshape(n, cc), want)
    assert (dst[n * cc:] == 7).all()


def _nearest_blocks(cc):
    """A fresh kernel (compiled now, with ``_cpu.PERMUTES_ALLOWED`` as it is now) that writes one nearest
    block both ways: permuted (:func:`_cpu._nearest_permute16`, into ``perm``) and copied
    (:func:`_cpu._nearest_copy16`, into ``copy``); returns both near masks."""
    @numba.njit(cache=False)
    def run(src, sbase, row, xq, yq, dxq, dyq, perm, copy):
        return (_cpu._nearest_permute16(src, sbase, row, xq, yq, dxq, dyq, 10, perm, 0, cc),
                _cpu._nearest_copy16(src, sbase, row, xq, yq, dxq, dyq, 10, copy, 0, cc))
    return run


@pytest.mark.parametrize("allowed", [True, False])
@pytest.mark.parametrize("cc", [1, 3, 4])
def test_nearest_permuted_blocks_are_the_copied_blocks(rng, monkeypatch, cc, allowed):
    """A uint8 nearest block picked out of four rows' 64-byte windows by byte permutes (where the CPU has
    AVX-512 VBMI) writes the bytes and returns the near mask the copied block does, or writes nothing and
    returns -1: blocks across more than four rows or 64 bytes of a row, or whose last window would pass the
    array's end (blocks drawn around each of those limits: steps of 0 to 1.7 px a pixel across and 0 to
    0.3 down, some backwards, widths of about 64 bytes, near the image's bottom right and at both ends of a
    batch's second image);
    always -1 without VBMI, for other dtypes, and with ``PERMUTES_ALLOWED`` off."""
    monkeypatch.setattr(_cpu, "PERMUTES_ALLOWED", allowed)
    from numba.core.registry import cpu_target

    vbmi = _cpu._has_vbmi(cpu_target.target_context)
    h, w = 14, 90
    src = rng.integers(0, 256, 2 * h * w * cc, dtype=np.uint8)  # two images: the second one's sbase
    run = _nearest_blocks(cc)
    q = float(1 << 32)
    n, taken, refused = _cpu.GATHER, 0, {"rows": 0, "width": 0, "end": 0}
    for case in range(3000):
        sbase = h * w * cc if case % 2 else 0
        dx = rng.choice([rng.uniform(0, 1.7), (64 / cc - 1) / (n - 1) + rng.uniform(-0.02, 0.02), 1.0, 0.0])
        dy = rng.choice([rng.uniform(0, 0.3), 3 / (n - 1) + rng.uniform(-0.01, 0.01), 0.0])
        dx, dy = dx * rng.choice([-1, 1]), dy * rng.choice([-1, 1])
        span_x, span_y = abs(dx) * (n - 1), abs(dy) * (n - 1)
        x0 = rng.uniform(0, w - 1 - span_x) + (span_x if dx < 0 else 0)
        y0 = rng.uniform(0, h - 1 - span_y) + (span_y if dy < 0 else 0)
        if case % 5 == 0:  # the block's last row the image's last, at its right end
            y0 = h - 1 - (0 if dy >= 0 else span_y) - rng.uniform(0, 0.4)
            x0 = w - 1 - (span_x if dx >= 0 else 0) - rng.uniform(0, 3)
        perm = np.full(n * cc + 8, 7, np.uint8)
        copy = perm.copy()
        got, want = run(src, sbase, w * cc, round(x0 * q), round(y0 * q), round(dx * q), round(dy * q), perm, copy)
        rows = [int(np.floor(y0 + k * dy + 0.5)) for k in range(n)]
        cols = [int(np.floor(x0 + k * dx + 0.5)) for k in range(n)]
        fits = {"rows": max(rows) - min(rows) < 4, "width": (max(cols) - min(cols) + 1) * cc <= 64,
                "end": sbase + (max(rows) * w + min(cols)) * cc + 64 <= src.size}
        if got < 0:
            assert (perm == 7).all()
            for why, ok in fits.items():
                refused[why] += not ok
            if vbmi and allowed:
                assert not all(fits.values()), (x0, y0, dx, dy)
            continue
        assert vbmi and allowed and all(fits.values())
        taken += 1
        assert got == want
        np.testing.assert_array_equal(perm, copy, err_msg=str((x0, y0, dx, dy)))
    if vbmi and allowed:
        assert taken > 1000 and min(refused.values()) > 20, (taken, refused)
    else:
        assert taken == 0
    if vbmi and allowed and cc == 3:  # other dtypes are never permuted
        f32 = src.astype(np.float32)
        got, _ = run(f32, 0, w * cc, 0, 0, 1 << 31, 0, np.zeros(n * cc, np.float32), np.zeros(n * cc, np.float32))
        assert got == -1


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_grey_blocks_are_the_pixel_loops_bits(rng, dtype, mode):
    """Grey bilinear and bicubic spans sample blocks of 16 pixels in vector lanes
    (:func:`_cpu._bilinear_grey_block`, :func:`_cpu._bicubic_grey_block`; on AVX2 targets with coordinates
    in 32-bit lanes and AVX2 gathers): each value is the one the 3-channel loops compute for the same pixels
    (the image repeated over three channels), and within a level of the NumPy reference (float64 weights
    against uint8 bilinear's exact 15-bit ones). Rotations and zooms,
    a span running into the image's last row (its last block read pixel by pixel), a batch, and a row
    beyond 2**15 px (a 40,000-pixel-wide image: no blocks)."""
    from stn_testing import random_image

    def check(img, th, out_hw=None):
        got = stntool.warp(img, th, out_hw, mode=mode, backend="cpu")
        three = stntool.warp(np.ascontiguousarray(np.repeat(img if img.ndim == 4 else img[..., None], 3, -1)), th,
                             out_hw, mode=mode, backend="cpu")
        np.testing.assert_array_equal(got.reshape(three.shape[:-1]), three[..., 0], err_msg=str(th))
        ref = stntool.warp(img, th, out_hw, mode=mode, backend="numpy")
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=0, atol=1.0 if img.dtype.kind == "u" else 1e-5)

    img = random_image(rng, (2, 67, 301, 1), dtype)  # a batch of two
    for deg, s in ((0.0, 1.0), (10.0, 0.93), (37.0, 1.3), (90.0, 0.7), (181.0, 1.0)):
        a = np.deg2rad(deg)
        check(img, np.array([[np.cos(a), -np.sin(a), 0.01], [np.sin(a), np.cos(a), -0.02]]) * s)
    check(img, np.array([[1.0, 0.0, 0.0], [0.0, 0.05, 0.94]]))  # the bottom rows of the last image
    big = random_image(rng, (512, 512), dtype)  # many weights: rounding boundaries are rare
    for th in rng.uniform(-1, 1, (6, 2, 3)) * [[0.3, 0.3, 0.1]] + [[1, 0, 0], [0, 1, 0]]:
        check(big, th)
    far = np.array([[0.0045, 0.0, (2 * 33000 + 1) / 40000 - 1], [0.0, 0.3, 0.1]])  # x near 33,000 px
    check(random_image(rng, (3, 40000), dtype), far, (3, 200))


def test_fast_gathers_only_on_avx512_targets_and_when_allowed(monkeypatch):
    assert _cpu.fast_gathers("+avx512f,+avx2") is _cpu.GATHERS_ALLOWED is False  # off by default
    monkeypatch.setattr(_cpu, "GATHERS_ALLOWED", True)
    assert _cpu.fast_gathers("+avx512f,+avx2") is True
    assert _cpu.fast_gathers("-avx512f,+avx2") is False
    assert _cpu.fast_gathers("") is False  # NUMBA_CPU_NAME=generic
    monkeypatch.setattr(_cpu, "GATHERS_ALLOWED", False)
    assert _cpu.fast_gathers("+avx512f") is False


@numba.njit(cache=False)
def _nearest_cells_of(xs, ys, h, w, cc, sbase):
    cells = np.empty(3 * len(xs), np.int64)
    _cpu._nearest_cells(sbase, h, w, cc, xs, ys, len(xs), 0, cells)
    return cells


def test_nearest_row_cells_are_the_rounded_pixel_or_the_right_path(rng):
    """Nearest cells: the pixel :func:`_scalar.rint` picks (ties to even, within its tolerance) where it lies
    inside the image, else the fill (-2: a pixel outside, a point beyond one pixel outside, or not finite),
    as the careful path decides with zeros padding."""
    from stntool.sampling._scalar import rint

    h, w, cc, sbase = 9, 13, 3, 500
    edges = [v + d for v in (-1.0, -0.5, 0.0, 0.5, 1.5, 2.5, 11.5, w - 1.5, w - 1.0, w - 0.5, w)
             for d in (-1e-7, -1e-13, 0.0, 1e-13, 1e-7)]
    special = [1e12, -1e12, np.inf, -np.inf, np.nan]
    xs = np.r_[rng.uniform(-3, w + 2, 300), edges, special, [3.0] * 4]
    ys = np.r_[rng.uniform(-3, h + 2, 300), [4.5] * len(edges), [2.0] * len(special),
               [-0.5, -0.5 + 1e-13, h - 0.5, h - 0.5 - 1e-13]]
    cells = _nearest_cells_of(xs, ys, h, w, cc, sbase)[:len(xs)]
    for j, (x, y) in enumerate(zip(xs, ys)):
        want = -2
        if -1 < x < w and -1 < y < h:  # else beyond, or not finite
            rx, ry = int(rint(x)), int(rint(y))
            if 0 <= rx <= w - 1 and 0 <= ry <= h - 1:
                want = sbase + ry * w * cc + rx * cc
        assert cells[j] == want, (x, y)
    assert set(cells.tolist()) >= {-2} and (cells >= 0).sum() > 150
    assert cells[300 + 5 * 3 + 2] == sbase + 4 * w * cc + 0 * cc  # (0.5, 4.5): ties to even, (0, 4)
    assert cells[300 + 5 * 1 + 2] == sbase + 4 * w * cc  # (-0.5, 4.5): -0.5 ties to 0, inside
    assert cells[300 + 5 * 9 + 2] == sbase + 4 * w * cc + 12 * cc  # (w - 0.5, 4.5): 12.5 ties to 12, inside
    assert cells[300 + 5 * 9 + 4] == -2  # a little beyond: 13, outside
    assert cells[-4:].tolist() == [sbase + 3 * cc] * 2 + [sbase + (h - 1) * w * cc + 3 * cc] * 2  # y = -1/2, h - 1/2


@pytest.mark.parametrize("allowed", [True, False])
def test_nearest_cells_in_eight_lanes_are_the_rounded_pixels(rng, monkeypatch, allowed):
    """The explicit eight-lane nearest cells (where the target has AVX-512) round as :func:`_scalar.rint`
    (ties to even within its tolerance, either side of it) and give the fill where the loop does, in every
    lane (the points shuffled), for the whole blocks of a row that is not a multiple of eight long; they leave
    every pixel to the loop without AVX-512 or when turned off."""
    from numba.core.registry import cpu_target

    from stntool.sampling._scalar import TIE_TOL, rint

    monkeypatch.setattr(_cpu, "CELLS8_ALLOWED", allowed)

    @numba.njit(cache=False)
    def run(xs, ys, h, w, cc, sbase, cells):
        return _cpu._nearest_cells8(sbase, h, w, cc, xs, ys, len(xs), cells)

    h, w, cc, sbase = 9, 13, 3, 500
    tol = TIE_TOL * (w - 0.5)
    edges = [v + d for v in (-1.0, -0.5, 0.0, 0.5, 1.5, 2.5, 11.5, w - 1.5, w - 1.0, w - 0.5, w, 2.0 ** 20 + 0.5)
             for d in (-1e-7, -2 * tol, -0.5 * tol, 0.0, 0.5 * tol, 2 * tol, 1e-7)]
    special = [1e12, -1e12, np.inf, -np.inf, np.nan, -0.0]
    xs = np.r_[rng.uniform(-3, w + 2, 303), edges, special, [3.0] * len(special), [4.5] * len(edges)]
    ys = np.r_[rng.uniform(-3, h + 2, 303), [4.5] * len(edges), [2.0] * len(special), special, edges]
    order = rng.permutation(len(xs))
    xs, ys = np.ascontiguousarray(xs[order]), np.ascontiguousarray(ys[order])
    n = len(xs)
    assert n % 8
    cells = np.full(n, 7, np.int64)
    done = run(xs, ys, h, w, cc, sbase, cells)
    assert done == (n // 8 * 8 if allowed and "avx512f" in _cpu._target_features(cpu_target.target_context) else 0)
    for j in range(n):
        x, y = xs[j], ys[j]
        want = 7 if j >= done else -2
        if j < done and -1 < x < w and -1 < y < h:
            rx, ry = int(rint(x)), int(rint(y))
            if 0 <= rx <= w - 1 and 0 <= ry <= h - 1:
                want = sbase + ry * w * cc + rx * cc
        assert cells[j] == want, (x, y)
    if done:
        assert -2 in cells[:done] and (cells[:done] >= 0).sum() > 200


def test_thread_count_is_numbas_setting_for_this_thread():
    """Calls read numba's thread count without its lock, and still honour ``numba.set_num_threads`` per
    thread (the batch runner gives each worker thread its share)."""
    import threading

    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert _cpu._thread_count() == 1 == numba.get_num_threads()
        seen = []
        t = threading.Thread(target=lambda: seen.append((_cpu._thread_count(), numba.get_num_threads())))
        t.start()
        t.join()
        assert seen[0][0] == seen[0][1] == numba.config.NUMBA_NUM_THREADS
    finally:
        numba.set_num_threads(n)
    assert _cpu._thread_count() == n


@numba.njit(cache=False)
def _careful_pixel(mode, src, h, w, cc, x, y, pad, align_corners, fill, is_int, maxv, out):
    if mode < 0:
        _cpu._store_fill(out, 0, fill, cc, is_int, maxv)
    elif mode == _cpu.NEAREST:
        _cpu._general_nearest(src, 0, h, w, cc, x, y, out, 0, pad, align_corners, fill, is_int, maxv)
    elif mode == _cpu.BILINEAR:
        _cpu._general_bilinear(src, 0, h, w, cc, x, y, out, 0, pad, align_corners, fill, is_int, maxv)
    else:
        _cpu._general_bicubic(src, 0, h, w, cc, x, y, out, 0, pad, align_corners, fill, is_int, maxv)


def _affine_maps(rng, h, w):
    """Pixel maps whose rows cross the image's edges: rotations and scales, and shifts by whole and half
    pixels that put points exactly on -1, -1/2, size - 1, size - 1/2, size."""
    maps = []
    for _ in range(6):
        a, s = rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.5)
        c, d = s * np.cos(a), s * np.sin(a)
        maps.append([[c, -d, rng.uniform(-4, w / 2)], [d, c, rng.uniform(-4, h / 2)], [0, 0, 1]])
    for sx, sy in ((-1.0, -1.0), (-0.5, -0.5), (w - 23.0, -2.0), (w - 22.5, 0.5), (w - 22.0, 1.0), (-3.0, h - 17.5)):
        maps.append([[1.0, 0.0, sx], [0.0, 1.0, sy], [0, 0, 1]])
    maps.append([[0.5, 0.25, -1.0], [-0.25, 0.5, -0.5], [0, 0, 1]])  # dyadic steps: exact 32.32 coordinates
    for e in (-1e-13, 1e-13):  # within rint's tie tolerance of -1/2 and size - 1/2: ties, to even
        maps.append([[1.0, 0.0, -0.5 + e], [0.0, 1.0, h - 17.5 + e], [0, 0, 1]])
        maps.append([[1.0, 0.0, w - 22.5 + e], [0.0, 1.0, -0.5 + e], [0, 0, 1]])
    for lag in (0.4999, -0.4999):  # steps that 32.32 rounds by almost half a unit: pixel 20 is ten units
        step = 1.0 + lag * 2.0 ** -32  # off its float coordinate, there a tie
        for t in (-0.5, w - 0.5):
            maps.append([[step, 0.0, t - 20 * step], [0.1, 0.3, 0.05], [0, 0, 1]])
    for x, y in ((-1.0, 0.05), (w - 22.0, 0.05)):  # x exactly -1 and w at pixel 0 or 22, y not a whole pixel
        maps.append([[1.0, 0.0, x], [0.1, 0.3, y], [0, 0, 1]])
    return np.array(maps, dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_affine_rows_beyond_the_interior_are_the_careful_paths(rng, mode, dtype):
    """An affine row's pixels outside its interior span are written as the careful path writes them, at the
    coordinates the row steps through (32.32; nearest: the float pixel map, as the reference evaluates it);
    with zeros or constant padding, pixels whose taps all lie outside take the fill value without it.
    Nearest's interior reaches every pixel that rounds inside the image, so every nearest pixel is compared.
    The oracle works pixel by pixel in Python integers, with no intervals."""
    compared = _compare_beyond_the_interior(rng, mode, dtype, 3, ("zeros", "constant", "border", "reflection"))
    assert compared > 2000


def test_only_border_and_reflection_take_the_padded_kernels():
    """Border and reflection padding run entry kernels of their own, the only ones that compile the padded
    loops; zeros and constant padding run the plain ones."""
    for family, mode in _cpu.ENTRIES:
        for name, pad in stntool.sampling.PADDINGS.items():
            kernel = _cpu.entry(family, mode, pad)
            padded = name in ("border", "reflection")
            assert kernel is (_cpu.PADDED_ENTRIES if padded else _cpu.ENTRIES)[(family, mode)]
            assert kernel.py_func.__name__.endswith("_padded") == padded


@pytest.mark.parametrize("mode, dtype, cc", _padded_cases(
    [("bilinear", dt, cc) for dt in (np.uint8, np.uint16, np.float32, np.float64) for cc in (1, 2, 3, 4)]
    + [(m, dt, cc) for m in ("nearest", "bicubic") for dt in (np.uint8, np.float64) for cc in (1, 3)],
    [("bilinear", np.uint8, 3), ("bilinear", np.uint16, 2), ("bilinear", np.float32, 1), ("bilinear", np.float64, 4),
     ("nearest", np.uint8, 3), ("nearest", np.float64, 1), ("bicubic", np.uint8, 1), ("bicubic", np.float64, 3)]))
def test_border_and_reflection_rows_beyond_the_interior_are_the_careful_path(rng, mode, dtype, cc):
    """Rows with border or reflection padding write their pixels outside the interior in one loop
    (:data:`_cpu._PADDED`: bilinear with three channels unrolled, bicubic with each tap padded once):
    the careful path's values, bit for bit, for every dtype's arithmetic and channel count."""
    assert _compare_beyond_the_interior(rng, mode, dtype, cc, ("border", "reflection")) > 1000


def _compare_beyond_the_interior(rng, mode, dtype, cc, paddings):
    h, w = 11, 14
    ho, wo = 17, 23
    ints = np.dtype(dtype).kind == "u"
    top = float(np.iinfo(dtype).max) if ints else 0.0
    img = ((rng.random((1, h, w, cc)) * (top - 5)).round() if ints else rng.random((1, h, w, cc))).astype(dtype)
    is_int, maxv = ints, top
    m = MODES[mode]
    margin = 1 if m == _cpu.BICUBIC else 0
    src = img.reshape(-1)
    one = 1 << 32
    compared = 0
    for pad_name in paddings:
        pad = stntool.sampling.PADDINGS[pad_name]
        fill = np.array([0.1, 200.4, 77.7, 3.5][:cc]) if pad_name == "constant" else np.zeros(cc)
        for align_corners in (False, True):
            for pm in _affine_maps(rng, h, w):
                out = np.empty((1, ho, wo, cc), dtype)
                _cpu.warp_matrix(img, pm[None], out, m, pad, align_corners, fill, is_int, maxv, False)
                want = np.empty(cc, dtype)
                for i in range(ho):
                    ax, bx, ay, by, dx, dy = pm[0, 1] * i, pm[0, 2], pm[1, 1] * i, pm[1, 2], pm[0, 0], pm[1, 0]
                    xq0, yq0 = (int(np.floor((ax + bx) * 2.0 ** 32 + 0.5)), int(np.floor((ay + by) * 2.0 ** 32 + 0.5)))
                    dxq, dyq = int(np.floor(dx * 2.0 ** 32 + 0.5)), int(np.floor(dy * 2.0 ** 32 + 0.5))
                    for j in range(wo):
                        xq, yq = xq0 + j * dxq, yq0 + j * dyq
                        ix, iy = xq >> 32, yq >> 32
                        if m != _cpu.NEAREST and margin <= ix < w - 1 - margin and margin <= iy < h - 1 - margin:
                            continue  # every tap inside: the interior span's arithmetic
                        if m == _cpu.NEAREST:
                            x, y = (dx * j + ax) + bx, (dy * j + ay) + by
                        else:
                            x, y = xq / one, yq / one
                        if (m == _cpu.BICUBIC and pad_name in ("zeros", "constant")
                                and not (-2 <= ix <= w + 1 and -2 <= iy <= h + 1)):
                            _careful_pixel(-1, src, h, w, cc, x, y, pad, align_corners, fill, is_int, maxv,
                                           want)  # no tap inside: the fill
                        else:
                            _careful_pixel(m, src, h, w, cc, x, y, pad, align_corners, fill, is_int, maxv, want)
                        np.testing.assert_array_equal(out[0, i, j], want, err_msg=f"{pad_name} {align_corners} "
                                                      f"{pm[:2].tolist()} row {i} pixel {j}")
                        compared += 1
    return compared


def _u8_bilinear_pixels():
    """A fresh kernel (compiled now, with ``_cpu.IFMA_ALLOWED`` as it is now) that samples 3-channel uint8
    pixels through the three forms of the vector taps: four bytes stored (:func:`_cpu._bilinear_u8_put4`),
    three values returned (:func:`_cpu._bilinear_u8_taps3`), and two pixels in 32-bit lanes, eight bytes
    stored (:func:`_cpu._bilinear_u8_put_pair`, pixels ``2k`` and ``2k + 1``)."""
    @numba.njit(cache=False)
    def pixels(src, offs, row, fxs, fys, put, got, pairs):
        for k in range(offs.shape[0]):
            _cpu._bilinear_u8_put4(src, offs[k], row, fxs[k], fys[k], put, 3 * k)
            v0, v1, v2 = _cpu._bilinear_u8_taps3(src, offs[k], row, fxs[k], fys[k])
            got[k, 0] = v0
            got[k, 1] = v1
            got[k, 2] = v2
        for k in range(0, offs.shape[0] - 1, 2):
            _cpu._bilinear_u8_put_pair(src, offs[k], offs[k + 1], row, fxs[k], fys[k], fxs[k + 1], fys[k + 1],
                                       pairs, 3 * k, 3)
    return pixels


@pytest.mark.parametrize("ifma", [True, False])
def test_uint8_bilinear_taps_are_the_integer_formula_in_both_forms(rng, monkeypatch, ifma):
    """The 3-channel uint8 taps, with and without 52-bit multiply-adds (used where the CPU has AVX-512
    IFMA: their sums are exact only modulo 2**52), and two pixels at a time in 32-bit lanes (the column sum
    split at bit 15), equal ``_bil_int_c``'s integer arithmetic, on random taps, the extreme weights 0 and
    32768, and the largest differences (0 next to 255, both ways)."""
    monkeypatch.setattr(_cpu, "IFMA_ALLOWED", ifma)
    w, h = 8, 4
    row = 3 * w
    src = rng.integers(0, 256, h * row, dtype=np.uint8)
    src[: 2 * row : 2] = 0
    src[1 : 2 * row : 2] = 255
    n = 4000
    offs = 3 * rng.integers(0, w - 1, n) + row * rng.integers(0, h - 2, n)
    special = np.array([0, 1, 16384, 32767, 32768])
    fxs = np.where(rng.random(n) < 0.5, rng.choice(special, n), rng.integers(0, 32769, n)).astype(np.int64)
    fys = np.where(rng.random(n) < 0.5, rng.choice(special, n), rng.integers(0, 32769, n)).astype(np.int64)
    put = np.zeros(3 * n + 1, np.uint8)
    got = np.zeros((n, 3), np.int64)
    pairs = np.zeros(3 * n + 2, np.uint8)
    _u8_bilinear_pixels()(src, offs, row, fxs, fys, put, got, pairs)
    taps = src.astype(np.int64)
    c = np.arange(3)
    a, b = taps[offs[:, None] + c], taps[offs[:, None] + c + 3]
    t = (a << 15) + (b - a) * fxs[:, None]
    a, b = taps[offs[:, None] + row + c], taps[offs[:, None] + row + c + 3]
    u = (a << 15) + (b - a) * fxs[:, None]
    want = ((t << 15) + (u - t) * fys[:, None] + (1 << 29)) >> 30
    assert want.min() >= 0 and want.max() == 255
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(put[: 3 * n].reshape(n, 3), want)
    np.testing.assert_array_equal(pairs[: 3 * n].reshape(n, 3), want)


def _span_blocks(blocks, cc):
    """A fresh kernel (compiled now, with the module's flags as they are now) that calls the span-block
    intrinsic ``blocks`` (``_cpu._bilinear_u8_run8`` or ``_cpu._bilinear_f32_run8``) for ``cc`` channels."""
    @numba.njit(cache=False)
    def run(src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d):
        return blocks(src, sbase, row, xq, yq, dxq, dyq, nblocks, dst, d, cc)
    return run


def _span_block_cases(rng, w, h, ends, count=300):
    """``count`` random spans of whole blocks inside a ``w`` x ``h`` image: ``(case, nblocks, x0, y0, dxq,
    dyq)`` in 32.32 units, half the fractions from ``ends``, every third step a special one (0, 1 unit,
    whole pixels, a third), every pixel's taps inside the image."""
    one = 1 << 32
    for case in range(count):
        nblocks = int(rng.integers(1, 4))
        n = 8 * nblocks
        frac = lambda: int(rng.choice(ends)) if rng.random() < 0.5 else int(rng.integers(0, one))  # noqa: E731
        dxq = int(rng.choice([0, 1, -1, one, -one, one // 3])) if case % 3 == 0 else int(rng.integers(-one, one))
        dyq = int(rng.choice([0, 1, -1, one // 7])) if case % 3 == 0 else int(rng.integers(-one // 2, one // 2))
        x0 = int(rng.integers(2 + n, w - 3 - n)) * one + frac()
        y0 = int(rng.integers(2 + n // 2, h - 3 - n // 2)) * one + frac()
        yield case, nblocks, x0, y0, dxq, dyq


@pytest.mark.parametrize("allowed,wide,cc", [(True, True, 3), (True, True, 4), (True, False, 3), (True, False, 4),
                                             (False, True, 3), (False, True, 4)])
def test_uint8_bilinear_blocks_of_eight_are_the_integer_formula(rng, monkeypatch, allowed, wide, cc):
    """3- and 4-channel uint8 spans in blocks of eight pixels (weights in vector lanes, offsets in scalars,
    rows summed by ``vpmaddwd`` with weights shifted by one to fit 16 bits; four pixels to an operation with
    AVX-512BW, two without or with ``WIDE_U8_ALLOWED`` off) equal ``_bil_int_c``'s integer arithmetic, on
    random and extreme taps (0 next to 255) and weights (0, 2**15 and their neighbours, from fractions at the
    ends of the pixel), steps in every direction; without AVX2 (or not allowed) they write nothing and say
    so."""
    monkeypatch.setattr(_cpu, "BLOCKS8_ALLOWED", allowed)
    monkeypatch.setattr(_cpu, "WIDE_U8_ALLOWED", wide)
    blocks = allowed and "avx2" in _cpu._target_features()
    w, h = 80, 60
    row = cc * w
    src = rng.integers(0, 256, h * row + 8, dtype=np.uint8)
    # the first rows: 0 next to 255 in each channel (bytes alternate; with 4 channels, pixels alternate)
    src[: 6 * row] = 255 * ((np.arange(6 * row) // (1 if cc == 3 else 4)) % 2)
    run = _span_blocks(_cpu._bilinear_u8_run8, cc)
    one = 1 << 32
    ends = np.array([0, 1, 65535, 65536, 131071, 131072, one // 2, one - 131073, one - 131072, one - 65537,
                     one - 65536, one - 1], dtype=np.int64)
    taps = src.astype(np.int64)
    c = np.arange(cc)
    compared = 0
    for case, nblocks, x0, y0, dxq, dyq in _span_block_cases(rng, w, h, ends):
        n = 8 * nblocks
        if case < 20:  # the first rows (the 0/255 stripes)
            y0 = int(rng.integers(0, 4)) * one + (y0 & (one - 1))
            dyq = 0
        dst = np.full(cc * n + 5, 7, np.uint8)
        done = run(src, 0, row, x0, y0, dxq, dyq, nblocks, dst, 2)
        if not blocks:
            assert done == 0 and (dst == 7).all()
            continue
        assert done == n and (dst[:2] == 7).all() and (dst[2 + cc * n:] == 7).all()
        k = np.arange(n, dtype=np.int64)
        xs, ys = x0 + k * dxq, y0 + k * dyq
        fx, fy = ((xs & (one - 1)) + 65536) >> 17, ((ys & (one - 1)) + 65536) >> 17
        off = (ys >> 32) * row + (xs >> 32) * cc
        a, b = taps[off[:, None] + c], taps[off[:, None] + c + cc]
        t = (a << 15) + (b - a) * fx[:, None]
        a, b = taps[off[:, None] + row + c], taps[off[:, None] + row + c + cc]
        u = (a << 15) + (b - a) * fx[:, None]
        want = ((t << 15) + (u - t) * fy[:, None] + (1 << 29)) >> 30
        np.testing.assert_array_equal(dst[2:2 + cc * n].reshape(n, cc), want)
        compared += n
    assert compared > 2000 or not blocks


def _points_block_cases(rng, w, h, cc, lim, ends, n, spare=0, count=200):
    """``count`` random points rows for a points-block intrinsic of ``n``-pixel blocks on a ``w`` x ``h`` image
    of ``cc`` channels: ``(case, wo, j, off, fx, fy, cells, want_done)``, every cell an interior offset or,
    in three rows of four, about one in forty bad (-1, -2, at or past the limit ``lim``); half the fractions
    from ``ends``; ``want_done``: the pixels the blocks should write from ``j`` (whole blocks while none of
    their cells is bad and ``spare`` more pixels follow)."""
    one = 1 << 32
    for case in range(count):
        wo = int(rng.integers(n, 3 * n + 12))
        j = int(rng.integers(0, 8))
        off = rng.integers(0, h - 1, wo) * (w * cc) + rng.integers(0, w - 1, wo) * cc
        fx = np.where(rng.random(wo) < 0.3, rng.choice(ends, wo), rng.integers(0, one, wo))
        fy = np.where(rng.random(wo) < 0.3, rng.choice(ends, wo), rng.integers(0, one, wo))
        bad = rng.random(wo) < (0.0 if case % 4 == 0 else 0.025)
        off = np.where(bad, rng.choice([-1, -2, lim, lim + 5], wo), off)
        want_done = 0
        while j + want_done + n + spare <= wo and not bad[j + want_done: j + want_done + n].any():
            want_done += n
        yield case, wo, j, off, fx, fy, np.concatenate([off, fx, fy]).astype(np.int64), want_done


@pytest.mark.parametrize("allowed,wide,cc", [(True, True, 3), (True, True, 4), (True, False, 3), (True, False, 4),
                                             (False, True, 3)])
def test_uint8_bilinear_blocks_of_points_are_the_integer_formula(rng, monkeypatch, allowed, wide, cc):
    """Points rows of 3 and 4 channels in blocks of eight pixels read from their cells (offsets, then the
    fractions' 32 bits) equal ``_bil_int_c``'s integer arithmetic, four pixels to an operation or two
    (``WIDE_U8_ALLOWED``); blocks go on while every cell of a block is an offset below the limit and the
    block fits in the row, and stop at the first block with a cell that is negative (-1, -2) or at the
    limit; a negative limit writes nothing; nothing past the written pixels changes. Without AVX2 (or not
    allowed) nothing is written."""
    monkeypatch.setattr(_cpu, "BLOCKS8_ALLOWED", allowed)
    monkeypatch.setattr(_cpu, "WIDE_U8_ALLOWED", wide)
    blocks = allowed and "avx2" in _cpu._target_features()

    @numba.njit(cache=False)
    def run(src, cells, j, wo, row, lim, dst, d):
        return _cpu._bilinear_u8_cells8(src, cells, j, wo, row, lim, dst, d, cc)

    w, h = 40, 30
    row = cc * w
    src = rng.integers(0, 256, h * row + 8, dtype=np.uint8)
    src[: 4 * row] = 255 * ((np.arange(4 * row) // (1 if cc == 3 else 4)) % 2)  # 0 next to 255
    taps = src.astype(np.int64)
    one = 1 << 32
    ends = np.array([0, 1, 65535, 65536, 131071, 131072, one // 2, one - 65537, one - 65536, one - 1])
    lim = (h - 1) * row - cc  # every offset below it has its taps in the image
    c = np.arange(cc)
    compared = 0
    for case, wo, j, off, fx, fy, cells, want_done in _points_block_cases(rng, w, h, cc, lim, ends, 8):
        dst = np.full(cc * wo + 8, 7, np.uint8)
        if case == 1:  # a negative limit (an image too small for a block's loads): no block, -2 cells included
            assert run(src, cells, j, wo, row, -1, dst, 3) == 0 and (dst == 7).all()
        done = run(src, cells, j, wo, row, lim, dst, 3)
        if not blocks:
            assert done == 0 and (dst == 7).all()
            continue
        assert done == want_done
        assert (dst[:3] == 7).all() and (dst[3 + cc * done:] == 7).all()
        k = np.arange(j, j + done)
        wx, wy = (fx[k] + 65536) >> 17, (fy[k] + 65536) >> 17
        a, b = taps[off[k][:, None] + c], taps[off[k][:, None] + c + cc]
        t = (a << 15) + (b - a) * wx[:, None]
        a, b = taps[off[k][:, None] + row + c], taps[off[k][:, None] + row + c + cc]
        u = (a << 15) + (b - a) * wx[:, None]
        want = ((t << 15) + (u - t) * wy[:, None] + (1 << 29)) >> 30
        np.testing.assert_array_equal(dst[3:3 + cc * done].reshape(done, cc), want)
        compared += done
    assert compared > 1500 or not blocks


def _f32_bilinear_bits(a, b, c, d, fx, fy):
    """``_bil_f32_c``'s float32 arithmetic in its order, operation by operation in NumPy float32: the lerps
    ``t + (u - t) fy`` with ``t = a + (b - a) fx`` (``u`` of ``c d`` likewise), and where that is not finite,
    ``(a (1 - fx) + b fx) (1 - fy) + (c (1 - fx) + d fx) fy``."""
    one = np.float32(1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        t = a + (b - a) * fx
        u = c + (d - c) * fx
        lerps = t + (u - t) * fy
        weights = (a * (one - fx) + b * fx) * (one - fy) + (c * (one - fx) + d * fx) * fy
    return np.where(np.abs(lerps) < np.inf, lerps, weights)


@pytest.mark.parametrize("allowed,cc", [(True, 3), (True, 4), (False, 3), (False, 4)])
def test_float32_bilinear_blocks_of_eight_are_the_scalar_arithmetic(rng, monkeypatch, allowed, cc):
    """3- and 4-channel float32 spans in blocks of eight pixels (fractions in vector lanes, four pixels' taps
    in one 16-lane vector) have the bits of ``_bil_f32_c``'s float32 arithmetic in its order, with the
    fraction ``float32(q & Q_MASK) * 2**-32``: random taps, NaN, infinities and huge values next to small
    ones, fractions at the ends of the pixel, steps in every direction, a base offset; 3 channels leave the
    four elements after the blocks for the caller, 4 write nothing past them; without AVX-512 (or not
    allowed) they write nothing and say so."""
    monkeypatch.setattr(_cpu, "F32_BLOCKS_ALLOWED", allowed)
    blocks = allowed and "avx512f" in _cpu._target_features()
    w, h = 70, 50
    row = cc * w
    sbase = 5
    src = rng.standard_normal(sbase + h * row + 8).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-30, 0.0, -0.0], np.float32)
    hit = rng.random(src.size) < 0.02
    src[hit] = rng.choice(specials, int(hit.sum()))
    run = _span_blocks(_cpu._bilinear_f32_run8, cc)
    one = 1 << 32
    ends = np.array([0, 1, 255, 256, one // 2, one - 257, one - 256, one - 1], dtype=np.int64)
    c = np.arange(cc)
    scratch = 4 if cc == 3 else 0
    compared = 0
    for _, nblocks, x0, y0, dxq, dyq in _span_block_cases(rng, w, h, ends):
        n = 8 * nblocks
        dst = np.full(cc * n + 9, 7, np.float32)
        done = run(src, sbase, row, x0, y0, dxq, dyq, nblocks, dst, 2)
        if not blocks:
            assert done == 0 and (dst == 7).all()
            continue
        assert done == n and (dst[:2] == 7).all() and (dst[2 + cc * n + scratch:] == 7).all()
        k = np.arange(n, dtype=np.int64)
        xs, ys = x0 + k * dxq, y0 + k * dyq
        fx = ((xs & (one - 1)).astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32))[:, None]
        fy = ((ys & (one - 1)).astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32))[:, None]
        off = sbase + (ys >> 32) * row + (xs >> 32) * cc
        want = _f32_bilinear_bits(src[off[:, None] + c], src[off[:, None] + c + cc], src[off[:, None] + row + c],
                                  src[off[:, None] + row + c + cc], fx, fy)
        assert want.dtype == np.float32
        np.testing.assert_array_equal(dst[2:2 + cc * n].reshape(n, cc).view(np.uint32), want.view(np.uint32))
        compared += n
    assert compared > 2000 or not blocks


@pytest.mark.parametrize("allowed,cc", [(True, 3), (True, 4), (False, 3)])
def test_float32_bilinear_blocks_of_points_are_the_scalar_arithmetic(rng, monkeypatch, allowed, cc):
    """float32 points rows of 3 and 4 channels in blocks of eight pixels read from their cells have the bits
    of ``_bil_f32_c``'s arithmetic (fraction ``float32(f) * 2**-32``), NaN and infinities among the taps;
    blocks go on while every cell of a block is an offset below the limit and the block fits in the row
    (3 channels: with two more pixels after it, as a block writes four elements past its pixels) and stop at
    the first that does not; nothing else changes. Without AVX-512 (or not allowed) nothing is written."""
    monkeypatch.setattr(_cpu, "F32_BLOCKS_ALLOWED", allowed)
    blocks = allowed and "avx512f" in _cpu._target_features()

    @numba.njit(cache=False)
    def run(src, cells, j, wo, row, lim, dst, d):
        return _cpu._bilinear_f32_cells8(src, cells, j, wo, row, lim, dst, d, cc)

    w, h = 40, 30
    row = cc * w
    src = rng.standard_normal(h * row + 8).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0], np.float32)
    hit = rng.random(src.size) < 0.02
    src[hit] = rng.choice(specials, int(hit.sum()))
    one = 1 << 32
    ends = np.array([0, 1, 255, 256, one // 2, one - 257, one - 256, one - 1])
    lim = (h - 1) * row - cc
    c = np.arange(cc)
    spare = 2 if cc == 3 else 0
    scratch = 4 if cc == 3 else 0
    compared = 0
    for _, wo, j, off, fx, fy, cells, want_done in _points_block_cases(rng, w, h, cc, lim, ends, 8, spare):
        dst = np.full(cc * wo + 8, 7, np.float32)
        done = run(src, cells, j, wo, row, lim, dst, 3)
        if not blocks:
            assert done == 0 and (dst == 7).all()
            continue
        assert done == want_done
        assert (dst[:3] == 7).all() and (dst[3 + cc * done + (scratch if done else 0):] == 7).all()
        k = np.arange(j, j + done)
        gx = (fx[k].astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32))[:, None]
        gy = (fy[k].astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32))[:, None]
        o = off[k][:, None]
        want = _f32_bilinear_bits(src[o + c], src[o + c + cc], src[o + row + c], src[o + row + c + cc], gx, gy)
        np.testing.assert_array_equal(dst[3:3 + cc * done].reshape(done, cc).view(np.uint32), want.view(np.uint32))
        compared += done
    assert compared > 1500 or not blocks


@pytest.mark.parametrize("dtype,wide", [(np.uint8, None), (np.uint16, None), (np.float32, True), (np.float32, False)])
def test_grey_bilinear_blocks_of_points_are_the_scalar_arithmetic(rng, monkeypatch, dtype, wide):
    """1-channel points rows in blocks of GATHER pixels read from their cells (gathers; uint8, uint16 and
    float32, whose tap pairs AVX-512 gathers or AVX2's, ``WIDE_F32_GATHERS_ALLOWED``) have the bits of the
    pixel-by-pixel loops: uint8 ``_bil_int_c``'s integer formula with ``_w15`` weights, uint16
    ``_bil_float_c`` in float64 rounded half up and saturated, float32 ``_bil_f32_c`` (NaN and infinities
    among the taps); blocks go on while every cell of a block is an offset below the limit and the block
    fits in the row, and stop at the first that does not; a negative limit writes nothing; nothing else
    changes. Without AVX2 nothing is written. (The AVX-512 gathers are tested only where the CPU has
    AVX-512F; elsewhere both float32 cases run the AVX2 gathers.)"""
    if wide is not None:  # float32's tap pairs only
        monkeypatch.setattr(_cpu, "WIDE_F32_GATHERS_ALLOWED", wide)
    blocks = "avx2" in _cpu._target_features()
    n = _cpu.GATHER

    @numba.njit(cache=False)
    def run(src, cells, j, wo, row, lim, dst, d):
        return _cpu._bilinear_grey_cells(src, cells, j, wo, row, lim, dst, d)

    w, h = 50, 30
    row = w
    if dtype == np.float32:
        src = rng.standard_normal(h * row + 8).astype(np.float32)
        hit = rng.random(src.size) < 0.02
        src[hit] = rng.choice(np.array([np.nan, np.inf, -np.inf, 3e38, 0.0], np.float32), int(hit.sum()))
    else:
        top = np.iinfo(dtype).max
        src = rng.integers(0, top + 1, h * row + 8).astype(dtype)
        src[: 3 * row] = top * (np.arange(3 * row) % 2)  # 0 next to the largest value
    one = 1 << 32
    ends = np.array([0, 1, 255, 256, 65535, 65536, 131072, one // 2, one - 65537, one - 256, one - 1])
    lim = (h - 1) * row - 1
    compared = 0
    for case, wo, j, off, fx, fy, cells, want_done in _points_block_cases(rng, w, h, 1, lim, ends, n):
        dst = np.full(wo + 8, 7, dtype)
        if case == 1:
            assert run(src, cells, j, wo, row, -5, dst, 3) == 0 and (dst == 7).all()
        done = run(src, cells, j, wo, row, lim, dst, 3)
        if not blocks:
            assert done == 0 and (dst == 7).all()
            continue
        assert done == want_done
        assert (dst[:3] == 7).all() and (dst[3 + done:] == 7).all()
        k = np.arange(j, j + done)
        o = off[k]
        a, b, c, e = src[o], src[o + 1], src[o + row], src[o + row + 1]
        if dtype == np.uint8:
            a, b, c, e = (v.astype(np.int64) for v in (a, b, c, e))
            wx, wy = (fx[k] + 65536) >> 17, (fy[k] + 65536) >> 17
            t = (a << 15) + (b - a) * wx
            u = (c << 15) + (e - c) * wx
            want = ((t << 15) + (u - t) * wy + (1 << 29)) >> 30
        elif dtype == np.uint16:
            gx, gy = fx[k] * 2.0 ** -32, fy[k] * 2.0 ** -32
            v = (a * ((1.0 - gx) * (1.0 - gy)) + b * (gx * (1.0 - gy))) + c * ((1.0 - gx) * gy) + e * (gx * gy)
            want = np.clip(np.floor(v + 0.5), 0, 65535)
        else:
            gx = fx[k].astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32)
            gy = fy[k].astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32)
            want = _f32_bilinear_bits(a, b, c, e, gx, gy)
            np.testing.assert_array_equal(dst[3:3 + done].view(np.uint32), want.view(np.uint32))
            compared += done
            continue
        np.testing.assert_array_equal(dst[3:3 + done], want)
        compared += done
    assert compared > 1500 or not blocks


@pytest.mark.parametrize("wide", [True, False])
def test_grey_float32_span_blocks_are_the_scalar_arithmetic(rng, monkeypatch, wide):
    """1-channel float32 spans in blocks of GATHER pixels (:func:`_cpu._bilinear_grey_block`, tap pairs by
    AVX-512 gathers or AVX2's, ``WIDE_F32_GATHERS_ALLOWED``) have the bits of ``_bil_f32_c`` at each pixel's
    32.32 coordinate, NaN and infinities among the taps, steps in every direction; nothing else changes; a
    span reading past the image's end writes nothing."""
    monkeypatch.setattr(_cpu, "WIDE_F32_GATHERS_ALLOWED", wide)
    n = _cpu.GATHER

    @numba.njit(cache=False)
    def run(src, sbase, row, xq, yq, dxq, dyq, dst, d):
        return _cpu._bilinear_grey_block(src, sbase, row, xq, yq, dxq, dyq, dst, d)

    w, h = 90, 40
    src = rng.standard_normal(h * w).astype(np.float32)
    hit = rng.random(src.size) < 0.02
    src[hit] = rng.choice(np.array([np.nan, np.inf, -np.inf, 3e38, 0.0], np.float32), int(hit.sum()))
    one = 1 << 32
    compared = 0
    for case in range(300):
        dxq = int(rng.choice([0, 1, -1, one, -one, one // 3])) if case % 3 == 0 else int(rng.integers(-one, one))
        dyq = int(rng.choice([0, 1, -1, one // 7])) if case % 3 == 0 else int(rng.integers(-one // 2, one // 2))
        x0 = int(rng.integers(n + 2, w - n - 3)) * one + int(rng.integers(0, one))
        y0 = int(rng.integers(n // 2 + 2, h - n // 2 - 3)) * one + int(rng.integers(0, one))
        dst = np.full(n + 6, 7, np.float32)
        assert run(src, 0, w, x0, y0, dxq, dyq, dst, 3)
        assert (dst[:3] == 7).all() and (dst[3 + n:] == 7).all()
        k = np.arange(n, dtype=np.int64)
        xs, ys = x0 + k * dxq, y0 + k * dyq
        o = (ys >> 32) * w + (xs >> 32)
        gx = (xs & (one - 1)).astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32)
        gy = (ys & (one - 1)).astype(np.uint32).astype(np.float32) * np.float32(2.0 ** -32)
        want = _f32_bilinear_bits(src[o], src[o + 1], src[o + w], src[o + w + 1], gx, gy)
        np.testing.assert_array_equal(dst[3:3 + n].view(np.uint32), want.view(np.uint32))
        compared += n
    dst = np.full(n, 7, np.float32)  # the last row: the taps below lie past the end
    assert not run(src, 0, w, 2 * one, (h - 1) * one, one, 0, dst, 0) and (dst == 7).all()
    assert compared == 300 * n


def _bicubic_pixels():
    """A fresh function (compiled when first called, with the module's flags as they are then) that puts
    pixels through both forms of the 3-channel bicubic store: four elements loaded and stored
    (:func:`_cpu._bicubic_put4`), and exact loads and three elements stored (:func:`_cpu._bicubic_put3`)."""
    @numba.njit(cache=False)
    def run(src, offs, row, fxs, fys, put, got, is_int, maxv):
        for k in range(offs.shape[0]):
            _cpu._bicubic_put4(src, offs[k], row, fxs[k], fys[k], put, 3 * k, is_int, maxv)
            _cpu._bicubic_put3(src, offs[k], row, fxs[k], fys[k], got, 3 * k, is_int, maxv)
    return run


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float64, np.float32])
def test_bicubic_four_element_stores_are_the_three_value_stores(rng, monkeypatch, dtype, pairs):
    """A bicubic pixel stored with 4-element loads and one 4-element store (the span loops' form for all but
    their last pixel) has the bits of the three values stored one by one, on random taps, on 0/max stripes
    whose bicubic overshoot saturates both ways, at the fractions 0, 1/2 and just below 1, and (floats) with
    NaN taps; in float64 both are the 16-tap sums of :func:`_cpu._bicubic_c` in their order, saturated:
    with the tap rows in pairs (8-lane vectors, where the target has AVX-512) and one by one."""
    monkeypatch.setattr(_cpu, "BICUBIC_PAIRS_ALLOWED", pairs)
    w, h = 9, 6
    row = 3 * w
    top = float(np.iinfo(dtype).max) if dtype in (np.uint8, np.uint16) else 0.0
    src = (rng.random(h * row) * (top or 1.0)).astype(dtype)
    src[: 2 * row : 2] = 0
    src[1 : 2 * row : 2] = top or 1.0
    if dtype in (np.float32, np.float64):
        src[3 * row + 7] = np.nan
    n = 3000
    offs = 3 * rng.integers(0, w - 3, n) + row * rng.integers(0, h - 3, n)
    special = np.array([0.0, 0.5, 1.0 - 2.0 ** -32])
    fxs = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.random(n))
    fys = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.random(n))
    put = np.zeros(3 * n + 1, dtype)
    got = np.zeros(3 * n, dtype)
    is_int = dtype in (np.uint8, np.uint16)
    _bicubic_pixels()(src, offs, row, fxs, fys, put, got, is_int, top)
    np.testing.assert_array_equal(put[: 3 * n], got)
    if dtype == np.float32:  # float32 arithmetic: the float32 kernel's own sums (see test_sampling's parity)
        return
    # the sums in _bicubic_c's order, in Python floats, through the scalar store
    from stntool.sampling import _scalar

    want = np.empty(3, dtype)
    for k in range(0, n, 7):
        wx, wy = _scalar.cubic_weights(float(fxs[k])), _scalar.cubic_weights(float(fys[k]))
        for c in range(3):
            o = int(offs[k]) + c
            acc = 0.0
            for a in range(4):
                r = 0.0
                for b in range(4):
                    t = float(src[o + a * row + 3 * b]) * wx[b]
                    r = t if b == 0 else r + t
                acc = r * wy[a] if a == 0 else acc + r * wy[a]
            want[c] = _scalar.saturate(acc, top) if is_int else acc
        np.testing.assert_array_equal(put[3 * k: 3 * k + 3], want, err_msg=f"pixel {k}")
    if is_int:
        assert got.min() == 0 and got.max() == top


@numba.njit(cache=False)
def _f32_bilinear_pixels(src, offs, row, fxs, fys, put, got):
    """Pixels through both forms of the 3-channel float32 bilinear taps: four elements loaded and stored
    (:func:`_cpu._bilinear_f32_put4`), and exact loads and three values returned (:func:`_cpu._bilinear_f32_taps3`)."""
    for k in range(offs.shape[0]):
        _cpu._bilinear_f32_put4(src, offs[k], row, fxs[k], fys[k], put, 3 * k)
        v0, v1, v2 = _cpu._bilinear_f32_taps3(src, offs[k], row, fxs[k], fys[k])
        got[k, 0] = v0
        got[k, 1] = v1
        got[k, 2] = v2


def test_float32_bilinear_four_element_stores_are_the_scalar_formula(rng):
    """A 3-channel float32 bilinear pixel stored with 4-element loads and one 4-element store (the span loops'
    form for all but their last pixel) and the same pixel's three values from exact loads both have the bits
    of ``_bil_f32_c``'s float32 arithmetic (here in NumPy float32, operation by operation), on random taps,
    the fractions 0, 1/2 and just below 1, large values of both signs, and NaN and infinite taps."""
    w, h = 8, 4
    row = 3 * w
    src = ((rng.random(h * row) - 0.5) * 1e4).astype(np.float32)
    src[5] = np.nan
    src[row + 10] = np.inf
    src[2 * row + 4] = -np.inf
    src[row + 20] = 3.0e38
    n = 4000
    offs = 3 * rng.integers(0, w - 1, n) + row * rng.integers(0, h - 2, n)
    special = np.array([0.0, 0.5, 1.0 - 2.0 ** -24], np.float32)
    fxs = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.random(n)).astype(np.float32)
    fys = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.random(n)).astype(np.float32)
    put = np.zeros(3 * n + 1, np.float32)
    got = np.zeros((n, 3), np.float32)
    _f32_bilinear_pixels(src, offs, row, fxs, fys, put, got)
    c = np.arange(3)
    fx, fy = fxs[:, None], fys[:, None]
    want = _f32_bilinear_bits(src[offs[:, None] + c], src[offs[:, None] + c + 3], src[offs[:, None] + row + c],
                              src[offs[:, None] + row + c + 3], fx, fy)
    assert want.dtype == np.float32 and np.isnan(want).any() and np.isfinite(want).mean() > 0.5
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(put[: 3 * n].reshape(n, 3), want)


@pytest.mark.parametrize("features, want", [
    ("+avx512ifma,+avx512vl,+avx2", True),
    ("+avx512ifma,-avx512vl", False),
    ("-avx512ifma,+avx512vl", False),
    ("", False),  # NUMBA_CPU_NAME=generic: numba's features are empty
])
def test_ifma_is_used_only_where_the_compile_target_has_it(monkeypatch, features, want):
    class Codegen:
        _tm_features = features

    class Context:
        def codegen(self):
            return Codegen()

    assert _cpu._has_ifma(Context()) is want
    monkeypatch.setattr(_cpu, "IFMA_ALLOWED", False)
    assert _cpu._has_ifma(Context()) is False


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("kind", ["infinite", "huge"])
def test_float32_bilinear_of_infinite_and_huge_taps_is_the_references(channels, kind):
    # the float32 lerps a + (b - a) fx gave NaN next to an infinite tap (inf - inf) where the reference and PyTorch
    # give infinity, and infinity or NaN between finite taps of opposite sign beyond half of float32's range;
    # every span form (pixel by pixel, 4-lane pixels, blocks of eight, grey gathers) and grid_sample
    rng = np.random.default_rng(channels)
    img = rng.random((40, 97, channels)).astype(np.float32)
    if kind == "infinite":
        mask = rng.random(img.shape) < 0.05
        img[mask] = np.where(rng.random(int(mask.sum())) < 0.5, np.inf, -np.inf)
    else:
        img[:, ::2] = 3e38
        img[:, 1::2] = -3e38
    for theta in ([[1.0, 0, 0.1], [0, 1.0, 0.05]], [[0.9, -0.2, 0.03], [0.25, 0.95, -0.07]]):
        expect = stntool.warp(img, theta, backend="numpy")
        grid = stntool.affine_grid(theta, img.shape[:2])
        for got in (stntool.warp(img, theta, backend="cpu"), stntool.grid_sample(img, grid, backend="cpu")):
            assert np.array_equal(np.isnan(got), np.isnan(expect))
            assert np.array_equal(got[np.isinf(expect)], expect[np.isinf(expect)])
            finite = np.isfinite(expect)
            assert np.all(np.isfinite(got[finite]))
            atol = 1e-30 if kind == "infinite" else 1e33  # 3e38 (1 - f) - 3e38 f: float32's rounding of 3e38
            np.testing.assert_allclose(got[finite], expect[finite], rtol=1e-5, atol=atol)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_float32_bicubic_of_huge_taps_is_finite_where_the_reference_is(channels):
    # the float32 sums of four taps overflowed where the float64 reference's value is finite (a tap of 3.2e38
    # times a weight of 1.19 is past float32's range): infinity there, and NaN next to taps of the other sign.
    # Every span form (3-channel vector pixels, grey blocks, pixel by pixel), points rows (grid_sample,
    # projective warps) and the one-pixel case of the report
    one = np.zeros((4, 4), np.float32)
    one[1, 1:3] = 3.2e38
    for backend in ("numpy", "cpu"):
        assert stntool.grid_sample(one, np.zeros((1, 1, 2)), mode="bicubic", backend=backend)[0, 0] == np.float32(
            2.25625e38)
    rng = np.random.default_rng(channels)
    img = (rng.choice([-1, 1], (24, 61, channels)) * rng.uniform(3.0e38, 3.4e38, (24, 61, channels))).astype(
        np.float32)
    img[rng.random(img.shape) < 0.3] = 1.0  # small taps beside the huge ones
    theta = np.array([[0.9, -0.2, 0.03], [0.25, 0.95, -0.07]])
    grid = stntool.affine_grid(theta, (20, 53))
    projective = np.vstack([theta, [0.02, -0.01, 1.0]])
    for run in (lambda b: stntool.warp(img, theta, mode="bicubic", backend=b),
                lambda b: stntool.grid_sample(img, grid, mode="bicubic", backend=b),
                lambda b: stntool.warp(img, projective, mode="bicubic", backend=b)):
        with np.errstate(over="ignore", invalid="ignore"):
            expect = run("numpy")
        got = run("cpu")
        finite = np.isfinite(expect)
        assert finite.mean() > 0.5 and (~finite).any()
        assert np.array_equal(np.isnan(got), np.isnan(expect)) and np.array_equal(np.isinf(got), np.isinf(expect))
        assert np.array_equal(got[~finite & ~np.isnan(expect)], expect[~finite & ~np.isnan(expect)])
        # float32 sums of terms near 3e38 that cancel: float32's rounding of those terms
        np.testing.assert_allclose(got[finite], expect[finite], rtol=1e-4, atol=1e34)
    # a NaN in one channel changes no other channel's bits (the pixel's every channel was computed again)
    img = np.random.default_rng(5).random((16, 16, 3)).astype(np.float32)
    before = stntool.warp(img, theta, mode="bicubic", backend="cpu")
    img[7, 8, 1] = np.nan
    after = stntool.warp(img, theta, mode="bicubic", backend="cpu")
    assert np.isnan(after[..., 1]).any() and np.array_equal(after[..., [0, 2]], before[..., [0, 2]])
