"""Training a localisation net through the sampler: the Spatial Transformer's learned half.

Each step takes upright pages, distorts each with a random known transform drawn by
:class:`stntool.augment.Augmenter` (the same ranges and code as ``stntool augment``), and asks the
net (:mod:`stntool.locnet`) for the θ that undoes it. Two losses train the θ head:

* **through the sampler**: the distorted page is warped back with the predicted θ by stntool's
  differentiable sampler and compared with the upright page (mean squared difference at 128 px,
  masked where the true correction reads padding); its gradient reaches θ through
  :func:`stntool.grid_sample_backward` (the STN paper's eqs. 6-7) and the grid's chain rule;
* **on θ itself**: the squared difference from the true correction (``invert(θ_distortion)``),
  the linear part (rescaled to the prediction's scale, which a page does not show) weighted 1, the
  translation ``translation_weight``.

A quarter-turn head learns, on pages also turned by 0/90/180/270 degrees, how many quarter turns
would make them upright (half of each batch is turned; the θ head learns on the other half, which is
upright up to the distortion). After the last step, the upright head (a second look, at the page made
straight) is fitted by logistic regression on the training pages' text-line profiles
(:func:`fit_upright`). Everything happens in the page's square frame
(:mod:`stntool.pageview`), where rotations are rotations.

Training is deterministic for a seed on one machine: step ``t`` draws its batch from
``SeedSequence([seed, t])``, so a resumed run continues exactly where a checkpoint left it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InvalidArgumentError
from .pageview import LINE_BINS
from .transforms import rotate, to_3x3

__all__ = ["FAMILY_RANGES", "TrainConfig", "PageSet", "make_batch", "residual_rotation", "train", "evaluate",
           "fit_upright"]

#: Default distortion ranges per transform family (``stntool augment``'s names and units).
FAMILY_RANGES = {
    "rotation": dict(rotate=(-30.0, 30.0)),
    "similarity": dict(rotate=(-30.0, 30.0), scale=(0.85, 1.15), translate=(-0.05, 0.05)),
    "affine": dict(rotate=(-30.0, 30.0), scale=(0.85, 1.15), shear=(-8.5, 8.5), translate=(-0.05, 0.05)),
    "projective": dict(rotate=(-30.0, 30.0), scale=(0.85, 1.15), shear=(-8.5, 8.5), translate=(-0.05, 0.05),
                       perspective=0.04),
}
_LOSS_SIDE = 128
_CROP_SPREAD = 80  # channel 2's window moves up to this many pixels from the centre, each axis
_UPRIGHT_TILT = 1.0  # degrees (standard deviation) the upright head's pages are tilted by: what θ leaves
_UPRIGHT_L2 = 1e-6  # profile differences are hundredths: a larger penalty keeps the log-odds small


@dataclass
class TrainConfig:
    """What a training run does; saved in the model's metadata."""

    family: str = "affine"
    ranges: dict = field(default_factory=dict)
    steps: int = 2000
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    val_split: float = 0.1
    quarter_turns: bool = True
    photometric_weight: float = 0.3
    theta_weight: float = 1.0
    translation_weight: float = 0.05
    quarter_weight: float = 2.0
    checkpoint_every: int = 200
    eval_every: int = 100
    lr_final: float = 0.05  # the learning rate decays along a cosine to lr * lr_final at the last step
    orientation_bins: int = 180  # the net's orientation branch (0: the θ head predicts the whole θ)
    upright_bins: int = LINE_BINS  # the net's upright head (0: none; the quarter head alone says which way is up)

    def __post_init__(self):
        if self.family not in FAMILY_RANGES:
            raise InvalidArgumentError(f"unknown family {self.family!r}; choose one of {', '.join(FAMILY_RANGES)}")
        for name in ("steps", "batch", "checkpoint_every", "eval_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {v!r}")
        if not 0 < self.lr < 1:
            raise InvalidArgumentError(f"lr must be in (0, 1), got {self.lr!r}")
        if not 0 <= self.val_split < 1:
            raise InvalidArgumentError(f"val_split must be in [0, 1), got {self.val_split!r}")
        if self.ranges.get("perspective") and self.family != "projective":
            raise InvalidArgumentError(f"perspective distortions need the projective family (the {self.family} "
                                       "family cannot undo them)")

    def augmenter(self):
        from .augment import Augmenter

        return Augmenter(**{**FAMILY_RANGES[self.family], **self.ranges}, padding="border")


