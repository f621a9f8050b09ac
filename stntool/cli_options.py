"""Option bundles shared by commands (plain decorators, sqlite-utils style), and the error boundary.

Every command that reads images and writes images gets identical flags, help and defaults from
``input_options``, ``output_options`` and ``sampling_options``. The parsing itself lives in the
library (:mod:`stntool.records`, :mod:`stntool.batch`); the callbacks here only turn its
:class:`~stntool.errors.InvalidArgumentError` into Click's usage errors (exit 2).
No heavy imports here: ``stntool --help`` must not import numpy, OpenCV or numba.
"""

from __future__ import annotations

import contextlib
import re

import click


def _compose(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


@contextlib.contextmanager
def usage_errors(param_hint=None):
    """Turn the library's InvalidArgumentError into a Click usage error (exit 2) at the command boundary."""
    from .errors import StnError

    try:
        yield
    except StnError as e:
        msg = " ".join(str(e).split()).rstrip(" :")
        if param_hint is None:
            raise click.UsageError(_as_option(msg)) from None
        raise click.BadParameter(msg, param_hint=param_hint) from None


def _as_option(msg: str) -> str:
    """``msg`` with a leading library argument name (``shear_y must ...``, ``rotate: ...``) spelt as the current
    command's option that sets it (``--shear-y must ...``)."""
    m = re.match(r"([a-z][a-z0-9_]*)(?=[ :])", msg)
    ctx = click.get_current_context(silent=True)
    if m is None or ctx is None:
        return msg
    for param in ctx.command.params:
        if param.name == m.group(1) and isinstance(param, click.Option):
            return max(param.opts, key=len) + msg[m.end():]
    return msg


def parse_numbers(text: str, what: str, counts=None) -> list:
    """Comma/space separated finite floats; raises click.BadParameter with a precise message."""
    from .errors import InvalidArgumentError
    from .records import parse_numbers as parse

    try:
        return parse(text, what, counts)
    except InvalidArgumentError as e:
        raise click.BadParameter(str(e)) from None


def parse_matrix(text: str, what: str) -> list:
    """:func:`stntool.records.parse_matrix`, raising click.BadParameter."""
    from .errors import InvalidArgumentError
    from .records import parse_matrix as parse

    try:
        return parse(text, what)
    except InvalidArgumentError as e:  # "--theta: expected ..." said as Click says an option's bad value
        raise click.BadParameter(str(e).removeprefix(f"{what}: "), param_hint=f"'{what}'") from None


def _size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= 1 << 16 and 1 <= h <= 1 << 16):
        raise click.BadParameter(f"width and height must be between 1 and 65536, got {w}x{h}")
    return h, w  # (H, W), stntool's order


def _fill(ctx, param, value):
    if value is None:
        return None
    from .errors import InvalidArgumentError
    from .records import parse_fill

    try:
        return parse_fill(value)
    except InvalidArgumentError as e:  # "--fill 009900: ..." said once, as Click names the option
        raise click.BadParameter(re.sub(r"^--fill:? ", "", str(e))) from None


def not_nan(ctx, param, value):
    """A callback for ``click.FloatRange`` options, which let NaN through (no comparison fails it)."""
    if value is not None and value != value:
        raise click.BadParameter("expected a number, got nan")
    return value


def check_size(out_hw, max_pixels):
    """A usage error when ``--size`` (``(H, W)`` or None) asks for more pixels than ``--max-pixels``."""
    if out_hw is not None and out_hw[0] * out_hw[1] > max_pixels:
        raise click.BadParameter(f"{out_hw[1]}x{out_hw[0]} is more pixels than --max-pixels ({max_pixels})",
                                 param_hint="'--size'")


def once(ctx, param, value):
    """Callback of an option declared ``multiple=True`` that may be given once: its value, or None; given
    twice, a usage error (Click would otherwise keep the last one silently). An empty or blank value is one
    too (:func:`a_name`)."""
    if not value:
        return None
    if len(value) > 1:
        raise click.BadParameter(f"given {len(value)} times; give it once")
    return a_name(ctx, param, value[0])


