"""``stntool augment``: random geometric variants of images, reproducible, replayable, with their labels.

Thin layer over :mod:`stntool.augment` (the ranges and the records), :mod:`stntool.labels` and the
shared batch runner. Heavy modules are imported inside the command body only.
"""

from __future__ import annotations

import click

from ..cli_options import (a_folder, a_name, an_output_folder, check_io_options, check_size, geometry_options,
                           implied_padding, input_options, not_nan, output_options, run_images, sampling_options,
                           usage_errors)

EXAMPLES = """
\b
Examples:
  stntool augment photos/ -o aug/ --count 8 --seed 1 --rotate -15:15 --scale 0.9:1.1 --hflip 0.5
  stntool augment scans/ -o aug/ --count 4 --seed 7 --preset document --manifest aug.jsonl
  stntool augment img.png -o aug/ --count 6 --seed 3 --tps 0.03 --elastic 30,6 --keep-inside
  stntool augment data/ -r -o aug/ --count 4 --seed 2 --preset medium --masks masks/ --preview sheet.png
  stntool augment ds/images/train -r -o aug/images/train --labels-dir ds/labels/train \\
      --labels-out aug/labels/train --count 4 --seed 5 --preset light          # a YOLO dataset's layout
  stntool augment --show-preset heavy
  stntool warp --params aug.jsonl -o replay/          # the same files again, bit for bit

\b
Ranges: a single value is a fixed amount (--rotate 10), LO:HI a uniform range (--rotate -10:10);
--translate F means -F:F. Rotation is counter-clockwise as displayed; shear in degrees; translate,
perspective and tps in fractions of the output size; --elastic ALPHA,SIGMA in pixels.

\b
Outputs: variant k of in/sub/a.jpg is OUT/sub/a_<k>.jpg, k zero-padded to 3 digits (more when
--count > 1000). Variant k's randomness depends only on (--seed, the input's relative path, k):
not on --jobs, the order or the other inputs. Without --seed a random seed is drawn and printed.

\b
Labels move with the pixels: a.json (keypoints, boxes) or a.txt (YOLO boxes) beside a.jpg is
transformed and written beside each variant (a_000.json / a_000.txt), or read from and written to
folders of their own (--labels-dir, --labels-out: paired by relative path); with --masks DIR, the mask
DIR/sub/a.png is warped with nearest sampling and written as a_000.mask.png, or with --masks-out
MDIR as MDIR/sub/a_000.png (an indexed PNG keeps its palette: its indices are warped, not its colours).
"""

_RANGE_FLAGS = ("rotate", "scale", "aspect", "shear", "shear_y", "translate")
_PRESET_SAMPLING = ("padding", "fill")
#: Perspective amounts from which two corners can cross, so that a draw's quad folds through its horizon.
FOLDING_PERSPECTIVE = 0.25


def _elastic(ctx, param, value):
    if value is None:
        return None
    from ..errors import InvalidArgumentError
    from ..records import parse_numbers

    try:
        alpha, sigma = parse_numbers(value, "ALPHA,SIGMA", (2,))
    except InvalidArgumentError as e:  # click names the option itself: "Invalid value for '--elastic': ..."
        raise click.BadParameter(str(e)) from None
    if alpha < 0 or sigma <= 0:
        raise click.BadParameter(f"expected ALPHA >= 0 and SIGMA > 0, got {value!r}")
    return alpha, sigma


def _show_preset(ctx, param, value):
    if value is None or ctx.resilient_parsing:
        return
    from ..augment import PRESETS

    if value not in PRESETS:
        raise click.BadParameter(f"unknown preset {value!r}; choose one of {', '.join(PRESETS)}")
    words = []
    for key, v in PRESETS[value].items():
        flag = "--" + key.replace("_", "-")
        if isinstance(v, tuple):
            words.append(f"{flag} {v[0]:g}:{v[1]:g}")
        elif isinstance(v, float):
            words.append(f"{flag} {v:g}")
        else:
            words.append(f"{flag} '{v}'" if str(v).startswith("#") else f"{flag} {v}")
    click.echo(" ".join(words))
    ctx.exit(0)


