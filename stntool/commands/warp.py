"""``stntool warp``: apply a given θ (affine, projective, TPS) to images and folders.

Thin layer: options become :class:`stntool.records.WarpSpec` records, :mod:`stntool.batch` does the
rest. Heavy modules (NumPy, OpenCV, numba kernels, tqdm) are imported inside the command body only.
"""

from __future__ import annotations

import click

from ..cli_options import (check_io_options, check_size, implied_padding, input_options, once, output_options,
                           parse_matrix, run_images, sampling_options, usage_errors)

EXAMPLES = """
\b
Examples:
  θ sources (exactly one of --theta, --matrix, --tps, --params):
    stntool warp --theta 0.9,0.1,0,-0.1,0.9,0 photos/ -o out/
    stntool warp --theta 1,0,0,0,1,0,0.2,0,1 page.png -o page_persp.png
    stntool warp --matrix 1,0,40,0,1,0 --inverse-map img.jpg -o shifted.jpg
    stntool warp --tps points.json scan.png -o flat.png
    stntool warp --params manifest.jsonl -o replay/

\b
  Sampling (--mode, --padding, --fill, --align-corners, --size, --device, --jobs):
    stntool warp --theta -1,0,0,0,1,0 --mode bicubic --padding border --size 512x512 in/ -o out/
    stntool warp --theta 0.8,0,0,0,0.8,0 --fill '#ffffff' in/ -o out/
    stntool warp --theta 1,0,0,0,1,0 --size 256x256 in/ -o small/
    stntool warp --theta '[[0.9, -0.2, 0.0], [0.2, 0.9, 0.0]]' in/ -o out/
    stntool warp --theta 1,0,0.1,0,1,0 --align-corners --device cpu --jobs 4 in/ -o out/

\b
  Inputs and outputs (-r, --files-from, --null, -, --format, --quality, --suffix):
    stntool warp --theta 0.9,0,0,0,0.9,0 -r photos/ -o out/ --format jpg --quality 92 --suffix _w
    find data -name '*.png' -print0 | stntool warp --theta 0.9,0,0,0,0.9,0 --files-from - --null -o out/
    cat a.png | stntool warp --theta -1,0,0,0,1,0 - -o - > b.png

\b
  Existing outputs, records and safety (--overwrite, --skip-existing, --manifest, --manifest-append,
  --max-pixels, --ignore-orientation, --quiet):
    stntool warp --theta 0.9,0,0,0,0.9,0 in/ -o out/ --skip-existing --manifest - | jq -r .output
    stntool warp --theta 0.9,0,0,0,0.9,0 in/ -o out/ --overwrite --manifest run.jsonl --quiet
    stntool warp --theta 0.9,0,0,0,0.9,0 in/ -o out/ --skip-existing --manifest run.jsonl --manifest-append
    stntool warp --theta 1,0,0,0,1,0 --ignore-orientation --max-pixels 50000000 big.jpg -o big.png
"""


