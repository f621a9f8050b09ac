"""The NumPy localisation net: gradients against float64 finite differences, identity start, Adam, save/load."""

import json
import os
import zipfile

import numpy as np
import pytest

from stntool.errors import InvalidArgumentError
from stntool.locnet import (FAMILIES, Adam, CircularConv1d, Conv2d, Flatten, Linear, LocNet, MaxPool2d, PolarSample, ReLU,
                            UprightHead, WindowedSoftArgmax, quarter_loss,
                            softmax)

EPS = 1e-6
TINY = {"in_channels": 2, "in_size": 12, "conv_channels": [3, 4], "fc": 5}


def _numeric_grad(f, x, index):
    """Central difference of the scalar f() with respect to x[index] (x modified and restored)."""
    old = x[index]
    x[index] = old + EPS
    up = f()
    x[index] = old - EPS
    down = f()
    x[index] = old
    return (up - down) / (2 * EPS)


def _sample_indices(rng, shape, count=12):
    flat = rng.choice(int(np.prod(shape)), size=min(count, int(np.prod(shape))), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def _check_layer(layer, x, rng):
    """Input and parameter gradients of sum(forward(x) · g_out) against finite differences."""
    out = layer.forward(x, train=True)
    g_out = rng.standard_normal(out.shape)
    layer.zero_grad()
    grad_x = layer.backward(g_out)

    def loss():
        return float((layer.forward(x, train=False) * g_out).sum())

    for index in _sample_indices(rng, x.shape):
        assert grad_x[index] == pytest.approx(_numeric_grad(loss, x, index), rel=1e-6, abs=1e-8)
    for name, p in layer.params.items():
        for index in _sample_indices(rng, p.shape):
            assert layer.grads[name][index] == pytest.approx(_numeric_grad(loss, p, index), rel=1e-6, abs=1e-8), name


class TestLayers:
    @pytest.mark.parametrize("kernel, stride, hw", [(3, 1, (7, 6)), (3, 2, (7, 8)), (5, 1, (6, 6)), (1, 1, (4, 5))])
    def test_conv_gradients(self, kernel, stride, hw):
        rng = np.random.default_rng(1)
        conv = Conv2d(3, 4, kernel, stride, rng=rng, dtype=np.float64)
        conv.params["bias"][:] = rng.standard_normal(4)
        _check_layer(conv, rng.standard_normal((3, 2, *hw)), rng)  # (C, N, H, W)

    def test_conv_closed_form(self):
        # a single tap kernel shifts: weight 1 at (ky, kx) = (0, 2) reads input pixel (y - 1, x + 1)
        conv = Conv2d(1, 1, 3, dtype=np.float64)
        conv.params["weight"][:] = 0
        conv.params["weight"][0, 0, 0, 2] = 1
        conv.params["bias"][:] = 0.5
        x = np.arange(20.0).reshape(1, 1, 4, 5)
        out = conv.forward(x, train=False)[0, 0]
        expected = np.zeros((4, 5))
        expected[1:, :4] = x[0, 0, :3, 1:]
        np.testing.assert_array_equal(out, expected + 0.5)

    def test_conv_matches_direct_sum(self):
        rng = np.random.default_rng(2)
        conv = Conv2d(2, 3, 3, stride=2, rng=rng, dtype=np.float64)
        x = rng.standard_normal((2, 1, 5, 6))
        out = conv.forward(x, train=False)
        w, b = conv.params["weight"], conv.params["bias"]
        xp = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
        assert out.shape == (3, 1, 3, 3)
        for y in range(3):
            for xo in range(3):
                window = xp[:, 2 * y:2 * y + 3, 2 * xo:2 * xo + 3]  # (C, ky, kx)
                expected = np.einsum("cyx,ocyx->o", window, w) + b
                np.testing.assert_allclose(out[:, 0, y, xo], expected, rtol=1e-12)

    def test_first_conv_skips_input_gradient(self):
        conv = Conv2d(2, 3, input_grad=False, dtype=np.float64)
        out = conv.forward(np.ones((2, 1, 4, 4)))
        assert conv.backward(np.ones_like(out)) is None
        assert np.any(conv.grads["weight"] != 0)

    @pytest.mark.parametrize("hw", [(6, 8), (7, 5)])
    def test_maxpool_gradients_and_values(self, hw):
        rng = np.random.default_rng(3)
        x = rng.standard_normal((3, 2, *hw))
        pool = MaxPool2d()
        out = pool.forward(x, train=False)
        h, w = hw[0] // 2, hw[1] // 2
        expected = x[:, :, :2 * h, :2 * w].reshape(3, 2, h, 2, w, 2).max(axis=(3, 5))
        np.testing.assert_array_equal(out, expected)
        _check_layer(pool, x, rng)

    def test_maxpool_ties_go_to_first_maximum(self):
        pool = MaxPool2d()
        x = np.zeros((1, 1, 2, 2))
        x[0, 0, 1, 0] = x[0, 0, 1, 1] = 1.0  # bottom-left and bottom-right tie
        pool.forward(x)
        grad = pool.backward(np.full((1, 1, 1, 1), 2.0))
        np.testing.assert_array_equal(grad[0, 0], [[0, 0], [2, 0]])
        pool.forward(np.zeros((1, 1, 2, 2)))  # a blank window: top-left takes it
        np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])

    @pytest.mark.parametrize("slope", [0.0, 0.1])
    def test_relu_gradients(self, slope):
        rng = np.random.default_rng(4)
        x = rng.standard_normal((3, 4, 5))
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
        relu = ReLU(slope)
        np.testing.assert_array_equal(relu.forward(x, train=False), np.where(x > 0, x, slope * x))
        _check_layer(relu, x, rng)

    def test_linear_and_flatten_gradients(self):
        rng = np.random.default_rng(5)
        lin = Linear(6, 4, rng=rng, dtype=np.float64)
        lin.params["bias"][:] = rng.standard_normal(4)
        _check_layer(lin, rng.standard_normal((3, 6)), rng)
        flat = Flatten()
        x = rng.standard_normal((3, 2, 2, 2))  # (C, N, H, W): rows are images, in torch's (C, H, W) order
        np.testing.assert_array_equal(flat.forward(x, train=False), x.transpose(1, 0, 2, 3).reshape(2, 12))
        _check_layer(flat, x, rng)

    def test_backward_without_forward_is_refused(self):
        with pytest.raises(InvalidArgumentError, match="forward"):
            Linear(2, 2).backward(np.ones((1, 2)))