class PageSet:
    """Upright pages held as working images (:func:`stntool.pageview.working_image`), split train/validation.

    ``profiles`` holds each page's text-line profile for the upright head
    (:func:`stntool.pageview.page_line_profile`), taken once here, at the higher resolution it needs,
    with the page tilted by a random rotation (normal, ``tilt`` degrees: about what the net's θ leaves).
    """

    def __init__(self, images, names=None, val_split: float = 0.1, seed: int = 0, tilt: float = _UPRIGHT_TILT):
        from .pageview import page_line_profile, working_image

        if len(images) == 0:
            raise InvalidArgumentError("no usable images to train on")
        # uint8 keeps a 1024 x 1024 working image at 1 MB
        self.work = [np.clip(np.rint(working_image(im) * 255.0), 0, 255).astype(np.uint8) for im in images]
        self.names = list(names) if names is not None else [f"page {i}" for i in range(len(images))]
        order = np.random.default_rng(seed).permutation(len(self.work))
        # at least one page to train on: the held-out ones must not be the ones trained on
        n_val = min(int(round(val_split * len(self.work))), len(self.work) - 1)
        self.val = sorted(order[:n_val].tolist())
        self.train = sorted(order[n_val:].tolist())
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2**31 + 1])))
        self.tilt = tilt
        # θ of a view turned about the centre by the tilt (a rotation about the square frame's origin)
        self.profiles = np.stack([page_line_profile(im, rotate(-rng.normal(0.0, tilt))[:2])[0] for im in images])


def _warp(img, theta, backend="cpu"):
    from . import api

    return api.warp(img, theta, padding="border", backend=backend)