@click.command(epilog=EXAMPLES, short_help="Apply a θ, an OpenCV matrix or a thin-plate spline to images.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(path_type=str, readable=False))  # unreadable: that input fails
@click.option("--theta", metavar="A,B,C,D,E,F[,G,H,I]", multiple=True, callback=once,
              help="PyTorch θ, output normalized -> input normalized: 6 numbers (2x3) or 9 (3x3 projective), "
                   "or rows as Python prints them: '[[0.9, 0, 0], [0, 0.9, 0]]'.")
@click.option("--matrix", metavar="NUMBERS", multiple=True, callback=once,
              help="OpenCV pixel matrix as for cv2.warpAffine (6) / warpPerspective (9), output <- input; "
                   "numbers or bracketed rows, as --theta.")
@click.option("--inverse-map", is_flag=True, help="--matrix maps output pixels to input pixels (WARP_INVERSE_MAP).")
@click.option("--tps", "tps_file", metavar="FILE.json", type=click.Path(dir_okay=False), multiple=True, callback=once,
              help='Thin-plate spline: {"src": [[x,y],...], "dst": [[x,y],...], "normalized": false}.')
@click.option("--params", "params_file", metavar="FILE.jsonl", multiple=True, callback=once,
              help="Per-image θ/TPS keyed by input path (a manifest written by stntool replays exactly).")
@sampling_options
@output_options
@input_options
def warp(inputs, theta, matrix, inverse_map, tps_file, params_file, mode, padding, fill, align_corners, out_hw,
         device, jobs, **io_options):
    """Warp images by a θ (affine, projective), an OpenCV matrix or a thin-plate spline.

    INPUTS are image files, folders (images inside, sorted, hidden ones left out; -r to recurse)
    or - for one image's bytes on stdin. Exit status: 0 all ok, 1 some inputs failed, 2 usage error.
    """
    sources = [n for n, v in (("--theta", theta), ("--matrix", matrix), ("--tps", tps_file),
                              ("--params", params_file)) if v is not None]
    if len(sources) != 1:
        hint = " (to resize only: --theta 1,0,0,0,1,0 --size WxH)" if not sources and out_hw is not None else ""
        raise click.UsageError("give exactly one of --theta, --matrix, --tps, --params" +
                               (f" (got {', '.join(sources)})" if sources else hint))
    if inverse_map and matrix is None:
        raise click.UsageError("--inverse-map only applies to --matrix")
    if params_file is not None:  # each record carries its own sampling and size, which replay exactly
        from click.core import ParameterSource

        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("mode", "padding", "fill", "align_corners")
                 if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)]
        if ctx.get_parameter_source("out_hw") not in (ParameterSource.DEFAULT, None):
            given.append("--size")
        if given:
            raise click.UsageError(f"{', '.join(given)} cannot be used with --params (each record gives its own "
                                   "mode, padding, fill, align_corners and size)")
    padding = implied_padding(padding, fill)
    check_io_options(fill, padding, **{k: io_options[k] for k in ("overwrite", "skip_existing", "null", "files_from",
                                                                   "manifest", "manifest_append")})
    import os

    from ..batch import STDIN, Output, attach_payloads, relative_name, say
    from ..errors import InvalidArgumentError, StnError
    from ..records import TpsPoints, WarpSpec, apply_spec, read_warp_records
    from ..transforms import theta_from_cv2

    options = dict(mode=mode, padding=padding, align_corners=bool(align_corners), fill=fill, out_hw=out_hw)
    template = WarpSpec(**options)
    if theta is not None:
        v = parse_matrix(theta, "--theta")
        template = template.replace(theta=(v[0:3], v[3:6]) + ((v[6:9],) if len(v) == 9 else ()))
    cv_matrix = None
    if matrix is not None:
        v = parse_matrix(matrix, "--matrix")
        cv_matrix = [v[0:3], v[3:6]] + ([v[6:9]] if len(v) == 9 else [])
        with usage_errors("--matrix"):  # a singular matrix is singular at every image size: say so once
            theta_from_cv2(cv_matrix, (2, 2), inverse_map=inverse_map)
    if tps_file is not None:
        with usage_errors("--tps"):
            points = TpsPoints.load(tps_file)
            try:  # the same whatever the image: points that determine none are refused once, here
                points.spline()
            except StnError as e:
                raise type(e)(f"{tps_file}: {e}") from None
            template = template.replace(tps=points)
    table = None
    if params_file == "-" and "-" in inputs:
        raise click.UsageError("stdin cannot carry both --params - and image bytes (-)")
    if params_file == "-" and io_options["files_from"] == "-":
        raise click.UsageError("stdin cannot carry both --params - and --files-from -")
    qualities = {}  # each record's output encoded again as its line says it was, unless --quality is given
    if params_file is not None:
        with usage_errors("--params"):
            table = read_warp_records(params_file, qualities if io_options["quality"] is None else None,
                                      warn=None if io_options["quiet"] else lambda m: say(f"stntool: warning: {m}"))
        if not table and not inputs and not io_options["files_from"]:
            empty = params_file != "-" and os.path.isfile(params_file) and os.path.getsize(params_file) == 0
            raise click.UsageError(f"--params {params_file}: no record to replay " + (
                "(the file is empty)" if empty else "(its lines are errors or outputs skipped)"))
    max_pixels = io_options["max_pixels"]
    check_size(out_hw, max_pixels)

    def prepare(items):
        if table is not None:
            items = attach_payloads(items, table, "no entry for this input in --params (its records name their "
                                    "inputs as the run that wrote them was given them, relative to the folder it "
                                    "ran in)")
        for it in items:
            it.fields = (it.payload or template).to_record()  # the record of a failure before decoding
        return items

    def process(img, item, backend):
        in_hw = img.shape[:2]
        spec = item.payload or template
        made_from = spec.in_hw  # a replayed record's input size
        spec = spec.replace(in_hw=None)
        if cv_matrix is not None:
            sampling = {k: v for k, v in options.items() if k != "out_hw"}
            spec = WarpSpec.from_cv2(cv_matrix, in_hw, out_hw or in_hw, inverse_map, **sampling)
        spec = spec.replace(out_hw=spec.out_hw or in_hw)
        ho, wo = spec.out_hw
        if ho * wo > max_pixels:  # a record's size, as an input's header, before any memory is taken
            raise InvalidArgumentError(f"output size {wo}x{ho} is more pixels than --max-pixels ({max_pixels})")
        if item.output != STDIN:  # the output's own name: a replay writes it again there (suffix, format)
            spec = spec.replace(name=relative_name(item.output, io_options["output"]))
        item.fields = spec.to_record()  # a failure from here on records the resolved θ and size
        fields = spec.replace(in_hw=in_hw).to_record()
        if made_from is not None and tuple(made_from) != tuple(in_hw):
            fields["warning"] = (f"the record was made from a {made_from[1]}x{made_from[0]} image; this one is "
                                 f"{in_hw[1]}x{in_hw[0]} (another file, or read with another --ignore-orientation?)")
        return Output(apply_spec(img, spec, backend), fields, quality=qualities.get(id(item.payload)))

    # the kernel each image needs (compiled ahead on a first run); an OpenCV matrix is projective when its θ is
    probe = template if cv_matrix is None else template.replace(theta=tuple(map(tuple, cv_matrix)))
    run_images("warp", process, inputs=inputs, device=device, jobs=jobs, listed=list(table) if table else (),
               prepare=prepare, kernels=lambda item: (item.payload or probe).kernels(),
               reads={"--tps": tps_file, "--params": params_file}, **io_options)
