"""``stntool train``: train a localisation net through the sampler on upright pages (see :mod:`stntool.train`)."""

from __future__ import annotations

import click

from ..cli_options import a_name, geometry_options, usage_errors

EXAMPLES = """
\b
Examples:
  stntool train --synthetic-pages 600 --out text.npz --steps 3000 --seed 1
  stntool train scans/ -r --out mine.npz --family similarity --rotate -15:15 --steps 2000
  stntool train scans/ -r --out mine.npz --family similarity --resume mine.checkpoint.npz --steps 4000 --overwrite
  stntool rectify photos/ -o straight/ --model mine.npz

\b
IMAGES are upright examples (files or folders; -r to recurse). Each step distorts them with random
transforms of --family within the ranges (the flags and units of `stntool augment`; defaults per
family: `rotation` ±30°, `similarity` adds scale 0.85-1.15 and translation 5%, `affine` adds x shear
±8.5°, `projective` adds corner jitter 4%), and trains the net to undo them through the sampler. The
model goes to --out, with a training curve (--out's name with .png) and, every --checkpoint-every
steps, after the last and on Ctrl-C (the last whole step), a checkpoint (NAME.checkpoint.npz, the
optimizer's state too) to --resume from.
"""

_MIN_SIDE = 64


@click.command(epilog=EXAMPLES, short_help="Train a localisation net (θ from an image) through the sampler.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, type=click.Path(path_type=str))
@click.option("--out", "out_path", required=True, metavar="MODEL.npz", callback=a_name,
              help="Where to write the trained model.")
@click.option("--family", type=click.Choice(["rotation", "similarity", "affine", "projective"]), default="affine",
              show_default=True, help="Transforms the net learns to undo.")
@geometry_options
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True, help="Training steps.")
@click.option("--batch", type=click.IntRange(2, 1024), default=32, show_default=True, help="Images per step.")
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=2e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed (data and initial weights).")
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of the images held out for validation.")
@click.option("--resume", metavar="CHECKPOINT.npz", type=click.Path(dir_okay=False), callback=a_name,
              help="Continue a run from its checkpoint (or a model).")
@click.option("--synthetic-pages", type=click.IntRange(0), default=0, show_default=True,
              help="Also train on this many rendered text pages (needs Pillow: pip install 'stntool[train]'; "
                   "about 2 MB of memory each, held while training).")
@click.option("--no-quarter-turns", is_flag=True, help="Do not train the quarter-turn head (0/90/180/270).")
@click.option("--no-orientation-branch", is_flag=True,
              help="Predict θ's linear part with the fully connected head instead of the orientation branch, which "
                   "reads it from the page's spectrum (text lines, strokes).")
@click.option("--no-upright-head", is_flag=True,
              help="Do not fit the upright head, which looks again at the straightened page and tells upright from "
                   "upside down by its text lines (more ink above the x-height than below).")
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True,
              help="Steps between checkpoints (NAME.checkpoint.npz beside --out; one after the last step and one "
                   "on Ctrl-C too), to --resume from.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model, training curve or checkpoint.")