def make_batch(pages: PageSet, indices, aug, rng, quarter_turns: bool = True):
    """One batch: ``dict(x, k, theta_true, distorted, upright, theta_dist)``.

    The first half (rounded down) of a quarter-turn batch is turned by 1-3 quarter turns (for the
    quarter head only), the rest is upright up to its distortion (for both heads).
    """
    import cv2

    from .pageview import WORK, crop_origin, net_input

    n = len(indices)
    turned = n // 2 if quarter_turns else 0
    xs, ks, thetas, dists, ups, tds = [], [], [], [], [], []
    for j, i in enumerate(indices):
        work = pages.work[i]
        spec = aug.sample(rng, (WORK, WORK))
        td = np.array(spec.theta)
        d = _warp(work, td).astype(np.float32) / 255.0
        k = int(rng.integers(1, 4)) if j < turned else 0
        view = np.ascontiguousarray(np.rot90(d, k)) if k else d
        xs.append(net_input(view, crop=crop_origin(offset=rng.integers(-_CROP_SPREAD, _CROP_SPREAD + 1, 2))))
        ks.append(k)
        tds.append(td)
        thetas.append(np.linalg.inv(to_3x3(td))[: td.shape[0]])
        dists.append(cv2.resize(d, (_LOSS_SIDE, _LOSS_SIDE), interpolation=cv2.INTER_AREA))
        ups.append(cv2.resize(work, (_LOSS_SIDE, _LOSS_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
    return dict(x=np.stack(xs), k=np.array(ks), theta_true=np.stack(thetas), distorted=np.stack(dists),
                upright=np.stack(ups), theta_dist=np.stack(tds), turned=turned)


def residual_rotation(theta_dist, theta_pred) -> np.ndarray:
    """Degrees of rotation left after correcting distortions ``theta_dist`` with ``theta_pred`` (square frame).

    The rectified page reads the upright one through ``theta_dist · theta_pred``; its rotation is that
    of the polar decomposition of the linear part (the nearest rotation).
    """
    out = []
    for td, tp in zip(theta_dist, theta_pred):
        r = to_3x3(td) @ to_3x3(tp)
        m = r[:2, :2] / r[2, 2] if abs(r[2, 2]) > 1e-12 else r[:2, :2]
        u, _, vt = np.linalg.svd(m)
        rot = u @ vt
        if np.linalg.det(rot) < 0:
            out.append(180.0)
            continue
        out.append(abs(math.degrees(math.atan2(rot[1, 0], rot[0, 0]))))
    return np.array(out)


def photometric_loss(distorted, upright, theta_pred, theta_true):
    """Masked mean squared difference of the re-warped pages and its gradient with respect to ``theta_pred``."""
    from . import api
    from .grids import theta_grid

    n, side = distorted.shape[0], distorted.shape[1]
    hw = (side, side)
    grid = theta_grid(theta_pred, hw)
    rewarped = api.grid_sample(distorted[..., None], grid, padding="border", backend="cpu")[..., 0]
    valid = api.grid_sample(np.ones((n, side, side, 1), np.float32), theta_grid(theta_true, hw), padding="zeros",
                            backend="cpu")[..., 0]
    mask = (valid > 0.999).astype(np.float64)
    count = max(1.0, float(mask.sum()))
    diff = (rewarped.astype(np.float64) - upright) * mask
    loss = float((diff ** 2).sum() / count)
    _, grad_grid = api.grid_sample_backward(distorted[..., None], grid, (2.0 * diff / count)[..., None],
                                            padding="border", backend="cpu", input_grad=False)
    return loss, _grid_to_theta(grad_grid, theta_pred, hw)


def _grid_to_theta(grad_grid, theta, hw):
    """Chain ``dL/dgrid`` to ``dL/dθ`` for affine (N, 2, 3) or projective (N, 3, 3) θ."""
    from .grids import out_norm_points

    base = out_norm_points(hw)  # (H, W, 2)
    p = np.concatenate([base, np.ones(base.shape[:-1] + (1,))], axis=-1)  # (H, W, 3)
    if theta.shape[-2] == 2:
        return np.einsum("nhwi,hwk->nik", grad_grid, p)
    num = np.einsum("nij,hwj->nhwi", theta, p)  # (N, H, W, 3)
    w = num[..., 2:3]
    uv = num[..., :2] / w
    g = grad_grid / w  # dL/d(num_i) for i = 0, 1
    g_w = -(grad_grid * uv).sum(-1, keepdims=True) / w
    full = np.concatenate([g, g_w], axis=-1)
    return np.einsum("nhwi,hwk->nik", full, p)


def _scaled_target(theta_pred, theta_true):
    """The true correction rescaled to the predicted θ's scale (``sqrt |det|`` of the linear parts).

    A page's absolute scale cannot be seen in it, so the θ loss leaves the scale to the prediction
    (the rescaling factor is held constant in the gradient) and penalises rotation, shear and aspect.
    """
    def scale(t):
        return np.sqrt(np.abs(np.linalg.det(t[:, :2, :2].astype(np.float64))))[:, None, None]

    out = np.array(theta_true, dtype=np.float64, copy=True)
    out[:, :2, :2] *= scale(theta_pred) / scale(theta_true)
    return out


def softmax_cross_entropy(logits, target):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    n = len(target)
    loss = float(-np.log(prob[np.arange(n), target] + 1e-12).mean())
    grad = prob.copy()
    grad[np.arange(n), target] -= 1.0
    return loss, grad / n


def evaluate(net, batches, quarter_turns: bool = True) -> dict:
    """Median / p90 residual rotation (degrees) and quarter-turn accuracy on fixed validation batches (None
    without ``quarter_turns``: no page was turned, so any head that answers "none" would score 100%)."""
    rot, right, turned = [], [], []
    for b in batches:
        theta, logits = net.forward(b["x"], train=False)
        t = b["turned"]
        rot.extend(residual_rotation(b["theta_dist"][t:], theta[t:]).tolist())
        right.extend((logits.argmax(1) == b["k"]).tolist())
        turned.extend((logits.argmax(1) == b["k"])[:t].tolist())
    if not rot:
        return {}
    rot = np.array(rot)
    return {"val_rotation_median": float(np.median(rot)), "val_rotation_p90": float(np.percentile(rot, 90)),
            "val_quarter_accuracy": float(np.mean(right)) if right and quarter_turns else None,
            "val_quarter_accuracy_turned": float(np.mean(turned)) if turned and quarter_turns else None}


def train(pages: PageSet, config: TrainConfig, out_path, *, net=None, resume=None, progress=None,
          command: str = "", data_description: str = "") -> dict:
    """Train (or resume) a net on ``pages``; writes ``out_path`` (the model), checkpoints and a curve PNG.

    ``progress(step, info)`` is called after every step. Returns the history (one dict per step).
    """
    from . import locnet
    from ._version import __version__

    aug = config.augmenter()
    start, history = 0, []
    if resume is not None:
        net = locnet.LocNet.load(resume)
        start = check_resume(net, config, resume)
        history = list((net.metadata.get("training_state") or {}).get("history", []))
    if net is None:
        net = locnet.LocNet(_architecture(config), seed=config.seed)
    opt = locnet.Adam(net.parameters(), lr=config.lr, clip_norm=5.0)
    if resume is not None and net.optimizer_state is not None:
        opt.load_state_dict(net.optimizer_state)
    val_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, 2**31])))
    val_batches = [make_batch(pages, pages.val[i:i + config.batch], aug, val_rng, config.quarter_turns)
                   for i in range(0, len(pages.val), config.batch)]
    train_ids = pages.train or pages.val

    def metadata(step):
        return {"format": 1, "architecture": net.arch, "input": _input_description(),
                "family": config.family, "ranges": config.augmenter().options(), "config": asdict(config),
                "command": command, "data": data_description, "stntool_version": __version__,
                "training_state": {"step": step, "history": [r for r in history if r["step"] % 10 == 0
                                                             or "val_rotation_median" in r]}}

    from ._interrupts import sigint_deferred

    t0 = time.perf_counter()
    done = saved = start  # steps whose update is complete; the step of the last checkpoint
    try:
        for step in range(start, config.steps):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, step])))
            ids = rng.choice(train_ids, size=config.batch, replace=len(train_ids) < config.batch)
            b = make_batch(pages, ids, aug, rng, config.quarter_turns)
            opt.lr = config.lr * (config.lr_final + (1.0 - config.lr_final) * 0.5 * (1.0 + math.cos(
                math.pi * step / max(1, config.steps - 1))))
            theta, logits = net.forward(b["x"], train=True)
            t = b["turned"]
            g_theta = np.zeros_like(theta, dtype=np.float64)
            info = {"step": step + 1}
            loss = 0.0
            if t < len(ids):
                diff = theta[t:] - _scaled_target(theta[t:], b["theta_true"][t:])
                wts = np.ones(diff.shape[1:])
                wts[:2, 2] = config.translation_weight
                if diff.shape[1] == 3:
                    wts[2, 2] = 0.0
                m = len(ids) - t
                theta_loss = float((wts * diff ** 2).sum() / m)
                g_theta[t:] += config.theta_weight * 2.0 * wts * diff / m
                photo, g_photo = photometric_loss(b["distorted"][t:], b["upright"][t:], theta[t:].astype(np.float64),
                                                  b["theta_true"][t:])
                g_theta[t:] += config.photometric_weight * g_photo
                if diff.shape[1] == 3:
                    g_theta[:, 2, 2] = 0.0
                loss += config.theta_weight * theta_loss + config.photometric_weight * photo
                info.update(theta_loss=theta_loss, photometric_loss=photo)
            g_logits = np.zeros_like(logits, dtype=np.float64)
            if config.quarter_turns:
                q_loss, g_logits = softmax_cross_entropy(logits.astype(np.float64), b["k"])
                g_logits *= config.quarter_weight
                loss += config.quarter_weight * q_loss
                info["quarter_loss"] = q_loss
            info["loss"] = loss
            # the update, its count and its record as one: a checkpoint written on Ctrl-C holds whole steps
            with sigint_deferred():
                net.zero_grad()
                net.backward(g_theta.astype(np.float32), g_logits.astype(np.float32))
                try:
                    opt.step(net.gradients())
                except InvalidArgumentError as e:  # nothing was updated; what is kept is the last checkpoint's
                    from .io import display

                    kept = (f"; the last checkpoint, step {saved}, is in {display(checkpoint_path(out_path))}"
                            if saved > start else f"; nothing was written (it went on from step {start} of "
                            f"{display(resume)})" if start > 0 else "; nothing was written")
                    raise InvalidArgumentError(f"step {step + 1}: {e}: training diverged (a range too wide for the "
                                               f"pages, or --lr too high?){kept}") from None
                history.append(info)
                done = step + 1
            if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
                if val_batches:
                    info.update(evaluate(net, val_batches, config.quarter_turns))
            info["seconds"] = time.perf_counter() - t0
            if progress is not None:
                progress(step + 1, info)
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:  # the last step too: to resume
                ckpt = checkpoint_path(out_path)                                          # a finished run, with Adam
                _named(ckpt, net.save, ckpt, metadata(step + 1), optimizer=opt)
                saved = step + 1
    except KeyboardInterrupt as e:  # a checkpoint of the last whole step, so that --resume goes on from there
        ckpt = checkpoint_path(out_path)
        if done > saved:
            with sigint_deferred():
                _named(ckpt, net.save, ckpt, metadata(done), optimizer=opt)
            saved = done
        e.stntool_checkpoint = (ckpt, saved) if saved > start else None
        raise
    final = metadata(config.steps)
    if net.upright_head is not None:
        final["upright_head"] = fit_upright(net, pages)
    _named(out_path, net.save, out_path, final, optimizer=None)
    curve = curve_path(out_path)
    try:
        _named(curve, write_curve, history, curve)
    except KeyboardInterrupt as e:  # the model is whole: only its curve is missing
        e.stntool_model_written = True
        raise
    return {"history": history, "net": net, "start": start}


