"""Training through the sampler: the square frame, gradients end to end, a tiny run that learns, resuming."""

import math

import numpy as np
import pytest

import stntool
from stntool import pageview as pv
from stntool.errors import InvalidArgumentError
from stntool.locnet import LocNet
from stntool.train import (PageSet, TrainConfig, _grid_to_theta, make_batch, photometric_loss, residual_rotation,
                           train)

pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def pages():
    from stntool.pages import synthetic_pages

    return list(synthetic_pages(12, seed=5, size=(320, 240)))


def rotation_theta(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])


def test_quarter_theta_is_rot90():
    sq = np.random.default_rng(0).random((9, 9)).astype(np.float32)
    for k in range(4):
        assert np.array_equal(stntool.warp(sq, pv.quarter_theta(k), mode="nearest", backend="numpy"), np.rot90(sq, k))


@pytest.mark.parametrize("hw", [(30, 50), (50, 30)])
def test_square_frame_rotation_is_a_pixel_rotation_of_the_page(hw):
    """Warping the page by page_theta(θ_sq) equals warping its square padding by θ_sq and cropping."""
    h, w = hw
    page = np.random.default_rng(1).random(hw).astype(np.float32)
    side = max(hw)
    top, left = (side - h) // 2, (side - w) // 2
    sq = np.zeros((side, side), np.float32)
    sq[top:top + h, left:left + w] = page
    t = rotation_theta(20)
    t[:, 2] = [0.05, -0.1]
    via_square = stntool.warp(sq, t, backend="numpy")[top:top + h, left:left + w]
    assert np.array_equal(stntool.warp(page, pv.page_theta(t, hw), backend="numpy"), via_square)
    assert np.allclose(pv.square_theta(pv.page_theta(t, hw), hw), t)


def test_net_input_shape_and_orientation_signal():
    img = np.full((200, 150), 255, np.uint8)
    img[20::12, 15:135] = 0  # horizontal lines
    x = pv.net_input(pv.working_image(img))
    assert x.shape == (3, pv.SIZE, pv.SIZE) and x.dtype == np.float32
    spec = x[1]
    c = pv.SIZE // 2
    # horizontal lines put their spectral energy on the vertical frequency axis
    assert spec[:, c - 1:c + 2].mean() > spec[c - 1:c + 2, :].mean() + 0.5


@pytest.mark.parametrize("side", [pv.WORK, 301])
def test_net_inputs_turned_are_the_inputs_of_the_turned_views(side):
    """What the quarter head reads: the four turned views' inputs, made from one spectrum and one resize,
    equal net_input of each turned image (to float32 rounding), on a page with lines (a spectrum with
    structure, not the same after a quarter turn: the test tells the turns apart) and on noise, for an
    even and an odd side."""
    page = np.full((300, 220), 255, np.uint8)
    page[20::12, 15:135] = 0
    page[30:200:7, 150:160] = 40
    noise = np.random.default_rng(1).random((side, side)).astype(np.float32)
    for work in (pv.working_image(page, side), noise):
        turned = pv.net_inputs_turned(work)
        assert turned.shape == (4, 3, pv.SIZE, pv.SIZE) and turned.dtype == np.float32
        for j in range(4):
            want = pv.net_input(np.ascontiguousarray(np.rot90(work, j)))
            np.testing.assert_allclose(turned[j], want, rtol=0, atol=1e-3, err_msg=f"turn {j}")
        if work is not noise:
            assert np.abs(turned[0][1] - turned[1][1]).max() > 0.5


@pytest.mark.parametrize("lines_deg", [0.0, 17.0, -23.0, 38.0])
def test_spectrum_channel_peaks_perpendicular_to_lines_about_its_centre(lines_deg):
    """The orientation branch's reading of channel 1: a grating of lines at ψ peaks at ψ + 90° (x right, y down)."""
    from stntool.locnet import PolarSample

    ys, xs = np.mgrid[0:pv.WORK, 0:pv.WORK].astype(np.float64)
    a = math.radians(lines_deg + 90.0)  # the wave vector, across the lines
    grating = (0.5 + 0.5 * np.cos(2 * np.pi * (xs * math.cos(a) + ys * math.sin(a)) / 9.0)).astype(np.float32)
    x = pv.net_input(grating)
    polar = PolarSample(pv.SIZE, 1, pv.spectrum_centre(), np.linspace(0.1, 0.95, 16) * pv.SIZE / 2, bins=180)
    profile = polar.forward(x[:, None], train=False)[:, 0].mean(axis=0)
    off = (int(np.argmax(profile)) - (lines_deg + 90.0)) % 180.0  # bins are 1 degree apart
    assert min(off, 180.0 - off) <= 1.0