def _randomised(net, rng):
    """A float64 copy with every parameter random (so the heads pass gradient into the trunk)."""
    net = net.astype(np.float64)
    for p in net.parameters().values():
        p[...] = rng.standard_normal(p.shape) * 0.5
    return net


def _check_net(net, x, rng, abs_tol):
    """Every parameter's and the input's gradient of sum(θ · g_θ) + sum(logits · g_logits), sampled, against
    central differences; a projective θ keeps θ[2, 2] = 1."""
    theta, logits = net.forward(x)
    g_theta = rng.standard_normal(theta.shape)
    g_logits = rng.standard_normal(logits.shape)
    net.zero_grad()
    grad_x = net.backward(g_theta, g_logits, input_grad=True)

    def loss():
        t, lg = net.predict(x)
        if t.shape[1] == 3:
            np.testing.assert_array_equal(t[:, 2, 2], 1.0)
        return float((t * g_theta).sum() + (lg * g_logits).sum())

    grads = net.gradients()
    for name, p in net.parameters().items():
        for index in _sample_indices(rng, p.shape, 6):
            assert grads[name][index] == pytest.approx(_numeric_grad(loss, p, index), rel=1e-5, abs=abs_tol), name
    for index in _sample_indices(rng, x.shape, 10):
        assert grad_x[index] == pytest.approx(_numeric_grad(loss, x, index), rel=1e-5, abs=abs_tol)