def a_name(ctx, param, value):
    """Callback of a file or folder option: its value, refusing an empty or blank one (an unset shell variable in
    ``-o "$OUT"`` would otherwise write into the current folder, or switch the option off)."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty (an unset shell variable?)" if not value else f"{value!r} is only spaces")
    return value


def a_folder(ctx, param, value):
    """Callback of an option naming a folder that exists: :func:`a_name`, and not a file, device or pipe."""
    import os

    if a_name(ctx, param, value) is not None and not os.path.isdir(value):
        raise click.BadParameter(f"{value} is not a folder")
    return value


def an_output_folder(ctx, param, value):
    """Callback of an option naming a folder to write into: :func:`a_name`, and no file in its place (it is made
    when missing)."""
    import os

    if a_name(ctx, param, value) is not None and os.path.exists(value) and not os.path.isdir(value):
        raise click.BadParameter(f"{value} is a file (give a folder)", param_hint=max(param.opts, key=len))
    return value


def _jobs(ctx, param, value):
    if value < 1:
        raise click.BadParameter("must be at least 1")
    return value


def _range(ctx, param, value):
    if value is None:
        return None
    from .augment import parse_range
    from .errors import InvalidArgumentError

    what = f"--{param.name.replace('_', '-')}"
    try:
        return parse_range(value, what, symmetric=param.name == "translate")
    except InvalidArgumentError as e:  # click names the option itself: "Invalid value for '--rotate': ..."
        raise click.BadParameter(str(e).removeprefix(what + ": ")) from None


#: --rotate --scale --aspect --shear --shear-y --translate --perspective: ranges of random transforms, in the
#: units of :class:`stntool.augment.Augmenter` (a single value is fixed, LO:HI uniform; None when not given)
geometry_options = _compose(
    click.option("--rotate", metavar="LO:HI", callback=_range, help="Rotation in degrees, counter-clockwise."),
    click.option("--scale", metavar="LO:HI", callback=_range, help="Scale factor."),
    click.option("--aspect", metavar="LO:HI", callback=_range, help="Aspect change: x by sqrt(a), y by 1/sqrt(a)."),
    click.option("--shear", metavar="LO:HI", callback=_range, help="x shear in degrees (x += tan(shear)·y)."),
    click.option("--shear-y", "shear_y", metavar="LO:HI", callback=_range, help="y shear in degrees."),
    click.option("--translate", metavar="F|LO:HI", callback=_range,
                 help="Shift per axis, a fraction of the output size (F means -F:F)."),
    click.option("--perspective", type=click.FloatRange(0, 0.5, max_open=True),
                 help="Corner jitter, a fraction of the size (projective warp)."),
)

#: --mode --padding --fill --align-corners --size --device --jobs
sampling_options = _compose(
    click.option("--mode", type=click.Choice(["bilinear", "nearest", "bicubic"]), default="bilinear",
                 show_default=True, help="Interpolation."),
    click.option("--padding", type=click.Choice(["zeros", "border", "reflection", "constant"]), default="zeros",
                 show_default=True, help="Values for samples outside the input."),
    click.option("--fill", "fill", metavar="COLOR", callback=_fill,
                 help="The colour of --padding constant (which --fill alone implies): '#RRGGBB[AA]' (8-bit "
                      "scale) or numbers in the image's own channel order and range, e.g. 255 or 0,0,255."),
    click.option("--align-corners", is_flag=True, help="PyTorch align_corners=True (corner pixel centres at ±1)."),
    click.option("--size", "out_hw", metavar="WxH", callback=_size, help="Output size (default: input size)."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                 help="Where to sample; asking for cuda without a GPU is an error."),
    click.option("-j", "--jobs", type=int, default=2, show_default=True, callback=_jobs,
                 help="Images processed concurrently (threads)."),
)

#: -r --files-from -0/--null --max-pixels --ignore-orientation
input_options = _compose(
    click.option("-r", "--recursive", is_flag=True, help="Scan input folders recursively."),
    click.option("--files-from", metavar="FILE", callback=a_name,
                 help="Read input paths from FILE (- for stdin), one per line."),
    click.option("-0", "--null", is_flag=True, help="--files-from entries are NUL-separated (find -print0)."),
    click.option("--max-pixels", type=click.IntRange(1), default=1 << 27, show_default=True,
                 help="Refuse images whose header declares more pixels (decompression bombs), and outputs of "
                      "more pixels."),
    click.option("--ignore-orientation", is_flag=True,
                 help="Do not apply the orientation tag of JPEG (EXIF) and TIFF files."),
)

#: -o --format --quality --suffix --overwrite --skip-existing --manifest --manifest-append -q
output_options = _compose(
    click.option("-o", "--output", metavar="DIR|FILE|-", callback=a_name,
                 help="Output folder (folder scans and lists mirror relative paths; files keep their base "
                      "name), file, or - ."),
    click.option("--format", "fmt", type=click.Choice(["same", "png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"]),
                 default="same", show_default=True, help="Output format (jpeg = jpg, tiff = tif)."),
    click.option("--quality", type=click.IntRange(0, 100),
                 help="JPEG/WebP quality (JPEG 95 without it; WebP is lossless without it, lossy with any value; "
                      "PNG: higher = less compression)."),
    click.option("--suffix", default="", help="Appended to output base names, e.g. _warped."),
    click.option("--overwrite", is_flag=True, help="Replace existing outputs."),
    click.option("--skip-existing", is_flag=True, help="Skip inputs whose output exists."),
    click.option("--manifest", metavar="FILE.jsonl", callback=a_name,
                 help="Write one JSON line per output as it finishes (- = stdout)."),
    click.option("--manifest-append", is_flag=True,
                 help="Add to the --manifest file instead of replacing it (resume with --skip-existing and keep "
                      "the earlier records)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line."),
)


def implied_padding(padding, fill):
    """``--fill`` without ``--padding`` means ``--padding constant``, the padding that has a fill colour."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    if fill is not None and ctx.get_parameter_source("padding") in (ParameterSource.DEFAULT, None):
        return "constant"
    return padding