def _named(path, write, *args, **kwargs):
    """``write(*args, **kwargs)``, which writes ``path``, with that path at the head of its errors."""
    from .errors import StnError
    from .io import display

    try:
        write(*args, **kwargs)
    except StnError as e:
        raise type(e)(f"{display(path)}: {e}") from None


def check_resume(net, config: TrainConfig, source) -> int:
    """The step a run of ``config`` resumes ``net`` (loaded from ``source``) at; :class:`InvalidArgumentError` when
    it cannot: another family or input, an architecture the run's options would change (the checkpoint's is
    kept), or a checkpoint past ``config.steps``. A checkpoint at ``config.steps`` (a run stopped after its last
    step, before its model was written) resumes to finish: the upright head is fitted and the model written."""
    if net.input_shape == (3, _input_side(), _input_side()) and net.family != config.family:
        raise InvalidArgumentError(f"{source} is a model of the {net.family} family; this run trains {config.family} "
                                   f"(give --family {net.family} to resume it)")
    if net.input_shape != (3, _input_side(), _input_side()) or net.family != config.family:
        raise InvalidArgumentError(f"{source} is a model of the {net.family} family for {net.input_shape} inputs; "
                                   f"this run trains {config.family} on (3, {_input_side()}, {_input_side()})")
    arch = _architecture(config)
    for key, what in (("orientation_bins", "the orientation branch"), ("upright_bins", "the upright head")):
        if bool(net.arch.get(key)) != bool(arch.get(key)):
            has = "has" if net.arch.get(key) else "lacks"
            raise InvalidArgumentError(f"{source} {has} {what}, which this run's options would change (a resumed "
                                       "run keeps its checkpoint's architecture)")
    trained = net.quarter_turns_trained
    if trained != bool(config.quarter_turns):
        raise InvalidArgumentError(f"{source} was trained {'with' if trained else 'without'} quarter turns; this "
                                   f"run would train {'with' if config.quarter_turns else 'without'} them")
    state = net.metadata.get("training_state") or {}
    step = state.get("step", 0) if isinstance(state, dict) else None
    history = state.get("history", []) if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or not isinstance(history, list) \
            or not all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in history):
        raise InvalidArgumentError(f"{source}: its training state is not one stntool writes (a step count and a "
                                   "history of steps)")
    if step > config.steps:
        raise InvalidArgumentError(f"{source} is at step {step}, past --steps {config.steps}")
    if net.optimizer_state is not None:  # read now, not after every image has been loaded
        from . import locnet

        try:
            locnet.Adam(net.parameters(), lr=config.lr).load_state_dict(net.optimizer_state)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{source}: {e}") from None
    return step