def variant_names(path: str, count: int) -> list:
    """Output paths of ``count`` variants of one planned output ``path``: ``stem_000.ext`` ..."""
    import os

    if path == "-":
        return ["-"] if count == 1 else [f"variant {k}" for k in range(count)]  # the planner refuses several
    base, ext = os.path.splitext(path)
    width = max(3, len(str(count - 1)))
    return [f"{base}_{k:0{width}d}{ext}" for k in range(count)]


@click.command(epilog=EXAMPLES, short_help="Random geometric variants, reproducible and replayable, with labels.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(path_type=str, readable=False))  # unreadable: that input fails
@click.option("-n", "--count", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="Variants written per input.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1),
              help="Seed (an integer); default: drawn and printed on stderr (with -q, only the manifest keeps it).")
@click.option("--preset", type=click.Choice(["light", "medium", "heavy", "document", "ocr"]),
              help="Start from a named set of ranges (flags given here override it).")
@click.option("--show-preset", metavar="NAME", callback=_show_preset, expose_value=False, is_eager=True,
              help="Print a preset's flags and exit.")
@geometry_options
@click.option("--hflip", type=click.FloatRange(0, 1), help="Probability of a left-right mirror.")
@click.option("--vflip", type=click.FloatRange(0, 1), help="Probability of a top-bottom mirror.")
@click.option("--tps", type=click.FloatRange(0, 0.5, max_open=True),
              help="Thin-plate-spline control-point jitter, a fraction of the size.")
@click.option("--tps-grid", "tps_grid", type=click.IntRange(2, 16), help="TPS lattice K (KxK points)  [default: 4]")
@click.option("--elastic", metavar="ALPHA,SIGMA", callback=_elastic,
              help="Elastic displacement as Albumentations' ElasticTransform (pixels).")
@click.option("--keep-inside", is_flag=True, default=None, help="Zoom in so no padding shows, where possible.")
@click.option("--labels", "labels_kind", type=click.Choice(["auto", "json", "yolo", "none"]), default="auto",
              show_default=True, help="Label sidecars beside each input: NAME.json (keypoints, boxes) or NAME.txt "
                                      "(YOLO); auto takes whichever exists.")
@click.option("--labels-dir", metavar="DIR", type=click.Path(exists=True, file_okay=False), callback=a_folder,
              help="Read the label sidecars from DIR, paired by relative path (DIR/sub/a.txt for in/sub/a.jpg: the "
                   "images/ and labels/ folders of a YOLO dataset), not beside the inputs.")
@click.option("--labels-out", metavar="DIR", callback=an_output_folder,
              help="Write each variant's label file to DIR, mirroring the variants' names under -o "
                   "(DIR/sub/a_000.txt), not beside the variant.")
@click.option("--masks", "masks_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False), callback=a_folder,
              help="Segmentation masks paired by relative path (DIR/sub/a.png for in/sub/a.jpg).")
@click.option("--masks-out", metavar="DIR", callback=an_output_folder,
              help="Write each variant's mask to DIR as DIR/sub/a_000.png (the variant's name under -o, as a PNG), "
                   "not beside the variant as a_000.mask.png.")
@click.option("--min-visibility", type=click.FloatRange(0, 1), default=0.0, show_default=True, callback=not_nan,
              help="Drop boxes of which less than this fraction stays in the image.")
@click.option("--preview", metavar="SHEET.png", callback=a_name,
              help="Also write a contact sheet of the first inputs and their variants.")
@sampling_options
@output_options
@input_options
def augment(inputs, count, seed, preset, rotate, scale, aspect, shear, shear_y, translate, perspective, hflip, vflip,
            tps, tps_grid, elastic, keep_inside, labels_kind, labels_dir, labels_out, masks_dir, masks_out,
            min_visibility,
            preview, mode,
            padding, fill, align_corners, out_hw, device, jobs, **io_options):
    """Write --count random geometric variants of each input, and their warp records.

    INPUTS are image files, folders (images inside, sorted, hidden ones left out; -r to recurse)
    or - for one image's bytes on stdin. Every variant's record (θ or TPS points, elastic seed) goes
    to --manifest, so `stntool warp --params` reproduces the outputs. Exit status: 0 all ok, 1 some
    inputs failed, 2 usage error.
    """
    import os

    from ..augment import PRESETS, Augmenter
    from ..batch import say

    check_size(out_hw, io_options["max_pixels"])
    padding = implied_padding(padding, fill)
    ctx = click.get_current_context()
    opts = dict(PRESETS[preset]) if preset else {}
    from click.core import ParameterSource

    if any(ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None) for k in _PRESET_SAMPLING):
        opts.pop("padding", None), opts.pop("fill", None)  # the command line's padding/fill replace the preset's
    opts.setdefault("padding", padding)
    opts.setdefault("fill", fill)
    check_io_options(opts["fill"], opts["padding"], **{k: io_options[k] for k in (
        "overwrite", "skip_existing", "null", "files_from", "manifest", "manifest_append")})
    given = dict(rotate=rotate, scale=scale, aspect=aspect, shear=shear, shear_y=shear_y, translate=translate,
                 hflip=hflip, vflip=vflip, perspective=perspective, tps=tps, tps_grid=tps_grid, elastic=elastic,
                 keep_inside=keep_inside)
    opts.update({k: v for k, v in given.items() if v is not None})
    with usage_errors():
        aug = Augmenter(mode=mode, align_corners=bool(align_corners), **opts)
    said = []  # lines said once the options are all checked (usage errors come alone)
    if aug.is_identity and out_hw is None and not io_options["quiet"]:
        said.append("stntool: warning: every range, flip and field is nothing (give --rotate, --scale, ..., or "
                    "--preset): every variant is its input unchanged")
    if aug.perspective >= FOLDING_PERSPECTIVE and not io_options["quiet"]:
        said.append(f"stntool: warning: --perspective {aug.perspective:g}: corners moved a quarter of the size or "
                    "more can fold the image through its horizon (some variants show a mirrored part; "
                    "--keep-inside cannot zoom those clear)")
    said_seed = None
    if seed is None:
        import secrets

        seed = secrets.randbits(32)
        if not io_options["quiet"]:
            said_seed = f"stntool: augment seed {seed} (pass --seed {seed} to repeat this run)"
    output = io_options["output"]
    if labels_kind == "none" and (labels_dir is not None or labels_out is not None):
        raise click.UsageError("--labels-dir and --labels-out need label files (not --labels none)")
    if output == "-" and (labels_out is not None or labels_dir is not None):
        raise click.UsageError("--labels-dir and --labels-out go with label files written beside the variants (not "
                               "-o -)")
    if masks_out is not None:
        if masks_dir is None:
            raise click.UsageError("--masks-out writes the masks that --masks reads (give --masks DIR)")
        if output == "-":
            raise click.UsageError("--masks-out goes with masks written beside the variants (not -o -)")
        if output is not None and os.path.normcase(os.path.realpath(masks_out)) == os.path.normcase(
                os.path.realpath(output)):
            raise click.BadParameter("is -o: the masks would take the variants' names (give a folder of their own)",
                                     param_hint="--masks-out")
    labels = _LabelIO(labels_kind, masks_dir, min_visibility, exif=not io_options["ignore_orientation"],
                      labels_dir=labels_dir, labels_out=labels_out, output=output, masks_out=masks_out)
    sheet = None
    if preview is not None:
        from ..io import display, folder_problem, unwritable

        if not preview:
            raise click.BadParameter("give a file name, e.g. sheet.png", param_hint="--preview")
        ext = os.path.splitext(preview)[1].lower()
        why = unwritable(ext) if ext else None
        if why is not None:
            raise click.BadParameter(f"cannot write '{ext}' files ({why}; e.g. sheet.png)", param_hint="--preview")
        if preview == "-":
            raise click.BadParameter("the contact sheet is written to a file (give a file name, e.g. sheet.png)",
                                     param_hint="--preview")
        if os.path.isdir(preview):
            raise click.BadParameter(f"{display(preview)} is a folder (give a file name, e.g. sheet.png)",
                                     param_hint="--preview")
        if ext:  # the sheet is 8-bit BGR: a format that cannot store that (.pgm: grey, .hdr: float) fails now
            import numpy as np

            from ..errors import StnError
            from ..io import encode_image

            try:
                encode_image(np.zeros((2, 2, 3), np.uint8), ext)
            except StnError as e:
                reason = str(e).split(";")[0]
                raise click.BadParameter(f"cannot write the sheet as '{ext}' ({reason}; e.g. sheet.png)",
                                         param_hint="--preview") from None
        if os.path.exists(preview) and not os.path.isfile(preview):  # (a link is replaced, as outputs' links are)
            raise click.BadParameter(f"{display(preview)} exists and is not a regular file (a pipe or a device)",
                                     param_hint="--preview")
        exists = os.path.lexists(preview)
        # resuming with --skip-existing keeps an existing sheet, as it keeps the existing variants
        keep = exists and io_options["skip_existing"]
        problem = None if keep else folder_problem(preview)  # written after the batch: fail now, not then
        if problem is not None:
            raise click.BadParameter(f"cannot write {display(preview)}: {problem}", param_hint="--preview")
        sheet = _Preview(preview, keep=keep)

    def starting():  # once every option is checked (an input named by --preview among them): usage errors first
        if sheet is not None and exists and not (io_options["overwrite"] or io_options["skip_existing"]):
            raise click.BadParameter(f"{display(preview)} exists (use --overwrite to replace it)",
                                     param_hint="--preview")
        labels.check_pairing()
        for line in said + ([said_seed] if said_seed is not None else []):
            say(line)

    def outputs(item, path):
        return variant_names(path, count)

    def prepare(items):
        for it in items:
            it.fields = {"seed": seed}
        return items

    def process(img, item, backend):
        # a generator: each variant is encoded and written while it is still in cache, before the next is warped
        from ..augment import variant_rng
        from ..batch import Output, relative_name
        from ..records import apply_spec

        in_hw = img.shape[:2]
        key = item.rel.replace(os.sep, "/")
        found = labels.read(item, in_hw)
        for k, path in enumerate(item.outputs):
            spec = aug.sample(variant_rng(seed, key, k), in_hw, out_hw)
            name = relative_name(path, output)
            record = spec.replace(in_hw=in_hw, name=name).to_record()
            out = apply_spec(img, spec, backend)
            files, extra, moved = labels.write(found, spec, in_hw, path, backend)
            if sheet is not None:
                sheet.add(item, img, spec, out, k, os.path.basename(path),
                          found["labels"][0] if found["labels"] is not None else None, moved)
            yield Output(out, {**record, "seed": seed, "variant": k, **extra}, path, files)

    def finish(summary):
        if sheet is not None and not sheet.write(aug):
            summary.side_failed = True  # said on its own line; the exit status says it too

    import dataclasses

    import numpy as np

    # the kernel family every variant uses (affine, or projective with --perspective), compiled ahead on a first run;
    # drawn without keep_inside, whose checks can warp (a field's): no kernel compiles before the batch counts it
    probe = dataclasses.replace(aug, keep_inside=False).sample(np.random.default_rng(0), (64, 64), out_hw).kernels()
    run_images("augment", process, inputs=inputs, device=device, jobs=jobs, prepare=prepare, outputs=outputs,
               finish=finish, kernels=lambda item: probe, starting=starting, side_files={"--preview": preview},
               beside=labels.beside, reads_beside=labels.reads, **io_options)