@click.option("-r", "--recursive", is_flag=True, help="Scan folders recursively.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
def train(images, out_path, family, rotate, scale, aspect, shear, shear_y, translate, perspective, steps, batch, lr,
          seed, val_split, resume, synthetic_pages, no_quarter_turns, no_orientation_branch, no_upright_head,
          checkpoint_every, overwrite, recursive, quiet):
    """Train a localisation net that predicts the θ straightening an image, through the differentiable sampler.

    Exit status: 0 trained, 1 some images could not be read (the others were used) or the model could
    not be written, 2 usage error (including no usable images).
    """
    import os
    import shlex
    import sys
    import time

    # the net's matrices are small: one BLAS thread is faster and steadier than two that wait on each other
    # (and on the sampler's threads); this only takes effect when NumPy is not loaded yet, as from the shell
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ..batch import say

    if not images and not synthetic_pages:
        raise click.UsageError("give IMAGES (upright examples) or --synthetic-pages N")
    _check_memory(synthetic_pages)  # before a folder is read
    if os.path.isdir(out_path):
        raise click.BadParameter(f"{out_path} is a folder (the model is a file: --out FOLDER/NAME.npz)",
                                 param_hint="--out")
    if not out_path.lower().endswith(".npz"):
        raise click.BadParameter(f"{out_path} must be a file name ending in .npz", param_hint="--out")
    if "-" in images:
        raise click.UsageError("train reads image files and folders, not image bytes on stdin (-)")
    ranges = {k: v for k, v in dict(rotate=rotate, scale=scale, aspect=aspect, shear=shear, shear_y=shear_y,
                                    translate=translate, perspective=perspective).items() if v is not None}
    from ..train import PageSet, TrainConfig
    from ..train import train as run_training

    with usage_errors():
        config = TrainConfig(family=family, ranges=ranges, steps=steps, batch=batch, lr=lr, seed=seed,
                             val_split=val_split, quarter_turns=not no_quarter_turns,
                             checkpoint_every=checkpoint_every,
                             orientation_bins=0 if no_orientation_branch else TrainConfig.orientation_bins,
                             upright_bins=0 if no_upright_head else TrainConfig.upright_bins)
        config.augmenter()
    if resume is not None:  # before reading any image: a bad file is a usage error at once
        from ..locnet import LocNet
        from ..train import check_resume

        with usage_errors("--resume"):
            check_resume(LocNet.load(resume), config, resume)
    from ..train import checkpoint_path, curve_path

    curve = curve_path(out_path)  # the training curve, written beside the model
    failed = 0
    pictures, names = [], []
    items = _find_images(images, recursive, quiet, curve) if images else []  # a curve among them is refused
    # before any image is read (a large folder takes a while, and its bad files each get a line)
    _check_writable({"--out": out_path, "--out's training curve": curve,
                     "--out's checkpoint": checkpoint_path(out_path)}, overwrite, keep=resume)
    if items:
        pictures, names, failed = _read_images(items)
    described = []
    if pictures:
        described.append(f"{len(pictures)} images from {', '.join(images)}")
    if synthetic_pages:
        from ..pages import synthetic_pages as render

        rendering = None
        if not quiet and sys.stderr.isatty():  # about 0.06 s a page
            from tqdm import tqdm

            rendering = tqdm(total=synthetic_pages, desc="rendering pages", unit="page", file=sys.stderr,
                             dynamic_ncols=True, leave=False)
        try:
            with usage_errors("--synthetic-pages"):
                for i, page in enumerate(render(synthetic_pages, seed=seed)):
                    pictures.append(page)
                    names.append(f"synthetic page {i}")
                    if rendering is not None:
                        rendering.update(1)
        finally:
            if rendering is not None:
                rendering.close()
        described.append(f"{synthetic_pages} synthetic pages (seed {seed})")
    if not pictures:
        raise click.UsageError(f"no usable images to train on (images must be at least {_MIN_SIDE}x{_MIN_SIDE})")
    pages = PageSet(pictures, names, val_split=val_split, seed=seed)
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="stntool train", unit="step", file=sys.stderr, dynamic_ncols=True,
                   initial=0)

    def progress(step, info):
        if bar is not None:
            bar.n = step
            post = {"loss": f"{info['loss']:.4f}"}
            if "val_rotation_median" in info:
                post["val_rot"] = f"{info['val_rotation_median']:.2f}°"
                if info.get("val_quarter_accuracy") is not None:
                    post["val_quarter"] = f"{info['val_quarter_accuracy']:.0%}"
            bar.set_postfix(post, refresh=False)
            bar.refresh()

    command = "stntool train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    from ..errors import StnError
    from ..io import display

    started = time.time()
    try:
        result = run_training(pages, config, out_path, resume=resume, progress=progress, command=command,
                              data_description="; ".join(described))
    except StnError as e:  # a model or curve that cannot be written (full disk), a run that diverged
        if bar is not None:
            bar.close()
        say(f"stntool: error: {e}")
        sys.exit(1)
    except KeyboardInterrupt as e:  # the last whole step is in the checkpoint (stntool.train.train)
        if bar is not None:
            bar.close()
        kept = getattr(e, "stntool_checkpoint", None)
        final = checkpoint_path(out_path)
        if getattr(e, "stntool_model_written", False):
            say(f"stntool train: interrupted while writing the training curve; the model is in {display(out_path)} "
                "(its curve was not written)")
        elif kept is not None:
            say(f"stntool train: interrupted; step {kept[1]} is in {kept[0]} (go on with --resume {kept[0]})")
        elif os.path.exists(final) and os.path.getmtime(final) >= started:  # after the last step: model not written
            say(f"stntool train: interrupted after the last step; the steps are in {final}, the model was not "
                f"written (finish it with --resume {final})")
        else:
            say("stntool train: interrupted before a step finished; nothing written")
        sys.exit(130)
    if bar is not None:
        bar.close()
    if not quiet:
        ran = [r for r in result["history"] if r["step"] > result["start"]]  # not a resumed run's earlier steps
        last = [r for r in ran if "val_rotation_median" in r]
        tail = ""
        if last:
            tail = f", validation median rotation error {last[-1]['val_rotation_median']:.2f}°"
            if last[-1].get("val_quarter_accuracy") is not None:
                tail += f", quarter turns {last[-1]['val_quarter_accuracy']:.0%} right"
        secs = ran[-1]["seconds"] if ran else 0.0
        say(f"stntool train: {steps} steps on {len(pages.train)} images ({len(pages.val)} held out) in {secs:.0f} s"
            f"{tail}; wrote {out_path} and its training curve {curve}")
    if failed:
        sys.exit(1)