def test_crop_windows_stay_inside():
    assert pv.crop_origin() == ((pv.WORK - pv.SIZE) // 2,) * 2
    assert pv.crop_origin(offset=(-10_000, 10_000)) == (0, pv.WORK - pv.SIZE)
    work = np.random.default_rng(0).random((pv.WORK, pv.WORK)).astype(np.float32)
    top, left = pv.crop_origin(offset=(-30, 50))
    crop = work[top:top + pv.SIZE, left:left + pv.SIZE]
    np.testing.assert_allclose(pv.net_input(work, crop=(top, left))[2], (crop - crop.mean()) / (crop.std() + 1e-3),
                               rtol=1e-5, atol=1e-5)


def _lines_with_ascenders(side=512, pitch=32, core=(14, 22), rise=7):
    """White page, black text lines: a core band (x-height) in word-sized runs, and every fourth column
    of each word rising ``rise`` rows above it (ascenders), none going below (no descenders)."""
    img = np.ones((side, side), np.float32)
    rng = np.random.default_rng(3)
    for top in range(40, side - 40, pitch):
        x = 20
        while x < side - 40:
            n = int(rng.integers(20, 60))
            img[top + core[0]:top + core[1], x:x + n] = 0.0
            img[top + core[0] - rise:top + core[0], x:x + n:4] = 0.0
            x += n + 12
    return img


def test_line_profile_reads_ink_above_the_core_and_reverses_upside_down():
    img = _lines_with_ascenders()
    prof, lines = pv.line_profile(img)
    assert lines >= 14 * 8 and prof.shape == (pv.LINE_BINS,)
    third = pv.LINE_BINS // 3
    assert prof[:third].sum() > 0.1 and prof[2 * third:].sum() == 0.0  # ascenders above the core, nothing below
    assert prof.sum() == pytest.approx(1.0)
    flipped, n = pv.line_profile(np.ascontiguousarray(img[::-1, ::-1]))
    assert n == lines
    np.testing.assert_allclose(flipped, prof[::-1], rtol=1e-12, atol=1e-15)
    # light text on dark paper reads the same
    np.testing.assert_allclose(pv.line_profile(1.0 - img)[0], prof, rtol=1e-12, atol=1e-15)
    # the page and a square-frame θ: half a turn is the reversed profile, exactly
    page = np.rint(img * 255).astype(np.uint8)
    up, _ = pv.page_line_profile(page, np.eye(3))
    down, _ = pv.page_line_profile(page, [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    np.testing.assert_allclose(down, up[::-1], rtol=1e-12, atol=1e-15)


def _line_profile_loop(view, bins=pv.LINE_BINS):
    """line_profile written as the definition reads: strip by strip, line by line (the oracle)."""
    import cv2

    g = np.asarray(view, dtype=np.float32)
    h, w = g.shape
    if np.median(g[h // 4:3 * h // 4, w // 4:3 * w // 4]) < 0.5:
        g = 1.0 - g
    paper = cv2.morphologyEx(g, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15)))
    ink8 = np.clip(np.rint((paper - g) * 255.0), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(ink8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = ink8 > max(otsu, 20)
    acc, lines = np.zeros(bins), 0
    step = w // 16
    for s in range(16):
        rows = ink[:, s * step:(s + 1) * step].sum(axis=1).astype(np.float64)
        if not rows.any():
            continue
        on = np.concatenate([[False], rows > 0.08 * np.percentile(rows[rows > 0], 90), [False]])
        starts, ends = np.flatnonzero(~on[:-1] & on[1:]), np.flatnonzero(on[:-1] & ~on[1:])
        for a, e in zip(starts, ends):
            if not 3 <= e - a <= h // 4:
                continue
            q = rows[a:e]
            core = np.flatnonzero(q >= 0.5 * q.max())
            c0, c1 = core[0], core[-1] + 1
            if c1 - c0 < 2:
                continue
            for r in range(len(q)):
                pos = ((r + 0.5 - c0) / (c1 - c0) + 1.0) * bins / 3.0 - 0.5
                lo = int(np.floor(pos))
                for b, wt in ((lo, 1.0 - (pos - lo)), (lo + 1, pos - lo)):
                    if 0 <= b < bins:
                        acc[b] += q[r] * wt / q.sum()
            lines += 1
    return (acc / lines if lines else acc), lines


@pytest.mark.parametrize("i", range(4))
def test_line_profile_matches_its_definition(i):
    from stntool.pages import render_page

    view = pv.working_image(render_page((13, i), split="heldout", degrade=i % 2 == 1), 640)
    prof, lines = pv.line_profile(view)
    want, want_lines = _line_profile_loop(view)
    assert lines == want_lines > 20
    np.testing.assert_allclose(prof, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_line_profile_of_a_page_without_lines_is_zero(kind):
    rng = np.random.default_rng(0)
    img = np.full((600, 400), 0.95, np.float32) if kind == "blank" else rng.random((600, 400)).astype(np.float32)
    prof, lines = pv.line_profile(img)
    assert lines == 0 and not prof.any()


def test_an_upright_head_with_no_pages_of_lines_to_learn_from_has_no_accuracy():
    """Without a training page of text lines its weights stay 0 (no opinion): its accuracy on validation pages
    that have lines is None, not 0% (every page counted wrong)."""
    from stntool.pages import render_page
    from stntool.train import fit_upright

    ps = PageSet([render_page((11, i)) for i in range(4)], val_split=0.5, seed=4)
    ps.profiles[ps.train] = 0.0  # the training pages read no lines (photos, drawings)
    net = LocNet({"in_channels": 3, "in_size": 16, "conv_channels": [2], "upright_bins": pv.LINE_BINS})
    report = fit_upright(net, ps)
    assert not net.upright_head.params["weight"].any()
    assert report["val_pages_with_lines"] == 2 and report["val_accuracy"] is None
    assert report["train_pages_with_lines"] == 0 and report["train_accuracy"] is None


def test_the_upright_head_learns_which_way_is_up():
    """Fitted on 40 rendered pages, it tells held-out layouts and fonts upright from upside down."""
    from stntool.pages import render_page
    from stntool.train import fit_upright
    from stntool.transforms import rotate

    ps = PageSet([render_page((11, i)) for i in range(40)], val_split=0.25, seed=4)
    assert ps.profiles.shape == (40, pv.LINE_BINS)
    net = LocNet({"in_channels": 3, "in_size": 16, "conv_channels": [2], "upright_bins": pv.LINE_BINS})
    report = fit_upright(net, ps)
    w = net.upright_head.params["weight"].copy()
    assert report["train_accuracy"] >= 0.9 and report["val_pages_with_lines"] == 10
    assert fit_upright(net, ps) == report and np.array_equal(net.upright_head.params["weight"], w)  # deterministic
    right = 0
    for i in range(10):
        page = render_page((12, i), split="heldout")
        tilt = rotate(-(1.0 - 0.2 * i))[:2]  # θ of the page turned by 1.0 - 0.2 i degrees
        up = pv.page_line_profile(page, tilt)[0]
        down = pv.page_line_profile(page, np.diag([-1.0, -1.0, 1.0]) @ np.vstack([tilt, [0, 0, 1]]))[0]
        s_up, s_down = net.upright_logit(np.stack([up, down]))
        right += int(s_up > 0) + int(s_down < 0)
    assert right >= 17


def test_residual_rotation_of_exact_and_known_corrections():
    td = np.stack([rotation_theta(12.0), rotation_theta(-7.0)])
    exact = np.stack([np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2] for t in td])
    assert np.allclose(residual_rotation(td, exact), 0.0, atol=1e-9)
    assert np.allclose(residual_rotation(td, np.stack([rotation_theta(-10.0), rotation_theta(5.0)])), [2.0, 2.0])


@pytest.mark.parametrize("rows", [2, 3])
def test_photometric_gradient_matches_finite_differences(rows):
    rng = np.random.default_rng(0)
    import cv2

    d = np.stack([cv2.GaussianBlur(rng.random((24, 24)), (0, 0), 2) for _ in range(2)])
    u = np.stack([cv2.GaussianBlur(rng.random((24, 24)), (0, 0), 2) for _ in range(2)])
    theta = np.tile(np.eye(3)[:rows], (2, 1, 1)) + 0.05 * rng.standard_normal((2, rows, 3))
    if rows == 3:
        theta[:, 2, :2] *= 0.2
        theta[:, 2, 2] = 1.0
    truth = np.tile(np.eye(3)[:rows], (2, 1, 1))
    _, grad = photometric_loss(d, u, theta, truth)
    num = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        a, b = theta.copy(), theta.copy()
        a[idx] += 1e-7
        b[idx] -= 1e-7
        num[idx] = (photometric_loss(d, u, a, truth)[0] - photometric_loss(d, u, b, truth)[0]) / 2e-7
    assert np.allclose(grad, num, atol=1e-4 * np.abs(num).max(), rtol=1e-3)


def test_end_to_end_gradient_through_net_and_sampler():
    """dL/dparameter of the re-warp loss, net (float64) + sampler + grid chain, against finite differences."""
    rng = np.random.default_rng(3)
    net = LocNet(dict(in_channels=3, in_size=16, conv_channels=[2, 2], fc=4, family="affine"), seed=1,
                 dtype=np.float64)
    net.theta_head.params["weight"][:] = 0.01 * rng.standard_normal(net.theta_head.params["weight"].shape)
    x = rng.standard_normal((2, 3, 16, 16))
    import cv2

    d = np.stack([cv2.GaussianBlur(rng.random((20, 20)), (0, 0), 1.5) for _ in range(2)])
    u = np.stack([cv2.GaussianBlur(rng.random((20, 20)), (0, 0), 1.5) for _ in range(2)])
    truth = np.tile(np.eye(3)[:2], (2, 1, 1))

    def loss():
        theta, _ = net.forward(x, train=False)
        return photometric_loss(d, u, theta, truth)[0]

    theta, logits = net.forward(x, train=True)
    _, g_theta = photometric_loss(d, u, theta, truth)
    net.zero_grad()
    net.backward(g_theta, np.zeros_like(logits))
    for name in ("fc.weight", "conv0.weight", "conv1.bias", "theta.weight", "theta.bias"):
        # a directional derivative along a random direction: the bilinear kinks of single pixels average out
        p, g = net.parameters()[name], net.gradients()[name].copy()
        v = rng.standard_normal(p.shape)
        old = p.copy()
        p[...] = old + 1e-5 * v
        up = loss()
        p[...] = old - 1e-5 * v
        down = loss()
        p[...] = old
        assert (g * v).sum() == pytest.approx((up - down) / 2e-5, rel=1e-2), name


def test_grid_chain_for_projective_theta_matches_finite_differences():
    rng = np.random.default_rng(2)
    theta = np.eye(3)[None] + 0.05 * rng.standard_normal((1, 3, 3))
    g = rng.standard_normal((1, 5, 6, 2))
    hw = (5, 6)
    from stntool.grids import theta_grid

    analytic = _grid_to_theta(g, theta, hw)
    num = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        a, b = theta.copy(), theta.copy()
        a[idx] += 1e-7
        b[idx] -= 1e-7
        num[idx] = ((theta_grid(a, hw) - theta_grid(b, hw)) * g).sum() / 2e-7
    assert np.allclose(analytic, num, atol=1e-6)


def test_a_tiny_run_learns_a_rotation(tmp_path):
    """A few seconds of training reduces the loss and brings the rotation error well below the identity's."""
    from stntool.pages import synthetic_pages

    ps = PageSet(list(synthetic_pages(24, seed=5, size=(240, 180))), val_split=0.25, seed=2)
    cfg = TrainConfig(family="rotation", ranges=dict(rotate=(-20.0, 20.0)), steps=40, batch=12, lr=3e-3,
                      lr_final=1.0, eval_every=40, checkpoint_every=100, quarter_turns=False, seed=2)
    out = train(ps, cfg, tmp_path / "m.npz")
    hist = out["history"]
    first = np.mean([r["loss"] for r in hist[:5]])
    last = np.mean([r["loss"] for r in hist[-5:]])
    assert last < 0.6 * first
    # the identity's median error on U[-20, 20] is about 10 degrees; the orientation branch gets to about 0.15
    assert hist[-1]["val_rotation_median"] < 1.0
    assert (tmp_path / "m.npz").exists() and (tmp_path / "m.png").exists()
    net = LocNet.load(tmp_path / "m.npz")
    assert net.metadata["family"] == "rotation" and net.metadata["input"]["size"] == pv.SIZE
    # the upright head is fitted after the last step and says how it scored
    assert net.arch["upright_bins"] == pv.LINE_BINS and np.any(net.upright_head.params["weight"])
    assert set(net.metadata["upright_head"]) >= {"train_accuracy", "val_accuracy", "tilt_degrees"}


def test_resuming_from_a_checkpoint_continues_exactly(pages, tmp_path):
    import shutil

    ps = PageSet(pages[:6], val_split=0.0, seed=0)
    cfg = TrainConfig(family="affine", steps=4, batch=4, checkpoint_every=2, eval_every=100)

    def keep_step_2(step, info):  # the checkpoint of step 2, before the last step's replaces it
        if step == 3:
            shutil.copy(tmp_path / "a.checkpoint.npz", tmp_path / "a2.npz")

    straight = train(ps, cfg, tmp_path / "a.npz", progress=keep_step_2)["net"]
    resumed = train(ps, cfg, tmp_path / "b.npz", resume=tmp_path / "a2.npz")["net"]
    for name, p in straight.parameters().items():
        assert np.array_equal(p, resumed.parameters()[name]), name
    # the last step's checkpoint, with the optimizer's state: a finished run goes on from where it stopped
    # (the help's `--resume mine.checkpoint.npz --steps 4000` after 2000 steps redid the steps after 1800)
    last = LocNet.load(tmp_path / "a.checkpoint.npz")
    assert last.metadata["training_state"]["step"] == 4 and last.optimizer_state
    differ = [name for name, p in straight.parameters().items() if not np.array_equal(p, last.parameters()[name])]
    assert differ and all(name.startswith("upright") for name in differ), differ  # fitted after the last step
    longer = TrainConfig(family="affine", steps=6, batch=4, checkpoint_every=2, eval_every=100)
    history = train(ps, longer, tmp_path / "c.npz", resume=tmp_path / "a.checkpoint.npz")["history"]
    assert [h["step"] for h in history] == [5, 6]
    with pytest.raises(InvalidArgumentError):
        train(ps, TrainConfig(family="rotation", steps=4, batch=4), tmp_path / "c.npz",
              resume=tmp_path / "a.checkpoint.npz")


@pytest.mark.parametrize("where", ["after the update", "inside the next step"])
def test_ctrl_c_leaves_a_checkpoint_of_the_last_whole_step_that_resumes_exactly(pages, tmp_path, monkeypatch, where):
    """Ctrl-C during training writes a checkpoint of the last step whose update finished (the update itself
    runs with Ctrl-C held back), so --resume goes on exactly as the run would have; without it every step
    since the last periodic checkpoint was lost."""
    import stntool.train as T

    ps = PageSet(pages[:6], val_split=0.0, seed=0)
    cfg = TrainConfig(family="affine", steps=5, batch=4, checkpoint_every=100, eval_every=100)
    def stop_at_3(step, info):
        if step == 3:
            raise KeyboardInterrupt

    progress = stop_at_3 if where == "after the update" else None
    if where != "after the update":
        real, calls = T.make_batch, []

        def make_batch(*args, **kwargs):  # the fourth step's batch is being made
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(T, "make_batch", make_batch)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(ps, cfg, tmp_path / "a.npz", progress=progress)
    monkeypatch.undo()
    ckpt = tmp_path / "a.checkpoint.npz"
    assert stopped.value.stntool_checkpoint == (str(ckpt), 3) and not (tmp_path / "a.npz").exists()
    assert LocNet.load(ckpt).metadata["training_state"]["step"] == 3
    straight = train(ps, cfg, tmp_path / "b.npz")["net"]
    resumed = train(ps, cfg, tmp_path / "c.npz", resume=ckpt)["net"]
    for name, p in straight.parameters().items():
        assert np.array_equal(p, resumed.parameters()[name]), name


def test_a_write_that_fails_at_the_end_names_its_file(pages, tmp_path, monkeypatch):
    import stntool.train as T
    from stntool.errors import ImageWriteError

    def full_disk(history, path):
        raise ImageWriteError("cannot write: No space left on device")

    monkeypatch.setattr(T, "write_curve", full_disk)
    ps = PageSet(pages[:4], val_split=0.0, seed=0)
    with pytest.raises(ImageWriteError, match=r"m\.png: cannot write: No space left"):
        train(ps, TrainConfig(family="rotation", steps=1, batch=2, upright_bins=0), tmp_path / "m.npz")


def test_batches_are_deterministic_and_labelled(pages):
    ps = PageSet(pages, val_split=0.0)
    aug = TrainConfig().augmenter()
    a = make_batch(ps, [0, 1, 2, 3], aug, np.random.default_rng(9))
    b = make_batch(ps, [0, 1, 2, 3], aug, np.random.default_rng(9))
    assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["k"], b["k"])
    assert a["turned"] == 2 and set(a["k"][:2]) <= {1, 2, 3} and list(a["k"][2:]) == [0, 0]
    # the true correction undoes the distortion
    assert np.allclose(residual_rotation(a["theta_dist"], a["theta_true"]), 0.0, atol=1e-9)


def test_config_and_page_set_errors():
    with pytest.raises(InvalidArgumentError):
        TrainConfig(family="elastic")
    with pytest.raises(InvalidArgumentError):
        TrainConfig(steps=0)
    with pytest.raises(InvalidArgumentError):
        PageSet([])