def _holds_words(path, limit: int = 1 << 16) -> bool:
    """Whether the text file ``path`` is a transcript or notes rather than YOLO boxes: its first ``limit`` bytes
    hold a word that is not a number on a line that is not a YOLO line with a class name (``person 0.5 0.5 0.2
    0.2``: broken labels, not words), and no YOLO box (a whole class and four fractions: a file with one is
    labels, whatever else is wrong in it; a transcript's row of years is not one). Unreadable files count as
    labels, so reading them fails with their own error; a leading UTF-8 byte-order mark is not a word. Numbers
    between commas or semicolons are numbers (labels in another layout), and a box followed by more (``# car``)
    is a box: such files are labels that fail to read, not words left out."""
    import re

    try:
        with open(path, "rb") as f:
            head = f.read(limit)
    except OSError:
        return False
    cut = len(head) == limit and not head[-1:].isspace()
    lines = head.removeprefix(b"\xef\xbb\xbf").splitlines()
    if cut and lines:
        lines = lines[:-1]  # the last line may be cut

    def number(w):
        try:
            return float(w)
        except ValueError:
            return None

    words = boxes = False
    for line in lines:
        fields = [w for w in re.split(rb"[\s,;]+", line) if w]  # numbers in another layout are numbers
        values = [number(w) for w in fields]
        numeric = all(v is not None for v in values)
        # a YOLO line (a box, a polygon, a pose), whatever follows it (a comment): a whole class, then fractions
        boxes = boxes or (len(fields) >= 5 and fields[0].isdigit()
                          and all(v is not None and 0.0 <= v <= 1.0 for v in values[1:5]))
        named_box = len(fields) == 5 and all(v is not None for v in values[1:])  # a class name where YOLO wants one
        words = words or not (named_box or numeric)
    return words and not boxes  # a file with one box in it is labels, broken or not


