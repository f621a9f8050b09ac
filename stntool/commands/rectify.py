"""``stntool rectify``: straighten scans and photos of pages with the learned θ, refined through the sampler."""

from __future__ import annotations

import click

from ..cli_options import (a_name, check_io_options, implied_padding, input_options, not_nan, output_options,
                           run_images, sampling_options, usage_errors)

EXAMPLES = """
\b
Examples:
  stntool rectify scans/ -o straight/ --manifest rectify.jsonl
  stntool rectify scans/                      # writes scans_rectified/ beside scans/
  stntool rectify photos/ -o out/ --family rotation --min-confidence 0.8 -j 2
  stntool rectify page.jpg -o page_straight.jpg --model mine.npz
  stntool rectify sideways/ -o upright/ --upright-size
  stntool warp --params rectify.jsonl -o replay/     # the same outputs again, bit for bit

\b
Each output has the input's size (with --upright-size, a page found on its side has its width and
height swapped: a landscape scan of a portrait page comes back portrait). The page is padded with its
own paper colour (the median of its border) unless --padding says otherwise. Below --min-confidence
(blank pages, noise, photos without text) the image is written unchanged and the manifest says why. The
manifest's theta is PyTorch's affine_grid θ (align_corners=False, normalized output -> input) for the
output size it records.
"""


@click.command(epilog=EXAMPLES, short_help="Straighten scans and photos of pages (learned θ, refined).",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(path_type=str, readable=False))  # unreadable: that input fails
@click.option("--model", default="text", show_default=True, metavar="text|MODEL.npz", callback=a_name,
              help="The shipped text-page model, or one from `stntool train`.")
@click.option("--family", type=click.Choice(["rotation", "similarity", "affine", "projective"]),
              help="What to undo (default: the model's): rotation, or rotation and shear (affine).")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Refine the net's angle and shear through the sampler (text lines and strokes).")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True, callback=not_nan,
              help="Below this confidence the image is written unchanged.")
@click.option("--upright-size", is_flag=True,
              help="A page found on its side comes back in its upright shape (width and height swapped) "
                   "instead of the input's, so none of it is cut off.")
@sampling_options
@output_options
@input_options
def rectify(inputs, model, family, refine, min_confidence, upright_size, mode, padding, fill, align_corners, out_hw,
            device, jobs, **io_options):
    """Straighten rotated, sheared and sideways pages: θ from the localisation net, refined through the sampler.

    INPUTS are image files, folders (images inside, sorted, hidden ones left out; -r to recurse)
    or - for one image's bytes on stdin. Without -o, outputs go to a new folder beside the input
    named after it (scans/ -> scans_rectified/), never in place. Exit status: 0 all ok, 1 some
    inputs failed, 2 usage error.
    """
    import os

    ctx = click.get_current_context()
    from click.core import ParameterSource

    if align_corners:
        raise click.UsageError("--align-corners does not apply: rectify writes θ for align_corners=False (PyTorch's "
                               "affine_grid default)")
    if out_hw is not None:
        raise click.UsageError("rectify keeps each input's size (--size does not apply)")
    auto_padding = ctx.get_parameter_source("padding") in (ParameterSource.DEFAULT, None) and fill is None
    padding = implied_padding(padding, fill)
    check_io_options(fill, padding, **{k: io_options[k] for k in ("overwrite", "skip_existing", "null",
                                                                   "files_from", "manifest", "manifest_append")})
    if not inputs and not io_options["files_from"]:
        raise click.UsageError("no inputs (give files, folders, --files-from or -)")  # as every command says it
    if io_options["output"] is None:
        if io_options["files_from"]:  # the list's inputs are not known yet, nor how many
            raise click.UsageError("give -o/--output (the default, a folder beside the input, is for one input "
                                   "given as an argument, not for --files-from)")
        io_options["output"] = _sibling_output(inputs)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the net's matrices are small (see stntool train)
    import math

    from ..rectify import Rectifier, load_model

    with usage_errors("--model"):
        net = load_model(model)
        if family == "projective" and net.family != "projective":
            raise click.BadParameter(f"needs a projective model; this one is {net.family}", param_hint="--family")
        rectifier = Rectifier(net, family=family, refine=refine, min_confidence=min_confidence, backend=device)

    def process(img, item, backend):
        import time

        from ..batch import Output, relative_name
        from ..records import apply_spec

        t0 = time.perf_counter()
        spec, confidence, info = rectifier.spec(img, padding="auto" if auto_padding else padding, fill=fill,
                                                mode=mode, upright_size=upright_size)
        t1 = time.perf_counter()
        out = apply_spec(img, spec, backend)
        t2 = time.perf_counter()
        name = relative_name(item.output, io_options["output"])
        fields = spec.replace(in_hw=img.shape[:2], name=name).to_record()
        # the confidence rounded down, as the reason's: never 1.0 beside "0.99 < 1"
        fields.update(quarter_turns=info["quarter_turns"], confidence=math.floor(confidence * 1e4) / 1e4,
                      text_evidence=round(info["text_evidence"], 4), reason=info["reason"],
                      timings={"estimate": round(t1 - t0, 4), "warp": round(t2 - t1, 4)})
        return Output(out, fields)

    kernels = rectifier.kernels(mode, "zeros")  # compiled ahead on a first run (padding: not in the signature)
    run_images("rectify", process, inputs=inputs, device=device, jobs=jobs, kernels=lambda item: kernels,
               reads={"--model": model if model != "text" else None}, **io_options)


# the shared sampling options say "zeros"; rectify pads with the page's paper colour unless told otherwise
next(p for p in rectify.params if p.name == "padding").show_default = "the page's paper colour"


def _sibling_output(inputs):
    """``scans/`` -> ``scans_rectified/``; ``page.png`` -> ``page_rectified/``; several inputs need -o."""
    import os

    names = [i for i in inputs if i != "-"]
    if len(inputs) != 1 or not names:
        if list(inputs) == ["-"]:
            raise click.UsageError("give -o/--output (an image read from stdin has no folder to put one beside)")
        raise click.UsageError("give -o/--output (the default, a folder beside the input, needs exactly one input)")
    path = names[0].rstrip("/" + os.sep) or names[0]
    if os.path.isdir(path):
        real = os.path.realpath(path)
        if real == os.path.dirname(real):
            raise click.UsageError("give -o/--output (the input is the root folder)")
        path = os.path.normpath(path)  # sib/. is sib: named after the folder itself, beside it, never inside it
        if os.path.basename(path) in (os.curdir, os.pardir):
            path = real  # `.` or `..`: the folder's own name
    base = path if os.path.isdir(path) else os.path.splitext(path)[0]
    if os.path.lexists(base + "_rectified") and not os.path.isdir(base + "_rectified"):  # one error, not one per page
        raise click.UsageError(f"the default output folder {base}_rectified is a file: move it, or give -o/--output")
    return base + "_rectified" + os.sep


# The shared sampling options' --align-corners and --size do not apply here (a usage error, with the reason):
# left out of --help, which lists what a command takes
for _param in rectify.params:
    if _param.name in ("align_corners", "out_hw"):
        _param.hidden = True
