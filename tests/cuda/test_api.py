"""The public API with backend="cuda" (through the one dispatch point) agrees with backend="numpy"."""

import numpy as np

import stntool.api as api


def test_api_paths(rng):
    img = (rng.random((2, 5, 7, 3)) * 255).astype(np.uint8)
    theta = np.array([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]], [[1.0, 0.0, 0.2], [0.0, -1.0, 0.0]]])
    a = api.warp(img, theta, mode="bilinear", padding="border", backend="cuda")
    b = api.warp(img, theta, mode="bilinear", padding="border", backend="numpy")
    assert np.abs(a.astype(int) - b).max() <= 1
    grid = api.affine_grid(theta, (4, 6))
    a = api.grid_sample(img, grid, mode="nearest", backend="cuda")
    b = api.grid_sample(img, grid, mode="nearest", backend="numpy")
    assert np.array_equal(a, b)
    pts = [[0, 0], [6, 0], [0, 4], [6, 4], [3, 2]]
    dst = [[0, 0], [6, 0], [0, 4], [6, 4], [3.5, 2.5]]
    a = api.warp_tps(img[0], pts, dst, backend="cuda")
    b = api.warp_tps(img[0], pts, dst, backend="numpy")
    assert np.abs(a.astype(int) - b).max() <= 1
    f = img.astype(np.float64)
    go = rng.standard_normal((2, 4, 6, 3))
    gi, gg = api.grid_sample_backward(f, grid, go, backend="cuda")
    ri, rg = api.grid_sample_backward(f, grid, go, backend="numpy")
    np.testing.assert_allclose(gi, ri, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gg, rg, rtol=1e-10, atol=1e-10)


def test_device_arrays_stay_on_the_device(rng):
    """Device images in, device images out (no host round trip); batches need matching θ."""
    import pytest
    from numba import cuda

    import stntool

    img = (rng.random((2, 5, 7, 3)) * 255).astype(np.uint8)
    theta = np.array([[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]])
    d_img = cuda.to_device(img)
    out = api.warp(d_img, theta, out_hw=(4, 6), backend="cuda")
    assert not isinstance(out, np.ndarray) and out.shape == (2, 4, 6, 3)
    want = api.warp(img, theta, out_hw=(4, 6), backend="numpy")
    assert np.abs(out.copy_to_host().astype(int) - want).max() <= 1
    single = api.warp(cuda.to_device(np.ascontiguousarray(img[0, :, :, 0])), theta, backend="cuda")
    assert single.shape == (5, 7)
    np.testing.assert_array_equal(single.copy_to_host(), api.warp(img[0, :, :, 0], theta, backend="numpy"))
    tps = api.warp_tps(cuda.to_device(img[0]), [[0, 0], [6, 0], [0, 4], [6, 4], [3, 2]],
                       [[0, 0], [6, 0], [0, 4], [6, 4], [3.5, 2.5]], backend="cuda")
    assert tps.shape == (5, 7, 3)
    with pytest.raises(stntool.InvalidArgumentError, match="backend='cuda'"):
        api.warp(d_img, theta, backend="cpu")
    with pytest.raises(stntool.InvalidArgumentError, match="batch"):
        api.warp(d_img, np.stack([theta] * 3), backend="cuda")


def test_threads_share_the_gpu(rng):
    """Several threads calling at once (``stntool warp --jobs``) get each call's own result, including the
    first call of each kernel (numba-cuda loads a kernel's module without a lock of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    imgs = [(rng.random((6, 9, 3)) * 255).astype(np.uint8) for _ in range(8)]
    thetas = [np.array([[1.0, 0.1 * k, 0.0], [-0.05 * k, 0.9, 0.1]]) for k in range(8)]
    modes = ["nearest", "bilinear", "bicubic", "bicubic"] * 2

    def one(k):
        return api.warp(imgs[k], thetas[k], mode=modes[k], padding="reflection", backend="cuda")

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, range(8)))
    for k in range(8):
        want = api.warp(imgs[k], thetas[k], mode=modes[k], padding="reflection", backend="numpy")
        assert np.abs(got[k].astype(int) - want).max() <= 1