class _LabelIO:
    """Finds, moves and writes the labels of one input (sidecars and masks)."""

    def __init__(self, kind, masks_dir, min_visibility, exif: bool = True, labels_dir=None, labels_out=None,
                 output=None, masks_out=None):
        self.kind, self.masks_dir, self.min_visibility = kind, masks_dir, min_visibility
        # sidecars read from labels_dir (by relative path) and written to labels_out (by the variants' names under
        # the output folder) instead of beside the images
        self.labels_dir, self.labels_out, self.output = labels_dir, labels_out, output
        self.masks_out = masks_out  # masks written there by the variants' names (.png), not beside them
        self.exif = exif  # masks are read as their images are: turned by their orientation tag, or not
        self._sidecars = {}  # input -> sidecar(), looked up once: planned with the outputs, then read
        self._items = []  # the items looked up, in order
        self._said_text = False  # the note on .txt files that are not labels, said once
        self._words = set()  # inputs whose .txt was left out as words (no "no label file" for them)
        self._masks = {}  # (input, relative path) -> its mask's path (or None), looked for once
        self._names = {}  # a folder -> its names by stem, for extensions in any letter case (_any_case)

    _SIDE_EXT = {"json": ".json", "yolo": ".txt"}
    #: The sidecar formats each ``--labels`` kind looks for, in order.
    _KINDS = {"auto": ("json", "yolo"), "json": ("json",), "yolo": ("yolo",)}

    def _any_case(self, stem, extensions):
        """The file ``stem + ext`` for the first of ``extensions`` (lower case) that names one, that name first,
        then the folder's names of the stem with the extension in any letter case (``a.PNG``, ``IMG_1.JSON``, as
        inputs are recognised); None. Each folder is listed once."""
        import os

        found = next((stem + ext for ext in extensions if os.path.isfile(stem + ext)), None)
        if found is not None:
            return found
        folder, base = os.path.split(stem)
        if folder not in self._names:  # {stem: [(lower-case extension, name)]}
            listing = {}
            try:
                for name in sorted(os.listdir(folder or ".")):
                    b, ext = os.path.splitext(name)
                    listing.setdefault(b, []).append((ext.lower(), name))
            except OSError:
                pass
            self._names[folder] = listing
        names = dict(reversed(self._names[folder].get(base, ())))  # (a name in lower case was found above)
        return next((os.path.join(folder, names[ext]) for ext in extensions
                     if ext in names and os.path.isfile(os.path.join(folder, names[ext]))), None)

    def _candidates(self, item):
        """``[(path, fmt), ...]``: the label files an item may have, in the order they are looked for (beside its
        input, or in ``labels_dir`` by its relative path)."""
        import os

        stem = os.path.splitext(item.input if self.labels_dir is None else os.path.join(self.labels_dir, item.rel))[0]
        return [(stem + self._SIDE_EXT[fmt], fmt) for fmt in self._KINDS[self.kind]]

    def sidecar(self, item):
        """``(path, fmt)`` of the label file beside an item's input (``fmt`` "json" or "yolo"), or None; looked for
        once per input (the planning of every variant's files and the reading share the answer)."""
        import os

        if self.kind == "none" or item.input == "-":
            return None
        if item.input not in self._sidecars:
            self._items.append(item)
            candidates = self._candidates(item)  # one stem, an extension per format (a.JSON, a.TXT too)
            fmts = {os.path.splitext(path)[1]: fmt for path, fmt in candidates}
            path = self._any_case(os.path.splitext(candidates[0][0])[0], list(fmts))
            found = None if path is None else (path, fmts[os.path.splitext(path)[1].lower()])
            if found is not None and self.kind == "auto" and found[1] == "yolo" and _holds_words(found[0]):
                # words in it: a transcript or notes beside the image (an OCR set's), not YOLO boxes
                if not self._said_text:
                    from ..batch import say
                    from ..io import display

                    say(f"stntool: note: {display(found[0])} holds words, not YOLO boxes: such .txt files beside "
                        "inputs are left out (--labels yolo reads them as labels)")
                    self._said_text = True
                self._words.add(item.input)
                found = None
            self._sidecars[item.input] = found
        return self._sidecars[item.input]

    def beside(self, item, path):
        """The files :meth:`write` will write beside the output ``path`` of ``item`` (planned with the outputs, so
        two inputs whose variants share a base name, ``a.png`` and ``a.jpg``, cannot write one label file)."""
        found = self.sidecar(item)
        return ([self._label_base(path) + self._SIDE_EXT[found[1]]] if found else []) + \
            ([self._mask_file(path)] if self.masks_dir is not None else [])

    def _mask_file(self, path):
        """A variant's mask file: beside the variant (``a_000.mask.png``), or under ``masks_out`` by the variant's
        name under the output folder, as a PNG (``MDIR/sub/a_000.png``)."""
        import os

        from ..batch import relative_name

        if self.masks_out is None:
            return os.path.splitext(path)[0] + ".mask.png"
        name = relative_name(path, self.output).replace("/", os.sep)
        return os.path.join(self.masks_out, os.path.splitext(name)[0] + ".png")

    def _label_base(self, path):
        """A variant's label file, less its extension: beside the variant, or under ``labels_out`` by the variant's
        name under the output folder."""
        import os

        from ..batch import relative_name

        if self.labels_out is None:
            return os.path.splitext(path)[0]
        name = relative_name(path, self.output).replace("/", os.sep)
        return os.path.join(self.labels_out, os.path.splitext(name)[0])

    def reads(self, item):
        """The files read with an item's image: its label file and its mask, where it has them (no output may be
        one of them)."""
        side = self.sidecar(item)
        mask = self._mask_path(item) if self.masks_dir is not None else None
        return [p for p in (side[0] if side else None, mask) if p is not None]

    def check_pairing(self):
        """Once the outputs are planned (every input's label file looked for): with ``labels_dir``, a usage error
        when none of several inputs has a label file in it although it holds label files (the folder does not
        mirror the inputs' relative paths: every label would be lost), else one warning, even with --quiet,
        counting the inputs without one (background images have none)."""
        import os

        if self.labels_dir is None or self.kind == "none":
            return
        from ..batch import STDIN
        from ..io import display

        looked = {k: v for k, v in self._sidecars.items() if k != STDIN and k not in self._words and os.path.exists(k)}
        missing = [k for k, v in looked.items() if v is None]
        if not missing:
            return
        example = next(it for it in self._items if it.input == missing[0])
        where = " or ".join(display(path) for path, _ in self._candidates(example))
        if len(missing) == len(looked) > 1 and self._holds_labels():  # labels there, for none of the inputs
            raise click.BadParameter(f"no input has a label file in {display(self.labels_dir)} (for "
                                     f"{display(example.input)} it looked for {where}: the folder mirrors the "
                                     "inputs' paths relative to the folders given)", param_hint="--labels-dir")
        from ..batch import say

        say(f"stntool: warning: {len(missing)} of {len(looked)} inputs have no label file in --labels-dir (for "
            f"{display(example.input)} it looked for {where}); their variants have none")

    def _holds_labels(self) -> bool:
        """Whether ``labels_dir`` (or a folder in it) holds a label file named as one of the inputs is (``a.txt``
        for ``a.jpg``), elsewhere than where it was looked for: the sign of a folder that does not mirror the inputs'
        paths. With none, a batch of background images (YOLO gives them no label file; ``classes.txt`` is no label
        file of theirs) is no sign of inputs paired wrongly."""
        import os

        exts = {self._SIDE_EXT[fmt] for fmt in self._KINDS[self.kind]}
        stems = {os.path.normcase(os.path.splitext(os.path.basename(it.rel))[0]) for it in self._items}
        for _, _, names in os.walk(self.labels_dir):
            for name in names:
                stem, ext = os.path.splitext(name)
                if ext.lower() in exts and os.path.normcase(stem) in stems:
                    return True
        return False

    def read(self, item, in_hw):
        """``{"labels": (Labels, fmt) or None, "mask": array or None}`` for an item; StnError names the bad file."""
        found = {"labels": None, "mask": None}
        side = self.sidecar(item)
        if side is not None:
            from .. import labels as lb
            from ..errors import StnError

            path, fmt = side
            try:
                got = lb.read_labels_json(path, in_hw) if fmt == "json" else lb.read_yolo(path, in_hw)
            except lb.LabelSizeError as e:  # labels, of another size: turned a quarter by the file's orientation tag?
                from ..io import file_orientation

                if e.turned and self.exif and item.input != "-" and file_orientation(item.input) >= 5:
                    raise type(e)(f"{e} (labels of the file's stored pixels, before its orientation tag turned them "
                                  "a quarter? --ignore-orientation reads those)") from None
                raise
            except StnError as e:
                if self.kind != "auto":
                    raise
                # found by its name alone: a transcript or notes beside a scan are not labels
                raise type(e)(f"{e} (if it is not a label file, pass --labels none)") from None
            found["labels"] = (got, fmt)
        if self.masks_dir is not None:
            found["mask"], found["palette"] = self._mask(item, in_hw)
        return found

    def _mask_path(self, item):
        """The mask paired with an item (``masks_dir/rel`` with ``.png`` first, then any image extension, in any
        letter case as inputs are recognised: ``a.PNG``, ``IMG_1.JPG``), or None; looked for once per input, as
        the outputs are planned (a variant written during the run under that name is never taken for it)."""
        import os

        from ..io import IMAGE_EXTENSIONS

        key = (item.input, item.rel)  # paired by relative path: one file named twice may have two masks
        if key not in self._masks:
            stem = os.path.splitext(item.rel)[0]
            self._masks[key] = self._any_case(os.path.join(self.masks_dir, stem),
                                              (".png", *sorted(IMAGE_EXTENSIONS - {".png"})))
        return self._masks[key]

    def _mask(self, item, in_hw):
        """``(mask, palette)``: an indexed PNG's palette indices and its palette (written back with the variants'
        masks), else the decoded image and None."""
        import os

        from .. import labels as lb
        from ..errors import StnError
        from ..io import decode_image, decode_indexed_png, png_palette, read_file_bytes

        path = self._mask_path(item)
        if path is None:
            stem = os.path.splitext(item.rel)[0]
            raise StnError(f"no mask for this input in {self.masks_dir} (looked for {stem}.png and {stem} with every "
                           "other image extension)")
        try:
            data = read_file_bytes(path)
            if png_palette(data):
                mask, palette = decode_indexed_png(data)
            else:
                mask, palette = decode_image(data, apply_exif=self.exif, grey_transparency=False), None
            lb.check_mask(mask, in_hw)
        except StnError as e:
            raise StnError(f"mask {path}: {e}") from None
        return mask, palette

    def write(self, found, spec, in_hw, path, backend):
        """``(files, manifest fields, moved labels or None)`` for one variant written at ``path``."""
        files, extra, moved_labels = {}, {}, None
        if found["labels"] is None and found["mask"] is None:
            return files, extra, moved_labels
        from .. import labels as lb
        from ..io import encode_image, encode_indexed_png

        if found["labels"] is not None:
            got, fmt = found["labels"]
            moved_labels, info = lb.transform_labels(got, spec, in_hw, min_visibility=self.min_visibility)
            out_hw = spec.out_hw or in_hw
            side = self._label_base(path) + self._SIDE_EXT[fmt]
            text = (lb.labels_json_text(moved_labels, out_hw) if fmt == "json"
                    else lb.yolo_text(moved_labels, out_hw))
            files[side] = text.encode("utf-8")
            extra["labels"] = side
            extra["keypoints_visible"], extra["boxes_dropped"] = info.keypoints_visible, info.boxes_dropped
        if found["mask"] is not None:
            side = self._mask_file(path)
            moved = lb.warp_mask(found["mask"], spec, backend)
            palette = found.get("palette")
            files[side] = encode_indexed_png(moved, palette) if palette else encode_image(moved, "png")
            extra["mask"] = side
        return files, extra, moved_labels


