"""``stntool warp``: apply a given θ (affine, projective, TPS) to images and folders.

Thin layer: parse options, build one job per input, run jobs on a thread pool, report.
Heavy modules (OpenCV, numba kernels, tqdm) are imported inside the command body only.
"""

from __future__ import annotations

import json
import os
import sys
import time

import click

from .._version import __version__
from ..cli_options import parse_numbers, sampling_options

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
    stntool warp --theta 0.8,0,0,0,0.8,0 --padding constant --fill '#ffffff' in/ -o out/
    stntool warp --theta 1,0,0.1,0,1,0 --align-corners --device cpu --jobs 4 in/ -o out/

\b
  Inputs and outputs (-r, --files-from, --null, -, --format, --quality, --suffix):
    stntool warp --theta 0.9,0,0,0,0.9,0 -r photos/ -o out/ --format jpg --quality 92 --suffix _w
    find data -name '*.png' -print0 | stntool warp --theta 0.9,0,0,0,0.9,0 --files-from - --null -o out/
    cat a.png | stntool warp --theta -1,0,0,0,1,0 - -o - > b.png

\b
  Existing outputs, records and safety (--overwrite, --skip-existing, --manifest, --max-pixels,
  --ignore-orientation, --quiet):
    stntool warp --theta 0.9,0,0,0,0.9,0 in/ -o out/ --skip-existing --manifest - | jq -r .output
    stntool warp --theta 0.9,0,0,0,0.9,0 in/ -o out/ --overwrite --manifest run.jsonl --quiet
    stntool warp --theta 1,0,0,0,1,0 --ignore-orientation --max-pixels 50000000 big.jpg -o big.png
"""


class _Job:
    __slots__ = ("index", "input", "shown", "rel", "output", "error", "params")

    def __init__(self, index, input, rel):
        self.index = index
        self.input = input
        self.shown = None
        self.rel = rel
        self.output = None
        self.error = None
        self.params = None


def _usage(msg):
    raise click.UsageError(msg)


def _read_list(source, null):
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise click.BadParameter(f"cannot read {source}: {e.strerror}", param_hint="--files-from")
    sep = b"\0" if null else b"\n"
    items = []
    for raw in data.split(sep):
        if not null:
            raw = raw.rstrip(b"\r")
        if raw:
            items.append(os.fsdecode(raw))
    return items


def _safe_rel(path):
    """Relative path to mirror under -o DIR, or the base name when the path is absolute or climbs out."""
    p = os.path.normpath(path)
    if os.path.isabs(p) or p == ".." or p.startswith(".." + os.sep):
        return os.path.basename(p)
    return p


def _load_tps(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="--tps")
    except ValueError as e:
        raise click.BadParameter(f"{path} is not JSON: {e}", param_hint="--tps")
    return _check_tps(doc, "--tps")


def _check_tps(doc, hint):
    import math

    if not isinstance(doc, dict) or "src" not in doc or "dst" not in doc:
        raise click.BadParameter('expected an object {"src": [[x, y], ...], "dst": [[x, y], ...]}', param_hint=hint)
    pts = {}
    for key in ("src", "dst"):
        v = doc[key]
        if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 for p in v):
            raise click.BadParameter(f'"{key}" must be a list of [x, y] pairs', param_hint=hint)
        for p in v:
            for c in p:
                if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
                    raise click.BadParameter(f'"{key}" has a non-finite or non-numeric coordinate: {c!r}',
                                             param_hint=hint)
        pts[key] = [[float(a), float(b)] for a, b in v]
    if len(pts["src"]) != len(pts["dst"]):
        raise click.BadParameter(f'"src" has {len(pts["src"])} points but "dst" has {len(pts["dst"])}',
                                 param_hint=hint)
    if len(pts["src"]) < 3:
        raise click.BadParameter("a thin-plate spline needs at least 3 point pairs", param_hint=hint)
    reg = doc.get("regularization", 0.0)
    if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not reg >= 0 or not math.isfinite(reg):
        raise click.BadParameter('"regularization" must be a finite number >= 0', param_hint=hint)
    return {"src": pts["src"], "dst": pts["dst"], "normalized": bool(doc.get("normalized", False)),
            "regularization": float(reg)}


def _fill_for(fill, img, maxv):
    """Turn the --fill option into per-channel values for this image's layout and range."""
    if fill is None:
        return None
    kind, vals = fill
    c = 1 if img.ndim == 2 else img.shape[2]
    if kind == "values":
        return vals
    scale = (maxv / 255.0) if maxv else (1.0 / 255.0)
    r, g, b = vals[:3]
    a = vals[3] if len(vals) == 4 else 255
    if c == 1:
        return [(0.299 * r + 0.587 * g + 0.114 * b) * scale]
    if c == 2:
        return [(0.299 * r + 0.587 * g + 0.114 * b) * scale, a * scale]
    if c == 3:
        return [b * scale, g * scale, r * scale]
    return [b * scale, g * scale, r * scale, a * scale]