def check_io_options(fill, padding, overwrite, skip_existing, null, files_from, manifest=None,
                     manifest_append=False):
    """Usage checks shared by every command with the bundles above."""
    if fill is not None and padding != "constant":
        raise click.UsageError("--fill needs --padding constant")
    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other")
    if null and not files_from:
        raise click.UsageError("--null only applies to --files-from")
    if manifest_append and not manifest:
        raise click.UsageError("--manifest-append needs --manifest FILE")
    if manifest_append and manifest == "-":
        raise click.UsageError("--manifest-append cannot append to stdout (--manifest -)")


def run_images(ctx_name, process, *, inputs, recursive, files_from, null, output, fmt, quality, suffix, overwrite,
               skip_existing, manifest, quiet, max_pixels, ignore_orientation, device, jobs, manifest_append=False,
               listed=(), prepare=None, outputs=None, finish=None, kernels=None, starting=None, side_files=None,
               beside=None, reads=None, reads_beside=None):
    """Discover, plan and run a batch for a command; exits with the batch's status (0 returns).

    The keyword arguments are the parameters of the option bundles above, by name, so a command can pass them
    on as they came (``**io_options``). ``process(image, item, backend)`` is the command's per-image function
    (see :func:`stntool.batch.run_batch`; ``backend`` is the resolved ``--device``). ``listed`` are inputs to
    use when none are given (e.g. those of a parameter file); ``prepare(items)`` may expand or annotate the
    discovered items before outputs are planned; ``outputs(item, path)`` plans several outputs per input and
    ``beside(item, path)`` the files written beside each, ``reads_beside(item)`` the files read with an input's
    image (see :func:`stntool.batch.plan_outputs`);
    ``finish(summary)`` runs after the batch, before the exit. ``kernels(item)`` names the kernels an item's
    image runs through, so a first run can compile missing ones in a second process (see
    :func:`stntool.batch.run_batch`). ``starting()`` runs once every option is checked, just before the batch
    (a usage error comes alone). ``side_files`` maps an option to a further file the command writes
    (``{"--preview": path}``): like ``--manifest``, it may not be an input or a planned output (a usage error,
    before anything is written); nor may it be ``--files-from`` or one of ``reads``, the further files the
    command reads (``{"--params": path}``).
    """
    import sys

    from . import batch

    def warn(msg):
        if not quiet:
            batch.say(f"stntool: warning: {msg}")

    entries = []
    if files_from:
        if files_from == "-" and "-" in inputs:
            raise click.UsageError("stdin cannot carry both --files-from - and image bytes (-)")
        with usage_errors("--files-from"):
            entries = batch.read_list(files_from, null)
    with usage_errors():
        # the output folder is not scanned for inputs: a rerun does not read the last run's outputs
        leave_out = [output] if output and output != "-" else []
        if files_from and not entries and not inputs:
            # an empty list (find matched nothing) is an empty batch, as an empty folder is: not a usage error
            warn(f"no inputs in --files-from {files_from}")
            items, folders = [], 0
        else:
            items, folders = batch.discover(inputs, recursive, entries or (listed if not inputs else ()), warn=warn,
                                            leave_out=leave_out)
        if prepare is not None:
            items = prepare(items)
        if output == "-" and manifest == "-":
            batch.plan_outputs(items, output, fmt, suffix, folders, outputs)  # several inputs: that error first
            raise click.UsageError("--manifest - and -o - cannot both use stdout")
        sides = dict(side_files or {}, **{"--manifest": manifest if manifest != "-" else None})
        batch.plan_outputs(items, output, fmt, suffix, folders, outputs, skip_existing=skip_existing, side_files=sides,
                           beside=beside, read_files={"--files-from": files_from, **(reads or {})},
                           reads_beside=reads_beside)
    stdin_bytes = sys.stdin.buffer.read() if any(it.input == "-" for it in items) else None
    # an explicit cuda without a GPU is a usage error, never a silent CPU run
    from .sampling import resolve_backend

    with usage_errors("--device"):
        backend = resolve_backend(device)
    man = None
    if manifest:
        with usage_errors("--manifest"):
            man = batch.Manifest(manifest, append=manifest_append)
    if starting is not None:
        starting()
    summary = batch.run_batch(items, lambda img, item: process(img, item, backend), jobs=jobs, backend=backend,
                              overwrite=overwrite, skip_existing=skip_existing, fmt=fmt, quality=quality,
                              max_pixels=max_pixels, exif=not ignore_orientation, manifest=man, quiet=quiet,
                              stdin_bytes=stdin_bytes, command=f"stntool {ctx_name}", kernels=kernels)
    if finish is not None:
        finish(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)