def _check_writable(paths, overwrite, keep=None):
    """A usage error for the first of ``paths`` (``{what: path}``) that exists without ``overwrite`` (but for
    ``keep``, the checkpoint a run resumes from) or that cannot be a file: training takes minutes to hours,
    and writing its results must not fail at the end, nor replace a file of the user's unasked."""
    import os

    from ..io import display, folder_problem

    for what, path in paths.items():
        problem = folder_problem(path)  # a file in the way of its folder, or a folder no file can be made in
        if problem is not None:
            raise click.BadParameter(f"cannot write {display(path)}: {problem}", param_hint=what)
        if os.path.isdir(path):
            raise click.BadParameter(f"{display(path)} is a folder", param_hint=what)
        resumed = (what == "--out's checkpoint" and keep is not None and os.path.exists(path) and os.path.exists(keep)
                   and os.path.samefile(keep, path))  # the model itself is replaced only with --overwrite
        if os.path.lexists(path) and not overwrite and not resumed:
            raise click.BadParameter(f"{display(path)} exists (use --overwrite to replace it)", param_hint=what)


def _find_images(inputs, recursive, quiet, curve):
    """The batch items of the image inputs (nothing decoded); a usage error when the training curve's file
    ``curve`` is one of them."""
    from ..batch import check_side_file, discover, say
    from ..errors import InvalidArgumentError

    def warn(msg):
        if not quiet:
            say(f"stntool: warning: {msg}")

    try:
        items, _ = discover(inputs, recursive, warn=warn)
        check_side_file(curve, items, "--out's training curve")
    except InvalidArgumentError as e:
        raise click.UsageError(str(e)) from None
    return items


#: The memory a rendered page takes while training, in bytes, both held for the whole run: the page (about 0.4 MB)
#: and its working image (0.26 MB); the process grew by 2.2 MB a page over 150 pages (the allocator's share).
PAGE_BYTES = 2_200_000


def _check_memory(n_pages: int):
    """A usage error when ``n_pages`` rendered pages would not fit in this machine's memory (they are all held while
    training), instead of a run that grows until the system stops it."""
    if n_pages <= 0:
        return
    total = _memory_bytes()
    if total is None:
        return  # no way to tell here
    need = n_pages * PAGE_BYTES
    if need > 0.8 * total:
        raise click.BadParameter(f"{n_pages} pages would hold about {need / 1e9:.3g} GB in memory while training, "
                                 f"and this machine has {total / 1e9:.3g} GB (each page takes about "
                                 f"{PAGE_BYTES / 1e6:g} MB)", param_hint="--synthetic-pages")


def _memory_bytes():
    """The memory this process may use, in bytes: the machine's, or a container's limit (cgroup v2 or v1) where it
    is lower; None where neither can be read."""
    import os

    try:
        size, pages = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES")  # -1: cannot tell
        total = size * pages if size > 0 and pages > 0 else -1
    except (AttributeError, ValueError, OSError):
        total = -1
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limit = int(f.read().strip())  # "max" (no limit) is not a number
        except (OSError, ValueError):
            continue
        if limit > 0 and (total <= 0 or limit < total):
            total = limit
    return total if total > 0 else None


def _read_images(items):
    """``(images, names, failed)``: decodable images at least _MIN_SIDE on each side; one line per other file."""
    from ..batch import say
    from ..errors import StnError
    from ..io import decode_image, display, read_file_bytes

    pictures, names, failed = [], [], 0
    for it in items:
        try:
            img = decode_image(read_file_bytes(it.input))
            if min(img.shape[:2]) < _MIN_SIDE:
                raise StnError(f"too small for the net ({img.shape[1]}x{img.shape[0]}; at least "
                               f"{_MIN_SIDE}x{_MIN_SIDE})")
        except StnError as e:
            failed += 1
            say(f"stntool: error: {display(it.input)}: {e}")
            continue
        pictures.append(img)
        names.append(it.input)
    return pictures, names, failed