def fit_upright(net, pages: PageSet) -> dict:
    """Fit ``net``'s upright head to the pages' text-line profiles; returns what it scored (kept in the
    model's metadata).

    The upright examples are the pages' profiles (:attr:`PageSet.profiles`); the upside-down ones are
    the same profiles reversed, which the head reads as the opposite (:class:`stntool.locnet.UprightHead`),
    so the log-loss is ``mean(log(1 + exp(-w · odd)))`` over the upright ones. It is minimised with an L2
    penalty by Newton's method (a convex problem of ``upright_bins / 2`` weights): deterministic.
    """
    head = net.upright_head
    if pages.profiles.shape[1] != head.bins:
        raise InvalidArgumentError(f"the pages' line profiles have {pages.profiles.shape[1]} bins; the net's upright "
                                   f"head reads {head.bins}")
    x_train = head.odd(pages.profiles[pages.train or pages.val]).astype(np.float64)
    x_val = head.odd(pages.profiles[pages.val]).astype(np.float64)
    w = np.zeros(x_train.shape[1])
    eye = np.eye(len(w))
    for _ in range(100):
        z = x_train @ w
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid, without overflow
        grad = -x_train.T @ (1.0 - p) / len(z) + _UPRIGHT_L2 * w
        hess = (x_train * (p * (1.0 - p))[:, None]).T @ x_train / len(z) + _UPRIGHT_L2 * eye
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9 * (1.0 + np.abs(w).max()):
            break
    head.params["weight"][:] = w

    def accuracy(x):  # None where it was not fitted (no training page with lines: weights 0, no opinion)
        seen = np.abs(x).sum(axis=1) > 0  # pages where text lines were found
        return (float(np.mean(x[seen] @ w > 0)) if seen.any() and w.any() else None), int(seen.sum())

    (train_acc, n_train), (val_acc, n_val) = accuracy(x_train), accuracy(x_val)
    return {"train_accuracy": train_acc, "train_pages_with_lines": n_train, "val_accuracy": val_acc,
            "val_pages_with_lines": n_val, "tilt_degrees": pages.tilt, "l2": _UPRIGHT_L2}