def _warp_pixels(img, spec, device):
    """Warp one decoded image; alpha images are premultiplied so edges get no dark fringes."""
    import numpy as np

    import stntool

    mode, padding, align, out_hw = spec["mode"], spec["padding"], spec["align_corners"], spec["out_hw"]
    is_int = img.dtype.kind == "u"
    maxv = float(np.iinfo(img.dtype).max) if is_int else 0.0
    fill = _fill_for(spec["fill"], img, maxv) if padding == "constant" else None
    c = 1 if img.ndim == 2 else img.shape[2]
    alpha = c in (2, 4)

    def run(a, f):
        if spec.get("tps") is not None:
            t = spec["tps"]
            return stntool.warp_tps(a, t["src"], t["dst"], out_hw=out_hw, mode=mode, padding=padding,
                                    align_corners=align, fill=f, normalized=t["normalized"],
                                    regularization=t["regularization"], backend=device)
        return stntool.warp(a, spec["theta"], out_hw=out_hw, mode=mode, padding=padding, align_corners=align,
                            fill=f, backend=device)

    if not alpha:
        return run(img, fill)
    work = img.astype(np.float32)
    a_scale = maxv if is_int else 1.0
    a = work[..., -1:] / a_scale
    work[..., :-1] *= a
    f = None
    if fill is not None:
        f = list(fill) + [] if len(fill) > 1 else [fill[0]] * c
        fa = f[-1] / a_scale
        f = [v * fa for v in f[:-1]] + [f[-1]]
    out = run(work, f)
    a_out = out[..., -1:] / a_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        out[..., :-1] = np.where(a_out > 1e-6, out[..., :-1] / a_out, 0.0)
    if is_int:
        out = np.clip(np.rint(out), 0, maxv).astype(img.dtype)
    else:
        out = out.astype(img.dtype)
    return out