class _Preview:
    """Keeps the first inputs that made variants, and those variants, for the contact sheet: the
    :attr:`MAX_INPUTS` of least index, whichever thread comes first (inputs that fail take no row). Each
    picture is made as its image comes (:func:`stntool.preview.input_tile`, :func:`~stntool.preview.variant_tile`),
    so the sheet keeps tiles, not images of the inputs' size."""

    MAX_INPUTS, MAX_VARIANTS = 4, 6

    def __init__(self, path, keep: bool = False):
        import threading

        self.path, self.keep, self.rows, self.lock = path, keep, {}, threading.Lock()
        self.left_out = set()  # inputs whose row was given to an input of smaller index

    def _wanted(self, item):
        """Under the lock: drops the rows of inputs that failed since (room for others); whether ``item`` has a
        row or may take one (a row once left out stays out: smaller ones stay)."""
        for i in [i for i, (it, _) in self.rows.items() if it.failed]:
            del self.rows[i]
        if item.index in self.rows:
            return True
        return item.index not in self.left_out and (len(self.rows) < self.MAX_INPUTS or item.index < max(self.rows))

    def add(self, item, img, spec, out, k, name, labels_in=None, labels_out=None):
        """Variant ``k`` of ``item`` (written as ``name``, its caption), with the input's and the variant's labels
        (drawn over the images) where it has them."""
        if k >= self.MAX_VARIANTS or self.keep:
            return
        with self.lock:
            if not self._wanted(item):
                return
            row = self.rows.get(item.index)
        from ..preview import input_tile, variant_tile

        # an input's variants come from one thread, one after another: its row's input picture is made once
        pic_in = input_tile(img, labels_in) if row is None else None
        pic = variant_tile(spec, out, img.shape[:2], labels_out)
        with self.lock:
            if not self._wanted(item) or (item.index not in self.rows and pic_in is None):
                return  # (its row was given to a smaller input while this variant's tile was made)
            _, row = self.rows.setdefault(item.index, (item, (item.rel, pic_in, [])))
            row[2].append((pic, name))
            if len(self.rows) > self.MAX_INPUTS:
                self.left_out.add(max(self.rows))
                del self.rows[max(self.rows)]

    def write(self, aug) -> bool:
        """Write the sheet (unless there is nothing to show, or it is kept); False when it could not be written."""
        import os

        from ..batch import say
        from ..errors import StnError
        from ..io import encode_image, write_atomic
        from ..preview import sheet_of_tiles

        if self.keep:
            return True
        rows = [row for i, (item, row) in sorted(self.rows.items()) if not item.failed]  # a failed input: no row
        if not rows:
            say(f"stntool: note: no contact sheet written to {self.path}: no input made variants in this run")
            return True
        sheet = sheet_of_tiles(rows)
        fmt = os.path.splitext(self.path)[1] or ".png"
        try:
            write_atomic(self.path, encode_image(sheet, fmt), overwrite=True)
        except StnError as e:
            say(f"stntool: error: preview {self.path}: {e}")
            return False
        return True