def _architecture(config: TrainConfig) -> dict:
    """The net a run trains: three input channels (:func:`stntool.pageview.net_input`), the orientation
    branch reading the spectrum channel about its zero frequency, and the upright head."""
    from .pageview import spectrum_centre

    arch = dict(in_channels=3, in_size=_input_side(), family=config.family)
    if config.orientation_bins:
        arch.update(orientation_bins=config.orientation_bins, orientation_channel=1,
                    orientation_centre=spectrum_centre(_input_side()), orientation_follow=True)
    if config.upright_bins:
        arch.update(upright_bins=config.upright_bins)
    return arch


def _input_side():
    from .pageview import SIZE

    return SIZE


def _input_description():
    from .pageview import SIZE, WORK

    return {"channels": ["page", "log spectrum", "crop"], "size": SIZE, "work": WORK,
            "frame": "square (stntool.pageview)", "grey": True, "crop_spread": _CROP_SPREAD,
            "upright_head": "stntool.pageview.page_line_profile of the page warped straight"}


def checkpoint_path(out_path) -> str:
    """Where a run writing the model ``out_path`` writes its checkpoints: ``NAME.checkpoint.npz``."""
    base, ext = os.path.splitext(os.fspath(out_path))
    return base + ".checkpoint" + (ext or ".npz")


def curve_path(out_path) -> str:
    """Where a run writing the model ``out_path`` writes its training curve: ``NAME.png``."""
    return os.path.splitext(os.fspath(out_path))[0] + ".png"


def write_curve(history, path):
    """A training-curve PNG (loss, and validation rotation error where measured), drawn with OpenCV."""
    import cv2

    from .io import encode_image, write_atomic

    w, h, pad = 720, 360, 50
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.rectangle(img, (pad, 20), (w - 20, h - pad), (0, 0, 0), 1)
    steps = [r["step"] for r in history]
    if len(steps) >= 2:
        span = max(steps) - min(steps) or 1

        def xpix(s):
            return int(pad + (s - min(steps)) / span * (w - 20 - pad))

        def plot(values, colour, log=True):
            pts = [(s, v) for s, v in values if v is not None and np.isfinite(v) and (v > 0 or not log)]
            if len(pts) < 2:
                return
            vs = np.array([math.log10(v) if log else v for _, v in pts])
            lo, hi = float(vs.min()), float(vs.max())
            hi = hi if hi > lo else lo + 1
            poly = np.array([[xpix(s), int(h - pad - (v - lo) / (hi - lo) * (h - pad - 20))]
                             for (s, _), v in zip(pts, vs)], np.int32)
            cv2.polylines(img, [poly], False, colour, 1, cv2.LINE_AA)

        plot([(r["step"], r.get("loss")) for r in history], (200, 80, 0))
        plot([(r["step"], r.get("val_rotation_median")) for r in history if "val_rotation_median" in r],
             (0, 0, 220))
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "training loss (log)", (pad, 15), font, 0.45, (200, 80, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "validation median rotation error (log)", (pad + 200, 15), font, 0.45, (0, 0, 220), 1,
                cv2.LINE_AA)
    if steps:
        cv2.putText(img, f"step {min(steps)}", (pad, h - pad + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"step {max(steps)}", (w - 110, h - pad + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        last = [r for r in history if "val_rotation_median" in r]
        if last:
            cv2.putText(img, f"final val median rotation error {last[-1]['val_rotation_median']:.2f} deg",
                        (pad, h - 12), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    write_atomic(path, encode_image(img, ".png"), overwrite=True)


def history_json(history) -> str:
    return json.dumps(history)