@click.command(epilog=EXAMPLES, short_help="Apply a θ, an OpenCV matrix or a thin-plate spline to images.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(path_type=str))
@click.option("--theta", metavar="A,B,C,D,E,F[,G,H,I]",
              help="PyTorch θ, output normalized -> input normalized: 6 numbers (2x3) or 9 (3x3 projective).")
@click.option("--matrix", metavar="NUMBERS",
              help="OpenCV pixel matrix as for cv2.warpAffine (6) / warpPerspective (9), output <- input.")
@click.option("--inverse-map", is_flag=True, help="--matrix maps output pixels to input pixels (WARP_INVERSE_MAP).")
@click.option("--tps", "tps_file", metavar="FILE.json", type=click.Path(dir_okay=False),
              help='Thin-plate spline: {"src": [[x,y],...], "dst": [[x,y],...], "normalized": false}.')
@click.option("--params", "params_file", metavar="FILE.jsonl",
              help="Per-image θ/TPS keyed by input path (a manifest written by stntool replays exactly).")
@sampling_options
@click.option("-o", "--output", metavar="DIR|FILE|-", help="Output folder (mirrors relative paths), file, or - .")
@click.option("-r", "--recursive", is_flag=True, help="Scan input folders recursively.")
@click.option("--files-from", metavar="FILE", help="Read input paths from FILE (- for stdin), one per line.")
@click.option("-0", "--null", is_flag=True, help="--files-from entries are NUL-separated (find -print0).")
@click.option("--format", "fmt", type=click.Choice(["same", "png", "jpg", "webp", "tif"]), default="same",
              show_default=True, help="Output format.")
@click.option("--quality", type=click.IntRange(0, 100), help="JPEG/WebP quality (PNG: higher = less compression).")
@click.option("--suffix", default="", help="Appended to output base names, e.g. _warped.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output exists.")
@click.option("--manifest", metavar="FILE.jsonl", help="Write one JSON line per input as it finishes (- = stdout).")
@click.option("--max-pixels", type=click.IntRange(1), default=1 << 27, show_default=True,
              help="Refuse images whose header declares more pixels (decompression bombs).")
@click.option("--ignore-orientation", is_flag=True, help="Do not apply the EXIF orientation of JPEGs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.pass_context
def warp(ctx, inputs, theta, matrix, inverse_map, tps_file, params_file, mode, padding, fill, align_corners,
         out_hw, device, jobs, output, recursive, files_from, null, fmt, quality, suffix, overwrite, skip_existing,
         manifest, max_pixels, ignore_orientation, quiet):
    """Warp images by a θ (affine, projective), an OpenCV matrix or a thin-plate spline.

    INPUTS are image files, folders (images inside, sorted; -r to recurse) or - for one image's
    bytes on stdin. Exit status: 0 all ok, 1 some inputs failed, 2 usage error.
    """
    # ---- options that need no I/O
    sources = [n for n, v in (("--theta", theta), ("--matrix", matrix), ("--tps", tps_file),
                              ("--params", params_file)) if v is not None]
    if len(sources) != 1:
        _usage("give exactly one of --theta, --matrix, --tps, --params" +
               (f" (got {', '.join(sources)})" if sources else ""))
    if inverse_map and matrix is None:
        _usage("--inverse-map only applies to --matrix")
    if fill is not None and padding != "constant":
        _usage("--fill needs --padding constant")
    if overwrite and skip_existing:
        _usage("--overwrite and --skip-existing exclude each other")
    if null and not files_from:
        _usage("--null only applies to --files-from")
    theta_arr = matrix_arr = tps = None
    if theta is not None:
        v = parse_numbers(theta, "--theta", (6, 9))
        theta_arr = [v[0:3], v[3:6]] + ([v[6:9]] if len(v) == 9 else [])
    if matrix is not None:
        v = parse_numbers(matrix, "--matrix", (6, 9))
        matrix_arr = [v[0:3], v[3:6]] + ([v[6:9]] if len(v) == 9 else [])
    if tps_file is not None:
        tps = _load_tps(tps_file)
    params = None
    if params_file is not None:
        params = _load_params(params_file)

    # ---- inputs
    items = list(inputs)
    if files_from:
        if files_from == "-" and "-" in items:
            _usage("stdin cannot carry both --files-from - and image bytes (-)")
        items += _read_list(files_from, null)
    if not items and params is not None:
        items = list(params)
    if not items:
        _usage("no inputs (give files, folders, --files-from or -)")
    if items.count("-") > 1:
        _usage("- (stdin) can be given only once")

    jobs_list = []
    for item in items:
        if item != "-" and os.path.isdir(item):
            found = False
            for path, rel in _scan(item, recursive):
                jobs_list.append(_Job(len(jobs_list), path, rel))
                found = True
            if not found and not quiet:
                click.echo(f"stntool: warning: no images in folder {_display(item)}", err=True)
        else:
            rel = "stdin.png" if item == "-" else _safe_rel(item)
            jobs_list.append(_Job(len(jobs_list), item, rel))

    # ---- outputs
    if output is None:
        _usage("-o/--output is required (a folder, a file, or - for stdout)")
    single = len(jobs_list) == 1 and not any(os.path.isdir(i) for i in items if i != "-")
    to_stdout = output == "-"
    if to_stdout and not single:
        _usage("-o - (stdout) takes exactly one input image")
    if to_stdout and manifest == "-":
        _usage("--manifest - and -o - cannot both use stdout")
    from ..io import FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, WRITABLE_EXTENSIONS

    out_is_file = to_stdout or (single and not os.path.isdir(output) and not output.endswith(os.sep)
                                and os.path.splitext(output)[1].lower() in IMAGE_EXTENSIONS)
    if not out_is_file and os.path.exists(output) and not os.path.isdir(output):
        _usage(f"-o {_display(output)} exists and is not a folder")

    stdin_bytes = None
    if "-" in items:
        stdin_bytes = sys.stdin.buffer.read()

    # ---- device (an explicit cuda without a GPU is a usage error, never a silent CPU run)
    import stntool
    from stntool.sampling import resolve_backend

    try:
        backend = resolve_backend(device)
    except stntool.StnError as e:
        raise click.BadParameter(" ".join(str(e).split()).rstrip(" :"), param_hint="--device")

    input_real = set()
    for j in jobs_list:
        if j.input != "-":
            try:
                input_real.add(os.path.realpath(j.input))
            except (OSError, ValueError):
                pass
    claimed = {}
    for j in jobs_list:
        if to_stdout:
            j.output = "-"
            continue
        if out_is_file:
            j.output = output
            ext = FORMAT_EXTENSIONS.get(fmt) if fmt != "same" else None
            if ext is not None and os.path.splitext(output)[1].lower() != ext:
                _usage(f"-o {_display(output)} does not end in {ext} (--format {fmt})")
        else:
            base, ext = os.path.splitext(j.rel)
            if fmt != "same":
                ext = FORMAT_EXTENSIONS[fmt]
            elif j.input == "-":
                ext = ".png"
            elif ext.lower() not in WRITABLE_EXTENSIONS:
                ext = ".png"
            j.output = os.path.join(output, base + suffix + ext)
        key = os.path.normcase(os.path.realpath(j.output))
        if key in input_real:
            j.error = "refusing to write onto an input file (use another -o or --suffix)"
        elif key in claimed:
            j.error = f"output {_display(j.output)} would also be written by {_display(claimed[key])}"
        else:
            claimed[key] = j.input
        if params is not None and j.error is None:
            rec = params.get(j.input)
            if rec is None:
                j.error = "no entry for this input in --params"
            else:
                j.params = rec

    base_spec = {"mode": mode, "padding": padding, "align_corners": bool(align_corners), "out_hw": out_hw,
                 "fill": fill, "theta": theta_arr, "matrix": matrix_arr, "inverse_map": inverse_map, "tps": tps}
    opts = dict(backend=backend, max_pixels=max_pixels, exif=not ignore_orientation, quality=quality,
                overwrite=overwrite, skip_existing=skip_existing, stdin_bytes=stdin_bytes, fmt=fmt)
    _run(jobs_list, base_spec, opts, jobs, manifest, quiet)


def _display(p):
    from ..io import display

    return display(p)


def _scan(folder, recursive):
    from ..io import scan_directory

    return scan_directory(folder, recursive)


def _load_params(path):
    from ..errors import InvalidArgumentError
    from ..io import read_jsonl

    try:
        records = read_jsonl(path)
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="--params")
    except InvalidArgumentError as e:
        raise click.BadParameter(str(e), param_hint="--params")
    table = {}
    for no, rec in enumerate(records, 1):
        if "input" not in rec or not isinstance(rec["input"], str):
            raise click.BadParameter(f'line {no}: missing "input"', param_hint="--params")
        if rec.get("theta") is not None:
            t = rec["theta"]
            text = ",".join(repr(float(x)) if isinstance(x, (int, float)) and not isinstance(x, bool) else "x"
                            for row in (t if isinstance(t, list) else []) for x in (row if isinstance(row, list)
                                                                                     else [row]))
            try:
                v = parse_numbers(text, f"line {no} theta", (6, 9))
            except click.BadParameter as e:
                raise click.BadParameter(e.message, param_hint="--params")
            rec = dict(rec, theta=[v[0:3], v[3:6]] + ([v[6:9]] if len(v) == 9 else []))
        elif rec.get("tps") is not None:
            rec = dict(rec, tps=_check_tps(rec["tps"], f"--params line {no}"))
        else:
            continue  # e.g. an error line of a manifest: nothing to replay
        table[rec["input"]] = rec
    return table


# --------------------------------------------------------------------------- running

def _process(job, spec, opts):
    """Read, warp, encode and write one input. Returns the manifest record (never raises StnError)."""
    import numpy as np

    from ..errors import StnError
    from ..io import decode_image, encode_image, frame_count, read_file_bytes, sniff_format, write_atomic

    rec = {"input": job.input, "output": job.output, "status": "error", "error": None}
    spec = dict(spec)
    if job.params is not None:
        p = job.params
        for k in ("mode", "padding", "align_corners"):
            if k in p and p[k] is not None:
                spec[k] = p[k]
        if p.get("size"):
            spec["out_hw"] = (int(p["size"][1]), int(p["size"][0]))
        if p.get("fill") is not None:
            spec["fill"] = ("values", p["fill"])
        spec["theta"], spec["tps"], spec["matrix"] = p.get("theta"), p.get("tps"), None
    try:
        if job.error:
            raise StnError(job.error)
        if job.output != "-" and os.path.lexists(job.output) and not opts["overwrite"]:
            if opts["skip_existing"]:
                rec["status"] = "skipped"
                return rec
            raise StnError("output exists (use --overwrite or --skip-existing)")
        data = opts["stdin_bytes"] if job.input == "-" else read_file_bytes(job.input)
        img = decode_image(data, opts["max_pixels"], opts["exif"])
        frames = frame_count(data)
        if frames > 1:
            rec["frames"] = frames
            rec["warning"] = f"has {frames} frames or pages; only the first was warped"
        in_hw = img.shape[:2]
        out_hw = spec["out_hw"] or in_hw
        spec["out_hw"] = out_hw
        if spec["matrix"] is not None:
            from ..transforms import theta_from_cv2

            spec["theta"] = theta_from_cv2(np.array(spec["matrix"]), in_hw, out_hw, inverse_map=spec["inverse_map"],
                                           align_corners=spec["align_corners"]).tolist()
        out = _warp_pixels(img, spec, opts["backend"])
        if job.output == "-":
            fmt = opts["fmt"] if opts["fmt"] != "same" else (sniff_format(data) or "png")
        else:
            fmt = os.path.splitext(job.output)[1] or "png"
        if opts["fmt"] != "same" and job.output != "-":
            fmt = opts["fmt"]
        blob = encode_image(out, fmt, opts["quality"])
        if job.output == "-":
            sys.stdout.buffer.write(blob)
            sys.stdout.buffer.flush()
        else:
            write_atomic(job.output, blob, overwrite=opts["overwrite"])
        rec["status"] = "ok"
        rec["in_size"] = [int(in_hw[1]), int(in_hw[0])]
        rec["size"] = [int(out_hw[1]), int(out_hw[0])]
    except StnError as e:
        rec["error"] = str(e)
    except (ValueError, MemoryError, OSError) as e:  # defensive: never a traceback for one bad file
        rec["error"] = f"{type(e).__name__}: {e}"
    if spec.get("tps") is not None:
        rec["tps"] = spec["tps"]
    else:
        rec["theta"] = spec.get("theta")
    rec.setdefault("size", [int(spec["out_hw"][1]), int(spec["out_hw"][0])] if spec["out_hw"] else None)
    rec["mode"], rec["padding"], rec["align_corners"] = spec["mode"], spec["padding"], spec["align_corners"]
    if spec["padding"] == "constant" and spec.get("fill") is not None:
        rec["fill"] = spec["fill"][1]
    rec["version"] = __version__
    return rec


def _run(jobs_list, spec, opts, n_jobs, manifest, quiet):
    import collections
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ..io import display, json_line

    man = None
    if manifest == "-":
        man = sys.stdout
    elif manifest:
        try:
            man = open(manifest, "w", encoding="utf-8")
        except OSError as e:
            raise click.BadParameter(f"cannot write {manifest}: {e.strerror}", param_hint="--manifest")

    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        try:
            sized = min(os.get_terminal_size(sys.stderr.fileno())) > 0
        except OSError:
            sized = False
        # a terminal that reports a 0x0 size (fresh pseudo-terminals, some CI runners) would hide the bar
        bar = tqdm(total=len(jobs_list), file=sys.stderr, unit="img", leave=False,
                   **({"dynamic_ncols": True} if sized else {"ncols": 80, "nrows": 24}))

    counts = collections.Counter()
    started = time.perf_counter()
    # Never more workers than inputs: one image keeps all of numba's threads and needs no pool.
    n_jobs = max(1, min(n_jobs, len(jobs_list)))
    per_thread = max(1, (os.cpu_count() or 1) // n_jobs)

    def init():
        if n_jobs > 1 and opts["backend"] == "cpu":
            try:
                import numba

                numba.set_num_threads(min(per_thread, numba.config.NUMBA_NUM_THREADS))
            except Exception:  # noqa: BLE001 - a thread-count hint must never break a run
                pass

    local = threading.local()

    def task(job):
        if not getattr(local, "ready", False):
            init()
            local.ready = True
        return _process(job, spec, opts)

    def report(rec):
        counts[rec["status"]] += 1
        msg = None
        if rec["status"] == "error":
            msg = f"stntool: error: {display(rec['input'])}: {rec['error']}"
        elif rec.get("warning") and not quiet:
            msg = f"stntool: warning: {display(rec['input'])}: {rec['warning']}"
        if msg is not None:
            if bar is not None:
                bar.write(msg, file=sys.stderr)
            else:
                click.echo(msg, err=True)
        if man is not None:
            try:
                man.write(json_line(rec) + "\n")
                man.flush()
            except BrokenPipeError:
                raise
            except OSError as e:
                raise _ManifestError(e) from None
        if bar is not None:
            bar.update(1)

    def report_once(fut):
        rec = fut.result()
        # mark the future itself: ids of freed futures are reused, so a set of ids would drop records
        if not getattr(fut, "stntool_reported", False):
            fut.stntool_reported = True
            report(rec)

    interrupted = manifest_failed = False
    if n_jobs == 1:
        pool = _InlineExecutor()
    else:
        pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="stntool-warp")
    pending = collections.deque()
    it = iter(jobs_list)
    window = 2 * n_jobs + 2
    try:
        try:
            # A future leaves `pending` only after its record is reported, so an interrupt at any
            # point still records every finished output exactly once.
            for job in it:
                pending.append(pool.submit(task, job))
                while len(pending) >= window or (pending and pending[0].done()):
                    report_once(pending[0])
                    pending.popleft()
            while pending:
                report_once(pending[0])
                pending.popleft()
        except KeyboardInterrupt:
            interrupted = True
            for f in pending:
                f.cancel()
            for f in pending:  # let running jobs finish their atomic write, record them
                if not f.cancelled():
                    try:
                        report_once(f)
                    except Exception:  # noqa: BLE001
                        pass
            pending.clear()
    except BrokenPipeError:
        pool.shutdown(wait=True, cancel_futures=True)
        _quiet_stdout()
        sys.exit(1)
    except _ManifestError as e:
        # the record cannot be kept: stop (outputs already written stay; rerun with --skip-existing)
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
            bar = None
        where = "stdout" if man is sys.stdout else display(manifest)
        click.echo(f"stntool: error: cannot write manifest {where}: {e.args[0].strerror or e.args[0]}; stopped",
                   err=True)
        if man is not sys.stdout:
            try:
                man.close()
            except OSError:
                pass
        man = None
        if where == "stdout":
            _quiet_stdout()
        sys.exit(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
        if man is not None and man is not sys.stdout:
            try:
                man.close()
            except OSError as e:
                click.echo(f"stntool: error: cannot write manifest {display(manifest)}: {e.strerror or e}",
                           err=True)
                manifest_failed = True

    elapsed = time.perf_counter() - started
    done = counts["ok"] + counts["skipped"] + counts["error"]
    if not quiet or interrupted:
        rate = counts["ok"] / elapsed if elapsed > 0 else 0.0
        line = (f"stntool warp: {counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} failed"
                f" in {elapsed:.2f} s ({rate:.1f} images/s)")
        if interrupted:
            line += f"; interrupted, {len(jobs_list) - done} not done (rerun with --skip-existing)"
        click.echo(line, err=True)
    if interrupted:
        sys.exit(130)
    if counts["error"] or manifest_failed:
        sys.exit(1)


class _ManifestError(Exception):
    """Writing a manifest line failed (full disk, I/O error)."""


class _InlineExecutor:
    """Runs each task in the calling thread when it is submitted (one worker: no pool, no thread hop)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        fut = Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised by result(), like a pool
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            fut.set_exception(e)
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def _quiet_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