class TestLocNet:
    @pytest.mark.parametrize("family", ["affine", "projective"])
    def test_end_to_end_gradients(self, family):
        rng = np.random.default_rng(6)
        net = _randomised(LocNet({**TINY, "family": family}, seed=1), rng)
        _check_net(net, rng.standard_normal((3, 2, 12, 12)), rng, abs_tol=1e-8)

    def test_each_head_alone(self):
        rng = np.random.default_rng(7)
        net = _randomised(LocNet(TINY), rng)
        x = rng.standard_normal((2, 2, 12, 12))
        net.forward(x)
        net.zero_grad()
        net.backward(grad_logits=np.ones((2, 4)))
        assert not np.any(net.gradients()["theta.weight"])
        assert np.any(net.gradients()["quarter.weight"]) and np.any(net.gradients()["conv0.weight"])
        net.forward(x)
        net.zero_grad()
        net.backward(grad_theta=np.ones((2, 2, 3)))
        assert not np.any(net.gradients()["quarter.weight"]) and np.any(net.gradients()["theta.weight"])

    def test_gradients_accumulate_until_zero_grad(self):
        rng = np.random.default_rng(8)
        net = _randomised(LocNet(TINY), rng)
        x = rng.standard_normal((2, 2, 12, 12))
        for _ in range(2):
            net.forward(x)
            net.backward(np.ones((2, 2, 3)), np.ones((2, 4)))
        twice = {k: g.copy() for k, g in net.gradients().items()}
        net.zero_grad()
        net.forward(x)
        net.backward(np.ones((2, 2, 3)), np.ones((2, 4)))
        for k, g in net.gradients().items():
            np.testing.assert_allclose(twice[k], 2 * g, rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("family", sorted(FAMILIES))
    def test_identity_at_start_for_any_input(self, family):
        net = LocNet({**TINY, "family": family}, seed=3)
        x = np.random.default_rng(9).uniform(-100, 100, (4, 2, 12, 12)).astype(np.float32)
        theta, logits = net.predict(x)
        eye = np.eye(3)[None] if family == "projective" else np.eye(3)[None, :2]
        assert theta.dtype == np.float32 and theta.shape == (4,) + eye.shape[1:]
        np.testing.assert_array_equal(theta, np.broadcast_to(eye, theta.shape))
        assert logits.shape == (4, 4) and np.all(np.isfinite(logits))

    def test_same_seed_same_weights_and_outputs(self):
        a, b, c = LocNet(TINY, seed=11), LocNet(TINY, seed=11), LocNet(TINY, seed=12)
        for k, p in a.parameters().items():
            np.testing.assert_array_equal(p, b.parameters()[k])
        assert any(not np.array_equal(p, c.parameters()[k]) for k, p in a.parameters().items())
        x = np.random.default_rng(0).standard_normal((2, 2, 12, 12)).astype(np.float32)
        np.testing.assert_array_equal(a.predict(x)[1], b.predict(x)[1])

    def test_training_is_deterministic(self):
        def train(seed):
            net = LocNet(TINY, seed=seed)
            opt = Adam(net.parameters(), lr=1e-2, clip_norm=1.0)
            rng = np.random.default_rng(0)
            for _ in range(5):
                x = rng.standard_normal((4, 2, 12, 12)).astype(np.float32)
                net.zero_grad()
                theta, logits = net.forward(x)
                net.backward(theta - 0.5, quarter_loss(logits, rng.integers(0, 4, 4))[1])
                opt.step(net.gradients())
            return net.parameters()

        a, b = train(21), train(21)
        for k, p in a.items():
            np.testing.assert_array_equal(p, b[k])
        assert not np.array_equal(a["theta.weight"], LocNet(TINY, seed=21).parameters()["theta.weight"])

    def test_default_architecture_size(self):
        for size in (96, 128):
            net = LocNet({"in_size": size})
            assert net.parameter_count() < 500_000
            assert net.parameter_count() * 4 < 2 * 1024 * 1024
            theta, logits = net.predict(np.zeros((1, 2, size, size), np.float32))
            assert theta.shape == (1, 2, 3) and logits.shape == (1, 4)

    def test_bad_architectures_and_inputs(self):
        for arch in ({"in_size": 8, "conv_channels": [4, 4, 4, 4]}, {"kernel": 4}, {"family": "tps"},
                     {"conv_channels": []}, {"fc": 0}, {"bogus": 1}, {"relu_slope": 1.5}, "affine"):
            with pytest.raises(InvalidArgumentError):
                LocNet(arch)
        net = LocNet(TINY)
        for x in (np.zeros((2, 12, 12)), np.zeros((1, 3, 12, 12)), np.zeros((1, 12, 12, 2)),
                  np.zeros((1, 2, 12, 12), complex)):
            with pytest.raises(InvalidArgumentError):
                net.predict(x)
        net.forward(np.zeros((2, 2, 12, 12)))
        with pytest.raises(InvalidArgumentError, match="grad_theta"):
            net.backward(np.zeros((2, 3, 3)))


class TestLossAndAdam:
    def test_quarter_loss_against_finite_differences(self):
        rng = np.random.default_rng(10)
        logits = rng.standard_normal((5, 4)) * 3
        labels = np.array([0, 3, 2, 1, 3])
        loss, grad = quarter_loss(logits, labels)
        p = softmax(logits)
        assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        for index in _sample_indices(rng, logits.shape, 20):
            assert grad[index] == pytest.approx(_numeric_grad(lambda: quarter_loss(logits, labels)[0], logits, index),
                                                rel=1e-6, abs=1e-9)
        assert np.isfinite(quarter_loss(np.array([[1e4, -1e4, 0, 0]]), np.array([1]))[0])
        with pytest.raises(InvalidArgumentError):
            quarter_loss(logits, np.array([0, 1, 2, 3, 4]))

    def test_adam_decreases_a_quadratic(self):
        rng = np.random.default_rng(11)
        target = rng.standard_normal((3, 4)).astype(np.float32)
        params = {"w": np.zeros((3, 4), np.float32), "b": np.full(4, 5.0, np.float32)}
        opt = Adam(params, lr=0.05)

        def loss():
            return float(((params["w"] - target) ** 2).sum() + (params["b"] ** 2).sum())

        start = loss()
        for _ in range(300):
            opt.step({"w": 2 * (params["w"] - target), "b": 2 * params["b"]})
        assert loss() < 1e-3 * start

    def test_adam_first_step_moves_each_parameter_by_lr(self):
        # with bias correction the first update is lr · g / (|g| + eps): lr times the sign of g
        params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]])}
        Adam(params, lr=0.1).step({"w": np.array([[2.0, -3.0], [0.5, -1e-3]])})
        np.testing.assert_allclose(params["w"], [[0.9, 2.1], [2.9, 4.1]], rtol=1e-4)

    def test_clipping_and_weight_decay(self):
        params = {"w": np.ones((2, 2)), "b": np.ones(2)}
        opt = Adam(params, lr=0.1, weight_decay=0.5, clip_norm=1.0)
        norm = opt.step({"w": np.full((2, 2), 3.0), "b": np.full(2, 4.0)})
        assert norm == pytest.approx(np.sqrt(4 * 9 + 2 * 16))
        # decoupled decay shrinks only the 2-D weight: w · (1 - lr · wd) - lr, b - lr
        np.testing.assert_allclose(params["w"], 0.95 - 0.1, rtol=1e-6)
        np.testing.assert_allclose(params["b"], 0.9, rtol=1e-6)
        with pytest.raises(InvalidArgumentError):
            opt.step({"w": np.full((2, 2), np.nan), "b": np.zeros(2)})
        with pytest.raises(InvalidArgumentError):
            Adam(params, lr=-1)

    def test_tiny_fit_learns_both_heads(self):
        """θ[0, 2] learns the mean of the top-left quadrant, the quarter head which quadrant is brightest."""
        rng = np.random.default_rng(12)
        arch = {"in_channels": 1, "in_size": 16, "conv_channels": [4, 8], "fc": 32}
        net = LocNet(arch, seed=0)
        opt = Adam(net.parameters(), lr=3e-3, clip_norm=10.0)

        def batch(n):
            x = rng.uniform(0, 1, (n, 1, 16, 16)).astype(np.float32)
            labels = rng.integers(0, 4, n)
            for i, q in enumerate(labels):
                x[i, 0, 8 * (q // 2):8 * (q // 2) + 8, 8 * (q % 2):8 * (q % 2) + 8] += 1.0
            target = x[:, 0, :8, :8].mean(axis=(1, 2))
            return x, labels, target

        def losses(x, labels, target):
            theta, logits = net.forward(x)
            residual = theta[:, 0, 2] - target
            ce, g_logits = quarter_loss(logits, labels)
            g_theta = np.zeros_like(theta)
            g_theta[:, 0, 2] = 2 * residual / len(x)
            return float(np.mean(residual ** 2)), ce, g_theta, g_logits

        x_val, labels_val, target_val = batch(256)
        mse0, ce0, _, _ = losses(x_val, labels_val, target_val)
        for _ in range(400):
            net.zero_grad()
            _, _, g_theta, g_logits = losses(*batch(32))
            net.backward(g_theta, g_logits)
            opt.step(net.gradients())
        mse, ce, _, _ = losses(x_val, labels_val, target_val)
        variance = float(np.var(target_val))  # what predicting the mean target would score
        assert mse < 0.1 * variance < 0.1 * mse0
        assert ce < 0.2 * ce0
        accuracy = np.mean(net.predict(x_val)[1].argmax(axis=1) == labels_val)
        assert accuracy > 0.95


class TestSaveLoad:
    def test_round_trip_exact_with_metadata_and_optimizer(self, tmp_path):
        rng = np.random.default_rng(13)
        net = LocNet({**TINY, "family": "projective"}, seed=5)
        opt = Adam(net.parameters(), lr=1e-3, weight_decay=1e-4, clip_norm=5.0)
        x = rng.standard_normal((2, 2, 12, 12)).astype(np.float32)
        for _ in range(3):
            net.zero_grad()
            net.forward(x)
            net.backward(rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 4)))
            opt.step(net.gradients())
        meta = {"preprocessing": "gray+edges, area downscale to 12", "ranges": {"rotate": [-30, 30]},
                "command": "stntool train pages/ --out m.npz", "data": "synthetic pages, seed 1"}
        path = tmp_path / "model.npz"
        net.save(path, meta, optimizer=opt)
        assert os.listdir(tmp_path) == ["model.npz"]  # no temporary files left
        loaded = LocNet.load(path)
        assert loaded.arch == net.arch and loaded.metadata == meta and loaded.family == "projective"
        for k, p in net.parameters().items():
            np.testing.assert_array_equal(loaded.parameters()[k], p)
        np.testing.assert_array_equal(loaded.predict(x)[0], net.predict(x)[0])
        header = json.loads(str(np.load(path)["header"]))
        assert header["format_version"] == 1 and header["stntool_version"]
        # the optimizer resumes exactly where it stopped
        opt2 = Adam(loaded.parameters(), **{k: v for k, v in loaded.optimizer_state["hyperparameters"].items()})
        opt2.load_state_dict(loaded.optimizer_state)
        g = {k: np.full_like(p, 0.1) for k, p in net.parameters().items()}
        opt.step(g)
        opt2.step(g)
        for k, p in net.parameters().items():
            np.testing.assert_array_equal(loaded.parameters()[k], p)
        assert path.stat().st_size < 100_000

    def test_default_model_file_is_small(self, tmp_path):
        net = LocNet({"in_size": 128})
        net.save(tmp_path / "m.npz", {})
        assert (tmp_path / "m.npz").stat().st_size < 2 * 1024 * 1024
        assert LocNet.load(tmp_path / "m.npz").optimizer_state is None

    def test_bad_metadata_is_refused(self, tmp_path):
        with pytest.raises(InvalidArgumentError, match="JSON"):
            LocNet(TINY).save(tmp_path / "m.npz", {"x": object()})
        assert not os.listdir(tmp_path)

    def _saved(self, tmp_path):
        path = tmp_path / "good.npz"
        LocNet(TINY).save(path, {"a": 1})
        return path

    def _expect_error(self, path, match=None):
        with pytest.raises(InvalidArgumentError, match=match) as info:
            LocNet.load(path)
        assert "\n" not in str(info.value)
        return str(info.value)

    def test_missing_folder_and_garbage(self, tmp_path):
        self._expect_error(tmp_path / "nope.npz", "does not exist")
        self._expect_error(tmp_path, "folder")
        (tmp_path / "text.npz").write_text("hello")
        self._expect_error(tmp_path / "text.npz", "not a .npz archive")
        (tmp_path / "empty.npz").write_bytes(b"")
        self._expect_error(tmp_path / "empty.npz")

    def test_truncated_and_corrupted_files(self, tmp_path):
        data = self._saved(tmp_path).read_bytes()
        rng = np.random.default_rng(14)
        bad = tmp_path / "bad.npz"
        for cut in (10, len(data) // 3, len(data) // 2, len(data) - 30):
            bad.write_bytes(data[:cut])
            self._expect_error(bad)
        for _ in range(20):
            corrupt = bytearray(data)
            for i in rng.integers(0, len(data), 8):
                corrupt[i] ^= 0xFF
            bad.write_bytes(bytes(corrupt))
            try:
                LocNet.load(bad)  # a flip in padding may leave a readable model; anything else is refused cleanly
            except InvalidArgumentError as e:
                assert "\n" not in str(e)

    def test_foreign_npz_files(self, tmp_path):
        path = tmp_path / "foreign.npz"
        np.savez(path, weights=np.ones(3))
        self._expect_error(path, "not a stntool localisation net")
        np.save(tmp_path / "single.npy", np.ones(3))
        self._expect_error(tmp_path / "single.npy", "single .npy")
        np.savez(path, header=np.array(json.dumps({"format": "other"})))
        self._expect_error(path, "not a stntool localisation net")
        np.savez(path, header=np.array("{not json"))
        self._expect_error(path, "not JSON")
        np.savez(path, header=np.array([{"format": "stntool-locnet"}], dtype=object), allow_pickle=True)
        self._expect_error(path)  # pickled objects are never loaded

    def test_header_and_parameter_mismatches(self, tmp_path):
        good = self._saved(tmp_path)
        with np.load(good) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(str(arrays["header"]))
        path = tmp_path / "edited.npz"

        def write(**changes):
            np.savez(path, **{**arrays, **changes})

        write(header=np.array(json.dumps({**header, "format_version": 99})))
        self._expect_error(path, "format version 99")
        write(header=np.array(json.dumps({**header, "arch": {**header["arch"], "family": "tps"}})))
        self._expect_error(path, "family")
        write(**{"param.fc.weight": np.ones((2, 2), np.float32)})
        self._expect_error(path, "fc.weight")
        write(**{"param.fc.weight": np.full(arrays["param.fc.weight"].shape, np.nan, np.float32)})
        self._expect_error(path, "NaN")
        wide = {**header["arch"], "conv_channels": [10 ** 6, 10 ** 6]}  # a tampered header asking for terabytes
        write(header=np.array(json.dumps({**header, "arch": wide})))
        self._expect_error(path, "too large")
        write(**{"param.fc2.weight": np.ones((2, 2), np.float32)})  # a parameter the architecture has no place for
        self._expect_error(path, "does not use: fc2.weight")
        del arrays["param.theta.bias"]
        write()
        self._expect_error(path, "lacks parameters: theta.bias")

    def test_zip_with_bad_member(self, tmp_path):
        path = tmp_path / "zip.npz"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("header.npy", b"\x93NUMPY garbage")
        self._expect_error(path, "not a readable")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("header", "xyz")  # not .npy: np.load gives its bytes
        self._expect_error(path, "member 'header' is not an array")


class TestTorchParity:
    def test_conv_pool_linear_forward_backward(self):
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(15)
        for stride in (1, 2):
            conv = Conv2d(3, 5, 3, stride, rng=rng, dtype=np.float64)
            conv.params["bias"][:] = rng.standard_normal(5)
            x = rng.standard_normal((3, 2, 9, 7))  # (C, N, H, W)
            out = conv.forward(x)
            g = rng.standard_normal(out.shape)
            grad_x = conv.backward(g)
            tx = torch.tensor(x.transpose(1, 0, 2, 3), requires_grad=True)
            tw = torch.tensor(conv.params["weight"], requires_grad=True)
            tb = torch.tensor(conv.params["bias"], requires_grad=True)
            tout = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=1)
            np.testing.assert_allclose(out, tout.detach().numpy().transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
            tout.backward(torch.tensor(g.transpose(1, 0, 2, 3)))
            np.testing.assert_allclose(grad_x, tx.grad.numpy().transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(conv.grads["weight"], tw.grad.numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(conv.grads["bias"], tb.grad.numpy(), rtol=1e-12, atol=1e-12)
        pool = MaxPool2d()
        x = np.round(rng.standard_normal((3, 2, 7, 6)), 1)  # rounding makes ties
        out = pool.forward(x)
        g = rng.standard_normal(out.shape)
        tx = torch.tensor(x.transpose(1, 0, 2, 3), requires_grad=True)
        tout = torch.nn.functional.max_pool2d(tx, 2)
        np.testing.assert_array_equal(out, tout.detach().numpy().transpose(1, 0, 2, 3))
        tout.backward(torch.tensor(g.transpose(1, 0, 2, 3)))
        np.testing.assert_array_equal(pool.backward(g), tx.grad.numpy().transpose(1, 0, 2, 3))

    def test_adam_and_adamw_match_torch(self):
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(16)
        for decay in (0.0, 0.1):
            w0 = rng.standard_normal((3, 4))
            params = {"w": w0.copy()}
            opt = Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=decay)
            tw = torch.tensor(w0, requires_grad=True)
            topt = (torch.optim.AdamW([tw], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=decay) if decay
                    else torch.optim.Adam([tw], lr=0.01, betas=(0.8, 0.99), eps=1e-6))
            for _ in range(5):
                g = rng.standard_normal((3, 4))
                opt.step({"w": g})
                tw.grad = torch.tensor(g)
                topt.step()
            np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)


ORIENTED = {**TINY, "in_size": 16, "orientation_bins": 12, "orientation_rings": 3, "orientation_hidden": 3,
            "orientation_kernel": 3, "orientation_window": 40.0}


class TestOrientationBranch:
    def test_polar_sample_reads_rings(self):
        # bilinear reading is exact for f = x · y; φ and φ + 180° average to centre² + r² cos φ sin φ
        size, centre, radii = 16, 7.5, [2.0, 5.0]
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
        img = np.stack([np.zeros((size, size)), xs * ys])[:, None]  # (C, N, S, S), channel 1 read
        out = PolarSample(size, 1, centre, radii, bins=4, sub=1).forward(img, train=False)  # (R, N, A)
        phi = np.arange(4) * np.pi / 4
        np.testing.assert_allclose(out[:, 0], centre ** 2 + np.outer(np.square(radii), np.cos(phi) * np.sin(phi)),
                                   rtol=1e-12)
        two = PolarSample(size, 1, centre, radii, bins=4, sub=2).forward(img, train=False)
        quarter = [phi - np.pi / 16, phi + np.pi / 16]  # two points across each bin, averaged
        expected = np.mean([centre ** 2 + np.outer(np.square(radii), np.cos(q) * np.sin(q)) for q in quarter], axis=0)
        np.testing.assert_allclose(two[:, 0], expected, rtol=1e-12)

    def test_polar_sample_gradient(self):
        rng = np.random.default_rng(20)
        polar = PolarSample(10, 1, 4.7, [1.0, 3.5], bins=8)
        _check_layer(polar, rng.standard_normal((2, 3, 10, 10)), rng)

    def test_circular_conv_wraps_and_gradients(self):
        rng = np.random.default_rng(21)
        conv = CircularConv1d(2, 3, 5, rng=rng, dtype=np.float64)
        conv.params["bias"][:] = rng.standard_normal(3)
        x = rng.standard_normal((2, 2, 7))
        out = conv.forward(x, train=False)
        w, b = conv.params["weight"], conv.params["bias"]
        for j in range(7):
            window = x[:, :, [(j + t - 2) % 7 for t in range(5)]]  # (C_in, N, k)
            np.testing.assert_allclose(out[:, :, j], np.einsum("cnt,oct->on", window, w) + b[:, None], rtol=1e-12)
        _check_layer(conv, x, rng)

    def test_soft_argmax_values_and_gradients(self):
        bins = 12
        layer = WindowedSoftArgmax(bins, [6, 0], 2)
        flat = np.zeros((2, 3, bins))
        assert np.array_equal(layer.forward(flat, train=False), np.zeros((3, 2)))  # exactly 0, not rounding
        peaked = np.full((2, 1, bins), -50.0)
        peaked[0, 0, 7] = 0.0  # one step past 90 degrees
        peaked[1, 0, 11] = 0.0  # one step before 0 (the window wraps)
        np.testing.assert_allclose(layer.forward(peaked, train=False)[0], [np.pi / bins, -np.pi / bins], rtol=1e-12)
        rng = np.random.default_rng(22)
        _check_layer(layer, rng.standard_normal((2, 3, bins)), rng)

    def test_a_following_window_moves_with_the_first_estimate(self):
        bins = 12
        layer = WindowedSoftArgmax(bins, [6, 0], 2, follow=[None, 0])
        scores = np.full((2, 2, bins), -50.0)
        scores[0, :, 8] = 0.0  # lines two steps past 90 degrees
        scores[1, 0, 1] = 0.0  # image 0: strokes one step past 0, inside the moved window (0 .. 4)
        # image 1: strokes flat, read as square to the lines (two steps, not 0)
        out = layer.forward(scores, train=False)
        step = np.pi / bins
        np.testing.assert_allclose(out, [[2 * step, step], [2 * step, 2 * step]], rtol=1e-12)
        still = WindowedSoftArgmax(bins, [6, 0], 2)
        np.testing.assert_allclose(still.forward(scores, train=False)[1], [2 * step, 0.0], atol=1e-12)
        rng = np.random.default_rng(24)
        _check_layer(layer, rng.standard_normal((2, 3, bins)), rng)

    @pytest.mark.parametrize("follow", [False, True])
    @pytest.mark.parametrize("family", sorted(FAMILIES))
    def test_end_to_end_gradients(self, family, follow):
        rng = np.random.default_rng(23)
        net = _randomised(LocNet({**ORIENTED, "family": family, "orientation_follow": follow}, seed=1), rng)
        assert any(k.startswith("orient_conv0") for k in net.parameters())
        # abs: the loss is O(100), so a central difference carries about 1e-8 of rounding
        _check_net(net, rng.standard_normal((3, 2, 16, 16)), rng, abs_tol=5e-8)

    @pytest.mark.parametrize("family", sorted(FAMILIES))
    def test_identity_at_start_and_round_trip(self, family, tmp_path):
        net = LocNet({**ORIENTED, "family": family, "orientation_follow": True}, seed=3)
        x = np.random.default_rng(9).uniform(-100, 100, (4, 2, 16, 16)).astype(np.float32)
        theta, _ = net.predict(x)
        eye = np.eye(3)[None] if family == "projective" else np.eye(3)[None, :2]
        np.testing.assert_array_equal(theta, np.broadcast_to(eye, theta.shape))
        rng = np.random.default_rng(4)
        for p in net.parameters().values():
            p[...] = rng.standard_normal(p.shape).astype(np.float32)
        net.save(tmp_path / "m.npz", {})
        loaded = LocNet.load(tmp_path / "m.npz")
        for a, b in zip(net.predict(x), loaded.predict(x)):
            np.testing.assert_array_equal(a, b)
        theta = loaded.predict(x)[0]
        lin = theta[:, :2, :2].astype(np.float64)  # unit columns: the orientations set directions, not scale
        np.testing.assert_allclose(np.linalg.norm(lin, axis=1), 1.0, rtol=1e-6)
        if family in ("rotation", "similarity"):
            np.testing.assert_allclose(lin[:, 0, 0], lin[:, 1, 1], rtol=1e-6)

    def test_bad_orientation_architectures(self):
        for extra in ({"orientation_bins": 10}, {"orientation_channel": 2}, {"orientation_kernel": 4},
                      {"orientation_radius": [0.5, 0.2]}, {"orientation_window": 95.0},
                      {"orientation_window": 5.0}, {"orientation_centre": 99.0}, {"orientation_follow": 1}):
            with pytest.raises(InvalidArgumentError):
                LocNet({**ORIENTED, **extra})


class TestUprightHead:
    def test_gradients(self):
        rng = np.random.default_rng(40)
        head = UprightHead(8, dtype=np.float64)
        head.params["weight"][:] = rng.standard_normal(4)
        _check_layer(head, rng.standard_normal((5, 8)), rng)

    def test_upside_down_is_the_opposite_and_no_lines_no_opinion(self):
        rng = np.random.default_rng(41)
        head = UprightHead(24, dtype=np.float64)
        head.params["weight"][:] = rng.standard_normal(12)
        p = rng.random((3, 24))
        np.testing.assert_allclose(head.forward(p[:, ::-1], train=False), -head.forward(p, train=False), rtol=1e-12)
        np.testing.assert_array_equal(head.forward(np.zeros((1, 24)), train=False), 0.0)
        # a symmetric profile (a line with as much ink above its core as below) has no opinion either
        np.testing.assert_allclose(head.forward(p + p[:, ::-1], train=False), 0.0, atol=1e-12)
        # the odd part is the first half against its mirror
        np.testing.assert_array_equal(head.odd(p)[:, 0], p[:, 0] - p[:, 23])

    def test_in_the_net_saved_and_loaded(self, tmp_path):
        net = LocNet({**TINY, "upright_bins": 24}, seed=3)
        assert net.upright_logit(np.ones((2, 24)))[0] == 0.0  # starts with no opinion
        plain = LocNet(TINY, seed=3)
        for name, p in plain.parameters().items():  # the head draws no random numbers: the rest is the same net
            np.testing.assert_array_equal(net.parameters()[name], p)
        net.upright_head.params["weight"][:] = np.arange(12, dtype=np.float32)
        net.save(tmp_path / "m.npz", {})
        loaded = LocNet.load(tmp_path / "m.npz")
        profile = np.linspace(0, 1, 24)[None]
        assert loaded.upright_logit(profile)[0] == net.upright_logit(profile)[0] != 0
        np.testing.assert_array_equal(loaded.astype(np.float64).upright_head.params["weight"], np.arange(12))
        with pytest.raises(InvalidArgumentError, match="no upright head"):
            plain.upright_logit(profile)
        with pytest.raises(InvalidArgumentError, match="profiles"):
            net.upright_logit(np.ones((1, 12)))
        for bins in (-2, 3, True, 2.0):
            with pytest.raises(InvalidArgumentError, match="upright_bins"):
                LocNet({**TINY, "upright_bins": bins})


def test_a_header_asking_for_an_impossible_architecture_is_one_error(tmp_path):
    """An in_size of 1e9 made numpy refuse the allocation with ValueError ("array is too big"), a traceback."""
    import json
    import os

    from stntool.errors import InvalidArgumentError
    from stntool.locnet import LocNet

    shipped = os.path.join(os.path.dirname(__import__("stntool").__file__), "models", "text.npz")
    with np.load(shipped) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    header["arch"]["in_size"] = 1_000_000_000
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "huge.npz", **arrays)
    with pytest.raises(InvalidArgumentError, match="architecture is too large"):
        LocNet.load(tmp_path / "huge.npz")


def test_an_empty_batch_or_a_wrong_shape_is_one_error():
    # predict(np.zeros((0, C, S, S))) raised NumPy's "cannot reshape array of size 0"
    net = LocNet({"in_channels": 1, "in_size": 16, "conv_channels": [4]})
    for bad in (np.zeros((0, 1, 16, 16), np.float32), np.zeros((1, 16, 16), np.float32), [[1, 2], [3]]):
        with pytest.raises(InvalidArgumentError, match="LocNet input must"):
            net.predict(bad)
    theta, logits = net.predict(np.zeros((2, 1, 16, 16), np.float32))
    assert theta.shape == (2, 2, 3) and logits.shape == (2, 4)
